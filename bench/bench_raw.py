"""RAW decoding throughput for indexing: files/s through the camera's preview and through the sensor
data, beside a JPEG of the same photo (the ratio is what to read on a shared machine).

DNGs are written from a real photo scaled to a camera's size (a 12-bit RGGB mosaic, like the
tests' write_dng), with and without an RGB preview; the one real RAW with a JPEG preview here
(shared/photos/raw's Canon CRW, 2176x1448 with a 1440x960 preview) is timed both ways too. Each
file is decoded as the indexer does (open_photo at the backbone's minimum side).

    .venv/bin/python bench/bench_raw.py [--megapixels 12] [--files 6] [--reps 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_raw import write_dng  # noqa: E402  (the tests' DNG writer: one way to make them)

from imgsim_desktop.core import raw  # noqa: E402
from imgsim_desktop.core.backbones import get_model  # noqa: E402
from imgsim_desktop.core.decode import model_min_side, open_photo  # noqa: E402

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "photos"


def rate(paths: list[Path], min_side: int, reps: int) -> float:
    """Files per second (the best of ``reps`` passes: the machine is shared)."""
    best = float("inf")
    for _ in range(reps):
        started = time.perf_counter()
        for path in paths:
            open_photo(path, min_side=min_side).image.close()
        best = min(best, time.perf_counter() - started)
    return len(paths) / best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    min_side = model_min_side(get_model(None).preprocess)
    source = Image.open(PHOTOS / "other_shots" / sorted(p.name for p in (PHOTOS / "other_shots").iterdir() if p.suffix == ".jpg")[0])
    source = source.convert("RGB")
    scale = (args.megapixels * 1e6 / (source.width * source.height)) ** 0.5
    photo = source.resize((round(source.width * scale) // 2 * 2, round(source.height * scale) // 2 * 2), Image.Resampling.LANCZOS)
    crw = PHOTOS / "raw" / "Canon_EOS-D30__CRW.CRW"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sensor, preview, jpegs = [], [], []
        for n in range(args.files):
            write_dng(work / f"sensor{n}.dng", photo)
            write_dng(work / f"preview{n}.dng", photo, preview=True)
            photo.save(work / f"photo{n}.jpg", quality=92)
            sensor.append(work / f"sensor{n}.dng")
            preview.append(work / f"preview{n}.dng")
            jpegs.append(work / f"photo{n}.jpg")
        assert raw.open_raw(sensor[0], min_side)[3] == raw.SENSOR and raw.open_raw(preview[0], min_side)[3] == raw.PREVIEW
        figures = {
            "jpeg_files_per_s": rate(jpegs, min_side, args.reps),
            "dng_preview_files_per_s": rate(preview, min_side, args.reps),
            "dng_sensor_files_per_s": rate(sensor, min_side, args.reps),
            "crw_preview_files_per_s": rate([crw] * args.files, min_side, args.reps),
            "crw_sensor_files_per_s": rate([crw] * args.files, 1200, args.reps),  # 1200 > its preview's 960
        }
    figures = {k: round(v, 2) for k, v in figures.items()}
    print(json.dumps({
        "benchmark": "raw_decode", "machine": platform.machine(), "photo": f"{photo.width}x{photo.height}", "min_side": min_side,
        **figures,
        "sensor_over_preview_time": round(figures["dng_preview_files_per_s"] / figures["dng_sensor_files_per_s"], 2),
        "preview_vs_jpeg_speed": round(figures["dng_preview_files_per_s"] / figures["jpeg_files_per_s"], 2),
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

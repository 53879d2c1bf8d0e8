"""Which keeper-rule order keeps the right copy: measured on generated copies of real photos.

Each real photo becomes an "original" as a camera writes it (JPEG with date taken, GPS and camera
in its EXIF), and beside it the copies a library collects: the one a messenger app strips (no
metadata, re-encoded larger), a blurred one (metadata kept), a blurred PNG, a lossless PNG
re-save, a half-size copy and an enlarged one. Every file goes through the indexer's own decode
and measure (open_photo, photo_quality), and each rule order picks a keeper per group.

Reported per order: groups whose keeper is a stripped or a blurred copy (must be 0: the issue's
bar), groups whose keeper is the original, and which copy kinds were kept instead.

    .venv/bin/python bench/bench_keeper.py [--photos 40]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

from PIL import Image, ImageFilter

from imgsim_desktop.core import keeper, photo_quality
from imgsim_desktop.core.decode import open_photo
from imgsim_desktop.storage.records import PhotoRow

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "photos"
ORDERS = {
    "format,resolution,size,oldest (before)": ["folder", "format", "resolution", "size", "oldest"],
    "sharpness,metadata,format,resolution,size,oldest": ["folder", "sharpness", "metadata", "format", "resolution", "size", "oldest"],
    "format,sharpness,metadata,resolution,size,oldest": ["folder", "format", "sharpness", "metadata", "resolution", "size", "oldest"],
    "sharpness,format,metadata,resolution,size,oldest": ["folder", "sharpness", "format", "metadata", "resolution", "size", "oldest"],
    "metadata,sharpness,format,resolution,size,oldest": ["folder", "metadata", "sharpness", "format", "resolution", "size", "oldest"],
}
BAD = ("stripped", "blurred", "blurred_png", "png")  # the PNG re-save lost the metadata too


def camera_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "Canon EOS R6"
    exif[0x0132] = "2023:08:14 17:32:05"
    exif.get_ifd(0x8769)[0x9003] = "2023:08:14 17:32:05"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (48.0, 51.0, 29.6), "E", (2.0, 17.0, 40.2)
    return exif


def make_group(source: Path, folder: Path) -> dict[str, Path]:
    photo = Image.open(source).convert("RGB")
    if min(photo.size) < 640:  # a camera's size: the half-size copy must still be a real photo
        scale = 640 / min(photo.size)
        photo = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.LANCZOS)
    exif = camera_exif()
    blurred = photo.filter(ImageFilter.GaussianBlur(2.0))
    files = {
        "original": (photo, "JPEG", {"quality": 90, "exif": exif}),
        "stripped": (photo, "JPEG", {"quality": 97}),  # a messenger's re-encode: no metadata, more bytes
        "blurred": (blurred, "JPEG", {"quality": 95, "exif": exif}),
        "blurred_png": (blurred, "PNG", {}),
        "png": (photo, "PNG", {}),
        "half": (photo.resize((photo.width // 2, photo.height // 2), Image.Resampling.LANCZOS), "JPEG", {"quality": 90, "exif": exif}),
    }
    out = {}
    for kind, (image, fmt, options) in files.items():
        path = folder / f"{source.stem}_{kind}.{'png' if fmt == 'PNG' else 'jpg'}"
        image.save(path, fmt, **options)
        out[kind] = path
    return out


def row_of(path: Path) -> PhotoRow:
    photo = open_photo(path, min_side=320)
    quality = photo_quality.measure(photo.image)
    st = path.stat()
    return PhotoRow(0, str(path), st.st_size, st.st_mtime_ns, photo.width, photo.height, photo.taken_at, photo.camera,
                    quality.sharpness, quality.clipped, photo_quality.to_text(photo.tags))  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=40)
    args = parser.parse_args()
    sources = sorted(p for p in (PHOTOS / "other_shots").iterdir() if p.suffix.lower() == ".jpg")[:: max(1, 252 // args.photos)][: args.photos]
    results = {name: {"bad_keeper": 0, "original_kept": 0, "kept": Counter()} for name in ORDERS}
    sharpness_ratio = {"blurred": [], "stripped": [], "half": [], "png": []}
    with tempfile.TemporaryDirectory() as tmp:
        for source in sources:
            group = make_group(source, Path(tmp))
            rows = {kind: row_of(path) for kind, path in group.items()}
            kind_of = {row.path: kind for kind, row in rows.items()}
            for kind in sharpness_ratio:
                sharpness_ratio[kind].append(rows[kind].sharpness / max(rows["original"].sharpness, 1e-9))
            for name, order in ORDERS.items():
                kept, _ = keeper.choose(list(rows.values()), keeper.KeeperRules(order=order))
                kind = kind_of[kept.path]
                results[name]["kept"][kind] += 1
                results[name]["bad_keeper"] += kind in BAD
                results[name]["original_kept"] += kind == "original"
    out = {name: {"bad_keeper": r["bad_keeper"], "original_kept": r["original_kept"], "kept": dict(r["kept"])} for name, r in results.items()}
    ratios = {k: {"min": round(min(v), 3), "max": round(max(v), 3)} for k, v in sharpness_ratio.items()}
    print(json.dumps({"benchmark": "keeper_rules", "groups": len(sources), "tie_share": keeper.SHARPNESS_TIE,
                      "sharpness_over_original": ratios, "orders": out}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

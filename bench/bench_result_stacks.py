"""Where "near-identical copies" end for the results' stacks: mutual cosines of copies vs other shots.

The results page stacks neighbours whose embeddings are at least STACK_COSINE alike (core.stacks).
That number is measured here, per installed backbone, on real photos:

  copies        each of --photos photos from shared/photos/other_shots beside the copies a library
                collects of it (JPEG re-encode at quality 60, half size, PNG re-save, 4 % crop,
                brightened 10 %), plus shared/photos/ukbench's ukbench00120 and its resized copy:
                every pair inside a group is "the same photo"
  other shots   shared/photos/other_shots: 64 groups of 2-10 *different* photos of one place or
                object (hard negatives: they must never be stacked), and every pair across groups

Printed per backbone: the lowest copy cosines, the highest other-shot cosines, and how many of
each a threshold keeps apart.

    .venv/bin/python bench/bench_result_stacks.py [--photos 40] [--models efficientnet-lite0,...]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from imgsim_desktop.core import glance
from imgsim_desktop.core.engine import Engine
from imgsim_desktop.core.library_service import index_now

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "photos"


def make_copies(source: Path, folder: Path) -> list[Path]:
    photo = Image.open(source).convert("RGB")
    w, h = photo.size
    crop = photo.crop((round(w * 0.02), round(h * 0.02), round(w * 0.98), round(h * 0.98)))
    made = {
        "q60.jpg": (photo, {"quality": 60}),
        "half.jpg": (photo.resize((w // 2, h // 2), Image.Resampling.LANCZOS), {"quality": 90}),
        "resave.png": (photo, {}),
        "crop.jpg": (crop, {"quality": 90}),
        "bright.jpg": (ImageEnhance.Brightness(photo).enhance(1.1), {"quality": 90}),
    }
    out = []
    for suffix, (image, options) in made.items():
        target = folder / f"{source.stem}__{suffix}"
        image.save(target, **options)
        out.append(target)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--models", default="efficientnet-lite0")
    args = parser.parse_args()
    rows = list(csv.DictReader((PHOTOS / "other_shots" / "groups.csv").open()))
    group_of = {r["file"]: r["group"] for r in rows}
    work = Path(tempfile.mkdtemp(prefix="imgsim-stacks-"))
    try:
        lib = work / "lib"
        shutil.copytree(PHOTOS / "other_shots", lib / "other_shots")
        (lib / "copies").mkdir()
        copy_groups: list[list[str]] = []
        for name in sorted(group_of)[:: max(1, len(group_of) // args.photos)][: args.photos]:
            original = lib / "other_shots" / name
            copy_groups.append([str(original)] + [str(p) for p in make_copies(original, lib / "copies")])
        for name in ("ukbench00120.jpg", "ukbench00120_resize.jpg"):
            shutil.copyfile(PHOTOS / "ukbench" / name, lib / "copies" / name)
        copy_groups.append([str(lib / "copies" / "ukbench00120.jpg"), str(lib / "copies" / "ukbench00120_resize.jpg")])
        shots: dict[str, list[str]] = {}
        for name, group in group_of.items():
            shots.setdefault(group, []).append(str(lib / "other_shots" / name))
        for model in args.models.split(","):
            data = work / f"data-{model}"
            with Engine(data, model=model, device="cpu") as engine:
                index_now(engine, [str(lib)])
                vectors, blocks = {}, {}
                stored = {path: data for _id, data, path, _s, _m in engine.catalog.glances(engine.spec.name)}
                for path in [p for g in copy_groups for p in g] + [p for g in shots.values() for p in g]:
                    found = engine.catalog.vector_for_path(engine.spec.name, path)
                    if found is not None:
                        v = found[1].astype(np.float64)
                        vectors[path] = v / np.linalg.norm(v)
                        blocks[path] = glance.hashes(glance.from_bytes(stored[path]))

            def cos(a: str, b: str, vectors=vectors) -> float:
                return float(vectors[a] @ vectors[b])

            def bits(a: str, b: str, blocks=blocks) -> int:
                return glance.hash_distance(blocks[a], blocks[b])

            copy_pairs = [(a, b) for g in copy_groups for a, b in itertools.combinations(g, 2)]
            shot_pairs = [(a, b) for g in shots.values() for a, b in itertools.combinations(g, 2)]
            copies = sorted(cos(a, b) for a, b in copy_pairs)
            within = sorted(cos(a, b) for a, b in shot_pairs)
            every = [p for g in shots.values() for p in g]
            across = sorted(cos(a, b) for a, b in itertools.combinations(every, 2) if group_of[Path(a).name] != group_of[Path(b).name])
            print("  copy pairs' glance bits, highest:", sorted(bits(a, b) for a, b in copy_pairs)[-8:])
            print("  other shots' glance bits, lowest:", sorted(bits(a, b) for a, b in shot_pairs)[:8])
            for t, b in itertools.product((0.8, 0.85, 0.88, 0.9), (8, 10, 12, 14)):
                kept = sum(cos(*p) >= t and bits(*p) <= b for p in copy_pairs)
                wrong = [p for p in shot_pairs if cos(*p) >= t and bits(*p) <= b]
                print(f"  cosine >= {t:.2f} and glance within {b} bits: {kept}/{len(copy_pairs)} copy pairs stacked, {len(wrong)} other-shot pairs "
                      + " ".join(sorted({group_of[Path(x).name] for x, _ in wrong})))
            print(f"\n{model}: {len(copies)} copy pairs, {len(within)} other-shot pairs in a group, {len(across)} across groups")
            print("  lowest copy cosines:       ", " ".join(f"{c:.3f}" for c in copies[:8]))
            print("  highest other-shot cosines:", " ".join(f"{c:.3f}" for c in within[-8:]))
            print("  highest across groups:     ", " ".join(f"{c:.3f}" for c in across[-4:]))
            for t in (0.85, 0.88, 0.9, 0.92, 0.94, 0.95, 0.96):
                kept = sum(c >= t for c in copies)
                wrong = sum(c >= t for c in within) + sum(c >= t for c in across)
                print(f"  threshold {t:.2f}: {kept}/{len(copies)} copy pairs stacked, {wrong} other-shot pairs stacked")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

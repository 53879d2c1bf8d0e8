"""A labelled near-duplicate library made from the real photos in shared/photos.

Every file gets an *origin*: two files are true duplicates exactly when their origins match.
  - generated copies (crop, rescale, JPEG recompression, colour/brightness edits, format change)
    share the origin of the photo they were made from;
  - wallpapers/: one file per kde_* group (in this copy of the photos the 12 files of a group are
    byte-identical 800x500 files, i.e. exact copies, which would only inflate the scores);
  - scenes/ela_original + ela_modified (an edited copy) share one origin;
  - ukbench00120 with its resize and rotation copies share one origin (the hflip copy is a mirror
    image, which the geometric check does not treat as the same photo, so it is left out);
  - every other file is its own origin. That makes the scenes/ pairs (same scene, another shot)
    and the wallpapers among themselves the hard negatives: alike, but different photos.

``split`` picks half of the generated-from originals (by a stable hash of the name) and ``seed`` the
random edits, so thresholds can be tuned on one split/seed and reported on another.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import random
import shutil
from pathlib import Path

from PIL import Image, ImageEnhance

PHOTOS = Path(__file__).resolve().parent.parent.parent / "shared" / "photos"


def _split_of(name: str) -> str:
    return "tune" if hashlib.sha1(name.encode()).digest()[0] % 2 == 0 else "report"


def _save(img: Image.Image, dest: Path, quality: int) -> None:
    img.save(dest, **({} if dest.suffix == ".png" else {"quality": quality}))


def _crop(img: Image.Image, rng: random.Random, keep: tuple[float, float]) -> Image.Image:
    w, h = img.size
    fw, fh = rng.uniform(*keep), rng.uniform(*keep)
    cw, ch = int(w * fw), int(h * fh)
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    return img.crop((x, y, x + cw, y + ch))


def _rescale(img: Image.Image, factor: float) -> Image.Image:
    return img.resize((max(16, int(img.width * factor)), max(16, int(img.height * factor))), Image.Resampling.LANCZOS)


def _colour(img: Image.Image, rng: random.Random) -> Image.Image:
    img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.8, 1.25))
    img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.85, 1.2))
    return ImageEnhance.Color(img).enhance(rng.uniform(0.7, 1.3))


# Each edit: (name, function(img, rng) -> (img, suffix, jpeg quality)).
EDITS = {
    "rescale": lambda img, rng: (_rescale(img, rng.uniform(0.35, 0.75)), ".jpg", 88),
    "recompress": lambda img, rng: (img, ".jpg", rng.randint(30, 60)),
    "crop": lambda img, rng: (_crop(img, rng, (0.7, 0.92)), ".jpg", 90),
    "colour": lambda img, rng: (_colour(img, rng), ".jpg", 90),
    "crop_rescale_recompress": lambda img, rng: (_rescale(_crop(img, rng, (0.75, 0.95)), rng.uniform(0.5, 0.8)), ".jpg", rng.randint(45, 75)),
    "colour_crop": lambda img, rng: (_colour(_crop(img, rng, (0.8, 0.95)), rng), ".jpg", 85),
    "webp": lambda img, rng: (img, ".webp", 80),
    "png_rescale": lambda img, rng: (_rescale(img, rng.uniform(0.5, 0.9)), ".png", 0),
}


def _originals() -> list[tuple[Path, str]]:
    """(file, origin) for every real photo used, before any generated copy."""
    out: list[tuple[Path, str]] = [(p, f"aib/{p.stem}") for p in sorted((PHOTOS / "aib").glob("*.jpg"))]
    with open(PHOTOS / "wallpapers" / "groups.csv") as fh:
        first_of_group = {row["group"]: row["file"] for row in reversed(list(csv.DictReader(fh)))}
    out += [(PHOTOS / "wallpapers" / name, group) for group, name in sorted(first_of_group.items())]
    with open(PHOTOS / "scenes" / "groups.csv") as fh:
        for row in csv.DictReader(fh):
            origin = "scenes/ela" if row["path"].startswith("ela_") else f"scenes/{row['path']}"
            out.append((PHOTOS / "scenes" / row["path"], origin))
    for p in sorted((PHOTOS / "ukbench").glob("*.jpg")):
        if "corrupt" in p.name or "hflip" in p.name:
            continue
        out.append((p, "ukbench/00120" if p.stem.startswith("ukbench00120") else f"ukbench/{p.stem}"))
    return out


def build(dest: Path, seed: int, split: str | None, copies_per_photo: int = 2) -> dict[str, str]:
    """Write the library into ``dest``; returns {path: origin}. Copies are made of the originals
    in ``split`` (all when None) that are single photos (aib, wallpapers, scenes distractors)."""
    rng = random.Random(seed)
    dest.mkdir(parents=True, exist_ok=True)
    labels: dict[str, str] = {}
    for src, origin in _originals():
        target = dest / f"{src.parent.name}__{src.name}"
        shutil.copyfile(src, target)
        labels[str(target)] = origin
    singles = [(p, o) for p, o in _originals() if _generates(p, o) and (split is None or _split_of(o) == split)]
    for src, origin in singles:
        with Image.open(src) as im:
            base = im.convert("RGB")
        for n, edit in enumerate(rng.sample(sorted(EDITS), copies_per_photo)):
            img, suffix, quality = EDITS[edit](base, rng)
            target = dest / f"copy{n}_{edit}__{src.parent.name}__{src.stem}{suffix}"
            _save(img, target, quality)
            labels[str(target)] = origin
    return labels


def _generates(path: Path, origin: str) -> bool:
    """Copies are made only of photos that stand alone (groups already hold their own copies)."""
    if origin.startswith("aib/"):
        return True
    if path.parent.name == "wallpapers":
        return True
    return origin.startswith("scenes/") and "pair" not in origin and origin != "scenes/ela" and _is_distractor(path.name)


def _is_distractor(name: str) -> bool:
    with open(PHOTOS / "scenes" / "groups.csv") as fh:
        return any(row["path"] == name and row["group"].startswith("single_") for row in csv.DictReader(fh))


def true_pairs(labels: dict[str, str]) -> set[frozenset[str]]:
    by_origin: dict[str, list[str]] = {}
    for path, origin in labels.items():
        by_origin.setdefault(origin, []).append(path)
    return {frozenset(p) for paths in by_origin.values() for p in itertools.combinations(sorted(paths), 2)}

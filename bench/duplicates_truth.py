"""A labelled near-duplicate library made from the real photos in shared/photos, as hard as a real one.

Every file has an *origin*: two files are true duplicates exactly when their origins match.

Hard negatives (alike, but different photos: each its own origin):
  - other_shots/: 252 photos in 64 groups, each group several *different* photos of one place or
    object (landmarks from other viewpoints, panorama neighbours, stereo pairs, video frames);
    every pair inside a group is a hard negative;
  - scenes/: pairs of the same scene shot differently, and 12 unrelated photos. Only
    ela_original / ela_modified is an edited copy (one origin, the modified one a given copy).

Positives (copies, sharing the origin of the photo they were made from):
  - generated copies of the photos of other_shots/, aib/, labelled/, ukbench/ and wallpapers/
    (one file per kde_* group: the files of a group are byte-identical here), each made by one edit
    or a combination of edits (EDITS: crops down to 30 % of the area, centred, off-centre or in a
    corner; rescales; JPEG, WebP and PNG re-encodes; colour edits; blur / sharpen; quarter turns;
    mirror; caption and sticker overlays; borders) with a random generator seeded by ``seed`` and
    the origin, so a photo's copies are the same in every split and at every ``limit``;
  - the given copies: ukbench00120's resize, free-angle rotation and mirror (hflip) copies, and
    scenes/ela_modified;
  - a cluster per split: one photo with CLUSTER_SIZE copies (mild mixed edits), a measure of
    whether a photo with many copies comes out as one group.

Splits: a *unit* is what must not be spread over both halves (an other_shots group, a scenes pair,
else one origin); a stable hash of its name puts it in "tune" or "report". A split's library holds
that split's originals and their copies; "all" holds both (so it is the union of the two).

``build_library`` writes the files into a folder and returns their labels by file name
(see ``Label``); ``build`` and ``true_pairs`` keep the older {path: origin} interface.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import math
import random
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

PHOTOS = Path(__file__).resolve().parent.parent.parent / "shared" / "photos"
SPLITS = ("tune", "report")
# Bump when what build_library writes changes: a kept library of another version is rebuilt.
LIBRARY_VERSION = 1
CLUSTER_SIZE = 40
MIN_SIDE = 128  # no copy is scaled below this many pixels on its longer side
SOURCE_FOLDERS = ("other_shots", "aib", "labelled", "ukbench", "wallpapers")  # copies are made of these


@dataclass
class Label:
    """What one library file is. Names are unique in a library, so labels are keyed by file name."""

    origin: str
    role: str  # "original" or "copy"
    folder: str  # the shared/photos folder it comes from (a copy: its original's)
    unit: str  # split unit
    split: str
    group: str | None = None  # hard-negative group (other_shots group or scenes pair) it belongs to
    source: str | None = None  # a copy: file name of the original it was made from
    kinds: list[str] = field(default_factory=list)  # a copy: its edits, in the order applied
    crop_area: float | None = None  # share of the original's area a crop kept
    crop_pos: str | None = None  # centre / offcentre / corner
    rotate: int | None = None  # quarter turn, degrees counter-clockwise
    scale: float | None = None  # rescale factor
    quality: int | None = None  # JPEG / WebP quality written
    given: bool = False  # a copy that came with the photos (ukbench00120's, ela_modified)
    cluster: bool = False  # one of a cluster photo's copies (or the cluster photo itself)


@dataclass(frozen=True)
class Source:
    path: Path
    origin: str
    folder: str
    unit: str
    group: str | None = None
    copies: bool = True  # generated copies are made of it
    given_of: str | None = None  # a given copy: the origin's original file name
    given_kinds: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.folder}__{self.path.name}"


def split_of(unit: str) -> str:
    return SPLITS[hashlib.sha1(unit.encode()).digest()[0] % 2]


def _unit_rank(unit: str) -> bytes:
    """A stable pseudo-random order of units (for --limit and the cluster photo)."""
    return hashlib.sha1(b"rank:" + unit.encode()).digest()


def sources() -> list[Source]:
    """Every real photo the library uses, before any generated copy."""
    out: list[Source] = []
    with open(PHOTOS / "other_shots" / "groups.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            p = PHOTOS / "other_shots" / row["file"]
            out.append(Source(p, f"other_shots/{p.stem}", "other_shots", f"other_shots/{row['group']}", row["group"]))
    with open(PHOTOS / "scenes" / "groups.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            p, group = PHOTOS / "scenes" / row["path"], row["group"]
            unit = f"scenes/{group}"
            if p.name.startswith("ela_"):  # an edited copy: one origin, the modified file a given copy
                given = "scenes__ela_original.jpg" if p.name == "ela_modified.jpg" else None
                out.append(Source(p, "scenes/ela", "scenes", unit, None, False, given, ("retouch",) if given else ()))
            else:
                out.append(Source(p, f"scenes/{p.stem}", "scenes", unit, group if group.startswith("pair") else None, False))
    out += [Source(p, f"aib/{p.stem}", "aib", f"aib/{p.stem}") for p in sorted((PHOTOS / "aib").glob("*.jpg"), key=lambda p: int(p.stem))]
    out += [
        Source(p, f"labelled/{p.stem}", "labelled", f"labelled/{p.stem}")
        for p in sorted((PHOTOS / "labelled").iterdir())
        if p.suffix.lower() in (".jpg", ".jpeg", ".png")
    ]
    given_kinds = {"hflip": ("mirror",), "resize": ("rescale", "aspect"), "rotation": ("rotate_free",)}
    for p in sorted((PHOTOS / "ukbench").glob("*.jpg")):
        if "corrupt" in p.name:
            continue
        base, _, variant = p.stem.partition("_")
        if variant:  # ukbench00120_hflip / _resize / _rotation: copies of ukbench00120
            out.append(
                Source(p, f"ukbench/{base}", "ukbench", f"ukbench/{base}", None, False, f"ukbench__{base}.jpg", given_kinds[variant])
            )
        else:
            out.append(Source(p, f"ukbench/{base}", "ukbench", f"ukbench/{base}"))
    with open(PHOTOS / "wallpapers" / "groups.csv", newline="") as fh:
        first_of_group: dict[str, str] = {}
        for row in csv.DictReader(fh):
            first_of_group.setdefault(row["group"], row["file"])
    for group, name in sorted(first_of_group.items()):
        out.append(Source(PHOTOS / "wallpapers" / name, f"wallpapers/{group}", "wallpapers", f"wallpapers/{group}"))
    return out


# --- edits ---------------------------------------------------------------------------------------
# Each edit: fn(img, rng, label) -> img; it records what it did in the copy's label.


def _crop(img: Image.Image, rng: random.Random, label: Label, area: tuple[float, float] = (0.3, 0.95)) -> Image.Image:
    w, h = img.size
    share = rng.uniform(*area)
    ratio = math.exp(rng.uniform(-0.35, 0.35))  # the crop's aspect, relative to the photo's
    fw, fh = math.sqrt(share * ratio), math.sqrt(share / ratio)
    if fw > 1:
        fw, fh = 1.0, share
    if fh > 1:
        fw, fh = share, 1.0
    cw, ch = max(16, round(w * fw)), max(16, round(h * fh))
    pos = rng.choice(("centre", "offcentre", "corner"))
    if pos == "centre":
        x, y = (w - cw) // 2, (h - ch) // 2
    elif pos == "corner":
        x, y = rng.choice((0, w - cw)), rng.choice((0, h - ch))
    else:
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    label.crop_area, label.crop_pos = round(cw * ch / (w * h), 3), pos
    return img.crop((x, y, x + cw, y + ch))


def _rotate(img: Image.Image, rng: random.Random, label: Label) -> Image.Image:
    label.rotate = rng.choice((90, 180, 270))
    turn = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}
    return img.transpose(turn[label.rotate])


def _mirror(img: Image.Image, rng: random.Random, label: Label) -> Image.Image:
    return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


def _rescale(img: Image.Image, rng: random.Random, label: Label, factor: tuple[float, float] = (0.3, 0.9)) -> Image.Image:
    f = max(rng.uniform(*factor), min(1.0, MIN_SIDE / max(img.size)))
    label.scale = round(f, 3)
    return img.resize((max(16, round(img.width * f)), max(16, round(img.height * f))), Image.Resampling.LANCZOS)


def _colour(img: Image.Image, rng: random.Random, label: Label, strength: float = 1.0) -> Image.Image:
    s = strength
    steps = [
        lambda im: ImageEnhance.Brightness(im).enhance(rng.uniform(1 - 0.3 * s, 1 + 0.35 * s)),
        lambda im: ImageEnhance.Contrast(im).enhance(rng.uniform(1 - 0.3 * s, 1 + 0.35 * s)),
        lambda im: ImageEnhance.Color(im).enhance(rng.uniform(1 - 0.5 * s, 1 + 0.5 * s)),
        lambda im: _tint(im, rng.uniform(-0.12 * s, 0.12 * s)),
    ]
    for step in rng.sample(steps, rng.randint(1, 3)):
        img = step(img)
    return img


def _tint(img: Image.Image, warmth: float) -> Image.Image:
    """Warmer (> 0) or cooler (< 0): red and blue scaled apart, as a white-balance change does."""
    r, g, b = img.split()
    r = r.point(lambda v: min(255, round(v * (1 + warmth))))
    b = b.point(lambda v: min(255, round(v * (1 - warmth))))
    return Image.merge("RGB", (r, g, b))


def _greyscale(img: Image.Image, rng: random.Random, label: Label) -> Image.Image:
    return ImageOps.grayscale(img).convert("RGB")


def _blur(img: Image.Image, rng: random.Random, label: Label) -> Image.Image:
    return img.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5) * max(img.size) / 800))


def _sharpen(img: Image.Image, rng: random.Random, label: Label) -> Image.Image:
    return img.filter(ImageFilter.UnsharpMask(radius=rng.uniform(1.0, 2.5), percent=rng.randint(80, 200), threshold=2))


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one small bitmap font
        return ImageFont.load_default()


CAPTIONS = ["Summer 2019", "Best day ever!", "(c) Photo Club", "Happy birthday Anna", "Greetings from Oxford",
            "WOW", "holiday pics", "Do not copy", "Family trip 2021", "Sunday walk", "instagram @someone",
            "Merry Christmas!", "Made with PhotoApp"]  # fmt: skip


def _caption(img: Image.Image, rng: random.Random, label: Label) -> Image.Image:
    img = img.copy()
    draw = ImageDraw.Draw(img)
    text = rng.choice(CAPTIONS)
    size = max(10, round(img.height * rng.uniform(0.05, 0.11)))
    font = _font(size)
    while size > 10 and draw.textlength(text, font=font) > 0.85 * img.width:
        size = round(size * 0.85)
        font = _font(size)
    tw = draw.textlength(text, font=font)
    x = rng.uniform(0.03, 0.97) * (img.width - tw) if img.width > tw else 0
    y = (0.03 if rng.random() < 0.4 else 0.86) * img.height + rng.uniform(-0.02, 0.02) * img.height
    fill = rng.choice([(255, 255, 255), (255, 230, 0), (20, 20, 20), (230, 30, 30)])
    if rng.random() < 0.35:  # a band behind the text, as meme and card apps do
        band = (0, 0, 0) if sum(fill) > 380 else (255, 255, 255)
        draw.rectangle((0, y - 0.2 * size, img.width, y + 1.25 * size), fill=band)
        draw.text((x, y), text, font=font, fill=fill)
    else:
        outline = (0, 0, 0) if sum(fill) > 380 else (255, 255, 255)
        draw.text((x, y), text, font=font, fill=fill, stroke_width=max(1, size // 14), stroke_fill=outline)
    return img


def _sticker(img: Image.Image, rng: random.Random, label: Label) -> Image.Image:
    img = img.copy()
    draw = ImageDraw.Draw(img)
    w, h = img.size
    side = math.sqrt(rng.uniform(0.02, 0.10) * w * h)
    x, y = rng.uniform(0, w - side), rng.uniform(0, h - side)
    box = (x, y, x + side, y + side)
    fill = tuple(rng.randint(0, 255) for _ in range(3))
    outline = (255, 255, 255) if sum(fill) < 380 else (0, 0, 0)
    shape = rng.choice(("disc", "square", "star", "logo"))
    if shape == "disc":
        draw.ellipse(box, fill=fill, outline=outline, width=max(1, round(side / 25)))
    elif shape == "square":
        draw.rounded_rectangle(box, radius=side / 6, fill=fill, outline=outline, width=max(1, round(side / 25)))
    elif shape == "star":
        cx, cy, r = x + side / 2, y + side / 2, side / 2
        points = [
            (
                cx + (r if i % 2 == 0 else r * 0.45) * math.sin(i * math.pi / 5),
                cy - (r if i % 2 == 0 else r * 0.45) * math.cos(i * math.pi / 5),
            )
            for i in range(10)
        ]
        draw.polygon(points, fill=fill, outline=outline)
    else:  # a round logo with letters in it
        draw.ellipse(box, fill=fill, outline=outline, width=max(1, round(side / 20)))
        font = _font(max(8, round(side * 0.32)))
        text = rng.choice(("PC", "TV", "XL", "iS", "OK", "HD"))
        draw.text((x + side / 2, y + side / 2), text, font=font, fill=outline, anchor="mm")
    return img


def _border(img: Image.Image, rng: random.Random, label: Label) -> Image.Image:
    w, h = img.size
    colour = rng.choice([(0, 0, 0), (255, 255, 255), (40, 40, 40), tuple(rng.randint(0, 255) for _ in range(3))])
    style = rng.choice(("letterbox", "pillarbox", "frame", "square"))
    if style == "letterbox":
        pad = round(h * rng.uniform(0.08, 0.25))
        box = (0, pad, 0, pad)
    elif style == "pillarbox":
        pad = round(w * rng.uniform(0.08, 0.25))
        box = (pad, 0, pad, 0)
    elif style == "frame":
        pad = round(max(w, h) * rng.uniform(0.03, 0.1))
        box = (pad, pad, pad, pad)
    else:  # padded out to a square, as for a square feed
        d = abs(w - h) // 2
        box = (d, 0, d, 0) if w < h else (0, d, 0, d)
    left, top, right, bottom = box
    out = Image.new("RGB", (w + left + right, h + top + bottom), colour)
    out.paste(img, (left, top))
    return out


def _keep(img: Image.Image, rng: random.Random, label: Label) -> Image.Image:
    return img  # an encode-only edit: the change is in how the copy is saved


@dataclass(frozen=True)
class Edit:
    fn: Callable[[Image.Image, random.Random, Label], Image.Image]
    weight: float  # how often it is drawn
    conflicts: tuple[str, ...] = ()
    encode: str | None = None  # "jpeg" / "webp" / "png": the format the copy is saved in


# In the order they are applied when combined.
EDITS: dict[str, Edit] = {
    "crop": Edit(_crop, 3.0),
    "rotate": Edit(_rotate, 1.5),
    "mirror": Edit(_mirror, 1.5),
    "rescale": Edit(_rescale, 2.0),
    "colour": Edit(_colour, 2.0, ("greyscale",)),
    "greyscale": Edit(_greyscale, 0.6, ("colour",)),
    "blur": Edit(_blur, 1.0, ("sharpen",)),
    "sharpen": Edit(_sharpen, 1.0, ("blur",)),
    "border": Edit(_border, 1.0),
    "caption": Edit(_caption, 1.0),
    "sticker": Edit(_sticker, 1.0),
    "jpeg": Edit(_keep, 2.0, ("webp", "png"), "jpeg"),
    "webp": Edit(_keep, 1.0, ("jpeg", "png"), "webp"),
    "png": Edit(_keep, 1.0, ("jpeg", "webp"), "png"),
}
EDITS_PER_COPY = ((1, 0.45), (2, 0.35), (3, 0.20))  # (how many edits, probability)
CLUSTER_EDITS = ("crop", "rescale", "colour", "sharpen", "border", "caption", "jpeg", "webp", "png")


def _draw_edits(rng: random.Random, names: tuple[str, ...] = tuple(EDITS)) -> list[str]:
    n = rng.choices([k for k, _ in EDITS_PER_COPY], [p for _, p in EDITS_PER_COPY])[0]
    chosen: list[str] = []
    pool = list(names)
    while len(chosen) < n and pool:
        pick = rng.choices(pool, [EDITS[k].weight for k in pool])[0]
        chosen.append(pick)
        pool = [k for k in pool if k != pick and k not in EDITS[pick].conflicts]
    return [k for k in EDITS if k in chosen]  # application order


def _make_copy(
    base: Image.Image, rng: random.Random, kinds: list[str], label: Label, mild: bool = False
) -> tuple[Image.Image, str, int | None]:
    img = base
    for kind in kinds:
        if mild and kind == "crop":
            img = _crop(img, rng, label, (0.7, 0.95))
        elif mild and kind == "rescale":
            img = _rescale(img, rng, label, (0.5, 0.9))
        elif mild and kind == "colour":
            img = _colour(img, rng, label, 0.5)
        else:
            img = EDITS[kind].fn(img, rng, label)
    encode = next((EDITS[k].encode for k in kinds if EDITS[k].encode), None) or "jpeg"
    if encode == "png":
        return img, ".png", None
    if encode == "webp":
        return img, ".webp", rng.randint(50, 90)
    if "jpeg" in kinds:
        return img, ".jpg", rng.randint(50 if mild else 30, 95)
    return img, ".jpg", rng.randint(85, 95)  # any other copy is saved as a good JPEG


def _save(img: Image.Image, dest: Path, quality: int | None) -> None:
    if dest.suffix == ".png":
        img.save(dest, optimize=False)
    elif dest.suffix == ".webp":
        img.save(dest, quality=quality, method=4)
    else:
        img.save(dest, quality=quality)


def _open_rgb(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return ImageOps.exif_transpose(im).convert("RGB")


# --- the library ---------------------------------------------------------------------------------


def units(split: str | None = None, limit: int | None = None) -> list[str]:
    """The units of ``split`` (both when None / "all"), in a stable pseudo-random order; ``limit``
    keeps that many of each split's (a smaller library with every kind of unit still likely)."""
    out = []
    for s in SPLITS:
        if split not in (None, "all", s):
            continue
        mine = sorted({src.unit for src in sources() if split_of(src.unit) == s}, key=_unit_rank)
        out += mine[:limit] if limit is not None else mine
    return out


def cluster_origin(split: str) -> str:
    """The photo given CLUSTER_SIZE copies in ``split``: an aib photo of that split."""
    return min((s for s in sources() if s.folder == "aib" and split_of(s.unit) == split), key=lambda s: _unit_rank(s.unit)).origin


def build_library(
    dest: Path,
    seed: int,
    split: str | None,
    copies_per_photo: int = 2,
    limit: int | None = None,
    cluster_size: int = CLUSTER_SIZE,
    log: Callable[[str], None] | None = None,
) -> dict[str, Label]:
    """Write the library of ``split`` (tune / report; both when None or "all") into ``dest``.
    Returns {file name: Label}. ``limit``: at most that many units per split."""
    dest.mkdir(parents=True, exist_ok=True)
    wanted = set(units(split, limit))
    chosen = [s for s in sources() if s.unit in wanted]
    clusters = {cluster_origin(s) for s in SPLITS if split in (None, "all", s)} if cluster_size else set()
    clusters &= {s.origin for s in chosen}
    labels: dict[str, Label] = {}
    for n, src in enumerate(chosen):
        if log and n % 50 == 0:
            log(f"  building: {n}/{len(chosen)} originals, {len(labels)} files")
        shutil.copyfile(src.path, dest / src.name)
        sp = split_of(src.unit)
        given = src.given_of is not None
        labels[src.name] = Label(
            src.origin, "copy" if given else "original", src.folder, src.unit, sp, src.group,
            source=src.given_of, kinds=list(src.given_kinds), given=given, cluster=src.origin in clusters,
        )  # fmt: skip
        if not src.copies:
            continue
        rng = random.Random(f"{seed}/{src.origin}")
        base = _open_rgb(src.path)
        in_cluster = src.origin in clusters
        for k in range(cluster_size if in_cluster else copies_per_photo):
            label = Label(src.origin, "copy", src.folder, src.unit, sp, src.group, source=src.name, cluster=in_cluster)
            label.kinds = _draw_edits(rng, CLUSTER_EDITS) if in_cluster else _draw_edits(rng)
            img, suffix, quality = _make_copy(base, rng, label.kinds, label, mild=in_cluster)
            label.quality = quality
            name = f"copy{k}_{'+'.join(label.kinds)}__{src.folder}__{src.path.stem}{suffix}"
            _save(img, dest / name, quality)
            labels[name] = label
    if log:
        log(f"  built {len(labels)} files from {len(chosen)} originals")
    return labels


def build_other_shots(dest: Path, limit: int | None = None) -> dict[str, Label]:
    """Only the other_shots photos (all 64 groups; ``limit``: that many groups per split): no two
    of them are copies, so every duplicate-tier group found there is wrong."""
    dest.mkdir(parents=True, exist_ok=True)
    wanted = set(units(None, limit))
    labels = {}
    for src in sources():
        if src.folder == "other_shots" and src.unit in wanted:
            shutil.copyfile(src.path, dest / src.name)
            labels[src.name] = Label(src.origin, "original", src.folder, src.unit, split_of(src.unit), src.group)
    return labels


def labels_to_json(labels: dict[str, Label]) -> dict[str, dict]:
    return {name: {k: v for k, v in asdict(label).items() if v not in (None, [], False)} for name, label in labels.items()}


def labels_from_json(data: dict[str, dict]) -> dict[str, Label]:
    return {name: Label(**fields) for name, fields in data.items()}


# --- the older interface (bench_duplicates_scan.py) --------------------------------------------------


def build(dest: Path, seed: int, split: str | None, copies_per_photo: int = 2) -> dict[str, str]:
    """The library (without the cluster) written into ``dest``: {path: origin}."""
    labels = build_library(dest, seed, split, copies_per_photo, cluster_size=0)
    return {str(dest / name): label.origin for name, label in labels.items()}


def true_pairs(labels: dict[str, str]) -> set[frozenset[str]]:
    by_origin: dict[str, list[str]] = {}
    for path, origin in labels.items():
        by_origin.setdefault(origin, []).append(path)
    return {frozenset(p) for paths in by_origin.values() for p in itertools.combinations(sorted(paths), 2)}

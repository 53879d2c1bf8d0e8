"""Which copy of a duplicate group to keep: ordered rules a user can read and reorder.

Members inside protected folders are always kept and never offered for removal.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime

from imgsim_desktop.core import photo_quality
from imgsim_desktop.core.companions import PAIR_RULES, RAW_EXTENSIONS
from imgsim_desktop.core.file_format import canonical, file_format
from imgsim_desktop.core.folders import really_inside_any as inside
from imgsim_desktop.storage.catalog import PhotoRow

# Camera originals and lossless formats before lossy re-encodes. A lossy WebP or an AVIF is far more
# often a web re-encode of a JPEG original than the other way round, so JPEG comes first; a lossless
# WebP ranks as a PNG (_format_rank).
DEFAULT_FORMAT_PREFERENCE = [".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2", ".heic", ".heif",
                             ".tif", ".tiff", ".png", ".jpg", ".jpeg", ".webp", ".avif", ".bmp", ".gif"]  # fmt: skip

RULES = {
    "resolution": "keep the highest resolution",
    "size": "keep the largest file",
    "oldest": "keep the oldest (date taken, else file date)",
    "newest": "keep the newest",
    "format": "keep the preferred format (RAW/HEIC over JPEG)",
    "folder": "keep the copy in a preferred folder",
    "metadata": "keep the copy with more metadata (date taken, place, camera, keywords, rating, title)",
    "sharpness": "keep the sharpest (a blurred copy goes)",
}
# Below this share of the sharpest copy's sharpness a copy counts as blurred; above it the copies
# tie: re-encoding, resizing and the resampling filter move the measure by a fifth at most (0.92-1.17
# of the original in bench/bench_keeper.py), a 2-px blur to 0.05-0.34 of it.
SHARPNESS_TIE = 0.6


# The default order, as bench/bench_keeper.py measured it on 40 real photos, each with a stripped,
# a blurred, a blurred PNG, a lossless PNG, a half-size and an original copy: this order keeps the
# original in all 40 groups; the format-first order kept the PNG re-save (no metadata) in all 40.
DEFAULT_ORDER = ["folder", "sharpness", "metadata", "format", "resolution", "size", "oldest"]
BEST = "best"  # the settings' name for "DEFAULT_ORDER as it is" (the app's keeper box)


@dataclass
class KeeperRules:
    order: list[str] = field(default_factory=lambda: list(DEFAULT_ORDER))
    preferred_formats: list[str] = field(default_factory=lambda: list(DEFAULT_FORMAT_PREFERENCE))
    preferred_folders: list[str] = field(default_factory=list)
    protected_folders: list[str] = field(default_factory=list)
    pair_rule: str = "both"  # a RAW+JPEG pair (core.companions.PAIR_RULES): keep both, the RAW only, the JPEG only

    def __post_init__(self) -> None:
        unknown = [r for r in self.order if r not in RULES]
        if unknown:
            raise ValueError(f"unknown keeper rule(s): {', '.join(unknown)}; known: {', '.join(RULES)}")
        if self.pair_rule not in PAIR_RULES:
            raise ValueError(f"unknown RAW+JPEG rule {self.pair_rule!r}; known: {', '.join(PAIR_RULES)}")


def _when(p: PhotoRow) -> float:
    """Seconds since the epoch the photo was taken: EXIF date (camera local time), else file time."""
    if p.taken_at:
        try:
            return datetime.fromisoformat(p.taken_at).timestamp()
        except ValueError:
            pass
    return p.mtime_ns / 1e9


def _key(p: PhotoRow, rules: KeeperRules, pairs: dict[str, str], sharpest: float | None = None) -> tuple:
    """Smaller is better, rule by rule in the user's order; the path breaks ties stably. Right
    after the preferred folders, a photo with the other half of its RAW+JPEG pair beside it goes
    first: it is the camera's original shot, and removing it would take its pair along.
    ``sharpest``: the group's highest sharpness (None when a member's is unknown: the rule stands aside)."""
    parts = []
    for rule in rules.order:
        if rule == "resolution":
            parts.append(-((p.width or 0) * (p.height or 0)))
        elif rule == "size":
            parts.append(-p.size)
        elif rule == "oldest":
            parts.append(_when(p))
        elif rule == "newest":
            parts.append(-_when(p))
        elif rule == "format":
            parts.append(_format_rank(p, rules.preferred_formats))
        elif rule == "folder":
            parts.append(0 if inside(p.path, rules.preferred_folders) else 1)
        elif rule == "metadata":
            parts.append(-len(photo_quality.from_text(p.tags) or ()))
        elif rule == "sharpness":
            parts.append(0 if sharpest is None or p.sharpness >= SHARPNESS_TIE * sharpest else 1)
    at = rules.order.index("folder") + 1 if "folder" in rules.order else 0
    parts.insert(at, 0 if p.path in pairs else 1)
    return (*parts, _named_like_a_copy(p.path), p.path)


# What file managers and OSes call a copy: "x copy.jpg", "x copy 2.jpg", "x (2).jpg", "Copy of x.jpg",
# "x - Copy.jpg". When every rule ties, the name without such a mark is the original the user knows.
_COPY_NAME = re.compile(r"(?i)(^copy of |[ _-]+copy( \d+)?$| - copy( \(\d+\))?$| \(\d+\)$)")


def _named_like_a_copy(path: str) -> bool:
    return bool(_COPY_NAME.search(os.path.splitext(os.path.basename(path))[0]))


def _format_rank(p: PhotoRow, preferred: list[str]) -> int:
    """Place of the photo's *content* format in the preference list: a JPEG named ".png" ranks as
    the JPEG it is, or a renamed copy would be kept over the real original by its name alone.
    Aliases (".jpeg", ".tiff") rank with their canonical extension's first place in the list; a
    lossless WebP ranks with PNG, the other lossless format of its kind."""
    prefs = [canonical(e) for e in preferred]
    found = file_format(p.path, p.size, p.mtime_ns)
    ext = ".png" if found.ext == ".webp" and found.lossless else found.ext
    return prefs.index(ext) if ext in prefs else len(prefs)


def choose(members: list[PhotoRow], rules: KeeperRules, pairs: dict[str, str] | None = None) -> tuple[PhotoRow, list[PhotoRow]]:
    """(the suggested keeper, the members suggested for removal).

    A copy in a protected folder stays whatever happens, so it is the keeper when there is one:
    the other copies are then the ones to offer for removal.

    ``pairs`` ({path: the other half of its RAW+JPEG pair}, core.companions.partners): where the
    keeper's other half is in the group too, the two are one shot, and the pair rule says what of
    it stays: both (nothing of the shot is offered), only the RAW, or only the JPEG.
    """
    pairs = pairs or {}
    protected = [p for p in members if inside(p.path, rules.protected_folders)]
    known = [p.sharpness for p in members if p.sharpness is not None]
    sharpest = max(known) if known and len(known) == len(members) else None  # older rows unmeasured: no verdict
    keeper = min(protected or members, key=lambda p: _key(p, rules, pairs, sharpest))
    keep = {keeper.path}
    partner = next((p for p in members if p.path == pairs.get(keeper.path)), None)
    if partner is not None:
        raw, jpeg = (partner, keeper) if _is_raw(partner.path) else (keeper, partner)
        if rules.pair_rule == "both":
            keep.add(partner.path)
        else:
            keeper = raw if rules.pair_rule == "raw" else jpeg
            keep = {keeper.path}
    remove = [p for p in members if p.path not in keep and not inside(p.path, rules.protected_folders)]
    return keeper, remove


def _is_raw(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in RAW_EXTENSIONS

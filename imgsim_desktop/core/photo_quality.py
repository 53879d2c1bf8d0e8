"""What makes one copy of a photo the one to keep, and one frame of a burst the best: measured
once, when the indexer has the photo decoded, so a scan or a cleanup reads no file.

- sharpness: high-frequency energy relative to the picture's contrast (variance of the
  Laplacian over the variance of the grey levels), at a fixed working size, so a blurred copy
  scores lower than its original whatever their resolutions and a contrast edit does not count
  as focus;
- clipped: the share of pixels crushed to black or blown to white (a bad exposure);
- metadata: which of date taken, place (GPS), camera, keywords, rating and title the file
  carries, from EXIF and XMP: the copy a messenger app stripped has fewer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

WORK_SIDE = 320  # the shorter side measured at (the indexer's decodes are at least this large)
CLIP_LOW, CLIP_HIGH = 3, 252
TAGS = ("date", "place", "camera", "keywords", "rating", "title")

_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_DATETIME_ORIGINAL, _DATETIME = 0x9003, 0x0132
_MAKE, _MODEL, _DESCRIPTION, _ARTIST_TITLE = 0x010F, 0x0110, 0x010E, 0x9C9B  # 0x9C9B: Windows XPTitle
_RATING, _XP_KEYWORDS, _GPS_LATITUDE = 0x4746, 0x9C9E, 2
# XMP properties that carry each kind of metadata (Adobe, Apple, Google and darktable write these).
_XMP = {
    "keywords": re.compile(rb"<dc:subject|lr:hierarchicalSubject|<digiKam:TagsList|<mediapro:CatalogSets"),
    "rating": re.compile(rb"xmp:Rating\s*=\s*[\"']?[1-5]|<xmp:Rating>\s*[1-5]"),
    "title": re.compile(rb"<dc:title|<dc:description|photoshop:Headline"),
    "place": re.compile(rb"exif:GPSLatitude|photoshop:City|Iptc4xmpCore:Location"),
    "date": re.compile(rb"photoshop:DateCreated|exif:DateTimeOriginal|xmp:CreateDate"),
}


@dataclass(frozen=True)
class Quality:
    sharpness: float
    clipped: float


def measure(image: Image.Image) -> Quality:
    grey = image.convert("L")
    scale = WORK_SIDE / min(grey.size)
    if abs(scale - 1) > 0.01:  # one size for all: a small copy enlarged is as soft as it looks
        method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BICUBIC
        grey = grey.resize((max(1, round(grey.width * scale)), max(1, round(grey.height * scale))), method)
    pixels = np.asarray(grey)
    contrast = float(pixels.var())
    laplacian = cv2.Laplacian(pixels.astype(np.float32), cv2.CV_32F, ksize=1)
    sharpness = float(laplacian.var()) / contrast if contrast > 1.0 else 0.0
    clipped = float(np.count_nonzero((pixels <= CLIP_LOW) | (pixels >= CLIP_HIGH))) / pixels.size
    return Quality(round(sharpness, 5), round(clipped, 5))


def metadata_tags(exif: Image.Exif | None, xmp: bytes | str | None = None) -> frozenset[str]:
    """Which kinds of metadata (TAGS) the file carries."""
    found: set[str] = set()
    if exif:
        sub = exif.get_ifd(_EXIF_IFD)
        if sub.get(_DATETIME_ORIGINAL) or exif.get(_DATETIME):
            found.add("date")
        if exif.get_ifd(_GPS_IFD).get(_GPS_LATITUDE):
            found.add("place")
        if str(exif.get(_MAKE) or exif.get(_MODEL) or "").strip(" \x00"):
            found.add("camera")
        if exif.get(_XP_KEYWORDS):
            found.add("keywords")
        if _positive(exif.get(_RATING)):
            found.add("rating")
        if str(exif.get(_DESCRIPTION) or exif.get(_ARTIST_TITLE) or "").strip(" \x00"):
            found.add("title")
    if xmp:
        data = xmp.encode() if isinstance(xmp, str) else bytes(xmp)
        found |= {tag for tag, pattern in _XMP.items() if pattern.search(data)}
    return frozenset(found)


def _positive(value) -> bool:
    try:
        return int(value) > 0
    except (TypeError, ValueError):
        return False


def to_text(tags: frozenset[str]) -> str:
    return ",".join(t for t in TAGS if t in tags)


def from_text(text: str | None) -> frozenset[str] | None:
    return None if text is None else frozenset(t for t in text.split(",") if t)

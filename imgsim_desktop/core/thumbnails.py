"""Thumbnails: the photo decoded through core.decode and scaled, cached on disk by storage.thumbs."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from imgsim_desktop.core.decode import open_image
from imgsim_desktop.storage.thumbs import DEFAULT_CAP_BYTES, ThumbCache


def scaled(path: str, edge: int) -> Image.Image:
    """``path`` decoded (EXIF orientation applied, JPEG draft at the smallest scale that covers
    ``edge``) and scaled to at most ``edge`` px on its long side. Raises DecodeError."""
    image, _ = open_image(path, min_side=edge)
    image.thumbnail((edge, edge), Image.Resampling.LANCZOS, reducing_gap=2.0)
    return image


def thumb_cache(folder: Path, cap_bytes: int = DEFAULT_CAP_BYTES) -> ThumbCache:
    return ThumbCache(folder, scaled, cap_bytes)

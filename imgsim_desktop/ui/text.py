"""How sizes, formats and dates read in the UI, the same on every page."""

from __future__ import annotations

import os

_FORMAT_NAMES = {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".heif": "HEIC"}


def human_size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def photo_format(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    return _FORMAT_NAMES.get(ext, ext.lstrip(".").upper() or "—")


def resolution(width: int | None, height: int | None) -> str:
    return f"{width} × {height}" if width and height else "—"


def taken(taken_at: str | None) -> str:
    return taken_at.replace("T", " ") if taken_at else "—"

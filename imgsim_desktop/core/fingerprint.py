"""A fast content fingerprint: recognises a moved, renamed or copied photo without decoding it.

Small files are hashed whole. Larger ones are sampled (the head with its EXIF block, evenly spaced
slices, the tail) plus the byte size, so a 30 MB photo costs a few hundred KiB of reads. Two
different photos of equal size agreeing on every sample does not happen in practice: camera and
editor output differs in the header (dates, maker notes) and throughout the compressed data.
"""

from __future__ import annotations

import os

from imgsim_desktop.storage.sampled_hash import sampled_digest

WHOLE_LIMIT = 1 << 20  # hash files up to 1 MiB completely
EDGE = 64 * 1024  # head and tail samples
SLICE = 16 * 1024  # evenly spaced samples in between
SLICES = 8


def fingerprint(path: str | os.PathLike, size: int | None = None) -> str:
    """Hex digest of a file's content (sampled above WHOLE_LIMIT). Raises OSError if unreadable."""
    return sampled_digest(path, EDGE, SLICE, SLICES, size, whole_limit=WHOLE_LIMIT)


def fingerprint_or_none(path: str, size: int) -> str | None:
    """The fingerprint, or None when the file vanished or cannot be read (it is then simply not matched)."""
    try:
        return fingerprint(path, size)
    except OSError:
        return None

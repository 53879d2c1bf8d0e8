"""On-disk thumbnail cache. Disposable: deleting the folder only costs regeneration time.

Two sizes are kept (256 and 512 px on the long side) so that small tiles stay cheap and large
tiles on HiDPI screens stay sharp. A key covers path, mtime and size, so an edited photo gets a
new thumbnail and an old one is never shown.

Making a thumbnail means decoding the photo, which is core's job: the cache is handed the maker
(core.thumbnails.thumb_cache wires in core.decode), so storage imports nothing above it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from imgsim_desktop.storage.disk_cache import prune_lru, room_to_cache

LEVELS = (256, 512)


def level_for(pixels: int) -> int:
    """The smallest cached size that covers ``pixels`` device pixels; beyond the cached sizes, ``pixels`` itself."""
    return next((lv for lv in LEVELS if lv >= pixels), pixels)


DEFAULT_CAP_BYTES = 2_000_000_000  # 2 GB (decimal); ~60k photos at both sizes; the oldest-used thumbnails go first


class ThumbCache:
    def __init__(self, folder: Path, make: Callable[[str, int], Image.Image], cap_bytes: int = DEFAULT_CAP_BYTES) -> None:
        """``make(path, edge)``: the photo decoded and scaled to ``edge`` px on its long side (raises on a bad file)."""
        self.folder = Path(folder)
        self.make = make
        self.cap_bytes = cap_bytes

    def prune(self) -> int:
        """Keep the cache under its cap, least recently used thumbnails first (a hit bumps the
        file's modification time). Returns the bytes freed."""
        return prune_lru(self.folder, self.cap_bytes)

    def _file(self, path: str, mtime_ns: int, level: int) -> Path:
        key = hashlib.sha1(f"{path}\0{mtime_ns}\0{level}".encode("utf-8", "surrogateescape")).hexdigest()  # names that are not UTF-8 too
        return self.folder / key[:2] / f"{key}.jpg"

    def get(self, path: str, mtime_ns: int, level: int) -> Image.Image:
        """The thumbnail (RGB, long side <= level); made and stored on a miss. Raises DecodeError.

        Sizes above the largest level (a full-screen preview) are decoded fresh and not stored:
        they are asked for one photo at a time and would fill the disk for little gain.
        """
        if level > LEVELS[-1]:
            return self.make(path, level)

        cached = self._file(path, mtime_ns, level)
        try:
            with Image.open(cached) as img:
                img.load()
                image = img.convert("RGB")
            os.utime(cached)  # recently used: pruned last
            return image
        except (OSError, ValueError):
            pass  # missing or damaged: make it again
        image = self.make(path, level)
        if not room_to_cache(self.folder):
            return image  # shown, not stored: the disk is nearly full
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f"{cached.stem}.{os.getpid()}.{id(image)}.tmp")
        image.save(tmp, "JPEG", quality=85)
        os.replace(tmp, cached)  # concurrent writers of the same key both land a whole file
        return image

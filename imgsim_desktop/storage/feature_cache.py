"""On-disk cache of per-photo verification features. Disposable: deleting the folder only costs
the next duplicates scan the time to decode those photos again.

A key covers path, size, mtime and the caller's format tag, so an edited photo, or features made
by another version of the verifier, are never found. One small file per photo (like the
thumbnail cache), written whole with an atomic rename, so readers in other threads or processes
never see half an entry.

Each entry starts with a checksum over the photo's identity (path, size, mtime, format) and the
payload: a damaged entry, or one copied or swapped onto another photo's name, fails it and is made
again, never trusted (a swapped entry once turned a stereo pair into "duplicates").
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from imgsim_desktop.paths import Layout
from imgsim_desktop.storage.disk_cache import prune_lru, room_to_cache

FEATURE_CACHE = Layout.FEATURES  # folder next to the catalog
# The indexer stores every photo's features (~55 KB on disk, with the small image the pixel check
# compares) so the first duplicates scan need not decode anything: this cap holds a 110k-photo
# library's; the least recently used go first.
DEFAULT_CAP_BYTES = 6_000_000_000  # 6 GB, decimal like every size shown
MAGIC = b"IFC1"
CHECK_BYTES = 16


def _seal(identity: bytes, data: bytes) -> bytes:
    return hashlib.blake2b(identity + b"\0" + data, digest_size=CHECK_BYTES).digest()


class FeatureCache:
    def __init__(self, folder: str | os.PathLike, cap_bytes: int = DEFAULT_CAP_BYTES) -> None:
        self.folder = Path(folder)
        self.cap_bytes = cap_bytes

    @classmethod
    def beside(cls, catalog_path: str | os.PathLike) -> FeatureCache:
        return cls(Path(catalog_path).parent / FEATURE_CACHE)

    def prune(self) -> int:
        """Keep the cache under its cap (a hit bumps an entry's time). Returns the bytes freed."""
        return prune_lru(self.folder, self.cap_bytes)

    @staticmethod
    def _identity(path: str, size: int, mtime_ns: int, fmt: bytes) -> bytes:
        return b"\0".join((os.fsencode(path), str(size).encode(), str(mtime_ns).encode(), fmt))

    def _file(self, path: str, size: int, mtime_ns: int, fmt: bytes) -> Path:
        key = hashlib.sha1(self._identity(path, size, mtime_ns, fmt)).hexdigest()
        return self.folder / key[:2] / f"{key}.bin"

    def has(self, path: str, size: int, mtime_ns: int, fmt: bytes) -> bool:
        return self._file(path, size, mtime_ns, fmt).exists()

    def get(self, path: str, size: int, mtime_ns: int, fmt: bytes) -> bytes | None:
        entry = self._file(path, size, mtime_ns, fmt)
        try:
            raw = entry.read_bytes()
        except OSError:
            return None
        head = len(MAGIC) + CHECK_BYTES
        data = raw[head:]
        if raw[: len(MAGIC)] != MAGIC or raw[len(MAGIC) : head] != _seal(self._identity(path, size, mtime_ns, fmt), data):
            with contextlib.suppress(OSError):
                entry.unlink()  # damaged or not this photo's: made again by the caller
            return None
        with contextlib.suppress(OSError):
            os.utime(entry)  # recently used: pruned last
        return data

    def put(self, path: str, size: int, mtime_ns: int, fmt: bytes, data: bytes) -> None:
        """Store an entry; a full or read-only disk only means the entry is not cached."""
        if not room_to_cache(self.folder):
            return  # the disk is nearly full: the catalog needs the space more
        target = self._file(path, size, mtime_ns, fmt)
        tmp = target.with_name(f"{target.stem}.{os.getpid()}.{id(data)}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(MAGIC + _seal(self._identity(path, size, mtime_ns, fmt), data) + data)
            os.replace(tmp, target)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)

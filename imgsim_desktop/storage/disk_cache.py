"""Keeping a disposable on-disk cache (thumbnails, verification features) under a size cap.

Both caches keep one file per entry in two-hex-digit subfolders, bump an entry's modification
time when it is used, and write through a ``.tmp`` file renamed into place.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

STRAY_AFTER_S = 3600  # a temp file this old is a crash's leftover, not a write in progress
# Caches yield before the catalog: below this much free space they stop writing, so the disk's
# last space goes to the catalog and the index, which are not disposable.
RESERVE_BYTES = 1_000_000_000  # decimal, as every size the user reads
_ROOM_CHECK_S = 5.0
_room: dict[str, tuple[float, bool]] = {}


def room_to_cache(folder: Path) -> bool:
    """Whether a cache may write one more entry in ``folder`` (asked at most every few seconds)."""
    key = str(folder)
    now = time.monotonic()
    known = _room.get(key)
    if known and now - known[0] < _ROOM_CHECK_S:
        return known[1]
    try:
        probe = Path(folder)
        while not probe.exists() and probe.parent != probe:
            probe = probe.parent
        st = os.statvfs(probe) if hasattr(os, "statvfs") else None
        free = st.f_bavail * st.f_frsize if st else None
        ok = free is None or free > RESERVE_BYTES
    except OSError:
        ok = True
    _room[key] = (now, ok)
    return ok


def folder_bytes(folder: Path) -> int:
    """What a cache folder holds on disk (for the message that says what can be deleted)."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def prune_lru(folder: Path, cap_bytes: int) -> int:
    """Delete crash leftovers, then the least recently used entries until the cache fits its cap.
    Returns the bytes freed. Lists the whole cache: call it off the GUI thread."""
    entries = []
    now = time.time()
    for sub in Path(folder).glob("??"):
        try:
            with os.scandir(sub) as it:
                for e in it:
                    try:
                        st = e.stat()
                    except OSError:
                        continue  # renamed or removed by a writer meanwhile
                    stray = e.name.endswith(".tmp") and now - st.st_mtime > STRAY_AFTER_S
                    entries.append((stray, st.st_mtime, st.st_size, e.path))
        except OSError:
            continue
    total = sum(size for _, _, size, _ in entries)
    freed = 0
    for stray, _, size, path in sorted(entries, key=lambda x: (not x[0], x[1])):  # strays, then oldest
        if not stray and total - freed <= cap_bytes:
            break
        try:
            os.remove(path)
            freed += size
        except OSError:
            pass  # in use (Windows) or gone already: the next prune tries again
    return freed

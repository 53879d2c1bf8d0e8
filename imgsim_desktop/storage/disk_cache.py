"""Keeping a disposable on-disk cache (thumbnails, verification features) under a size cap.

Both caches keep one file per entry in two-hex-digit subfolders, bump an entry's modification
time when it is used, and write through a ``.tmp`` file renamed into place.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

STRAY_AFTER_S = 3600  # a temp file this old is a crash's leftover, not a write in progress


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

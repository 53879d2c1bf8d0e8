"""Is this path inside that folder? Two questions with two answers.

``lexically_inside`` compares paths as the catalog stores them (absolute, as the user gave them):
right for finding catalogue rows under a root. ``really_inside`` asks the file system: symlinks and
``..`` resolved, and letter case ignored where the folder's file system ignores it. Anything that
decides what may be touched (protected folders, where cleanup may move photos) must use the second:
a library indexed through a symlink and protected by its real path is the same folder.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable

from imgsim_desktop.paths import lexically_inside  # the lexical answer lives with the paths, where the catalog can use it too

__all__ = ["deepest_lexical", "lexically_inside", "real", "really_inside"]




def real(path: str) -> str:
    """The path the file system means: absolute, symlinks and '..' resolved (also for parts that do not exist yet)."""
    return os.path.normcase(os.path.realpath(os.path.expanduser(os.fspath(path))))


@functools.lru_cache(maxsize=256)
def _ignores_case(folder: str) -> bool:
    """Does the file system holding ``folder`` (a real path) treat names case-blind? Ask it: the
    same folder with its letters' case swapped is the same directory only on such a file system."""
    swapped = folder.swapcase()
    if swapped == folder:
        return False
    try:
        return os.path.samefile(folder, swapped)
    except OSError:
        return False


def _existing_part(path: str) -> str:
    while path and not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def really_inside(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or lies under it on the file system (see the module doc)."""
    p, f = real(path), real(folder)
    if _ignores_case(_existing_part(f)):
        p, f = p.casefold(), f.casefold()
    return p == f or p.startswith(f.rstrip(os.sep) + os.sep)


def really_inside_any(path: str, folders: Iterable[str]) -> bool:
    return any(really_inside(path, f) for f in folders)


def deepest_lexical(path: str, folders: Iterable[str]) -> str | None:
    """The deepest of ``folders`` that ``path`` lies in (lexically), or None."""
    holding = [f for f in folders if lexically_inside(path, f)]
    return max(holding, key=len) if holding else None

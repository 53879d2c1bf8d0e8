"""Turn paths that file-system events touched into work: files to index and catalogued paths gone.

Events only say *where* to look; what changed is decided here from the file system and the
catalog (stat only), so a lost, duplicated or reordered event cannot leave a wrong catalog:
the path is simply looked at as it is now.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from imgsim_desktop.core.folders import deepest_lexical
from imgsim_desktop.core.scanner import FileStat, ScanResult, is_candidate, iter_images
from imgsim_desktop.paths import lexically_inside
from imgsim_desktop.storage.catalog import Catalog


@dataclass
class Work:
    todo: list[FileStat] = field(default_factory=list)  # new or changed image files
    gone: list[str] = field(default_factory=list)  # catalogued paths that no longer exist
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) for unreadable folders


def root_of(path: str, roots: list[str]) -> str | None:
    """The library folder ``path`` lies in (the deepest, if folders nest), or None."""
    return deepest_lexical(path, roots)


def _ignored(path: str, root: str, excluded: list[str]) -> bool:
    """Hidden entries (editors' temp files, .thumbnails) and excluded folders, as the scanner skips them."""
    rel = os.path.relpath(path, root)
    if rel != "." and any(part.startswith(".") for part in rel.split(os.sep)):
        return True
    return root_of(path, excluded) is not None


def _out_of_sight(path: str, unlisted: list[str]) -> bool:
    return any(lexically_inside(path, folder) for folder in unlisted)


def resolve(catalog: Catalog, model: str, paths: list[str], roots: list[str]) -> Work:
    """What to do about ``paths`` (files or folders, existing or not) inside the library ``roots``.

    Nothing is removed below a root that is itself missing: an unmounted drive is not an empty one.
    """
    excluded = catalog.excluded()
    work = Work()
    found: dict[str, FileStat] = {}
    missing: list[str] = []
    for path in paths:
        root = root_of(path, roots)
        if root is None or _ignored(path, root, excluded) or not os.path.isdir(root):
            continue
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            missing.append(path)
            continue
        except OSError as exc:  # not readable (a folder above it lost permission): not gone either
            work.problems.append((path, f"cannot read: {exc.strerror or exc}"))
            continue
        if stat.S_ISDIR(st.st_mode):
            # A folder appeared, moved in, or changed: its files are compared with what the catalog holds.
            scanned = ScanResult()
            inside = {f.path: f for f in iter_images(path, scanned, frozenset(excluded))}
            found.update(inside)
            work.problems += scanned.problems
            work.gone += [p for p in catalog.paths_under(path) if p not in inside and not _out_of_sight(p, scanned.unlisted) and not os.path.lexists(p)]
        elif stat.S_ISREG(st.st_mode) and is_candidate(path):
            found[path] = FileStat(path, st.st_size, st.st_mtime_ns)
    if missing:
        known = catalog.file_states(model, missing)
        work.gone += list(known)
        for path in missing:
            if path not in known:  # maybe a folder that was deleted or moved away
                work.gone += catalog.paths_under(path)
    states = catalog.file_states(model, found)
    for f in found.values():
        state = states.get(f.path)
        if state is not None:
            row, embedded = state
            if (row.size, row.mtime_ns) == (f.size, f.mtime_ns) and (embedded or row.error is not None):
                continue  # unchanged and done (a stored failure is retried only when the file changes)
        work.todo.append(f)
    work.gone = sorted(set(work.gone))
    return work

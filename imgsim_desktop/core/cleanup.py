"""Safe cleanup: photos go to the system trash or to a folder the user chose, never unlinked.

Every step is logged in the catalog (what, from, to, when); moves can be undone. A file that
cannot be trashed (no trash on that volume, permissions) is reported and left exactly where it is.
Protected folders are refused here too, whatever the caller selected.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from send2trash import send2trash
from send2trash.exceptions import TrashPermissionError

from imgsim_desktop.storage.catalog import Catalog


@dataclass
class CleanupResult:
    batch: str
    done: list[dict] = field(default_factory=list)  # {path, action, target}
    failed: list[dict] = field(default_factory=list)  # {path, error}: left untouched
    refused: list[str] = field(default_factory=list)  # inside a protected folder

    @property
    def bytes_freed(self) -> int:
        return sum(d.get("size") or 0 for d in self.done)


def inside(path: str, folders: list[str]) -> bool:
    path = os.path.abspath(path)
    return any(path == f or path.startswith(f.rstrip(os.sep) + os.sep) for f in map(os.path.abspath, folders))


def _free_name(target: Path) -> Path:
    """target, or target with ' (2)', ' (3)'... so nothing already in the folder is overwritten."""
    if not target.exists():
        return target
    n = 2
    while (candidate := target.with_name(f"{target.stem} ({n}){target.suffix}")).exists():
        n += 1
    return candidate


def _relocate(source: Path, target: Path) -> Path:
    """Move one file to an exact new path that does not exist yet."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(source, target)  # same volume: atomic, the photo exists under one name at all times
    except OSError:
        # Another volume: copy, check the copy, then remove the original (shutil.move would not check).
        shutil.copy2(source, target)
        if target.stat().st_size != source.stat().st_size:
            target.unlink()
            raise OSError(f"copy to {target} came out incomplete") from None
        source.unlink()
    return target


def _move(source: Path, folder: Path) -> Path:
    return _relocate(source, _free_name(folder / source.name))


def apply(catalog: Catalog, paths: list[str], mode: str, move_to: str | None = None, protected: list[str] | None = None) -> CleanupResult:
    """Trash (mode='trash') or move (mode='move', to ``move_to``) the given photos."""
    if mode not in ("trash", "move"):
        raise ValueError(f"unknown cleanup mode {mode!r}")
    if mode == "move" and not move_to:
        raise ValueError("moving needs a destination folder")
    result = CleanupResult(batch=time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6])
    for path in paths:
        path = os.path.abspath(path)
        if protected and inside(path, protected):
            result.refused.append(path)
            continue
        try:
            size = os.stat(path).st_size
            if mode == "trash":
                send2trash(path)
                target = None
            else:
                target = str(_move(Path(path), Path(move_to)))
        except (OSError, TrashPermissionError) as exc:
            result.failed.append({"path": path, "error": _reason(exc, mode)})
            continue
        catalog.log_action(result.batch, mode, path, target, size)
        catalog.remove_files([path])
        result.done.append({"path": path, "action": mode, "target": target, "size": size})
    return result


def _reason(exc: BaseException, mode: str) -> str:
    if isinstance(exc, TrashPermissionError) or mode == "trash":
        return f"cannot move to the trash here ({exc}); the file was left in place"
    return f"cannot move ({getattr(exc, 'strerror', None) or exc}); the file was left in place"


def undo(catalog: Catalog, batch: str) -> list[dict]:
    """Move the photos of a batch back where they were. Trashed files are restored from the
    system trash by the user (the trash keeps their original location)."""
    restored = []
    for action in catalog.actions(batch):
        if action["action"] != "move" or action["undone_at"]:
            continue
        source, target = Path(action["source"]), Path(action["target"])
        if source.exists():
            restored.append({"path": str(source), "error": "a file with that name is back already; left both alone"})
            continue
        if not target.exists():
            restored.append({"path": str(source), "error": f"{target} is gone; nothing to move back"})
            continue
        _relocate(target, source)
        catalog.mark_undone(action["id"])
        catalog.log_action(batch, "restore", str(target), str(source), action["size"])
        restored.append({"path": str(source), "error": None})
    return restored

"""Safe cleanup: photos go to the system trash or to a folder the user chose, never unlinked.

A cleanup is a journaled transaction. Each step is logged in the catalog as 'pending' before the
file is touched (with the name it will get, and the source's size, date and inode so it can be
recognised later), the target name is logged again before every new try, and the step is closed
as 'done' (or 'failed') after. A process killed at any point leaves pending steps that
``recover`` (run before every cleanup and undo, and at the start of the CLI and the app) completes
or rolls back from what is on the disk, so every file that left its place is in the history and
Undo can bring it back. Nothing is ever replaced (core.safe_move), a copy across volumes is
verified before its original is deleted, and each file is checked against what the scan saw just
before it goes (core.cleanup_plan).

A photo's companions (core.companions: XMP and RawTherapee sidecars, Apple's .AAE, a Live
Photo's video, the RAW of a RAW+JPEG pair) go with it: each is a step of its own, logged before
the photo moves and marked as the photo's (``companion_kind``), so recovery finishes a companion
whose photo had left and leaves it beside a photo that stayed, and Undo brings it back with its
photo. In a move the companions take the photo's new name ('IMG_1 (2).jpg', 'IMG_1 (2).xmp'); a
companion that cannot follow puts the photo (and what had followed it) back.

A trashed file's place in the Trash (core.trash_info: the freedesktop Trash's files/ and
info/*.trashinfo on Linux) is read back right after it is trashed and journaled as the step's
target, so Undo restores it from there, with its companions; Undo refuses, per file, one that is no
longer in the Trash or changed there. On macOS and Windows the place cannot be read back: Undo says
where the files are.

With ``keep_metadata``, what the removed copies of a photo carry and its keeper lacks (date taken,
GPS, keywords, rating, title) is first written into the keeper's XMP sidecar (core.xmp_sidecar),
a 'metadata' step that journals the sidecar's previous bytes, so Undo puts them back (or removes a
sidecar it created); a copy whose metadata cannot be kept stays where it is.

The catalog rows of the photos that leave are parked (catalog.park), not deleted: a photo that
comes back unchanged (Undo) is relinked by its content, not embedded again (core.relink).

One cleanup at a time per library: a lock file in the data folder, which the OS releases when the
holder dies, so recovery can tell a crashed cleanup from one still running.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout
from send2trash import send2trash
from send2trash.exceptions import TrashPermissionError

from imgsim_desktop.core import companions, trash_info, xmp_sidecar
from imgsim_desktop.core.cleanup_plan import COPY_TIERS, Removal, reason_to_skip
from imgsim_desktop.core.fingerprint import fingerprint_or_none
from imgsim_desktop.core.folders import really_inside, really_inside_any
from imgsim_desktop.core.safe_move import NotVerified, copy_verified, fsync_folder, remove_quietly, rename_noreplace
from imgsim_desktop.storage.catalog import Catalog

LOCK_NAME = "cleanup.lock"
LOCK_WAIT_S = 10
PARK_DAYS = 365  # a photo taken away longer ago than this is embedded again if it ever comes back


class CleanupRefused(ValueError):
    """The whole cleanup cannot start (a destination inside the library, another cleanup running)."""


@dataclass
class CleanupResult:
    batch: str
    done: list[dict] = field(default_factory=list)  # {path, action, target, size}; a companion also {companion: kind, of: photo}
    failed: list[dict] = field(default_factory=list)  # {path, error}: left untouched
    refused: list[str] = field(default_factory=list)  # inside a protected folder
    skipped: list[dict] = field(default_factory=list)  # {path, reason}: changed since the scan, keeper gone
    stopped: bool = False  # the user stopped it (Ctrl+C, Cancel) or the destination filled up
    recovered: list[str] = field(default_factory=list)  # what recovery did first about an interrupted cleanup
    metadata: list[dict] = field(default_factory=list)  # {keeper, sidecar, kinds, sources, created}: metadata of removed copies kept

    @property
    def bytes_freed(self) -> int:
        return sum(d.get("size") or 0 for d in self.done)

    @property
    def photos(self) -> list[dict]:
        """What was done to the chosen photos themselves (``done`` less their companions)."""
        return [d for d in self.done if not d.get("companion")]

    @property
    def companion_kinds(self) -> list[str]:
        return [d["companion"] for d in self.done if d.get("companion")]


def inside(path: str, folders: list[str]) -> bool:
    """``path`` lies in one of ``folders`` on the file system (symlinks, '..', letter case resolved)."""
    return really_inside_any(path, folders)


class _Failed(Exception):
    """One file's step did not happen; the message says why."""


def lock_for(catalog: Catalog, wait: float = LOCK_WAIT_S) -> FileLock:
    return FileLock(str(Path(catalog.path).with_name(LOCK_NAME)), timeout=wait)


def check_destination(move_to: str, library_roots: list[str], protected: list[str]) -> str | None:
    """Why photos must not be moved into ``move_to``, or None."""
    if os.path.exists(move_to) and not os.path.isdir(move_to):
        return f"{move_to} is a file, not a folder"
    for root in library_roots:
        if really_inside(move_to, root):
            return f"{move_to} is inside the library folder {root}: the moved photos would be indexed again and come back as duplicates"
    for folder in protected:
        if really_inside(move_to, folder):
            return f"{move_to} is inside the protected folder {folder}"
    return None


def apply(
    catalog: Catalog,
    removals: list[Removal],
    mode: str,
    move_to: str | None = None,
    protected: list[str] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    pair_rule: str = "both",
    keep_metadata: bool = False,
) -> CleanupResult:
    """Trash (mode='trash') or move (mode='move', into ``move_to``) what ``removals`` name, each
    with its companions (``pair_rule``: core.companions.PAIR_RULES, what a RAW+JPEG pair keeps).
    ``keep_metadata``: the removed copies' metadata that their keeper lacks goes into its XMP sidecar first."""
    if pair_rule not in companions.PAIR_RULES:
        raise ValueError(f"unknown pair rule {pair_rule!r}")
    if mode not in ("trash", "move"):
        raise ValueError(f"unknown cleanup mode {mode!r}")
    if mode == "move" and not move_to:
        raise ValueError("moving needs a destination folder")
    protected = list(protected or [])
    if mode == "move":
        move_to = os.path.abspath(move_to)
        problem = check_destination(move_to, catalog.roots(), protected)
        if problem:
            raise CleanupRefused(problem)
    result = CleanupResult(batch=time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6])
    with _locked(catalog):
        result.recovered = _recover_locked(catalog)
        if mode == "move":
            os.makedirs(move_to, exist_ok=True)
        names = _Names()
        try:
            _apply_each(catalog, removals, mode, move_to, protected, should_stop, result,
                        _Unit(names, companions.library_folders(catalog), pair_rule, keep_metadata))  # fmt: skip
        finally:
            _park(catalog, result.batch)  # one transaction; a crash before it is caught by the next scan
    if result.done:
        catalog.backup_if_due(every_s=0)  # the history just grew: the backup keeps it
    return result


@dataclass
class _Unit:
    """What one cleanup shares between its photos: free names at the destination, the folders'
    listings, the files gone so far (a sidecar shared by two photos goes with the last), the pair rule."""

    names: _Names
    folders: companions.Folders
    pair_rule: str
    keep_metadata: bool = False
    gone: set[str] = field(default_factory=set)
    metadata_failed: dict[tuple, str] = field(default_factory=dict)  # a group's keepers -> why its copies' metadata could not be kept


def _apply_each(catalog, removals, mode, move_to, protected, should_stop, result: CleanupResult, unit: _Unit) -> None:
    later = {os.path.abspath(r.path) for r in removals}
    if unit.keep_metadata:
        _keep_metadata(catalog, removals, protected, result, unit)
    for removal in removals:
        path = os.path.abspath(removal.path)
        later.discard(path)
        if should_stop():
            result.stopped = True
            break
        if protected and inside(path, protected):
            result.refused.append(path)
            continue
        reason = unit.metadata_failed.get(removal.keepers) or reason_to_skip(removal)
        if reason:
            result.skipped.append({"path": path, "reason": reason})
            continue
        gone = set(unit.gone)
        along = companions.travelling(path, unit.folders.companions_of(path), gone, later, unit.pair_rule)
        try:
            done = _trash(catalog, result.batch, path, along, result) if mode == "trash" else _move(catalog, result.batch, path, along, move_to, unit.names)
        except _Failed as exc:
            result.failed.append({"path": path, "error": str(exc)})
            if getattr(exc, "full", False):
                result.stopped = True  # the destination is full: every later copy would fail the same way
                break
            continue
        for d in done:
            unit.gone.add(d["path"])
            unit.folders.gone(d["path"])
            result.done.append({"path": d["path"], "action": mode} | d)


def _keep_metadata(catalog: Catalog, removals: list[Removal], protected: list[str], result: CleanupResult, unit: _Unit) -> None:
    """Before any copy goes: for each group of copies, write what the copies to remove carry and a
    keeper lacks into that keeper's XMP sidecar. Where that fails, the group's copies stay (said)."""
    groups: dict[tuple, list[str]] = {}
    for removal in removals:
        if removal.tier in COPY_TIERS and removal.keepers and not (protected and inside(removal.path, protected)) and os.path.exists(removal.path):
            groups.setdefault(removal.keepers, []).append(os.path.abspath(removal.path))
    for keepers, copies in groups.items():
        copy_facts = [xmp_sidecar.facts_of(c, _sidecars(unit, c)) for c in copies]
        if not any(copy_facts):
            continue
        for keeper in (os.path.abspath(k.path) for k in keepers):
            if not os.path.exists(keeper) or keeper in copies:
                continue
            existing = _sidecars(unit, keeper)
            add = xmp_sidecar.lacking(xmp_sidecar.facts_of(keeper, existing), copy_facts)
            if not add:
                continue
            sidecar = xmp_sidecar.sidecar_for(keeper, existing, list(unit.folders.names(os.path.dirname(keeper)).values()))
            try:
                created = _write_sidecar(catalog, result.batch, sidecar, add, keeper)
            except _Failed as exc:
                unit.metadata_failed[keepers] = f"the metadata it carries could not be kept in {sidecar} ({exc}); it was left in place"
                break
            sources = [c for c, f in zip(copies, copy_facts, strict=True) if f]
            result.metadata.append({"keeper": keeper, "sidecar": sidecar, "kinds": add.kinds(), "sources": sources, "created": created})


def _sidecars(unit: _Unit, photo: str) -> list[str]:
    return [c.path for c in unit.folders.companions_of(photo) if c.kind == "xmp"]


def _write_sidecar(catalog: Catalog, batch: str, sidecar: str, add: xmp_sidecar.Facts, keeper: str) -> bool:
    """Merge ``add`` into ``sidecar`` (created when there is none) as a journaled 'metadata' step;
    True when it was created. Raises _Failed (nothing written) with the reason."""
    try:
        with open(sidecar, "rb") as fh:
            old = fh.read()
    except FileNotFoundError:
        old = None
    except OSError as exc:
        raise _Failed(f"it cannot be read: {exc.strerror or exc}") from None
    try:
        new = xmp_sidecar.merged_sidecar(old, add)
    except xmp_sidecar.NotXmp as exc:
        raise _Failed(f"the existing sidecar is not readable XMP: {exc}; left as it is") from None
    note = f"kept {', '.join(add.kinds())} of removed copies for {os.path.basename(keeper)}"
    step = catalog.begin_step(batch, "metadata", sidecar, None, len(new), note=note, previous=old, written=xmp_sidecar.digest(new))
    _replace_bytes(catalog, step, sidecar, old, new)
    return old is None


def _replace_bytes(catalog: Catalog, step: int, path: str, old: bytes | None, new: bytes | None) -> None:
    """Carry out a logged sidecar step: ``path`` holding ``old`` (None: absent) now holds ``new``
    (None: removed), through a synced temporary file. Closes the step; raises _Failed when nothing changed."""
    folder = os.path.dirname(path)
    temp = os.path.join(folder, f".{os.path.basename(path)}.imgsim-{step}.tmp")
    try:
        if _bytes_at(path) != old:
            raise _Failed(f"{path} changed a moment ago")
        if new is None:
            os.unlink(path)
        else:
            catalog.update_step(step, temp=temp)
            with open(temp, "xb") as fh:
                fh.write(new)
                fh.flush()
                os.fsync(fh.fileno())
            if old is None:
                rename_noreplace(temp, path)  # a file that appeared under that name meanwhile is never replaced
            else:
                os.replace(temp, path)
        fsync_folder(folder)
    except (_Failed, OSError) as exc:
        remove_quietly(temp)
        note = str(exc) if isinstance(exc, _Failed) else f"cannot write {path} ({exc.strerror or exc})"
        catalog.finish_step(step, "failed", note)
        raise _Failed(note) from None
    catalog.finish_step(step, "done")


def _bytes_at(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def _undo_metadata(catalog: Catalog, batch: str, action: dict) -> str | None:
    """Take the kept metadata out again: the sidecar's previous bytes back, or the sidecar removed
    when the cleanup created it. None when done, else why not."""
    path = action["source"]
    try:
        now = _bytes_at(path)
    except OSError as exc:
        return f"{path} cannot be read ({exc.strerror or exc}); left as it is"
    if xmp_sidecar.digest(now) != action["written"]:
        return f"{path} changed since the cleanup wrote the kept metadata into it; left as it is"
    before = action["previous"]
    step = catalog.begin_step(batch, "metadata-undo", path, None, len(before) if before is not None else None, undoes=action["id"],
                              previous=now, written=xmp_sidecar.digest(before))  # fmt: skip
    try:
        _replace_bytes(catalog, step, path, now, before)
    except _Failed as exc:
        return str(exc)
    return None


def undo(catalog: Catalog, batch: str) -> list[dict]:
    """Move the photos of a batch back where they were, from the folder they were moved to or from
    the Trash, each with the companions that went with it ({path, error, companion: kind or None}).
    A file no longer in the Trash (emptied) or changed there is left alone, said in its error."""
    restored = []
    back: dict[int, bool] = {}  # move or trash step -> its file is home again
    lost: list[int] = []  # steps whose file cannot come back as it was: their parked rows go
    with _locked(catalog):
        _recover_locked(catalog)
        for action in catalog.actions(batch):
            if action["action"] == "metadata" and not action["undone_at"]:
                restored.append({"path": action["source"], "error": _undo_metadata(catalog, batch, action), "companion": None, "metadata": True})
                continue
            if action["action"] not in ("move", "trash") or action["undone_at"]:
                continue
            home, moved, trashed = action["source"], action["target"], action["action"] == "trash"
            kind, photo_step = companion_kind(action) or (None, None)
            entry = {"path": home, "error": None, "companion": kind}
            restored.append(entry)
            if photo_step is not None and not back.get(photo_step, True):
                where = "in the Trash" if trashed else f"beside its photo at {os.path.dirname(moved)}"
                entry["error"] = f"stays {where}: its photo could not be brought back"
                continue
            back[action["id"]] = False
            if trashed and not moved:
                entry["error"] = f"cannot be brought back by imgsim: {trash_info.elsewhere_note()}"
                continue
            if os.path.lexists(home):
                entry["error"] = "a file with that name is back already; left both alone"
                continue
            if not os.path.exists(moved):
                entry["error"] = (f"is no longer in the Trash ({moved}: the Trash was emptied, or the file was restored or deleted from there); nothing to bring back"
                                  if trashed else f"{moved} is gone; nothing to move back")  # fmt: skip
                lost.append(action["id"])
                continue
            st = os.lstat(moved)
            if st.st_size != action["size"] or (action["mtime_ns"] and st.st_mtime_ns != action["mtime_ns"]):
                where = "in the Trash" if trashed else "moved there"
                entry["error"] = f"{moved} is not the photo that was {where} (it changed since); left alone"
                lost.append(action["id"])
                continue
            os.makedirs(os.path.dirname(home), exist_ok=True)
            try:
                _relocate(catalog, batch, "restore", moved, home, None, undoes=action["id"])
            except _Failed as exc:
                entry["error"] = str(exc)
                continue
            if trashed:
                trash_info.forget(moved)  # its entry in the Trash goes with it
            back[action["id"]] = True
    if lost:
        catalog.drop_parked(lost)
    return restored


def _park(catalog: Catalog, batch: str) -> None:
    """Park the catalog rows of the files this batch took away (catalog.park), each with its step
    and, for a row without one, its fingerprint read where the file is now; old parked rows go."""
    steps = [a for a in catalog.actions(batch) if a["action"] in ("move", "trash") and not a["undone_at"]]
    known = catalog.fingerprints([a["source"] for a in steps])
    items = []
    for a in steps:
        fp = None
        if a["source"] not in known and a["target"] and catalog.file_by_path(a["source"]) is not None:
            fp = fingerprint_or_none(a["target"], a["size"])
        items.append((a["source"], a["id"], fp))
    catalog.park(items)
    catalog.drop_parked(older_than=time.time() - PARK_DAYS * 86400)


def companion_kind(step: dict) -> tuple[str, int] | None:
    """(kind, the photo's step) for a step that moved or trashed a companion of a photo; else None."""
    m = _COMPANION_NOTE.match(step.get("note") or "")
    return (m["kind"], int(m["step"])) if m else None


_COMPANION_NOTE = re.compile(r"^companion (?P<kind>\w+) of step (?P<step>\d+)$")


def _companion_note(kind: str, photo_step: int) -> str:
    return f"companion {kind} of step {photo_step}"


def recover(catalog: Catalog) -> list[str]:
    """Finish or roll back the steps a killed cleanup left pending; one sentence per step.
    Does nothing while another process holds the cleanup lock (it is still working), and takes
    no lock when nothing is pending: a library on a read-only disk can still be searched."""
    if not catalog.pending_steps():
        return []
    try:
        with lock_for(catalog, wait=0):
            return _recover_locked(catalog)
    except Timeout:
        return []


# --- one step ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(catalog: Catalog):
    lock = lock_for(catalog)
    try:
        lock.acquire()
    except Timeout:
        raise CleanupRefused("another cleanup or undo is running in this library; try again when it has finished") from None
    try:
        yield
    finally:
        lock.release()


def _stat(path: str) -> os.stat_result:
    try:
        return os.stat(path)
    except OSError as exc:
        raise _Failed(f"cannot be read ({exc.strerror or exc}); nothing was done") from None


def _trash(catalog: Catalog, batch: str, path: str, along: list[companions.Companion], result: CleanupResult) -> list[dict]:
    st = _stat(path)
    step = catalog.begin_step(batch, "trash", path, None, st.st_size, st.st_mtime_ns, st.st_ino)
    followers = _begin_companions(catalog, batch, "trash", step, along, lambda c: None)
    started = time.time()
    try:
        send2trash(path)
    except (OSError, TrashPermissionError) as exc:
        note = f"cannot move to the trash here ({exc}); the file was left in place"
        catalog.finish_step(step, "failed", note)
        for _, cstep, _ in followers:
            catalog.finish_step(cstep, "abandoned")
        raise _Failed(note) from None
    where = _in_trash(path, st, started)
    catalog.finish_step(step, "done", target=where)
    done = [{"path": path, "target": where, "size": st.st_size}]
    for c, cstep, cst in followers:
        started = time.time()
        try:
            send2trash(c.path)
        except (OSError, TrashPermissionError) as exc:  # rare: its photo's folder has a trash; it stays, said
            catalog.finish_step(cstep, "failed", f"cannot move to the trash ({exc})")
            result.failed.append({"path": c.path, "error": f"its photo {os.path.basename(path)} went to the Trash, but it could not follow ({exc}); it is still where it was"})
            continue
        cwhere = _in_trash(c.path, cst, started)
        catalog.finish_step(cstep, "done", target=cwhere)
        done.append({"path": c.path, "target": cwhere, "size": cst.st_size, "companion": c.kind, "of": path})
    return done


def _in_trash(path: str, st: os.stat_result, since: float) -> str | None:
    """Where ``path`` (as ``st`` saw it), just trashed, is in the Trash; None where that cannot be read back."""
    found = trash_info.find(path, st.st_size, st.st_mtime_ns, st.st_ino, since)
    return found.file if found else None


def _begin_companions(catalog: Catalog, batch: str, action: str, photo_step: int, along, target_of) -> list[tuple]:
    """Log each companion's step (pending, marked as ``photo_step``'s) before the photo moves, so a
    crash in between leaves recovery what to finish. A companion gone meanwhile is left out."""
    followers = []
    for c in along:
        try:
            cst = os.stat(c.path)
        except OSError:
            continue
        cstep = catalog.begin_step(batch, action, c.path, target_of(c), cst.st_size, cst.st_mtime_ns, cst.st_ino, note=_companion_note(c.kind, photo_step))
        followers.append((c, cstep, cst))
    return followers


def _move(catalog: Catalog, batch: str, path: str, along: list[companions.Companion], folder: str, names: _Names) -> list[dict]:
    target = os.path.join(folder, os.path.basename(path))
    if along:  # one free stem for the photo and the companions named after it: 'IMG_1 (2).jpg', 'IMG_1 (2).xmp'
        target = _free_for_all(target, [c.path for c in along])
    st = _stat(path)
    name = names.first_free(target)
    step = catalog.begin_step(batch, "move", path, name, st.st_size, st.st_mtime_ns, st.st_ino)
    followers = _begin_companions(catalog, batch, "move", step, along, lambda c: _renamed(c.path, path, name))
    try:
        final = _carry(catalog, step, path, name, names, st)
    except _Failed:
        for _, cstep, _ in followers:
            catalog.finish_step(cstep, "abandoned")
        raise
    done = [{"path": path, "target": final, "size": st.st_size, "step": step}]
    for c, cstep, cst in followers:
        name = _renamed(c.path, path, final)
        catalog.update_step(cstep, target=name)
        try:
            cfinal = _carry(catalog, cstep, c.path, name, names, cst)
        except _Failed as exc:
            problem = _put_back(catalog, batch, done)
            failure = _Failed(f"its {companions.noun(c.kind)} {os.path.basename(c.path)} could not go with it ({exc}); " + (problem or "the photo and its companions were put back where they were"))
            failure.full = getattr(exc, "full", False)
            raise failure from None
        done.append({"path": c.path, "target": cfinal, "size": cst.st_size, "companion": c.kind, "of": path, "step": cstep})
    return [{k: v for k, v in d.items() if k != "step"} for d in done]


def _put_back(catalog: Catalog, batch: str, done: list[dict]) -> str | None:
    """Undo the moves of one photo and its companions (a companion could not follow); None when all are back."""
    problems = []
    for d in reversed(done):
        try:
            _relocate(catalog, batch, "restore", d["target"], d["path"], None, undoes=d["step"])
        except _Failed as exc:
            problems.append(f"{d['target']} could not be moved back ({exc})")
    return "; ".join(problems) or None


def _renamed(companion: str, photo: str, photo_target: str) -> str:
    """The companion's name beside the photo's new name: its part after the photo's stem is kept."""
    stem, new_stem = os.path.splitext(os.path.basename(photo))[0], os.path.splitext(os.path.basename(photo_target))[0]
    name = os.path.basename(companion)
    if new_stem != stem and name.lower().startswith(stem.lower()):
        name = new_stem + name[len(stem) :]
    return os.path.join(os.path.dirname(photo_target), name)


def _free_for_all(target: str, along: list[str]) -> str:
    """``target``, or 'name (n).ext' with the first n under which the photo and every companion
    named after it are free at the destination."""
    folder, photo = os.path.dirname(target), target
    stem, ext = os.path.splitext(os.path.basename(target))
    n = 1
    while os.path.lexists(photo) or any(os.path.lexists(_renamed(c, target, photo)) for c in along):
        n += 1
        photo = os.path.join(folder, f"{stem} ({n}){ext}")
    return photo


def _relocate(catalog: Catalog, batch: str, action: str, source: str, target: str, names: _Names | None, undoes: int | None = None) -> tuple[str, int]:
    """Move ``source`` to ``target`` (or, given ``names``, to 'name (2).ext', 'name (3).ext'... if
    taken), journaled. Raises _Failed with the user's reason when the file stays where it was."""
    st = _stat(source)
    name = names.first_free(target) if names else target
    step = catalog.begin_step(batch, action, source, name, st.st_size, st.st_mtime_ns, st.st_ino, undoes)
    return _carry(catalog, step, source, name, names, st), st.st_size


def _carry(catalog: Catalog, step: int, source: str, name: str, names: _Names | None, st: os.stat_result) -> str:
    """Carry out the logged ``step``: ``source`` to ``name`` (the next free name, given ``names``).
    Closes the step; raises _Failed with the user's reason when the file stays where it was."""
    target = name
    try:
        try:
            final = _claim(catalog, step, name, names, lambda n: rename_noreplace(source, n))
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            final = _copy_across(catalog, step, source, name, names, st)
    except FileExistsError:
        note = f"{target} exists; left both alone"
        catalog.finish_step(step, "failed", note)
        raise _Failed(note) from None
    except _Failed as exc:
        catalog.finish_step(step, "failed", str(exc))
        raise
    except OSError as exc:
        note = f"cannot move ({exc.strerror or exc}); the file was left in place"
        catalog.finish_step(step, "failed", note)
        failure = _Failed(note)
        failure.full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        raise failure from None
    fsync_folder(os.path.dirname(final))
    fsync_folder(os.path.dirname(source))
    catalog.finish_step(step, "done")
    return final


def _copy_across(catalog: Catalog, step: int, source: str, name: str, names: _Names | None, st: os.stat_result) -> str:
    """Another volume: copy under a temporary name, verify, publish without replacing, then delete
    the original. A failure at any point leaves the original and no copy."""
    folder = os.path.dirname(name)
    if not os.access(os.path.dirname(source), os.W_OK):
        raise _Failed("its folder is read-only, so it cannot be moved out of it; the file was left in place")
    temp = os.path.join(folder, f".imgsim-moving-{step}-{uuid.uuid4().hex[:8]}.part")  # unique across libraries moving here
    catalog.update_step(step, temp=temp)
    try:
        copy_verified(source, temp)
    except NotVerified as exc:
        raise _Failed(f"the copy could not be verified ({exc.strerror}); the file was left in place") from None
    catalog.update_step(step, copy_inode=os.lstat(temp).st_ino)  # recovery accepts the target only by this identity
    now = os.stat(source)
    if (now.st_size, now.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
        remove_quietly(temp)
        raise _Failed("it changed while being copied; the file was left in place")
    try:
        final = _claim(catalog, step, name, names, lambda n: rename_noreplace(temp, n))
    except BaseException:
        remove_quietly(temp)
        raise
    fsync_folder(folder)
    try:
        os.unlink(source)
    except OSError as exc:
        if not _unchanged(source, st):
            return final  # the error was not true (a network share's retransmit): the original is gone, the copy is the photo
        remove_quietly(final)  # our verified copy: without it nothing moved
        raise _Failed(f"the original cannot be removed ({exc.strerror or exc}); the file was left in place") from None
    return final


def _unchanged(path: str, st: os.stat_result) -> bool:
    try:
        now = os.lstat(path)
    except OSError:
        return False
    return (now.st_size, now.st_mtime_ns, now.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)


def _claim(catalog: Catalog, step: int, name: str, names: _Names | None, publish: Callable[[str], None]) -> str:
    """Publish under ``name``; if another process took it meanwhile, under the next free number.
    Each new name is journaled before it is tried."""
    while True:
        try:
            publish(name)
            return name
        except FileExistsError:
            if names is None:
                raise
            name = names.first_free(name)
            catalog.update_step(step, target=name)


class _Names:
    """Free names in the destination for one cleanup. It remembers the next ' (n)' per name, so ten
    thousand 'IMG_0001.jpg' into one folder cost a probe or two each, not one per earlier copy. A
    name found free may still be taken before the publish: _claim then asks again."""

    def __init__(self) -> None:
        self._next: dict[tuple[str, str], int] = {}

    def first_free(self, target: str) -> str:
        if not os.path.lexists(target):
            return target
        stem, ext = os.path.splitext(target)
        head, _, number = stem.rpartition(" (")
        base = head if head and number.endswith(")") and number[:-1].isdigit() else stem  # 'x (2)' taken: 'x (3)', not 'x (2) (2)'
        n = self._next.get((base, ext), 2)
        while os.path.lexists(candidate := f"{base} ({n}){ext}"):
            n += 1
        self._next[(base, ext)] = n + 1
        return candidate


# --- recovery ----------------------------------------------------------------------------------


def _recover_locked(catalog: Catalog) -> list[str]:
    notes = []
    for step in catalog.pending_steps():
        companion = companion_kind(step)
        try:
            if companion:
                outcome = _recover_companion(catalog, step, catalog.step_state(companion[1]))
                if outcome is None:
                    continue  # its photo's step waits for the next time: so does the companion
                state, note = outcome
            else:
                recover_step = {"trash": _recover_trash, "metadata": _recover_sidecar, "metadata-undo": _recover_sidecar}.get(step["action"], _recover_move)
                state, note = recover_step(step)
        except OSError as exc:  # e.g. the source's card went read-only meanwhile: this step waits, the others go on
            notes.append(f"an interrupted cleanup step for {step['source']} cannot be finished yet ({exc.strerror or exc}); it is tried again next time")
            continue
        target = None
        if state == "done" and step["action"] == "trash" and not step["target"]:  # killed before its place in the Trash was journaled
            found = trash_info.find(step["source"], step["size"], step["mtime_ns"], step["inode"], step["at"])
            target = found.file if found else None
        catalog.finish_step(step["id"], state, None if companion else note, target=target)  # a companion's step keeps its mark
        if state == "done" and step["action"] in ("move", "trash"):
            catalog.park([(step["source"], step["id"], None)])
        if state == "done" and step["action"] == "restore":
            trash_info.forget(step["source"])  # brought back out of the Trash: its entry there goes
        notes.append(note)
    return notes


def _recover_companion(catalog: Catalog, step: dict, photo_state: str | None) -> tuple[str, str] | None:
    """A companion follows its photo: where the photo left, the companion is carried after it now;
    where the photo stayed, so does the companion. None while the photo's own step waits."""
    if photo_state == "pending":
        return None
    if photo_state != "done":
        if step["temp"]:
            remove_quietly(step["temp"])
        if os.path.lexists(step["source"]):
            return "abandoned", f"an interrupted cleanup had not moved {step['source']}; it stays beside its photo"
        return (_recover_trash if step["action"] == "trash" else _recover_move)(step)
    if step["action"] == "trash":
        if os.path.lexists(step["source"]):
            send2trash(step["source"])  # an error leaves the step pending: tried again next time
            return "done", f"finished an interrupted cleanup: {step['source']} followed its photo to the trash"
        return _recover_trash(step)
    state, note = _recover_move(step)
    if state == "done" or not _is_source(step["source"], step):
        return state, note
    st = os.stat(step["source"])
    try:
        final = _carry(catalog, step["id"], step["source"], step["target"], _Names(), st)
    except _Failed as exc:  # _carry closed the step as failed: the companion stays, said
        return "failed", f"an interrupted cleanup had moved a photo; its companion {step['source']} could not follow it to {step['target']} ({exc})"
    return "done", f"finished an interrupted cleanup: {step['source']} followed its photo to {final}"


def _is_source(path: str, step: dict) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return (st.st_size, st.st_mtime_ns) == (step["size"], step["mtime_ns"])


def _recover_sidecar(step: dict) -> tuple[str, str]:
    """A sidecar write (the kept metadata, or its undo) cut short: the file holds either the bytes
    before or the bytes after (written through a temporary file and a rename)."""
    if step["temp"]:
        remove_quietly(step["temp"])
    path, now = step["source"], _bytes_at(step["source"])
    what = "written the kept metadata into" if step["action"] == "metadata" else "taken the kept metadata out of"
    if xmp_sidecar.digest(now) == step["written"]:
        return "done", f"an interrupted cleanup had {what} {path}; it is in the history now"
    if now == step["previous"]:
        return "abandoned", f"an interrupted cleanup had not yet {what} {path}; it is as it was"
    return "failed", f"an interrupted cleanup was about to change {path}, which was changed by something else meanwhile; left as it is"


def _recover_trash(step: dict) -> tuple[str, str]:
    if os.path.lexists(step["source"]):  # changed or not, it is still there: it was not trashed
        return "abandoned", f"an interrupted cleanup had not yet trashed {step['source']}; it is where it was"
    return "done", f"an interrupted cleanup had moved {step['source']} to the trash"


def _recover_move(step: dict) -> tuple[str, str]:
    source, target, verb = step["source"], step["target"], "moved" if step["action"] == "move" else "moved back"
    if step["temp"]:
        remove_quietly(step["temp"])  # a copy under our own temporary name: never published
    source_here, ours = _is_source(source, step), _ours_at_target(step)
    if source_here and ours:
        os.unlink(source)  # the move had published its copy (or link) and not yet removed the original
        fsync_folder(os.path.dirname(source))
        return "done", f"finished an interrupted cleanup: {source} {verb} to {target}"
    if source_here:
        return "abandoned", f"an interrupted cleanup had not {verb} {source}; it is where it was"
    if ours:
        return "done", f"an interrupted cleanup had {verb} {source} to {target}; it is in the history now"
    return "abandoned", f"an interrupted cleanup was about to move {source}, which is no longer there nor at {target}"


def _ours_at_target(step: dict) -> bool:
    """The file at the target is the one this step moved: the source's own inode (a rename, or a
    link not yet unlinked) or the verified copy's. Equal bytes are not enough: another library may
    have moved its own copy of the same photo there."""
    try:
        st = os.lstat(step["target"]) if step["target"] else None
    except OSError:
        return False
    if st is None or st.st_size != step["size"]:
        return False
    return st.st_ino in {i for i in (step["inode"], step["copy_inode"]) if i}

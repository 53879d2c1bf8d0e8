"""Where a file sent to the Trash went, so that Undo can bring it back.

On Linux and the BSDs the Trash is the freedesktop.org one: ``$XDG_DATA_HOME/Trash`` for files on
the home volume, ``<volume>/.Trash/<uid>`` or ``<volume>/.Trash-<uid>`` on others. Each trashed file
is ``files/<name>`` with ``info/<name>.trashinfo`` beside it, which says where it came from
(``Path=``, percent-encoded, absolute or relative to the volume's top) and when
(``DeletionDate=``, local time to the second). send2trash (or GLib, which it uses where PyGObject
is installed) writes that but does not say which ``<name>`` it chose, so ``find`` reads it back:
the trashinfo whose Path is the source and whose DeletionDate falls in the step's time, with the
file under ``files/`` being the one that was trashed (its inode, or its size and date after a copy
across volumes).

macOS and Windows: send2trash does not return the item's place in the Trash or the Recycle Bin and
neither keeps a documented index of it that could be read back safely, so there ``find`` returns
None, and ``elsewhere_note`` says where the files are and how to put them back by hand.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

FREEDESKTOP = sys.platform not in ("darwin", "win32")
INFO_SUFFIX = ".trashinfo"
_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"
SLACK_S = 2.0  # DeletionDate has whole seconds, written a moment before the rename


@dataclass(frozen=True)
class Trashed:
    file: str  # <trash>/files/<name>
    info: str  # <trash>/info/<name>.trashinfo


def home_trash() -> str:
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data, "Trash")


def trash_dirs(source: str) -> list[tuple[str, str]]:
    """(trash folder, the folder its relative Paths start from) where ``source`` may have gone."""
    home = home_trash()
    out = [(home, os.path.dirname(home))]
    top = _mount_point(os.path.dirname(os.path.abspath(source)))
    uid = str(os.getuid()) if hasattr(os, "getuid") else ""
    for trash in (os.path.join(top, ".Trash", uid), os.path.join(top, ".Trash-" + uid)):
        if trash != home:
            out.append((trash, top))
    return out


def find(source: str, size: int | None, mtime_ns: int | None, inode: int | None, since: float, until: float | None = None) -> Trashed | None:
    """The place in the Trash of the file that was at ``source`` (as it was: ``size``, ``mtime_ns``,
    ``inode``) and was trashed between ``since`` and ``until`` (now when None); None if not found."""
    if not FREEDESKTOP:
        return None
    until = time.time() if until is None else until
    name = os.path.basename(source)
    for trash, top in trash_dirs(source):
        info_dir, files_dir = os.path.join(trash, "info"), os.path.join(trash, "files")
        if not os.path.isdir(info_dir):
            continue
        # send2trash names it 'name', then 'stem 1.ext', 'stem 2.ext'...: the first free one, so the
        # names are tried in that order up to the first that is not there; any other naming (GLib's)
        # is found by reading the whole folder.
        tried: set[str] = set()
        for candidate in _send2trash_names(name):
            if not os.path.lexists(os.path.join(info_dir, candidate + INFO_SUFFIX)):
                break
            tried.add(candidate)
            hit = _match(trash, top, candidate, source, size, mtime_ns, inode, since, until)
            if hit:
                return hit
        try:
            listed = [e[: -len(INFO_SUFFIX)] for e in os.listdir(info_dir) if e.endswith(INFO_SUFFIX)]
        except OSError:
            continue
        for candidate in listed:
            if candidate not in tried and os.path.lexists(os.path.join(files_dir, candidate)):
                hit = _match(trash, top, candidate, source, size, mtime_ns, inode, since, until)
                if hit:
                    return hit
    return None


def info_of(trashed_file: str) -> str | None:
    """The trashinfo beside ``<trash>/files/<name>``; None when the path is not in a Trash's files/."""
    files_dir, name = os.path.split(trashed_file)
    if os.path.basename(files_dir) != "files":
        return None
    return os.path.join(os.path.dirname(files_dir), "info", name + INFO_SUFFIX)


def forget(trashed_file: str) -> None:
    """Remove the trashinfo of a file brought back out of the Trash (left alone while the file is still there)."""
    info = info_of(trashed_file)
    if info and not os.path.lexists(trashed_file):
        try:
            os.unlink(info)
        except FileNotFoundError:
            pass


def elsewhere_note() -> str:
    """Where trashed files are on a system whose Trash imgsim cannot read back, and how to restore them."""
    if sys.platform == "darwin":
        return "it is in the macOS Trash; Finder's Put Back returns it to its folder (macOS does not tell imgsim where in the Trash it is)"
    if sys.platform == "win32":
        return "it is in the Recycle Bin; its Restore returns it to its folder (Windows does not tell imgsim where in the Recycle Bin it is)"
    return "it is in the system Trash, but its entry there was not found; the file manager's Trash can restore it to its folder"


def _send2trash_names(name: str):
    yield name
    stem, ext = os.path.splitext(name)
    n = 1
    while True:
        yield f"{stem} {n}{ext}"
        n += 1


def _match(trash: str, top: str, candidate: str, source: str, size, mtime_ns, inode, since: float, until: float) -> Trashed | None:
    info = os.path.join(trash, "info", candidate + INFO_SUFFIX)
    path, deleted = _read_info(info)
    if path is None or deleted is None:
        return None
    if not os.path.isabs(path):
        path = os.path.join(top, path)
    if not _same_place(path, source) or not (since - SLACK_S <= deleted <= until + SLACK_S):
        return None
    file = os.path.join(trash, "files", candidate)
    try:
        st = os.lstat(file)
    except OSError:
        return None
    renamed = inode is not None and st.st_ino == inode and st.st_size == size
    copied = size is not None and st.st_size == size and mtime_ns is not None and st.st_mtime_ns == mtime_ns
    return Trashed(file, info) if renamed or copied else None


def _read_info(info: str) -> tuple[str | None, float | None]:
    try:
        with open(info, "rb") as fh:
            text = fh.read(64 * 1024)
    except OSError:
        return None, None
    path = deleted = None
    for line in text.splitlines():
        key, _, value = line.partition(b"=")
        if key.strip() == b"Path":
            path = os.fsdecode(unquote_to_bytes(value.strip()))
        elif key.strip() == b"DeletionDate":
            try:
                deleted = time.mktime(time.strptime(value.strip().decode("ascii")[:19], _DATE_FORMAT))
            except (ValueError, UnicodeDecodeError):
                deleted = None
    return path, deleted


def _same_place(a: str, b: str) -> bool:
    a, b = os.path.normpath(os.path.abspath(a)), os.path.normpath(os.path.abspath(b))
    if a == b:
        return True
    return os.path.basename(a) == os.path.basename(b) and os.path.realpath(os.path.dirname(a)) == os.path.realpath(os.path.dirname(b))


def _mount_point(path: str) -> str:
    path = os.path.realpath(path)
    while not os.path.ismount(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path

"""File moves that never replace a file and never delete what was not verified elsewhere.

``os.rename`` silently replaces an existing target on POSIX, so "check the name is free, then
rename" loses a photo whenever another process (a second cleanup into the same folder) takes the
name in between. Every publish here fails instead of replacing:

- Linux: ``renameat2(RENAME_NOREPLACE)`` through libc (atomic; ext4, xfs, btrfs, tmpfs, ...);
- elsewhere, or where the file system refuses that flag: ``link`` then ``unlink`` (``link`` fails
  when the name exists; a crash in between leaves two names for one inode, which recovery sees);
- Windows: ``os.rename`` never replaces there.

Across volumes a move is copy -> fsync -> verify (size and SHA-256 of the copy read back) ->
publish under the final name -> delete the source. The copy is written under a temporary name the
caller chose (unique to one journal step), so a partial copy is always recognisable as ours and
removed on failure or by crash recovery.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import shutil
import sys

CHUNK = 1 << 20
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


class NotVerified(OSError):
    """The copy at the destination does not match the source: nothing was deleted."""


def _renameat2():
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None  # glibc before 2.28, or another libc
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_RENAMEAT2 = _renameat2()


def rename_noreplace(source: str, target: str) -> None:
    """Give ``source`` the name ``target``; FileExistsError if ``target`` exists, OSError(EXDEV)
    if it is on another volume. Never replaces anything."""
    if sys.platform == "win32":
        os.rename(source, target)  # raises FileExistsError rather than replacing
        return
    if _RENAMEAT2 is not None:
        if _RENAMEAT2(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise OSError(err, os.strerror(err), source, None, target)
        # this file system does not take the flag: the portable way below
    os.link(source, target)  # FileExistsError if the name is taken; EXDEV across volumes
    try:
        os.unlink(source)
    except OSError:
        os.unlink(target)  # the old name cannot go (a read-only folder): take the new one back, nothing moved
        raise


def copy_verified(source: str, temp: str) -> str:
    """Copy ``source`` to the new file ``temp`` (created exclusively), flush it to the disk, read it
    back and compare size and SHA-256 with what was read from the source. Returns the hex digest.
    On any failure the partial ``temp`` is removed and the error raised; ``source`` is untouched."""
    digest = hashlib.sha256()
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
    try:
        try:
            with open(source, "rb") as src:
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                    view = memoryview(chunk)
                    while view:  # os.write may write less than asked (a nearly full disk)
                        view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        shutil.copystat(source, temp)  # the photo keeps its dates
        expected = digest.hexdigest()
        if os.path.getsize(temp) != os.path.getsize(source) or sha256_of(temp) != expected:
            raise NotVerified(errno.EIO, "the copy read back differs from the original", temp)
        return expected
    except BaseException:
        remove_quietly(temp)
        raise


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_folder(folder: str) -> None:
    """Make a rename or unlink in ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass

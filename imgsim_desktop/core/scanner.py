"""Walk library folders and tell which files are new, changed or gone since the catalog last saw them.

Only ``stat`` is used for unchanged files (size + mtime), which is what keeps re-scans of large
libraries cheap. Files without an image extension are sniffed by their first bytes, once per
scan, so a photo saved as ".bin" or ".svg" is still found while documents and videos are not.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from imgsim_desktop.core.decode import IMAGE_EXTENSIONS, looks_like_image

# Never sniffed: common companions of photos that are certainly not raster images.
SKIP_EXTENSIONS = frozenset(
    ".mp4 .mov .m4v .avi .mkv .mts .m2ts .3gp .wmv .webm .lrv .thm .aae .xmp .json .txt .md .pdf .doc .docx .xls "
    ".xlsx .zip .7z .rar .gz .tar .db .sqlite .ini .ds_store .mp3 .wav .m4a .aac .flac .py .html .xml .csv .log .exe .dll .so".split()
)


@dataclass(frozen=True)
class FileStat:
    path: str
    size: int
    mtime_ns: int


@dataclass
class ScanResult:
    files: list[FileStat] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) for unreadable folders
    missing_roots: list[str] = field(default_factory=list)
    # Folders that could not be listed (permission denied, a share that stopped answering): what the
    # catalog knows inside them is not gone, only out of sight.
    unlisted: list[str] = field(default_factory=list)


def _is_candidate(entry: os.DirEntry) -> bool:
    return is_candidate(entry.path)


def is_candidate(path: str) -> bool:
    """Whether a file should be indexed: an image extension, or image bytes behind another name."""
    ext = os.path.splitext(path)[1].lower()
    if ext in IMAGE_EXTENSIONS:
        return True
    if ext in SKIP_EXTENSIONS:
        return False
    try:
        with open(path, "rb") as fh:
            return looks_like_image(fh.read(16))
    except OSError:
        return False


def iter_images(root: str, result: ScanResult, excluded: frozenset[str] = frozenset(), check: Callable[[], None] | None = None) -> Iterator[FileStat]:
    """Depth-first walk; hidden entries, symlinks and excluded folders are skipped.

    ``check`` is called once per folder so a long walk (a slow network share) can be paused or cancelled.
    """
    stack = [root]
    while stack:
        if check:
            check()
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            result.problems.append((folder, f"cannot list folder: {exc.strerror or exc}"))
            result.unlisted.append(folder)
            continue
        subdirs = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_symlink():
                if reason := _link_note(entry.path):
                    result.problems.append((entry.path, reason))
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.path not in excluded:
                        subdirs.append(entry.path)
                elif entry.is_file(follow_symlinks=False) and _is_candidate(entry):
                    st = entry.stat(follow_symlinks=False)
                    yield FileStat(entry.path, st.st_size, st.st_mtime_ns)
            except OSError as exc:
                result.problems.append((entry.path, f"cannot stat: {exc.strerror or exc}"))
        stack.extend(reversed(subdirs))


LINK_NOTE = "a symbolic link to {}, not followed (a photo reached by two paths would look like a copy of itself); add {} instead"


def _link_note(path: str) -> str | None:
    """Why a link to a folder or a photo was left out (said, never silent); None for other links."""
    try:
        target = os.path.realpath(path)
        if os.path.isdir(target):
            return LINK_NOTE.format("a folder", f"{target} itself")
        if os.path.isfile(target) and is_candidate(target):
            return LINK_NOTE.format("a photo", f"the folder of {target}")
    except OSError:
        pass
    return None


def scan(paths: list[str], excluded: list[str] | None = None, check: Callable[[], None] | None = None) -> ScanResult:
    """Collect image files from folders and single files (absolute, normalised paths)."""
    skip = frozenset(os.path.abspath(p) for p in excluded or ())
    result = ScanResult()
    seen: set[str] = set()
    for raw in paths:
        root = os.path.abspath(raw)
        if os.path.isdir(root):
            found = iter_images(root, result, skip, check)
        elif os.path.isfile(root):
            st = os.stat(root)
            found = iter([FileStat(root, st.st_size, st.st_mtime_ns)])
        else:
            result.missing_roots.append(root)
            continue
        for f in found:
            if f.path not in seen:
                seen.add(f.path)
                result.files.append(f)
    return result

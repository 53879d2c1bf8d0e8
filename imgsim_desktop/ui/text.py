"""How sizes, formats and dates read in the UI, the same on every page."""

from __future__ import annotations

from imgsim_desktop.core.file_format import file_format
from imgsim_desktop.terminal import human_size  # noqa: F401 - one size wording for the app and the CLI


def readable(path: str) -> str:
    """A file name as a label can show it. A name that is not valid UTF-8 holds undecodable bytes
    (as lone surrogates) that Qt would silently drop ("caf\\xe9.jpg" shown as "caf.jpg", another
    file's name): they are shown as \\xNN instead."""
    if path.isascii():
        return path
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def photos(n: int) -> str:
    """ "1 photo", "482 photos", "1,204 photos"."""
    return f"{n:,} photo{'s' * (n != 1)}"




def photo_format(path: str, size: int | None = None, mtime_ns: int | None = None) -> str:
    """The format the file's bytes are, not its name: "JPEG", or "JPEG (named .png)" when the
    extension lies (a renamed copy is told apart from the real one at a glance). Pass the
    catalogued size and mtime when known: the answer then comes from the cache without a stat."""
    return file_format(path, size, mtime_ns).label()


def format_tooltip(path: str, size: int | None = None, mtime_ns: int | None = None) -> str:
    """Why the Format column says "named ...": empty when the extension tells the truth."""
    fmt = file_format(path, size, mtime_ns)
    if not fmt.lies:
        return ""
    name = f'ends in "{fmt.named}"' if fmt.named else "has no extension"
    return f"The file holds {fmt.name} data, but its name {name}. Other programs may refuse to open it or treat it as the wrong kind."


def resolution(width: int | None, height: int | None) -> str:
    return f"{width} × {height}" if width and height else "—"


def taken(taken_at: str | None) -> str:
    """To the second, as photo apps show it (taken_at may carry the camera's sub-second too)."""
    return taken_at.replace("T", " ").split(".")[0] if taken_at else "—"

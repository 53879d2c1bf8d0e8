"""Where a research command may write its file: never over a photo or anything else it did not make.

``report --out`` and ``eval map --out`` take a file name. A folder there is refused (with the name
to give instead); an existing file is replaced only when this tool wrote it (the HTML report's
generator tag, the map PNG's Software text chunk) or with ``--force``. Writes go through a
temporary file beside the target and a rename, so a failed run leaves the old file and no junk.
"""

from __future__ import annotations

from pathlib import Path

MARK = "imgsim"
HTML_MARK = f'<meta name="generator" content="{MARK}">'


def refusal(path: Path, suffix: str, force: bool) -> str | None:
    """Why ``path`` must not be written (None: go ahead)."""
    if path.is_dir():
        return f"{path} is a folder; give a file name, e.g. {path / ('report' + suffix if suffix == '.html' else 'map' + suffix)}"
    if not path.exists() or force:
        return None
    if not path.is_file():
        return f"{path} exists and is not a file"
    if not _ours(path, suffix):
        return f"{path} exists and was not written by imgsim; choose another name, or add --force to replace it"
    return None


def _ours(path: Path, suffix: str) -> bool:
    try:
        if suffix == ".html":
            with open(path, "rb") as fh:
                return HTML_MARK.encode() in fh.read(4096)
        from PIL import Image

        with Image.open(path) as img:
            return img.format == "PNG" and img.info.get("Software") == MARK
    except OSError:
        return False

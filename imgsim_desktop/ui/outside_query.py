"""A photo from outside the library as the query: dropped or pasted files, or bare image data
(a picture copied or dragged from a browser or an editor, which arrives as pixels, not a file)."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QMimeData
from PySide6.QtGui import QImage, QPixmap


def query_file(mime: QMimeData, pasted_dir: Path) -> str | None:
    """The file to search with: the first local file named, else the image data saved as a PNG in
    ``pasted_dir`` (the search needs a file to decode); None when there is neither."""
    files = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []
    if files:
        return files[0]
    if not mime.hasImage():
        return None
    data = mime.imageData()
    image = data.toImage() if isinstance(data, QPixmap) else data if isinstance(data, QImage) else QImage()
    if image.isNull():
        return None
    pasted_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = pasted_dir / f"pasted-{stamp}.png"
    n = 1
    while target.exists():  # two pastes in one second keep both
        n += 1
        target = pasted_dir / f"pasted-{stamp}-{n}.png"
    return str(target) if image.save(str(target), "PNG") else None

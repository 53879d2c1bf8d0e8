"""GUI side of thumbnails: an LRU of pixmaps in front of the background ThumbnailLoader.

QImages arrive from the loader's threads; only here, on the GUI thread, do they become QPixmaps.
A tile whose thumbnail arrives is repainted alone (dataChanged for that row).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QPixmap

from imgsim_desktop.ui.photo_model import Item, PhotoListModel
from imgsim_desktop.workers.thumb_loader import ThumbnailLoader

PIXMAP_CACHE = 3000  # pixmaps kept (a few screens of tiles at any zoom)


class PixmapCache(QObject):
    failed = Signal(str, str)  # path, reason (reported once per file)

    def __init__(self, loader: ThumbnailLoader, models: list[PhotoListModel], device_ratio: Callable[[], float], parent=None) -> None:
        super().__init__(parent)
        self._loader = loader
        self._models = models
        self._ratio = device_ratio
        self._pixmaps: OrderedDict[tuple[str, int], QPixmap] = OrderedDict()
        self._failed: set[str] = set()
        self._edge = 0
        loader.ready.connect(self._ready)
        loader.failed.connect(self._failed_one)

    def pixmap_for(self, item: Item, edge: int) -> QPixmap | None:
        """The tile's pixmap at ``edge`` device pixels, or None (and a request) until it arrives."""
        self._edge = edge
        key = (item.photo.path, edge)
        pixmap = self._pixmaps.get(key)
        if pixmap is not None:
            self._pixmaps.move_to_end(key)
            return pixmap
        if item.photo.path not in self._failed:
            self._loader.request(item.photo.path, item.photo.mtime_ns, edge)
        return None

    @Slot(str, int, object)
    def _ready(self, path: str, edge: int, image) -> None:
        pixmap = QPixmap.fromImage(image)
        pixmap.setDevicePixelRatio(self._ratio())
        self._pixmaps[(path, edge)] = pixmap
        while len(self._pixmaps) > PIXMAP_CACHE:
            self._pixmaps.popitem(last=False)
        if edge == self._edge:
            for model in self._models:
                model.refresh_path(path)

    @Slot(str, int, str)
    def _failed_one(self, path: str, _edge: int, reason: str) -> None:
        if path not in self._failed:
            self._failed.add(path)
            self.failed.emit(path, reason)

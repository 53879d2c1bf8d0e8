"""The collection map: every photo as a thumbnail at its 2-D place (PCA + t-SNE of its embedding).

Zoom with the wheel, pan by dragging, click a photo to find similar ones. "Tidy grid" packs the
same layout into rows and columns so no thumbnail hides another. Thousands of tiles stay cheap:
the view asks for the thumbnails of the tiles on screen only, at a size that suits the zoom, a
batch at a time, and asks again for any still missing (the loader keeps only its newest few
hundred requests: asking once per tile left most of a fitted map grey).
"""

from __future__ import annotations

import math
import os

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QGraphicsItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

TILE = 48.0  # scene units per thumbnail
EDGES = (64, 128, 256)  # thumbnail sizes asked for, in device pixels, by zoom
ASK_BATCH = 200  # thumbnails asked for at once: fewer than the loader keeps queued


class _Tile(QGraphicsItem):
    def __init__(self, owner: MapView, path: str, mtime_ns: int) -> None:
        super().__init__()
        self.owner, self.path, self.mtime_ns = owner, path, mtime_ns
        self.pixmap: QPixmap | None = None
        self.have = 0  # device pixels of the pixmap we have
        self.setToolTip(os.path.basename(path))
        self.setAcceptHoverEvents(True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def boundingRect(self) -> QRectF:
        return QRectF(-TILE / 2, -TILE / 2, TILE, TILE)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        if self.pixmap is None:
            painter.fillRect(self.boundingRect().adjusted(4, 4, -4, -4), QColor("#9e9e9e"))
            return
        w, h = self.pixmap.width(), self.pixmap.height()
        scale = TILE / max(w, h)
        target = QRectF(-w * scale / 2, -h * scale / 2, w * scale, h * scale)
        painter.drawPixmap(target, self.pixmap, QRectF(0, 0, w, h))

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.owner.photo_clicked.emit(self.path)
        super().mousePressEvent(event)


class _Canvas(QGraphicsView):
    def __init__(self, scene: QGraphicsScene) -> None:
        super().__init__(scene)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setBackgroundBrush(QColor("#262626"))

    moved = Signal()  # zoomed, panned or resized: other tiles are on screen

    def wheelEvent(self, event) -> None:
        factor = 1.25 ** (event.angleDelta().y() / 120)
        scale = self.transform().m11() * factor
        if 0.02 < scale < 8:
            self.scale(factor, factor)
            self.moved.emit()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.moved.emit()

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        super().scrollContentsBy(dx, dy)
        self.moved.emit()


class MapView(QWidget):
    photo_clicked = Signal(str)
    recompute = Signal()  # the user asked for a fresh map
    cancel = Signal()

    def __init__(self, loader, parent=None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.scene = QGraphicsScene(self)
        self.scene.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)
        self.canvas = _Canvas(self.scene)
        self.tiles: dict[str, _Tile] = {}
        self._row: dict[str, int] = {}
        self.xy = np.zeros((0, 2), np.float32)
        self.grid_cells: np.ndarray | None = None
        self.tidy = QCheckBox("Tidy grid")
        self.tidy.setToolTip("Pack the map into rows and columns so no photo hides another")
        self.tidy.toggled.connect(self._tidy_toggled)
        fit = QPushButton("Fit")
        fit.clicked.connect(self.fit)
        self.status = QLabel()
        self.progress = QProgressBar(maximumWidth=220, textVisible=False)
        self.progress.hide()
        stop = QPushButton("Cancel")
        stop.clicked.connect(self.cancel)
        stop.hide()
        self.stop_button = stop
        top = QHBoxLayout()
        for w in (self.tidy, fit, self.status):
            top.addWidget(w)
        top.addStretch(1)
        top.addWidget(self.progress)
        top.addWidget(stop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.canvas, 1)
        self._failed: set[str] = set()
        # Thumbnails for the tiles on screen: asked after any zoom, pan or new layout, and again
        # as answers arrive until every visible tile has one (a dropped request is asked again).
        self._ask_timer = QTimer(self, singleShot=True, interval=60, timeout=self._ask_visible)
        self.canvas.moved.connect(self._ask_soon)
        loader.ready.connect(self._thumbnail_ready)
        loader.failed.connect(self._thumbnail_failed)

    # --- content -------------------------------------------------------------------------------

    def show_busy(self, done: int, total: int, message: str) -> None:
        self.progress.show()
        self.stop_button.show()
        self.progress.setRange(0, max(total, 0))
        self.progress.setValue(done)
        self.status.setText(message or "Computing the map…")

    def show_message(self, text: str) -> None:
        self.progress.hide()
        self.stop_button.hide()
        self.status.setText(text)

    def show_map(self, paths: list[str], xy: np.ndarray, mtimes: dict[str, int], grid_cells: np.ndarray | None) -> None:
        """``xy`` in [0, 1]; ``grid_cells`` (one (col, row) per photo) for the tidy layout."""
        if not paths:
            self.show_message("No photos to map yet: add a folder, and the map appears once it is indexed.")
        else:
            self.show_message(f"{len(paths):,} photo{'s' * (len(paths) != 1)} · click one to find similar · wheel to zoom, drag to pan")
        self.scene.clear()
        self.tiles = {}
        self._failed = set()
        self.xy, self.grid_cells = np.asarray(xy, np.float32), grid_cells
        self._row = {path: i for i, path in enumerate(paths)}  # row of each photo in xy / grid_cells
        for path in paths:
            tile = _Tile(self, path, mtimes.get(path, 0))
            self.scene.addItem(tile)
            self.tiles[path] = tile
        self._place()
        self.fit()

    def _place(self) -> None:
        if not self.tiles:
            return
        if self.tidy.isChecked() and self.grid_cells is not None:
            positions = self.grid_cells.astype(np.float32) * (TILE * 1.08)
        else:
            # Spread the points so tiles overlap about as much as a tidy grid of the same size.
            extent = math.sqrt(len(self.xy)) * TILE * 1.6
            positions = self.xy * extent
        for path, tile in self.tiles.items():
            x, y = positions[self._row[path]].tolist()
            tile.setPos(QPointF(x, y))
        self.scene.setSceneRect(self.scene.itemsBoundingRect().adjusted(-TILE, -TILE, TILE, TILE))
        self._ask_soon()

    def _tidy_toggled(self) -> None:
        self._place()
        self.fit()  # the other layout has another extent: show all of it

    def forget_missing(self, known: set[str]) -> None:
        """Photos deleted outside the app leave the map at once (the next compute re-lays it out)."""
        for path in [p for p in self.tiles if p not in known]:
            self.scene.removeItem(self.tiles.pop(path))

    def fit(self) -> None:
        self.canvas.fitInView(self.scene.sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
        self._ask_soon()

    # --- thumbnails ----------------------------------------------------------------------------

    def wanted_edge(self) -> int:
        pixels = TILE * self.canvas.transform().m11() * self.devicePixelRatioF()
        return next((e for e in EDGES if e >= pixels), EDGES[-1])

    def visible_tiles(self) -> list[_Tile]:
        area = self.canvas.mapToScene(self.canvas.viewport().rect()).boundingRect()
        return [t for t in self.scene.items(area) if isinstance(t, _Tile)]

    def missing(self) -> list[_Tile]:
        """Tiles on screen still without a thumbnail as sharp as the zoom wants."""
        wanted = self.wanted_edge()
        return [t for t in self.visible_tiles() if t.have < wanted and t.path not in self._failed]

    def _ask_visible(self) -> None:
        if not self.isVisible() or not self.tiles:
            return
        wanted = self.wanted_edge()
        for tile in self.missing()[:ASK_BATCH]:
            self.loader.request(tile.path, tile.mtime_ns, wanted)
        if self.missing():  # asked again while answers come in; and now and then, for requests the loader dropped
            self._ask_soon(1000)

    def _ask_soon(self, ms: int = 60) -> None:
        self._ask_timer.start(ms)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._ask_soon()

    def _thumbnail_ready(self, path: str, edge: int, image) -> None:
        tile = self.tiles.get(path)
        if tile is not None and edge in EDGES and edge > tile.have:  # never swap a sharp one for a blurry one
            tile.pixmap, tile.have = QPixmap.fromImage(image), edge
            tile.update()
            if not self._ask_timer.isActive() or self._ask_timer.remainingTime() > 200:
                self._ask_soon(200)  # the next batch, once this one is mostly in

    def _thumbnail_failed(self, path: str, _edge: int, _reason: str) -> None:
        if path in self.tiles:
            self._failed.add(path)  # a grey tile for good, not asked for again and again

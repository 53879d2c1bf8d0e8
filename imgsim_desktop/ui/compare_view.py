"""Two near-duplicates side by side, zoomed and panned together, so differences in detail show.

Both pixmaps are scaled to the same scene width, so one scene point is the same spot of the photo
in both views, whatever their pixel sizes: one transform and one centre serve both views.

Above them, why the two are one group (core.explain's sentence); on the left photo, the outline of
where the right one lies in it (its frame's corners, 0..1 of the left picture).
"""

from __future__ import annotations

import html
import os

from PySide6.QtCore import QPointF, QRectF, Qt, Signal, Slot
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap, QPolygonF, QTransform
from PySide6.QtWidgets import (
    QGraphicsPixmapItem,
    QGraphicsPolygonItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from imgsim_desktop.storage.catalog import PhotoRow
from imgsim_desktop.ui.text import human_size, photo_format, resolution, taken

SCENE_WIDTH = 1000.0
MAX_EDGE = 4096  # device pixels asked of the loader: real pixels at 100% without unbounded memory
UNKNOWN_EDGE = 2048
ZOOM_STEP = 1.25
NOTE_COLOURS = {"keep": "#2e7d32", "remove": "#c62828", "protected": "#1565c0"}
REGION_COLOUR = "#ffc400"  # amber: visible on most photos, unlike the notes' greens and reds


class _View(QGraphicsView):
    wheeled = Signal(float, QPointF)  # zoom factor, viewport position to zoom about
    resized = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setScene(QGraphicsScene(self))  # owned by the view: a parentless scene would be collected
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)  # zooms are anchored by hand
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setBackgroundBrush(QColor("#303030"))  # neutral dark: a white margin would read as part of the photo
        self.item = QGraphicsPixmapItem()
        self.scene().addItem(self.item)
        self.message = QLabel(self.viewport(), alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.message.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.message.setStyleSheet("color: #e0e0e0")

    def wheelEvent(self, event) -> None:
        if event.angleDelta().y():
            self.wheeled.emit(ZOOM_STEP ** (event.angleDelta().y() / 120), event.position())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.message.setGeometry(self.viewport().rect().adjusted(10, 10, -10, -10))
        self.resized.emit()


class CompareView(QWidget):
    def __init__(self, loader, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._loader = loader
        self._connected = False
        self._syncing = False
        self._fit_mode = True
        self._rows: list[PhotoRow | None] = [None, None]
        self._edges = [0, 0]
        self.views = [_View(), _View()]
        self.captions = [QLabel(textFormat=Qt.TextFormat.RichText) for _ in self.views]
        self.notes = [QLabel() for _ in self.views]
        self.zoom_label = QLabel("—", minimumWidth=50, alignment=Qt.AlignmentFlag.AlignCenter)
        self.reason = QLabel(wordWrap=True, textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.reason.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # wraps, never widens the page
        self._region: tuple[tuple[float, float], ...] | None = None
        # Cosmetic pen: one thin line at any zoom, so it never hides the detail it outlines.
        pen = QPen(QColor(REGION_COLOUR), 2)
        pen.setCosmetic(True)
        self.region_item = QGraphicsPolygonItem()
        self.region_item.setPen(pen)
        self.region_item.setZValue(1)
        self.region_item.setVisible(False)
        self.views[0].scene().addItem(self.region_item)
        bar = QHBoxLayout()
        for text, action in (("Fit", self.fit), ("100%", self.actual_size), ("−", lambda: self.zoom_by(1 / ZOOM_STEP)),
                             ("+", lambda: self.zoom_by(ZOOM_STEP))):
            button = QPushButton(text)
            button.clicked.connect(action)
            if len(text) == 1:
                button.setFixedWidth(32)
            bar.addWidget(button)
        bar.addWidget(self.zoom_label)
        bar.addStretch(1)
        sides = QHBoxLayout()
        for view, caption, note in zip(self.views, self.captions, self.notes):
            caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # long folders clip, never widen
            note.setVisible(False)
            line = QHBoxLayout()
            line.addWidget(note)
            line.addWidget(caption, 1)
            column = QVBoxLayout()
            column.addWidget(view, 1)
            column.addLayout(line)
            sides.addLayout(column)
            view.wheeled.connect(lambda factor, pos, v=view: self._zoom(v, factor, pos))
            view.resized.connect(self._resized)
            for bar_ in (view.horizontalScrollBar(), view.verticalScrollBar()):
                bar_.valueChanged.connect(lambda _, v=view: self._follow(v))
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.reason)
        layout.addLayout(sides, 1)
        self.clear()

    # --- content -------------------------------------------------------------------------------
    def show_pair(
        self,
        left: PhotoRow,
        right: PhotoRow,
        left_note: str = "",
        right_note: str = "",
        reason: str = "",
        region: tuple[tuple[float, float], ...] | None = None,
    ) -> None:
        """``reason``: why the two are alike; ``region``: the right photo's corners in the left one (0..1)."""
        self._connect()
        self.reason.setText(reason)
        self.reason.setVisible(bool(reason))
        self._region = tuple(region) if region else None
        self._fit_mode = True
        for i, (row, note) in enumerate(((left, left_note), (right, right_note))):
            self._rows[i] = row
            self._edges[i] = min(max(row.width, row.height), MAX_EDGE) if row.width and row.height else UNKNOWN_EDGE
            self.views[i].item.setPixmap(QPixmap())
            self.views[i].message.setText("Loading…")
            self.captions[i].setText(self._caption(row))
            self.captions[i].setToolTip(row.path)
            colour = NOTE_COLOURS.get(note.lower(), "#616161")
            self.notes[i].setText(note)
            self.notes[i].setStyleSheet(f"background: {colour}; color: white; border-radius: 3px; padding: 1px 6px; font-weight: bold")
            self.notes[i].setVisible(bool(note))
        self._layout_scenes()
        for row, edge in zip(self._rows, self._edges):
            self._loader.request(row.path, row.mtime_ns, edge)

    def clear(self) -> None:
        self._rows = [None, None]
        self.reason.setText("")
        self.reason.setVisible(False)
        self._region = None
        for view, caption, note in zip(self.views, self.captions, self.notes):
            view.item.setPixmap(QPixmap())
            view.message.setText("")
            caption.setText("")
            note.setVisible(False)
        self._layout_scenes()

    @staticmethod
    def _caption(row: PhotoRow) -> str:
        name = os.path.basename(row.path)
        facts = [resolution(row.width, row.height), human_size(row.size), photo_format(row.path), taken(row.taken_at)]
        return f"<b>{html.escape(name)}</b> · {' · '.join(facts)}<br><small>{html.escape(os.path.dirname(row.path))}</small>"

    @Slot(str, int, QImage)
    def _ready(self, path: str, edge: int, image: QImage) -> None:
        for row, want, view in zip(self._rows, self._edges, self.views):
            if row is not None and row.path == path and want == edge:  # answers for pairs gone by are dropped
                view.item.setPixmap(QPixmap.fromImage(image))
                view.item.setScale(SCENE_WIDTH / max(1, image.width()))
                view.message.setText("")
        self._layout_scenes()

    @Slot(str, int, str)
    def _failed(self, path: str, edge: int, reason: str) -> None:
        for row, want, view in zip(self._rows, self._edges, self.views):
            if row is not None and row.path == path and want == edge:
                view.message.setText(f"Cannot show this photo:\n{reason}")

    def _layout_scenes(self) -> None:
        """One scene rect for both, tall enough for either: same scroll ranges, so centres map 1:1."""
        heights = []
        for row, view in zip(self._rows, self.views):
            pix = view.item.pixmap()
            w, h = (pix.width(), pix.height()) if not pix.isNull() else ((row.width, row.height) if row else (None, None))
            heights.append(SCENE_WIDTH * h / w if w and h else SCENE_WIDTH * 0.75)
            view.item.setPos(0, -heights[-1] / 2)  # centred vertically: a crop sits in the middle
        rect = QRectF(0, -max(heights) / 2, SCENE_WIDTH, max(heights))
        for view in self.views:
            view.setSceneRect(rect)
        self._place_region(heights[0])
        if self._fit_mode:
            self.fit()
        else:
            self._follow(self.views[0])

    def _place_region(self, height: float) -> None:
        """The outline in scene units of the left picture (it spans SCENE_WIDTH by ``height``, centred)."""
        if self._region is None:
            self.region_item.setVisible(False)
            return
        top = -height / 2
        self.region_item.setPolygon(QPolygonF([QPointF(x * SCENE_WIDTH, top + y * height) for x, y in self._region]))
        self.region_item.setVisible(True)

    def region_points(self) -> list[tuple[float, float]]:
        """The outline drawn on the left photo, in its scene coordinates ([] when none is drawn)."""
        if not self.region_item.isVisible():
            return []
        return [(p.x(), p.y()) for p in self.region_item.polygon()]

    # --- zoom and pan --------------------------------------------------------------------------
    def fit(self) -> None:
        self._fit_mode = True
        rect = self.views[0].sceneRect()
        if rect.isEmpty():
            return
        # 2 px spare so a rounding error never brings scroll bars (which would shrink the view and refit)
        scale = min(min((v.viewport().width() - 2) / rect.width(), (v.viewport().height() - 2) / rect.height()) for v in self.views)
        self._apply(QTransform.fromScale(max(scale, 1e-3), max(scale, 1e-3)))
        self._syncing = True
        for view in self.views:
            view.centerOn(rect.center())
        self._syncing = False

    def actual_size(self) -> None:
        """100% of the left photo: one of its real pixels per device pixel."""
        pixels = self._left_pixels()
        if pixels:
            self.zoom_by(pixels / SCENE_WIDTH / self.devicePixelRatioF() / self.views[0].transform().m11())

    def zoom_by(self, factor: float) -> None:
        view = self.views[0]
        self._zoom(view, factor, QPointF(view.viewport().rect().center()))

    def _zoom(self, view: _View, factor: float, pos: QPointF) -> None:
        """Zoom both views, keeping the scene point under ``pos`` of ``view`` where it was."""
        self._fit_mode = False
        before = view.mapToScene(pos.toPoint())
        scale = min(max(view.transform().m11() * factor, 1e-3), 100.0)
        self._apply(QTransform.fromScale(scale, scale))
        centre = view.mapToScene(view.viewport().rect().center()) + before - view.mapToScene(pos.toPoint())
        view.centerOn(centre)
        self._follow(view)

    def _apply(self, transform: QTransform) -> None:
        self._syncing = True  # setTransform moves scroll bars: no following until both are set
        for view in self.views:
            view.setTransform(transform)
        self._syncing = False
        pixels = self._left_pixels()
        percent = transform.m11() * SCENE_WIDTH / pixels * self.devicePixelRatioF() * 100 if pixels else None
        self.zoom_label.setText(f"{percent:.0f}%" if percent else "—")
        # Smoothing blurs the pixels one zooms in to inspect; below 100% it avoids aliasing.
        for view in self.views:
            view.item.setTransformationMode(Qt.TransformationMode.SmoothTransformation if not percent or percent < 100
                                            else Qt.TransformationMode.FastTransformation)

    def _follow(self, source: _View) -> None:
        """Centre the other view on the scene point at the centre of ``source``."""
        if self._syncing:
            return
        self._syncing = True
        try:
            centre = source.mapToScene(source.viewport().rect().center())
            for view in self.views:
                if view is not source:
                    view.centerOn(centre)
        finally:
            self._syncing = False

    def _left_pixels(self) -> int | None:
        row, pix = self._rows[0], self.views[0].item.pixmap()
        return (row.width if row and row.width else None) or (pix.width() if not pix.isNull() else None)

    def _resized(self) -> None:
        if self._fit_mode:
            self.fit()

    # --- loader connection ---------------------------------------------------------------------
    def _connect(self) -> None:
        # Real Qt slots on this QObject: Qt drops the connection (and queued answers) if we are deleted.
        if not self._connected:
            self._loader.ready.connect(self._ready)
            self._loader.failed.connect(self._failed)
            self._connected = True

    def closeEvent(self, event) -> None:
        if self._connected:
            for signal, slot in ((self._loader.ready, self._ready), (self._loader.failed, self._failed)):
                try:
                    signal.disconnect(slot)
                except (RuntimeError, TypeError):
                    pass
            self._connected = False
        super().closeEvent(event)

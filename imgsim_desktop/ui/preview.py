"""A larger look at one photo with its metadata; arrow keys walk through the grid it came from,
Home and End jump to its ends. The photo fits the window; the wheel zooms about the pointer,
dragging pans, 1:1 shows the photo's own pixels (a sharper image is loaded for it)."""

from __future__ import annotations

import os
import time

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QColor, QPainter, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from imgsim_desktop.ui.text import human_size, resolution, taken

PREVIEW_EDGE = 1600  # device pixels on the long side
SHARP_EDGE = 4096  # asked for once the user zooms past the preview's pixels (as the compare view)
ZOOM_STEP = 1.25


class _ImageView(QGraphicsView):
    """The photo in scene units of its own pixels, whatever size the loaded image is."""

    zoomed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setScene(QGraphicsScene(self))
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setBackgroundBrush(QColor("#303030"))
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # arrow keys walk the photos, they do not scroll
        self.item = QGraphicsPixmapItem()
        self.item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.scene().addItem(self.item)
        self.fitting = True
        self.message = QLabel(self.viewport(), alignment=Qt.AlignmentFlag.AlignCenter)
        self.message.setStyleSheet("color: #e0e0e0")

    def set_pixmap(self, pixmap: QPixmap, width: int | None) -> None:
        self.item.setPixmap(pixmap)
        self.item.setScale((width or pixmap.width()) / max(1, pixmap.width()))  # scene units: the photo's pixels
        self.scene().setSceneRect(self.item.sceneBoundingRect())
        self.message.hide()
        if self.fitting:
            self.fit()

    def clear(self, text: str) -> None:
        self.item.setPixmap(QPixmap())
        self.message.setText(text)
        self.message.show()

    def zoom(self) -> float:
        """Screen pixels per photo pixel (1.0 at 1:1)."""
        return self.transform().m11() * self.devicePixelRatioF()

    def fit(self) -> None:
        self.fitting = True
        if not self.item.pixmap().isNull():
            self.fitInView(self.item.sceneBoundingRect(), Qt.AspectRatioMode.KeepAspectRatio)
        self.zoomed.emit()

    def actual_size(self) -> None:
        self.fitting = False
        self.resetTransform()
        self.scale(1 / self.devicePixelRatioF(), 1 / self.devicePixelRatioF())
        self.zoomed.emit()

    def wheelEvent(self, event) -> None:
        steps = event.angleDelta().y() / 120
        if steps and 0.02 < self.zoom() * ZOOM_STEP**steps < 16:
            self.fitting = False
            self.scale(ZOOM_STEP**steps, ZOOM_STEP**steps)
            self.zoomed.emit()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.message.setGeometry(self.viewport().rect())
        if self.fitting:
            self.fit()


class PreviewDialog(QDialog):
    find_similar = Signal(str)

    def __init__(self, view, loader, row: int, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preview")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.resize(1000, 720)
        self._view = view
        self._model = view.model()
        self._loader = loader
        self._row = row
        self.image = _ImageView()
        self.image.setMinimumSize(200, 200)
        self.image.zoomed.connect(self._zoomed)
        self._pixmap: QPixmap | None = None
        self._edge = PREVIEW_EDGE  # what was asked for the photo shown
        fit = QPushButton("Fit")
        fit.setToolTip("The whole photo in the window (F)")
        fit.clicked.connect(self.image.fit)
        actual = QPushButton("1:1")
        actual.setToolTip("The photo's own pixels, one to one (1)")
        actual.clicked.connect(self.image.actual_size)
        self.zoom_label = QLabel(minimumWidth=50)
        for button in (fit, actual):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.facts = QFormLayout()
        facts_box = QWidget()
        facts_box.setLayout(self.facts)
        facts_box.setFixedWidth(300)
        similar = QPushButton("Find similar")
        similar.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # arrow keys belong to the dialog
        similar.clicked.connect(lambda: self.find_similar.emit(self.current_path()))
        side = QVBoxLayout()
        side.addWidget(facts_box)
        side.addStretch(1)
        side.addWidget(QLabel("← → previous / next, Home / End first / last\nwheel zooms, drag pans, Esc closes"))
        side.addWidget(similar)
        zoom_row = QHBoxLayout()
        for w in (fit, actual, self.zoom_label):
            zoom_row.addWidget(w)
        zoom_row.addStretch(1)
        left = QVBoxLayout()
        left.addLayout(zoom_row)
        left.addWidget(self.image, 1)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 1)
        layout.addLayout(side)
        loader.ready.connect(self._image_ready)
        self._model.modelReset.connect(self._follow_photo)  # live reloads, sorting, filtering
        self.show_row(row)

    def current_path(self) -> str:
        return self._path

    def _follow_photo(self) -> None:
        """The grid was rebuilt: find our photo's new row, or close if it left the grid."""
        row = self._model.row_of(self._path)
        if row is None:
            self.close()
            return
        self._row = row
        self._view.setCurrentIndex(self._model.index(row))
        self.setWindowTitle(f"{os.path.basename(self._path)} — {row + 1} of {self._model.rowCount()}")

    def step(self, delta: int) -> None:
        row = self._row + delta
        if 0 <= row < self._model.rowCount():
            self.show_row(row)

    def show_row(self, row: int) -> None:
        self._row = row
        item = self._model.item(row)
        photo = item.photo
        self._path = photo.path
        self._view.setCurrentIndex(self._model.index(row))
        self.setWindowTitle(f"{os.path.basename(photo.path)} — {row + 1} of {self._model.rowCount()}")
        while self.facts.rowCount():
            self.facts.removeRow(0)
        rows = [
            ("File", os.path.basename(photo.path)),
            ("Folder", os.path.dirname(photo.path)),
            ("Size", human_size(photo.size)),
            ("Resolution", resolution(photo.width, photo.height)),
            ("Taken", taken(photo.taken_at)),
            ("Camera", photo.camera or "—"),
            ("Modified", time.strftime("%Y-%m-%d %H:%M", time.localtime(photo.mtime_ns / 1e9))),
        ]
        if item.score is not None:
            rows.insert(0, ("Similarity", f"{item.score:.3f}"))
        for label, value in rows:
            text = QLabel(value, wordWrap=True)
            text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.facts.addRow(f"<b>{label}</b>", text)
        self._pixmap = None
        self._width = photo.width
        self._edge = PREVIEW_EDGE
        self.image.fitting = True  # each photo starts whole
        self.image.clear("Loading…")
        self._loader.request(photo.path, photo.mtime_ns, PREVIEW_EDGE)

    @Slot(str, int, object)
    def _image_ready(self, path: str, edge: int, image) -> None:
        if edge != self._edge or path != self.current_path():
            return
        self._pixmap = QPixmap.fromImage(image)
        self.image.set_pixmap(self._pixmap, self._width)

    def _zoomed(self) -> None:
        zoom = self.image.zoom()
        self.zoom_label.setText(f"{zoom:.0%}")
        # Zoomed past the pixels the preview has: ask once for a sharper one (up to the photo's own).
        if self._pixmap is not None and self._edge == PREVIEW_EDGE and zoom * self.image.item.scale() > 1.01 and self._pixmap.width() < (self._width or 0):
            item = self._model.item(self._row)
            if item is not None and item.photo.path == self._path:
                self._edge = SHARP_EDGE
                self._loader.request(item.photo.path, item.photo.mtime_ns, SHARP_EDGE)

    def keyPressEvent(self, event) -> None:
        steps = {Qt.Key.Key_Right: 1, Qt.Key.Key_Down: 1, Qt.Key.Key_Left: -1, Qt.Key.Key_Up: -1}
        if event.key() in steps:
            self.step(steps[event.key()])
        elif event.key() == Qt.Key.Key_Home:
            self.show_row(0)
        elif event.key() == Qt.Key.Key_End and self._model.rowCount():
            self.show_row(self._model.rowCount() - 1)
        elif event.key() == Qt.Key.Key_F:
            self.image.fit()
        elif event.key() == Qt.Key.Key_1:
            self.image.actual_size()
        else:
            super().keyPressEvent(event)

    def done(self, result: int) -> None:  # Esc and the close button both end here
        for signal, slot in ((self._loader.ready, self._image_ready), (self._model.modelReset, self._follow_photo)):
            try:
                signal.disconnect(slot)
            except (RuntimeError, TypeError):
                pass
        super().done(result)

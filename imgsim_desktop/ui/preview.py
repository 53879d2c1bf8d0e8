"""A larger look at one photo with its metadata; arrow keys walk through the grid it came from."""

from __future__ import annotations

import os
import time

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QDialog, QFormLayout, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from imgsim_desktop.ui.text import human_size, resolution, taken

PREVIEW_EDGE = 1600  # device pixels on the long side


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
        self.image = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.image.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.image.setMinimumSize(200, 200)
        self._pixmap: QPixmap | None = None
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
        side.addWidget(QLabel("← → previous / next, Esc closes"))
        side.addWidget(similar)
        layout = QHBoxLayout(self)
        layout.addWidget(self.image, 1)
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
        self.image.setText("Loading…")
        self._loader.request(photo.path, photo.mtime_ns, PREVIEW_EDGE)

    @Slot(str, int, object)
    def _image_ready(self, path: str, edge: int, image) -> None:
        if edge != PREVIEW_EDGE or path != self.current_path():
            return
        self._pixmap = QPixmap.fromImage(image)
        self._fit()

    def _fit(self) -> None:
        if self._pixmap is None:
            return
        dpr = self.devicePixelRatioF()
        target = self.image.size() * dpr
        scaled = self._pixmap.scaled(target, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        scaled.setDevicePixelRatio(dpr)
        self.image.setPixmap(scaled)

    def keyPressEvent(self, event) -> None:
        steps = {Qt.Key.Key_Right: 1, Qt.Key.Key_Down: 1, Qt.Key.Key_Left: -1, Qt.Key.Key_Up: -1}
        if event.key() in steps:
            self.step(steps[event.key()])
        else:
            super().keyPressEvent(event)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit()

    def done(self, result: int) -> None:  # Esc and the close button both end here
        for signal, slot in ((self._loader.ready, self._image_ready), (self._model.modelReset, self._follow_photo)):
            try:
                signal.disconnect(slot)
            except (RuntimeError, TypeError):
                pass
        super().done(result)

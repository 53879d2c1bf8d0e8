"""The main window. For now: the library at a glance (folders, photo count, model and device)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMainWindow, QVBoxLayout, QWidget

from imgsim_desktop import paths
from imgsim_desktop.core.backbones import get_model
from imgsim_desktop.core.engine import CATALOG_NAME
from imgsim_desktop.storage.catalog import Catalog


class MainWindow(QMainWindow):
    def __init__(self, data_dir: str | None = None, model: str | None = None) -> None:
        super().__init__()
        self.setWindowTitle("imgsim-desktop")
        self.resize(900, 600)
        self.data_dir = paths.data_dir(data_dir)
        with Catalog(self.data_dir / CATALOG_NAME) as catalog:
            stats = catalog.stats()
        spec = get_model(model, self.data_dir)
        count = stats["embeddings"].get(spec.name, 0)
        self.count_label = QLabel(f"{count} photos in the library", alignment=Qt.AlignmentFlag.AlignCenter)
        font = self.count_label.font()
        font.setPointSize(font.pointSize() * 2)
        self.count_label.setFont(font)
        folders = "\n".join(stats["roots"]) or "No folders yet: add one with `imgsim index FOLDER`."
        details = QLabel(f"{folders}\n\nModel: {spec.title}", alignment=Qt.AlignmentFlag.AlignCenter)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addStretch(1)
        layout.addWidget(self.count_label)
        layout.addWidget(details)
        layout.addStretch(1)
        self.setCentralWidget(body)
        self.statusBar().showMessage(f"Data: {self.data_dir}")

"""The sidebar: "All photos" plus each library folder, with add / rescan / exclude / remove."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QMenu, QPushButton, QVBoxLayout, QWidget

_ROOT = Qt.ItemDataRole.UserRole


class LibrarySidebar(QWidget):
    folder_chosen = Signal(str)  # "" for all photos
    add_requested = Signal()
    rescan_requested = Signal(str)
    exclude_requested = Signal(str)
    remove_requested = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.roots: list[str] = []
        self.list = QListWidget()
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.currentItemChanged.connect(lambda item, _prev: self.folder_chosen.emit(self._root(item)))
        add_button = QPushButton("Add folder…")
        add_button.clicked.connect(self.add_requested)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 0, 6)
        layout.addWidget(QLabel("<b>Library</b>"))
        layout.addWidget(self.list, 1)
        layout.addWidget(add_button)
        self.set_roots([])

    @staticmethod
    def _root(item: QListWidgetItem | None) -> str:
        # "" rather than None for "All photos": item.data() yielding None is unsafe in some PySide6 builds.
        return (item.data(_ROOT) if item else "") or ""

    def set_roots(self, roots: list[str]) -> None:
        """Show these folders, keeping the current selection when it still exists."""
        self.roots = list(roots)
        selected = self._root(self.list.currentItem())
        self.list.blockSignals(True)
        self.list.clear()
        all_item = QListWidgetItem("All photos")
        all_item.setData(_ROOT, "")
        self.list.addItem(all_item)
        for root in roots:
            item = QListWidgetItem(os.path.basename(root.rstrip(os.sep)) or root)
            item.setToolTip(root)
            item.setData(_ROOT, root)
            self.list.addItem(item)
            if root == selected:
                self.list.setCurrentItem(item)
        if self.list.currentItem() is None:
            self.list.setCurrentRow(0)
        self.list.blockSignals(False)

    def _menu(self, pos) -> None:
        root = self._root(self.list.itemAt(pos))
        menu = QMenu(self)
        menu.addAction("Add folder…", self.add_requested.emit)
        if root:
            menu.addAction("Rescan", lambda: self.rescan_requested.emit(root))
            menu.addAction("Exclude a subfolder…", lambda: self.exclude_requested.emit(root))
            menu.addAction("Remove from library", lambda: self.remove_requested.emit(root))
        menu.exec(self.list.mapToGlobal(pos))

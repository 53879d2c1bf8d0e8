"""The sidebar: "All photos", each library folder and its subfolders with their photo counts, and
the folder actions as buttons under it (add, rescan, exclude a subfolder, remove), also on right-click.
Choosing a folder shows its photos in the grid."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMenu, QPushButton, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from imgsim_desktop.ui.text import readable

_FOLDER = Qt.ItemDataRole.UserRole  # an index into the sidebar's folder list ("" for All photos)
_ROOT = Qt.ItemDataRole.UserRole + 1


class LibrarySidebar(QWidget):
    folder_chosen = Signal(str, str)  # folder ("" for all photos), the library folder it is in
    add_requested = Signal()
    rescan_requested = Signal(str)
    exclude_requested = Signal(str)
    remove_requested = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.roots: list[str] = []
        self._paths: list[str] = []  # every photo's path, for the subfolders and counts
        self._folders: list[str] = []  # items keep an index here: a Qt string would drop undecodable bytes
        self.tree = QTreeWidget()
        self.tree.setHeaderHidden(True)
        self.tree.setColumnCount(2)
        self.tree.header().setStretchLastSection(False)
        self.tree.header().setSectionResizeMode(0, self.tree.header().ResizeMode.Stretch)
        self.tree.header().setSectionResizeMode(1, self.tree.header().ResizeMode.ResizeToContents)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._menu)
        self.tree.currentItemChanged.connect(self._chosen)
        self.list = self.tree  # the window's older name for it
        add_button = QPushButton("Add folder…")
        add_button.clicked.connect(self.add_requested)
        self.rescan_button = QPushButton("Rescan")
        self.rescan_button.setToolTip("Look for new, changed and deleted photos in the chosen library folder")
        self.rescan_button.clicked.connect(lambda: self.rescan_requested.emit(self.current_root()))
        self.exclude_button = QPushButton("Exclude…")
        self.exclude_button.setToolTip("Leave a subfolder of the chosen library folder out of the library")
        self.exclude_button.clicked.connect(lambda: self.exclude_requested.emit(self.current_root()))
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Stop showing the chosen library folder (the photos themselves are not touched)")
        self.remove_button.clicked.connect(lambda: self.remove_requested.emit(self.current_root()))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 0, 6)
        layout.addWidget(QLabel("<b>Library</b>"))
        layout.addWidget(self.tree, 1)
        for pair in ((add_button, self.rescan_button), (self.exclude_button, self.remove_button)):  # two a row: the sidebar stays narrow
            row = QHBoxLayout()
            for button in pair:
                row.addWidget(button)
            layout.addLayout(row)
        self._rebuild()

    # --- content -------------------------------------------------------------------------------

    def set_roots(self, roots: list[str]) -> None:
        """Show these library folders, keeping the chosen folder when it still exists."""
        if list(roots) != self.roots:
            self.roots = list(roots)
            self._rebuild()

    def set_photos(self, paths: list[str]) -> None:
        """The library's photos: their folders and counts."""
        self._paths = paths
        self._rebuild()

    def _rebuild(self) -> None:
        chosen = self.current_folder()
        expanded = {self._folder_of(it) for it in self._items() if it.isExpanded()}
        self.tree.blockSignals(True)
        self.tree.clear()
        self._folders = [""]
        self._index: dict[str, int] = {"": 0}
        counts = self._counts()
        all_item = QTreeWidgetItem(self.tree, ["All photos", f"{len(self._paths):,}"])
        all_item.setData(0, _FOLDER, 0)
        all_item.setData(0, _ROOT, 0)
        items = {"": all_item}
        for root in self.roots:
            top = self._add(self.tree, root, os.path.basename(root.rstrip(os.sep)) or root, counts.get(root, 0), root)
            items[root] = top
            for folder in sorted(f for f in counts if f != root and f.startswith(root.rstrip(os.sep) + os.sep)):
                parent = items.get(os.path.dirname(folder), top)
                items[folder] = self._add(parent, folder, os.path.basename(folder), counts[folder], root)
        for folder, item in items.items():
            item.setExpanded(folder in expanded)
        self.tree.setCurrentItem(items.get(chosen, all_item))
        self.tree.blockSignals(False)
        self._update_buttons()

    def _add(self, parent, folder: str, name: str, count: int, root: str) -> QTreeWidgetItem:
        item = QTreeWidgetItem(parent, [readable(name), f"{count:,}"])
        item.setToolTip(0, readable(folder))
        item.setData(0, _FOLDER, len(self._folders))
        self._folders.append(folder)
        self._index.setdefault(folder, len(self._folders) - 1)
        item.setData(0, _ROOT, self._index[root])
        return item

    def _counts(self) -> dict[str, int]:
        """Photos under each folder of each root (subfolders included), every level down to the photos' own."""
        counts: dict[str, int] = {}
        by_folder: dict[str, int] = {}
        for path in self._paths:
            folder = os.path.dirname(path)
            by_folder[folder] = by_folder.get(folder, 0) + 1
        for root in self.roots:
            prefix = root.rstrip(os.sep) + os.sep
            for folder, n in by_folder.items():
                if folder == root or folder.startswith(prefix):
                    while True:  # this folder and each above it up to the root
                        counts[folder] = counts.get(folder, 0) + n
                        if folder == root or len(folder) <= len(root):
                            break
                        folder = os.path.dirname(folder)
        return counts

    # --- what is chosen ------------------------------------------------------------------------

    def _items(self):
        stack = [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        while stack:
            item = stack.pop()
            yield item
            stack.extend(item.child(i) for i in range(item.childCount()))

    def _folder_of(self, item: QTreeWidgetItem | None, role=_FOLDER) -> str:
        key = item.data(0, role) if item is not None else None
        return self._folders[key] if isinstance(key, int) and 0 <= key < len(self._folders) else ""

    def current_folder(self) -> str:
        return self._folder_of(self.tree.currentItem())

    def current_root(self) -> str:
        return self._folder_of(self.tree.currentItem(), _ROOT)

    def choose(self, folder: str) -> None:
        """Choose a folder, as a click on it would ("" for All photos)."""
        item = next((it for it in self._items() if self._folder_of(it) == folder), None)
        if item is not None:
            self.tree.setCurrentItem(item)

    def _chosen(self, item, _previous) -> None:
        self._update_buttons()
        self.folder_chosen.emit(self._folder_of(item), self._folder_of(item, _ROOT))

    def _update_buttons(self) -> None:
        root = self.current_root()
        for button in (self.rescan_button, self.exclude_button, self.remove_button):
            button.setEnabled(bool(root))

    def _menu(self, pos) -> None:
        item = self.tree.itemAt(pos)
        root = self._folder_of(item, _ROOT)
        menu = QMenu(self)
        menu.addAction("Add folder…", self.add_requested.emit)
        if root:
            menu.addAction("Rescan", lambda: self.rescan_requested.emit(root))
            menu.addAction("Exclude a subfolder…", lambda: self.exclude_requested.emit(root))
            menu.addAction("Remove from library", lambda: self.remove_requested.emit(root))
        menu.exec(self.tree.mapToGlobal(pos))

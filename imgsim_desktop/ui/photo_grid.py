"""The thumbnail grid view."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QListView

from imgsim_desktop.ui.photo_model import Item, PhotoListModel
from imgsim_desktop.ui.tile_delegate import PADDING, TEXT_HEIGHT, TileDelegate


class PhotoGrid(QListView):
    """Icon-mode list view with uniform tiles: the layout cost stays flat at 50k items."""

    def __init__(self, model: PhotoListModel, parent=None) -> None:
        super().__init__(parent)
        self.setModel(model)
        self.tile_delegate = TileDelegate(self)
        self.setItemDelegate(self.tile_delegate)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(2000)
        self.setSelectionMode(QListView.SelectionMode.ExtendedSelection)
        self.setVerticalScrollMode(QListView.ScrollMode.ScrollPerPixel)
        self.verticalScrollBar().setSingleStep(40)
        self.setMouseTracking(True)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.set_tile(160)

    def set_tile(self, edge: int) -> None:
        self.tile_delegate.tile = edge
        self.setGridSize(QSize(edge + 2 * PADDING, edge + TEXT_HEIGHT + 2 * PADDING))
        self.doItemsLayout()

    def current_item(self) -> Item | None:
        index = self.currentIndex()
        return self.model().item(index.row()) if index.isValid() else None

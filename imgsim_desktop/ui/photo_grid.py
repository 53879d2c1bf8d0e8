"""The thumbnail grid view."""

from __future__ import annotations

from PySide6.QtCore import QItemSelection, QItemSelectionModel, QSize, Qt
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
        # The model is reset by live reloads during indexing, sorting and filtering: the user's
        # current photo and selection must survive that.
        self._kept: tuple[str | None, list[str]] = (None, [])
        model.modelAboutToBeReset.connect(self._remember_selection)
        model.modelReset.connect(self._restore_selection)

    def set_tile(self, edge: int) -> None:
        self.tile_delegate.tile = edge
        self.setGridSize(QSize(edge + 2 * PADDING, edge + TEXT_HEIGHT + 2 * PADDING))
        self.doItemsLayout()

    def current_item(self) -> Item | None:
        index = self.currentIndex()
        return self.model().item(index.row()) if index.isValid() else None

    def selected_paths(self) -> list[str]:
        model = self.model()
        return [item.photo.path for index in self.selectionModel().selectedIndexes() if (item := model.item(index.row()))]

    def _remember_selection(self) -> None:
        current = self.current_item()
        self._kept = (current.photo.path if current else None, self.selected_paths())

    def _restore_selection(self) -> None:
        model, (current, selected) = self.model(), self._kept
        rows = sorted(r for p in selected if (r := model.row_of(p)) is not None)
        selection = QItemSelection()
        start = prev = None
        for r in [*rows, None]:  # contiguous runs become one range each
            if start is not None and r == prev + 1:
                prev = r
                continue
            if start is not None:
                selection.select(model.index(start), model.index(prev))
            start = prev = r
        flags = QItemSelectionModel.SelectionFlag
        if current is not None and (row := model.row_of(current)) is not None:
            self.selectionModel().setCurrentIndex(model.index(row), flags.NoUpdate)
        self.selectionModel().select(selection, flags.ClearAndSelect)

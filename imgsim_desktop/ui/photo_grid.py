"""The thumbnail grid view."""

from __future__ import annotations

from PySide6.QtCore import QItemSelection, QItemSelectionModel, QModelIndex, QPoint, QSize, Qt, Signal
from PySide6.QtGui import QCursor, QFontMetrics
from PySide6.QtWidgets import QLabel, QListView, QStyle

from imgsim_desktop.ui.photo_model import Item, PhotoListModel
from imgsim_desktop.ui.tile_delegate import PADDING, TileDelegate, bold, stack_text, text_height


class PhotoGrid(QListView):
    """Icon-mode list view with uniform tiles: the layout cost stays flat at 50k items."""

    zoom_requested = Signal(int)  # Ctrl+wheel: +1 larger tiles, -1 smaller

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
        # Said in the middle of the grid when it has nothing to show (a filter that matches nothing).
        self.empty_label = QLabel(self.viewport(), alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.empty_label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.empty_label.hide()
        self._empty_text = ""
        self.set_tile(160)
        # The model is reset by live reloads during indexing, sorting and filtering: the user's
        # current photo and selection must survive that.
        self._kept: tuple[str | None, list[str]] = (None, [])
        model.modelAboutToBeReset.connect(self._remember_selection)
        model.modelReset.connect(self._restore_selection)
        model.modelReset.connect(self._update_empty)

    def set_tile(self, edge: int) -> None:
        self.tile_delegate.tile = edge
        self._fit_columns()

    def _fit_columns(self) -> None:
        """As many whole tiles as fit across, the spare width shared between them: no empty band
        at the right edge."""
        edge = self.tile_delegate.tile
        least = edge + 2 * PADDING
        # The width Qt lays tiles out in: it keeps room for the scroll bar, shown or not.
        scroll_bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent, None, self.verticalScrollBar())
        width = self.maximumViewportSize().width() - scroll_bar
        columns = max(1, width // least)
        cell = max(least, width // columns) if width > least else least
        size = QSize(cell, edge + text_height(edge) + 2 * PADDING)
        if size != self.gridSize():
            self.setGridSize(size)
            self.doItemsLayout()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_columns()
        self.empty_label.setGeometry(self.viewport().rect().adjusted(20, 20, -20, -20))

    def wheelEvent(self, event) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:  # as in digiKam, Finder, Photos
            steps = event.angleDelta().y() // 120
            if steps:
                self.zoom_requested.emit(1 if steps > 0 else -1)
            event.accept()
            return
        super().wheelEvent(event)

    def mousePressEvent(self, event) -> None:
        """A click on a stack's count badge shows its copies, or stacks them again."""
        index = self.indexAt(event.position().toPoint())
        model = self.model()
        item = model.item(index.row()) if index.isValid() else None
        if item is not None and item.copies and event.button() == Qt.MouseButton.LeftButton:
            text = stack_text(item, model.stack_state(item) == "open")
            metrics = QFontMetrics(bold(self.font()))
            if self.tile_delegate.stack_badge(self.visualRect(index), metrics, text).contains(event.position().toPoint()):
                model.toggle_stack(item.photo.path)
                event.accept()
                return
        super().mousePressEvent(event)

    def set_empty_text(self, text: str) -> None:
        """What the grid says while it shows nothing ("" says nothing)."""
        self._empty_text = text
        self._update_empty()

    def _update_empty(self) -> None:
        empty = self.model().rowCount() == 0 and bool(self._empty_text)
        self.empty_label.setText(self._empty_text)
        self.empty_label.setVisible(empty)

    def current_item(self) -> Item | None:
        index = self.currentIndex()
        return self.model().item(index.row()) if index.isValid() else None

    def selected_paths(self) -> list[str]:
        model = self.model()
        return [item.photo.path for index in self.selectionModel().selectedIndexes() if (item := model.item(index.row()))]

    def anchor(self) -> tuple[str, int] | None:
        """The tile the eye is on and how far down the viewport its top is: the one under the
        pointer, else the current one if it is on screen, else the first one shown."""
        area = self.viewport().rect()
        pointer = self.viewport().mapFromGlobal(QCursor.pos())
        index = self.indexAt(pointer) if area.contains(pointer) else QModelIndex()
        if not index.isValid() and self.currentIndex().isValid() and self.visualRect(self.currentIndex()).intersects(area):
            index = self.currentIndex()
        if not index.isValid():
            index = self.indexAt(area.topLeft() + QPoint(PADDING + 1, PADDING + 1))
        item = self.model().item(index.row()) if index.isValid() else None
        return (item.photo.path, self.visualRect(index).top()) if item else None

    def hold(self, anchor: tuple[str, int] | None) -> None:
        """Scroll so that the anchor's tile (see anchor()) is as high in the viewport as it was,
        to the pixel: rows put in above it do not move it under the pointer."""
        row = self.model().row_of(anchor[0]) if anchor else None
        if row is None:
            return
        self.executeDelayedItemsLayout()
        self.updateGeometries()  # the scroll bar's range for the new rows, before it is set
        bar = self.verticalScrollBar()
        bar.setValue(bar.value() + self.visualRect(self.model().index(row)).top() - anchor[1])

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

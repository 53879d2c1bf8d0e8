"""The grid's list model: photos (library or search results), sorted and filtered in Python lists,
which stays fast at 50k rows where a proxy model's per-row callbacks would not."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt

from imgsim_desktop.storage.catalog import PhotoRow
from imgsim_desktop.ui.text import readable

PathRole = Qt.ItemDataRole.UserRole + 1
ScoreRole = Qt.ItemDataRole.UserRole + 2
ItemRole = Qt.ItemDataRole.UserRole + 3
IsQueryRole = Qt.ItemDataRole.UserRole + 4

SORTS = {
    "date": lambda it: (it.photo.taken_at or "", it.photo.mtime_ns),  # date taken, else file time
    "name": lambda it: it.name.lower(),
    "folder": lambda it: (it.folder.lower(), it.name.lower()),
}


@dataclass
class Item:
    photo: PhotoRow
    score: float | None = None
    is_query: bool = False
    copies: list[Item] = field(default_factory=list)  # results: near-identical copies stacked under this one (core.stacks)

    @property
    def name(self) -> str:
        return os.path.basename(self.photo.path)

    @property
    def folder(self) -> str:
        return os.path.dirname(self.photo.path)


class PhotoListModel(QAbstractListModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._all: list[Item] = []
        self._rows: list[Item] = []
        self._row_of: dict[str, int] = {}
        self._sort = "date"
        self._descending = True
        self._filter = ""
        self._folder: str | None = None
        self._root: str | None = None
        self.version = 0
        self._min_score: float | None = None  # results: "only close matches"
        self._open: set[str] = set()  # results: stacks whose copies are shown
        self._in_stack: set[str] = set()  # the copies shown of open stacks
        self.thumbnail_for = None  # callable(Item) -> QPixmap | None, set by the view's owner

    # --- content -------------------------------------------------------------------------------

    def set_items(self, items: list[Item], keep_order: bool = False) -> None:
        """Replace the content. Results keep their rank order; the library is sorted."""
        self._all = items
        self._open = set()
        self.version += 1  # new content, not a new order or filter
        self._keep_order = keep_order
        self._apply()

    def set_sort(self, key: str, descending: bool | None = None) -> None:
        self._sort = key
        if descending is not None:
            self._descending = descending
        self._apply()

    def set_filter(self, text: str) -> None:
        self._filter = text.strip().lower()
        self._apply()

    def set_min_score(self, score: float | None) -> None:
        self._min_score = score
        self._apply()

    def toggle_stack(self, path: str) -> None:
        """Show the copies stacked under the photo at ``path`` right after it, or stack them again."""
        self._open ^= {path}
        self._apply()

    def stack_state(self, item: Item) -> str | None:
        """"closed" or "open" for a stack's top photo, "copy" for a copy shown of an open stack."""
        if item.copies:
            return "open" if item.photo.path in self._open else "closed"
        return "copy" if item.photo.path in self._in_stack else None

    @property
    def folder(self) -> str | None:
        """The library folder whose photos (or a subfolder's) are shown; None: all photos."""
        return self._root if self._folder else None

    @property
    def subfolder(self) -> str | None:
        """The folder shown: the library folder itself or one inside it."""
        return self._folder

    def set_folder(self, folder: str | None, root: str | None = None) -> None:
        self._folder = folder
        self._root = root or folder
        self._apply()

    def _apply(self) -> None:
        rows = self._chosen(self._all)
        if not getattr(self, "_keep_order", False):
            rows = sorted(rows, key=SORTS[self._sort], reverse=self._descending and self._sort == "date")
        if self._open:  # an open stack's copies follow their top photo
            self._in_stack = {c.photo.path for it in rows if it.photo.path in self._open for c in self._chosen(it.copies)}
            rows = [shown for it in rows for shown in [it, *(self._chosen(it.copies) if it.photo.path in self._open else [])]]
        else:
            self._in_stack = set()
        self.beginResetModel()
        self._rows = rows
        self._row_of = {it.photo.path: i for i, it in enumerate(rows)}
        self.endResetModel()

    def _chosen(self, rows: list[Item]) -> list[Item]:
        """``rows`` less those the folder, the score cut-off or the name filter leave out."""
        if self._folder:
            prefix = self._folder.rstrip(os.sep) + os.sep
            rows = [it for it in rows if it.photo.path.startswith(prefix)]
        if self._min_score is not None:
            rows = [it for it in rows if it.is_query or it.score is None or it.score >= self._min_score]
        if self._filter:  # a search's query stays: the results say what they are like
            rows = [it for it in rows if it.is_query or self._filter in it.name.lower()]
        return rows

    def item(self, row: int) -> Item | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def row_of(self, path: str) -> int | None:
        return self._row_of.get(path)

    def refresh_path(self, path: str) -> None:
        """A thumbnail arrived: repaint that tile only."""
        row = self._row_of.get(path)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])

    def total(self) -> int:
        return len(self._all)

    def filtered(self) -> bool:
        return bool(self._filter) or self._min_score is not None

    def shown_count(self) -> int:
        """Photos on screen, a search's query not counted."""
        return sum(1 for it in self._rows if not it.is_query)

    def filterable_count(self) -> int:
        """Photos the filter chooses from (those of the chosen folder), a search's query not counted."""
        shown = [it for it in self._all if not it.is_query] + [c for it in self._all if it.photo.path in self._open for c in it.copies]
        if not self._folder:
            return len(shown)
        prefix = self._folder.rstrip(os.sep) + os.sep
        return sum(1 for it in shown if it.photo.path.startswith(prefix))

    def all_photos(self) -> list[PhotoRow]:
        """Every photo the model holds, whatever the filter."""
        return [it.photo for it in self._all]

    # --- Qt model interface --------------------------------------------------------------------

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        it = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return readable(it.name)
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = readable(it.photo.path) if it.score is None else f"{readable(it.photo.path)}\nsimilarity {it.score:.3f}"
            if it.copies:
                shown = "click the badge to stack them again" if it.photo.path in self._open else "click the badge to show them"
                tip += f"\n{len(it.copies) + 1} near-identical copies stacked: {shown}"
            return tip
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbnail_for(it) if self.thumbnail_for else None
        if role == PathRole:
            return it.photo.path
        if role == ScoreRole:
            return it.score
        if role == IsQueryRole:
            return it.is_query
        if role == ItemRole:
            return it
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

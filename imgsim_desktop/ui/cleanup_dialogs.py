"""Cleanup history (every action, with undo for moves) and the keeper's folder lists."""

from __future__ import annotations

import os
import time
from itertools import groupby

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
)

from imgsim_desktop.core.cleanup import companion_kind
from imgsim_desktop.core.companions import counted, noun, with_companions
from imgsim_desktop.core.trash_info import FREEDESKTOP, elsewhere_note
from imgsim_desktop.ui.text import human_size, photos, readable

VERBS = {"trash": "Moved to the Trash", "move": "Moved", "restore": "Moved back", "metadata": "Kept the metadata of removed copies in",
         "metadata-undo": "Took the kept metadata out of"}  # fmt: skip
BatchRole = Qt.ItemDataRole.UserRole + 1


class CleanupHistoryDialog(QDialog):
    """What cleanup did, newest first: one row per cleanup, its photos beneath (what, from, to, when)."""

    undo_requested = Signal(str)  # batch

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Cleanup history")
        self.resize(900, 500)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["What", "From", "To", "When"])
        self.tree.header().resizeSection(0, 260)
        self.tree.header().resizeSection(1, 300)
        self.tree.currentItemChanged.connect(lambda *_: self._update_undo())
        self.undo_button = QPushButton("Undo this cleanup")
        self.undo_button.setToolTip("Move the photos of this cleanup back where they were, from the folder they went to or from the Trash")
        self.undo_button.clicked.connect(self._undo)
        note = QLabel("Undo brings photos back from the Trash too, unless the Trash was emptied since." if FREEDESKTOP
                      else f"Photos moved to the Trash cannot be brought back from here: {elsewhere_note().replace('it is', 'they are', 1)}.")  # fmt: skip
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(self.undo_button)
        row.addWidget(note, 1)
        row.addWidget(buttons)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tree, 1)
        layout.addLayout(row)
        self._undoable: set[str] = set()
        self._update_undo()

    def show_actions(self, actions: list[dict]) -> None:
        self.tree.clear()
        self._undoable = set()
        batches = [(b, list(acts)) for b, acts in groupby(actions, key=lambda a: a["batch"])]
        for batch, acts in reversed(batches):
            done = [a for a in acts if a["action"] in ("move", "trash")]
            restored = [a for a in acts if a["action"] == "restore"]
            kept = [a for a in acts if a["action"] == "metadata"]
            first = done[0] if done else acts[0]
            size = human_size(sum(a["size"] or 0 for a in done))
            target = os.path.dirname(first["target"]) if first["action"] == "move" and first["target"] else ""
            kinds = [found[0] for a in done if (found := companion_kind(a))]
            what = with_companions(photos(len(done) - len(kinds)), kinds)  # "Moved 3 photos (and 2 sidecars)"
            title = f"{VERBS[first['action']]} {what} ({size})" + (f", {len(restored)} moved back" if restored else "")
            title += f"; their metadata kept in {len(kept)} sidecar{'s' * (len(kept) != 1)}" if kept else ""
            top = QTreeWidgetItem(self.tree, [title, "", target, _when(first["at"])])
            top.setData(0, BatchRole, batch)
            for a in acts:
                found = companion_kind(a)
                what = VERBS[a["action"]] + (f" ({noun(found[0])}, with its photo)" if found else "") + (" (undone)" if a["undone_at"] else "")
                child = QTreeWidgetItem(top, [what, a["source"], a["target"] or ("system Trash" if a["action"] == "trash" else ""), _when(a["at"])])
                child.setData(0, BatchRole, batch)
            if any((a["action"] in ("move", "trash") and a["target"] or a["action"] == "metadata") and not a["undone_at"] for a in acts):
                self._undoable.add(batch)
        self.tree.resizeColumnToContents(0)
        if self.tree.topLevelItemCount():
            self.tree.setCurrentItem(self.tree.topLevelItem(0))
        self._update_undo()

    def _current_batch(self) -> str | None:
        item = self.tree.currentItem()
        return item.data(0, BatchRole) if item is not None else None

    def _update_undo(self) -> None:
        self.undo_button.setEnabled(self._current_batch() in self._undoable)

    def _undo(self) -> None:
        batch = self._current_batch()
        if batch in self._undoable:
            self.undo_button.setEnabled(False)
            self.undo_requested.emit(batch)


def cleanup_question(count: int, size: int, mode: str, move_to: str | None, along: list | None, keep_metadata: bool = False) -> str:
    """What a cleanup asks before it touches anything (the duplicates page, Delete on a grid):
    "Move 3 photos (4.1 MB), with 2 sidecars that belong to them, to the Trash?" and what can be undone.
    ``along``: the companions going with them; None where they are not known yet (Delete: the worker finds them)."""
    where = "to the Trash" if mode == "trash" else f"to\n{move_to}"
    after = "You can undo this from History." if mode == "move" or FREEDESKTOP else f"You can restore them from the system Trash ({elsewhere_note()})."
    extra = f", with {counted(c.kind for c in along)} that belong to them," if along else ""
    extra = ", with any sidecar, RAW or Live Photo file that belongs to them," if along is None else extra
    along = along or []
    listed = "\n\nGoing with them: " + ", ".join(f"{readable(os.path.basename(c.path))} ({noun(c.kind)})" for c in along[:6]) if along else ""
    listed += f" and {len(along) - 6} more" if len(along) > 6 else ""
    kept = "\n\nWhat they carry and the photo kept lacks (date, place, keywords, rating, title) goes into its XMP sidecar first." if keep_metadata else ""
    return f"Move {photos(count)} ({human_size(size)}){extra} {where}?{listed}{kept}\n\n{after}"


def cleanup_outcome(result, move_to: str | None) -> str:
    """What a cleanup did, in one line: "Moved 3 photos (and 2 sidecars) to the Trash: 4.1 MB freed"."""
    what = with_companions(photos(len(result.photos)), result.companion_kinds)
    if not result.done:
        return "Nothing was moved."
    kept = getattr(result, "metadata", None)
    kept = f"; their metadata kept in {len(kept)} sidecar{'s' * (len(kept) != 1)}" if kept else ""
    if any(d["action"] == "trash" for d in result.done):
        return f"Moved {what} to the Trash: {human_size(result.bytes_freed)} freed{kept}"
    return f"Moved {what} ({human_size(result.bytes_freed)}) out of the library, to {move_to}{kept}"


def left_in_place(result) -> str | None:
    """Why some chosen photos were not touched (failed, changed, protected), or None when all went."""
    if not (result.failed or result.refused or result.skipped):
        return None
    lines = [f"{os.path.basename(f['path'])}: {f['error']}" for f in result.failed]
    lines += [f"{os.path.basename(f['path'])}: {f['reason']}" for f in result.skipped]
    lines += [f"{os.path.basename(p)}: in a protected folder; left alone" for p in result.refused]
    if result.stopped:
        lines.append("The destination is full: the rest were not tried.")
    trashed = any(d["action"] == "trash" for d in result.done)
    what = with_companions(photos(len(result.photos)), result.companion_kinds)
    return f"{'Moved to the Trash' if trashed else 'Moved'}: {what}. These were not touched:\n\n" + "\n".join(lines[:20])


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(at))


class KeeperFoldersDialog(QDialog):
    """Preferred folders (their copy is kept) and protected folders (never selected, never touched)."""

    def __init__(self, preferred: list[str], protected: list[str], parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Folders for duplicates")
        self.resize(620, 460)
        layout = QVBoxLayout(self)
        self.preferred = self._folder_list(layout, "Preferred folders: when a photo has copies, the one here is kept.", preferred)
        self.protected = self._folder_list(layout, "Protected folders: photos here are never selected for removal and never moved.", protected)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _folder_list(self, layout: QVBoxLayout, text: str, folders: list[str]) -> QListWidget:
        label = QLabel(text)
        label.setWordWrap(True)
        folder_list = QListWidget()
        folder_list.addItems(folders)
        add = QPushButton("Add…")
        add.clicked.connect(lambda: self._add(folder_list))
        remove = QPushButton("Remove")
        remove.clicked.connect(lambda: [folder_list.takeItem(folder_list.row(i)) for i in folder_list.selectedItems()])
        row = QHBoxLayout()
        row.addWidget(add)
        row.addWidget(remove)
        row.addStretch(1)
        layout.addWidget(label)
        layout.addWidget(folder_list)
        layout.addLayout(row)
        return folder_list

    def _add(self, folder_list: QListWidget) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder")
        if folder:
            folder_list.addItem(os.path.abspath(folder))

    def folders(self) -> tuple[list[str], list[str]]:
        def items(w: QListWidget) -> list[str]:
            return [w.item(i).text() for i in range(w.count())]

        return items(self.preferred), items(self.protected)

"""Delete on a grid: the selected photos go to the Trash the way a cleanup sends them (the same
confirmation and outcome, journaled with their companions, listed in the cleanup history), in the
duplicates worker, never on the GUI thread."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from imgsim_desktop.core.settings import Settings
from imgsim_desktop.storage.catalog import PhotoRow
from imgsim_desktop.ui.cleanup_dialogs import cleanup_outcome, cleanup_question, left_in_place
from imgsim_desktop.ui.text import photos
from imgsim_desktop.workers.duplicates_worker import CHOSEN

WHERE = "in the system Trash (Tools → Cleanup history lists them)"


class TrashSelected(QObject):
    started = Signal(str)  # "Moving 2 photos to the Trash…"
    finished = Signal(str, object)  # the outcome in one line, the paths of the photos that went

    def __init__(self, window: QWidget, settings: Settings) -> None:
        super().__init__(window)
        self.window = window
        self.settings = settings
        self.controller = None

    def set_controller(self, controller) -> None:
        """The window's duplicates worker (replaced when the backbone changes)."""
        self.controller = controller
        controller.trashed.connect(self._trashed)
        controller.failed.connect(self._failed)

    def trash(self, rows: list[PhotoRow]) -> None:
        """Ask, then send ``rows``' photos to the Trash."""
        if not rows:
            return
        question = cleanup_question(len(rows), sum(r.size for r in rows), "trash", None, None)
        if QMessageBox.question(self.window, "Move to the Trash", question) != QMessageBox.StandardButton.Yes:
            return
        self.started.emit(f"Moving {photos(len(rows))} to the Trash…")
        self.controller.trash_chosen(rows, self.settings.protected_folders, self.settings.pair_rule)

    def _trashed(self, result) -> None:
        if problems := left_in_place(result):
            QMessageBox.warning(self.window, "Some photos were left in place", problems)
        outcome = cleanup_outcome(result, None)
        gone = [d["path"] for d in result.photos]
        self.finished.emit(f"{outcome}, {WHERE}" if gone else outcome, gone)

    def _failed(self, request: int, message: str) -> None:
        if request == CHOSEN:
            self.finished.emit(message, [])

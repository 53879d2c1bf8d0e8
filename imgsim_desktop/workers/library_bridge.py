"""The window's link to the library's one writer (core/library_service.py): requests go in as
method calls, what the service reports comes back on the GUI thread as queued signals.

The service runs on its own thread, which opens the engine (loading a model must not freeze the
window), follows the folders and does every write: indexing, folder changes, outside changes.
"""

from __future__ import annotations

import contextlib
import logging
import time

from PySide6.QtCore import QObject, Signal

from imgsim_desktop.core.library_service import LibraryService

log = logging.getLogger(__name__)

PHASES = ("scanning", "building search index")


class LibraryBridge(QObject):
    progress = Signal(int, int, float, float, str)  # done, total, photos/s, seconds left (-1 unknown), phase
    finished = Signal(object)  # IndexReport of requested work (the start's catch-up included)
    other_progress = Signal(str, int, int)  # backbone, done, total: indexing with another backbone for a comparison
    other_finished = Signal(object)  # its IndexReport (report.model says which)
    changes = Signal(object)  # IndexReport of changes made outside the app
    busy_changed = Signal(bool)
    folders_changed = Signal(object)  # the library's folders, after an add, remove or exclude
    mode_changed = Signal(object)  # WatchMode
    rebuilt = Signal(object)  # the new search index generation's meta
    provider_ready = Signal(str)
    error = Signal(str)

    def __init__(self, data_dir: str, model: str, device: str = "auto", threads: int | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._started_at = 0.0
        self._first_done = 0
        self.busy = False
        self.busy_changed.connect(self._note_busy)
        self.service = LibraryService(
            str(data_dir), model, device, threads, watch=True,
            on_report=self._report, on_progress=self._progress, on_busy=self._safe(self.busy_changed),
            on_folders=self._safe(self.folders_changed), on_mode=self._safe(self.mode_changed), on_rebuild=self._safe(self.rebuilt),
            on_provider=self._safe(self.provider_ready), on_error=self._safe(self.error),
        )  # fmt: skip
        self._stopped = False

    def _safe(self, signal):
        """``signal.emit`` for the service's threads: silent once the window let go of this bridge."""

        def emit(*args) -> None:
            if not self._stopped:
                with contextlib.suppress(RuntimeError):  # "Signal source has been deleted": the window is gone
                    signal.emit(*args)

        return emit

    def start(self) -> None:
        """Open the library, follow its folders and catch up with what changed while the app was closed."""
        self.service.start()

    # --- requests --------------------------------------------------------------------------------

    def add_folders(self, folders: list[str]) -> None:
        self.service.add_folders(folders)

    def remove_folder(self, folder: str) -> None:
        self.service.remove_folder(folder)

    def exclude_folder(self, folder: str) -> None:
        self.service.exclude_folder(folder)

    def retry_failed(self) -> None:
        self.service.retry_failed()

    def index_with(self, model: str, device: str, threads: int | None) -> None:
        self.service.index_with(model, device, threads)

    def switch_model(self, model: str, device: str, threads: int | None) -> None:
        self.service.switch_model(model, device, threads)

    def pause(self) -> None:
        self.service.pause()

    def resume(self) -> None:
        self.service.resume()

    def cancel(self) -> None:
        self.service.cancel()

    @property
    def paused(self) -> bool:
        return self.service.paused

    @property
    def mode(self):
        return self.service.mode

    def pending(self) -> list[str]:
        return self.service.queued_folders()

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """Stop after the batch in hand (committed work stays; the next start catches up the rest)."""
        self._stopped = True
        self.service.close(timeout_s)

    # --- reports (the service's thread) ------------------------------------------------------------

    def _report(self, kind: str, report) -> None:
        self._safe({"changes": self.changes, "other": self.other_finished}.get(kind, self.finished))(report)

    def _progress(self, done: int, total: int, message: str) -> None:
        model = self.service.working_on
        if self.service.engine is not None and model != self.service.engine.spec.name:
            self._safe(self.other_progress)(model, done, total)
            return
        now = time.monotonic()
        if done == 0 or not self._started_at:
            self._started_at, self._first_done = now, done
        elapsed = now - self._started_at
        rate = (done - self._first_done) / elapsed if elapsed > 0.5 else 0.0
        eta = (total - done) / rate if rate > 0 else -1.0
        self._safe(self.progress)(done, total, rate, eta, message if message in PHASES else "indexing")

    def _note_busy(self, busy: bool) -> None:
        self.busy = busy
        if busy:
            self._started_at = 0.0

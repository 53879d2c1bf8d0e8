"""Folder watching for the window: a LibraryWatcher (its own threads and engine) whose callbacks
come back to the GUI thread as queued signals.

The watcher's engine is made on a starter thread: loading a model must not freeze the window.
"""

from __future__ import annotations

import contextlib
import logging
import threading

from PySide6.QtCore import QObject, Signal

from imgsim_desktop.core.engine import Engine

log = logging.getLogger(__name__)


class WatchController(QObject):
    batch = Signal(str, object)  # kind ("reconcile" | "changes"), IndexReport
    mode_changed = Signal(object)  # WatchMode
    progress = Signal(int, int, str)
    rebuilt = Signal(object)  # new index generation's meta
    error = Signal(str)

    def __init__(self, data_dir: str, model: str, device: str = "auto", threads: int | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._config = (str(data_dir), model, device, threads)
        self._lock = threading.Lock()
        self._watcher = None
        self._engine: Engine | None = None
        self._stopped = False
        self._starter: threading.Thread | None = None
        self.roots: list[str] | None = None  # None until started

    @property
    def started(self) -> bool:
        return self.roots is not None

    def start(self, roots: list[str]) -> None:
        if self.started:
            return
        self.roots = list(roots)
        self._starter = threading.Thread(target=self._start, name="imgsim-watch-start", daemon=True)
        self._starter.start()

    def _start(self) -> None:
        from imgsim_desktop.core.watcher import LibraryWatcher

        data_dir, model, device, threads = self._config
        try:
            engine = Engine(data_dir, model=model, device=device, threads=threads)
        except Exception as exc:  # the app works without watching; say why
            log.exception("starting the folder watcher failed")  # the traceback goes to the log; the user gets one line
            with self._lock:
                if not self._stopped:  # the window (and this controller's C++ side) may be gone already
                    with contextlib.suppress(RuntimeError):  # "Signal source has been deleted"
                        self.error.emit(f"Not watching folders: {exc}")
            return
        watcher = LibraryWatcher(engine, self.roots, on_batch=self.batch.emit, on_mode=self.mode_changed.emit,
                                 on_progress=self.progress.emit, on_rebuild=self.rebuilt.emit, on_error=self.error.emit)  # fmt: skip
        with self._lock:
            if self._stopped:  # the window closed while the model loaded
                engine.close()
                return
            self._watcher, self._engine = watcher, engine
            watcher.start()  # reconciles first: whatever changed since the catch-up scan is not missed

    def set_roots(self, roots: list[str]) -> None:
        """The library's folders changed (added, removed): watch exactly these. A folder is only
        added to the library through the window's index queue, which indexes it: the watcher
        follows its changes from now on and does not index it a second time."""
        if not self.started or list(roots) == self.roots:
            return
        self.roots = list(roots)
        with self._lock:
            if self._watcher is not None:
                self._watcher.set_roots(self.roots, scan_new=False)

    @property
    def mode(self):
        return self._watcher.mode if self._watcher is not None else None

    def shutdown(self, timeout_s: float = 10.0) -> None:
        with self._lock:
            self._stopped = True
            watcher, engine = self._watcher, self._engine
            self._watcher = self._engine = None
        if watcher is not None:
            watcher.stop(timeout_s)
        if engine is not None:
            engine.close()

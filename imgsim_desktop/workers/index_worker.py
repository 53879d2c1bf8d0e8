"""Indexing off the GUI thread: one QThread that owns its own engine (catalog connection + ONNX session)."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

from PySide6.QtCore import QObject, QThread, Signal, Slot

from imgsim_desktop.core.engine import Engine
from imgsim_desktop.core.folders import lexically_inside
from imgsim_desktop.core.progress import Progress
from imgsim_desktop.workers.lifecycle import stop_thread

log = logging.getLogger(__name__)

_inside = lexically_inside


class _IndexJob(QObject):
    progress = Signal(int, int, float, float, str)  # done, total, photos/s, seconds left (-1 unknown), phase
    finished = Signal(object)  # IndexReport
    failed = Signal(str)

    def __init__(self, data_dir: str, model: str, device: str, threads: int | None) -> None:
        super().__init__()
        self._args = (data_dir, model, device, threads)
        self.control = Progress(self._report, rate_hz=4)
        self._started = 0.0
        self._first_done = 0

    def _report(self, done: int, total: int, message: str) -> None:
        now = time.monotonic()
        if done == 0 or not self._started:
            self._started, self._first_done = now, done
        elapsed = now - self._started
        rate = (done - self._first_done) / elapsed if elapsed > 0.5 else 0.0
        eta = (total - done) / rate if rate > 0 else -1.0
        phase = message if message in ("scanning", "building search index") else "indexing"
        self.progress.emit(done, total, rate, eta, phase)

    @Slot(list)
    def run(self, folders: list[str]) -> None:
        data_dir, model, device, threads = self._args
        try:
            with Engine(data_dir, model=model, device=device, threads=threads) as engine:
                report = engine.index(folders, self.control)
        except Exception as exc:  # shown to the user in the status bar; the app keeps running
            log.exception("indexing failed")  # the traceback goes to the log; the user gets one line
            self.failed.emit(f"Indexing stopped: {exc}")
            return
        self.finished.emit(report)


class IndexController(QObject):
    """Queues indexing runs and runs them one at a time on a worker thread."""

    progress = Signal(int, int, float, float, str)
    finished = Signal(object)
    failed = Signal(str)
    busy_changed = Signal(bool)
    _start = Signal(list)

    def __init__(self, data_dir: str, model: str, device: str = "auto", threads: int | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._config = (str(data_dir), model, device, threads)
        self._queue: deque[list[str]] = deque()
        self._thread: QThread | None = None
        self._job: _IndexJob | None = None
        self._running: list[str] = []
        self._when_stopped: list[Callable[[], None]] = []  # run once the cancelled job has ended
        self.paused = False

    @property
    def busy(self) -> bool:
        return self._job is not None

    def enqueue(self, folders: list[str]) -> None:
        pending = {f for job in self._queue for f in job} | set(self._running)
        folders = [f for f in folders if f not in pending]  # already on its way: nothing to add
        if not folders:
            return
        self._queue.append(folders)
        if not self.busy:
            self._next()

    def pending(self) -> list[str]:
        """Folders being indexed now or waiting their turn, in order."""
        return [*self._running, *(f for job in self._queue for f in job)]

    def stop_touching(self, folder: str, then: Callable[[], None]) -> None:
        """Call ``then`` once no indexing works inside ``folder`` (a folder being removed or excluded).

        Queued work inside it is dropped. A running job over it is cancelled after its current
        batch; its other folders go back to the front of the queue, and ``then`` runs before they
        restart, so a removal is never undone by a job that started before it.
        """
        for job in self._queue:
            job[:] = [f for f in job if not _inside(f, folder)]
        self._queue = deque(job for job in self._queue if job)
        if not any(_inside(f, folder) or _inside(folder, f) for f in self._running):
            then()
            return
        again = [f for f in self._running if not _inside(f, folder)]
        if again:
            self._queue.appendleft(again)
        self._when_stopped.append(then)
        self._job.control.cancel()

    def _next(self) -> None:
        if not self._queue:
            self.busy_changed.emit(False)
            return
        folders = self._queue.popleft()
        self._running = folders
        self._thread = QThread()
        self._job = _IndexJob(*self._config)
        self._job.moveToThread(self._thread)
        self._job.progress.connect(self.progress)
        self._job.finished.connect(self._done)
        self._job.failed.connect(self._failed)
        self._start.connect(self._job.run)
        self._thread.start()
        self.paused = False
        self.busy_changed.emit(True)
        self._start.emit(folders)
        self._start.disconnect(self._job.run)

    def _teardown(self) -> None:
        if self._thread is not None:
            self._thread.quit()
            self._thread.wait()
        if self._job is not None:
            self._job.deleteLater()
        self._thread = self._job = None
        self._running = []

    @Slot(object)
    def _done(self, report) -> None:
        self._teardown()
        if not self._run_when_stopped():  # a job stopped for a folder change is not news to the user
            self.finished.emit(report)
        self._next()

    @Slot(str)
    def _failed(self, message: str) -> None:
        self._teardown()
        self._run_when_stopped()
        self.failed.emit(message)
        self._next()

    def _run_when_stopped(self) -> bool:
        callbacks, self._when_stopped = self._when_stopped, []
        for callback in callbacks:
            callback()
        return bool(callbacks)

    def pause(self) -> None:
        if self._job:
            self._job.control.pause()
            self.paused = True

    def resume(self) -> None:
        if self._job:
            self._job.control.resume()
            self.paused = False

    def cancel(self) -> None:
        """Stop the running job after its current batch and drop queued ones."""
        self._queue.clear()
        if self._job:
            self._job.control.cancel()

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Called on window close: cancel, then wait for the worker to commit and exit.

        Returns False if it is still running at the deadline (see workers.lifecycle).
        """
        self.cancel()
        self._when_stopped.clear()
        if self._thread is None:
            return True
        stopped = stop_thread(self._thread, self._job, timeout_ms)
        self._thread = self._job = None
        self._running = []
        return stopped

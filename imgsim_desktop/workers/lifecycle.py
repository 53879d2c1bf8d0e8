"""Stopping worker threads on close without ever destroying one that is still running.

A QThread destroyed while running aborts the whole process (Qt calls qFatal). A worker can miss
its stop deadline: an Annoy rebuild or a search over a slow network share cannot be interrupted.
Such workers are parked here, alive, and the app's entry point exits the process without waiting
for them (see unfinished_workers). That is safe because the catalog and the index files are
crash-safe: every committed batch is durable and a half-built index is never pointed to.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Qt, QThread

log = logging.getLogger(__name__)

_PARKED: list[tuple[QThread, QObject]] = []


def stop_thread(thread: QThread, job: QObject, timeout_ms: int) -> bool:
    """Ask ``thread``'s event loop to end and wait; park it (silenced) if it misses the deadline."""
    thread.quit()
    if thread.wait(timeout_ms):
        job.deleteLater()
        return True
    log.warning("%s did not stop within %.0f s; the app will exit without it", type(job).__name__, timeout_ms / 1000)
    job.blockSignals(True)
    _PARKED.append((thread, job))
    return False


def unfinished_workers() -> int:
    """How many parked workers are still running."""
    _PARKED[:] = [(t, j) for t, j in _PARKED if t.isRunning()]
    return len(_PARKED)


class WorkerController(QObject):
    """Owns one job object living on its own QThread; forwards the job's signals under the same names.

    Subclasses declare the forwarded signals and private request signals, then call ``_start``.
    A job with a ``close`` slot gets it called in its own thread as the thread ends, so resources
    (a catalog connection) are released by the thread that used them and never waited for.
    """

    def _start(self, job: QObject, forwarded: tuple[str, ...], requests: list[tuple]) -> None:
        self._thread = QThread()
        self._job = job
        job.moveToThread(self._thread)
        for name in forwarded:
            getattr(job, name).connect(getattr(self, name))
        for ours, theirs in requests:
            ours.connect(theirs)
        if hasattr(job, "close"):
            self._thread.finished.connect(job.close, Qt.ConnectionType.DirectConnection)
        self._thread.start()

    def _stopping(self) -> None:
        """Ask the job to give up early (cancel a long run); called first by shutdown."""

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        self._stopping()
        if not self._thread.isRunning():  # already shut down
            return True
        return stop_thread(self._thread, self._job, timeout_ms)

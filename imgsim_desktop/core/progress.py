"""A plain progress/cancel object that core jobs report to; the GUI and CLI wrap it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Cancelled(Exception):
    """Raised inside a job when its Progress was cancelled."""


class Progress:
    """Throttled progress reports plus cooperative cancel and pause.

    ``callback(done, total, message)`` is called at most ``rate_hz`` times a second (and always for
    the final report), from whichever thread runs the job.
    """

    def __init__(self, callback: Callable[[int, int, str], None] | None = None, rate_hz: float = 5.0) -> None:
        self._callback = callback
        self._interval = 1.0 / rate_hz
        self._last = 0.0
        self._cancel = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def report(self, done: int, total: int, message: str = "", force: bool = False) -> None:
        if self._callback is None:
            return
        now = time.monotonic()
        if force or done >= total or now - self._last >= self._interval:
            self._last = now
            self._callback(done, total, message)

    def cancel(self) -> None:
        self._cancel.set()
        self._running.set()  # a paused job must wake up to notice the cancel

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Block while paused; raise Cancelled once cancelled. Call between units of work."""
        self._running.wait()
        if self._cancel.is_set():
            raise Cancelled()

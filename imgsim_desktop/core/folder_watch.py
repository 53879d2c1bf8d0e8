"""Following the library folders: a watchdog observer whose thread only records where something
happened (in a PendingChanges), natively where the system allows it, by polling where it does not.

When the system's watch limit is hit (inotify ENOSPC/EMFILE), or the library has more folders
than the limit allows, or the native observer dies (a watched drive went away), it polls
instead, and ``mode`` says which and why.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CLOSED_NO_WRITE,
    EVENT_TYPE_MOVED,
    EVENT_TYPE_OPENED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from imgsim_desktop.core.pending import PendingChanges

log = logging.getLogger(__name__)

NATIVE = "native"
POLLING = "polling"


@dataclass(frozen=True)
class WatchMode:
    """How the folders are being watched. ``reason`` says why polling (None when native)."""

    mode: str  # NATIVE or POLLING
    reason: str | None = None
    poll_interval: float | None = None

    def describe(self) -> str:
        if self.mode == NATIVE:
            return "watching folders for changes"
        return f"checking folders every {self.poll_interval:g} s ({self.reason})"


class _EventSink(FileSystemEventHandler):
    """Runs on watchdog's observer thread: records where something happened, nothing more."""

    def __init__(self, pending: PendingChanges) -> None:
        self.pending = pending

    def on_any_event(self, event: FileSystemEvent) -> None:
        kind = event.event_type
        if kind in (EVENT_TYPE_OPENED, EVENT_TYPE_CLOSED_NO_WRITE):
            return  # reads (ours included) change nothing
        src = os.fsdecode(event.src_path)
        if kind == EVENT_TYPE_MOVED:
            self.pending.moved(src, os.fsdecode(event.dest_path))
        elif kind == EVENT_TYPE_CLOSED:
            self.pending.closed(src)
        else:
            self.pending.touch(src)


def _native_observer() -> BaseObserver:
    return Observer()


def watch_limit() -> int | None:
    """The per-user inotify watch limit on Linux, else None."""
    try:
        with open("/proc/sys/fs/inotify/max_user_watches") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def _count_folders(roots: list[str], stop_at: int) -> int:
    count = 0
    stack = list(roots)
    while stack and count <= stop_at:
        folder = stack.pop()
        count += 1
        try:
            with os.scandir(folder) as it:
                stack += [e.path for e in it if e.is_dir(follow_symlinks=False)]
        except OSError:
            pass
    return count


def _limit_reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return f"the system's limit on watched folders was reached ({exc.strerror}; raise fs.inotify.max_user_watches to watch natively)"
    if exc.errno == errno.EMFILE:
        return f"too many file watchers are open ({exc.strerror}; raise fs.inotify.max_user_instances)"
    return f"native watching failed: {exc.strerror or exc}"


class FolderObserver:
    """Feeds ``pending`` with the paths touched under the folders it is given; ``on_mode(mode)``
    hears when it starts watching and whenever it falls back to polling."""

    def __init__(self, pending: PendingChanges, on_mode: Callable[[WatchMode], None] | None = None, polling: bool = False, poll_interval: float = 10.0) -> None:
        self.on_mode = on_mode
        self.force_polling = polling
        self.poll_interval = poll_interval
        self.mode: WatchMode | None = None
        self._sink = _EventSink(pending)
        self._observer: BaseObserver | None = None
        self._roots: list[str] = []
        self._lock = threading.Lock()
        self._closed = False

    def watch(self, roots: list[str]) -> None:
        """Follow exactly these folders from now on (started, or restarted when they changed)."""
        with self._lock:
            if self._closed or (self._observer is not None and roots == self._roots):
                return
            self._roots = list(roots)
            self._stop_locked()
            self._start_locked()

    def check(self) -> None:
        """An observer thread that died (a watched drive went away, say) is replaced by polling."""
        with self._lock:
            if self._observer is not None and not self._observer.is_alive() and not self._closed:
                self._observer = None
                self._start_locked(reason="the folder watcher stopped unexpectedly")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._stop_locked()

    def _start_locked(self, reason: str | None = None) -> None:
        roots = [r for r in self._roots if os.path.isdir(r)]
        if self.force_polling:
            reason = reason or "polling was asked for"
        if reason is None:
            limit = watch_limit()
            if limit is not None and (folders := _count_folders(roots, limit)) > limit:
                reason = f"the library has more folders than the system's limit on watched folders ({limit}; raise fs.inotify.max_user_watches)"
                log.info("%d+ folders to watch, limit %d", folders, limit)
        if reason is None:
            observer = None
            try:
                observer = _native_observer()
                for root in roots:
                    observer.schedule(self._sink, root, recursive=True)
                observer.start()
                self._observer = observer
                self._set_mode(WatchMode(NATIVE))
                return
            except OSError as exc:
                log.warning("native folder watching failed, polling instead: %s", exc)
                reason = _limit_reason(exc)
                _discard(observer)
        observer = PollingObserver(timeout=self.poll_interval)
        for root in roots:
            observer.schedule(self._sink, root, recursive=True)
        observer.start()
        self._observer = observer
        self._set_mode(WatchMode(POLLING, reason, self.poll_interval))

    def _stop_locked(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(5)

    def _set_mode(self, mode: WatchMode) -> None:
        changed = mode != self.mode
        self.mode = mode
        if changed and self.on_mode:
            self.on_mode(mode)


def _discard(observer: BaseObserver | None) -> None:
    """Release what a native observer that failed to start holds (its inotify thread and fd)."""
    if observer is None:
        return
    try:
        observer.stop()
        if observer.is_alive():
            observer.join(5)
    except Exception:  # it never fully started; nothing more to release
        log.debug("discarding a failed observer", exc_info=True)

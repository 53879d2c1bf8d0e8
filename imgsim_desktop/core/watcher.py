"""A live library: watch the library folders and keep catalog and search index current. No Qt.

Use::

    watcher = LibraryWatcher(engine, on_batch=..., on_mode=...)
    watcher.start()        # reconcile what changed while closed, then follow changes
    ...
    watcher.stop()

Threads and what runs where:

- watchdog's observer thread only records touched paths in a PendingChanges (no I/O);
- the watch thread ("imgsim-watch") reconciles on start, then takes settled paths in batches,
  resolves them (core/changes.py), relinks moved/copied content, removes deleted photos, embeds
  new and changed ones with ``engine.backbone``, and refreshes ``engine.searcher``;
- a rebuild thread ("imgsim-rebuild") rebuilds the Annoy index when enough changed (core/rebuilder.py).

Callbacks run on the watch thread (``on_rebuild`` on the rebuild thread); a GUI forwards them to
its own thread (a queued signal). The engine's catalog is shared safely across threads and
processes (SQLite WAL); give the watcher an Engine of its own rather than one another thread
embeds with, since an ONNX session runs one batch at a time.

When the system's watch limit is hit (inotify ENOSPC/EMFILE), or the library has more folders
than the limit allows, the watcher polls instead: ``watcher.mode`` says which and why.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import threading
import time
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

from imgsim_desktop.core.changes import resolve
from imgsim_desktop.core.engine import Engine
from imgsim_desktop.core.indexer import IndexReport
from imgsim_desktop.core.pending import PendingChanges
from imgsim_desktop.core.progress import Progress
from imgsim_desktop.core.rebuilder import IndexRebuilder
from imgsim_desktop.core.scanner import FileStat

log = logging.getLogger(__name__)

NATIVE = "native"
POLLING = "polling"
# A file that fails to decode within this many seconds of its last write is probably still being
# written (a slow copy that paused): it is retried, with back-off, instead of being marked broken.
RECENT_WRITE_S = 5.0
MAX_RETRIES = 3
# At most this many files per batch, so results appear progressively during a big import and stop() stays quick.
BATCH_LIMIT = 64


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


class LibraryWatcher:
    """Keeps ``engine``'s catalog and search index in step with the library folders.

    ``roots`` defaults to the catalog's library folders; ``imgsim watch`` passes its arguments.
    Callbacks (all optional):

    - ``on_batch(kind, report)``: after the start-up reconcile (kind "reconcile") and after each
      batch of changes (kind "changes"), once the searcher already answers with them. ``report``
      is an IndexReport: indexed, moved, copied, removed, errors [{path, error}], seconds.
    - ``on_mode(mode)``: a WatchMode, when watching starts or falls back to polling.
    - ``on_progress(done, total, message)``: during long updates (a few per second at most).
    - ``on_rebuild(meta)``: a new Annoy index generation is in service (rebuild thread).
    - ``on_error(message)``: something that is not one file's fault failed (e.g. the disk is full);
      watching goes on and the affected paths are retried.
    """

    def __init__(
        self,
        engine: Engine,
        roots: list[str] | None = None,
        *,
        on_batch: Callable[[str, IndexReport], None] | None = None,
        on_mode: Callable[[WatchMode], None] | None = None,
        on_progress: Callable[[int, int, str], None] | None = None,
        on_rebuild: Callable[[dict], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        polling: bool = False,
        poll_interval: float = 10.0,
        settle_s: float = 0.5,
        gather_s: float = 0.15,
        batch_limit: int = BATCH_LIMIT,
    ) -> None:
        self.engine = engine
        self.roots = [os.path.abspath(r) for r in roots] if roots is not None else engine.catalog.roots()
        self.on_batch = on_batch
        self.on_mode = on_mode
        self.on_progress = on_progress
        self.on_error = on_error
        self.force_polling = polling
        self.poll_interval = poll_interval
        self.gather_s = gather_s
        self.batch_limit = batch_limit
        self.pending = PendingChanges(settle_s)
        self.rebuilder = IndexRebuilder(engine.searcher, on_done=on_rebuild, on_error=on_error)
        self.mode: WatchMode | None = None
        self._indexer = engine.indexer(retry_later=self._still_being_written)
        self._sink = _EventSink(self.pending)
        self._observer: BaseObserver | None = None
        self._observer_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._progress = Progress()
        self._stopping = threading.Event()
        self._busy = threading.Event()
        self._attempts: dict[str, int] = {}
        self._last_refresh = 0.0

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self, reconcile: bool = True) -> None:
        """Return at once; the watch thread starts the observer (then ``on_mode`` tells how it
        watches), reconciles what changed while nobody watched, and follows changes from then on.
        The observer starts first, so nothing that happens during the reconcile is missed."""
        if self._thread is not None:
            raise RuntimeError("LibraryWatcher already started")
        self._stopping.clear()
        self._progress = Progress(self._report_progress, rate_hz=2.0)
        self._busy.set()  # until the reconcile is done
        self._thread = threading.Thread(target=self._run, args=(reconcile,), name="imgsim-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop watching. A batch in flight stops at its next commit (what was committed stays);
        anything left is caught by the reconcile of the next start."""
        self._stopping.set()
        self._progress.cancel()
        self.pending.wake()
        with self._observer_lock:
            self._stop_observer()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.rebuilder.wait(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def idle(self) -> bool:
        """True when nothing is pending or being applied (events not yet delivered by the OS or
        the next poll are not known here)."""
        return not self._busy.is_set() and len(self.pending) == 0

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.idle:
                return True
            time.sleep(0.02)
        return self.idle

    def set_roots(self, roots: list[str], scan_new: bool = True) -> None:
        """Watch these library folders from now on; new ones are scanned and indexed, unless
        ``scan_new`` is False because another writer (the app's index queue) is indexing them:
        two pipelines embedding one folder did the work twice."""
        roots = [os.path.abspath(r) for r in roots]
        added = [r for r in roots if r not in self.roots]
        self.roots = roots
        for root in added:
            self.engine.catalog.add_root(root)
        with self._observer_lock:
            if self._observer is not None:
                self._stop_observer()
                self._start_observer_locked()
        for root in added if scan_new else ():
            self.pending.closed(root)  # a folder: resolved by scanning it

    # --- observer --------------------------------------------------------------------------------

    def _start_observer_locked(self, reason: str | None = None) -> None:
        if self._stopping.is_set():
            return
        roots = [r for r in self.roots if os.path.isdir(r)]
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

    def _stop_observer(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(5)

    def _set_mode(self, mode: WatchMode) -> None:
        changed = mode != self.mode
        self.mode = mode
        if changed and self.on_mode:
            self.on_mode(mode)

    def _check_observer(self) -> None:
        """An observer thread that died (a watched drive went away, say) is replaced by polling."""
        with self._observer_lock:
            if self._observer is not None and not self._observer.is_alive() and not self._stopping.is_set():
                self._observer = None
                self._start_observer_locked(reason="the folder watcher stopped unexpectedly")

    # --- watch thread ----------------------------------------------------------------------------

    def _run(self, reconcile: bool) -> None:
        try:
            with self._observer_lock:
                self._start_observer_locked()
            if reconcile:
                self._guarded(self._reconcile)
        finally:
            self._busy.clear()
        while not self._stopping.is_set():
            wait = self.pending.next_check_in()
            self.pending.wait(5.0 if wait is None else max(wait, 0.02))
            if self._stopping.is_set():
                break
            self._check_observer()
            if self.pending.next_check_in() is None:
                continue
            time.sleep(self.gather_s)  # let a burst gather into one batch
            paths, hints = self.pending.take_ready(self.batch_limit)
            if not paths:
                continue
            self._busy.set()
            try:
                self._guarded(functools.partial(self._apply, paths, hints), paths)
            finally:
                self._busy.clear()

    def _guarded(self, job: Callable[[], None], paths: list[str] = ()) -> None:
        try:
            job()
        except Exception as exc:  # the catalog is busy or the disk full: say so, retry those paths later
            log.exception("updating the library failed")
            for path in paths:
                self.pending.retry(path, 5.0)
            if self.on_error:
                self.on_error(f"updating the library failed: {exc}")

    def _reconcile(self) -> None:
        report = self._indexer.run(self.roots, self._progress)
        self._finish("reconcile", report, [])

    def _apply(self, paths: list[str], hints: dict[str, str]) -> None:
        work = resolve(self.engine.catalog, self.engine.spec.name, paths, self.roots)
        if not work.todo and not work.gone:
            return
        # Files under a folder removed from the library meanwhile are refused by the catalog (roots).
        report = self._indexer.update(work.todo, work.gone, self.roots, self._progress, hints)
        report.errors += [{"path": p, "error": why} for p, why in work.problems]
        self._finish("changes", report, paths)

    def _finish(self, kind: str, report: IndexReport, paths: list[str]) -> None:
        deferred = {f.path for f in report.deferred}
        for path in paths:
            if path not in deferred:
                self._attempts.pop(path, None)
        for path in deferred:
            attempts = self._attempts[path] = self._attempts.get(path, 0) + 1
            self.pending.retry(path, min(0.5 * 2**attempts, 8.0))
        self.engine.searcher.refresh()
        self._last_refresh = time.monotonic()
        self.rebuilder.maybe_start()
        if self.on_batch and (report.indexed or report.moved or report.copied or report.removed or report.errors or kind == "reconcile"):
            self.on_batch(kind, report)

    def _report_progress(self, done: int, total: int, message: str) -> None:
        # Photos committed so far become findable every couple of seconds during a long update.
        if done and time.monotonic() - self._last_refresh >= 2.0:
            self.engine.searcher.refresh()
            self._last_refresh = time.monotonic()
        if self.on_progress:
            self.on_progress(done, total, message)

    def _still_being_written(self, f: FileStat) -> bool:
        """Asked by the Indexer about a file that failed to decode: retry rather than mark it broken?"""
        try:
            st = os.stat(f.path)
        except OSError:
            return True  # vanished meanwhile: the retry resolves it as deleted
        if (st.st_size, st.st_mtime_ns) != (f.size, f.mtime_ns):
            return True  # it changed while we read it
        recent = time.time() - st.st_mtime_ns / 1e9 < RECENT_WRITE_S
        return recent and self._attempts.get(f.path, 0) < MAX_RETRIES


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

"""The one writer of a library. No Qt.

Exactly one LibraryService changes a library's catalog and search index: one engine (one ONNX
session), one indexer, one rebuild path. Everything that would change the library goes through
its one serial queue:

- the user's requests: index folders (adding them to the library), remove or exclude a folder,
  retry unreadable files, switch the backbone, index with another backbone for a comparison;
- the file system's events, which the folder observer only records (core/folder_watch.py) and
  this thread resolves (core/changes.py) once they have settled (core/pending.py).

Requests go before file-system batches. Order between the two does not change the outcome: a
batch looks at each touched path as it is *now*, so it is right whenever it runs.

Use it three ways::

    LibraryService(data_dir).run_once(["~/Photos"])      # `imgsim index`: index, rebuild, return
    service = LibraryService(data_dir, watch=True, ...)  # `imgsim watch`, the app (workers/library_bridge.py)
    service.start(); service.add_folders([...]); ...; service.stop()

A start catches up with what changed while nobody watched (one scan of every library folder,
kind "reconcile"), then follows the folders. Reads (search, duplicate scans, thumbnails) run
beside it on their own engines; they need no ONNX session unless they embed an outside query.

Callbacks run on the service's thread (``on_rebuild`` on the rebuild thread); a GUI forwards them
to its own thread as queued signals:

- ``on_report(kind, report)``: "reconcile" (the start's catch-up), "index" (a request), "changes"
  (files changed outside), "other" (indexed with another backbone), with an IndexReport: indexed, moved, copied, removed, errors, seconds;
- ``on_progress(done, total, message)``: during requested work, a few times a second;
- ``on_busy(busy)``: requested work started / the request queue ran empty;
- ``on_folders(roots)``: the library's folders changed (added, removed, excluded);
- ``on_mode(mode)``, ``on_rebuild(meta)``, ``on_provider(name)``, ``on_error(message)``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from imgsim_desktop.core.backbones import ModelError, expected_provider
from imgsim_desktop.core.changes import resolve
from imgsim_desktop.core.engine import Engine
from imgsim_desktop.core.folder_watch import NATIVE, POLLING, FolderObserver, WatchMode
from imgsim_desktop.core.folders import lexically_inside
from imgsim_desktop.core.indexer import Indexer, IndexReport
from imgsim_desktop.core.pending import PendingChanges
from imgsim_desktop.core.progress import Progress
from imgsim_desktop.core.rebuilder import IndexRebuilder
from imgsim_desktop.core.scanner import FileStat

__all__ = ["NATIVE", "POLLING", "LibraryService", "WatchMode"]

log = logging.getLogger(__name__)

# A file that fails to decode within this many seconds of its last write is probably still being
# written (a slow copy that paused): it is retried, with back-off, instead of being marked broken.
RECENT_WRITE_S = 5.0
MAX_RETRIES = 3
# At most this many files per batch, so results appear progressively during a big import and stop() stays quick.
BATCH_LIMIT = 64

INDEX, RECONCILE, REMOVE, EXCLUDE, RETRY_FAILED, SWITCH, OTHER = "index", "reconcile", "remove", "exclude", "retry_failed", "switch", "other"
INDEXING = (INDEX, RECONCILE, RETRY_FAILED, OTHER)


@dataclass
class Request:
    kind: str
    folders: list[str] = field(default_factory=list)
    model: tuple[str, str, int | None] | None = None  # SWITCH, OTHER: (model, device, threads)


def _touches(folders: list[str], folder: str) -> bool:
    return any(lexically_inside(f, folder) or lexically_inside(folder, f) for f in folders)


class LibraryService:
    def __init__(
        self,
        data_dir: str | os.PathLike | None = None,
        model: str | None = None,
        device: str = "auto",
        threads: int | None = None,
        *,
        engine: Engine | None = None,
        roots: list[str] | None = None,
        watch: bool = True,
        on_report: Callable[[str, IndexReport], None] | None = None,
        on_progress: Callable[[int, int, str], None] | None = None,
        on_busy: Callable[[bool], None] | None = None,
        on_folders: Callable[[list[str]], None] | None = None,
        on_mode: Callable[[WatchMode], None] | None = None,
        on_rebuild: Callable[[dict], None] | None = None,
        on_provider: Callable[[str], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        polling: bool = False,
        poll_interval: float = 10.0,
        settle_s: float = 0.5,
        gather_s: float = 0.15,
        batch_limit: int = BATCH_LIMIT,
    ) -> None:
        self._config = (data_dir, model, device, threads)
        self.engine = engine  # opened on the service's thread when not given: loading a model takes a while
        self._owns_engine = engine is None
        self._given_roots = [os.path.abspath(r) for r in roots] if roots is not None else None
        self.roots: list[str] = []
        self.on_report, self.on_progress, self.on_busy, self.on_folders = on_report, on_progress, on_busy, on_folders
        self.on_rebuild, self.on_provider, self.on_error = on_rebuild, on_provider, on_error
        self.gather_s = gather_s
        self.batch_limit = batch_limit
        self.pending = PendingChanges(settle_s)
        self.observer = FolderObserver(self.pending, on_mode, polling, poll_interval) if watch else None
        self.rebuilder: IndexRebuilder | None = None
        self._indexer: Indexer | None = None
        self._requests: deque[Request] = deque()
        self._running: Request | None = None
        self._job = Progress()
        self._lock = threading.Lock()  # guards _requests, _running and _job
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._busy = threading.Event()
        self._reporting_busy = False
        self._paused = False
        self._attempts: dict[str, int] = {}
        self._last_refresh = 0.0
        self.build_index = True  # rebuild the Annoy index when enough changed (core/search.py says when)

    # --- requests (any thread) -------------------------------------------------------------------

    def add_folders(self, folders: list[str]) -> None:
        """Index these folders, adding them to the library (a folder already queued is not queued twice)."""
        folders = [os.path.abspath(f) for f in folders]
        with self._lock:
            queued = {f for r in self._requests if r.kind in (INDEX, RECONCILE) for f in r.folders}
            queued |= set(self._running.folders) if self._running and self._running.kind in (INDEX, RECONCILE) else set()
            folders = [f for f in folders if f not in queued]
            if folders:
                self._requests.append(Request(INDEX, folders))
        self.pending.wake()

    def remove_folder(self, folder: str) -> None:
        """Take ``folder`` out of the library (its photos stay on disk; photos another library
        folder covers stay in the library). Queued indexing inside it is dropped, and a run over it
        stops at its next batch: the removal goes first, the run's other folders resume after it."""
        self._folder_change(Request(REMOVE, [os.path.abspath(folder)]))

    def exclude_folder(self, folder: str) -> None:
        """Leave ``folder`` (inside a library folder) out of the library from now on."""
        self._folder_change(Request(EXCLUDE, [os.path.abspath(folder)]))

    def retry_failed(self) -> None:
        """Forget stored failures and index the library again: files that failed are tried anew."""
        with self._lock:
            self._requests.append(Request(RETRY_FAILED))
        self.pending.wake()

    def switch_model(self, model: str, device: str = "auto", threads: int | None = None) -> None:
        """Index with another backbone from now on: the run in flight (for the old one) stops at its
        next batch; queued folders are indexed for the new one, and so is the whole library."""
        with self._lock:
            self._requests.appendleft(Request(SWITCH, model=(model, device, threads)))
            self._job.cancel()
        self.pending.wake()

    def index_with(self, model: str, device: str = "auto", threads: int | None = None) -> None:
        """Index the library with another backbone too (for a comparison), in turn with the rest:
        its report comes as kind "other", its progress with ``working_on`` set to that model."""
        with self._lock:
            self._requests.append(Request(OTHER, model=(model, device, threads)))
        self.pending.wake()

    @property
    def working_on(self) -> str | None:
        """The backbone the work in flight embeds with (another one's for an OTHER request)."""
        running = self._running
        if running is not None and running.kind == OTHER:
            return running.model[0]
        return self.engine.spec.name if self.engine is not None else None

    def _folder_change(self, request: Request) -> None:
        folder = request.folders[0]
        with self._lock:
            for queued in self._requests:
                if queued.kind in (INDEX, RECONCILE):
                    queued.folders = [f for f in queued.folders if not lexically_inside(f, folder)]
            self._requests = deque(r for r in self._requests if r.folders or r.kind not in (INDEX, RECONCILE))
            running = self._running
            if running is not None and running.kind in INDEXING:
                # Stopped at its next commit (what it stored stays): a run that started before the
                # change must not store photos of a folder the library just dropped. Its other
                # folders go again after the change; their photos stored so far are skipped then.
                self._job.cancel()
                again = [f for f in (running.folders or self.roots) if not lexically_inside(f, folder)]
                if running.kind == OTHER:
                    self._requests.appendleft(Request(OTHER, model=running.model))
                elif again:
                    self._requests.appendleft(Request(running.kind if running.kind != RETRY_FAILED else INDEX, again))
            self._requests.appendleft(request)
        self.pending.wake()

    def pause(self) -> None:
        with self._lock:
            self._paused = True
            self._job.pause()

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            self._job.resume()

    @property
    def paused(self) -> bool:
        return self._paused

    def cancel(self) -> None:
        """Stop the requested work in flight after its current batch and drop the queued indexing."""
        with self._lock:
            self._requests = deque(r for r in self._requests if r.kind not in INDEXING)
            if self._running is not None and self._running.kind in INDEXING:
                self._job.cancel()

    def queued_folders(self) -> list[str]:
        """Folders being indexed now or waiting their turn, in order."""
        with self._lock:
            running = self._running.folders if self._running and self._running.kind in (INDEX, RECONCILE) else []
            return [*running, *(f for r in self._requests if r.kind in (INDEX, RECONCILE) for f in r.folders)]

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self, catch_up: bool = True) -> None:
        """Return at once. The service's thread opens the engine, starts following the folders,
        and (``catch_up``) scans them once for what changed while nobody watched."""
        if self._thread is not None:
            raise RuntimeError("LibraryService already started")
        if self._stopping.is_set():
            return  # stopped before it started (a window closed at once): nothing to do
        self._stopping.clear()
        self._busy.set()  # until the catch-up is done
        self._thread = threading.Thread(target=self._run, args=(catch_up,), name="imgsim-library", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop. Work in flight stops at its next commit (what was committed stays); anything left
        is caught by the next start's catch-up."""
        self._stopping.set()
        with self._lock:
            self._job.cancel()
        self.pending.wake()
        if self.observer is not None:
            self.observer.close()
        if self._thread is not None:
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self._thread = None
        if self.rebuilder is not None:
            self.rebuilder.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Stop, and close the engine if the service opened it (not under a thread that missed its
        deadline: it is a daemon, and the process ends without it)."""
        self.stop(timeout)
        if self.engine is not None and self._owns_engine and not self.running:
            self.engine.close()

    def run_once(self, folders: list[str], progress: Progress | None = None, retry_failed: bool = False, rebuild: bool = False) -> IndexReport:
        """`imgsim index`: the same work as a request, in the calling thread; returns when the
        catalog and the search index are current (``rebuild``: the index is rebuilt whatever its
        state, the way out of a damaged one). A file that fails to decode is recorded as failed:
        nobody watches for the rest of its write."""
        self._open()
        self._indexer.retry_later = None
        self._job = progress or Progress()
        if retry_failed:
            self.engine.catalog.forget_errors()
        report = self._index(Request(INDEX, [os.path.abspath(f) for f in folders]), quiet=True)
        if self.rebuilder.running:
            self._job.report(0, 0, "building search index", force=True)
        self.rebuilder.wait()
        if self.rebuilder.last_error is not None:
            raise self.rebuilder.last_error  # the terminal says why (a full disk, say)
        if rebuild and not report.cancelled:
            self.engine.searcher.rebuild()
        return report

    @property
    def mode(self) -> WatchMode | None:
        return self.observer.mode if self.observer is not None else None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def idle(self) -> bool:
        """True when nothing is queued, pending or being applied (events not yet delivered by the
        OS or the next poll are not known here)."""
        with self._lock:
            queued = bool(self._requests)
        return not queued and not self._busy.is_set() and len(self.pending) == 0

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.idle:
                return True
            time.sleep(0.02)
        return self.idle

    # --- the service's thread ----------------------------------------------------------------------

    def _open(self) -> None:
        if self.engine is None:
            data_dir, model, device, threads = self._config
            self.engine = Engine(data_dir, model=model, device=device, threads=threads)
        self._arm(self.engine)
        if self._given_roots is not None:
            self.roots = list(self._given_roots)
        else:
            self.roots = self.engine.catalog.roots()

    def _arm(self, engine: Engine) -> None:
        """Indexer and rebuilder for ``engine`` (at the start, and after a backbone switch)."""
        self.rebuilder = IndexRebuilder(engine.searcher, on_done=self.on_rebuild, on_error=self.on_error)
        # The ONNX session is loaded when a photo first needs embedding: a start with nothing new,
        # folder changes and outside deletions or moves never load a model (nor fail on a damaged one).
        self._indexer = engine.indexer(retry_later=self._still_being_written)
        engine.on_backbone_loaded = self.on_provider
        if self.on_provider:
            with contextlib.suppress(ModelError):  # no runtime: said when something needs embedding
                self.on_provider(expected_provider(engine.device))

    def _run(self, catch_up: bool) -> None:
        try:
            self._open()
        except Exception as exc:  # a damaged catalog or model: nothing can be written; say why
            log.exception("opening the library failed")
            self._busy.clear()
            if self.on_error:
                self.on_error(f"Cannot open the library: {exc}")
            return
        if self.observer is not None:
            self.observer.watch(self.roots)
        if catch_up and self.roots:
            with self._lock:
                self._requests.appendleft(Request(RECONCILE, list(self.roots)))
        self._busy.clear()
        while not self._stopping.is_set():
            if self._take_request():
                continue
            self._set_busy(False)
            if self._apply_ready_changes():
                continue
            wait = self.pending.next_check_in()
            self.pending.wait(5.0 if wait is None else max(wait, 0.02))
            if self.observer is not None:
                self.observer.check()
        self._set_busy(False)

    def _take_request(self) -> bool:
        with self._lock:
            if not self._requests:
                return False
            request = self._running = self._requests.popleft()
            self._job = Progress(self._report_progress, rate_hz=4)
            if self._paused:
                self._job.pause()
        self._busy.set()
        try:
            if request.kind in INDEXING:
                self._set_busy(True)
            self._guarded(lambda: self._do(request))
        finally:
            with self._lock:
                self._running = None
            self._busy.clear()
        return True

    def _do(self, request: Request) -> None:
        catalog = self.engine.catalog
        if request.kind == REMOVE:
            catalog.remove_root(request.folders[0])
            self._folders_changed([r for r in self.roots if r != request.folders[0]])
        elif request.kind == EXCLUDE:
            catalog.exclude(request.folders[0])
            self._folders_changed(self.roots)
        elif request.kind == SWITCH:
            self._switch(*request.model)
        elif request.kind == OTHER:
            self._index_other(*request.model)
        else:
            if request.kind == RETRY_FAILED:
                catalog.forget_errors()
                request.folders = list(self.roots)
            self._index(request)

    def _index(self, request: Request, quiet: bool = False) -> IndexReport:
        added = [f for f in request.folders if f not in self.roots and os.path.isdir(f)]
        if added:  # watched from now on: what changes in them while they are indexed is not missed
            for folder in added:
                self.engine.catalog.add_root(folder)
            self._folders_changed(sorted([*self.roots, *added]))
        report = self._indexer.run(request.folders, self._job)
        self._finish(RECONCILE if request.kind == RECONCILE else INDEX, report, [])
        return report

    def _index_other(self, model: str, device: str, threads: int | None) -> None:
        with Engine(self.engine.data_dir, model=model, device=device, threads=threads) as other:
            report = other.indexer().run(list(self.roots), self._job)
            if not report.cancelled:
                rebuilder = IndexRebuilder(other.searcher)
                if rebuilder.maybe_start():
                    rebuilder.wait()
        if self.on_report:
            self.on_report(OTHER, report)

    def _switch(self, model: str, device: str, threads: int | None) -> None:
        old = self.engine
        if self.rebuilder is not None:
            self.rebuilder.wait()
        self.engine = Engine(old.data_dir, model=model, device=device, threads=threads)
        if self._owns_engine:
            old.close()
        self._owns_engine = True
        self._arm(self.engine)
        with self._lock:  # the whole library, for the new backbone, before anything queued
            self._requests.appendleft(Request(RECONCILE, list(self.roots)))

    def _folders_changed(self, roots: list[str]) -> None:
        self.roots = roots
        if self.observer is not None:
            self.observer.watch(roots)
        self.engine.searcher.refresh()
        if self.on_folders:
            self.on_folders(list(roots))

    def _set_busy(self, busy: bool) -> None:
        if busy != self._reporting_busy:
            self._reporting_busy = busy
            if self.on_busy:
                self.on_busy(busy)

    def _apply_ready_changes(self) -> bool:
        if self.pending.next_check_in() is None:
            return False
        time.sleep(self.gather_s)  # let a burst gather into one batch
        paths, hints = self.pending.take_ready(self.batch_limit)
        if not paths:
            return False
        self._busy.set()
        try:
            self._guarded(lambda: self._apply(paths, hints), paths)
        finally:
            self._busy.clear()
        return True

    def _guarded(self, job: Callable[[], None], paths: list[str] = ()) -> None:
        try:
            job()
        except Exception as exc:  # the catalog is busy or the disk full: say so, retry those paths later
            log.exception("updating the library failed")
            for path in paths:
                self.pending.retry(path, 5.0)
            if self.on_error:
                self.on_error(f"updating the library failed: {exc}")

    def _apply(self, paths: list[str], hints: dict[str, str]) -> None:
        work = resolve(self.engine.catalog, self.engine.spec.name, paths, self.roots)
        if not work.todo and not work.gone:
            return
        # Files under a folder removed from the library meanwhile are refused by the catalog (roots).
        with self._lock:
            self._job = Progress(self._report_progress, rate_hz=2)
        report = self._indexer.update(work.todo, work.gone, self.roots, self._job, hints)
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
        if not report.cancelled and self.build_index:  # closing or switching: the delta stays searchable, the next run rebuilds
            self.rebuilder.maybe_start()
        if self.on_report and (report.indexed or report.moved or report.copied or report.removed or report.errors or kind != "changes"):
            self.on_report(kind, report)

    def _report_progress(self, done: int, total: int, message: str) -> None:
        # Photos committed so far become findable every couple of seconds during a long update.
        if done and time.monotonic() - self._last_refresh >= 2.0:
            self.engine.searcher.refresh()
            self._last_refresh = time.monotonic()
        if self.on_progress and self._reporting_busy:
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


def index_now(engine: Engine, folders: list[str], progress: Progress | None = None, rebuild: bool = True) -> IndexReport:
    """Index ``folders`` with ``engine`` in this thread and return when they are searchable: the
    service's run-once, for scripts, benchmarks and tests (the CLI and the app use the service).
    ``rebuild=False`` leaves the search index as it is (new photos wait in its exact part)."""
    service = LibraryService(engine=engine, watch=False)
    service.build_index = rebuild
    return service.run_once(folders, progress)

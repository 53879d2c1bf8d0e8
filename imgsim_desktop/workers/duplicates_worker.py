"""Duplicate scans, cleanups and the cleanup log off the GUI thread.

One QThread with its own engine (catalog connection + index). A scan can be cancelled; its
answer carries a request number so the page drops answers to scans it no longer waits for.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal, Slot

from imgsim_desktop.core import cleanup, cleanup_plan, companions
from imgsim_desktop.core.duplicates import find_groups
from imgsim_desktop.core.engine import Engine
from imgsim_desktop.core.file_format import file_format
from imgsim_desktop.core.progress import Cancelled, Progress
from imgsim_desktop.workers.lifecycle import WorkerController

log = logging.getLogger(__name__)
CHOSEN = -1  # the request number of failures of trash_chosen (0: the duplicates page's cleanups, 1 and up: its scans)


class _DuplicatesJob(QObject):
    progress = Signal(int, int, str)  # done, total, what
    groups_ready = Signal(int, object, object, object)  # request, list[Group], {path: PhotoRow}, library roots
    scan_problem = Signal(str, str)  # path, reason: a file that could not be checked
    cleaned = Signal(object)  # CleanupResult
    trashed = Signal(object)  # CleanupResult of trash_chosen
    undone = Signal(str, object)  # batch, [{path, error}]
    log_ready = Signal(object)  # [action dict], newest last
    recovered = Signal(object)  # [sentence]: what finishing an interrupted cleanup did
    failed = Signal(int, str)  # request (0: not a scan), message

    def __init__(self, data_dir: str, model: str, device: str, threads: int | None) -> None:
        super().__init__()
        self._args = (data_dir, model, device, threads)
        self._engine: Engine | None = None
        self.control = Progress()

    def _get(self) -> Engine:
        if self._engine is None:
            data_dir, model, device, threads = self._args
            self._engine = Engine(data_dir, model=model, device=device, threads=threads)
        return self._engine

    @Slot(int, float, object)
    def scan(self, request: int, sensitivity: float, tiers) -> None:
        self.control = Progress(lambda d, t, m: self.progress.emit(d, t, m), rate_hz=4)
        try:
            engine = self._get()
            groups = find_groups(engine.searcher, sensitivity, tiers, self.control, self.scan_problem.emit)
            groups = companions.attach(groups, companions.library_folders(engine.catalog))  # one listing per folder, here, not on the GUI thread
            rows = {m.path: row for g in groups for m in g.members if (row := engine.catalog.photo(m.path))}
            for row in rows.values():  # read each file's format here, not on the GUI thread: the page finds it cached
                file_format(row.path, row.size, row.mtime_ns)
            roots = engine.catalog.roots()  # with the groups: a cleanup must know them, however fast the scan was
        except Cancelled:
            self.failed.emit(request, "Scan cancelled.")
            return
        except Exception as exc:  # shown on the page; the app keeps running
            log.exception("duplicates scan failed")
            self.failed.emit(request, f"The duplicates scan failed: {exc}")
            return
        self.groups_ready.emit(request, groups, rows, roots)

    def cancel_scan(self) -> None:  # called from the GUI thread: Progress is thread-safe
        self.control.cancel()

    @Slot(object, object, object, str, str, object, str, bool)
    def apply(self, groups, rows, chosen: set[str], mode: str, move_to: str, protected: list[str], pair_rule: str, keep_metadata: bool) -> None:
        self._clean_up(0, lambda catalog: cleanup_plan.plan(groups, rows, chosen, catalog.fingerprints(list(rows))),
                       mode, move_to, protected, pair_rule, self.cleaned, keep_metadata)  # fmt: skip

    @Slot(object, object, str)
    def trash_chosen(self, rows, protected: list[str], pair_rule: str) -> None:
        """Photos picked one by one (Delete on a grid) to the Trash, as a cleanup: journaled, with their companions."""
        self._clean_up(CHOSEN, lambda catalog: cleanup_plan.chosen_paths(rows, catalog.fingerprints([r.path for r in rows])),
                       "trash", "", protected, pair_rule, self.trashed)  # fmt: skip

    def _clean_up(self, request: int, removals_of, mode: str, move_to: str, protected: list[str], pair_rule: str, answer, keep_metadata: bool = False) -> None:
        try:
            catalog = self._get().catalog
            result = cleanup.apply(catalog, removals_of(catalog), mode, move_to or None, protected, pair_rule=pair_rule, keep_metadata=keep_metadata)
        except cleanup.CleanupRefused as exc:
            self.failed.emit(request, f"Nothing was moved: {exc}.")
            return
        except Exception as exc:
            log.exception("cleanup failed")
            self.failed.emit(request, f"Cleanup stopped: {exc}")
            return
        if result.recovered:
            self.recovered.emit(result.recovered)
        answer.emit(result)

    @Slot()
    def recover(self) -> None:
        try:
            notes = cleanup.recover(self._get().catalog)
        except Exception as exc:  # the app keeps running; the next start tries again
            log.exception("cleanup recovery failed")
            self.failed.emit(0, f"An interrupted cleanup could not be finished: {exc}")
            return
        if notes:
            self.recovered.emit(notes)

    @Slot(str)
    def undo(self, batch: str) -> None:
        try:
            restored = cleanup.undo(self._get().catalog, batch)
        except cleanup.CleanupRefused as exc:
            self.failed.emit(0, f"Nothing was moved back: {exc}.")
            return
        except Exception as exc:
            log.exception("undo failed")
            self.failed.emit(0, f"Undo stopped: {exc}")
            return
        self.undone.emit(batch, restored)

    @Slot(str, object)
    def reject(self, path: str, others: list[str]) -> None:
        try:
            catalog = self._get().catalog
            for other in others:
                catalog.reject_pair(path, other)
        except Exception as exc:
            log.exception("remembering 'not duplicates' failed")
            self.failed.emit(0, f"'Not duplicates' could not be saved: {exc}")

    @Slot()
    def load_log(self) -> None:
        try:
            self.log_ready.emit(self._get().catalog.actions())
        except Exception as exc:
            log.exception("reading the cleanup history failed")
            self.failed.emit(0, f"The cleanup history could not be read: {exc}")

    @Slot()
    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None


class DuplicatesController(WorkerController):
    progress = Signal(int, int, str)
    groups_ready = Signal(int, object, object, object)
    scan_problem = Signal(str, str)
    cleaned = Signal(object)
    trashed = Signal(object)
    undone = Signal(str, object)
    log_ready = Signal(object)
    recovered = Signal(object)
    failed = Signal(int, str)
    _scan = Signal(int, float, object)
    _apply = Signal(object, object, object, str, str, object, str, bool)
    _trash_chosen = Signal(object, object, str)
    _recover = Signal()
    _undo = Signal(str)
    _reject = Signal(str, object)
    _load_log = Signal()

    def __init__(self, data_dir: str, model: str, device: str = "auto", threads: int | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._request = 0
        job = _DuplicatesJob(str(data_dir), model, device, threads)
        self._start(job, ("progress", "groups_ready", "scan_problem", "cleaned", "trashed", "undone", "log_ready", "recovered", "failed"),
                    [(self._scan, job.scan), (self._apply, job.apply), (self._trash_chosen, job.trash_chosen), (self._undo, job.undo), (self._reject, job.reject),
                     (self._load_log, job.load_log), (self._recover, job.recover)])  # fmt: skip

    @property
    def latest(self) -> int:
        return self._request

    def scan(self, sensitivity: float, tiers: tuple[str, ...]) -> int:
        self._job.cancel_scan()  # a newer question replaces the one in flight
        self._request += 1
        self._scan.emit(self._request, sensitivity, tiers)
        return self._request

    def cancel_scan(self) -> None:
        self._job.cancel_scan()

    def apply(self, groups, rows: dict, chosen: set[str], mode: str, move_to: str | None, protected: list[str], pair_rule: str = "both",
              keep_metadata: bool = False) -> None:  # fmt: skip
        """Remove ``chosen`` members of ``groups`` (as the scan saw them in ``rows``), each with its
        companions (``pair_rule``: what a RAW+JPEG pair keeps); each is checked against the disk
        right before it goes (core.cleanup_plan). ``keep_metadata``: core.cleanup.apply's."""
        self._apply.emit(list(groups), dict(rows), set(chosen), mode, move_to or "", list(protected), pair_rule, keep_metadata)

    def trash_chosen(self, rows: list, protected: list[str], pair_rule: str = "both") -> None:
        """Move the photos of ``rows`` (PhotoRows as the grid showed them) to the Trash, each with its
        companions, each checked against the disk right before it goes; ``trashed`` answers, or
        ``failed`` with request CHOSEN."""
        self._trash_chosen.emit(list(rows), list(protected), pair_rule)

    def recover(self) -> None:
        """Finish or roll back a cleanup that a crash interrupted; ``recovered`` says what was done."""
        self._recover.emit()

    def undo(self, batch: str) -> None:
        self._undo.emit(batch)

    def reject(self, path: str, others: list[str]) -> None:
        self._reject.emit(path, list(others))

    def load_log(self) -> None:
        self._load_log.emit()

    def _stopping(self) -> None:
        self._job.cancel_scan()

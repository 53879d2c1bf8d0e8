"""Catalog reads and similarity queries off the GUI thread (reads only: the library's one writer is
core/library_service.py), answered with a request number so the
GUI can drop answers to questions it no longer asks."""

from __future__ import annotations

import logging
import os

from PySide6.QtCore import QObject, Signal, Slot

from imgsim_desktop.core.decode import DecodeError
from imgsim_desktop.core.engine import Engine
from imgsim_desktop.core.stacks import stacks
from imgsim_desktop.storage.catalog import PhotoRow
from imgsim_desktop.workers.lifecycle import WorkerController

log = logging.getLogger(__name__)
MORE_FOR_STACKS = 8  # at most k * this many neighbours are asked for while copies fill the top k


def _outside_photo(path: str) -> PhotoRow:
    """A query photo that is not in the library (dropped, pasted, opened): what the grid shows for it."""
    st = os.stat(path)
    return PhotoRow(-1, path, st.st_size, st.st_mtime_ns, None, None, None, None)


class _LibraryJob(QObject):
    photos_ready = Signal(int, object, object, object)  # request, list[PhotoRow], roots, every known path
    similar_ready = Signal(int, object, object, object)  # request, query PhotoRow, list[(PhotoRow, score)], stacks (core.stacks: positions in that list)
    failed = Signal(int, str)

    def __init__(self, data_dir: str, model: str, device: str, threads: int | None) -> None:
        super().__init__()
        self._args = (data_dir, model, device, threads)
        self._engine: Engine | None = None

    def _get(self) -> Engine:
        if self._engine is None:
            data_dir, model, device, threads = self._args
            self._engine = Engine(data_dir, model=model, device=device, threads=threads)  # no ONNX session until an outside photo is the query
        return self._engine

    @Slot(int)
    def load_photos(self, request: int) -> None:
        try:
            engine = self._get()
            catalog = engine.catalog
            self.photos_ready.emit(request, catalog.photos(engine.spec.name), catalog.roots(), catalog.known_paths())
        except Exception as exc:
            log.exception("reading the library failed")  # the traceback goes to the log; the user gets one line
            self.failed.emit(request, f"Cannot read the library: {exc}")

    @Slot(int, str, int)
    def similar(self, request: int, path: str, k: int) -> None:
        try:
            engine = self._get()
            engine.searcher.refresh()  # the index worker may have added photos since the last query
            hits, piles = self._distinct(engine, path, k)
            query = engine.catalog.photo(path) or _outside_photo(path)
            self.similar_ready.emit(request, query, hits, piles)
        except (DecodeError, OSError) as exc:
            self.failed.emit(request, f"{path}: {exc}")
        except Exception as exc:
            log.exception("search failed")  # the traceback goes to the log; the user gets one line
            self.failed.emit(request, f"Search failed: {exc}")

    @staticmethod
    def _distinct(engine: Engine, path: str, k: int) -> tuple[list[tuple[PhotoRow, float]], list[list[int]]]:
        """The k best distinct results: near-identical copies stacked (core.stacks), so the search
        is asked for more neighbours while copies hide the photos after them."""
        wanted = k
        while True:
            results = engine.similar(path, wanted)
            rows = [(row, r.score) for r in results if (row := engine.catalog.photo(r.path)) is not None]
            likeness = engine.catalog.likeness_of(engine.spec.name, [row.path for row, _ in rows])
            piles = stacks([row.path for row, _ in rows], likeness)
            if len(piles) >= k or len(results) < wanted or wanted >= k * MORE_FOR_STACKS:
                break
            wanted = min(k * MORE_FOR_STACKS, wanted * 2)
        piles = piles[:k]
        kept = sorted(i for pile in piles for i in pile)
        at = {old: new for new, old in enumerate(kept)}
        return [rows[i] for i in kept], [[at[i] for i in pile] for pile in piles]

    @Slot()
    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None


class LibraryController(WorkerController):
    photos_ready = Signal(int, object, object, object)
    similar_ready = Signal(int, object, object, object)
    failed = Signal(int, str)
    _load = Signal(int)
    _similar = Signal(int, str, int)

    def __init__(self, data_dir: str, model: str, device: str = "auto", threads: int | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._request = 0
        job = _LibraryJob(str(data_dir), model, device, threads)
        self._start(job, ("photos_ready", "similar_ready", "failed"), [(self._load, job.load_photos), (self._similar, job.similar)])

    def _next_request(self) -> int:
        self._request += 1
        return self._request

    @property
    def latest(self) -> int:
        return self._request

    def load_photos(self) -> int:
        request = self._next_request()
        self._load.emit(request)
        return request

    def similar(self, path: str, k: int) -> int:
        request = self._next_request()
        self._similar.emit(request, path, k)
        return request

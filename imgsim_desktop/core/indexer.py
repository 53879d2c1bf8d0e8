"""The indexing pipeline: scan -> decode (thread pool) -> embed (batched) -> commit per batch.

Decoding runs in threads because Pillow releases the GIL while decoding and resizing; the ONNX
session releases it while running. The main thread keeps a bounded window of decode jobs ahead
of the batch being embedded, so both stages stay busy without holding many images in memory.

With a feature cache, the decode stage also makes each photo's duplicate-check features
(core.verify) while the pixels are in memory: decoding a camera file is most of what a duplicates
scan would otherwise spend per photo, and here it is already paid.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from imgsim_desktop.core import glance, photo_quality, verify
from imgsim_desktop.core.backbones import Backbone, default_threads
from imgsim_desktop.core.decode import Decoded, DecodeError, FormatUnavailable, for_model, is_transient, model_min_side, open_photo
from imgsim_desktop.core.fingerprint import fingerprint_or_none
from imgsim_desktop.core.folders import lexically_inside
from imgsim_desktop.core.progress import Cancelled, Progress
from imgsim_desktop.core.relink import relink_known_content
from imgsim_desktop.core.scanner import FileStat, scan
from imgsim_desktop.storage.catalog import Catalog, Embedded
from imgsim_desktop.storage.feature_cache import FeatureCache

# Small CPU batches keep the first/last batch short (less time with one stage idle) and cost no
# throughput on 2-4 cores (bench/bench_indexing.py); a GPU wants bigger batches.
CPU_BATCH = 8
GPU_BATCH = 32


def batch_size_for(provider: str) -> int:
    return GPU_BATCH if provider == "CUDA" else CPU_BATCH


@dataclass(frozen=True)
class Prepared:
    """What the decode stage hands the embed stage for one photo."""

    decoded: Decoded
    fingerprint: str | None
    features: bytes | None  # verify.to_bytes form, when the indexer has a feature cache
    glance: bytes | None = None  # core.glance code: how a duplicates scan finds turned and mirrored copies
    quality: tuple[float, float, str] | None = None  # sharpness, clipped, metadata tags (core/photo_quality.py)


@dataclass
class IndexReport:
    model: str
    provider: str | None  # "CUDA" or "CPU"; None when nothing was embedded and no model was loaded
    indexed: int = 0
    skipped: int = 0
    removed: int = 0
    moved: int = 0  # found at a new path with known content: kept their embeddings
    copied: int = 0
    errors: list[dict] = field(default_factory=list)
    unsupported: list[dict] = field(default_factory=list)  # {path, format, how}: no decoder installed; not stored, tried every run
    deferred: list[FileStat] = field(default_factory=list)  # failed while apparently still being written
    missing: list[str] = field(default_factory=list)
    cancelled: bool = False
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {
            "indexed": self.indexed,
            "skipped": self.skipped,
            "removed": self.removed,
            "moved": self.moved,
            "copied": self.copied,
            "errors": self.errors,
            "unsupported": self.unsupported,
            "missing_paths": self.missing,
            "model": self.model,
            "provider": self.provider,
            "cancelled": self.cancelled,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class Plan:
    todo: list[FileStat]
    skipped: int
    gone: list[str]


def plan(catalog: Catalog, model: str, files: list[FileStat], roots: list[str], unlisted: list[str] = ()) -> Plan:
    """Which files need decoding for ``model``; unchanged files (size + mtime) never do. What the
    catalog knows inside an ``unlisted`` folder (one the scan could not read) is not gone."""
    known: dict = {}
    for root in roots:
        known.update(catalog.files_under(root))
    for f in files:  # files named directly rather than found under a folder
        if f.path not in known and not _inside(f.path, roots) and (rec := catalog.file_by_path(f.path)) is not None:
            known[f.path] = rec
    embedded = catalog.embedded_file_ids(model)
    todo, skipped = [], 0
    for f in files:
        rec = known.get(f.path)
        if rec is None or (rec.size, rec.mtime_ns) != (f.size, f.mtime_ns):
            todo.append(f)
        elif (rec.error is not None and not is_transient(rec.error)) or rec.id in embedded:
            skipped += 1  # unchanged: a bad file's content is not decoded again until the file changes
        else:
            todo.append(f)  # unchanged, but not yet embedded with this model
    present = {f.path for f in files}
    gone = [p for p in known if p not in present and not any(lexically_inside(p, folder) for folder in unlisted)]
    return Plan(todo, skipped, gone)


def _inside(path: str, roots: list[str]) -> bool:
    return any(path != root and lexically_inside(path, root) for root in roots)


class Indexer:
    """``retry_later(file)``, when given, is asked about each file that fails to decode: True means
    it is probably still being written, so no error is stored and it lands in ``report.deferred``."""

    def __init__(
        self,
        catalog: Catalog,
        backbone: Backbone,
        batch_size: int | None = None,
        decode_workers: int | None = None,
        retry_later: Callable[[FileStat], bool] | None = None,
        features: FeatureCache | None = None,
    ) -> None:
        self.catalog = catalog
        self.features = features
        self.backbone = backbone
        self._batch_size = batch_size  # None: by the provider, once the model is loaded
        self.decode_workers = decode_workers or default_threads()
        self.retry_later = retry_later

    @property
    def batch_size(self) -> int:
        return self._batch_size or batch_size_for(self.backbone.provider)

    def _provider(self) -> str | None:
        """Which device embedded, or None when nothing needed the model (it was never loaded)."""
        return self.backbone.provider if getattr(self.backbone, "loaded", True) else None

    def run(self, paths: list[str], progress: Progress | None = None) -> IndexReport:
        progress = progress or Progress()
        started = time.perf_counter()
        model = self.backbone.spec.name
        report = IndexReport(model=model, provider=None)
        progress.report(0, 0, "scanning", force=True)
        try:
            scanned = scan(paths, self.catalog.excluded(), progress.check)
            report.missing = scanned.missing_roots
            report.errors += [{"path": p, "error": why} for p, why in scanned.problems]
            folder_roots = [os.path.abspath(p) for p in paths if os.path.isdir(p)]
            for root in folder_roots:
                self.catalog.add_root(root)
            work = plan(self.catalog, model, scanned.files, folder_roots, scanned.unlisted)
            report.skipped = work.skipped
            self._update(work.todo, work.gone, folder_roots, report, progress)
        except Cancelled:
            report.cancelled = True
        if self.features is not None and report.indexed and not report.cancelled:
            self.features.prune()  # a library larger than the cap keeps its most recent photos' features
        report.seconds = time.perf_counter() - started
        report.provider = self._provider()
        return report

    def update(self, todo: list[FileStat], gone: list[str], roots: list[str], progress: Progress | None = None, hints: dict[str, str] | None = None) -> IndexReport:
        """Bring the catalog in line with known changes, without a scan: ``todo`` are new or changed
        files, ``gone`` catalogued paths that no longer exist, ``hints`` dest -> src of move events.
        Known content at a new path is relinked (core/relink.py), the rest embedded."""
        progress = progress or Progress()
        started = time.perf_counter()
        report = IndexReport(model=self.backbone.spec.name, provider=None)
        try:
            self._update(todo, gone, roots, report, progress, hints)
        except Cancelled:
            report.cancelled = True
        report.seconds = time.perf_counter() - started
        report.provider = self._provider()
        return report

    def _update(self, todo: list[FileStat], gone: list[str], roots: list[str], report: IndexReport, progress: Progress, hints: dict[str, str] | None = None) -> None:
        # Relink before removing: a moved file's row must still exist to hand over its embedding.
        relinked = relink_known_content(self.catalog, self.backbone.spec.name, todo, gone, hints)
        report.moved, report.copied = relinked.moved, relinked.copied
        if relinked.gone:
            report.removed = self.catalog.remove_files(relinked.gone)
        self._embed_all(relinked.todo, report, progress, roots)

    def _decode(self, f: FileStat) -> Prepared | DecodeError:
        prep = self.backbone.spec.preprocess
        try:
            photo = open_photo(f.path, min_side=model_min_side(prep))
            local = None
            # Features only from a decode exactly like the scan's own, so both make the same bytes
            # (true for every shipped model); not again when stored already (another backbone).
            if self.features is not None and model_min_side(prep) == verify.DECODE_MIN_SIDE:
                local = self._local_features(f, photo)
            # Hashed here, in the pool, while the file is in the page cache: lets a later move keep its embedding.
            return Prepared(for_model(photo, prep), fingerprint_or_none(f.path, f.size), local, _glance(photo.image), _quality(photo))
        except DecodeError as exc:
            return exc
        except Exception as exc:  # an unexpected decoder bug must not end the run either
            return DecodeError(f"unexpected decoder failure: {type(exc).__name__}: {exc}")

    def _local_features(self, f: FileStat, photo) -> bytes | None:
        """The duplicate check's features, unless stored already; any failure here only means the
        scan makes them itself later, never that the photo goes unindexed."""
        try:
            if self.features.has(f.path, f.size, f.mtime_ns, verify.FORMAT):
                return None
            return verify.stored_form(photo.image, (photo.width, photo.height))
        except Exception:  # e.g. MemoryError on a huge image, an unreadable cache folder
            return None

    def _embed_all(self, todo: list[FileStat], report: IndexReport, progress: Progress, roots: list[str]) -> None:
        total = len(todo)
        # Decodes in flight: two batches' worth, sized before the model is loaded (a run whose files
        # all fail, or that has none, never loads it).
        window = (self._batch_size or CPU_BATCH) * 2 + self.decode_workers
        pending: deque[tuple[FileStat, Future]] = deque()
        batch: list[tuple[FileStat, Prepared]] = []
        failed: list[Embedded] = []
        done = 0
        progress.report(0, total, "indexing", force=True)
        with ThreadPoolExecutor(self.decode_workers, thread_name_prefix="decode") as pool:
            queue = iter(todo)
            try:
                while True:
                    while len(pending) < window:
                        f = next(queue, None)
                        if f is None:
                            break
                        pending.append((f, pool.submit(self._decode, f)))
                    if not pending:
                        break
                    f, fut = pending.popleft()
                    out = fut.result()
                    if isinstance(out, FormatUnavailable):
                        report.unsupported.append({"path": f.path, "format": out.format_name, "how": out.how})
                    elif isinstance(out, DecodeError) and self.retry_later is not None and self.retry_later(f):
                        report.deferred.append(f)
                    elif isinstance(out, DecodeError):
                        failed.append(Embedded(f.path, f.size, f.mtime_ns, error=str(out)))
                        report.errors.append({"path": f.path, "error": str(out)})
                    else:
                        batch.append((f, out))
                    if (batch and len(batch) >= self.batch_size) or (not pending and (batch or failed)):
                        progress.check()
                        self._commit(batch, failed, report, roots)
                        done += len(batch) + len(failed)
                        batch, failed = [], []
                        progress.report(done, total, f.path)
                if batch or failed:
                    self._commit(batch, failed, report, roots)
                    done += len(batch) + len(failed)
            finally:
                for _, fut in pending:
                    fut.cancel()
        progress.report(done, total, "done", force=True)

    def _commit(self, batch: list[tuple[FileStat, Prepared]], failed: list[Embedded], report: IndexReport, roots: list[str]) -> None:
        items = list(failed)
        if batch:
            vectors = self.backbone.embed(np.stack([p.decoded.pixels for _, p in batch]))
            items += [
                Embedded(f.path, f.size, f.mtime_ns, vec, p.decoded.width, p.decoded.height, taken_at=p.decoded.taken_at, camera=p.decoded.camera)
                for (f, p), vec in zip(batch, vectors)
            ]
        refused = self.catalog.store_batch(self.backbone.spec.name, items, roots)
        self.catalog.set_fingerprints((f.path, f.size, f.mtime_ns, p.fingerprint) for f, p in batch if p.fingerprint and f.path not in refused)
        self.catalog.set_glances((f.path, f.size, f.mtime_ns, p.glance) for f, p in batch if p.glance and f.path not in refused)
        self.catalog.set_qualities((f.path, f.size, f.mtime_ns, *p.quality) for f, p in batch if p.quality and f.path not in refused)
        if self.features is not None:
            for f, p in batch:
                if p.features is not None and f.path not in refused:
                    self.features.put(f.path, f.size, f.mtime_ns, verify.FORMAT, p.features)
        report.indexed += sum(1 for f, _ in batch if f.path not in refused)


def _quality(photo) -> tuple[float, float, str] | None:
    """Sharpness, exposure and metadata for the keeper rules; a failure only leaves them unknown."""
    try:
        measured = photo_quality.measure(photo.image)
        return measured.sharpness, measured.clipped, photo_quality.to_text(photo.tags)
    except Exception:  # e.g. MemoryError on a huge image
        return None


def _glance(image) -> bytes | None:
    """The photo's glance code; a failure only costs the scan making it later from the features."""
    try:
        return glance.to_bytes(glance.block_of_grey(np.asarray(image.convert("L"))))
    except Exception:  # e.g. MemoryError on a huge image
        return None

"""Annoy indexes on disk, one per model, swapped in atomically.

Each build writes a new generation: ``<model>.<gen>.ann`` (Annoy items 0..n-1) and
``<model>.<gen>.ids.npy`` (item -> catalog vector id), both fsynced, and only then the small
pointer file ``<model>.json`` is replaced with ``os.replace``. A reader therefore sees either the
old complete generation or the new complete one, never a half-written file, and a build killed
midway leaves the previous index in service.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from annoy import AnnoyIndex
from filelock import FileLock

from imgsim_desktop.storage.sampled_hash import sampled_digest

SAMPLE_EDGE = 64 * 1024
SAMPLE_SLICE = 16 * 1024
SAMPLE_SLICES = 64


def _sampled_digest(path: Path) -> str:
    """A cheap identity of a big index file (about 1.1 MB read whatever its size): a scribbled or
    truncated file fails it; the score check in core.search catches what a sample misses."""
    return sampled_digest(path, SAMPLE_EDGE, SAMPLE_SLICE, SAMPLE_SLICES)


def _structure_problem(path: Path, dim: int, count: int) -> str | None:
    """Why Annoy must not be handed this file, or None. The sampled checksum reads about 1 MB of a
    file that holds hundreds at 20k photos, and damage between its samples once crashed the whole
    process (a child index out of range: a segfault inside Annoy; a negative count: an abort) or
    gave duplicates scans garbage vectors. So every node is checked, vectorised over a memory map
    (one read of the file, no copy): item nodes hold one unit vector each; a leaf lists item numbers
    below ``count``; a split node's two children are nodes of this file. Annoy's angular node is a
    12-byte header (descendant count, two children) and ``dim`` float32, in that order."""
    width = 3 + dim  # int32 words per node
    node_bytes = 4 * width
    size = path.stat().st_size
    if count == 0:
        return None  # nothing in it is ever asked for
    if count < 0 or size % node_bytes or size // node_bytes <= count:
        return f"{path.name} is damaged (its size does not fit {count} photos of {dim} values)"
    nodes = np.memmap(path, dtype="<i4", mode="r", shape=(size // node_bytes, width))
    n_nodes, most = len(nodes), width - 1  # a leaf's item list runs over the children and the vector
    descendants = np.asarray(nodes[:, 0])
    if descendants[-1] != count or np.any(descendants[:count] != 1):
        return f"{path.name} is damaged (its item records are not the {count} photos it was built with)"
    for start in range(0, count, 8192):  # each photo's vector: finite and of unit length (or zero)
        vectors = np.asarray(nodes[start : min(start + 8192, count), 3:]).view("<f4")
        norms = np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64)
        if not np.all(np.isfinite(norms) & ((np.abs(norms - 1.0) < 1e-3) | (norms == 0.0))):
            return f"{path.name} is damaged (a photo's vector in it is not a unit vector)"
    inner = descendants[count:]
    if np.any((inner < 1) | (inner > count)):
        return f"{path.name} is damaged (a tree node counts photos it cannot hold)"
    splits = count + np.flatnonzero(inner > most)
    children = np.asarray(nodes[splits, 1:3])
    if np.any((children < 0) | (children >= n_nodes)):
        return f"{path.name} is damaged (a tree node points outside the file)"
    leaves = count + np.flatnonzero(inner <= most)
    for start in range(0, len(leaves), 4096):
        rows = leaves[start : start + 4096]
        listed = np.asarray(nodes[rows, 1:])
        used = np.arange(most)[None, :] < descendants[rows][:, None]
        if np.any(used & ((listed < 0) | (listed >= count))):
            return f"{path.name} is damaged (a tree leaf lists a photo the file does not hold)"
    return None


def _file_digest(path: Path) -> str:
    return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()


def _safe(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", model)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    if os.name == "nt":  # directories cannot be opened for fsync on Windows; NTFS journals renames
        return
    _fsync_file(path)


@dataclass
class LoadedIndex:
    annoy: AnnoyIndex
    ids: np.ndarray  # annoy item -> vector id
    generation: int
    built_at: float
    n_trees: int
    path: Path | None = None  # the .ann file, for reading item vectors without Annoy (vectors())

    def unload(self) -> None:
        self.annoy.unload()

    def vectors(self) -> np.ndarray:
        """Item vectors, row i = Annoy item i (n x dim float32, read-only).

        Annoy hands out one vector per call as a Python list (about 60 us each: 6 s for 100k). Its
        file is an array of nodes whose first n are the items, each a 12-byte header (descendant
        count, two children) followed by the vector, so the file memory-mapped as that record gives
        every vector at once, without a copy. The layout is Annoy's, not a promise: a few items
        are compared with what Annoy itself returns, and any mismatch falls back to asking Annoy.
        """
        n, dim = self.annoy.get_n_items(), self.annoy.f
        node = np.dtype([("header", "<i4", 3), ("vector", "<f4", dim)])
        try:
            nodes = np.memmap(self.path, dtype=node, mode="r", shape=(n,)) if self.path is not None and n else None
        except (OSError, ValueError):
            nodes = None
        if nodes is not None:
            probe = sorted({0, n // 3, n // 2, n - 1})
            if all(np.array_equal(nodes["vector"][i], np.asarray(self.annoy.get_item_vector(i), np.float32)) for i in probe):
                return nodes["vector"]
        return np.array([self.annoy.get_item_vector(i) for i in range(n)], np.float32).reshape(n, dim)


def trees_for(count: int) -> int:
    """More trees buy recall at the price of build time and disk; this keeps recall@50 high."""
    if count <= 20_000:
        return 32
    if count <= 200_000:
        return 24
    return 16


class AnnoyStore:
    def __init__(self, index_dir: Path, model: str, dim: int) -> None:
        self.dir = Path(index_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.model = model
        self.dim = dim
        self._stem = _safe(model)
        self.pointer = self.dir / f"{self._stem}.json"
        self.problem: str | None = None  # why the last load() refused the index

    def _current(self) -> dict | None:
        try:
            meta = json.loads(self.pointer.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return meta if meta.get("dim") == self.dim else None

    def build(self, chunks: Iterable[tuple[np.ndarray, np.ndarray]], n_trees: int | None = None, n_jobs: int = -1) -> dict:
        """Build a new generation from (vector ids, vectors) chunks and make it current.

        Builds are serialised across threads and processes (the app's indexer, its folder watcher
        and a terminal's `imgsim watch` may all rebuild one library): two builders would pick the
        same generation number, and one's clean-up would delete the other's half-built files.
        """
        with FileLock(str(self.dir / f"{self._stem}.build.lock")):
            return self._build_locked(chunks, n_trees, n_jobs)

    def _build_locked(self, chunks: Iterable[tuple[np.ndarray, np.ndarray]], n_trees: int | None, n_jobs: int) -> dict:
        current = self._current()
        gen = (current["generation"] + 1) if current else 1
        ann_path = self.dir / f"{self._stem}.{gen}.ann"
        ids_path = self.dir / f"{self._stem}.{gen}.ids.npy"
        index = AnnoyIndex(self.dim, "angular")
        index.on_disk_build(str(ann_path))  # builds straight into the file: no second copy in RAM
        id_parts: list[np.ndarray] = []
        item = 0
        for ids, vecs in chunks:
            for vec in vecs:
                index.add_item(item, vec)
                item += 1
            id_parts.append(np.asarray(ids, dtype=np.int64))
        trees = n_trees or trees_for(item)
        index.build(trees, n_jobs=n_jobs)
        index.unload()
        _fsync_file(ann_path)
        ids = np.concatenate(id_parts) if id_parts else np.zeros(0, np.int64)
        tmp_ids = ids_path.with_suffix(".tmp")
        with open(tmp_ids, "wb") as fh:
            np.save(fh, ids)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_ids, ids_path)
        meta = {
            "model": self.model,
            "dim": self.dim,
            "metric": "angular",
            "generation": gen,
            "ann": ann_path.name,
            "ids": ids_path.name,
            "count": int(len(ids)),
            "n_trees": trees,
            "built_at": time.time(),
            "ann_digest": _sampled_digest(ann_path),  # checked on every load: a damaged file is never searched
            "ids_digest": _file_digest(ids_path),
        }
        tmp_ptr = self.pointer.with_suffix(".json.tmp")
        with open(tmp_ptr, "w") as fh:
            json.dump(meta, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_ptr, self.pointer)
        _fsync_dir(self.dir)
        self._collect_garbage(keep=gen)
        return meta

    def load(self) -> LoadedIndex | None:
        """Memory-map the current generation, or None when there is none or it is damaged
        (``problem`` then says why; the caller searches exactly and rebuilds)."""
        self.problem = None
        meta = self._current()
        if meta is None:
            return None
        self.problem = self.check(meta)
        if self.problem:
            return None
        index = AnnoyIndex(self.dim, "angular")
        try:
            index.load(str(self.dir / meta["ann"]), prefault=False)
            ids = np.load(self.dir / meta["ids"])
        except (OSError, ValueError) as exc:
            self.problem = f"the search index cannot be read ({exc})"
            return None
        if len(ids) != index.get_n_items():
            index.unload()
            self.problem = "the search index and its id map disagree"
            return None
        return LoadedIndex(index, ids, meta["generation"], meta["built_at"], meta["n_trees"], self.dir / meta["ann"])

    def check(self, meta: dict | None = None) -> str | None:
        """Why the current index must not be used, or None: its files' checksums (indexes built
        before digests were recorded have none; the next rebuild records them), then every node's
        structure, so that Annoy is never handed a file that can crash it."""
        meta = meta or self._current()
        if meta is None:
            return None
        ann, ids = self.dir / meta["ann"], self.dir / meta["ids"]
        try:
            if meta.get("ann_digest") and _sampled_digest(ann) != meta["ann_digest"]:
                return f"{ann.name} is damaged (its checksum differs from the one recorded when it was built)"
            if meta.get("ids_digest") and _file_digest(ids) != meta["ids_digest"]:
                return f"{ids.name} is damaged (its checksum differs from the one recorded when it was built)"
            if problem := _structure_problem(ann, self.dim, int(meta.get("count", 0))):
                return problem
        except (OSError, ValueError) as exc:
            return f"the search index cannot be read ({getattr(exc, 'strerror', None) or exc})"
        return None

    def _collect_garbage(self, keep: int) -> None:
        """Drop older generations and leftovers of killed builds. A reader that still has an old
        file mapped keeps it (POSIX); where the OS refuses (Windows), the next build retries."""
        pattern = re.compile(rf"^{re.escape(self._stem)}\.(\d+)\.(ann|ids\.npy|ids\.tmp)$")
        for entry in self.dir.iterdir():
            m = pattern.match(entry.name)
            if m and int(m.group(1)) != keep:
                try:
                    entry.unlink()
                except OSError:
                    pass

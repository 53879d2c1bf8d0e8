"""k-NN over a model's embeddings: the Annoy index plus an exact "delta", always correct.

Annoy cannot take items after it is built, and a built index goes stale as files change. So a
query looks at three things: the Annoy index (built from a past catalog state), a brute-force
matrix of vectors added since (the delta), and the set of indexed vectors that no longer exist
(stale, filtered out). Small collections skip Annoy and are searched exactly.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgsim_desktop.core.backbones import Backbone, normalise
from imgsim_desktop.core.decode import load_for_model
from imgsim_desktop.storage.annoy_store import AnnoyStore, LoadedIndex
from imgsim_desktop.storage.catalog import Catalog

# Below this many vectors, brute force is both exact and fast (20k x 1280 floats = 100 MB).
EXACT_LIMIT = 20_000
# Rebuild Annoy once the exact delta grows past this share of the index.
REBUILD_FRACTION = 0.05
REBUILD_MIN = 2_000
SCORE_TOLERANCE = 0.02  # Annoy's float32 cosines match the catalog's to ~1e-6; more is a damaged index


@dataclass(frozen=True)
class Hit:
    vector_id: int
    score: float  # cosine similarity


@dataclass(frozen=True)
class Result:
    path: str
    score: float


def _top_exact(matrix: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> list[Hit]:
    if len(ids) == 0:
        return []
    scores = matrix @ query
    k = min(k, len(ids))
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    return [Hit(int(ids[i]), float(scores[i])) for i in top]


class AnnIndex:
    """The three-part k-NN described above, independent of where vectors come from."""

    def __init__(self, loaded: LoadedIndex | None, delta_ids: np.ndarray, delta_vecs: np.ndarray, stale: set[int]) -> None:
        self.loaded = loaded
        self.delta_ids = delta_ids
        self.delta_vecs = delta_vecs
        self.stale = stale

    @property
    def indexed_count(self) -> int:
        return 0 if self.loaded is None else len(self.loaded.ids)

    def query(self, vector: np.ndarray, k: int, search_k: int | None = None) -> list[Hit]:
        hits = _top_exact(self.delta_vecs, self.delta_ids, vector, k)
        if self.loaded is not None and len(self.loaded.ids):
            hits += self._annoy_hits(vector, k, search_k)
            hits.sort(key=lambda h: -h.score)
        return hits[:k]

    def _annoy_hits(self, vector: np.ndarray, k: int, search_k: int | None) -> list[Hit]:
        loaded = self.loaded
        # The budget (items inspected) depends on k only: stale ids are filtered afterwards and
        # must not multiply the work (bench/bench_query.py: 200*k keeps recall@50 ~ 0.999 at 1M).
        budget = search_k or max(loaded.n_trees * k * 4, 200 * k)
        # Ask for a few more than k, in proportion to how much of the index is stale...
        share = len(self.stale) / len(loaded.ids)
        want = k + min(len(self.stale), math.ceil(2 * k * share) + 10)
        vec = vector.tolist()
        while True:
            items, dists = loaded.annoy.get_nns_by_vector(vec, want, search_k=budget, include_distances=True)
            fresh = [(vid, d) for vid, d in zip(loaded.ids[items].tolist(), dists) if vid not in self.stale]
            if len(fresh) >= k or len(items) < want or want >= k + len(self.stale):
                break
            # ...and only where deleted photos crowd this neighbourhood, look past all of them.
            want = k + len(self.stale)
            budget = max(budget, loaded.n_trees * want * 4)
        return [Hit(vid, 1.0 - d * d / 2.0) for vid, d in fresh]  # angular distance = sqrt(2 - 2 cos)


class Searcher:
    """Similarity search for one model over a catalog; refresh() after the catalog changes.

    Safe to query from one thread while another refreshes or rebuilds: a query keeps using the
    AnnIndex it started with, and refresh() swaps in a complete new one with a single assignment.
    """

    def __init__(self, catalog: Catalog, index_dir: Path, backbone: Backbone) -> None:
        self.catalog = catalog
        self.backbone = backbone
        self.model = backbone.spec.name
        self.store = AnnoyStore(index_dir, self.model, backbone.spec.embedding_dim)
        self._ann: AnnIndex | None = None
        # Serialises refreshes, so the last one to finish is also the one that read the newest catalog.
        self._refresh_lock = threading.Lock()

    def refresh(self) -> AnnIndex:
        with self._refresh_lock:
            # The old index is not unloaded here: a query in another thread may still be reading it.
            # Annoy unmaps it when the last reference goes.
            self._ann = self._load_current()
            return self._ann

    def _load_current(self) -> AnnIndex:
        live = self.catalog.vector_ids(self.model)
        loaded = self.store.load() if len(live) > EXACT_LIMIT else None
        if loaded is None:
            delta_ids, stale = live, set()
        else:
            delta_ids = np.setdiff1d(live, loaded.ids, assume_unique=True)
            stale = set(np.setdiff1d(loaded.ids, live, assume_unique=True).tolist())
        vecs = [v for _, v in self.catalog.iter_vectors(self.model, None if loaded is None else delta_ids.tolist())]
        dim = self.backbone.spec.embedding_dim
        matrix = np.concatenate(vecs) if vecs else np.zeros((0, dim), np.float32)
        return AnnIndex(loaded, delta_ids, matrix, stale)

    def _scores_hold(self, hits: list[Hit], vector: np.ndarray) -> bool:
        """The index's scores agree with the catalog's vectors (k of them: cheap)."""
        wanted = [h.vector_id for h in hits]
        stored = {}
        for ids, vecs in self.catalog.iter_vectors(self.model, wanted):
            stored.update(zip(ids.tolist(), vecs @ vector, strict=True))
        return all(h.vector_id in stored and abs(stored[h.vector_id] - h.score) < SCORE_TOLERANCE for h in hits)

    def _exact(self) -> AnnIndex:
        live = self.catalog.vector_ids(self.model)
        vecs = [v for _, v in self.catalog.iter_vectors(self.model)]
        matrix = np.concatenate(vecs) if vecs else np.zeros((0, self.backbone.spec.embedding_dim), np.float32)
        return AnnIndex(None, live, matrix, set())

    @property
    def ann(self) -> AnnIndex:
        return self._ann or self.refresh()

    def needs_rebuild(self) -> bool:
        ann = self.ann
        pending = len(ann.delta_ids) + len(ann.stale)
        total = ann.indexed_count + len(ann.delta_ids)
        if total <= EXACT_LIMIT:
            return False
        return ann.loaded is None or pending >= max(REBUILD_MIN, REBUILD_FRACTION * ann.indexed_count)

    def rebuild(self) -> dict:
        meta = self.store.build(self.catalog.iter_vectors(self.model))
        self.refresh()
        return meta

    def vector_for_file(self, path: str | os.PathLike) -> tuple[np.ndarray, bool]:
        """The query vector of a file: from the catalog when it is indexed and unchanged, else
        decoded and embedded now. Returns (vector, in_library)."""
        path = os.path.abspath(path)
        known = self.catalog.vector_for_path(self.model, path)
        if known is not None:
            st = os.stat(path)
            if (st.st_size, st.st_mtime_ns) == (known[2], known[3]):
                return known[1], True
        decoded = load_for_model(path, self.backbone.spec.preprocess)
        return self.backbone.embed(decoded.pixels[None])[0], False

    def similar_to_vector(self, vector: np.ndarray, k: int, exclude: str | None = None) -> list[Result]:
        vector = normalise(vector)
        ann = self.ann
        hits = ann.query(vector, k + (1 if exclude else 0))
        if ann.loaded is not None and not self._scores_hold(hits, vector):
            # The index answers what the stored vectors deny (a file damaged past its checksum
            # sample): search exactly now, and have it rebuilt.
            self.store.problem = "the search index gave scores its photos' stored vectors do not have; it is rebuilt"
            self._ann = ann = self._exact()
            hits = ann.query(vector, k + (1 if exclude else 0))
        names = self.catalog.paths_for_vectors(h.vector_id for h in hits)
        out = [Result(names[h.vector_id], max(-1.0, min(1.0, h.score))) for h in hits if h.vector_id in names and names[h.vector_id] != exclude]
        return out[:k]

    def similar_to_file(self, path: str | os.PathLike, k: int) -> list[Result]:
        vector, in_library = self.vector_for_file(path)
        return self.similar_to_vector(vector, k, exclude=os.path.abspath(path))

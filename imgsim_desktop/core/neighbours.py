"""Every photo's nearest neighbours at once: the candidate pairs of a duplicates scan.

Asking Annoy for each photo's neighbours costs about a millisecond a photo at 1280 dimensions (a
100k library: 35-45 s on two cores), almost all of it distances computed one pair at a time. Here
the whole library is instead cut into cells of a few hundred alike photos (core.cells: k-means on a
64-d projection), every photo is scored against the photos of its SPILL nearest cells with one
matrix product per cell in full 1280-d float32 (BLAS: tens of times faster per distance than
Annoy's loop), and each photo keeps its k best. Scores are exact cosines, so thresholds keep their
meaning; only a neighbour that lies in none of a photo's SPILL nearest cells is missed
(bench/bench_duplicates_scan.py measures that recall against brute force).

Vectors come from the Annoy file (memory-mapped, no copy, see LoadedIndex.vectors) minus the
stale ids, plus the exact delta; small libraries are compared all against all.
"""

from __future__ import annotations

import numpy as np

from imgsim_desktop.core import cells
from imgsim_desktop.core.progress import Progress
from imgsim_desktop.core.search import AnnIndex

BLOCK = 1024  # rows per matrix product in the all-against-all path: 1024 x 8k floats = 32 MB
# Up to this many photos every one is scored against every other (8k x 8k x 1280: about 2 s).
ALL_PAIRS_LIMIT = 8_000
SPILL = 3  # cells a photo looks into: its own and the two next nearest (2 lost 0.5% of pairs)


class LibraryVectors:
    """The live vectors of an AnnIndex as one indexable matrix, without copying the Annoy part."""

    def __init__(self, ann: AnnIndex) -> None:
        self.dim = ann.delta_vecs.shape[1]
        parts_ids, self._parts = [ann.delta_ids.astype(np.int64)], [ann.delta_vecs]
        if ann.loaded is not None and len(ann.loaded.ids):
            stale = np.fromiter(ann.stale, np.int64, len(ann.stale))
            live = np.flatnonzero(~np.isin(ann.loaded.ids, stale))
            parts_ids.append(ann.loaded.ids[live])
            self._parts.append(ann.loaded.vectors())
            self._rows = [np.arange(len(ann.delta_ids)), live]
        else:
            self._rows = [np.arange(len(ann.delta_ids))]
        self.ids = np.concatenate(parts_ids)
        self._starts = np.cumsum([0] + [len(r) for r in self._rows])

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, positions: np.ndarray) -> np.ndarray:
        """Rows at these positions (0..len-1) as a contiguous float32 matrix."""
        out = np.empty((len(positions), self.dim), np.float32)
        for part, rows, start, stop in zip(self._parts, self._rows, self._starts[:-1], self._starts[1:]):
            mine = np.flatnonzero((positions >= start) & (positions < stop))
            if len(mine):
                out[mine] = part[rows[positions[mine] - start]]
        return out


class MatrixVectors:
    """Vectors already in memory (ids[i] is row i's id), in LibraryVectors' shape."""

    def __init__(self, ids: np.ndarray, matrix: np.ndarray) -> None:
        self.ids, self._matrix = np.asarray(ids, np.int64), np.ascontiguousarray(matrix, np.float32)
        self.dim = self._matrix.shape[1]

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, positions: np.ndarray) -> np.ndarray:
        return self._matrix[positions]


def neighbour_pairs(ann: AnnIndex, k: int, floor: float, progress: Progress) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (a < b, vector ids) where one is among the other's ``k`` nearest and cosine >= floor.
    Returns arrays a, b, cosine, each pair once."""
    return nearest_pairs(LibraryVectors(ann), k, floor, progress)


def nearest_pairs(vectors: LibraryVectors | MatrixVectors, k: int, floor: float, progress: Progress, what: str = "finding candidate pairs"):
    """neighbour_pairs over any unit vectors with ids (LibraryVectors, MatrixVectors)."""
    n = len(vectors)
    if n < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    if n <= ALL_PAIRS_LIMIT:
        q, h, cos = _all_pairs(vectors, k, floor, progress, what)
    else:
        q, h, cos = _cell_pairs(vectors, k, floor, progress, what)
    q, h, cos = _best_per_photo(q, h, cos, k)
    a, b = vectors.ids[q], vectors.ids[h]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    _, first = np.unique(np.stack([lo, hi], axis=1), axis=0, return_index=True)
    progress.report(n, n, what, force=True)  # the bar ends full
    return lo[first], hi[first], cos[first]


def _top_of_block(scores: np.ndarray, rows: np.ndarray, cols: np.ndarray, k: int, floor: float):
    """Each row's k best columns with score >= floor, as (row positions, column positions, scores)."""
    take = min(k, scores.shape[1])
    if take <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    top = np.argpartition(-scores, take - 1, axis=1)[:, :take]
    best = np.take_along_axis(scores, top, axis=1)
    r, c = np.nonzero(best >= floor)
    return rows[r], cols[top[r, c]], best[r, c]


def _all_pairs(vectors, k: int, floor: float, progress: Progress, what: str):
    n = len(vectors)
    everything = vectors.take(np.arange(n))
    positions = np.arange(n)
    out = []
    for start in range(0, n, BLOCK):
        progress.check()
        progress.report(start, n, what)
        scores = everything[start : start + BLOCK] @ everything.T
        rows = positions[start : start + BLOCK]
        scores[np.arange(len(rows)), rows] = -2.0  # a photo is not its own neighbour
        out.append(_top_of_block(scores, rows, positions, k, floor))
    return _joined(out)


def _cell_pairs(vectors, k: int, floor: float, progress: Progress, what: str):
    progress.report(0, len(vectors), what)
    nearest, n_cells = cells.assign(vectors, SPILL, progress)
    # Each cell scores the photos that look into it (any of their SPILL nearest) against the photos
    # that live there (their nearest): SPILL x the cell's size squared, not (SPILL x size) squared.
    members = cells.members(nearest[:, 0], n_cells)
    visitors = cells.members(nearest.ravel(), n_cells, np.repeat(np.arange(len(nearest)), nearest.shape[1]))
    out, done = [], 0
    for cell, (here, looking) in enumerate(zip(members, visitors)):
        progress.check()
        if len(here) == 0 or len(looking) == 0:
            continue
        scores = vectors.take(looking) @ vectors.take(here).T
        scores[looking[:, None] == here[None, :]] = -2.0  # a photo is not its own neighbour
        out.append(_top_of_block(scores, looking, here, k, floor))
        done += len(here)
        if cell % 16 == 0:
            progress.report(done, len(vectors), what)
    return _joined(out)


def _joined(parts):
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return tuple(np.concatenate(col) for col in zip(*parts))


def _best_per_photo(q: np.ndarray, h: np.ndarray, cos: np.ndarray, k: int):
    """Each photo's k best distinct neighbours among those found in all its cells."""
    key = q * (int(max(h.max(initial=0), q.max(initial=0))) + 1) + h
    _, first = np.unique(key, return_index=True)
    q, h, cos = q[first], h[first], cos[first]
    order = np.lexsort((-cos, q))
    q, h, cos = q[order], h[order], cos[order]
    starts = np.flatnonzero(np.r_[True, q[1:] != q[:-1]]) if len(q) else np.zeros(0, np.int64)
    rank = np.arange(len(q)) - np.repeat(starts, np.diff(np.r_[starts, len(q)]))
    keep = rank < k
    return q[keep], h[keep], cos[keep].astype(np.float32)

"""Cut a library's embeddings into cells of alike photos, so neighbours are looked for cell by cell.

A coarse partition only has to put near-identical photos together, not rank them, so it is found
cheaply: a 64-d PCA projection (fitted on a sample) and a few rounds of spherical k-means on a
sample. Every photo then gets its ``spill`` nearest cells: its home cell first, then the cells a
close neighbour of a photo on a border may live in.
"""

from __future__ import annotations

import numpy as np

from imgsim_desktop.core.progress import Progress

CELL_SIZE = 160  # photos per cell on average: cost per cell grows with its square, count with 1/size
PROJECTED_DIMS = 64
SAMPLE = 16_000  # photos the projection and the cell centres are fitted on
ROUNDS = 6  # k-means rounds; the partition only needs to be roughly right
BLOCK = 8192
SEED = 0  # fixed: the same library is always cut the same way, so a scan is repeatable


def assign(vectors, spill: int, progress: Progress) -> tuple[np.ndarray, int]:
    """For ``vectors`` (len() and take(positions)): each photo's spill nearest cells, nearest first
    (n x spill; column 0 is the home cell), and the number of cells."""
    n = len(vectors)
    rng = np.random.default_rng(SEED)
    sample = vectors.take(np.sort(rng.choice(n, min(n, SAMPLE), replace=False)))
    mean = sample.mean(axis=0)
    _, _, axes = np.linalg.svd(sample[: min(len(sample), 4000)] - mean, full_matrices=False)
    basis = axes[:PROJECTED_DIMS].T.copy()
    centres = _kmeans(_unit((sample - mean) @ basis), max(2, round(n / CELL_SIZE)), rng)
    spill = min(spill, len(centres))
    nearest = np.empty((n, spill), np.int64)
    for start in range(0, n, BLOCK):
        progress.check()
        scores = _unit((vectors.take(np.arange(start, min(n, start + BLOCK))) - mean) @ basis) @ centres.T
        top = np.argpartition(-scores, spill - 1, axis=1)[:, :spill]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
        nearest[start : start + BLOCK] = np.take_along_axis(top, order, axis=1)
    return nearest, len(centres)


def members(cell_of: np.ndarray, n_cells: int, positions: np.ndarray | None = None) -> list[np.ndarray]:
    """The positions in each cell, given each position's cell (positions default to 0..n-1)."""
    positions = np.arange(len(cell_of)) if positions is None else positions
    order = np.argsort(cell_of, kind="stable")
    bounds = np.searchsorted(cell_of[order], np.arange(n_cells + 1))
    return [positions[order[bounds[c] : bounds[c + 1]]] for c in range(n_cells)]


def _kmeans(points: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    count = min(count, len(points))
    centres = points[rng.choice(len(points), count, replace=False)].copy()
    for _ in range(ROUNDS):
        label = np.argmax(points @ centres.T, axis=1)
        sums = np.zeros_like(centres)
        np.add.at(sums, label, points)
        empty = ~np.any(sums, axis=1)
        sums[empty] = points[rng.choice(len(points), int(empty.sum()), replace=False)]  # reseed
        centres = _unit(sums)
    return centres


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

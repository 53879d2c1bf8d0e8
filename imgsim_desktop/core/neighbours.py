"""Every photo's nearest neighbours at once: the candidate pairs of a duplicates scan.

Asking AnnIndex.query() once per photo re-sends each vector to Annoy and re-searches the exact
delta one vector at a time. Here items already in the Annoy index ask for their neighbours by item
(Annoy reads the vector it already holds) with a small search budget (near-duplicates are each
other's closest neighbours, found within the first leaves), in threads (Annoy releases the GIL);
vectors outside the index are scored in blocks with one matrix product per block.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from imgsim_desktop.core.progress import Progress
from imgsim_desktop.core.search import AnnIndex

BLOCK = 1024  # rows per matrix product: 1024 x 20k float32 scores = 80 MB at most
ITEMS_PER_TASK = 2048
SEARCH_K_PER_NEIGHBOUR = 40  # Annoy nodes inspected per neighbour asked for
THREADS = 2


def neighbour_pairs(ann: AnnIndex, k: int, floor: float, progress: Progress) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (a < b, vector ids) where one is among the other's ``k`` nearest and cosine >= floor.
    Returns arrays a, b, cosine, each pair once."""
    parts = [_delta_pairs(ann, k, floor, progress)]
    if ann.loaded is not None and len(ann.loaded.ids):
        parts.append(_annoy_pairs(ann, k, floor, progress))
    a = np.concatenate([p[0] for p in parts])
    b = np.concatenate([p[1] for p in parts])
    cos = np.concatenate([p[2] for p in parts])
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keep = lo != hi
    lo, hi, cos = lo[keep], hi[keep], cos[keep]
    _, first = np.unique(np.stack([lo, hi], axis=1), axis=0, return_index=True)
    photos = len(ann.delta_ids) + (len(ann.loaded.ids) if ann.loaded is not None else 0)
    progress.report(photos, photos, "finding candidate pairs", force=True)  # the bar ends full
    return lo[first], hi[first], cos[first]


def _delta_pairs(ann: AnnIndex, k: int, floor: float, progress: Progress):
    """Exact neighbours of the vectors outside Annoy, among themselves and in the Annoy index."""
    ids, vecs = ann.delta_ids, ann.delta_vecs
    out_a, out_b, out_c = [], [], []
    take = min(k + 1, len(ids))
    for start in range(0, len(ids), BLOCK):
        progress.check()
        progress.report(start, len(ids), "finding candidate pairs")
        scores = vecs[start : start + BLOCK] @ vecs.T
        top = np.argpartition(-scores, take - 1, axis=1)[:, :take]
        best = np.take_along_axis(scores, top, axis=1)
        rows, cols = np.nonzero(best >= floor)
        out_a.append(ids[start + rows])
        out_b.append(ids[top[rows, cols]])
        out_c.append(best[rows, cols])
    if ann.loaded is not None and len(ann.loaded.ids) and len(ids):
        # Few (the delta is rebuilt into Annoy past a small size), so each looks further: an indexed
        # photo never asks the delta for its neighbours, and this is where it would find them.
        for vid, vec in zip(ids.tolist(), vecs):
            for hit in ann.query(vec, 4 * (k + 1)):
                if hit.score >= floor:
                    out_a.append(np.array([vid]))
                    out_b.append(np.array([hit.vector_id]))
                    out_c.append(np.array([hit.score], np.float32))
    if not out_a:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return np.concatenate(out_a), np.concatenate(out_b), np.concatenate(out_c).astype(np.float32)


def _annoy_pairs(ann: AnnIndex, k: int, floor: float, progress: Progress):
    loaded = ann.loaded
    n = len(loaded.ids)
    stale = np.fromiter(ann.stale, np.int64, len(ann.stale))
    live = ~np.isin(loaded.ids, stale)
    max_distance = float(np.sqrt(max(0.0, 2.0 - 2.0 * floor)))  # angular distance = sqrt(2 - 2 cos)
    search_k = SEARCH_K_PER_NEIGHBOUR * (k + 1) * loaded.n_trees // 8

    def task(start: int) -> tuple[list[int], list[int], list[float]]:
        a, b, d = [], [], []
        if progress.cancelled:
            return a, b, d  # the caller raises Cancelled; queued tasks end at once
        for item in range(start, min(n, start + ITEMS_PER_TASK)):
            if not live[item]:
                continue
            items, dists = loaded.annoy.get_nns_by_item(item, k + 1, search_k=search_k, include_distances=True)
            for other, dist in zip(items, dists):
                if dist <= max_distance and other != item:
                    a.append(item)
                    b.append(other)
                    d.append(dist)
        return a, b, d

    out_a, out_b, out_d = [], [], []
    starts = range(0, n, ITEMS_PER_TASK)
    with ThreadPoolExecutor(THREADS, thread_name_prefix="neighbours") as pool:
        for done, (a, b, d) in enumerate(pool.map(task, starts), 1):
            progress.check()
            progress.report(min(n, done * ITEMS_PER_TASK), n, "finding candidate pairs")
            out_a += a
            out_b += b
            out_d += d
    items_a, items_b = np.array(out_a, np.int64), np.array(out_b, np.int64)
    keep = live[items_b]
    dist = np.array(out_d, np.float32)[keep]
    return loaded.ids[items_a[keep]], loaded.ids[items_b[keep]], 1.0 - dist * dist / 2.0

"""Near-duplicate groups from stored embeddings: neighbour pairs above a cosine threshold, joined.

Candidates come from the k-NN index (never all pairs), so the scan scales with the library.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imgsim_desktop.core.search import Searcher

DEFAULT_THRESHOLD = 0.90
NEIGHBOURS = 8


@dataclass(frozen=True)
class Member:
    path: str
    score: float  # cosine similarity to the group's first member (1.0 for itself)


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def find_groups(searcher: Searcher, threshold: float = DEFAULT_THRESHOLD) -> list[list[Member]]:
    """Groups of two or more photos whose embeddings are at least ``threshold`` alike."""
    ann = searcher.refresh()
    catalog, model = searcher.catalog, searcher.model
    uf = _UnionFind()
    for ids, vecs in catalog.iter_vectors(model):
        for vid, vec in zip(ids.tolist(), vecs):
            for hit in ann.query(vec, NEIGHBOURS + 1):
                if hit.vector_id != vid and hit.score >= threshold:
                    uf.union(vid, hit.vector_id)
    clusters: dict[int, list[int]] = {}
    for vid in list(uf.parent):
        clusters.setdefault(uf.find(vid), []).append(vid)
    members = [ids for ids in clusters.values() if len(ids) > 1]
    names = catalog.paths_for_vectors(v for ids in members for v in ids)
    vecs = dict(zip(*_vectors(catalog, model, [v for ids in members for v in ids])))
    groups = []
    for ids in members:
        ids = sorted((v for v in ids if v in names), key=lambda v: names[v])
        if len(ids) < 2:
            continue
        anchor = vecs[ids[0]]
        groups.append([Member(names[v], round(float(np.dot(anchor, vecs[v])), 4)) for v in ids])
    groups.sort(key=lambda g: (-len(g), g[0].path))
    return groups


def _vectors(catalog, model: str, ids: list[int]) -> tuple[list[int], list[np.ndarray]]:
    out_ids: list[int] = []
    out_vecs: list[np.ndarray] = []
    for chunk_ids, chunk_vecs in catalog.iter_vectors(model, ids):
        out_ids += chunk_ids.tolist()
        out_vecs += list(chunk_vecs)
    return out_ids, out_vecs

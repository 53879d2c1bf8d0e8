"""Near-duplicate groups from stored embeddings: neighbour pairs above a cosine threshold, joined.

Candidates come from the k-NN index (never all pairs), so the scan scales with the library.
"""

from __future__ import annotations

import hashlib
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


def exact_copies(catalog) -> list[list[str]]:
    """Byte-identical files: hashed only where sizes collide, so most files are never read."""
    groups = []
    for same_size in catalog.same_size_files():
        by_digest: dict[bytes, list[str]] = {}
        for path in same_size:
            try:
                by_digest.setdefault(_digest(path), []).append(path)
            except OSError:
                continue  # gone or unreadable since indexing: not a copy of anything now
        groups += [paths for paths in by_digest.values() if len(paths) > 1]
    return groups


def _digest(path: str) -> bytes:
    h = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.digest()


def find_groups(searcher: Searcher, threshold: float = DEFAULT_THRESHOLD) -> list[list[Member]]:
    """Groups of two or more photos: exact copies, plus embeddings at least ``threshold`` alike."""
    ann = searcher.refresh()
    catalog, model = searcher.catalog, searcher.model
    uf = _UnionFind()
    for copies in exact_copies(catalog):
        ids = list(catalog.vector_ids_for_paths(model, copies).values())
        for other in ids[1:]:
            uf.union(ids[0], other)
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

"""Duplicate and similar-shot groups from stored embeddings, in three tiers a user can act on.

  exact      byte-identical files (content hash; only files whose sizes collide are read)
  duplicate  the same photo re-encoded, resized, cropped or lightly edited: safe to remove
  similar    another shot of the same moment (a burst, a retake): pick the best, keep or not

Candidates are each photo's few nearest neighbours (core.neighbours: exact cosines within cells of
alike photos, never all pairs). A
global embedding cannot tell "the same photo, cropped" from "another photo of the same place",
so candidates for the duplicate tier are checked by core.verify (local features fitted by one
geometric transform). That check is the scan's cost, so as few pairs as possible reach it: only
each photo's VERIFY_PER_PHOTO most alike candidates (a copy's closest neighbours are its original
and its other copies, so this keeps them), most alike first, and none already joined through
others; most copies are settled from their strongest keypoints alone (verify.decide). Features are kept in a disk cache, so a repeat scan only decodes new or changed photos.
Each photo lands in at most one group: duplicates are grouped first, and the similar tier is
built from the photos that are nobody's duplicate.

Pairs the user rejected (Catalog.reject_pair) are never put in one group, at any tier.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from imgsim_desktop.core.decode import DecodeError
from imgsim_desktop.core.neighbours import neighbour_pairs
from imgsim_desktop.core.progress import Progress
from imgsim_desktop.core.search import Searcher
from imgsim_desktop.core.verify import Verifier
from imgsim_desktop.storage.feature_cache import FeatureCache

TIERS = ("exact", "duplicate", "similar")

# One number for the user, 0 (strict: only the most certain) .. 1 (loose: find more, check more).
# It moves every threshold below together; bench/bench_duplicates_quality.py shows the curve.
DEFAULT_SENSITIVITY = 0.5
NEIGHBOURS = 8  # nearest neighbours looked at per photo: the candidate pairs
# A pair is verified only when it is among the three most alike candidates of one of its photos:
# in a burst every frame has many neighbours above the floor, and checking all of them would cost
# NEIGHBOURS checks per photo instead of at most this many.
VERIFY_PER_PHOTO = 3
VERIFY_THREADS = max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class Member:
    path: str
    score: float  # cosine similarity to the group's first member (1.0 for itself)


@dataclass(frozen=True)
class Group:
    tier: str  # one of TIERS
    members: list[Member]  # two or more


@dataclass(frozen=True)
class Thresholds:
    """What a sensitivity means, in the units of each stage."""

    similar_cosine: float  # embeddings at least this alike: similar shots
    duplicate_cosine: float  # embeddings at least this alike are checked for being the same photo
    max_moved_share: float  # same photo: at most this share of matched points displaced
    min_aligned: int  # ... and at least this many points exactly where the transform puts them
    min_correlation: float  # same photo, for photos too smooth for keypoints


def thresholds(sensitivity: float) -> Thresholds:
    s = min(1.0, max(0.0, float(sensitivity)))
    return Thresholds(
        similar_cosine=0.90 - 0.20 * s,
        duplicate_cosine=0.80 - 0.20 * s,
        max_moved_share=0.04 + 0.09 * s,
        min_aligned=round(30 - 20 * s),
        min_correlation=0.995 - 0.03 * s,
    )


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


class _Partition:
    """Union-find whose unions refuse to put a rejected ("not duplicates") pair in one set."""

    def __init__(self, apart: dict[int, set[int]]) -> None:
        self.parent: dict[int, int] = {}
        self.members: dict[int, list[int]] = {}
        self.apart = apart

    def find(self, x: int) -> int:
        if x not in self.parent:
            self.parent[x] = x
            self.members[x] = [x]
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def join(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        small, big = sorted((ra, rb), key=lambda r: len(self.members[r]))
        big_set = set(self.members[big])
        if any(self.apart.get(x, set()) & big_set for x in self.members[small]):
            return False
        self.parent[small] = big
        self.members[big] += self.members.pop(small)
        return True

    def sets(self) -> list[list[int]]:
        return [m for m in self.members.values() if len(m) > 1]


def find_groups(
    searcher: Searcher,
    sensitivity: float = DEFAULT_SENSITIVITY,
    tiers: Iterable[str] = TIERS,
    progress: Progress | None = None,
    on_error: Callable[[str, str], None] | None = None,
) -> list[Group]:
    """Groups of two or more photos, strongest tier first. ``progress`` can cancel (Cancelled is
    raised); ``on_error(path, reason)`` hears about files that could not be read for checking."""
    tiers = tuple(tiers)
    progress = progress or Progress()
    limits = thresholds(sensitivity)
    ann = searcher.refresh()
    catalog, model = searcher.catalog, searcher.model

    path_of: dict[int, str] = {}
    apart = _rejected_by_vector(catalog, model, path_of)
    dupes = _Partition(apart)
    for copies in exact_copies(catalog):
        ids = catalog.vector_ids_for_paths(model, copies)
        path_of.update((v, p) for p, v in ids.items())
        ids = list(ids.values())
        for other in ids[1:]:
            dupes.join(ids[0], other)
    exact_sets = {frozenset(m) for m in dupes.sets()}

    if tiers != ("exact",):
        floor = min(limits.similar_cosine, limits.duplicate_cosine)
        a, b, cos = neighbour_pairs(ann, NEIGHBOURS, floor, progress)
        order = np.argsort(-cos, kind="stable")
        a, b, cos = a[order], b[order], cos[order]
        path_of.update(catalog.paths_for_vectors(set(a.tolist()) | set(b.tolist())))
        todo = pairs_to_verify(a, b, cos, limits.duplicate_cosine)
        todo = [(x, y) for x, y in todo if x in path_of and y in path_of]
        disk = FeatureCache.beside(catalog.path)
        disk.prune()  # bounded: features of photos long gone or long unscanned make room
        verifier = Verifier(disk=disk)
        bad = _verify_into(dupes, todo, verifier, limits, path_of, progress, on_error)
        similar = _Partition(apart)
        grouped = {v for m in dupes.sets() for v in m}
        for x, y in zip(a[cos >= limits.similar_cosine].tolist(), b[cos >= limits.similar_cosine].tolist()):
            if x not in grouped and y not in grouped and path_of.get(x) not in bad and path_of.get(y) not in bad:
                similar.join(x, y)
    else:
        similar = _Partition(apart)

    tiered = [("exact" if frozenset(m) in exact_sets else "duplicate", m) for m in dupes.sets()]
    tiered += [("similar", m) for m in similar.sets()]
    return _as_groups([(t, m) for t, m in tiered if t in tiers], catalog, model, path_of)


def _rejected_by_vector(catalog, model: str, path_of: dict[int, str]) -> dict[int, set[int]]:
    rejected = catalog.rejected_pairs()
    ids = catalog.vector_ids_for_paths(model, sorted({p for pair in rejected for p in pair}))
    path_of.update((v, p) for p, v in ids.items())
    apart: dict[int, set[int]] = {}
    for pair in rejected:
        x, y = (ids.get(p) for p in pair)
        if x is not None and y is not None:
            apart.setdefault(x, set()).add(y)
            apart.setdefault(y, set()).add(x)
    return apart


def pairs_to_verify(a: np.ndarray, b: np.ndarray, cos: np.ndarray, floor: float, per_photo: int = VERIFY_PER_PHOTO) -> list[tuple[int, int]]:
    """Candidate pairs (sorted most alike first) worth the geometric check: cosine >= floor and
    among the ``per_photo`` most alike candidates of at least one of the two photos."""
    keep = np.flatnonzero(cos >= floor)
    keep = keep[np.argsort(-cos[keep], kind="stable")]
    ends = np.concatenate([a[keep], b[keep]])
    pair = np.concatenate([keep, keep])
    # Rank of each pair among its photo's pairs: grouped by photo, most alike first in a group.
    by_photo = np.lexsort((-cos[pair], ends))
    ends, pair = ends[by_photo], pair[by_photo]
    starts = np.flatnonzero(np.r_[True, ends[1:] != ends[:-1]])
    rank = np.arange(len(ends)) - np.repeat(starts, np.diff(np.r_[starts, len(ends)]))
    chosen = set(pair[rank < per_photo].tolist())
    return [(int(a[i]), int(b[i])) for i in keep.tolist() if i in chosen]


def _verify_into(dupes: _Partition, todo, verifier: Verifier, limits: Thresholds, path_of, progress: Progress, on_error) -> set[str]:
    """Check candidate pairs in order (most alike first) and join the ones that are the same photo.
    Pairs already joined through others are skipped. Returns the files that could not be read."""
    bad: dict[str, str] = {}

    def check(pair: tuple[int, int]) -> bool:
        pa, pb = path_of[pair[0]], path_of[pair[1]]
        try:
            same, _ = verifier.decide(pa, pb, limits.min_aligned, limits.max_moved_share, limits.min_correlation)
        except DecodeError:
            for path in (pa, pb):  # which of the two? (the verifier remembers, so this decodes nothing)
                try:
                    verifier.features(path)
                except DecodeError as err:
                    bad.setdefault(path, str(err))
            return False
        return same

    window = 4 * VERIFY_THREADS
    with ThreadPoolExecutor(VERIFY_THREADS, thread_name_prefix="verify") as pool:
        for start in range(0, len(todo), window):
            progress.check()
            progress.report(start, len(todo), "checking possible duplicates")
            batch = [p for p in todo[start : start + window] if dupes.find(p[0]) != dupes.find(p[1])]
            for pair, same in zip(batch, pool.map(check, batch)):
                if same:
                    dupes.join(*pair)
    progress.report(len(todo), len(todo), "checking possible duplicates", force=True)
    for path, reason in sorted(bad.items()):
        if on_error is not None:
            on_error(path, reason)
    return set(bad)


def _as_groups(tiered: list[tuple[str, list[int]]], catalog, model: str, path_of: dict[int, str]) -> list[Group]:
    wanted = [v for _, ids in tiered for v in ids]
    vectors: dict[int, np.ndarray] = {}
    for ids, vecs in catalog.iter_vectors(model, wanted):
        vectors.update(zip(ids.tolist(), vecs))
    groups = []
    for tier, ids in tiered:
        ids = sorted((v for v in ids if v in path_of and v in vectors), key=lambda v: path_of[v])
        if len(ids) < 2:
            continue
        anchor = vectors[ids[0]]
        members = [Member(path_of[v], round(min(1.0, float(np.dot(anchor, vectors[v]))), 4)) for v in ids]
        groups.append(Group(tier, members))
    groups.sort(key=lambda g: (TIERS.index(g.tier), -len(g.members), g.members[0].path))
    return groups

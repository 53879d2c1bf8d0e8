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
Checking only the top few candidates can leave one photo's many copies in two groups (two keepers,
two cleanups), so a merge pass then checks the best candidate pairs *between* groups.
Each photo lands in at most one group: duplicates are grouped first, and the similar tier is
built from the photos that are nobody's duplicate. Byte-identical files verified with a re-encoded
copy share its group (tier "duplicate", the identical ones flagged ``exact``): one photo, one keeper.

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
from imgsim_desktop.core.similar_shots import group_similar, moments
from imgsim_desktop.core.verify import Limits, Verifier
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
# Merge pass: candidate pairs checked between two groups (most alike first) before giving up on
# joining them, and rounds of it (a merge can bring new pairs between groups).
MERGE_TRIES = 2
MERGE_ROUNDS = 3


@dataclass(frozen=True)
class Placement:
    """Where a member's picture lies in the picture of its group's anchor (``members[0]``), as the
    duplicate check measured it: what "the right one is the left one cropped to 62 %" is read from.

    Coordinates are each photo's *working frame* (core.verify.WORK_SIDE on the longer side, the
    frame its keypoints live in), so placements of two members compose: member -> anchor -> keeper.
    """

    to_anchor: tuple[float, float, float, float, float, float]  # 2x3 affine, row-major: member px -> anchor px
    frame: tuple[int, int]  # (width, height) of this member's working frame
    tone: tuple[float, float] = (1.0, 0.0)  # grey levels: anchor ~= gain * member + offset (0..255)


@dataclass(frozen=True)
class Member:
    path: str
    score: float  # cosine similarity to the group's first member (1.0 for itself)
    exact: bool = False  # byte-identical to another member of the group
    placement: Placement | None = None  # duplicate tier: how this photo maps onto the anchor's


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
    max_disagreement: float  # same photo: at most this share of the aligned overlap differs
    min_contained: float  # same photo: one frame lies (this nearly) inside the other
    max_scattered: float  # same photo: differing tiles outside one patch (an overlay) at most this share

    @property
    def pair(self) -> Limits:
        return Limits(self.min_aligned, self.max_moved_share, self.min_correlation, self.max_disagreement, self.max_scattered, self.min_contained)


def thresholds(sensitivity: float) -> Thresholds:
    s = min(1.0, max(0.0, float(sensitivity)))
    return Thresholds(
        similar_cosine=0.90 - 0.20 * s,
        duplicate_cosine=0.80 - 0.20 * s,
        max_moved_share=0.04 + 0.09 * s,
        min_aligned=round(30 - 20 * s),
        min_correlation=0.995 - 0.03 * s,
        # Copies (captions and stickers included) disagree on at most 18 % of the overlap's tiles
        # and lie inside each other to 0.99; other shots of a place mostly disagree on 30-90 %, and
        # where they agree (gravel under a moving camera) neither frame contains the other.
        max_disagreement=0.20 + 0.10 * s,
        min_contained=0.985 - 0.02 * s,
        # Copies differ outside their one overlay patch on at most 7 % of tiles; other shots whose
        # total stays low (a wider shot of the same facade) differ here and there: 8-22 %.
        max_scattered=0.055 + 0.03 * s,
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
    links = _Links()
    for copies in exact_copies(catalog):
        ids = catalog.vector_ids_for_paths(model, copies)
        path_of.update((v, p) for p, v in ids.items())
        ids = list(ids.values())
        for other in ids[1:]:
            if dupes.join(ids[0], other):
                links.add(ids[0], other, IDENTITY, (1.0, 0.0))
    exact_sets = {frozenset(m) for m in dupes.sets()}
    identical = {v for m in exact_sets for v in m}
    verifier = None

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
        bad: dict[str, str] = {}
        _verify_into(dupes, links, todo, verifier, limits, path_of, progress, bad)
        sizes: dict[int, int] = {}

        def pixels(v: int) -> int:
            if v not in sizes:
                row = catalog.photo(path_of[v])
                sizes[v] = (row.width or 0) * (row.height or 0) if row else 0
            return sizes[v]

        for _ in range(MERGE_ROUNDS):
            between = _pairs_between_groups(dupes, a, b, cos, limits.duplicate_cosine, path_of, links, pixels)
            if not between or not _verify_into(dupes, links, between, verifier, limits, path_of, progress, bad):
                break
        dupes = _each_a_copy_of_the_largest(dupes, links, verifier, limits, path_of, pixels, apart, bad)
        for path, reason in sorted(bad.items()):
            if on_error is not None:
                on_error(path, reason)
        # One moment, not one place: complete linkage, and dates taken / cameras must agree.
        near = cos >= limits.similar_cosine
        out = {v for m in dupes.sets() for v in m} | {v for v, p in path_of.items() if p in bad}
        when, camera = moments(catalog.taken_for_vectors(set(a[near].tolist()) | set(b[near].tolist())))
        similar = group_similar(a[near], b[near], cos[near], limits.similar_cosine, when, camera, apart, out)
    else:
        similar = []

    tiered = [("exact" if frozenset(m) in exact_sets else "duplicate", m) for m in dupes.sets()]
    tiered += [("similar", m) for m in similar]
    return _as_groups([(t, m) for t, m in tiered if t in tiers], catalog, model, path_of, links, identical, verifier)


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


IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


class _Links:
    """The verified pairs of the duplicate tier with how their pictures map onto each other: what a
    group's placements (member -> anchor) are composed from."""

    def __init__(self) -> None:
        self.edges: dict[int, list[tuple[int, np.ndarray, tuple[float, float]]]] = {}
        self.checked: set[tuple[int, int]] = set()

    def add(self, x: int, y: int, model: np.ndarray, tone: tuple[float, float]) -> None:
        """``model`` maps x's working frame to y's; ``tone``: x's grey ~= gain * y's + offset."""
        m = np.vstack([model, [0.0, 0.0, 1.0]])
        gain, offset = tone
        gain = gain if abs(gain) > 1e-6 else 1.0
        self.edges.setdefault(x, []).append((y, m, (gain, offset)))
        self.edges.setdefault(y, []).append((x, np.linalg.inv(m), (1.0 / gain, -offset / gain)))

    def placements(self, anchor: int, members: set[int]) -> dict[int, tuple[np.ndarray, tuple[float, float]]]:
        """member -> (3x3 map of its frame into the anchor's, tone: anchor ~= gain * member + offset),
        walking the verified pairs from the anchor."""
        found = {anchor: (np.eye(3), (1.0, 0.0))}
        todo = [anchor]
        while todo:
            u = todo.pop()
            to_anchor, (gu, ou) = found[u]
            for v, u_to_v, (g, o) in self.edges.get(u, []):
                if v in found or v not in members:
                    continue
                # v -> u is the inverse of u -> v; u's grey ~= g * v's + o.
                found[v] = (to_anchor @ np.linalg.inv(u_to_v), (gu * g, gu * o + ou))
                todo.append(v)
        return found


def _pairs_between_groups(dupes: _Partition, a, b, cos, floor: float, path_of, links: _Links, pixels) -> list[tuple[int, int]]:
    """Candidate pairs joining two different sets, at least one of them a group, not checked yet:
    the largest photos of the two sets (two crops of one photo at other offsets are not the same
    photo as each other, but both are the original's), then the MERGE_TRIES most alike pairs."""
    tries: dict[tuple[int, int], int] = {}
    out = []

    def largest(root: int) -> int:
        return max(dupes.members[root], key=lambda v: (pixels(v), -v))

    for i in np.flatnonzero(cos >= floor).tolist():  # sorted most alike first
        x, y = int(a[i]), int(b[i])
        if x not in path_of or y not in path_of or (min(x, y), max(x, y)) in links.checked:
            continue
        rx, ry = dupes.find(x), dupes.find(y)
        if rx == ry or (len(dupes.members[rx]) < 2 and len(dupes.members[ry]) < 2):
            continue
        key = (min(rx, ry), max(rx, ry))
        if key not in tries:
            x0, y0 = largest(rx), largest(ry)
            if (min(x0, y0), max(x0, y0)) not in links.checked:
                out.append((x0, y0))
        if tries.get(key, 0) < MERGE_TRIES:
            tries[key] = tries.get(key, 0) + 1
            out.append((x, y))
    return out


def _verify_into(dupes: _Partition, links: _Links, todo, verifier: Verifier, limits: Thresholds, path_of, progress: Progress, bad: dict[str, str] | None = None) -> int:
    """Check candidate pairs in order (most alike first) and join the ones that are the same photo.
    Pairs already joined through others are skipped. Files that could not be read go into ``bad``
    (path -> reason); returns the number of joins."""
    bad = {} if bad is None else bad
    pair_limits = limits.pair

    def check(pair: tuple[int, int]):
        pa, pb = path_of[pair[0]], path_of[pair[1]]
        try:
            return verifier.decide(pa, pb, pair_limits)
        except DecodeError:
            for path in (pa, pb):  # which of the two? (the verifier remembers, so this decodes nothing)
                try:
                    verifier.features(path)
                except DecodeError as err:
                    bad.setdefault(path, str(err))
            return None

    joins = 0
    window = 4 * VERIFY_THREADS
    with ThreadPoolExecutor(VERIFY_THREADS, thread_name_prefix="verify") as pool:
        for start in range(0, len(todo), window):
            progress.check()
            progress.report(start, len(todo), "checking possible duplicates")
            batch = [p for p in todo[start : start + window] if dupes.find(p[0]) != dupes.find(p[1])]
            for pair, verdict in zip(batch, pool.map(check, batch)):
                links.checked.add((min(pair), max(pair)))
                if verdict is not None and verdict.same and dupes.join(*pair):
                    o = verdict.evidence.overlap
                    links.add(pair[0], pair[1], verdict.evidence.model, (o.gain, o.offset) if o else (1.0, 0.0))
                    joins += 1
    progress.report(len(todo), len(todo), "checking possible duplicates", force=True)
    return joins


def _each_a_copy_of_the_largest(dupes: _Partition, links: _Links, verifier: Verifier, limits: Thresholds, path_of, pixels, apart, bad) -> _Partition:
    """Regroup so every member is itself verified against its group's largest photo (the original
    a keeper rule will most likely keep). Verified pairs chain: A~B and B~C put A and C together
    even where C is not a copy of A (two other shots of a static scene, each matching a crop of the
    other), and the user would then remove C in favour of A. Members that fail go on as a group of
    their own, checked the same way."""
    pair_limits = limits.pair
    out = _Partition(apart)

    def check(pair: tuple[int, int]):
        x, y = pair
        if any(v == y for v, _, _ in links.edges.get(x, [])):
            return True  # verified directly already
        try:
            verdict = verifier.decide(path_of[x], path_of[y], pair_limits)
        except DecodeError:
            return False
        if verdict.same:
            o = verdict.evidence.overlap
            links.add(x, y, verdict.evidence.model, (o.gain, o.offset) if o else (1.0, 0.0))
        return verdict.same

    todo = [m for m in dupes.sets()]
    with ThreadPoolExecutor(VERIFY_THREADS, thread_name_prefix="verify") as pool:
        while todo:
            group = todo.pop()
            largest = max(group, key=lambda v: (pixels(v), -v))
            others = [v for v in group if v != largest]
            verdicts = list(pool.map(check, [(largest, v) for v in others]))
            rest = [v for v, same in zip(others, verdicts) if not same]
            for v, same in zip(others, verdicts):
                if same:
                    out.join(largest, v)
            if len(rest) >= 2:
                todo.append(rest)
    return out


def _placement(verifier: Verifier | None, path: str, placed) -> Placement | None:
    if verifier is None or placed is None:
        return None
    try:
        frame = verifier.features(path).frame
    except DecodeError:
        return None
    to_anchor, tone = placed
    return Placement(tuple(round(float(x), 6) for x in to_anchor[:2].ravel()), frame, (round(tone[0], 4), round(tone[1], 3)))


def _as_groups(tiered: list[tuple[str, list[int]]], catalog, model: str, path_of: dict[int, str], links: _Links, identical: set[int], verifier: Verifier | None) -> list[Group]:
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
        placed = links.placements(ids[0], set(ids)) if tier == "duplicate" else {}
        members = [
            Member(
                path_of[v],
                round(min(1.0, float(np.dot(anchor, vectors[v]))), 4),
                exact=tier != "similar" and v in identical,
                placement=_placement(verifier, path_of[v], placed.get(v)),
            )
            for v in ids
        ]
        groups.append(Group(tier, members))
    groups.sort(key=lambda g: (TIERS.index(g.tier), -len(g.members), g.members[0].path))
    return groups

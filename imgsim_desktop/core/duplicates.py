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
How the verified pairs become groups (merging what belongs together, splitting what only chains)
is core.duplicate_links.
Each photo lands in at most one group: duplicates are grouped first, and the similar tier is
built from the photos that are nobody's duplicate. Byte-identical files verified with a re-encoded
copy share its group (tier "duplicate", the identical ones flagged ``exact``): one photo, one keeper.

Pairs the user rejected (Catalog.reject_pair) are never put in one group, at any tier.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from imgsim_desktop.core.decode import DecodeError
from imgsim_desktop.core.duplicate_links import (
    IDENTITY,
    Links,
    PairChecker,
    Partition,
    pairs_between_groups,
    regroup_by_largest,
    verify_pairs,
)
from imgsim_desktop.core.glance_pairs import glance_pairs
from imgsim_desktop.core.neighbours import neighbour_pairs
from imgsim_desktop.core.progress import Progress
from imgsim_desktop.core.search import Searcher
from imgsim_desktop.core.similar_shots import group_similar, moments
from imgsim_desktop.core.verifier import Verifier
from imgsim_desktop.core.verify import Limits
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
MERGE_ROUNDS = 3  # rounds of checks between groups (a merge can bring new pairs between groups)


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
    picture: tuple[float, float, float, float] | None = None  # (x0, y0, x1, y1) inside an added border; None: the whole frame


@dataclass(frozen=True)
class Member:
    path: str
    score: float  # cosine similarity to the group's first member (1.0 for itself)
    exact: bool = False  # byte-identical to another member of the group
    placement: Placement | None = None  # duplicate tier: how this photo maps onto the anchor's
    companions: tuple = ()  # core.companions.Companion: the files that go with it (companions.attach, after the scan)


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
    # Above the default, a looser setting looks harder (more candidates) but does not relax what
    # tells another shot from a copy: on the benchmark's report half that relaxing proposed 5-6
    # other shots for removal (a flat object, an aerial scene, a stereo pair) and found few more copies.
    v = min(s, DEFAULT_SENSITIVITY)
    return Thresholds(
        similar_cosine=0.90 - 0.20 * s,
        # The candidate floor falls faster than the rest: crops combined with other edits sit at
        # cosine 0.6-0.75 from their original. Chosen on the tune half (pair recall 0.949 -> 0.964,
        # 0 wrong); 0.60 at the default found a little more but took the 100k scan past its budget.
        duplicate_cosine=0.80 - 0.32 * s,
        max_moved_share=0.04 + 0.09 * v,
        min_aligned=round(30 - 20 * s),
        min_correlation=0.995 - 0.03 * s,
        # Copies (captions and stickers included) disagree on at most 18 % of the overlap's tiles
        # and lie inside each other to 0.99; other shots of a place mostly disagree on 30-90 %, and
        # where they agree (gravel under a moving camera) neither frame contains the other.
        max_disagreement=0.20 + 0.10 * v,
        min_contained=0.99 - 0.01 * v,
        # Copies differ outside their one overlay patch on at most 7 % of tiles; other shots whose
        # total stays low (a wider shot of the same facade) differ here and there: 8-22 %.
        max_scattered=0.055 + 0.03 * v,
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


def collapse_exact(paths: list[str]) -> dict[str, list[str]]:
    """``paths`` in order, each byte-identical file folded into the first of its kind: returns
    {shown path: [its exact copies that follow]} in the given order. Only files sharing a size are
    read; a file that cannot be read stays on its own."""
    sizes: dict[str, int] = {}
    for path in paths:
        with contextlib.suppress(OSError):
            sizes[path] = os.path.getsize(path)
    shared = {n for n, c in collections.Counter(sizes.values()).items() if c > 1}
    first_of: dict[tuple[int, bytes], str] = {}
    out: dict[str, list[str]] = {}
    for path in paths:
        if path in out:
            continue  # listed twice: shown once
        size = sizes.get(path)
        if size in shared:
            try:
                key = (size, _digest(path))
            except OSError:
                key = None
            if key is not None and key in first_of:
                out[first_of[key]].append(path)
                continue
            if key is not None:
                first_of[key] = path
        out[path] = []
    return out


def _digest(path: str) -> bytes:
    h = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.digest()


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
    dupes = Partition(apart)
    links = Links()
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
        disk = FeatureCache.beside(catalog.path)
        disk.prune()  # bounded: features of photos long gone or long unscanned make room
        verifier = Verifier(disk=disk)
        # Turned and mirrored copies, which the embedding does not bring close: after the
        # embedding's own pairs, so a copy found both ways is checked once.
        ga, gb, _ = glance_pairs(catalog, model, verifier, progress)
        path_of.update(catalog.paths_for_vectors((set(ga.tolist()) | set(gb.tolist())) - path_of.keys()))
        seen = set(todo)
        todo += [p for p in zip(ga.tolist(), gb.tolist()) if p not in seen]
        todo = [(x, y) for x, y in todo if x in path_of and y in path_of]
        bad: dict[str, str] = {}
        taken = catalog.taken_for_vectors(path_of.keys())  # frames of one camera sequence need no check
        check = PairChecker(verifier, limits.pair, path_of, links, bad, taken)
        verify_pairs(dupes, todo, check, progress, VERIFY_THREADS)
        pixels = _PictureSizes(catalog, path_of, verifier)
        for _ in range(MERGE_ROUNDS):
            between = [(x, y) for x, y in pairs_between_groups(dupes, a, b, cos, limits.duplicate_cosine, links, pixels) if x in path_of and y in path_of]
            if not between or not verify_pairs(dupes, between, check, progress, VERIFY_THREADS):
                break
        dupes = regroup_by_largest(dupes, check, pixels, VERIFY_THREADS)
        for path, reason in sorted(bad.items()):
            if on_error is not None:
                on_error(path, reason)
        # One moment, not one place: complete linkage, and dates taken / cameras must agree.
        near = cos >= limits.similar_cosine
        out = {v for m in dupes.sets() for v in m} | {v for v, p in path_of.items() if p in bad}
        when, camera = moments({v: taken[v] for v in set(a[near].tolist()) | set(b[near].tolist()) if v in taken})
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


class _PictureSizes:
    """vector id -> pixels of the picture (width x height from the catalog, less any border added
    around it, padding.content_box), read once per photo that asks; ``frame(v)`` is the catalog's
    size alone. A letterboxed copy has more pixels than its original but no more picture; taken as
    the group's "largest" it is a poor reference for the others (its picture is the smallest in its frame)."""

    def __init__(self, catalog, path_of: dict[int, str], verifier: Verifier) -> None:
        self.catalog, self.path_of, self.verifier = catalog, path_of, verifier
        self._frames: dict[int, int] = {}
        self._pictures: dict[int, int] = {}

    def frame(self, v: int) -> int:
        if v not in self._frames:
            row = self.catalog.photo(self.path_of[v])
            self._frames[v] = (row.width or 0) * (row.height or 0) if row else 0
        return self._frames[v]

    def __call__(self, v: int) -> int:
        if v not in self._pictures:
            self._pictures[v] = round(self.frame(v) * _picture_share(self.verifier, self.path_of[v]))
        return self._pictures[v]


def _picture_share(verifier: Verifier, path: str) -> float:
    try:
        return verifier.framing(path).share
    except DecodeError:
        return 1.0


def _placement(verifier: Verifier | None, path: str, placed) -> Placement | None:
    if verifier is None or placed is None:
        return None
    try:
        found = verifier.framing(path)
    except DecodeError:
        return None
    to_anchor, tone = placed
    picture = found.picture if found.picture is None else tuple(round(v, 2) for v in found.picture)
    return Placement(tuple(round(float(x), 6) for x in to_anchor[:2].ravel()), found.frame, (round(tone[0], 4), round(tone[1], 3)), picture)


def _as_groups(tiered: list[tuple[str, list[int]]], catalog, model: str, path_of: dict[int, str], links: Links, identical: set[int], verifier: Verifier | None) -> list[Group]:
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

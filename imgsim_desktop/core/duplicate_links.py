"""How the duplicate tier turns verified pairs into groups a user can clean up with one keeper each.

Verification (core.verify) says whether two photos are one picture. Three things here make groups
of those verdicts:
  - candidate pairs are checked most alike first, and a pair already joined through others is
    skipped (verify_pairs);
  - checking only each photo's top few candidates can leave one photo's many copies in two groups
    (two keepers, two cleanups), so the best pairs *between* groups are checked too
    (pairs_between_groups);
  - verified pairs chain: A~B and B~C put A and C together even where C is not a copy of A (two
    other shots of a static scene, each matching a crop of the other), and the user would then
    remove C in favour of A. So in the end every member is itself verified against its group's
    largest photo, the original a keeper rule will most likely keep (regroup_by_largest).
Every verified pair keeps how its two pictures map onto each other (Links), which is what a
member's placement in its group, and so the "why" shown to the user, is composed from.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from imgsim_desktop.core.decode import DecodeError
from imgsim_desktop.core.progress import Progress
from imgsim_desktop.core.similar_shots import frames_apart
from imgsim_desktop.core.verifier import Verifier
from imgsim_desktop.core.verify import Limits, Verdict

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
# Merge pass: candidate pairs checked between two groups (most alike first), besides their largest
# photos, before giving up on joining them.
MERGE_TRIES = 2
# A group's second-largest photo may stand in as its reference when its picture is at least this
# share of the largest's (equal copies, one of them captioned): a crop, smaller, never does.
RUNNER_UP_SHARE = 0.95


class Partition:
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



class Links:
    """The verified pairs with how their pictures map onto each other, and every pair checked."""

    def __init__(self) -> None:
        self.edges: dict[int, list[tuple[int, np.ndarray, tuple[float, float]]]] = {}
        self.checked: set[tuple[int, int]] = set()
        # Checked pairs that are plainly two moments: one transform fits many points, and too many
        # more sit a little off it (things moved). What tells a torn member (regroup_by_largest).
        self.moments_apart: set[tuple[int, int]] = set()

    def add(self, x: int, y: int, model: np.ndarray, tone: tuple[float, float]) -> None:
        """``model`` maps x's working frame to y's; ``tone``: x's grey ~= gain * y's + offset."""
        m = np.vstack([model, [0.0, 0.0, 1.0]])
        gain, offset = tone
        gain = gain if abs(gain) > 1e-6 else 1.0
        self.edges.setdefault(x, []).append((y, m, (gain, offset)))
        self.edges.setdefault(y, []).append((x, np.linalg.inv(m), (1.0 / gain, -offset / gain)))

    def linked(self, x: int, y: int) -> bool:
        return any(v == y for v, _, _ in self.edges.get(x, ()))

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


# What a PairChecker answers for two frames of one camera sequence, told apart by their capture times.
FRAMES_APART = "frames apart"


class PairChecker:
    """Verifies pairs of vector ids (thread-safe), records the ones that are one picture in
    ``links`` and collects the files that could not be read in ``bad`` (path -> reason)."""

    def __init__(
        self, verifier: Verifier, limits: Limits, path_of: dict[int, str], links: Links, bad: dict[str, str],
        taken: dict[int, tuple[str | None, str | None]] | None = None,
    ) -> None:
        self.verifier, self.limits, self.path_of, self.links, self.bad = verifier, limits, path_of, links, bad
        self.taken = taken or {}  # vector id -> (taken_at, camera): frames of one sequence are not checked
        self.frames_skipped = 0

    def __call__(self, pair: tuple[int, int]) -> Verdict | str | None:
        """The verdict; FRAMES_APART for two frames of one sequence (no check needed); None when a
        file could not be read."""
        x, y = self.taken.get(pair[0]), self.taken.get(pair[1])
        if x and y and frames_apart(*x, *y):
            return FRAMES_APART
        pa, pb = self.path_of[pair[0]], self.path_of[pair[1]]
        try:
            return self.verifier.decide(pa, pb, self.limits)
        except DecodeError:
            for path in (pa, pb):  # which of the two? (the verifier remembers, so this decodes nothing)
                try:
                    self.verifier.features(path)
                except DecodeError as err:
                    self.bad.setdefault(path, str(err))
            return None

    def record(self, pair: tuple[int, int], verdict: Verdict | None) -> bool:
        """Remember the check; True (and a link) when it found one picture."""
        key = (min(pair), max(pair))
        self.links.checked.add(key)
        if verdict is None:
            return False
        if verdict is FRAMES_APART:
            self.frames_skipped += 1
            self.links.moments_apart.add(key)
            return False
        if not verdict.same:
            if verdict.evidence.shows_motion(self.limits):
                self.links.moments_apart.add(key)
            return False
        o = verdict.evidence.overlap
        self.links.add(pair[0], pair[1], verdict.evidence.model, (o.gain, o.offset) if o else (1.0, 0.0))
        return True


def verify_pairs(dupes: Partition, todo: list[tuple[int, int]], check: PairChecker, progress: Progress, threads: int) -> int:
    """Check candidate pairs in order (most alike first) and join the ones that are the same photo.
    Pairs already joined through others are skipped. Returns the number of joins."""
    joins = 0
    window = 4 * threads
    with ThreadPoolExecutor(threads, thread_name_prefix="verify") as pool:
        for start in range(0, len(todo), window):
            progress.check()
            progress.report(start, len(todo), "checking possible duplicates")
            batch = [p for p in todo[start : start + window] if dupes.find(p[0]) != dupes.find(p[1])]
            for pair, verdict in zip(batch, pool.map(check, batch)):
                if check.record(pair, verdict) and dupes.find(pair[0]) != dupes.find(pair[1]) and dupes.join(*pair):
                    joins += 1
    progress.report(len(todo), len(todo), "checking possible duplicates", force=True)
    return joins


def pairs_between_groups(dupes: Partition, a, b, cos, floor: float, links: Links, pixels: Callable[[int], int]) -> list[tuple[int, int]]:
    """Candidate pairs (sorted most alike first) joining two different sets, at least one of them a
    group, not checked yet: the largest photos of the two sets (two crops of one photo at other
    offsets are not one picture, but each is the original's), then the MERGE_TRIES most alike."""
    tries: dict[tuple[int, int], int] = {}
    out = []

    def largest(root: int) -> int:
        return largest_first(dupes.members[root], pixels, 1)[0]

    for i in np.flatnonzero(cos >= floor).tolist():
        x, y = int(a[i]), int(b[i])
        rx, ry = dupes.find(x), dupes.find(y)
        if rx == ry or (len(dupes.members[rx]) < 2 and len(dupes.members[ry]) < 2):
            continue
        key = (min(rx, ry), max(rx, ry))
        if key not in tries:  # even when this pair was checked: two crops fail, their originals not
            tries[key] = 0
            x0, y0 = largest(rx), largest(ry)
            if (min(x0, y0), max(x0, y0)) not in links.checked:
                out.append((x0, y0))
        if (min(x, y), max(x, y)) in links.checked:
            continue
        if tries[key] < MERGE_TRIES:
            tries[key] += 1
            out.append((x, y))
    return out


def regroup_by_largest(dupes: Partition, check: PairChecker, pixels: Callable[[int], int], threads: int) -> Partition:
    """The same sets, split so every member is verified directly against its set's largest photo
    (or the runner-up, when that holds more of the set together); members that are not go on as
    a set of their own, checked the same way."""
    out = Partition(dupes.apart)

    def direct(pair: tuple[int, int]) -> bool:
        return check.links.linked(*pair) or check.record(pair, check(pair))

    todo = dupes.sets()
    with ThreadPoolExecutor(threads, thread_name_prefix="verify") as pool:
        while todo:
            group = todo.pop()
            by_size = largest_first(group, pixels, 2)
            largest = by_size[0]
            others = [v for v in group if v != largest]
            same = list(pool.map(direct, [(largest, v) for v in others]))
            runner_up = by_size[1] if len(group) > 2 else None
            if not all(same) and runner_up is not None and pixels(runner_up) >= RUNNER_UP_SHARE * pixels(largest):
                # The largest may be a poor reference (an edited copy: captioned and letterboxed,
                # a second caption on another copy reads as scattered change). A runner-up about
                # as large is asked too (never a crop: a crop can match two other shots), and
                # whichever holds more of the group in one piece is the reference.
                others_2 = [v for v in group if v != runner_up]
                same_2 = list(pool.map(direct, [(runner_up, v) for v in others_2]))
                if sum(same_2) > sum(same):
                    largest, others, same = runner_up, others_2, same_2
            torn = _torn(largest, others, same, check.links)
            # A rejected ("not duplicates") pair refuses the join: that member goes on with the rest.
            rest = [v for v, yes in zip(others, same) if v in torn or not (yes and out.join(largest, v))]
            if len(rest) >= 2:
                todo.append(rest)
    return out


def largest_first(group: list[int], pixels: Callable[[int], int], count: int) -> list[int]:
    """The ``count`` members with the most picture pixels, largest first (ties: the lower id).
    ``pixels`` may carry ``frame(v)``, a cheap upper bound (the frame's pixels, border included):
    the picture, which costs a decode, is only measured where the bound could still win."""
    bound = getattr(pixels, "frame", pixels)
    best: list[tuple[int, int, int]] = []
    for v in sorted(group, key=lambda v: (bound(v), -v), reverse=True):
        if len(best) >= count and (bound(v), -v) < best[count - 1][:2]:
            break
        best.append((pixels(v), -v, v))
        best.sort(reverse=True)
    return [v for *_, v in best[:count]]


def _torn(largest: int, others: list[int], same: list[bool], links: Links) -> set[int]:
    """Members that are one picture with the largest photo *and* with a member that is plainly
    another moment of it. A crop of a part where two shots agree (aerial photos seconds apart, a
    static scene) matches both, and nothing says which it was cut from; kept with the largest it
    would be removed in favour of a photo it may not come from. So it goes on with the rest,
    where the other shot may claim it, or no one does."""
    apart = [v for v, yes in zip(others, same) if not yes and (min(largest, v), max(largest, v)) in links.moments_apart]
    return {v for v, yes in zip(others, same) if yes and any(links.linked(v, r) for r in apart)}

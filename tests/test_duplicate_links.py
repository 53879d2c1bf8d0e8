"""Groups from verified pairs: what chains through another shot is split off, what belongs
together is merged, and placements compose along the verified pairs."""

from __future__ import annotations

import numpy as np

from imgsim_desktop.core.duplicate_links import (
    IDENTITY,
    Links,
    PairChecker,
    Partition,
    pairs_between_groups,
    regroup_by_largest,
    verify_pairs,
)
from imgsim_desktop.core.progress import Progress
from imgsim_desktop.core.verify import Evidence, Limits, Verdict

LIMITS = Limits(20, 0.085, 0.98, 0.25, 0.07, 0.975)


class PairsThatAreOnePicture:
    """A stand-in for the verifier: a fixed set of pairs are one picture, each mapped by a shift."""

    def __init__(self, same: set[frozenset[str]], moved: set[frozenset[str]] = frozenset()) -> None:
        self.same, self.moved, self.asked = same, moved, []

    def decide(self, pa: str, pb: str, limits) -> Verdict:
        self.asked.append((pa, pb))
        model = IDENTITY.copy()
        model[0, 2] = 10.0  # b's pixels lie 10 px right of a's
        pair = frozenset((pa, pb))
        moved = 40 if pair in self.moved else 1  # another moment: many points a little off
        return Verdict(pair in self.same, False, Evidence(100, 90, moved, 1.0, model=model))


def checker(same_pairs, bad=None, moved_pairs=()):
    path_of = {i: f"p{i}" for i in range(10)}
    links = Links()
    as_paths = lambda pairs: {frozenset((f"p{x}", f"p{y}")) for x, y in pairs}  # noqa: E731
    fake = PairsThatAreOnePicture(as_paths(same_pairs), as_paths(moved_pairs))
    return PairChecker(fake, LIMITS, path_of, links, {} if bad is None else bad), fake


def test_a_member_that_only_chains_through_another_is_split_off():
    # 0 is the original (largest); 1 is its copy; 2 verified only with 1 (another shot matching a crop).
    check, _ = checker([(0, 1), (1, 2)])
    dupes = Partition({})
    assert verify_pairs(dupes, [(0, 1), (1, 2)], check, Progress(), threads=2) == 2
    assert sorted(map(sorted, dupes.sets())) == [[0, 1, 2]]
    pixels = {0: 100, 1: 50, 2: 50}.get
    regrouped = regroup_by_largest(dupes, check, pixels, threads=2)
    assert sorted(map(sorted, regrouped.sets())) == [[0, 1]]  # 2 is a copy of nobody's keeper


def test_the_rest_of_a_split_group_is_checked_among_itself():
    check, _ = checker([(0, 1), (1, 2), (2, 3)])
    dupes = Partition({})
    verify_pairs(dupes, [(0, 1), (1, 2), (2, 3)], check, Progress(), threads=1)
    regrouped = regroup_by_largest(dupes, check, {0: 100, 1: 90, 2: 80, 3: 70}.get, threads=1)
    assert sorted(map(sorted, regrouped.sets())) == [[0, 1], [2, 3]]


def test_a_rejected_pair_never_joins_in_the_regroup():
    check, _ = checker([(0, 1), (0, 2), (1, 2)])
    dupes = Partition({0: {2}, 2: {0}})  # the user said 0 and 2 are not duplicates
    verify_pairs(dupes, [(0, 1), (1, 2), (0, 2)], check, Progress(), threads=1)
    regrouped = regroup_by_largest(dupes, check, {0: 100, 1: 90, 2: 80}.get, threads=1)
    assert all(not {0, 2} <= set(g) for g in regrouped.sets())


def test_groups_of_one_photo_are_merged_through_their_largest_photos():
    # Two crops (1, 2) of original 0 are not one picture with each other, but each is the original's.
    check, fake = checker([(0, 1), (0, 3), (2, 4), (0, 2)])
    dupes = Partition({})
    verify_pairs(dupes, [(0, 1), (0, 3), (2, 4)], check, Progress(), threads=1)
    assert sorted(map(sorted, dupes.sets())) == [[0, 1, 3], [2, 4]]
    a, b, cos = np.array([1]), np.array([2]), np.array([0.95])  # the only pair between the groups: crop vs crop
    between = pairs_between_groups(dupes, a, b, cos, 0.7, check.links, {0: 100, 1: 60, 2: 90, 3: 60, 4: 50}.get)
    assert (0, 2) in between  # the two largest, besides the candidate pair itself
    verify_pairs(dupes, between, check, Progress(), threads=1)
    assert sorted(map(sorted, dupes.sets())) == [[0, 1, 2, 3, 4]]


def test_placements_compose_along_the_verified_pairs():
    check, _ = checker([(0, 1), (1, 2)])
    dupes = Partition({})
    verify_pairs(dupes, [(0, 1), (1, 2)], check, Progress(), threads=1)
    placed = check.links.placements(0, {0, 1, 2})
    # Each step maps a's pixels 10 px right onto b's, so member 2's pixels lie 20 px left in 0's.
    assert np.allclose(placed[2][0] @ [30.0, 5.0, 1.0], [10.0, 5.0, 1.0])
    assert np.allclose(placed[0][0], np.eye(3))


def test_a_crop_that_matches_two_shots_of_one_moment_is_nobodys_copy():
    # 0 and 3 are two shots seconds apart (aerial photos: much of them the same pixels); 1 is 0's
    # copy, 2 a crop of a part where both shots agree, so it verifies with 0 and with 3. Kept with
    # 0 it would be removed in favour of a photo it may not come from; it goes with 3 instead.
    check, _ = checker([(0, 1), (0, 2), (2, 3)], moved_pairs=[(0, 3)])
    dupes = Partition({})
    verify_pairs(dupes, [(0, 1), (0, 2), (2, 3)], check, Progress(), threads=1)
    assert sorted(map(sorted, dupes.sets())) == [[0, 1, 2, 3]]
    regrouped = regroup_by_largest(dupes, check, {0: 100, 1: 60, 2: 30, 3: 90}.get, threads=1)
    assert sorted(map(sorted, regrouped.sets())) == [[0, 1], [2, 3]]


def test_a_member_is_torn_only_by_another_moment_not_by_a_copy_that_failed():
    # 3 is a heavily edited copy of 0 that fails the check on its pixels, not on displaced points:
    # 2, which matches both, stays with 0.
    check, _ = checker([(0, 1), (0, 2), (2, 3)])
    dupes = Partition({})
    verify_pairs(dupes, [(0, 1), (0, 2), (2, 3)], check, Progress(), threads=1)
    regrouped = regroup_by_largest(dupes, check, {0: 100, 1: 60, 2: 30, 3: 90}.get, threads=1)
    assert [0, 1, 2] in map(sorted, regrouped.sets())


def test_a_poor_largest_photo_gives_way_to_an_equal_runner_up_but_never_to_a_crop():
    # 0 is a captioned, letterboxed copy (a little more picture than the rest), and 2 and 3 fail
    # against it; 1, the original, verifies with all: the group stays one, around 1.
    check, _ = checker([(0, 1), (1, 2), (1, 3)])
    dupes = Partition({})
    verify_pairs(dupes, [(0, 1), (1, 2), (1, 3)], check, Progress(), threads=1)
    regrouped = regroup_by_largest(dupes, check, {0: 103, 1: 100, 2: 100, 3: 80}.get, threads=1)
    assert sorted(map(sorted, regrouped.sets())) == [[0, 1, 2, 3]]
    # The same links with 1 a crop (half the picture): it must not hold the others together.
    check, _ = checker([(0, 1), (1, 2), (1, 3)])
    dupes = Partition({})
    verify_pairs(dupes, [(0, 1), (1, 2), (1, 3)], check, Progress(), threads=1)
    regrouped = regroup_by_largest(dupes, check, {0: 100, 1: 50, 2: 45, 3: 40}.get, threads=1)
    assert [0, 1, 2, 3] not in map(sorted, regrouped.sets())


def test_the_largest_picture_is_found_without_measuring_every_member():
    from imgsim_desktop.core.duplicate_links import largest_first

    frames = {0: 100, 1: 130, 2: 90, 3: 60, 4: 100}
    pictures = {0: 100, 1: 80, 2: 90, 3: 60, 4: 100}  # 1 is letterboxed: a bigger frame, less picture
    measured = []

    class Sizes:
        def frame(self, v):
            return frames[v]

        def __call__(self, v):
            measured.append(v)
            return pictures[v]

    assert largest_first(list(frames), Sizes(), 2) == [0, 4]  # ties: the lower id first
    assert 3 not in measured  # its frame alone could not beat the two found

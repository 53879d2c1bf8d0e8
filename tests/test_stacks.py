"""core.stacks: which results are near-identical copies (embedding cosine and glance hash together)."""

from __future__ import annotations

import numpy as np

from imgsim_desktop.core import glance
from imgsim_desktop.core.stacks import stacks


def _layout(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(64, 64)).astype(np.float32).cumsum(0).cumsum(1)


def _grey(picture: np.ndarray) -> np.ndarray:
    picture = picture - picture.min()
    return (255 * picture / picture.max()).astype(np.uint8)


def test_copies_join_the_stack_of_their_best_ranked_copy_and_other_shots_stay_apart():
    rng = np.random.default_rng(0)
    base = rng.normal(size=64)
    near = base + rng.normal(scale=0.1, size=64)  # cosine ~0.99 to base
    same = glance.to_bytes(glance.block_of_grey(_grey(_layout(1))))
    other = glance.to_bytes(glance.block_of_grey(_grey(_layout(2))))
    likeness = {
        "a.jpg": (base.astype(np.float32), same),
        "b.jpg": (rng.normal(size=64).astype(np.float32), other),  # another photo
        "a copy.png": (near.astype(np.float32), same),  # the same picture, re-encoded
        "a, other shot.jpg": (near.astype(np.float32), other),  # alike in the embedding, laid out otherwise
        "old.jpg": (near.astype(np.float32), None),  # no glance stored: the cosine alone decides (0.96)
    }
    paths = list(likeness) + ["not indexed.jpg"]
    assert stacks(paths, likeness) == [[0, 2, 4], [1], [3], [5]]

"""Near-identical copies among a search's results, stacked into one tile (the results page).

A search answers with each neighbour's cosine to the query, not to each other; stacking asks the
catalog for the neighbours' own embeddings and glances (core.glance: the coarse layout of the
picture as a 63-bit perceptual hash). Two results are copies of one photo when

  their embeddings' cosine is at least STACK_COSINE and their glances are within STACK_BITS
  bits of each other (in the orientation where they agree best),

or, for a photo whose glance was never stored, when the cosine alone is at least COSINE_ALONE.

bench/bench_result_stacks.py measured this on real photos (EfficientNet-Lite0): 40 photos of
shared/photos/other_shots, each beside five copies (JPEG at quality 60, half size, PNG re-save,
4 % crop, brightened), and the 553 pairs of *different* photos of one place or object in
other_shots. The cosine alone cannot tell them apart: copies go down to 0.87, other shots of one
place up to 0.98 (at 0.96 a sixth of the copies stay apart and 6 other-shot pairs are stacked).
With the glance as well, 591 of 601 copy pairs are stacked (the misses are crops) and 8 of 553
other-shot pairs, all consecutive frames of one fixed camera (BoofCV scenes) and one facade.
Pairs across groups never came near (cosine at most 0.81).

Each result joins the stack of the first higher-ranked result it is a copy of, compared with that
stack's top photo only (a chain of slight edits does not drag unrelated photos in).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from imgsim_desktop.core import glance

STACK_COSINE = 0.85
STACK_BITS = 8
COSINE_ALONE = 0.96  # no glance stored (indexed by an older version): only the closest


def stacks(paths: Sequence[str], likeness: dict[str, tuple[np.ndarray, bytes | None]]) -> list[list[int]]:
    """The results ``paths`` (best first) in stacks: lists of their positions, each stack in rank
    order and the stacks in the order of their top photo. ``likeness`` is Catalog.likeness_of;
    a path missing from it stays on its own."""
    have = [i for i, path in enumerate(paths) if path in likeness and np.any(likeness[path][0])]
    cosine = np.zeros((len(paths), len(paths)))
    if have:
        matrix = np.stack([likeness[paths[i]][0].astype(np.float64) for i in have])
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
        cosine[np.ix_(have, have)] = matrix @ matrix.T
    usable = set(have)
    hashes = {i: glance.hashes(block) for i in have if (block := glance.from_bytes(likeness[paths[i]][1])) is not None}
    out: list[list[int]] = []
    for i in range(len(paths)):
        home = next((s for s in out if _copies(s[0], i, cosine, hashes)), None) if i in usable else None
        if home is None:
            out.append([i])
        else:
            home.append(i)
    return out


def _copies(a: int, b: int, cosine: np.ndarray, hashes: dict[int, np.ndarray]) -> bool:
    if a in hashes and b in hashes:
        return cosine[a, b] >= STACK_COSINE and glance.hash_distance(hashes[a], hashes[b]) <= STACK_BITS
    return cosine[a, b] >= COSINE_ALONE

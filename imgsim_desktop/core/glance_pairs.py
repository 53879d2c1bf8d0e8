"""Candidate pairs for turned and mirrored copies: photos whose glance codes (core.glance) agree.

The embedding's neighbours miss most quarter-turned copies (their cosine to the original is below
the duplicate stage's floor), so the scan adds each photo's GLANCE_NEIGHBOURS nearest glances
above GLANCE_FLOOR. They are only candidates: core.verify decides, as for every other pair.

Photos indexed before glance codes existed get theirs here, once, from the duplicate check's
stored features (no decode when the indexer stored them), and the catalog keeps them.
"""

from __future__ import annotations

import numpy as np

from imgsim_desktop.core import glance
from imgsim_desktop.core.decode import DecodeError
from imgsim_desktop.core.neighbours import MatrixVectors, nearest_pairs
from imgsim_desktop.core.progress import Progress

GLANCE_NEIGHBOURS = 2
# Measured on the duplicates benchmark's report half (540 pairs at 0.95, 460 of them copies): at
# 0.90 half the extra pairs are other photos, each one a full check that finds nothing.
GLANCE_FLOOR = 0.95
BACKFILL_COMMIT = 2000  # codes made for older photos are stored in batches this size


def glance_pairs(catalog, model: str, verifier, progress: Progress) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (a < b, vector ids, similarity) of photos embedded with ``model`` whose glances agree."""
    known, missing = catalog.glances(model)
    ids, codes = [], []
    for v, data in known:
        code = glance.from_bytes(data)
        if code is not None:
            ids.append(v)
            codes.append(code)
    made = []
    for done, (v, path, size, mtime_ns) in enumerate(missing):
        progress.check()
        if done % 200 == 0:
            progress.report(done, len(missing), "reading photos indexed by an older version")
        try:
            code = glance.of_grey(verifier.features(path).small)
        except DecodeError:
            continue  # unreadable now: the duplicate check reports it if it is a candidate
        ids.append(v)
        codes.append(code)
        made.append((path, size, mtime_ns, glance.to_bytes(code)))
        if len(made) >= BACKFILL_COMMIT:
            catalog.set_glances(made)
            made = []
    catalog.set_glances(made)
    if len(ids) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    vectors = MatrixVectors(np.array(ids, np.int64), np.stack(codes))
    return nearest_pairs(vectors, GLANCE_NEIGHBOURS, GLANCE_FLOOR, progress, "looking for turned and mirrored copies")

"""Candidate pairs for turned and mirrored copies: photos whose glance codes (core.glance) agree.

The embedding's neighbours miss most quarter-turned copies (their cosine to the original is below
the duplicate stage's floor), so the scan adds each photo's GLANCE_NEIGHBOURS nearest glance codes
above GLANCE_FLOOR whose hashes agree too. They are only candidates: core.verify decides, as for
every other pair.

Photos indexed before glance codes existed get theirs here, once, from the duplicate check's
stored features (no decode when the indexer stored them), and the catalog keeps them.
"""

from __future__ import annotations

import numpy as np

from imgsim_desktop.core import glance
from imgsim_desktop.core.decode import DecodeError
from imgsim_desktop.core.neighbours import MatrixVectors, nearest_pairs
from imgsim_desktop.core.progress import Progress

GLANCE_NEIGHBOURS = 4
# The code only narrows the search; the hash decides which pairs are worth a check. Copies agree
# above 0.95 (glance.py); each photo's few nearest codes above the floor are asked.
GLANCE_FLOOR = 0.93
BACKFILL_COMMIT = 2000  # codes made for older photos are stored in batches this size


def glance_pairs(catalog, model: str, verifier, progress: Progress) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (a < b, vector ids, code similarity) of photos embedded with ``model`` whose glances
    agree: near in code, and hashes within glance.HASH_MATCH_BITS in some orientation."""
    ids, blocks, missing = [], [], []
    for v, data, path, size, mtime_ns in catalog.glances(model):
        block = glance.from_bytes(data)
        if block is None:  # none yet, or an older version's form: made from the stored features
            missing.append((v, path, size, mtime_ns))
        else:
            ids.append(v)
            blocks.append(block)
    made = []
    for done, (v, path, size, mtime_ns) in enumerate(missing):
        progress.check()
        if done % 200 == 0:
            progress.report(done, len(missing), "reading photos indexed by an older version")
        try:
            block = glance.block_of_grey(verifier.features(path).small)
        except DecodeError:
            continue  # unreadable now: the duplicate check reports it if it is a candidate
        ids.append(v)
        blocks.append(block)
        made.append((path, size, mtime_ns, glance.to_bytes(block)))
        if len(made) >= BACKFILL_COMMIT:
            catalog.set_glances(made)
            made = []
    catalog.set_glances(made)
    nothing = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    if len(ids) < 2:
        return nothing
    ids_array = np.array(ids, np.int64)
    vectors = MatrixVectors(ids_array, glance.codes(np.stack(blocks)))
    a, b, similarity = nearest_pairs(vectors, GLANCE_NEIGHBOURS, GLANCE_FLOOR, progress, "looking for turned and mirrored copies")
    if not len(a):
        return nothing
    row = {v: i for i, v in enumerate(ids)}
    involved = sorted(set(a.tolist()) | set(b.tolist()))
    hashed = dict(zip(involved, glance.hashes(np.stack([blocks[row[v]] for v in involved]))))
    distance = glance.hash_distances(np.stack([hashed[v] for v in a.tolist()]), np.stack([hashed[v] for v in b.tolist()]))
    keep = distance <= glance.HASH_MATCH_BITS
    return a[keep], b[keep], similarity[keep]

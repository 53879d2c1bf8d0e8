"""Duplicates scan of a 100k-photo library from stored embeddings: how long, against a 60 s goal.

    python bench/bench_duplicates_scan.py [--n 100000] [--dim 1280] [--ms-per-pair 25]

Builds, in a temp dir, a catalog (real Catalog, one row and one embedding per photo) and an Annoy
index (real AnnoyStore) of synthetic clustered embeddings: bench_query's topics -> clusters ->
items, plus near-duplicate copies (cosine ~0.95 to a photo: 5% of the library) so that the scan
has real candidates. Then times find_groups end to end. The photos do not exist as files, so the
geometric check of each candidate fails at once (reported through on_error, counted here); its
real cost is candidates x --ms-per-pair (measured on real photos by bench_duplicates_quality.py)
over the verification threads, reported separately as an estimate. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_query import CHUNK, Corpus, _sigma, _unit  # noqa: E402

from imgsim_desktop.core.duplicates import DEFAULT_SENSITIVITY, NEIGHBOURS, VERIFY_THREADS, find_groups, thresholds  # noqa: E402
from imgsim_desktop.core.neighbours import neighbour_pairs  # noqa: E402
from imgsim_desktop.core.progress import Progress  # noqa: E402
from imgsim_desktop.core.search import Searcher  # noqa: E402
from imgsim_desktop.storage.catalog import Catalog, Embedded  # noqa: E402

GOAL_S = 60.0
COPY_SHARE = 0.05
COS_COPY = 0.95


class _Spec:
    def __init__(self, name: str, dim: int) -> None:
        self.name, self.embedding_dim = name, dim


class _Backbone:
    """Searcher needs only the model's name and size for a scan from stored embeddings."""

    def __init__(self, name: str, dim: int) -> None:
        self.spec = _Spec(name, dim)


def _log(msg: str) -> None:
    print(f"[bench_duplicates_scan {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def library_chunks(n: int, dim: int, seed: int):
    """bench_query's corpus with COPY_SHARE of each chunk replaced by near-copies of other items."""
    corpus = Corpus(n, dim, seed)
    rng = np.random.default_rng((seed, 9))
    for c in range(corpus.n_chunks):
        ids, vecs = corpus.chunk(c)
        copies = rng.choice(len(ids), size=int(COPY_SHARE * len(ids)), replace=False)
        sources = rng.integers(len(ids), size=len(copies))
        vecs[copies] = _unit(vecs[sources] + _sigma(COS_COPY, dim) * rng.standard_normal((len(copies), dim), dtype=np.float32))
        yield ids, vecs


def build(work: Path, n: int, dim: int, seed: int, model: str) -> Searcher:
    catalog = Catalog(work / "catalog.sqlite3")
    searcher = Searcher(catalog, work / "indexes", _Backbone(model, dim))
    for ids, vecs in library_chunks(n, dim, seed):
        # Distinct sizes: no exact-copy candidates, whose hashing would need real files.
        batch = [Embedded(f"/bench/photo{i:07d}.jpg", 1_000_000 + int(i), 0, vecs[j]) for j, i in enumerate(ids.tolist())]
        for start in range(0, len(batch), 2000):
            catalog.store_batch(model, batch[start : start + 2000])
        _log(f"  stored {ids[-1] + 1:,}")
    t = time.perf_counter()
    searcher.rebuild()
    _log(f"  Annoy index built in {time.perf_counter() - t:.1f}s")
    return searcher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ms-per-pair", type=float, default=25.0, help="verification cost per candidate pair, one thread")
    args = parser.parse_args()
    model = "bench-synthetic"
    with tempfile.TemporaryDirectory(prefix="imgsim-bench-dupscan-") as tmp:
        work = Path(tmp)
        _log(f"building {args.n:,} x {args.dim} in {work}")
        searcher = build(work, args.n, args.dim, args.seed, model)
        limits = thresholds(DEFAULT_SENSITIVITY)

        t = time.perf_counter()
        ann = searcher.refresh()
        a, b, cos = neighbour_pairs(ann, NEIGHBOURS, min(limits.similar_cosine, limits.duplicate_cosine), Progress())
        candidates_s = time.perf_counter() - t
        to_verify = int(np.count_nonzero(cos >= limits.duplicate_cosine))
        _log(f"  candidate pairs: {len(a):,} in {candidates_s:.1f}s, {to_verify:,} to verify")

        failed: list[str] = []
        t = time.perf_counter()
        groups = find_groups(searcher, DEFAULT_SENSITIVITY, on_error=lambda path, reason: failed.append(path))
        scan_s = time.perf_counter() - t
        searcher.catalog.close()
    verify_s = to_verify * args.ms_per_pair / 1e3 / VERIFY_THREADS
    print(
        json.dumps(
            {
                "benchmark": "duplicates_scan",
                "n": args.n,
                "dim": args.dim,
                "cpu_count": os.cpu_count(),
                "sensitivity": DEFAULT_SENSITIVITY,
                "neighbours": NEIGHBOURS,
                "near_copy_share": COPY_SHARE,
                "candidate_pass_s": round(candidates_s, 2),
                "candidate_pairs": int(len(a)),
                "pairs_to_verify": to_verify,
                "scan_s": round(scan_s, 2),
                "scan_note": "find_groups end to end; files absent, so each verification failed fast (counted in files_unreadable)",
                "files_unreadable": len(failed),
                "groups": len(groups),
                "goal_s": GOAL_S,
                "ratio_to_goal": round(scan_s / GOAL_S, 3),
                "verification_estimate_s": round(verify_s, 1),
                "verification_basis": f"{to_verify} pairs x {args.ms_per_pair} ms / {VERIFY_THREADS} threads (pairs joined through others are skipped: an upper bound)",
                "chunk": CHUNK,
                "copies_expected": math.floor(COPY_SHARE * args.n),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

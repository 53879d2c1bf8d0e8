"""Duplicates scan of a 100k-photo library from stored embeddings: how long, against a 60 s goal.

    python bench/bench_duplicates_scan.py [--n 100000] [--dim 1280] [--reps 3] [--skip-candidates]

A 100k library of real photos does not fit here, so the figure is put together from parts that are
each measured, and the projection is labelled as one:

  candidates   find the candidate pairs at --n: synthetic clustered embeddings (bench_query's
               corpus plus 5% near-copies) in a real Catalog + AnnoyStore; no files needed.
  real         the labelled library of bench/duplicates_truth.py (every photo in shared/photos plus
               generated crops, rescales, recompressions, colour edits; the scenes/ bursts, stereo
               and video-frame pairs), indexed with the default backbone: how many pairs and files
               per photo the verification stage takes on real embeddings, and its cost per file
               (decode + ORB, cold; or a read from the feature cache, warm) and per pair (matching +
               RANSAC). Phone-size cost: the same on 12 MP JPEGs (real photos enlarged to 4000x3000),
               since these small photos decode faster than a camera's.
  actual       find_groups end to end on --reps copies of that library made with other random edits
               (several thousand real files), first scan (empty feature cache) and repeat scan.

projection = candidates + n x (files/photo x ms/file + pairs/photo x ms/pair) / verify threads, for a
first scan (phone-size decode) and a repeat scan (features cached); also for a library where every
photo has a candidate (bursts everywhere). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

import duplicates_truth  # noqa: E402
from bench_query import Corpus, _sigma, _unit  # noqa: E402

from imgsim_desktop.core import verify  # noqa: E402
from imgsim_desktop.core.duplicates import (  # noqa: E402
    DEFAULT_SENSITIVITY,
    FEATURE_CACHE,
    NEIGHBOURS,
    VERIFY_PER_PHOTO,
    VERIFY_THREADS,
    find_groups,
    pairs_to_verify,
    thresholds,
)
from imgsim_desktop.core.engine import Engine  # noqa: E402
from imgsim_desktop.core.neighbours import neighbour_pairs  # noqa: E402
from imgsim_desktop.core.progress import Progress  # noqa: E402
from imgsim_desktop.core.search import Searcher  # noqa: E402
from imgsim_desktop.storage.catalog import Catalog, Embedded  # noqa: E402
from imgsim_desktop.storage.feature_cache import FeatureCache  # noqa: E402

GOAL_S = 60.0
COPY_SHARE = 0.05
COS_COPY = 0.95
PHONE_SIZE = (4000, 3000)


class _Spec:
    def __init__(self, name: str, dim: int) -> None:
        self.name, self.embedding_dim = name, dim


class _Backbone:
    """Searcher needs only the model's name and size for a scan from stored embeddings."""

    def __init__(self, name: str, dim: int) -> None:
        self.spec = _Spec(name, dim)


def _log(msg: str) -> None:
    print(f"[bench_duplicates_scan {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


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


def candidate_pass(work: Path, n: int, dim: int, seed: int) -> dict:
    """Stored embeddings -> the pairs the verification stage gets, at library size n."""
    model = "bench-synthetic"
    catalog = Catalog(work / "catalog.sqlite3")
    searcher = Searcher(catalog, work / "indexes", _Backbone(model, dim))
    for ids, vecs in library_chunks(n, dim, seed):
        batch = [Embedded(f"/bench/photo{i:07d}.jpg", 1_000_000 + int(i), 0, vecs[j]) for j, i in enumerate(ids.tolist())]
        for start in range(0, len(batch), 2000):
            catalog.store_batch(model, batch[start : start + 2000])
    _, build_s = _timed(searcher.rebuild)
    _log(f"  {n:,} synthetic embeddings stored, Annoy built in {build_s:.1f}s")
    limits = thresholds(DEFAULT_SENSITIVITY)

    def run():
        a, b, cos = neighbour_pairs(searcher.refresh(), NEIGHBOURS, min(limits.similar_cosine, limits.duplicate_cosine), Progress())
        return len(a), pairs_to_verify(a, b, cos, limits.duplicate_cosine)

    (pairs, todo), seconds = _timed(run)
    catalog.close()
    return {"n": n, "dim": dim, "seconds": round(seconds, 2), "candidate_pairs": pairs, "note": "synthetic embeddings: time only, pair counts are not realistic"}


def real_library(root: Path, seed: int) -> tuple[Path, dict[str, str]]:
    labels = duplicates_truth.build(root / "lib", seed, None)
    return root / "lib", labels


def verification_plan(engine: Engine) -> tuple[list[tuple[str, str]], int]:
    """The pairs find_groups would verify at the default sensitivity (before transitive skips)."""
    limits = thresholds(DEFAULT_SENSITIVITY)
    a, b, cos = neighbour_pairs(engine.searcher.refresh(), NEIGHBOURS, min(limits.similar_cosine, limits.duplicate_cosine), Progress())
    todo = pairs_to_verify(a, b, cos, limits.duplicate_cosine)
    names = engine.catalog.paths_for_vectors({v for pair in todo for v in pair})
    return [(names[x], names[y]) for x, y in todo], len(a)


def unit_costs(pairs: list[tuple[str, str]], cache_dir: Path) -> dict:
    """Single-thread ms per file (cold: decode + ORB + cache write; warm: cache read) and per pair."""
    files = sorted({p for pair in pairs for p in pair})
    disk = FeatureCache(cache_dir)
    cold = verify.Verifier(cache_size=len(files) + 1, disk=disk)
    _, cold_s = _timed(lambda: [cold.features(p) for p in files])
    warm = verify.Verifier(cache_size=len(files) + 1, disk=disk)
    _, warm_s = _timed(lambda: [warm.features(p) for p in files])
    _, pair_s = _timed(lambda: [warm.compare(x, y) for x, y in pairs])
    entry = np.mean([len(verify.to_bytes(warm.features(p))) for p in files])
    return {
        "files": len(files),
        "pairs": len(pairs),
        "ms_per_file_cold": round(1e3 * cold_s / len(files), 2),
        "ms_per_file_cached": round(1e3 * warm_s / len(files), 3),
        "ms_per_pair": round(1e3 * pair_s / max(1, len(pairs)), 2),
        "cache_bytes_per_file": int(entry),
    }


def phone_size_cost(sources: list[str], work: Path) -> float:
    """ms per file, decode + ORB, for 12 MP JPEGs (real photos enlarged: a camera's file size)."""
    paths = []
    for i, src in enumerate(sources):
        with Image.open(src) as im:
            big = im.convert("RGB").resize(PHONE_SIZE, Image.Resampling.BICUBIC)
        paths.append(work / f"phone{i}.jpg")
        big.save(paths[-1], quality=92)
    verify.features(paths[0])  # warm-up: imports, OpenCV first call
    _, seconds = _timed(lambda: [verify.features(p) for p in paths])
    return 1e3 * seconds / len(paths)


def scans(engine: Engine) -> dict:
    """find_groups end to end at the default sensitivity: empty feature cache, then warm."""
    shutil.rmtree(engine.catalog.path.parent / FEATURE_CACHE, ignore_errors=True)
    failed: list[str] = []
    first, first_s = _timed(lambda: find_groups(engine.searcher, DEFAULT_SENSITIVITY, on_error=lambda p, r: failed.append(p)))
    repeat, repeat_s = _timed(lambda: find_groups(engine.searcher, DEFAULT_SENSITIVITY))
    assert first == repeat, "a cached scan must find the same groups"
    return {"first_scan_s": round(first_s, 2), "repeat_scan_s": round(repeat_s, 2), "groups": len(first), "unreadable": len(failed)}


def measure_real(work: Path, seed: int) -> dict:
    lib, labels = real_library(work, seed)
    with Engine(work / "data", device="cpu") as engine:
        engine.index([str(lib)])
        photos = len(engine.catalog.vector_ids(engine.spec.name))
        pairs, candidates = verification_plan(engine)
        costs = unit_costs(pairs, work / "unit-cache")
        out = {"photos": photos, "candidate_pairs": candidates, **scans(engine)}
    out["pairs_per_photo"] = round(len(pairs) / photos, 4)
    out["files_per_photo"] = round(costs["files"] / photos, 4)
    out["costs"] = costs
    sources = sorted(p for p in labels if "copy" not in Path(p).name and p.endswith(".jpg"))[:: max(1, len(labels) // 60)][:8]
    out["costs"]["ms_per_file_cold_phone_12mp"] = round(phone_size_cost(sources, work), 2)
    return out


def measure_actual(work: Path, reps: int) -> dict:
    """The labelled library built ``reps`` times with different random edits, all copies made."""
    for r in range(reps):
        duplicates_truth.build(work / "lib" / f"r{r}", 100 + r, None, copies_per_photo=len(duplicates_truth.EDITS))
    with Engine(work / "data", device="cpu") as engine:
        _, index_s = _timed(lambda: engine.index([str(work / "lib")]))
        photos = len(engine.catalog.vector_ids(engine.spec.name))
        _log(f"  actual library: {photos:,} files indexed in {index_s:.0f}s")
        pairs, candidates = verification_plan(engine)
        out = {"photos": photos, "candidate_pairs": candidates, "pairs_to_verify": len(pairs), **scans(engine)}
    out["note"] = "duplicate-dense: each original has 8 edited copies per rep and reps are exact copies of the originals"
    return out


def project(n: int, candidates_s: float, pairs_per_photo: float, files_per_photo: float, ms_file: float, ms_pair: float) -> float:
    return candidates_s + n * (files_per_photo * ms_file + pairs_per_photo * ms_pair) / 1e3 / VERIFY_THREADS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reps", type=int, default=3, help="copies of the labelled library for the end-to-end run (0: skip)")
    parser.add_argument("--candidates-s", type=float, help="skip the 100k candidate pass and use this figure (s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imgsim-bench-dupscan-") as tmp:
        work = Path(tmp)
        _log("real photos: verification plan and unit costs")
        real = measure_real(work / "real", args.seed)
        actual = None
        if args.reps:
            _log(f"actual: {args.reps} reps of the labelled library")
            actual = measure_actual(work / "actual", args.reps)
        if args.candidates_s is None:
            _log(f"candidate pass at {args.n:,}")
            candidates = candidate_pass(work / "synthetic", args.n, args.dim, args.seed)
        else:
            candidates = {"n": args.n, "seconds": args.candidates_s, "note": "given with --candidates-s, not measured in this run"}
    c, costs = candidates["seconds"], real["costs"]
    phone, cached, per_pair = costs["ms_per_file_cold_phone_12mp"], costs["ms_per_file_cached"], costs["ms_per_pair"]
    measured_mix = (real["pairs_per_photo"], real["files_per_photo"])
    every_photo = (float(VERIFY_PER_PHOTO), 1.0)  # bursts everywhere: each photo verified, at most this many pairs
    projection = {
        "label": "PROJECTION from measured parts, not a 100k run",
        "first_scan_s": round(project(args.n, c, *measured_mix, phone, per_pair), 1),
        "repeat_scan_s": round(project(args.n, c, *measured_mix, cached, per_pair), 1),
        "every_photo_has_candidates_first_scan_s": round(project(args.n, c, *every_photo, phone, per_pair), 1),
        "every_photo_has_candidates_repeat_scan_s": round(project(args.n, c, *every_photo, cached, per_pair), 1),
        "basis": f"{c} s candidates + {args.n} x (files/photo x ms/file + pairs/photo x {per_pair} ms) / {VERIFY_THREADS} threads; "
        f"first scan at the 12 MP decode cost {phone} ms/file, repeat at the cached {cached} ms/file; mix measured on real photos: "
        f"{measured_mix[0]} pairs and {measured_mix[1]} files per photo",
    }
    projection["ratio_to_goal_first"] = round(projection["first_scan_s"] / GOAL_S, 3)
    projection["ratio_to_goal_repeat"] = round(projection["repeat_scan_s"] / GOAL_S, 3)
    print(
        json.dumps(
            {
                "benchmark": "duplicates_scan",
                "cpu_count": os.cpu_count(),
                "verify_threads": VERIFY_THREADS,
                "sensitivity": DEFAULT_SENSITIVITY,
                "neighbours": NEIGHBOURS,
                "verify_per_photo": VERIFY_PER_PHOTO,
                "goal_s": GOAL_S,
                "candidate_pass": candidates,
                "real_photos": real,
                "actual_end_to_end": actual,
                "projection_100k": projection,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

"""Duplicates scan of a 100k-photo library from stored embeddings: how long, against a 60 s goal.

    python bench/bench_duplicates_scan.py [--n 100000] [--dim 1280] [--reps 3] [--candidates-s S]
                                          [--copy-share 0.04] [--burst-share 0.06] [--burst-times none|camera]

100k real photos do not fit here. The scan is run end to end at --n on synthetic embeddings that
carry real photos' features, and the parts are measured on real photos for a projection to other
library mixes:

  candidates   find the candidate pairs at --n: synthetic clustered embeddings (bench_query's
               corpus plus 5% near-copies) in a real Catalog + AnnoyStore; no files needed.
  end to end   find_groups at --n, every step as on a user's library, on a library made so that
               about REALISTIC_SHARE of the photos have a candidate (SCALE_COMPOSITION: near-copies
               and other shots of other photos, cluster mates below the duplicates floor), its
               photos given the stored features of real ones (bench/scan_at_scale.py says which).
               The share that results is measured and printed with the time.
  real         the labelled library of bench/duplicates_truth.py (every photo in shared/photos plus
               generated crops, rescales, recompressions, colour edits; the scenes/ bursts, stereo
               and video-frame pairs), indexed with the default backbone: how many pairs and files
               per photo the verification stage takes on real embeddings, and its cost per file
               (decode + ORB, cold; or a read from the feature cache, warm) and per pair (matching +
               RANSAC). Phone-size cost: the same on 12 MP JPEGs (real photos enlarged to 4000x3000),
               since these small photos decode faster than a camera's.
  actual       find_groups end to end on --reps copies of that library made with other random edits
               (several thousand real files): the first scan after indexing, a repeat scan, and a
               scan with the feature cache deleted.

The candidate pass also reports its recall against brute force (full-dimension cosine over all n)
for a sample of photos. ms/pair is core.verify.decide (quick stage on the strongest keypoints, full
matching only when unclear), with the share of pairs the quick stage settled.

projection = candidates + n x (files/photo x ms/file + pairs/photo x ms/pair) / verify threads. The
indexer stores every photo's features, so a scan (the first after indexing too) reads them: ms/file
is the cached read; also given is the cost where they are missing (a library indexed by an older
version: phone-size decode). Three mixes: an assumed realistic one (REALISTIC_SHARE of photos with a
candidate), the one measured on the labelled library (duplicate-dense: most photos there have
copies) and a pessimistic one where every photo has candidates (bursts everywhere). Prints one JSON
object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

import duplicates_truth  # noqa: E402
import scan_at_scale  # noqa: E402
from bench_query import COS_ITEM_TO_CLUSTER, Corpus, _sigma, _unit  # noqa: E402

from imgsim_desktop.core import verify  # noqa: E402
from imgsim_desktop.core.duplicates import (  # noqa: E402
    DEFAULT_SENSITIVITY,
    NEIGHBOURS,
    VERIFY_PER_PHOTO,
    VERIFY_THREADS,
    find_groups,
    pairs_to_verify,
    thresholds,
)
from imgsim_desktop.core.engine import Engine  # noqa: E402
from imgsim_desktop.core.library_service import index_now
from imgsim_desktop.core.neighbours import LibraryVectors, neighbour_pairs  # noqa: E402
from imgsim_desktop.core.progress import Progress  # noqa: E402
from imgsim_desktop.core.search import Searcher  # noqa: E402
from imgsim_desktop.core.verifier import Verifier  # noqa: E402
from imgsim_desktop.storage.catalog import Catalog, Embedded  # noqa: E402
from imgsim_desktop.storage.feature_cache import FEATURE_CACHE, FeatureCache  # noqa: E402

GOAL_S = 60.0
COPY_SHARE = 0.05
COS_COPY = 0.95
COS_BURST = 0.85  # another shot of the same scene: alike to the CNN, yet not the same photo
PHONE_SIZE = (4000, 3000)
RECALL_QUERIES = 500
# A 'realistic' library for the projection: this share of photos has a duplicate or burst
# neighbour to verify (an assumption, stated in the output; the pessimistic case is also given).
REALISTIC_SHARE = 0.2
# The end-to-end run at --n builds such a library: cluster mates less alike than the duplicates
# floor, 4% near-copies and 6% other shots of another photo, so that about REALISTIC_SHARE of the
# photos have a candidate (copy or burst and the photo it was made from); the share is measured.
SCALE_COMPOSITION = {"item_cos": 0.75, "copy_share": 0.04, "burst_share": 0.06}


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


def library_chunks(n: int, dim: int, seed: int, item_cos: float = COS_ITEM_TO_CLUSTER, copy_share: float = COPY_SHARE, burst_share: float = 0.0):
    """bench_query's corpus (items at ``item_cos`` to their cluster's centre) with ``copy_share`` of
    each chunk replaced by near-copies of other items and ``burst_share`` by other shots of them;
    yields (ids, vectors, {copy id: id it copies}, {burst id: id it was shot after})."""
    corpus = Corpus(n, dim, seed, item_cos)
    rng = np.random.default_rng((seed, 9))
    for c in range(corpus.n_chunks):
        ids, vecs = corpus.chunk(c)
        made = rng.choice(len(ids), size=int((copy_share + burst_share) * len(ids)), replace=False)
        if burst_share:  # one copy or burst per source, never a made one: each pair as labelled
            sources = rng.choice(np.setdiff1d(np.arange(len(ids)), made), size=len(made), replace=False)
        else:  # the candidate pass's corpus, as it always was
            sources = rng.integers(len(ids), size=len(made))
        copies = int(copy_share * len(ids))
        near = np.where(np.arange(len(made)) < copies, _sigma(COS_COPY, dim), _sigma(COS_BURST, dim)).astype(np.float32)[:, None]
        vecs[made] = _unit(vecs[sources] + near * rng.standard_normal((len(made), dim), dtype=np.float32))
        pairs = list(zip(ids[made].tolist(), ids[sources].tolist()))
        yield ids, vecs, dict(pairs[:copies]), dict(pairs[copies:])


def burst_moments(bursts: dict[int, int]) -> dict[int, tuple[str, str]]:
    """(taken_at, camera) for each burst shot and its first shot, as a phone or camera records them:
    the shutter's time with its sub-second (DateTimeOriginal + SubSecTimeOriginal), one camera, the
    frames 0.4 s apart; every sequence minutes from the next."""
    out: dict[int, tuple[str, str]] = {}
    start = datetime(2024, 5, 1, 9, 0, 0)
    for burst, first in bursts.items():
        shot = start + timedelta(seconds=300 * first)
        out[first] = (shot.isoformat(timespec="milliseconds"), "Bench camera")
        out[burst] = ((shot + timedelta(seconds=0.4)).isoformat(timespec="milliseconds"), "Bench camera")
    return out


def synthetic_library(work: Path, n: int, dim: int, seed: int, burst_times: bool = False, **composition):
    """n synthetic embeddings (library_chunks) in a real Catalog + AnnoyStore, files named but not
    written: returns (catalog, searcher, {copy: original}, {burst: first shot}) by photo number.
    With ``burst_times`` the bursts carry their camera's capture times (burst_moments); without,
    no photo has a date (a library whose metadata was stripped)."""
    model = "bench-synthetic"
    catalog = Catalog(work / "catalog.sqlite3")
    searcher = Searcher(catalog, work / "indexes", _Backbone(model, dim))
    copy_of: dict[int, int] = {}
    burst_of: dict[int, int] = {}
    for ids, vecs, copies, bursts in library_chunks(n, dim, seed, **composition):
        copy_of.update(copies)
        burst_of.update(bursts)
        when = burst_moments(bursts) if burst_times else {}
        batch = [
            Embedded(str(scan_at_scale.photo_path(work, i)), 1_000_000 + int(i), 0, vecs[j], taken_at=when.get(i, (None, None))[0], camera=when.get(i, (None, None))[1])
            for j, i in enumerate(ids.tolist())
        ]
        for start in range(0, len(batch), 2000):
            catalog.store_batch(model, batch[start : start + 2000])
    _, build_s = _timed(searcher.rebuild)
    _log(f"  {n:,} synthetic embeddings stored, Annoy built in {build_s:.1f}s")
    return catalog, searcher, copy_of, burst_of


def candidate_pass(searcher, n: int, dim: int, seed: int) -> dict:
    """Stored embeddings -> the pairs the verification stage gets, at library size n."""
    limits = thresholds(DEFAULT_SENSITIVITY)

    def run():
        a, b, cos = neighbour_pairs(searcher.refresh(), NEIGHBOURS, min(limits.similar_cosine, limits.duplicate_cosine), Progress())
        return len(a), pairs_to_verify(a, b, cos, limits.duplicate_cosine), set(zip(a.tolist(), b.tolist()))

    (pairs, todo, found), seconds = _timed(run)
    recall = candidate_recall(searcher.refresh(), found, limits, seed)
    return {"n": n, "dim": dim, "seconds": round(seconds, 2), "candidate_pairs": pairs, "recall_vs_brute_force": recall,
            "note": "synthetic embeddings: time and recall; pair counts are not realistic"}


def candidate_recall(ann, found: set[tuple[int, int]], limits, seed: int, queries: int = RECALL_QUERIES) -> dict:
    """Of each sampled photo's true k nearest with cosine >= floor (brute force over all n in full
    dimensions), the share the candidate pass found; also for the VERIFY_PER_PHOTO nearest with
    cosine >= the duplicate floor (the pairs the duplicate tier needs)."""
    vectors = LibraryVectors(ann)
    rng = np.random.default_rng((seed, 7))
    picked = rng.choice(len(vectors), queries, replace=False)
    scores = np.concatenate([vectors.take(np.arange(s, min(len(vectors), s + 20_000))) @ vectors.take(picked).T for s in range(0, len(vectors), 20_000)]).T
    scores[np.arange(queries), picked] = -2.0
    floor = min(limits.similar_cosine, limits.duplicate_cosine)
    hits = {"all": [0, 0], "verify": [0, 0]}
    for row, q in enumerate(picked.tolist()):
        top = np.argsort(-scores[row])[:NEIGHBOURS]
        for rank, j in enumerate(top.tolist()):
            pair = tuple(sorted((int(vectors.ids[q]), int(vectors.ids[j]))))
            for name, ok in (("all", scores[row, j] >= floor), ("verify", rank < VERIFY_PER_PHOTO and scores[row, j] >= limits.duplicate_cosine)):
                if ok:
                    hits[name][0] += pair in found
                    hits[name][1] += 1
    return {
        "queries": queries,
        "top_k_at_floor": round(hits["all"][0] / max(1, hits["all"][1]), 4),
        "top_k_pairs": hits["all"][1],
        "top_verify_at_duplicate_floor": round(hits["verify"][0] / max(1, hits["verify"][1]), 4),
        "top_verify_pairs": hits["verify"][1],
    }


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
    cold = Verifier(cache_size=len(files) + 1, disk=disk)
    _, cold_s = _timed(lambda: [cold.features(p) for p in files])
    warm = Verifier(cache_size=len(files) + 1, disk=disk)
    _, warm_s = _timed(lambda: [warm.features(p) for p in files])
    _, full_s = _timed(lambda: [warm.compare(x, y) for x, y in pairs])
    limits = thresholds(DEFAULT_SENSITIVITY)
    rule = limits.pair
    verdicts, pair_s = _timed(lambda: [warm.decide(x, y, rule) for x, y in pairs])
    by_verdict: dict[bool, list[float]] = {True: [], False: []}
    for (x, y), verdict in zip(pairs, verdicts):
        by_verdict[verdict.same].append(_timed(lambda x=x, y=y: warm.decide(x, y, rule))[1])
    entry = np.mean([len(verify.to_bytes(warm.features(p))) for p in files])
    return {
        "files": len(files),
        "pairs": len(pairs),
        "ms_per_file_cold": round(1e3 * cold_s / len(files), 2),
        "ms_per_file_cached": round(1e3 * warm_s / len(files), 3),
        "ms_per_pair": round(1e3 * pair_s / max(1, len(pairs)), 2),
        "ms_per_pair_full_matching": round(1e3 * full_s / max(1, len(pairs)), 2),
        "settled_by_quick_stage": round(sum(v.quick for v in verdicts) / max(1, len(pairs)), 3),
        # A real library's candidates are mostly other shots, not copies: the two costs apart.
        "ms_per_pair_same_photo": round(1e3 * float(np.mean(by_verdict[True] or [0.0])), 2),
        "ms_per_pair_different": round(1e3 * float(np.mean(by_verdict[False] or [0.0])), 2),
        "pairs_different": len(by_verdict[False]),
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
    """find_groups end to end at the default sensitivity: the first scan after indexing (the indexer
    stored every photo's features), a repeat, and a scan with the feature cache deleted (a library
    indexed by an older version: every candidate photo decoded)."""
    failed: list[str] = []
    first, first_s = _timed(lambda: find_groups(engine.searcher, DEFAULT_SENSITIVITY, on_error=lambda p, r: failed.append(p)))
    repeat, repeat_s = _timed(lambda: find_groups(engine.searcher, DEFAULT_SENSITIVITY))
    shutil.rmtree(engine.catalog.path.parent / FEATURE_CACHE, ignore_errors=True)
    cold, cold_s = _timed(lambda: find_groups(engine.searcher, DEFAULT_SENSITIVITY))
    assert first == repeat == cold, "features made while indexing, cached or made by the scan must give the same groups"
    return {
        "first_scan_after_indexing_s": round(first_s, 2),
        "repeat_scan_s": round(repeat_s, 2),
        "scan_without_stored_features_s": round(cold_s, 2),
        "groups": len(first),
        "unreadable": len(failed),
    }


def measure_real(work: Path, seed: int) -> tuple[dict, dict[str, str]]:
    lib, labels = real_library(work, seed)
    with Engine(work / "data", device="cpu") as engine:
        index_now(engine, [str(lib)])
        photos = len(engine.catalog.vector_ids(engine.spec.name))
        pairs, candidates = verification_plan(engine)
        costs = unit_costs(pairs, work / "unit-cache")
        out = {"photos": photos, "candidate_pairs": candidates, **scans(engine)}
    out["pairs_per_photo"] = round(len(pairs) / photos, 4)
    out["files_per_photo"] = round(costs["files"] / photos, 4)
    out["costs"] = costs
    sources = sorted(p for p in labels if "copy" not in Path(p).name and p.endswith(".jpg"))[:: max(1, len(labels) // 60)][:8]
    out["costs"]["ms_per_file_cold_phone_12mp"] = round(phone_size_cost(sources, work), 2)
    return out, labels


def measure_actual(work: Path, reps: int) -> dict:
    """The labelled library built ``reps`` times with different random edits, all copies made."""
    for r in range(reps):
        duplicates_truth.build(work / "lib" / f"r{r}", 100 + r, None, copies_per_photo=8)  # the size this bench was calibrated at
    with Engine(work / "data", device="cpu") as engine:
        _, index_s = _timed(lambda: index_now(engine, [str(work / "lib")]))
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
    parser.add_argument("--candidates-s", type=float, help="skip the candidate pass at --n and use this figure (s); skips the end-to-end run at --n too")
    parser.add_argument("--copy-share", type=float, default=SCALE_COMPOSITION["copy_share"], help="end-to-end run: share of photos that are near-copies of another")
    parser.add_argument("--burst-share", type=float, default=SCALE_COMPOSITION["burst_share"], help="end-to-end run: share of photos that are another shot of another")
    parser.add_argument("--burst-times", choices=("none", "camera"), default="none",
                        help="end-to-end run: bursts without dates (stripped metadata: each pair is checked) or with their camera's sub-second capture times")
    args = parser.parse_args()
    composition = {**SCALE_COMPOSITION, "copy_share": args.copy_share, "burst_share": args.burst_share}
    with tempfile.TemporaryDirectory(prefix="imgsim-bench-dupscan-") as tmp:
        work = Path(tmp)
        _log("real photos: verification plan and unit costs")
        real, labels = measure_real(work / "real", args.seed)
        actual = None
        if args.reps:
            _log(f"actual: {args.reps} reps of the labelled library")
            actual = measure_actual(work / "actual", args.reps)
        at_scale = None
        if args.candidates_s is None:
            _log(f"candidate pass at {args.n:,}")
            catalog, searcher, _, _ = synthetic_library(work / "synthetic", args.n, args.dim, args.seed)
            candidates = candidate_pass(searcher, args.n, args.dim, args.seed)
            catalog.close()
            _log(f"end-to-end scan at {args.n:,}")
            catalog, searcher, copy_of, burst_of = synthetic_library(work / "scale", args.n, args.dim, args.seed, args.burst_times == "camera", **composition)
            at_scale = scan_at_scale.scan(work / "scale", catalog, searcher, copy_of, burst_of, labels, work / "real" / "data", GOAL_S)
            at_scale["composition"] = {**composition, "burst_times": args.burst_times}
            catalog.close()
        else:
            candidates = {"n": args.n, "seconds": args.candidates_s, "note": "given with --candidates-s, not measured in this run"}
    c, costs = candidates["seconds"], real["costs"]
    phone, cached, per_pair = costs["ms_per_file_cold_phone_12mp"], costs["ms_per_file_cached"], costs["ms_per_pair"]
    # Candidates in a real library are mostly other shots: price every pair at the dearer verdict.
    per_pair = max(per_pair, costs["ms_per_pair_same_photo"], costs["ms_per_pair_different"])
    measured_mix = (real["pairs_per_photo"], real["files_per_photo"])
    every_photo = (float(VERIFY_PER_PHOTO), 1.0)  # bursts everywhere: each photo verified, at most this many pairs
    # Measured per-photo rates hold for photos with a candidate; a realistic library has fewer such photos.
    per_candidate_photo = real["pairs_per_photo"] / max(1e-9, real["files_per_photo"])
    realistic = (REALISTIC_SHARE * per_candidate_photo, REALISTIC_SHARE)
    mixes = {"realistic": realistic, "duplicate_dense": measured_mix, "every_photo_has_candidates": every_photo}
    # After indexing every photo's features are stored (the indexer makes them from its own decode), so
    # a first scan reads them like a repeat scan does; only a library indexed by an older version (or
    # with the cache deleted) decodes its candidate photos, at the 12 MP cost.
    projection = {"label": "PROJECTION from measured parts, not a 100k run"}
    # Bursts are what the quick stage cannot settle (barely moved points): price that mix at the full check.
    pair_cost = {"realistic": per_pair, "duplicate_dense": per_pair, "every_photo_has_candidates": max(per_pair, costs["ms_per_pair_full_matching"])}
    for name, mix in mixes.items():
        projection[f"{name}_scan_s"] = round(project(args.n, c, *mix, cached, pair_cost[name]), 1)
        projection[f"{name}_ratio_to_goal"] = round(projection[f"{name}_scan_s"] / GOAL_S, 3)
        projection[f"{name}_scan_without_stored_features_s"] = round(project(args.n, c, *mix, phone, pair_cost[name]), 1)
    projection["realistic_assumption"] = (
        f"{REALISTIC_SHARE:.0%} of photos have a duplicate or burst candidate, each verified at the measured "
        f"{per_candidate_photo:.2f} pairs per such photo (an assumption, not measured)"
    )
    projection["duplicate_dense"] = f"the labelled library's own mix: {measured_mix[0]} pairs and {measured_mix[1]} files per photo (most photos there have copies)"
    projection["basis"] = (
        f"{c} s candidates + {args.n} x (files/photo x ms/file + pairs/photo x {per_pair} ms) / {VERIFY_THREADS} threads; "
        f"ms/file: stored features {cached} (warm page cache: a scan after a reboot reads them from disk), decoded from a 12 MP file {phone}; "
        f"every-photo mix at the full check's {costs['ms_per_pair_full_matching']} ms/pair; otherwise ms/pair: the dearer of the mean over "
        f"same-photo and different-photo verdicts (measured mean over all pairs: {costs['ms_per_pair']})"
    )
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
                "end_to_end_at_n": at_scale,
                "real_photos": real,
                "actual_end_to_end": actual,
                "projection_100k": projection,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

"""Duplicates-tier pair precision and recall on a labelled library built from real photos.

    python bench/bench_duplicates_quality.py [--seed 0] [--split report] [--sensitivities 0,0.1,...,1]

Builds the library of bench/duplicates_truth.py in a temp dir (originals from shared/photos plus
generated crops, rescales, recompressions, colour edits; scenes/ pairs and kde groups as hard
negatives), indexes it with the default backbone through Engine, runs find_groups at each
sensitivity and scores the pairs implied by the "exact" + "duplicate" groups (every two members
of a group form a pair) against the true pairs. Thresholds were tuned on ``--seed 1 --split tune``
(other originals' copies, other random edits); the default run reports ``--seed 0 --split report``.
Also times verification of the candidate pairs (ms per pair, features computed once per file).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import duplicates_truth  # noqa: E402

from imgsim_desktop.core.duplicates import DEFAULT_SENSITIVITY, NEIGHBOURS, find_groups, thresholds  # noqa: E402
from imgsim_desktop.core.engine import Engine  # noqa: E402
from imgsim_desktop.core.neighbours import neighbour_pairs  # noqa: E402
from imgsim_desktop.core.progress import Progress  # noqa: E402
from imgsim_desktop.core.verify import Verifier  # noqa: E402


def score(groups, truth: set[frozenset[str]]) -> dict:
    found = {frozenset(p) for g in groups if g.tier in ("exact", "duplicate") for p in itertools.combinations([m.path for m in g.members], 2)}
    hits = len(found & truth)
    wrong = sorted(sorted(Path(p).name for p in pair) for pair in found - truth)
    return {
        "precision": round(hits / len(found), 4) if found else 1.0,
        "recall": round(hits / len(truth), 4),
        "pairs_found": len(found),
        "true_pairs": len(truth),
        "false_pairs": wrong[:20],
        "similar_groups": sum(g.tier == "similar" for g in groups),
    }


def verification_cost(engine: Engine, sensitivity: float) -> dict:
    """Time the geometric check on this library's real candidate pairs, from cold features."""
    limits = thresholds(sensitivity)
    a, b, cos = neighbour_pairs(engine.searcher.refresh(), NEIGHBOURS, limits.duplicate_cosine, Progress())
    names = engine.catalog.paths_for_vectors(set(a.tolist()) | set(b.tolist()))
    pairs = [(names[x], names[y]) for x, y in zip(a.tolist(), b.tolist())]
    verifier = Verifier(cache_size=len(names) + 1)
    start = time.perf_counter()
    for pa, pb in pairs:
        verifier.compare(pa, pb)
    total = time.perf_counter() - start
    return {
        "candidate_pairs": len(pairs),
        "files": len(names),
        "ms_per_pair_single_thread": round(1e3 * total / max(1, len(pairs)), 2),
        "seconds": round(total, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default="report", choices=["tune", "report", "all"])
    parser.add_argument("--sensitivities", default="0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1")
    parser.add_argument("--keep", help="build the library here and keep it (default: a temp dir)")
    args = parser.parse_args()
    sens = [float(s) for s in args.sensitivities.split(",")]

    with tempfile.TemporaryDirectory(prefix="imgsim-bench-dupq-") as tmp:
        root = Path(args.keep or tmp)
        labels = duplicates_truth.build(root / "lib", args.seed, None if args.split == "all" else args.split)
        truth = duplicates_truth.true_pairs(labels)
        with Engine(root / "data", device="cpu") as engine:
            t = time.perf_counter()
            report = engine.index([str(root / "lib")])
            index_s = time.perf_counter() - t
            cost = verification_cost(engine, DEFAULT_SENSITIVITY)
            curve = []
            for s in sens:
                t = time.perf_counter()
                groups = find_groups(engine.searcher, s)
                curve.append({"sensitivity": s, **score(groups, truth), "scan_s": round(time.perf_counter() - t, 2)})
            model = engine.spec.name
    default = next((c for c in curve if c["sensitivity"] == DEFAULT_SENSITIVITY), None)
    print(
        json.dumps(
            {
                "benchmark": "duplicates_quality",
                "model": model,
                "seed": args.seed,
                "split": args.split,
                "files": len(labels),
                "indexed": report.indexed,
                "index_s": round(index_s, 1),
                "origins": len(set(labels.values())),
                "true_pairs": len(truth),
                "default_sensitivity": DEFAULT_SENSITIVITY,
                "default": default,
                "goal": {"precision": 0.99, "recall": 0.95},
                "goal_met": bool(default and default["precision"] >= 0.99 and default["recall"] >= 0.95),
                "verification": cost,
                "curve": curve,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

"""Duplicates quality on a labelled library as hard as a real one: wrong removals, pair precision and
recall (by edit kind), group splits, over a sensitivity curve.

    python bench/bench_duplicates_quality.py [--split report|tune|all] [--seed 0]
        [--sensitivities 0,0.25,0.5,0.75,1] [--keep DIR] [--rebuild] [--limit N] [--copies 2]
        [--cluster 40] [--no-other-shots]

The library is bench/duplicates_truth.py's: the split's real photos from shared/photos (the
other_shots groups and scenes pairs, different photos of one place, as hard negatives) plus ~2
generated copies of each (crops down to 30 % of the area, rescales, re-encodes, colour edits, blur /
sharpen, quarter turns, mirror, captions, stickers, borders; alone or combined) and one photo with
40 copies. It is indexed with the default backbone through Engine, and find_groups runs at each
sensitivity. A second library of only the 252 other_shots photos (no copies at all: every
duplicate found there is wrong) is scanned too.

Measured, over the "exact" and "duplicate" groups:
  wrong_removals  members keeper.choose (default KeeperRules) offers for removal whose origin is
                  not the keeper's: another photo deleted as a "copy". The number that matters.
  pairs           every two members of a group are a found pair; precision and recall against the
                  true pairs (same origin; the cluster's pairs are left out, it has its own figures).
  copy recall     a copy is found when it is in one group with its original; by edit kind, crops
                  split at 50 % of the area, by crop position, quarter-turn angle, source folder and
                  the number of edits combined.
  groups_split    origins whose files lie in more than one group; the cluster: how many groups.
The similar tier: group sizes on other_shots (a 10-photo landmark group should not become one blob
with another). Timings: build, index, and scan per sensitivity.

--keep DIR builds the library there and keeps it; run again with the same DIR (and options) and it is
reused as built and indexed (the index is only checked for changes), so a tuning loop only pays for
the scans. Another --split/--seed/--limit/--copies/--cluster in a kept DIR is refused unless
--rebuild. Progress goes to stderr; one JSON object to stdout.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import duplicates_truth as truth  # noqa: E402

from imgsim_desktop.core import keeper  # noqa: E402
from imgsim_desktop.core.duplicates import DEFAULT_SENSITIVITY, find_groups  # noqa: E402
from imgsim_desktop.core.engine import Engine  # noqa: E402
from imgsim_desktop.core.library_service import index_now

MANIFEST = "library.json"
DUP_TIERS = ("exact", "duplicate")
LIST_MAX = 20
GOAL = {
    "wrong_removals": 0,
    "other_shots_wrong_removals": 0,
    "pair_recall": 0.97,
    "crop_ge50": 0.95,
    "mirror": 0.95,
    "rotate": 0.95,
    "groups_split": 0,
}


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- building / reusing --------------------------------------------------------------------------


def prepare(root: Path, config: dict, rebuild: bool, other_shots: bool) -> tuple[dict[str, truth.Label], dict[str, truth.Label], dict]:
    """The libraries in ``root`` (lib/ + data/, other_shots/ + other_shots_data/): built here unless a
    complete build with this ``config`` is there. Returns (labels, other_shots labels, manifest)."""
    manifest_path = root / MANIFEST
    old = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
    if old is not None and old.get("config") == config and old.get("complete") and not rebuild:
        if other_shots and not old.get("other_shots"):
            old["other_shots"] = _build_other_shots(root, config)
            manifest_path.write_text(json.dumps(old))
        _log(f"reusing the library in {root} ({len(old['labels'])} files)")
        return truth.labels_from_json(old["labels"]), truth.labels_from_json(old.get("other_shots") or {}), {**old, "reused": True}
    if old is not None and old.get("config") != config and not rebuild:
        sys.exit(f"{root} holds a library built with {old.get('config')}, not {config}: pass --rebuild or another --keep dir")
    if old is None and root.exists() and any(root.iterdir()):
        sys.exit(f"{root} is not empty and holds no {MANIFEST}: not building over it")
    for sub in ("lib", "data", "other_shots", "other_shots_data"):
        shutil.rmtree(root / sub, ignore_errors=True)
    manifest_path.unlink(missing_ok=True)
    root.mkdir(parents=True, exist_ok=True)

    _log(f"building the {config['split']} library in {root / 'lib'}")
    t = time.perf_counter()
    split = None if config["split"] == "all" else config["split"]
    labels = truth.build_library(root / "lib", config["seed"], split, config["copies"], config["limit"], config["cluster"], _log)
    build_s = time.perf_counter() - t
    manifest = {"config": config, "labels": truth.labels_to_json(labels), "build_s": round(build_s, 1), "complete": False}
    manifest_path.write_text(json.dumps(manifest))
    with Engine(root / "data", device="cpu") as engine:
        _log(f"indexing {len(labels)} files")
        t = time.perf_counter()
        report = index_now(engine, [str(root / "lib")])
        manifest["index_s"] = round(time.perf_counter() - t, 1)
        manifest["indexed"] = report.indexed
        manifest["index_errors"] = len(report.errors)
        _log(f"indexed {report.indexed} in {manifest['index_s']}s ({report.indexed / max(manifest['index_s'], 1e-9):.1f}/s)")
    if other_shots:
        manifest["other_shots"] = _build_other_shots(root, config, manifest)
    manifest["complete"] = True
    manifest_path.write_text(json.dumps(manifest))
    return labels, truth.labels_from_json(manifest.get("other_shots") or {}), manifest


def _build_other_shots(root: Path, config: dict, manifest: dict | None = None) -> dict:
    shutil.rmtree(root / "other_shots", ignore_errors=True)
    shutil.rmtree(root / "other_shots_data", ignore_errors=True)
    labels = truth.build_other_shots(root / "other_shots", config["limit"])
    with Engine(root / "other_shots_data", device="cpu") as engine:
        _log(f"indexing the other_shots library ({len(labels)} photos)")
        t = time.perf_counter()
        index_now(engine, [str(root / "other_shots")])
        if manifest is not None:
            manifest["other_shots_index_s"] = round(time.perf_counter() - t, 1)
    return truth.labels_to_json(labels)


# --- scoring -------------------------------------------------------------------------------------


def _name(path: str) -> str:
    return Path(path).name


def removals(groups, labels: dict[str, truth.Label], catalog, rules: keeper.KeeperRules) -> dict:
    """What the keeper rules would delete from the exact + duplicate groups, and which of it is
    another photo (origin not the keeper's)."""
    origin = {n: lab.origin for n, lab in labels.items()}
    wrong, wrong_groups, proposed = [], [], 0
    for g in groups:
        if g.tier not in DUP_TIERS:
            continue
        rows = [r for r in (catalog.photo(m.path) for m in g.members) if r is not None]
        if len(rows) < 2:
            continue
        keep, remove = keeper.choose(rows, rules)
        proposed += len(remove)
        k = _name(keep.path)
        bad = [_name(r.path) for r in remove if origin.get(_name(r.path), _name(r.path)) != origin.get(k, k)]
        if bad:
            wrong += [{"remove": b, "keeper": k} for b in bad]
            wrong_groups.append({"tier": g.tier, "keeper": k, "members": sorted(_name(m.path) for m in g.members)})
    return {
        "wrong_removals": len(wrong),
        "groups_with_wrong": len(wrong_groups),
        "proposed_removals": proposed,
        "wrong": wrong,
        "wrong_groups": wrong_groups,
    }


def pair_scores(groups, labels: dict[str, truth.Label]) -> dict:
    """Pairs of the exact + duplicate groups against the true pairs (the cluster's own pairs aside)."""
    by_origin: dict[str, list[str]] = {}
    for n, lab in labels.items():
        if not lab.cluster:
            by_origin.setdefault(lab.origin, []).append(n)
    true = {frozenset(p) for names in by_origin.values() for p in itertools.combinations(sorted(names), 2)}
    found = set()
    for g in groups:
        if g.tier in DUP_TIERS:
            names = [_name(m.path) for m in g.members]
            found |= {frozenset(p) for p in itertools.combinations(names, 2)}
    cluster = {n for n, lab in labels.items() if lab.cluster}
    found = {p for p in found if not p <= cluster}
    hits = found & true
    false = found - true

    def hard(pair) -> bool:
        a, b = (labels.get(n) for n in pair)
        return a is not None and b is not None and a.group is not None and a.group == b.group

    return {
        "precision": round(len(hits) / len(found), 4) if found else 1.0,
        "recall": round(len(hits) / len(true), 4) if true else 1.0,
        "found": len(found),
        "true": len(true),
        "false": len(false),
        "false_hard_negative": sum(hard(p) for p in false),  # inside an other_shots group / scenes pair
        "false_examples": sorted(sorted(p) for p in false)[:LIST_MAX],
    }


def _buckets(label: truth.Label) -> list[str]:
    out = [f"kind:{k}" for k in label.kinds]
    if label.crop_area is not None:
        out.append("crop_ge50" if label.crop_area >= 0.5 else "crop_lt50")
        out.append(f"crop_pos:{label.crop_pos}")
    if label.rotate is not None:
        out.append(f"rotate:{label.rotate}")
    out.append(f"edits:{len(label.kinds)}" if not label.given else "given")
    out.append(f"folder:{label.folder}")
    return out


def copy_recall(groups, labels: dict[str, truth.Label]) -> dict:
    """A copy is found when it is in one exact/duplicate group with its original."""
    group_of = {}
    for i, g in enumerate(groups):
        if g.tier in DUP_TIERS:
            for m in g.members:
                group_of[_name(m.path)] = i
    stats: dict[str, list[int]] = {}
    missed = []
    for name, label in sorted(labels.items()):
        if label.role != "copy" or label.cluster:
            continue
        hit = name in group_of and group_of[name] == group_of.get(label.source)
        for b in ["all", *_buckets(label)]:
            s = stats.setdefault(b, [0, 0])
            s[0] += 1
            s[1] += hit
        if not hit:
            missed.append(name)
    by = {b: {"n": n, "recall": round(h / n, 4)} for b, (n, h) in sorted(stats.items())}
    # The goal's headline kinds, named plainly.
    for key, bucket in (("mirror", "kind:mirror"), ("rotate", "kind:rotate")):
        if bucket in by:
            by[key] = by[bucket]
    return {"recall": by.get("all", {}).get("recall", 1.0), "by_kind": by, "missed": missed[:LIST_MAX], "missed_count": len(missed)}


def splits(groups, labels: dict[str, truth.Label]) -> dict:
    """Origins whose files are in more than one exact/duplicate group; each cluster's groups."""
    origin = {n: lab.origin for n, lab in labels.items()}
    groups_of: dict[str, dict[int, int]] = {}
    for i, g in enumerate(groups):
        if g.tier in DUP_TIERS:
            for m in g.members:
                o = origin.get(_name(m.path), _name(m.path))
                groups_of.setdefault(o, Counter())[i] += 1
    split = sorted(o for o, gs in groups_of.items() if len(gs) > 1)
    clusters = []
    for o in sorted({lab.origin for lab in labels.values() if lab.cluster}):
        files = sum(lab.origin == o for lab in labels.values())
        sizes = sorted(groups_of.get(o, {}).values(), reverse=True)
        clusters.append({"origin": o, "files": files, "groups": len(sizes), "sizes": sizes, "ungrouped": files - sum(sizes)})
    return {"groups_split": len(split), "split_origins": split[:LIST_MAX], "clusters": clusters}


def similar_sizes(groups) -> dict:
    sizes = [len(g.members) for g in groups if g.tier == "similar"]
    return {"groups": len(sizes), "max": max(sizes, default=0), "sizes": dict(sorted(Counter(sizes).items()))}


def tiers(groups) -> dict:
    return {t: sum(g.tier == t for g in groups) for t in ("exact", "duplicate", "similar")}


# --- the run -------------------------------------------------------------------------------------


def scan_main(engine: Engine, labels, s: float, rules) -> dict:
    t = time.perf_counter()
    groups = find_groups(engine.searcher, s)
    scan_s = time.perf_counter() - t
    return {
        "sensitivity": s,
        **removals(groups, labels, engine.catalog, rules),
        "pairs": pair_scores(groups, labels),
        "copies": copy_recall(groups, labels),
        **splits(groups, labels),
        "tiers": tiers(groups),
        "similar": similar_sizes(groups),
        "scan_s": round(scan_s, 2),
    }


def scan_other_shots(engine: Engine, labels, s: float, rules) -> dict:
    t = time.perf_counter()
    groups = find_groups(engine.searcher, s)
    scan_s = time.perf_counter() - t
    return {
        "sensitivity": s,
        **removals(groups, labels, engine.catalog, rules),
        "tiers": tiers(groups),
        "similar": similar_sizes(groups),
        "scan_s": round(scan_s, 2),
    }


def summary(point: dict, other: dict | None) -> dict:
    """One curve point, without the lists."""
    by = point["copies"]["by_kind"]
    out = {
        "sensitivity": point["sensitivity"],
        "wrong_removals": point["wrong_removals"],
        "groups_with_wrong": point["groups_with_wrong"],
        "proposed_removals": point["proposed_removals"],
        "pair_precision": point["pairs"]["precision"],
        "pair_recall": point["pairs"]["recall"],
        "copy_recall": point["copies"]["recall"],
        "recall": {k: by[k]["recall"] for k in ("crop_ge50", "crop_lt50", "mirror", "rotate") if k in by},
        "groups_split": point["groups_split"],
        "cluster_groups": [c["groups"] for c in point["clusters"]],
        "scan_s": point["scan_s"],
    }
    if other is not None:
        out["other_shots"] = {
            "wrong_removals": other["wrong_removals"],
            "groups_with_wrong": other["groups_with_wrong"],
            "similar_max": other["similar"]["max"],
            "scan_s": other["scan_s"],
        }
    return out


def goal(point: dict, other: dict | None) -> dict:
    by = point["copies"]["by_kind"]
    values = {
        "wrong_removals": point["wrong_removals"],
        "other_shots_wrong_removals": other["wrong_removals"] if other else None,
        "pair_recall": point["pairs"]["recall"],
        "crop_ge50": by.get("crop_ge50", {}).get("recall"),
        "mirror": by.get("mirror", {}).get("recall"),
        "rotate": by.get("rotate", {}).get("recall"),
        "groups_split": point["groups_split"] + sum(c["groups"] != 1 for c in point["clusters"]),
    }
    met = {}
    for k, target in GOAL.items():
        v = values[k]
        met[k] = None if v is None else (v <= target if isinstance(target, int) else v >= target)
    return {
        "targets": GOAL,
        "values": values,
        "met": met,
        "goal_met": all(m is True for m in met.values()),  # a figure not measured (--no-other-shots) is not met
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default="report", choices=["tune", "report", "all"])
    parser.add_argument("--sensitivities", default="0,0.25,0.5,0.75,1")
    parser.add_argument("--keep", help="build the library here and keep it; reused as it is on the next run with the same options")
    parser.add_argument("--rebuild", action="store_true", help="with --keep: build afresh even where a library is kept")
    parser.add_argument("--limit", type=int, help="at most this many units (groups / photos) per split: a small library for a quick check")
    parser.add_argument("--copies", type=int, default=2, help="generated copies per original")
    parser.add_argument("--cluster", type=int, default=truth.CLUSTER_SIZE, help="copies of the cluster photo (0: none)")
    parser.add_argument("--no-other-shots", action="store_true", help="skip the other_shots-only library")
    args = parser.parse_args()
    sens = sorted({float(s) for s in args.sensitivities.split(",")} | {DEFAULT_SENSITIVITY})
    config = {
        "version": truth.LIBRARY_VERSION,
        "seed": args.seed,
        "split": args.split,
        "limit": args.limit,
        "copies": args.copies,
        "cluster": args.cluster,
    }
    other_on = not args.no_other_shots
    rules = keeper.KeeperRules()

    with tempfile.TemporaryDirectory(prefix="imgsim-bench-dupq-") as tmp:
        root = Path(args.keep).resolve() if args.keep else Path(tmp)
        labels, other_labels, manifest = prepare(root, config, args.rebuild, other_on)
        curve, other_curve = [], []
        with Engine(root / "data", device="cpu") as engine:
            t = time.perf_counter()
            check = index_now(engine, [str(root / "lib")])  # a kept library: only checked for changes
            check_s = time.perf_counter() - t
            if check.indexed or check.removed:
                _log(f"the kept library had changed: {check.indexed} indexed, {check.removed} removed")
            model = engine.spec.name
            for s in sens:
                _log(f"scanning at sensitivity {s}")
                curve.append(scan_main(engine, labels, s, rules))
                _log(f"  {summary(curve[-1], None)}")
        if other_on:
            with Engine(root / "other_shots_data", device="cpu") as engine:
                index_now(engine, [str(root / "other_shots")])
                for s in sens:
                    _log(f"scanning other_shots at sensitivity {s}")
                    other_curve.append(scan_other_shots(engine, other_labels, s, rules))
                    _log(f"  wrong removals {other_curve[-1]['wrong_removals']}, similar {other_curve[-1]['similar']}")

    at = sens.index(DEFAULT_SENSITIVITY)
    default, other_default = curve[at], (other_curve[at] if other_on else None)
    default["wrong"] = default["wrong"][:LIST_MAX]
    default["wrong_groups"] = default["wrong_groups"][:LIST_MAX]
    if other_default is not None:
        other_default["wrong"] = other_default["wrong"][:LIST_MAX]
        other_default["wrong_groups"] = other_default["wrong_groups"][: 2 * LIST_MAX]
    roles = Counter(lab.role for lab in labels.values())
    print(
        json.dumps(
            {
                "benchmark": "duplicates_quality",
                "model": model,
                "seed": args.seed,
                "split": args.split,
                "limit": args.limit,
                "library": {
                    "dir": str(root) if args.keep else None,
                    "reused": manifest.get("reused", False),
                    "files": len(labels),
                    "originals": roles["original"],
                    "copies": roles["copy"],
                    "origins": len({lab.origin for lab in labels.values()}),
                    "by_folder": dict(sorted(Counter(lab.folder for lab in labels.values()).items())),
                    "hard_negative_pairs": sum(
                        1
                        for a, b in itertools.combinations([lab for lab in labels.values() if lab.role == "original" and lab.group], 2)
                        if a.group == b.group
                    ),
                    "other_shots_photos": len(other_labels),
                },
                "timing": {
                    "build_s": manifest.get("build_s"),
                    "index_s": manifest.get("index_s"),
                    "other_shots_index_s": manifest.get("other_shots_index_s"),
                    "index_check_s": round(check_s, 1),
                    "scan_s": {str(c["sensitivity"]): c["scan_s"] for c in curve},
                    "other_shots_scan_s": {str(c["sensitivity"]): c["scan_s"] for c in other_curve},
                },
                "default_sensitivity": DEFAULT_SENSITIVITY,
                "goal": goal(default, other_default),
                "default": default,
                "other_shots_default": other_default,
                "curve": [summary(c, o) for c, o in itertools.zip_longest(curve, other_curve)],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

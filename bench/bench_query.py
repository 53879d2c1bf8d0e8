"""k-NN query latency, recall and memory through the real index code, on synthetic embeddings.

    python bench/bench_query.py [--sizes 100000,1000000] [--dim 1280] [--queries 500] [--out FILE]

For each size: generates random clustered unit vectors (topics -> clusters -> items, each level a
gaussian around its parent, L2-normalised), builds an index with AnnoyStore.build (own process:
its peak RSS), then, each in its own process so that peak RSS is the query process's own, loads
it with AnnoyStore.load() and times AnnIndex.query(vector, k=50) in three variants:
  plain        the Annoy index alone (empty delta, no stale ids)
  delta        1,000 exact delta vectors and 100 stale ids, a normal state between rebuilds
  pre_rebuild  1,000 delta vectors and as many stale ids as Searcher.needs_rebuild() still allows:
               the worst case a user can hit before the index is rebuilt
Queries are perturbed copies of dataset vectors (like a re-saved or edited photo), never the
vectors themselves. Recall@50 is measured on the first --recall-queries of them against exact
top-50 computed by streaming over the regenerated chunks (every chunk is generated from its own
seed, so nothing needs the whole dataset in memory). Each variant runs --rounds times, rounds
interleaved, and the median of the rounds' percentiles is reported: the machine may be shared.
Peak RSS (ru_maxrss) counts the index pages the queries touched through Annoy's mmap: file-backed,
shared with the page cache and reclaimable; rss_end_anon_mb is the query process's own memory.
Prints one JSON object; progress goes to stderr.

--sweep runs every variant again with explicit search_k budgets, to show what recall and
latency other budgets would buy; --n-trees overrides trees_for() to compare tree counts.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

K = 50
MODEL = "bench-synthetic"
GOAL_P95_MS_100K = 10.0
N_DELTA = 1_000
N_STALE = 100
WARMUP = 20

# The shape of the synthetic embedding space, as the expected cosine of a vector to its parent.
# Items of one cluster then score about 0.72 with each other (a burst of similar shots), items of
# one topic about 0.35 (same kind of scene), unrelated items about 0; a query scores about 0.95
# with the item it was made from (a near-duplicate).
N_TOPICS = 200
N_CLUSTERS = 4_000
COS_CLUSTER_TO_TOPIC = 0.70
COS_ITEM_TO_CLUSTER = 0.85
COS_QUERY_TO_ITEM = 0.95
CHUNK = 20_000


def _unit(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def _sigma(cos: float, dim: int) -> float:
    """Per-coordinate noise that puts normalise(parent + noise) at `cos` from a unit parent."""
    return math.tan(math.acos(cos)) / math.sqrt(dim)


class Corpus:
    """n clustered unit vectors in chunks; chunk c is a pure function of (seed, c)."""

    def __init__(self, n: int, dim: int, seed: int, item_cos: float = COS_ITEM_TO_CLUSTER) -> None:
        self.n, self.dim, self.seed, self.item_cos = n, dim, seed, item_cos
        rng = np.random.default_rng((seed, 0))
        topics = _unit(rng.standard_normal((N_TOPICS, dim), dtype=np.float32))
        parent = rng.integers(N_TOPICS, size=N_CLUSTERS)
        noise = rng.standard_normal((N_CLUSTERS, dim), dtype=np.float32)
        self.centres = _unit(topics[parent] + _sigma(COS_CLUSTER_TO_TOPIC, dim) * noise)
        weights = rng.lognormal(0.0, 1.0, N_CLUSTERS)  # uneven cluster sizes, like real collections
        self.weights = weights / weights.sum()

    @property
    def n_chunks(self) -> int:
        return -(-self.n // CHUNK)

    def _items(self, count: int, rng: np.random.Generator) -> np.ndarray:
        labels = rng.choice(N_CLUSTERS, size=count, p=self.weights)
        noise = rng.standard_normal((count, self.dim), dtype=np.float32)
        noise *= _sigma(self.item_cos, self.dim)
        noise += self.centres[labels]
        return _unit(noise)

    def chunk(self, c: int) -> tuple[np.ndarray, np.ndarray]:
        start, stop = c * CHUNK, min(self.n, (c + 1) * CHUNK)
        return np.arange(start, stop, dtype=np.int64), self._items(stop - start, np.random.default_rng((self.seed, 1, c)))

    def delta(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Vectors added after the build: same distribution, ids after the indexed ones."""
        return np.arange(self.n, self.n + count, dtype=np.int64), self._items(count, np.random.default_rng((self.seed, 2)))


def _log(msg: str) -> None:
    print(f"[bench_query {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _proc_status_mb() -> dict:
    """Current resident memory split into anonymous and file-backed (mmapped index) pages; Linux only."""
    out = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                    out[key] = round(int(value.split()[0]) / 1024, 1)
    except OSError:
        pass
    return out


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)  # bytes on macOS, KiB on Linux


# --- child processes -------------------------------------------------------------------------


def child_build(work: Path, n: int, dim: int, seed: int, n_trees: int | None) -> None:
    from imgsim_desktop.storage.annoy_store import AnnoyStore

    corpus = Corpus(n, dim, seed)
    gen_s = 0.0
    added_at = 0.0

    def chunks():
        # Generation runs inside build()'s loop; its time is measured so that it can be taken out.
        nonlocal gen_s, added_at
        for c in range(corpus.n_chunks):
            t = time.perf_counter()
            item = corpus.chunk(c)
            gen_s += time.perf_counter() - t
            yield item
            if c % 10 == 9:
                _log(f"  added {min(n, (c + 1) * CHUNK):,} items")
        added_at = time.perf_counter()  # build() asks for the next chunk once it has added them all

    store = AnnoyStore(work / "index", MODEL, dim)
    start = time.perf_counter()
    meta = store.build(chunks(), n_trees=n_trees, n_jobs=-1)
    end = time.perf_counter()
    files = [store.dir / meta["ann"], store.dir / meta["ids"]]
    result = {
        "build_s": round(end - start - gen_s, 2),
        "add_items_s": round(added_at - start - gen_s, 2),
        "trees_s": round(end - added_at, 2),  # Annoy tree building plus fsync and the ids file
        "generate_s": round(gen_s, 2),
        "n_trees": meta["n_trees"],
        "count": meta["count"],
        "index_mb": round(sum(f.stat().st_size for f in files) / 1e6, 1),
        "rss_build_mb": _peak_rss_mb(),
    }
    print(json.dumps(result))


def child_query(work: Path, dim: int, variant: str, search_ks: list[int | None], n_timed: int, n_recall: int) -> None:
    from imgsim_desktop.core.search import AnnIndex
    from imgsim_desktop.storage.annoy_store import AnnoyStore

    queries = np.load(work / "queries.npy")
    if variant == "plain":
        delta_ids, delta_vecs, stale = np.zeros(0, np.int64), np.zeros((0, dim), np.float32), set()
    else:
        delta_ids, delta_vecs = np.load(work / "delta_ids.npy"), np.load(work / "delta_vecs.npy")
        stale = set(np.load(work / f"stale_{variant}.npy").tolist())
    before_load = _proc_status_mb()
    loaded = AnnoyStore(work / "index", MODEL, dim).load()
    assert loaded is not None, "index did not load"
    ann = AnnIndex(loaded, delta_ids, delta_vecs, stale)

    runs = []
    first_ms = None
    for search_k in search_ks:
        for i, q in enumerate(queries[-WARMUP:]):  # the parent makes WARMUP extra queries, never timed
            t = time.perf_counter()
            ann.query(q, K, search_k)
            if first_ms is None and i == 0:
                first_ms = (time.perf_counter() - t) * 1e3  # first query after load: mmap page faults
        lat, hits = [], []
        for i, q in enumerate(queries[: max(n_timed, n_recall)]):  # the recall queries are the first ones
            t = time.perf_counter()
            result = ann.query(q, K, search_k)
            if i < n_timed:
                lat.append((time.perf_counter() - t) * 1e3)
            if i < n_recall:
                hits.append([h.vector_id for h in result])
        runs.append({"search_k": search_k, "latency_ms": lat, "hits": hits})
    print(
        json.dumps(
            {
                "runs": runs,
                "n_trees": loaded.n_trees,
                "first_query_ms": round(first_ms, 2),
                "rss_query_mb": _peak_rss_mb(),
                "status_before_load_mb": before_load,
                "status_end_mb": _proc_status_mb(),
            }
        )
    )


def _run_child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(out.stdout)


# --- parent ----------------------------------------------------------------------------------


class ExactTopK:
    """Running exact top-k per query over streamed (ids, scores) blocks, with some ids excluded."""

    def __init__(self, n_queries: int, k: int, exclude: np.ndarray | None = None) -> None:
        self.k = k
        self.exclude = exclude
        self.ids = np.zeros((n_queries, 0), np.int64)
        self.scores = np.zeros((n_queries, 0), np.float32)

    def add(self, ids: np.ndarray, scores: np.ndarray) -> None:
        if self.exclude is not None:
            scores = np.where(np.isin(ids, self.exclude)[None, :], -np.inf, scores)
        all_scores = np.concatenate([self.scores, scores], axis=1)
        all_ids = np.concatenate([self.ids, np.broadcast_to(ids, scores.shape)], axis=1)
        top = np.argpartition(-all_scores, self.k - 1, axis=1)[:, : self.k]
        self.scores = np.take_along_axis(all_scores, top, axis=1)
        self.ids = np.take_along_axis(all_ids, top, axis=1)

    def top(self) -> list[set[int]]:
        return [set(row.tolist()) for row in self.ids]


def _pct(lat: list[float]) -> dict:
    p50, p95, p99 = np.percentile(lat, [50, 95, 99])
    return {
        "p50_ms": round(float(p50), 2),
        "p95_ms": round(float(p95), 2),
        "p99_ms": round(float(p99), 2),
        "mean_ms": round(float(np.mean(lat)), 2),
        "max_ms": round(float(np.max(lat)), 2),
        "timed_queries": len(lat),
    }


def _recall(hits: list[list[int]], exact: list[set[int]]) -> float:
    return round(float(np.mean([len(set(h) & e) / K for h, e in zip(hits, exact, strict=True)])), 4)


def bench_size(n: int, args: argparse.Namespace) -> dict:
    from imgsim_desktop.core.search import REBUILD_FRACTION, REBUILD_MIN

    dim, seed = args.dim, args.seed
    corpus = Corpus(n, dim, seed)
    rng = np.random.default_rng((seed, 3))
    with tempfile.TemporaryDirectory(prefix="imgsim-bench-query-") as tmp:
        work = Path(tmp)
        _log(f"n={n:,} dim={dim}: building in {work}")
        build = _run_child(
            ["--child", "build", "--work", tmp, "--n", str(n), "--dim", str(dim), "--seed", str(seed)]
            + (["--n-trees", str(args.n_trees)] if args.n_trees else [])
        )
        _log(f"  built: {build}")

        # Queries: perturbed copies of random dataset items, found by regenerating their chunks.
        n_queries = args.queries
        sources = rng.choice(n, size=n_queries + WARMUP, replace=False)
        queries = np.empty((len(sources), dim), np.float32)
        for c in np.unique(sources // CHUNK):
            ids, vecs = corpus.chunk(int(c))
            at = np.nonzero(sources // CHUNK == c)[0]
            queries[at] = vecs[sources[at] - ids[0]]
        queries += _sigma(COS_QUERY_TO_ITEM, dim) * rng.standard_normal(queries.shape, dtype=np.float32)
        queries = _unit(queries)
        np.save(work / "queries.npy", queries)

        delta_ids, delta_vecs = corpus.delta(N_DELTA)
        np.save(work / "delta_ids.npy", delta_ids)
        np.save(work / "delta_vecs.npy", delta_vecs)
        # Searcher.needs_rebuild() fires once delta + stale reaches this; one below is the most a query can face.
        pending_max = math.ceil(max(REBUILD_MIN, REBUILD_FRACTION * n)) - 1
        stale = {
            "delta": np.sort(rng.choice(n, size=N_STALE, replace=False)),
            "pre_rebuild": np.sort(rng.choice(n, size=max(0, pending_max - N_DELTA), replace=False)),
        }
        for name, ids in stale.items():
            np.save(work / f"stale_{name}.npy", ids)

        # Exact top-50 for the recall queries, per variant, streaming over the regenerated chunks.
        n_recall = min(args.recall_queries, n_queries)
        rq = queries[:n_recall]
        exact = {"plain": ExactTopK(n_recall, K), **{v: ExactTopK(n_recall, K, s) for v, s in stale.items()}}
        t = time.perf_counter()
        for c in range(corpus.n_chunks):
            ids, vecs = corpus.chunk(c)
            scores = rq @ vecs.T
            for tracker in exact.values():
                tracker.add(ids, scores)
        for v in stale:
            exact[v].add(delta_ids, rq @ delta_vecs.T)
        truth = {v: tracker.top() for v, tracker in exact.items()}
        _log(f"  exact top-{K} for {n_recall} queries in {time.perf_counter() - t:.1f}s")

        common = ["--work", tmp, "--dim", str(dim), "--recall-queries", str(n_recall)]
        timed = {"plain": n_queries, "delta": n_queries, "pre_rebuild": min(n_queries, args.worst_queries)}
        results = {v: [] for v in timed}
        for r in range(args.rounds):  # interleaved, so that drift on a shared machine hits every variant alike
            for variant, n_timed in timed.items():
                _log(f"  round {r + 1}/{args.rounds}: {variant}, {n_timed} timed queries")
                results[variant].append(_run_child(["--child", "query", "--variant", variant, "--timed", str(n_timed), *common]))
        variants = {}
        for variant, rounds in results.items():
            per_round = [_pct(res["runs"][0]["latency_ms"]) for res in rounds]
            variants[variant] = {
                "n_delta": 0 if variant == "plain" else N_DELTA,
                "n_stale": len(stale[variant]) if variant in stale else 0,
                # Median over rounds: one round disturbed by a neighbour on the machine does not decide.
                **{key: round(statistics.median(p[key] for p in per_round), 2) for key in per_round[0] if key != "timed_queries"},
                "timed_queries": timed[variant],
                "p95_ms_per_round": [p["p95_ms"] for p in per_round],
                "first_query_ms": round(statistics.median(res["first_query_ms"] for res in rounds), 2),
                "recall_at_50": round(statistics.mean(_recall(res["runs"][0]["hits"], truth[variant]) for res in rounds), 4),
                "rss_query_mb": max(res["rss_query_mb"] for res in rounds),
                "rss_before_load_mb": rounds[0]["status_before_load_mb"].get("VmRSS"),
                "rss_end_anon_mb": rounds[0]["status_end_mb"].get("RssAnon"),
                "rss_end_file_mb": rounds[0]["status_end_mb"].get("RssFile"),  # mmapped index pages: shared, reclaimable
            }
            _log(f"    {variant}: {variants[variant]}")

        # Explicit budgets in a process of their own, so that they do not inflate the variants' peak RSS.
        sweep = {}
        if args.sweep:
            for variant, n_timed in timed.items():
                n_timed = min(n_timed, 200)
                _log(f"  sweeping search_k {args.sweep} on {variant}, {n_timed} timed queries each")
                res = _run_child(["--child", "query", "--variant", variant, "--timed", str(n_timed), "--search-k", args.sweep, *common])
                sweep[variant] = [
                    {"search_k": run["search_k"], **_pct(run["latency_ms"]), "recall_at_50": _recall(run["hits"], truth[variant])}
                    for run in res["runs"]
                ]
                for row in sweep[variant]:
                    _log(f"    {row}")

    plain = variants["plain"]
    result = {
        "size": n,
        "dim": dim,
        **build,
        "p50_ms": plain["p50_ms"],
        "p95_ms": plain["p95_ms"],
        "p99_ms": plain["p99_ms"],
        "recall_at_50": plain["recall_at_50"],
        "rss_query_mb": plain["rss_query_mb"],
        "variants": variants,
    }
    if sweep:
        result["search_k_sweep"] = sweep
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated index sizes")
    parser.add_argument("--dim", type=int, default=1280, help="embedding size (1280: the default model)")
    parser.add_argument("--queries", type=int, default=500, help="timed queries per variant")
    parser.add_argument("--recall-queries", type=int, default=50, help="queries checked against exact top-50")
    parser.add_argument("--worst-queries", type=int, default=50, help="timed queries for the slow pre_rebuild variant")
    parser.add_argument("--rounds", type=int, default=3, help="query processes per variant, interleaved; medians reported")
    parser.add_argument("--n-trees", type=int, help="override trees_for()")
    parser.add_argument("--sweep", help="comma-separated search_k budgets to try on each variant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="also write the JSON here")
    # Child-process plumbing.
    parser.add_argument("--child", choices=["build", "query"], help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--timed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--search-k", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child == "build":
        child_build(Path(args.work), args.n, args.dim, args.seed, args.n_trees)
        return
    if args.child == "query":
        search_ks = [int(s) for s in args.search_k.split(",")] if args.search_k else [None]
        child_query(Path(args.work), args.dim, args.variant, search_ks, args.timed, args.recall_queries)
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    results = [bench_size(n, args) for n in sizes]
    at_100k = next((r for r in results if r["size"] == 100_000), None)
    # The goal is judged on the two states a user normally queries in: a fresh index and one with a normal delta.
    p95_100k = max(at_100k["variants"][v]["p95_ms"] for v in ("plain", "delta")) if at_100k else None
    report = {
        "benchmark": "query",
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "params": {
            "sizes": sizes,
            "dim": args.dim,
            "k": K,
            "queries": args.queries,
            "recall_queries": args.recall_queries,
            "worst_queries": args.worst_queries,
            "rounds": args.rounds,
            "warmup_queries": WARMUP,
            "n_trees_override": args.n_trees,
            "n_jobs": -1,
            "seed": args.seed,
            "data": {
                "topics": N_TOPICS,
                "clusters": N_CLUSTERS,
                "cos_cluster_to_topic": COS_CLUSTER_TO_TOPIC,
                "cos_item_to_cluster": COS_ITEM_TO_CLUSTER,
                "cos_query_to_item": COS_QUERY_TO_ITEM,
            },
            "delta": N_DELTA,
            "stale": N_STALE,
        },
        "results": results,
        "goal_p95_ms_100k": GOAL_P95_MS_100K,
        "p95_ms_100k": p95_100k,
        "goal_met": None if p95_100k is None else p95_100k <= GOAL_P95_MS_100K,
        "goal_basis": "max p95 of the plain and delta variants at 100k, dim as given",
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()

"""Collection map cost by library size: fingerprint, PCA + t-SNE (compute_map), cache hit, tidy grid.

    python bench/bench_map.py [--sizes 1000,3000,10000,30000] [--library DATA_DIR --model NAME]

Synthetic libraries hold clustered unit vectors (1280-d, like EfficientNet's) in a real catalog
in a temp dir, so reading and fingerprinting are measured too; ``--library`` adds a real one
(read only; its map cache goes to a temp dir). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from imgsim_desktop.research import collection_map as cmap
from imgsim_desktop.storage.catalog import Catalog, Embedded


def clustered(n: int, dim: int = 1280, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(2, n // 50), dim))
    vecs = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.normal(size=(n, dim))
    return (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)


def measure(catalog: Catalog, model: str, cache: Path) -> dict:
    t = time.perf_counter()
    cmap.library_fingerprint(catalog, model)
    fingerprint_s = time.perf_counter() - t
    t = time.perf_counter()
    first = cmap.load_or_compute(cache, catalog, model)
    compute_s = time.perf_counter() - t
    t = time.perf_counter()
    cmap.load_or_compute(cache, catalog, model)
    cached_s = time.perf_counter() - t
    t = time.perf_counter()
    cells = cmap.grid_snap(first.xy)
    grid_s = time.perf_counter() - t
    assert len(np.unique(cells, axis=0)) == len(cells)
    return {
        "photos": len(first.paths),
        "fingerprint_s": round(fingerprint_s, 3),
        "compute_map_s": round(compute_s, 2),
        "tsne_sampled": first.sampled,
        "cache_hit_s": round(cached_s, 3),
        "grid_snap_s": round(grid_s, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,3000,10000,30000")
    ap.add_argument("--library", type=Path)
    ap.add_argument("--model", default="efficientnet-lite0")
    args = ap.parse_args()
    out = {"tsne_limit": cmap.TSNE_LIMIT, "tsne_iterations": cmap.TSNE_ITERATIONS, "grid_exact_limit": cmap.GRID_EXACT_LIMIT, "runs": []}
    with tempfile.TemporaryDirectory(prefix="imgsim-bench-map-") as tmp:
        if args.library:
            with Catalog(args.library / "catalog.sqlite3") as catalog:
                out["runs"].append({"library": str(args.library), "model": args.model, **measure(catalog, args.model, Path(tmp) / "real")})
                print(json.dumps(out["runs"][-1]), flush=True)
        for n in [int(s) for s in args.sizes.split(",") if s]:
            with Catalog(Path(tmp) / f"lib{n}" / "catalog.sqlite3") as catalog:
                vecs = clustered(n, seed=n)
                for start in range(0, n, 2000):
                    batch = [Embedded(f"/synthetic/{i:07d}.jpg", 1000 + i, i, vecs[i]) for i in range(start, min(n, start + 2000))]
                    catalog.store_batch("synthetic", batch)
                out["runs"].append({"synthetic": n, **measure(catalog, "synthetic", Path(tmp) / f"maps{n}")})
                print(json.dumps(out["runs"][-1]), flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()

"""A 2-D map of the library: PCA to ~50 dimensions, then t-SNE (scikit-learn), cached until the
library's vectors change; and a tidy-grid variant with one photo per cell.

Sizes (README, "Research tools"; bench/bench_map.py): t-SNE is Barnes-Hut, O(n log n) but
with a large constant, so above ``TSNE_LIMIT`` photos it runs on a seeded sample and every other
photo is placed at the distance-weighted mean of its nearest sampled neighbours (in PCA space).
The result is the same picture at a bounded cost; neighbours still land next to each other.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgsim_desktop.core.progress import Progress
from imgsim_desktop.storage.catalog import Catalog

MAP_FORMAT = 1  # bump when the computation changes: old caches are then recomputed
TSNE_LIMIT = 10_000  # t-SNE on at most this many points (a sample beyond), see the module note
TSNE_ITERATIONS = 500  # sklearn's default 1000 doubles the time for a map that barely changes after ~500
PLACE_NEIGHBOURS = 5
GRID_EXACT_LIMIT = 1_500  # optimal assignment up to here (clustered maps: ~1 s; 2,400 took 10 s); banded above
GRID_BAND_POINTS = 1_000


@dataclass
class CollectionMap:
    model: str
    paths: list[str]
    xy: np.ndarray  # (n, 2) float32 in [0, 1], aspect ratio kept (the shorter axis is centred)
    fingerprint: str
    seconds: float = 0.0  # time the computation took (0 when it came from the cache)
    sampled: bool = False  # t-SNE ran on a sample of TSNE_LIMIT photos, the rest were placed by neighbours


def library_fingerprint(catalog: Catalog, model: str) -> str:
    """Changes whenever the library's vectors for ``model`` change. Vector ids are never reused and
    a changed file gets a new vector, so ids catch additions, removals and edits; paths catch
    moves and renames, which keep their vector."""
    ids = catalog.vector_ids(model)
    names = catalog.paths_for_vectors(ids.tolist())
    digest = hashlib.sha256(f"{MAP_FORMAT}:{model}:{len(ids)}".encode())
    digest.update(ids.tobytes())
    digest.update("\0".join(names.get(i, "") for i in ids.tolist()).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def compute_map(catalog: Catalog, model: str, progress: Progress | None = None, seed: int = 0, pca_dims: int = 50) -> CollectionMap:
    """The map of every photo embedded with ``model``; cancellable between stages (not inside t-SNE)."""
    progress = progress or Progress()
    started = time.perf_counter()
    fingerprint = library_fingerprint(catalog, model)
    progress.report(0, 3, "reading vectors", force=True)
    chunks = list(catalog.iter_vectors(model))
    ids = np.concatenate([c[0] for c in chunks]) if chunks else np.zeros(0, np.int64)
    vectors = np.concatenate([c[1] for c in chunks]) if chunks else np.zeros((0, 1), np.float32)
    names = catalog.paths_for_vectors(ids.tolist())
    keep = np.array([int(i) in names for i in ids], bool)  # a file removed while we read
    paths = [names[int(i)] for i in ids[keep]]
    xy, sampled = layout_2d(vectors[keep], seed=seed, pca_dims=pca_dims, progress=progress)
    progress.report(3, 3, "done", force=True)
    return CollectionMap(model, paths, xy, fingerprint, time.perf_counter() - started, sampled)


def layout_2d(vectors: np.ndarray, seed: int = 0, pca_dims: int = 50, progress: Progress | None = None) -> tuple[np.ndarray, bool]:
    """(n, d) vectors -> ((n, 2) float32 in [0, 1], whether t-SNE ran on a sample)."""
    progress = progress or Progress()
    n = len(vectors)
    if n == 0:
        return np.zeros((0, 2), np.float32), False
    if n == 1:
        return np.full((1, 2), 0.5, np.float32), False
    from sklearn.decomposition import PCA

    progress.check()
    progress.report(1, 3, f"PCA of {n} photos", force=True)
    dims = max(2, min(pca_dims, n, vectors.shape[1]))
    reduced = PCA(dims, random_state=seed).fit_transform(np.asarray(vectors, np.float32))
    if n <= 4:  # t-SNE needs perplexity < n; for a handful of photos the PCA plane says it all
        return _unit_square(reduced[:, :2]), False
    progress.check()
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, TSNE_LIMIT, replace=False)) if n > TSNE_LIMIT else np.arange(n)
    progress.report(2, 3, f"t-SNE of {len(sample)} photos", force=True)
    embedded = _tsne(reduced[sample], seed)
    if len(sample) == n:
        return _unit_square(embedded), False
    progress.check()
    return _unit_square(_place_rest(reduced, sample, embedded)), True


def _tsne(points: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.manifold import TSNE

    # sklearn's default perplexity (30) needs n > 30; small libraries get a third of n, which keeps
    # each photo's neighbourhood local without exceeding what the data has.
    perplexity = float(min(30.0, max(2.0, (len(points) - 1) / 3)))
    tsne = TSNE(2, perplexity=perplexity, init="pca", learning_rate="auto", max_iter=TSNE_ITERATIONS, random_state=seed)
    return tsne.fit_transform(points)


def _place_rest(reduced: np.ndarray, sample: np.ndarray, embedded: np.ndarray) -> np.ndarray:
    """Photos outside the t-SNE sample go to the weighted mean of their nearest sampled photos."""
    from sklearn.neighbors import NearestNeighbors

    out = np.zeros((len(reduced), 2), np.float64)
    out[sample] = embedded
    rest = np.setdiff1d(np.arange(len(reduced)), sample, assume_unique=True)
    dist, nearest = NearestNeighbors(n_neighbors=PLACE_NEIGHBOURS).fit(reduced[sample]).kneighbors(reduced[rest])
    weights = 1.0 / np.maximum(dist, 1e-6)
    out[rest] = (embedded[nearest] * weights[..., None]).sum(axis=1) / weights.sum(axis=1, keepdims=True)
    return out


def _unit_square(xy: np.ndarray) -> np.ndarray:
    """Scale into [0, 1] by one factor for both axes (t-SNE distances mean the same both ways)."""
    xy = np.asarray(xy, np.float64)
    low, high = xy.min(axis=0), xy.max(axis=0)
    span = float((high - low).max())
    if span <= 0:
        return np.full(xy.shape, 0.5, np.float32)
    scaled = (xy - low) / span
    scaled += (1.0 - scaled.max(axis=0)) / 2  # centre the shorter axis
    return scaled.astype(np.float32)


# --- cache --------------------------------------------------------------------------------------


def _cache_file(cache_dir: Path, model: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", model)  # user-added model names may hold anything
    return Path(cache_dir) / f"map-{safe}.npz"


def load_or_compute(cache_dir: Path, catalog: Catalog, model: str, progress: Progress | None = None) -> CollectionMap:
    """The cached map while the library's vectors for ``model`` are unchanged, else a new one (then cached)."""
    fingerprint = library_fingerprint(catalog, model)
    cached = _read_cache(_cache_file(cache_dir, model), model, fingerprint)
    if cached is not None:
        return cached
    fresh = compute_map(catalog, model, progress)
    _write_cache(_cache_file(cache_dir, model), fresh)
    return fresh


def _read_cache(path: Path, model: str, fingerprint: str) -> CollectionMap | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["fingerprint"]) != fingerprint or str(data["model"]) != model:
                return None
            return CollectionMap(
                model, [str(p) for p in data["paths"]], data["xy"].astype(np.float32), fingerprint, 0.0, bool(data["sampled"])
            )
    except (OSError, KeyError, ValueError):  # missing, damaged or from an older layout: recompute
        return None


def _write_cache(path: Path, found: CollectionMap) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(
        buf,
        model=np.array(found.model),
        fingerprint=np.array(found.fingerprint),
        paths=np.array(found.paths, dtype=str) if found.paths else np.zeros(0, dtype="<U1"),
        xy=found.xy,
        sampled=np.array(found.sampled),
    )
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)  # a crash mid-write leaves the old cache, never half a file


# --- tidy grid ----------------------------------------------------------------------------------


def grid_snap(xy: np.ndarray, columns: int | None = None) -> np.ndarray:
    """One grid cell per point, (n, 2) ints (column, row; rows grow with y), neighbours kept together.

    Up to GRID_EXACT_LIMIT points this is the optimal assignment (least total squared move,
    scipy's linear_sum_assignment, O(n^3)). Beyond, the points are sorted by y and cut into bands
    of whole grid rows (~GRID_BAND_POINTS points each), each band solved optimally on its own:
    the top-to-bottom order is kept exactly, left-to-right is optimal within each band, and the
    cost grows linearly with n (100k points: ~20 s on 2 cores, where the full problem would not finish).
    """
    from scipy.optimize import linear_sum_assignment

    xy = np.asarray(xy, np.float64)
    n = len(xy)
    if n == 0:
        return np.zeros((0, 2), np.int64)
    low, span = xy.min(axis=0), np.maximum(np.ptp(xy, axis=0), 1e-9)
    if columns is None:
        aspect = float(np.clip(span[0] / span[1], 0.25, 4.0))  # a wide map gets a wide grid
        columns = max(1, int(np.ceil(np.sqrt(n * aspect))))
    columns = max(1, min(columns, n))
    rows = int(np.ceil(n / columns))
    unit = (xy - low) / span * [columns, rows]  # grid coordinates: cell (c, r) has its centre at (c + .5, r + .5)

    cells = np.zeros((n, 2), np.int64)
    band_rows = rows if n <= GRID_EXACT_LIMIT else max(1, GRID_BAND_POINTS // columns)
    order = np.argsort(unit[:, 1], kind="stable")
    for first_row in range(0, rows, band_rows):
        members = order[first_row * columns : (first_row + band_rows) * columns]
        if len(members) == 0:
            break
        band = unit[members].copy()
        last_row = min(rows, first_row + band_rows)
        if band_rows < rows:  # stretch the band's points over its own rows, so y still orders them inside it
            y = band[:, 1]
            band[:, 1] = first_row + (y - y.min()) / max(float(np.ptp(y)), 1e-9) * (last_row - first_row)
        grid_c, grid_r = np.meshgrid(np.arange(columns), np.arange(first_row, last_row))
        centres = np.stack([grid_c.ravel(), grid_r.ravel()], axis=1)
        cost = ((band[:, None, :] - (centres[None] + 0.5)) ** 2).sum(axis=-1)
        point, cell = linear_sum_assignment(cost)
        cells[members[point]] = centres[cell]
    return cells

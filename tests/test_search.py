"""Search is correct with and without Annoy, with a delta of new vectors and stale deleted ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import PHOTOS, copy_photos
from imgsim_desktop.core import search as search_mod
from imgsim_desktop.core.engine import Engine
from imgsim_desktop.core.library_service import index_now
from imgsim_desktop.core.search import AnnIndex, _top_exact
from imgsim_desktop.storage.annoy_store import AnnoyStore


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(2, n // 20), dim))
    vecs = centres[rng.integers(0, len(centres), n)] + 0.3 * rng.normal(size=(n, dim))
    return (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)


def test_annoy_plus_delta_minus_stale_matches_exact_search(tmp_path):
    dim, n = 64, 3000
    vecs = clustered(n + 200, dim, seed=1)
    ids = np.arange(10, 10 + n + 200, dtype=np.int64)  # vector ids need not start at 0
    store = AnnoyStore(tmp_path, "m", dim)
    store.build([(ids[:n], vecs[:n])])
    stale = set(ids[:n:7].tolist())  # deleted since the build
    ann = AnnIndex(store.load(), ids[n:], vecs[n:], stale)
    live = np.array([i not in stale for i in ids])
    queries = clustered(50, dim, seed=2)
    recalls = []
    for q in queries:
        got = ann.query(q, 20)
        want = _top_exact(vecs[live], ids[live], q, 20)
        assert not {h.vector_id for h in got} & stale
        assert [h.score for h in got] == sorted((h.score for h in got), reverse=True)
        recalls.append(len({h.vector_id for h in got} & {h.vector_id for h in want}) / 20)
        # Scores are true cosines, whichever part a hit came from.
        for h in got[:3]:
            assert h.score == pytest.approx(float(vecs[h.vector_id - 10] @ q), abs=1e-4)
    assert np.mean(recalls) >= 0.95
    # A vector added after the build (delta) is found exactly.
    top = ann.query(vecs[n + 5], 1)[0]
    assert top.vector_id == ids[n + 5] and top.score == pytest.approx(1.0, abs=1e-5)


def test_new_generation_replaces_old_atomically_and_failed_build_keeps_old(tmp_path):
    dim = 16
    store = AnnoyStore(tmp_path, "model/with:odd chars", dim)
    first = store.build([(np.arange(100), clustered(100, dim, 3))])
    assert store.load().ids.tolist() == list(range(100))

    def broken_chunks():
        yield np.arange(50), clustered(50, dim, 4)
        raise RuntimeError("killed mid-build")

    with pytest.raises(RuntimeError):
        store.build(broken_chunks())
    loaded = store.load()
    assert loaded is not None and loaded.generation == first["generation"] and len(loaded.ids) == 100
    second = store.build([(np.arange(500, 520), clustered(20, dim, 5))])
    assert second["generation"] == first["generation"] + 1
    assert store.load().ids.tolist() == list(range(500, 520))
    # Only the current generation's files remain; the pointer names them.
    pointer = json.loads(store.pointer.read_text())
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix not in (".json", ".lock")) == sorted([pointer["ann"], pointer["ids"]])


def test_library_search_uses_annoy_then_stays_correct_as_files_change(tmp_path, data_dir, monkeypatch):
    monkeypatch.setattr(search_mod, "EXACT_LIMIT", 5)  # force the Annoy path on a small real library
    lib = tmp_path / "lib"
    copy_photos(lib, [f"aib/{i}.jpg" for i in range(30)] + ["ukbench/ukbench00120.jpg", "ukbench/ukbench00120_hflip.jpg"])
    with Engine(data_dir) as engine:
        index_now(engine, [str(lib)])
        assert engine.searcher.ann.loaded is not None, "an Annoy index should have been built"
        first = engine.similar(lib / "ukbench00120.jpg", k=3)
        assert Path(first[0].path).name == "ukbench00120_hflip.jpg"

        # Added after the build: searched exactly beside Annoy until the next rebuild.
        copy_photos(lib, ["ukbench/ukbench00120_resize.jpg"])
        index_now(engine, [str(lib)], rebuild=False)
        engine.searcher.refresh()
        assert len(engine.searcher.ann.delta_ids) == 1
        names = [Path(r.path).name for r in engine.similar(lib / "ukbench00120.jpg", k=3)]
        assert names[:2] == ["ukbench00120_hflip.jpg", "ukbench00120_resize.jpg"]

        # Deleted after the build: never returned, though still inside the Annoy file.
        (lib / "ukbench00120_hflip.jpg").unlink()
        index_now(engine, [str(lib)], rebuild=False)
        engine.searcher.refresh()
        assert len(engine.searcher.ann.stale) == 1
        names = [Path(r.path).name for r in engine.similar(lib / "ukbench00120.jpg", k=3)]
        assert "ukbench00120_hflip.jpg" not in names and names[0] == "ukbench00120_resize.jpg"


def test_outside_query_photo_is_embedded_on_the_fly(tmp_path, data_dir):
    lib = tmp_path / "lib"
    copy_photos(lib, ["ukbench/ukbench00120.jpg", "labelled/dog.jpg", "labelled/pelican.jpg", "scenes/fruits.jpg"])
    with Engine(data_dir) as engine:
        index_now(engine, [str(lib)])
        results = engine.similar(PHOTOS / "ukbench/ukbench00120_resize.jpg", k=4)
    assert Path(results[0].path).name == "ukbench00120.jpg" and results[0].score > 0.8
    assert len(results) == 4 and results[-1].score < 0.5


def test_deleted_burst_around_the_query_still_yields_k_live_results(tmp_path):
    dim, n = 32, 2000
    vecs = clustered(n, dim, seed=7)
    ids = np.arange(n, dtype=np.int64)
    store = AnnoyStore(tmp_path, "m", dim)
    store.build([(ids, vecs)])
    query = vecs[0]
    nearest = _top_exact(vecs, ids, query, 300)
    stale = {h.vector_id for h in nearest}  # a whole burst of near-duplicates deleted since the build
    ann = AnnIndex(store.load(), np.zeros(0, np.int64), np.zeros((0, dim), np.float32), stale)
    got = ann.query(query, 20)
    assert len(got) == 20 and not {h.vector_id for h in got} & stale
    live = np.array([i not in stale for i in ids])
    want = {h.vector_id for h in _top_exact(vecs[live], ids[live], query, 20)}
    assert len({h.vector_id for h in got} & want) >= 18


def test_builders_racing_on_one_library_each_land_a_whole_generation(tmp_path):
    """The app's indexer, its watcher and a terminal's `imgsim watch` may rebuild at the same time."""
    import threading

    dim = 32
    sizes = [400, 700, 1000, 1300]
    results: list[dict] = []

    def build(n: int) -> None:
        store = AnnoyStore(tmp_path, "m", dim)  # separate stores, as separate workers have
        results.append(store.build([(np.arange(n), clustered(n, dim, n))]))

    threads = [threading.Thread(target=build, args=(n,)) for n in sizes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r["generation"] for r in results) == [1, 2, 3, 4]  # no two builds shared a generation
    loaded = AnnoyStore(tmp_path, "m", dim).load()
    last = max(results, key=lambda r: r["generation"])
    assert loaded.generation == last["generation"] and len(loaded.ids) == last["count"] == loaded.annoy.get_n_items()
    leftovers = [p.name for p in tmp_path.iterdir() if p.suffix in (".ann", ".npy") and f".{last['generation']}." not in p.name]
    assert leftovers == []

"""A damaged Annoy index is never searched: its checksum is checked on load, its scores against the
catalog's vectors on every query; searches fall back to exact and `index --rebuild` repairs it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import copy_photos
from imgsim_desktop.cli import main
from imgsim_desktop.core import search
from imgsim_desktop.core.engine import Engine
from imgsim_desktop.core.library_service import index_now
from imgsim_desktop.storage.annoy_store import AnnoyStore

NAMES = ["labelled/dog.jpg", "labelled/cat.jpg", "labelled/pelican.jpg", "scenes/fruits.jpg", "aib/5.jpg", "aib/9.jpg", "aib/12.jpg", "aib/20.jpg"]


@pytest.fixture
def annoy_library(tmp_path, data_dir, monkeypatch):
    monkeypatch.setattr(search, "EXACT_LIMIT", 0)  # Annoy even for eight photos
    lib = tmp_path / "lib"
    copy_photos(lib, NAMES)
    with Engine(data_dir) as engine:
        index_now(engine, [str(lib)])
        truth = {p: [r.path for r in engine.searcher.similar_to_file(p, 3)] for p in map(str, sorted(lib.iterdir()))}
        assert engine.searcher.ann.loaded is not None
    return lib, truth


def _files(data_dir):
    store_dir = data_dir / "indexes"
    meta = json.loads(next(store_dir.glob("*.json")).read_text())
    return store_dir / meta["ann"], store_dir / meta["ids"]


def _answers(data_dir, lib):
    with Engine(data_dir) as engine:
        return {p: [r.path for r in engine.searcher.similar_to_file(p, 3)] for p in map(str, sorted(lib.iterdir()))}, engine.searcher.store.problem


def test_scribbled_index_is_refused_and_searches_stay_right(annoy_library, data_dir, capsys):
    lib, truth = annoy_library
    ann, _ = _files(data_dir)
    data = bytearray(ann.read_bytes())
    data[100:4000] = np.random.default_rng(0).integers(0, 256, 3900, dtype=np.uint8).tobytes()
    ann.write_bytes(bytes(data))
    answers, problem = _answers(data_dir, lib)
    assert answers == truth and "damaged" in problem
    assert main(["status"]) == 0 and "DAMAGED" in capsys.readouterr().out
    assert main(["index", str(lib), "--rebuild"]) == 0
    capsys.readouterr()
    assert _answers(data_dir, lib) == (truth, None)


def test_shuffled_id_map_is_refused(annoy_library, data_dir):
    lib, truth = annoy_library
    _, ids = _files(data_dir)
    np.save(ids, np.load(ids)[::-1].copy())
    answers, problem = _answers(data_dir, lib)
    assert answers == truth and "damaged" in problem


def test_damage_the_checksum_sample_misses_is_caught_by_the_scores(annoy_library, data_dir, monkeypatch):
    lib, truth = annoy_library
    ann, _ = _files(data_dir)
    monkeypatch.setattr(AnnoyStore, "check", lambda self, meta=None: None)  # as if the scribble fell between samples
    data = bytearray(ann.read_bytes())
    dim_bytes = 4 * 1280 + 12
    for item in range(len(NAMES)):  # every item's vector reversed: Annoy still answers, wrongly
        start = item * dim_bytes + 12
        data[start : start + dim_bytes - 12] = data[start : start + dim_bytes - 12][::-1]
    ann.write_bytes(bytes(data))
    answers, problem = _answers(data_dir, lib)
    assert answers == truth and problem and "scores" in problem


# --- damage the sampled checksum does not see --------------------------------------------------
# At 20k photos the index file holds 100+ MB and the checksum samples about 1 MB of it. Each case
# below scribbles one spot and then records the file's new checksum, as if the damage fell between
# the samples; Annoy given such a file crashed the whole process (segfault, abort) or handed out
# garbage vectors. The node structure is checked instead.

DIM = 16  # a leaf lists up to DIM + 2 items: 3,000 photos make real trees of split nodes and leaves
COUNT = 3000


def _small_index(tmp_path):
    vecs = np.random.default_rng(1).standard_normal((COUNT, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    store = AnnoyStore(tmp_path / "indexes", "m", DIM)
    meta = store.build([(np.arange(COUNT) + 100, vecs)], n_trees=4)
    nodes = np.fromfile(store.dir / meta["ann"], dtype="<i4").reshape(-1, 3 + DIM)
    return store, meta, nodes


def _scribble(store, meta, nodes, row, column, value):
    ann = store.dir / meta["ann"]
    nodes = nodes.copy()
    nodes[row, column] = value
    nodes.tofile(ann)
    meta = dict(meta, ann_digest=search_digest(ann))  # the checksum agrees: damage between its samples
    store.pointer.write_text(json.dumps(meta))


def search_digest(path):
    from imgsim_desktop.storage.annoy_store import _sampled_digest

    return _sampled_digest(path)


@pytest.mark.parametrize(
    "where, what",
    [
        ("split", "a child far outside the file"),
        ("leaf", "a negative count"),
        ("leaf", "an item number out of range"),
        ("item", "a vector scribbled"),
        ("item", "a count that makes it a leaf"),
    ],
)
def test_damage_between_the_checksum_samples_never_reaches_annoy(tmp_path, where, what):
    store, meta, nodes = _small_index(tmp_path)
    most = DIM + 2
    inner = np.arange(COUNT, len(nodes))
    splits = inner[nodes[COUNT:, 0] > most]
    leaves = inner[nodes[COUNT:, 0] <= most]
    assert len(splits) and len(leaves) and store.check() is None
    if what == "a child far outside the file":
        _scribble(store, meta, nodes, splits[len(splits) // 2], 1, 2_000_000_000)
    elif what == "a negative count":
        _scribble(store, meta, nodes, leaves[len(leaves) // 2], 0, -7)
    elif what == "an item number out of range":
        _scribble(store, meta, nodes, leaves[len(leaves) // 2], 1, COUNT + 5)
    elif what == "a vector scribbled":
        _scribble(store, meta, nodes, COUNT // 2, 3, np.float32(7.5).view(np.int32))
    else:
        _scribble(store, meta, nodes, COUNT // 2, 0, 5)
    assert "is damaged" in (store.check() or "")
    assert store.load() is None and "is damaged" in store.problem


def test_a_duplicates_scan_never_reads_a_damaged_vector(annoy_library, data_dir, capsys):
    lib, _ = annoy_library
    assert main(["duplicates", "--json"]) == 0
    truth = json.loads(capsys.readouterr().out)["groups"]
    store_dir = data_dir / "indexes"
    pointer = next(store_dir.glob("*.json"))
    meta = json.loads(pointer.read_text())
    ann = store_dir / meta["ann"]
    data = bytearray(ann.read_bytes())
    data[12 + 4 * 100 : 12 + 4 * 164] = np.full(64, 3.0, np.float32).tobytes()  # photo 0's vector
    ann.write_bytes(bytes(data))
    pointer.write_text(json.dumps(dict(meta, ann_digest=search_digest(ann))))
    assert main(["status"]) == 0 and "DAMAGED" in capsys.readouterr().out
    assert main(["duplicates", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["groups"] == truth

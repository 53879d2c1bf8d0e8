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

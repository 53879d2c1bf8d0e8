"""Photos a cleanup took away and Undo brought back are relinked, not embedded again: their catalog
rows are parked (catalog v10) with their embeddings when they leave, and the indexer gives a file
that comes back unchanged its own row again (core.relink). Measured by counting Backbone.embed."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import PHOTOS, rewind_catalog
from imgsim_desktop.core import cleanup, cleanup_plan, trash_info
from imgsim_desktop.core.backbones import Backbone
from imgsim_desktop.core.engine import Engine
from imgsim_desktop.core.library_service import index_now
from imgsim_desktop.storage.catalog import Catalog

N = 8


@pytest.fixture
def engine(tmp_path, data_dir):
    lib = tmp_path / "lib"
    lib.mkdir()
    for name in sorted((PHOTOS / "aib").glob("*.jpg"))[: N + 2]:
        shutil.copyfile(name, lib / name.name)
    with Engine(data_dir) as eng:
        index_now(eng, [str(lib)])
        eng.lib = lib
        yield eng


@pytest.fixture
def embed_calls(monkeypatch):
    calls: list[int] = []
    real = Backbone.embed
    monkeypatch.setattr(Backbone, "embed", lambda self, batch: calls.append(len(batch)) or real(self, batch))
    return calls


def vectors(engine) -> dict[str, bytes]:
    db = sqlite3.connect(engine.catalog.path)
    rows = db.execute("SELECT f.path, e.vector FROM files f JOIN embeddings e ON e.file_id = f.id").fetchall()
    db.close()
    return dict(rows)


def rows(engine) -> dict[str, tuple]:
    return {p: (r.size, r.taken_at, r.camera, r.width, r.height, r.sharpness, r.tags) for p in engine.catalog.known_paths() if (r := engine.catalog.photo(p))}


@pytest.mark.parametrize("mode", ["move", "trash"])
def test_undo_of_n_photos_causes_no_embedding(engine, tmp_path, embed_calls, mode):
    if mode == "trash" and not trash_info.FREEDESKTOP:
        pytest.skip("Undo from the Trash needs the freedesktop Trash")
    photos = sorted(engine.lib.iterdir())[:N]
    before_vectors, before_rows = vectors(engine), rows(engine)
    removals = cleanup_plan.chosen_paths([engine.catalog.photo(str(p)) for p in photos])
    result = cleanup.apply(engine.catalog, removals, mode, str(tmp_path / "aside") if mode == "move" else None)
    assert len(result.done) == N and engine.catalog.parked_count() == N
    assert not set(map(str, photos)) & engine.catalog.known_paths()  # out of the library (grid, search, scans)
    assert all(r["error"] is None for r in cleanup.undo(engine.catalog, result.batch))
    report = index_now(engine, [str(engine.lib)])
    assert embed_calls == [] and report.indexed == 0 and report.moved == N  # N photos back, 0 embedded
    assert vectors(engine) == before_vectors and rows(engine) == before_rows  # each its own row, its own vector
    assert engine.catalog.parked_count() == 0
    hits = engine.searcher.similar_to_vector(np.frombuffer(before_vectors[str(photos[0])], dtype=np.float32), 1)
    assert hits and hits[0].path == str(photos[0])  # searchable again


def test_a_photo_that_comes_back_changed_is_embedded(engine, tmp_path, embed_calls):
    photo = sorted(engine.lib.iterdir())[0]
    result = cleanup.apply(engine.catalog, cleanup_plan.chosen_paths([engine.catalog.photo(str(photo))]), "move", str(tmp_path / "aside"))
    moved = Path(result.done[0]["target"])
    with Image.open(moved) as img:
        img.load()
        img.rotate(180).save(moved, quality=90)  # edited while away
    shutil.move(moved, photo)  # brought back by hand
    report = index_now(engine, [str(engine.lib)])
    assert sum(embed_calls) == 1 and report.indexed == 1 and report.moved == 0, report
    assert engine.catalog.parked_count() == 1  # still waiting for the unchanged photo


def test_undo_that_finds_the_file_gone_forgets_its_parked_row(engine, tmp_path):
    photo = sorted(engine.lib.iterdir())[0]
    result = cleanup.apply(engine.catalog, cleanup_plan.chosen_paths([engine.catalog.photo(str(photo))]), "move", str(tmp_path / "aside"))
    Path(result.done[0]["target"]).unlink()  # the user deleted it
    assert "gone" in cleanup.undo(engine.catalog, result.batch)[0]["error"]
    assert engine.catalog.parked_count() == 0


def test_parked_rows_older_than_the_limit_are_forgotten_at_the_next_cleanup(engine, tmp_path, monkeypatch):
    a, b = sorted(engine.lib.iterdir())[:2]
    cleanup.apply(engine.catalog, cleanup_plan.chosen_paths([engine.catalog.photo(str(a))]), "move", str(tmp_path / "aside"))
    assert engine.catalog.parked_count() == 1
    monkeypatch.setattr(cleanup, "PARK_DAYS", -1)  # as if a year had passed
    cleanup.apply(engine.catalog, cleanup_plan.chosen_paths([engine.catalog.photo(str(b))]), "move", str(tmp_path / "aside"))
    assert engine.catalog.parked_count() == 0


def test_a_version_9_catalog_gains_parking_and_the_journal_columns(tmp_path):
    path = tmp_path / "catalog.sqlite3"
    Catalog(path).close()
    rewind_catalog(path, 9, "DROP TABLE parked_embeddings", "DROP TABLE parked", "ALTER TABLE actions DROP COLUMN previous", "ALTER TABLE actions DROP COLUMN written")
    with Catalog(path) as catalog:
        step = catalog.begin_step("b", "metadata", "/x.xmp", None, None, previous=b"old", written="abc")
        catalog.finish_step(step, "done")
        assert catalog.actions("b")[0]["previous"] == b"old" and catalog.parked_count() == 0

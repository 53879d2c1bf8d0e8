"""Cleanup never loses a photo: trash or move, protected folders refused, failures left in place, moves undone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import TRASH_HOME, copy_photos
from imgsim_desktop.core import cleanup
from imgsim_desktop.core.engine import Engine


@pytest.fixture
def engine(tmp_path, data_dir):
    lib = tmp_path / "lib"
    copy_photos(lib, ["labelled/dog.jpg", "labelled/cat.jpg"])
    copy_photos(lib / "keep", ["labelled/pelican.jpg"])
    with Engine(data_dir) as eng:
        eng.index([str(lib)])
        eng.lib = lib
        yield eng


def test_trash_moves_to_trash_logs_and_drops_from_library(engine, tmp_path):
    dog = engine.lib / "dog.jpg"
    size = dog.stat().st_size
    result = cleanup.apply(engine.catalog, [str(dog)], "trash")
    assert not dog.exists() and result.failed == [] and result.bytes_freed == size
    trashed = [p for p in (TRASH_HOME / "Trash" / "files").iterdir() if p.name.startswith("dog")]
    assert len(trashed) >= 1 and trashed[-1].stat().st_size == size
    log = engine.catalog.actions(result.batch)
    assert [(a["action"], a["source"]) for a in log] == [("trash", str(dog))]
    assert engine.catalog.file_by_path(str(dog)) is None


def test_protected_folder_is_never_touched(engine):
    pelican = engine.lib / "keep" / "pelican.jpg"
    result = cleanup.apply(engine.catalog, [str(pelican), str(engine.lib / "cat.jpg")], "trash", protected=[str(engine.lib / "keep")])
    assert pelican.exists() and result.refused == [str(pelican)]
    assert not (engine.lib / "cat.jpg").exists()


def test_failing_trash_leaves_file_in_place_and_reports_it(engine, monkeypatch):
    def no_trash(path):
        raise OSError(95, "Operation not supported", path)  # e.g. a network share without a trash

    monkeypatch.setattr(cleanup, "send2trash", no_trash)
    cat = engine.lib / "cat.jpg"
    result = cleanup.apply(engine.catalog, [str(cat)], "trash")
    assert cat.exists() and result.done == []
    assert result.failed[0]["path"] == str(cat) and "left in place" in result.failed[0]["error"]
    assert engine.catalog.file_by_path(str(cat)) is not None and engine.catalog.actions() == []


def test_move_then_undo_restores_every_file(engine, tmp_path):
    dest = tmp_path / "review"
    dest.mkdir()
    (dest / "dog.jpg").write_bytes(b"someone else's file")  # must not be overwritten
    originals = {p: p.read_bytes() for p in (engine.lib / "dog.jpg", engine.lib / "cat.jpg")}
    result = cleanup.apply(engine.catalog, [str(p) for p in originals], "move", move_to=str(dest))
    assert sorted(os.listdir(dest)) == ["cat.jpg", "dog (2).jpg", "dog.jpg"]
    assert (dest / "dog.jpg").read_bytes() == b"someone else's file"
    assert not any(p.exists() for p in originals)
    restored = cleanup.undo(engine.catalog, result.batch)
    assert [r["error"] for r in restored] == [None, None]
    assert {p: p.read_bytes() for p in originals} == originals
    assert sorted(os.listdir(dest)) == ["dog.jpg"]
    assert all(a["undone_at"] for a in engine.catalog.actions(result.batch) if a["action"] == "move")
    assert cleanup.undo(engine.catalog, result.batch) == []  # undoing twice does nothing


def test_move_across_volumes_copies_checks_then_removes(engine, tmp_path, monkeypatch):
    real_rename = os.rename

    def cross_device(src, dst):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(cleanup.os, "rename", cross_device)
    dog = engine.lib / "dog.jpg"
    data = dog.read_bytes()
    result = cleanup.apply(engine.catalog, [str(dog)], "move", move_to=str(tmp_path / "elsewhere"))
    monkeypatch.setattr(cleanup.os, "rename", real_rename)
    assert not dog.exists() and Path(result.done[0]["target"]).read_bytes() == data

"""File names that are not valid UTF-8 (``caf\\xe9.jpg`` from an old Latin-1 disk): indexed, searched,
grouped, cleaned up and undone with the exact bytes of the name, shown escaped, never a traceback."""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import PHOTOS
from imgsim_desktop.cli import main
from imgsim_desktop.core.library_service import index_now
from imgsim_desktop.storage.catalog import Catalog

NAME = os.fsdecode(b"caf\xe9.jpg")  # the undecodable byte becomes a lone surrogate in Python


@pytest.fixture
def latin1_library(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    try:
        shutil.copy(PHOTOS / "labelled" / "dog.jpg", lib / NAME)
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system only takes UTF-8 names")
    shutil.copy(lib / NAME, lib / os.fsdecode(b"caf\xe9 (copie).jpg"))
    shutil.copy(PHOTOS / "labelled" / "cat.jpg", lib / "cat.jpg")
    return lib


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_catalog_round_trips_undecodable_names(tmp_path):
    path = str(tmp_path / NAME)
    with Catalog(tmp_path / "catalog.sqlite3") as catalog:
        catalog.add_root(str(tmp_path))
        step = catalog.begin_step("b", "move", path, path + ".moved", 1, 1, 1)
        catalog.finish_step(step, "done")
        assert catalog.actions()[0]["source"] == path and catalog.roots() == [str(tmp_path)]
        assert os.fsencode(catalog.actions()[0]["source"]).endswith(b"caf\xe9.jpg")


def exact_name(b64: str) -> bytes:
    return base64.b64decode(b64)


def test_index_search_group_clean_up_and_undo(latin1_library, data_dir, capsys, tmp_path):
    lib = latin1_library
    before = {os.fsencode(p.name): p.read_bytes() for p in lib.iterdir()}
    code, out, _ = run(capsys, "index", str(lib), "--json")
    assert code == 0 and json.loads(out)["indexed"] == 3 and json.loads(out)["errors"] == []
    code, out, _ = run(capsys, "similar", str(lib / NAME), "-k", "1")
    assert code == 0 and "caf\\xe9 (copie).jpg" in out  # shown escaped, not dropped
    code, out, _ = run(capsys, "duplicates", "--json")
    assert "\\ud" not in out  # no lone surrogates: valid for strict JSON parsers (jq, serde_json) too
    [group] = [g for g in json.loads(out)["groups"] if g["tier"] == "exact"]
    assert sorted(Path(m["path"]).name for m in group["members"]) == ["caf\ufffd (copie).jpg", "caf\ufffd.jpg"]  # readable
    exact = sorted(os.path.basename(exact_name(m["path_bytes"])) for m in group["members"])  # and exact beside it
    assert exact == [b"caf\xe9 (copie).jpg", b"caf\xe9.jpg"]
    code, out, _ = run(capsys, "duplicates", "--json", "--apply", "move", str(tmp_path / "aside"))
    applied = json.loads(out)["applied"]
    assert code == 0 and len(applied["done"]) == 1
    assert [os.fsencode(p.name) for p in (tmp_path / "aside").iterdir()] == [os.path.basename(exact_name(applied["done"][0]["path_bytes"]))]
    assert run(capsys, "undo", applied["batch"])[0] == 0
    assert {os.fsencode(p.name): p.read_bytes() for p in lib.iterdir()} == before


def test_the_app_shows_and_keeps_the_exact_name(latin1_library, data_dir, qtbot):
    from imgsim_desktop.core.duplicates import Group, Member
    from imgsim_desktop.core.engine import Engine
    from imgsim_desktop.core.keeper import KeeperRules
    from imgsim_desktop.ui.group_tree import GroupTree

    with Engine(data_dir) as engine:
        index_now(engine, [str(latin1_library)])
        paths = [str(latin1_library / NAME), str(latin1_library / os.fsdecode(b"caf\xe9 (copie).jpg"))]
        rows = {p: engine.catalog.photo(p) for p in paths}
    tree = GroupTree()
    qtbot.addWidget(tree)
    tree.fill([Group("exact", [Member(p, 1.0) for p in paths])], rows, KeeperRules())
    member = tree.topLevelItem(0).child(0)
    assert member.text(0) in ("caf\\xe9.jpg", "caf\\xe9 (copie).jpg")  # readable, not "caf.jpg"
    tree.setCurrentItem(member)
    assert tree.current_path() in paths  # the exact name, surrogate and all
    assert tree.visible_ticked() and set(tree.visible_ticked()) <= set(paths)

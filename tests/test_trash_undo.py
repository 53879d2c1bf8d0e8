"""Trash can be undone (Linux, the freedesktop Trash): where each file went is read back from the
Trash's info/*.trashinfo right after it is trashed and journaled; Undo brings photos and their
companions back from there, and refuses, per file, one that is no longer in the Trash or changed
there. A crash between the trash and the journal's close is finished by recovery, which finds the
file's place in the Trash the same way."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_companions import EVERY_KIND, Killed, digest, removal, write_shot

from conftest import PHOTOS, TRASH_HOME
from imgsim_desktop.core import cleanup, trash_info
from imgsim_desktop.storage.catalog import Catalog

pytestmark = pytest.mark.skipif(not trash_info.FREEDESKTOP, reason="the freedesktop Trash is read back on Linux and the BSDs only")

TRASH_FILES = TRASH_HOME / "Trash" / "files"
TRASH_INFO = TRASH_HOME / "Trash" / "info"


@pytest.fixture
def catalog(tmp_path):
    with Catalog(tmp_path / "data" / "catalog.sqlite3") as cat:
        yield cat


def info_of(target: str) -> Path:
    return TRASH_INFO / (Path(target).name + ".trashinfo")


def test_trash_journals_where_each_file_went_and_undo_brings_all_back(tmp_path, catalog):
    lib = tmp_path / "lib"
    jpg = write_shot(lib, stem="IMG_7001")
    before = {p.name: digest(p) for p in lib.iterdir()}
    result = cleanup.apply(catalog, [removal(jpg)], "trash")
    assert sorted(Path(d["path"]).name for d in result.done) == sorted(before) and list(lib.iterdir()) == []
    steps = catalog.actions(result.batch)
    for step in steps:  # each file's place in the Trash is in the journal, and the Trash's own entry agrees
        target = Path(step["target"])
        assert target.parent == TRASH_FILES and digest(target) == before[Path(step["source"]).name]
        assert f"Path={step['source']}" in info_of(step["target"]).read_text()
    restored = cleanup.undo(catalog, result.batch)
    assert [r["error"] for r in restored] == [None] * len(before)
    assert sorted(r["companion"] or "photo" for r in restored) == sorted(["photo", *EVERY_KIND.values()])
    assert {p.name: digest(p) for p in lib.iterdir()} == before
    assert not any(Path(s["target"]).exists() or info_of(s["target"]).exists() for s in steps)  # gone from the Trash, entries too
    assert all(a["undone_at"] for a in catalog.actions(result.batch) if a["action"] == "trash")
    assert cleanup.undo(catalog, result.batch) == []


def test_same_names_trashed_from_two_folders_come_back_to_their_own(tmp_path, catalog):
    a = write_shot(tmp_path / "a", stem="IMG_7002", photo="labelled/dog.jpg", kinds={})
    b = write_shot(tmp_path / "b", stem="IMG_7002", photo="labelled/cat.jpg", kinds={})
    sums = {a: digest(a), b: digest(b)}
    result = cleanup.apply(catalog, [removal(a), removal(b)], "trash")
    targets = [d["target"] for d in result.done]
    assert len(set(targets)) == 2 and all(Path(t).parent == TRASH_FILES for t in targets)  # 'IMG_7002.JPG' and 'IMG_7002 1.JPG'
    assert all(r["error"] is None for r in cleanup.undo(catalog, result.batch))
    assert {p: digest(p) for p in (a, b)} == sums


def test_undo_refuses_a_file_gone_from_the_trash_or_changed_there(tmp_path, catalog):
    lib = tmp_path / "lib"
    emptied = write_shot(lib, stem="IMG_7003", kinds={})
    changed = write_shot(lib, stem="IMG_7004", photo="labelled/cat.jpg", kinds={})
    fine = write_shot(lib, stem="IMG_7005", photo="labelled/pelican.jpg", kinds={})
    fine_sum = digest(fine)
    result = cleanup.apply(catalog, [removal(emptied), removal(changed), removal(fine)], "trash")
    where = {d["path"]: Path(d["target"]) for d in result.done}
    where[str(emptied)].unlink()  # the user emptied that part of the Trash
    where[str(changed)].write_bytes(b"something else now")
    restored = {r["path"]: r["error"] for r in cleanup.undo(catalog, result.batch)}
    assert "no longer in the Trash" in restored[str(emptied)] and where[str(emptied)].name in restored[str(emptied)]
    assert "changed since" in restored[str(changed)] and str(where[str(changed)]) in restored[str(changed)]
    assert restored[str(fine)] is None and digest(fine) == fine_sum
    assert not emptied.exists() and not changed.exists() and where[str(changed)].read_bytes() == b"something else now"


def test_undo_leaves_a_file_that_took_the_name_back(tmp_path, catalog):
    photo = write_shot(tmp_path / "lib", stem="IMG_7006", kinds={})
    result = cleanup.apply(catalog, [removal(photo)], "trash")
    photo.write_bytes(b"a new photo under the old name")
    restored = cleanup.undo(catalog, result.batch)
    assert "back already" in restored[0]["error"] and photo.read_bytes() == b"a new photo under the old name"
    assert Path(result.done[0]["target"]).exists()


def test_a_trash_whose_place_was_not_found_says_where_the_file_is(tmp_path, catalog, monkeypatch):
    monkeypatch.setattr(trash_info, "find", lambda *a, **k: None)  # as on macOS and Windows
    photo = write_shot(tmp_path / "lib", stem="IMG_7007", kinds={})
    result = cleanup.apply(catalog, [removal(photo)], "trash")
    assert result.done[0]["target"] is None
    error = cleanup.undo(catalog, result.batch)[0]["error"]
    assert "cannot be brought back by imgsim" in error and "Trash" in error and not photo.exists()


def test_a_crash_between_the_trash_and_the_journal_close_is_finished_and_undone(tmp_path, catalog, monkeypatch):
    lib = tmp_path / "lib"
    jpg = write_shot(lib, stem="IMG_7008", kinds={"IMG_1.xmp": "xmp", "IMG_1.AAE": "aae"})
    before = {p.name: digest(p) for p in lib.iterdir()}

    def killed_after_the_trash(*_a, **_k):
        raise Killed  # send2trash has moved the photo; the step is not closed

    monkeypatch.setattr(cleanup, "_in_trash", killed_after_the_trash)
    with pytest.raises(Killed):
        cleanup.apply(catalog, [removal(jpg)], "trash")
    monkeypatch.undo()
    assert not jpg.exists() and len(catalog.pending_steps()) == 3  # the photo is in the Trash, its step still pending
    notes = cleanup.recover(catalog)
    assert len(notes) == 3 and catalog.pending_steps() == []
    steps = catalog.actions()
    assert all(Path(s["target"]).parent == TRASH_FILES for s in steps)  # recovery found each one's place
    assert all(r["error"] is None for r in cleanup.undo(catalog, steps[0]["batch"]))
    assert {p.name: digest(p) for p in lib.iterdir()} == before


WORKER = """
import os, sys
from pathlib import Path
from imgsim_desktop.core import cleanup
from imgsim_desktop.core.cleanup_plan import Removal, Seen
from imgsim_desktop.storage.catalog import Catalog
real = cleanup.send2trash
def trash_then_die(path):
    real(path)
    os._exit(9)  # dies as kill -9 would: nothing after the trash runs
cleanup.send2trash = trash_then_die
photo = sys.argv[2]
st = os.stat(photo)
with Catalog(Path(sys.argv[1])) as catalog:
    cleanup.apply(catalog, [Removal(Seen(photo, st.st_size, st.st_mtime_ns), "chosen")], "trash")
"""


def test_a_process_killed_right_after_the_trash_loses_nothing(tmp_path):
    photo = tmp_path / "lib" / "IMG_7009.jpg"
    photo.parent.mkdir()
    photo.write_bytes((PHOTOS / "labelled" / "dog.jpg").read_bytes())
    data = photo.read_bytes()
    db = tmp_path / "data" / "catalog.sqlite3"
    proc = subprocess.run([sys.executable, "-c", WORKER, str(db), str(photo)], env=os.environ | {"XDG_DATA_HOME": str(TRASH_HOME)}, timeout=60)
    assert proc.returncode == 9 and not photo.exists()
    with Catalog(db) as catalog:
        assert [s["state"] for s in catalog.pending_steps()] == ["pending"]
        cleanup.recover(catalog)
        (step,) = catalog.actions()
        assert Path(step["target"]).read_bytes() == data
        assert cleanup.undo(catalog, step["batch"])[0]["error"] is None
    assert photo.read_bytes() == data


def test_find_matches_the_deletion_date_and_the_file(tmp_path):
    """An older trashing of the same path (or a file of another content under its Path) is not taken."""
    src = tmp_path / "lib" / "IMG_7010.jpg"
    src.parent.mkdir()
    src.write_bytes(b"old photo")
    old = src.stat()
    cleanup.send2trash(str(src))
    time.sleep(0.01)
    assert trash_info.find(str(src), old.st_size, old.st_mtime_ns, old.st_ino, time.time() + 10) is None  # trashed before 'since'
    src.write_bytes(b"the new photo")
    new = src.stat()
    since = time.time()
    cleanup.send2trash(str(src))
    found = trash_info.find(str(src), new.st_size, new.st_mtime_ns, new.st_ino, since)
    assert found and Path(found.file).read_bytes() == b"the new photo" and Path(found.info).exists()

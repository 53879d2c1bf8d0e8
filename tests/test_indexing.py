"""Indexing is incremental, survives bad files and kill -9, and finds EXIF-rotated twins."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from conftest import PHOTOS, copy_photos
from imgsim_desktop.core import indexer as indexer_mod
from imgsim_desktop.core.engine import CATALOG_NAME, Engine
from imgsim_desktop.core.library_service import index_now
from imgsim_desktop.core.progress import Progress

SAMPLE = [
    "ukbench/ukbench00120.jpg",
    "ukbench/ukbench00120_resize.jpg",
    "ukbench/ukbench01380.jpg",
    "ukbench/ukbench08976.jpg",
    "labelled/dog.jpg",
    "labelled/pelican.jpg",
    "scenes/fruits.jpg",
    "formats/ukbench09380.png",  # JPEG bytes behind a .png name
]


@pytest.fixture
def library(tmp_path) -> Path:
    lib = tmp_path / "photos"
    copy_photos(lib, SAMPLE)
    copy_photos(lib / "sub", ["ukbench/ukbench09268_corrupt.jpg", "labelled/cat.jpg"])
    (lib / "sub" / "empty.jpg").write_bytes(b"")
    (lib / "notes.txt").write_text("not a photo")
    return lib


def test_index_reports_counts_and_per_file_errors_then_is_incremental(library, data_dir, monkeypatch):
    with Engine(data_dir) as engine:
        first = index_now(engine, [str(library)])
        assert first.indexed == len(SAMPLE) + 1
        assert sorted(Path(e["path"]).name for e in first.errors) == ["empty.jpg", "ukbench09268_corrupt.jpg"]
        assert all(e["error"] for e in first.errors)
        assert first.provider in ("CPU", "CUDA") and first.model == "efficientnet-lite0"

        def must_not_decode(*_a, **_k):
            raise AssertionError("an unchanged file was decoded again")

        monkeypatch.setattr(indexer_mod, "open_photo", must_not_decode)
        second = index_now(engine, [str(library)])
        assert (second.indexed, second.skipped, second.errors) == (0, len(SAMPLE) + 3, [])
        monkeypatch.undo()

        # A changed file (new size + mtime) is decoded again; a deleted one leaves the catalog.
        changed = library / "ukbench08976.jpg"
        Image.open(PHOTOS / "scenes/fruits.jpg").save(changed)
        os.utime(changed, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
        (library / "dog.jpg").unlink()
        third = index_now(engine, [str(library)])
        assert (third.indexed, third.removed) == (1, 1)
        results = engine.similar(PHOTOS / "labelled/dog.jpg", k=20)
        assert all(Path(r.path).name != "dog.jpg" for r in results)
        fruit = engine.similar(library / "fruits.jpg", k=1)
        assert Path(fruit[0].path).name == "ukbench08976.jpg" and fruit[0].score > 0.99


def test_unmounted_folder_is_reported_not_emptied(library, data_dir, tmp_path):
    with Engine(data_dir) as engine:
        index_now(engine, [str(library)])
        moved = tmp_path / "elsewhere"
        library.rename(moved)
        report = index_now(engine, [str(library)])
        assert report.missing == [str(library)]
        assert report.removed == 0
        assert engine.catalog.stats()["files"] == len(SAMPLE) + 3


def test_cancel_keeps_committed_batches_and_resume_finishes(tmp_path, data_dir):
    lib = tmp_path / "many"
    copy_photos(lib, [f"aib/{i}.jpg" for i in range(40)])

    def cancel_after_first_batch(done, total, message):
        if done >= 8:
            progress.cancel()

    progress = Progress(cancel_after_first_batch, rate_hz=1e6)
    with Engine(data_dir) as engine:
        engine_idx = indexer_mod.Indexer(engine.catalog, engine.backbone, batch_size=8)
        report = engine_idx.run([str(lib)], progress)
        assert report.cancelled and 8 <= report.indexed < 40
        again = index_now(engine, [str(lib)])
        assert again.indexed + report.indexed == 40 and again.skipped == report.indexed


def _count(db: Path, sql: str) -> int:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


@pytest.mark.slow
def test_kill_9_mid_index_leaves_consistent_catalog_and_resumes(tmp_path, data_dir):
    lib = tmp_path / "big"
    for part in ("a", "b"):
        copy_photos(lib / part, [f"aib/{i}.jpg" for i in range(100)])
    total = 200
    db = data_dir / CATALOG_NAME
    cmd = [sys.executable, "-m", "imgsim_desktop.cli", "index", str(lib), "--json", "--data-dir", str(data_dir)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if db.exists():
                try:
                    if _count(db, "SELECT COUNT(*) FROM embeddings") >= 16:
                        break
                except sqlite3.OperationalError:
                    pass  # schema not created yet
            assert proc.poll() is None, "indexing finished before it could be killed"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    done = con.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
    # Every catalogued file carries its embedding: file rows and vectors are committed together.
    orphans = con.execute("SELECT COUNT(*) FROM files f LEFT JOIN embeddings e ON e.file_id = f.id WHERE e.id IS NULL AND f.error IS NULL").fetchone()[0]
    con.close()
    assert 16 <= done < total and orphans == 0

    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    # Folder b holds copies of folder a: those found after a was indexed reuse its embeddings ("copied").
    assert report["skipped"] == done and report["indexed"] + report["copied"] == total - done and report["errors"] == []


def test_exif_rotated_copy_finds_its_upright_twin(tmp_path, data_dir):
    lib = tmp_path / "lib"
    copy_photos(lib, ["labelled/dog.jpg", "labelled/cat.jpg", "scenes/fruits.jpg", "ukbench/ukbench01380.jpg"])
    upright = Image.open(PHOTOS / "scenes/building.jpg")
    # Stored sideways with orientation 6 ("rotate 90 CW to display"), as phones write portrait shots.
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(lib / "sideways_with_exif.jpg", exif=exif, quality=92)
    stored.save(lib / "sideways_without_exif.jpg", quality=92)
    with Engine(data_dir) as engine:
        index_now(engine, [str(lib)])
        results = engine.similar(PHOTOS / "scenes/building.jpg", k=5)
    by_name = {Path(r.path).name: r.score for r in results}
    assert Path(results[0].path).name == "sideways_with_exif.jpg"
    assert by_name["sideways_with_exif.jpg"] > 0.97
    # The same pixels without the tag really look different to the model: the test can fail.
    assert by_name.get("sideways_without_exif.jpg", 0) < by_name["sideways_with_exif.jpg"] - 0.1


def test_photos_of_a_folder_removed_or_excluded_mid_run_are_not_stored(tmp_path, data_dir):
    """The user removes one folder and excludes a subfolder of another while indexing runs."""
    lib = tmp_path / "lib"
    copy_photos(lib / "keep", [f"aib/{i}.jpg" for i in range(6)])
    copy_photos(lib / "keep" / "private", [f"aib/{i}.jpg" for i in range(6, 12)])
    copy_photos(tmp_path / "gone", [f"aib/{i}.jpg" for i in range(12, 18)])
    roots = [str(lib), str(tmp_path / "gone")]

    def change_library_after_first_batch(done, total, message):
        if done >= 4 and not changed:
            changed.append(True)
            engine.catalog.remove_root(str(tmp_path / "gone"))
            engine.catalog.exclude(str(lib / "keep" / "private"))

    changed: list[bool] = []
    with Engine(data_dir) as engine:
        report = indexer_mod.Indexer(engine.catalog, engine.backbone, batch_size=4).run(roots, Progress(change_library_after_first_batch, rate_hz=1e6))
        assert changed and not report.cancelled
        stored = {Path(p.path).parent.name for p in engine.catalog.photos()}
        assert stored == {"keep"}  # nothing from the removed folder or the excluded subfolder
        assert engine.catalog.roots() == [str(lib)]
        assert report.indexed == len(engine.catalog.photos()) == 6


def test_cancel_during_the_folder_walk_stops_before_any_work(tmp_path, data_dir):
    for i in range(30):  # many folders: the walk checks for cancel once per folder
        copy_photos(tmp_path / "deep" / f"d{i:02d}", [f"aib/{i}.jpg"])
    walked: list[str] = []
    progress = Progress()
    progress.cancel()
    with Engine(data_dir) as engine:
        report = index_now(engine, [str(tmp_path / "deep")], progress)
        walked = engine.catalog.photos()
    assert report.cancelled and report.indexed == 0 and walked == []


def test_embeddings_an_older_release_made_stay_searchable_and_are_made_again(tmp_path, data_dir):
    from conftest import rewind_catalog
    from imgsim_desktop.core.changes import resolve
    from imgsim_desktop.storage.schema import EMBEDDING_RECIPE

    lib = tmp_path / "lib"
    copy_photos(lib, ["aib/1.jpg", "aib/2.jpg", "labelled/dog.jpg"])
    with Engine(data_dir) as engine:
        assert index_now(engine, [str(lib)]).indexed == 3
    # A catalog as release 5 wrote it: no recipe column, vectors from its own decode.
    rewind_catalog(data_dir / CATALOG_NAME, 5, "ALTER TABLE embeddings DROP COLUMN recipe")
    with Engine(data_dir) as engine:
        assert Path(engine.similar(PHOTOS / "labelled/dog.jpg", k=1)[0].path).name == "dog.jpg"  # still searchable
        # The start-up reconcile sees them as work, as does an indexing run, which embeds them again.
        stale = resolve(engine.catalog, engine.spec.name, [str(lib)], [str(lib)])
        assert sorted(Path(f.path).name for f in stale.todo) == ["1.jpg", "2.jpg", "dog.jpg"]
        again = index_now(engine, [str(lib)])
        assert (again.indexed, again.skipped) == (3, 0)
        assert (index_now(engine, [str(lib)]).indexed, resolve(engine.catalog, engine.spec.name, [str(lib)], [str(lib)]).todo) == (0, [])
        assert Path(engine.similar(PHOTOS / "labelled/dog.jpg", k=1)[0].path).name == "dog.jpg"
    recipes = sqlite3.connect(data_dir / CATALOG_NAME).execute("SELECT DISTINCT recipe FROM embeddings").fetchall()
    assert recipes == [(EMBEDDING_RECIPE,)]


def test_a_file_unreadable_once_is_retried_when_it_can_be_read(tmp_path, data_dir):
    import os

    from imgsim_desktop.core.engine import Engine

    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their permissions")
    lib = tmp_path / "lib"
    [photo] = copy_photos(lib, ["labelled/dog.jpg"])
    photo.chmod(0)
    with Engine(data_dir) as engine:
        first = index_now(engine, [str(lib)])
        photo.chmod(0o644)
        second = index_now(engine, [str(lib)])
    assert first.errors and "cannot read file" in first.errors[0]["error"]
    assert second.indexed == 1 and not second.errors


def test_unreadable_failures_are_retried_content_failures_wait_for_a_change(tmp_path, data_dir):
    from imgsim_desktop.core.engine import Engine
    from imgsim_desktop.core.indexer import plan
    from imgsim_desktop.core.scanner import scan
    from imgsim_desktop.storage.records import Embedded

    lib = tmp_path / "lib"
    copy_photos(lib, ["labelled/dog.jpg", "labelled/cat.jpg"])
    with Engine(data_dir) as engine:
        files = scan([str(lib)]).files
        dog, cat = sorted(files, key=lambda f: f.path)[::-1]
        engine.catalog.add_root(str(lib))
        engine.catalog.store_batch(engine.spec.name, [
            Embedded(dog.path, dog.size, dog.mtime_ns, error="cannot read file: Permission denied"),
            Embedded(cat.path, cat.size, cat.mtime_ns, error="not an image Pillow can read (unrecognised or corrupt content)"),
        ])  # fmt: skip
        todo = {f.path for f in plan(engine.catalog, engine.spec.name, files, [str(lib)]).todo}
        assert todo == {dog.path}
        assert engine.catalog.forget_errors() == 2  # `imgsim index --retry-failed`
        assert {f.path for f in plan(engine.catalog, engine.spec.name, files, [str(lib)]).todo} == {dog.path, cat.path}


def test_symlinked_photos_and_folders_are_named_not_silently_skipped(tmp_path, data_dir):
    from imgsim_desktop.core.engine import Engine

    real = tmp_path / "real"
    [photo] = copy_photos(real, ["labelled/dog.jpg"])
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "album").symlink_to(real, target_is_directory=True)
    (lib / "dog.jpg").symlink_to(photo)
    (lib / "notes.txt").symlink_to(tmp_path / "nowhere.txt")  # a dangling link to no photo: nothing to say
    with Engine(data_dir) as engine:
        report = index_now(engine, [str(lib)])
    said = {Path(e["path"]).name: e["error"] for e in report.errors}
    assert report.indexed == 0 and set(said) == {"album", "dog.jpg"}
    assert all("symbolic link to a" in why and "not followed" in why for why in said.values())


@pytest.fixture
def out_of_reach(monkeypatch):
    """Folders that cannot be entered, as after a chmod 000 or a share that stopped answering (the
    tests run as root too, where permissions would not stop anything): listing one, or looking at
    anything inside it, is refused."""
    blocked: list[str] = []
    real_scandir, real_lstat = os.scandir, os.lstat

    def refused(path) -> bool:
        path = os.fsdecode(path)
        return any(path == b or path.startswith(b + os.sep) for b in blocked)

    def scandir(path="."):
        if refused(path):
            raise PermissionError(13, "Permission denied", os.fsdecode(path))
        return real_scandir(path)

    def lstat(path, *args, **kwargs):
        if refused(path) and os.fsdecode(path) not in blocked:
            raise PermissionError(13, "Permission denied", os.fsdecode(path))
        return real_lstat(path, *args, **kwargs)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "lstat", lstat)
    return blocked


@pytest.mark.parametrize("which", ["a subfolder", "the library folder itself"])
def test_photos_in_a_folder_that_cannot_be_listed_stay_in_the_library(tmp_path, data_dir, out_of_reach, which):
    lib = tmp_path / "lib"
    copy_photos(lib, ["labelled/dog.jpg"])
    copy_photos(lib / "sub", ["labelled/cat.jpg", "labelled/pelican.jpg"])
    with Engine(data_dir) as engine:
        assert index_now(engine, [str(lib)]).indexed == 3
        out_of_reach.append(str(lib / "sub") if which == "a subfolder" else str(lib))
        report = index_now(engine, [str(lib)])
        assert report.removed == 0 and any("cannot list folder" in e["error"] for e in report.errors)
        assert len(engine.catalog.known_paths()) == 3  # out of sight for now, not deleted
        out_of_reach.clear()
        back = index_now(engine, [str(lib)])
        assert (back.indexed, back.removed, back.skipped) == (0, 0, 3)  # nothing embedded again


def test_the_watcher_does_not_take_an_unlistable_folder_for_a_deleted_one(tmp_path, data_dir, out_of_reach):
    from imgsim_desktop.core.changes import resolve

    lib = tmp_path / "lib"
    copy_photos(lib, ["labelled/dog.jpg"])
    [cat] = copy_photos(lib / "sub", ["labelled/cat.jpg"])
    with Engine(data_dir) as engine:
        index_now(engine, [str(lib)])
        out_of_reach.append(str(lib / "sub"))
        for touched in (lib / "sub", cat, lib):
            work = resolve(engine.catalog, engine.spec.name, [str(touched)], [str(lib)])
            assert work.gone == [] and work.problems, touched

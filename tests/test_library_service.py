"""The library's one writer, headless: requests and file-system events in one queue, each done once,
folder changes that race a running index never leave photos of a dropped folder behind."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

from conftest import PHOTOS, copy_photos
from imgsim_desktop.core import indexer as indexer_mod
from imgsim_desktop.core.backbones import Backbone
from imgsim_desktop.core.engine import Engine
from imgsim_desktop.core.indexer import Indexer
from imgsim_desktop.core.library_service import LibraryService, index_now


def wait_until(condition, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.03)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def embedded(monkeypatch) -> list[int]:
    """How many photos were embedded since the fixture was made (any engine, any thread)."""
    count = [0]
    lock = threading.Lock()
    real = Backbone.embed

    def counting(self, batch):
        with lock:
            count[0] += len(batch)
        return real(self, batch)

    monkeypatch.setattr(Backbone, "embed", counting)
    return count


@pytest.fixture
def slow_decodes(monkeypatch):
    """Each decode takes a little while, so a run of a hundred photos is still going when the test acts."""
    decode = Indexer._decode

    def slow(self, f):
        time.sleep(0.02)
        return decode(self, f)

    monkeypatch.setattr(Indexer, "_decode", slow)


def started(engine: Engine, **options) -> tuple[LibraryService, list]:
    reports: list = []
    options.setdefault("polling", True)
    options.setdefault("poll_interval", 0.1)
    service = LibraryService(engine=engine, on_report=lambda kind, r: reports.append((kind, r)), settle_s=0.3, **options)
    service.start()
    return service, reports


def photos_under(engine: Engine, folder: Path) -> set[str]:
    return {p.path for p in engine.catalog.photos(engine.spec.name) if p.path.startswith(str(folder) + "/")}


def test_a_hundred_photos_added_while_watching_are_embedded_once(engine, tmp_path, embedded):
    lib = tmp_path / "lib"
    copy_photos(lib, ["labelled/dog.jpg"])
    index_now(engine, [str(lib)])
    service, reports = started(engine)
    try:
        wait_until(lambda: reports and service.idle, what="the start-up check")
        embedded[0] = 0
        new = tmp_path / "new"
        copy_photos(new, [f"aib/{i}.jpg" for i in range(100)])
        service.add_folders([str(new)])
        shutil.copyfile(PHOTOS / "labelled/cat.jpg", new / "cat.jpg")  # and one more arrives during the run
        wait_until(lambda: len(photos_under(engine, new)) == 101 and service.idle, what="the new folder")
        time.sleep(1.0)  # whatever the watcher would do about the new folder, it has done by now
    finally:
        service.stop()
    assert embedded[0] == 101
    assert str(new) in engine.catalog.roots()


def test_a_start_with_nothing_changed_scans_once_and_embeds_nothing(engine, tmp_path, embedded, monkeypatch):
    lib = tmp_path / "lib"
    copy_photos(lib, ["labelled/dog.jpg", "aib/4.jpg", "aib/5.jpg"])
    index_now(engine, [str(lib)])
    scans: list[list[str]] = []
    real_scan = indexer_mod.scan
    monkeypatch.setattr(indexer_mod, "scan", lambda paths, *a, **k: scans.append(list(paths)) or real_scan(paths, *a, **k))
    embedded[0] = 0
    service, reports = started(engine)
    try:
        wait_until(lambda: reports and service.idle, what="the start-up check")
        time.sleep(0.8)
    finally:
        service.stop()
    assert scans == [[str(lib)]]
    assert [(kind, r.indexed, r.skipped) for kind, r in reports] == [("reconcile", 0, 3)]
    assert embedded[0] == 0


def test_removing_a_folder_mid_run_and_one_still_queued_leaves_nothing_of_them(engine, tmp_path, slow_decodes):
    big, queued, kept = tmp_path / "big", tmp_path / "queued", tmp_path / "kept"
    copy_photos(big, [f"aib/{i}.jpg" for i in range(100)])
    copy_photos(queued, ["labelled/dog.jpg", "labelled/cat.jpg"])
    copy_photos(kept, ["labelled/pelican.jpg", "scenes/fruits.jpg"])
    service, reports = started(engine, watch=False)
    try:
        service.add_folders([str(big)])
        service.add_folders([str(queued)])
        service.add_folders([str(kept)])
        wait_until(lambda: 0 < len(photos_under(engine, big)), what="the first batch of the big folder")
        service.remove_folder(str(queued))
        service.remove_folder(str(big))
        wait_until(lambda: service.idle, what="the queue to drain")
    finally:
        service.stop()
    assert engine.catalog.roots() == [str(kept)]
    assert photos_under(engine, big) == set() and photos_under(engine, queued) == set()
    assert len(photos_under(engine, kept)) == 2


def test_excluding_a_subfolder_mid_run_indexes_the_rest_without_it(engine, tmp_path, slow_decodes):
    lib = tmp_path / "lib"
    copy_photos(lib / "a", [f"aib/{i}.jpg" for i in range(50)])
    copy_photos(lib / "b", [f"aib/{i}.jpg" for i in range(50, 100)])
    service, reports = started(engine, watch=False)
    try:
        service.add_folders([str(lib)])
        wait_until(lambda: photos_under(engine, lib), what="the first batch")
        service.exclude_folder(str(lib / "b"))
        wait_until(lambda: service.idle, what="the queue to drain")
    finally:
        service.stop()
    assert engine.catalog.roots() == [str(lib)] and engine.catalog.excluded() == [str(lib / "b")]
    assert photos_under(engine, lib) == {str(lib / "a" / f"{i}.jpg") for i in range(50)}
    assert reports[-1][1].cancelled is False  # the run resumed after the exclusion and finished


def test_a_folder_removed_while_watched_is_no_longer_followed(engine, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    copy_photos(one, ["labelled/dog.jpg"])
    copy_photos(two, ["labelled/cat.jpg"])
    index_now(engine, [str(one), str(two)])
    service, reports = started(engine)
    try:
        wait_until(lambda: reports and service.idle, what="the start-up check")
        service.remove_folder(str(two))
        wait_until(lambda: service.idle and service.roots == [str(one)], what="the removal")
        shutil.copyfile(PHOTOS / "labelled/pelican.jpg", two / "pelican.jpg")
        shutil.copyfile(PHOTOS / "aib/7.jpg", one / "7.jpg")
        wait_until(lambda: str(one / "7.jpg") in photos_under(engine, one), what="a photo in the folder still watched")
        time.sleep(0.5)
    finally:
        service.stop()
    assert photos_under(engine, two) == set()


def test_cancel_stops_the_run_and_drops_what_was_queued(engine, tmp_path, slow_decodes):
    big, later = tmp_path / "big", tmp_path / "later"
    copy_photos(big, [f"aib/{i}.jpg" for i in range(100)])
    copy_photos(later, ["labelled/dog.jpg"])
    busy: list[bool] = []
    service, reports = started(engine, watch=False, on_busy=busy.append)
    try:
        service.add_folders([str(big)])
        service.add_folders([str(later)])
        wait_until(lambda: photos_under(engine, big), what="the first batch")
        service.cancel()
        wait_until(lambda: service.idle and busy == [True, False], what="the run to stop")
    finally:
        service.stop()
    assert reports[-1][1].cancelled and 0 < len(photos_under(engine, big)) < 100
    assert photos_under(engine, later) == set()


def test_library_search_and_duplicate_scans_open_no_onnx_session(data_dir, lite0, tmp_path):
    from imgsim_desktop.core.duplicates import find_groups

    lib = tmp_path / "lib"
    copy_photos(lib, ["ukbench/ukbench00120.jpg", "ukbench/ukbench00120_resize.jpg", "labelled/dog.jpg"])
    with Engine(data_dir) as first:
        first._backbone = lite0
        index_now(first, [str(lib)])
    with Engine(data_dir) as reader:
        hits = reader.similar(lib / "ukbench00120.jpg", k=2)
        groups = find_groups(reader.searcher)
        assert reader._backbone is None  # no model loaded for either
    assert hits[0].path == str(lib / "ukbench00120_resize.jpg")
    assert any({Path(m.path).name for m in g.members} == {"ukbench00120.jpg", "ukbench00120_resize.jpg"} for g in groups)


def test_a_start_with_nothing_new_loads_no_model_and_a_damaged_one_stops_only_embedding(data_dir, lite0, tmp_path, monkeypatch):
    """Folder changes, deletions and moves need no model: with a damaged model file the library
    still follows them, and says why only when a new photo needs embedding."""
    from imgsim_desktop.core.backbones import ModelError

    lib = tmp_path / "lib"
    copy_photos(lib, ["labelled/dog.jpg", "labelled/cat.jpg"])
    with Engine(data_dir) as first:
        first._backbone = lite0
        index_now(first, [str(lib)])

    def damaged(self, spec, **_):
        raise ModelError(f"{spec.path}: checksum mismatch (the file is damaged); reinstall the model")

    monkeypatch.setattr(Backbone, "__init__", damaged)
    errors: list[str] = []
    with Engine(data_dir) as engine:
        service, reports = started(engine, on_error=errors.append)
        try:
            wait_until(lambda: reports and service.idle, what="the start-up check")
            assert engine._backbone is None and reports[0][1].provider is None and errors == []
            (lib / "cat.jpg").unlink()
            wait_until(lambda: photos_under(engine, lib) == {str(lib / "dog.jpg")}, what="the deletion")
            shutil.copyfile(PHOTOS / "aib/5.jpg", lib / "new.jpg")
            wait_until(lambda: errors, what="the new photo's failure")
            assert "checksum mismatch" in errors[0] and photos_under(engine, lib) == {str(lib / "dog.jpg")}
        finally:
            service.stop()

"""A live library: create, modify, move and delete photos in watched folders and check what search returns."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from watchdog.observers import Observer

from conftest import PHOTOS, copy_photos
from imgsim_desktop.core import folder_watch as watcher_mod
from imgsim_desktop.core import indexer as indexer_mod
from imgsim_desktop.core.engine import Engine
from imgsim_desktop.core.library_service import NATIVE, POLLING, LibraryService, index_now

START = [f"aib/{i}.jpg" for i in range(6)]


def wait_until(condition, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.03)
    raise AssertionError(f"timed out waiting for {what}")


def top(engine: Engine, photo: str, k: int = 3) -> list[tuple[str, float]]:
    """Nearest library photos to one of the shared photos (a query from outside the library)."""
    vector, _ = engine.searcher.vector_for_file(PHOTOS / photo)
    return [(r.path, r.score) for r in engine.searcher.similar_to_vector(vector, k)]


def found_at(engine: Engine, photo: str, path: Path) -> bool:
    hits = top(engine, photo, 1)
    return bool(hits) and hits[0][0] == str(path) and hits[0][1] > 0.99


@pytest.fixture
def library(tmp_path) -> Path:
    lib = tmp_path / "lib"
    copy_photos(lib, START)
    return lib


@pytest.fixture
def watch(engine, library):
    """Start a watcher (polling every 0.1 s unless told otherwise) and collect what it reports."""
    started: list[LibraryService] = []
    batches: list[tuple[str, object]] = []

    def start(**options) -> LibraryService:
        options.setdefault("polling", True)
        options.setdefault("poll_interval", 0.1)
        watcher = LibraryService(engine=engine, roots=[str(library)], on_report=lambda kind, report: batches.append((kind, report)), settle_s=0.3, **options)
        watcher.start()
        started.append(watcher)
        wait_until(lambda: batches and batches[0][0] == "reconcile", what="the start-up reconcile")
        return watcher

    start.batches = batches
    yield start
    for watcher in started:
        watcher.stop()


def forbid_decoding(monkeypatch) -> None:
    def must_not_decode(path, *_a, **_k):
        raise AssertionError(f"{path} was decoded again")

    monkeypatch.setattr(indexer_mod, "open_photo", must_not_decode)


def test_create_modify_move_delete_are_followed_by_search(watch, engine, library, monkeypatch):
    watcher = watch()
    assert watcher.mode.mode == POLLING
    assert watch.batches[0][1].indexed == len(START)

    created = library / "new.jpg"
    shutil.copyfile(PHOTOS / "aib/50.jpg", created)
    wait_until(lambda: found_at(engine, "aib/50.jpg", created), what="the new photo")

    # Modified in place: the old content is no longer found there, the new one is.
    shutil.copyfile(PHOTOS / "aib/60.jpg", created)
    os.utime(created, ns=(time.time_ns(), time.time_ns() + 2_000_000_000))
    wait_until(lambda: found_at(engine, "aib/60.jpg", created), what="the modified photo")
    assert all(path != str(created) for path, _ in top(engine, "aib/50.jpg", 5))
    # A poll may have caught the copy before the utime: let the watcher catch up with the final
    # state, or it would still be re-reading the file when decoding is forbidden below.
    final = created.stat().st_mtime_ns
    wait_until(lambda: (rec := engine.catalog.file_by_path(str(created))) is not None and rec.mtime_ns == final, what="the final modification")
    assert watcher.wait_idle(10)

    # Moved into a new subfolder and renamed: same row, same vector, nothing decoded.
    vector_id = engine.catalog.vector_ids_for_paths(engine.spec.name, [str(created)])[str(created)]
    forbid_decoding(monkeypatch)
    (library / "sub").mkdir()
    moved = library / "sub" / "renamed.jpg"
    os.rename(created, moved)
    wait_until(lambda: found_at(engine, "aib/60.jpg", moved), what="the moved photo")
    assert engine.catalog.vector_ids_for_paths(engine.spec.name, [str(moved)]) == {str(moved): vector_id}
    assert engine.catalog.file_by_path(str(created)) is None
    assert any(report.moved == 1 for kind, report in watch.batches if kind == "changes")

    # Deleted: gone from results and from the catalog.
    moved.unlink()
    wait_until(lambda: all(path != str(moved) for path, _ in top(engine, "aib/60.jpg", 5)), what="the deleted photo to vanish")
    assert engine.catalog.file_by_path(str(moved)) is None
    assert len(engine.catalog.photos(engine.spec.name)) == len(START)


def test_native_observer_follows_new_renamed_and_deleted_photos(watch, engine, library, monkeypatch):
    watcher = watch(polling=False)
    assert watcher.mode.mode == NATIVE and watcher.mode.reason is None
    created = library / "fresh.jpg"
    started = time.monotonic()
    shutil.copyfile(PHOTOS / "aib/70.jpg", created)
    wait_until(lambda: found_at(engine, "aib/70.jpg", created), timeout=5, what="the new photo")
    assert time.monotonic() - started < 2.0  # the promise: findable within 2 s of the file being closed
    forbid_decoding(monkeypatch)
    renamed = library / "fresh-renamed.jpg"
    os.rename(created, renamed)
    wait_until(lambda: found_at(engine, "aib/70.jpg", renamed), timeout=5, what="the renamed photo")
    renamed.unlink()
    wait_until(lambda: all(p != str(renamed) for p, _ in top(engine, "aib/70.jpg", 5)), timeout=5, what="the deleted photo to vanish")


def test_a_folder_moved_within_the_library_keeps_its_embeddings(watch, engine, library, monkeypatch):
    copy_photos(library / "trip", ["aib/80.jpg", "aib/81.jpg"])
    watch(polling=False)
    before = engine.catalog.vector_ids_for_paths(engine.spec.name, [str(library / "trip" / n) for n in ("80.jpg", "81.jpg")])
    assert len(before) == 2
    forbid_decoding(monkeypatch)
    os.rename(library / "trip", library / "trip-2024")
    wait_until(lambda: found_at(engine, "aib/81.jpg", library / "trip-2024" / "81.jpg"), what="the moved folder")
    after = engine.catalog.vector_ids_for_paths(engine.spec.name, [str(library / "trip-2024" / n) for n in ("80.jpg", "81.jpg")])
    assert sorted(after.values()) == sorted(before.values())
    assert not engine.catalog.paths_under(str(library / "trip"))


@pytest.mark.parametrize("fails_in", ["schedule", "start"])
def test_watch_limit_falls_back_to_polling_and_says_so(watch, engine, library, monkeypatch, fails_in):
    class LimitedObserver(Observer):
        def schedule(self, *args, **kwargs):
            if fails_in == "schedule":
                raise OSError(errno.ENOSPC, "inotify watch limit reached")
            return super().schedule(*args, **kwargs)

        def start(self):
            if fails_in == "start":
                raise OSError(errno.ENOSPC, "inotify watch limit reached")
            super().start()

    monkeypatch.setattr(watcher_mod, "_native_observer", LimitedObserver)
    modes = []
    watcher = watch(polling=False, on_mode=modes.append)
    assert watcher.mode.mode == POLLING and modes == [watcher.mode]
    assert "inotify watch limit reached" in watcher.mode.reason and "max_user_watches" in watcher.mode.reason
    assert "checking folders every" in watcher.mode.describe()
    created = library / "after-fallback.jpg"
    shutil.copyfile(PHOTOS / "aib/90.jpg", created)
    wait_until(lambda: found_at(engine, "aib/90.jpg", created), what="a photo added while polling")


def test_too_many_folders_for_the_limit_polls_from_the_start(watch, monkeypatch):
    monkeypatch.setattr(watcher_mod, "watch_limit", lambda: 0)
    watcher = watch(polling=False)
    assert watcher.mode.mode == POLLING and "more folders than" in watcher.mode.reason


def record_decodes(monkeypatch) -> list[str]:
    """From now on, the names of the files the indexer decodes, in order."""
    names: list[str] = []
    real = indexer_mod.open_photo

    def recording(path, min_side=None):
        names.append(Path(path).name)
        return real(path, min_side)

    monkeypatch.setattr(indexer_mod, "open_photo", recording)
    return names


def test_half_written_photo_is_retried_not_marked_broken(watch, engine, library, monkeypatch):
    attempts = record_decodes(monkeypatch)
    watch(polling=False)
    data = (PHOTOS / "aib/95.jpg").read_bytes()
    path = library / "slow-copy.jpg"
    with open(path, "wb") as fh:
        fh.write(data[: len(data) // 2])
        fh.flush()
        # Longer than the settle time, and the file stays open: the watcher tries half a JPEG.
        wait_until(lambda: "slow-copy.jpg" in attempts, what="a look at the half-written file")
        time.sleep(0.3)
        assert engine.catalog.file_by_path(str(path)) is None  # no error row stored meanwhile
        fh.write(data[len(data) // 2 :])
    wait_until(lambda: found_at(engine, "aib/95.jpg", path), what="the completed photo")
    assert engine.catalog.errors() == []
    assert not [e for _, report in watch.batches for e in report.errors]
    assert attempts.count("slow-copy.jpg") >= 2


def test_burst_of_new_photos_is_batched_and_all_findable(watch, engine, library):
    watch(polling=False)
    names = [f"aib/{i}.jpg" for i in range(20, 60)]
    copy_photos(library / "import", names)
    last = library / "import" / "59.jpg"
    wait_until(lambda: len(engine.catalog.photos(engine.spec.name)) == len(START) + len(names), what="the import")
    wait_until(lambda: found_at(engine, "aib/59.jpg", last), what="the last imported photo")
    change_batches = [r for kind, r in watch.batches if kind == "changes"]
    assert sum(r.indexed for r in change_batches) == len(names)
    assert len(change_batches) <= 10  # 40 files, hundreds of events: a handful of batches


def test_start_up_reconcile_recognises_moves_and_only_embeds_new_photos(engine, library, monkeypatch):
    with Engine(engine.data_dir) as first:
        first._backbone = engine.backbone
        index_now(first, [str(library)])
    os.rename(library / "0.jpg", library / "zero.jpg")
    (library / "sub").mkdir()
    os.rename(library / "1.jpg", library / "sub" / "one.jpg")
    (library / "2.jpg").unlink()
    shutil.copyfile(PHOTOS / "aib/40.jpg", library / "added.jpg")
    shutil.copyfile(library / "3.jpg", library / "copy-of-3.jpg")
    decoded = record_decodes(monkeypatch)
    reports = []
    watcher = LibraryService(engine=engine, roots=[str(library)], on_report=lambda kind, r: reports.append(r), polling=True, poll_interval=0.2)
    watcher.start()
    try:
        wait_until(lambda: reports, what="the reconcile")
    finally:
        watcher.stop()
    report = reports[0]
    assert (report.moved, report.copied, report.removed, report.indexed) == (2, 1, 1, 1)
    assert decoded == ["added.jpg"]
    assert found_at(engine, "aib/0.jpg", library / "zero.jpg")
    assert found_at(engine, "aib/1.jpg", library / "sub" / "one.jpg")
    assert all(p != str(library / "2.jpg") for p, _ in top(engine, "aib/2.jpg", 5))
    copies = {p for p, s in top(engine, "aib/3.jpg", 2) if s > 0.99}
    assert copies == {str(library / "3.jpg"), str(library / "copy-of-3.jpg")}


def test_unmounted_library_folder_is_not_emptied_by_the_watcher(watch, engine, library, tmp_path):
    watch()
    library.rename(tmp_path / "unplugged")
    time.sleep(1.0)  # several polls and a batch window
    assert len(engine.catalog.photos(engine.spec.name)) == len(START)


def _start_cli_watch(library: Path, data_dir: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "imgsim_desktop.cli", "watch", str(library), "--json", "--poll", "0.2", "--data-dir", str(data_dir)]
    # As from a terminal: Ctrl+C acts even when this test runs in a background job (whose shell
    # ignores SIGINT, and children inherit that).
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_cli_watch_prints_one_json_line_per_batch_and_stops_cleanly(library, data_dir, stop_signal):
    proc = _start_cli_watch(library, data_dir)
    try:
        lines = [json.loads(proc.stdout.readline()) for _ in range(2)]
        assert lines[0]["event"] == "mode" and lines[0]["mode"] == POLLING
        assert lines[1]["event"] == "reconcile" and lines[1]["indexed"] == len(START)
        shutil.copyfile(PHOTOS / "aib/77.jpg", library / "added.jpg")
        os.rename(library / "0.jpg", library / "zero.jpg")
        changes = json.loads(proc.stdout.readline())
        while changes["indexed"] + changes["moved"] < 2:  # the two may land in one batch or two
            more = json.loads(proc.stdout.readline())
            changes = {k: changes.get(k, 0) + more[k] if k in ("indexed", "moved") else more[k] for k in more}
        assert changes["event"] == "changes" and (changes["indexed"], changes["moved"]) == (1, 1)
        proc.send_signal(stop_signal)
        try:
            rest, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGUSR1)  # the CLI prints every thread's stack: say where it hangs
            time.sleep(1)
            proc.kill()
            raise AssertionError(f"watch did not stop on {stop_signal!r}:\n{proc.communicate()[1][-8000:]}") from None
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert [json.loads(line)["event"] for line in rest.splitlines()] == ["stopping", "stopped"]


def test_cli_watch_names_a_missing_folder(tmp_path, data_dir):
    out = subprocess.run([sys.executable, "-m", "imgsim_desktop.cli", "watch", str(tmp_path / "nope"), "--data-dir", str(data_dir)], capture_output=True, text=True)
    assert out.returncode == 2 and f"not a folder: {tmp_path / 'nope'}" in out.stderr

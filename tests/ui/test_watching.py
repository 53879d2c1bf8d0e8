"""While the app runs, photos added, moved or deleted outside it show up (or vanish) by themselves."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import PHOTOS, copy_photos
from imgsim_desktop.core.engine import Engine
from imgsim_desktop.core.library_service import index_now
from imgsim_desktop.ui.main_window import MainWindow


def test_the_window_follows_changes_made_outside_it(qtbot, tmp_path, data_dir):
    lib = tmp_path / "lib"
    copy_photos(lib, ["ukbench/ukbench00120.jpg", "ukbench/ukbench00120_resize.jpg", "labelled/dog.jpg", "aib/4.jpg", "aib/7.jpg"])
    with Engine(data_dir) as engine:
        index_now(engine, [str(lib)])
    win = MainWindow(data_dir=str(data_dir))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.index_status.watch_label.text() != "" and win.last_report is not None and win.library_model.total() == 5,
                    timeout=30_000)  # the start's catch-up done and the photo list read (either may come first)
    assert win.index_status.watch_label.text() in ("Watching folders", "Checking folders every 10 s")
    assert win.library_model.total() == 5

    # A photo copied in from a camera card appears, and "Find similar" finds it.
    shutil.copy2(PHOTOS / "ukbench" / "ukbench00120_hflip.jpg", lib / "ukbench00120_hflip.jpg")
    qtbot.waitUntil(lambda: win.library_model.total() == 6, timeout=20_000)
    assert win.status_label.text().startswith("Library updated: 1 new")
    query = str(lib / "ukbench00120.jpg")
    win.find_similar(query)
    qtbot.waitUntil(lambda: win.pages.currentIndex() == 2, timeout=20_000)
    stack = win.results_model.item(1)  # the resized and the mirrored copy: one stacked tile
    assert {Path(it.photo.path).name for it in [stack, *stack.copies]} == {"ukbench00120_resize.jpg", "ukbench00120_hflip.jpg"}

    # Deleted in a file manager: it leaves the results on screen at once.
    (lib / "ukbench00120_resize.jpg").unlink()
    qtbot.waitUntil(lambda: win.library_model.total() == 5, timeout=20_000)
    qtbot.waitUntil(lambda: all(not win.results_model.item(i).photo.path.endswith("_resize.jpg") for i in range(win.results_model.rowCount())), timeout=20_000)
    assert win.results_model.item(0).photo.path == query  # still the same search

    # The photo searched with is deleted: its search closes instead of showing a ghost.
    (lib / "ukbench00120.jpg").unlink()
    qtbot.waitUntil(lambda: win.pages.currentIndex() == 1, timeout=20_000)
    assert "ukbench00120.jpg was deleted" in win.status_label.text()

    # Renamed: the photo keeps its place in the library under its new name, without re-embedding.
    with qtbot.waitSignal(win.writer.changes, timeout=20_000, check_params_cb=lambda report: report.moved == 1) as batch:
        (lib / "dog.jpg").rename(lib / "rex.jpg")
    assert batch.args[0].indexed == 0
    qtbot.waitUntil(lambda: _in_library(win, "rex.jpg"), timeout=20_000)
    assert win.library_model.total() == 4 and not _in_library(win, "dog.jpg")
    win.close()


def _in_library(win, name: str) -> bool:
    return any(p.path.endswith(name) for p in win.library_model.all_photos())


def test_closing_right_after_a_watched_change_leaves_no_late_reload(qtbot, tmp_path, data_dir):
    copy_photos(tmp_path / "lib", ["labelled/dog.jpg"])
    with Engine(data_dir) as engine:
        report = index_now(engine, [str(tmp_path / "lib")])
    win = MainWindow(data_dir=str(data_dir))
    qtbot.addWidget(win)
    win.show()
    win.writer.changes.emit(report)  # a reload is now due in a moment...
    win.close()  # ...but the window, and its library worker, are gone first
    qtbot.wait(600)  # pytest-qt fails the test on any exception raised in the event loop meanwhile


def test_a_folder_added_while_watching_is_embedded_once(qtbot, tmp_path, data_dir, monkeypatch):
    """One writer: a folder added while the folders are watched is embedded once, not by the
    indexing run and again by the watcher (40 photos were 56 embeddings with two pipelines)."""
    import threading

    from imgsim_desktop.core.backbones import Backbone

    copy_photos(tmp_path / "lib", ["labelled/dog.jpg"])
    with Engine(data_dir) as engine:
        index_now(engine, [str(tmp_path / "lib")])
    embedded = [0]
    lock = threading.Lock()
    real_embed = Backbone.embed

    def counting_embed(self, batch):
        with lock:
            embedded[0] += len(batch)
        return real_embed(self, batch)

    monkeypatch.setattr(Backbone, "embed", counting_embed)
    win = MainWindow(data_dir=str(data_dir))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.writer.mode is not None and win.last_report is not None, timeout=30_000)
    qtbot.wait(500)
    new = tmp_path / "new"
    copy_photos(new, [f"aib/{i}.jpg" for i in range(40)])
    win.add_folder_path(str(new))
    qtbot.waitUntil(lambda: win.library_model.total() == 41 and not win.writer.busy, timeout=60_000)
    qtbot.wait(3000)  # what the watcher would do with the new folder, it has done by now
    assert embedded[0] == 40
    win.close()


def test_a_start_with_nothing_changed_scans_the_library_once(qtbot, tmp_path, data_dir, monkeypatch):
    """The start-up catch-up and the watcher's reconcile were two scans of every folder; one writer scans once."""
    from imgsim_desktop.core import indexer as indexer_mod

    copy_photos(tmp_path / "lib", ["labelled/dog.jpg", "aib/4.jpg"])
    with Engine(data_dir) as engine:
        index_now(engine, [str(tmp_path / "lib")])
    scans: list[list[str]] = []
    real_scan = indexer_mod.scan
    monkeypatch.setattr(indexer_mod, "scan", lambda paths, *a, **k: scans.append(list(paths)) or real_scan(paths, *a, **k))
    win = MainWindow(data_dir=str(data_dir))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.writer.mode is not None and win.last_report is not None, timeout=30_000)
    qtbot.wait(1500)  # a second scan, had there been one, would have started by now
    assert scans == [[str(tmp_path / "lib")]]
    assert win.last_report.skipped == 2 and win.last_report.indexed == 0
    win.close()

"""The library changes under a running indexer: folders removed or excluded mid-run, a moved
drive, live reloads; the user's selection and preview survive, and nothing is left behind."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot

from conftest import PHOTOS, copy_photos
from imgsim_desktop.core.engine import CATALOG_NAME, Engine
from imgsim_desktop.core.library_service import index_now
from imgsim_desktop.core.thumbnails import thumb_cache
from imgsim_desktop.storage.catalog import Catalog, PhotoRow
from imgsim_desktop.ui.main_window import MainWindow
from imgsim_desktop.ui.photo_grid import PhotoGrid
from imgsim_desktop.ui.photo_model import Item, PhotoListModel
from imgsim_desktop.ui.preview import PreviewDialog
from imgsim_desktop.workers.lifecycle import stop_thread, unfinished_workers
from imgsim_desktop.workers.thumb_loader import ThumbnailLoader


def _open_window(qtbot, data_dir) -> MainWindow:
    win = MainWindow(data_dir=str(data_dir))
    qtbot.addWidget(win)
    win.show()
    return win


def _catalog_state(data_dir) -> tuple[list[str], set[str]]:
    with Catalog(Path(data_dir) / CATALOG_NAME) as catalog:
        return catalog.roots(), {p.path for p in catalog.photos()}


def test_removing_running_and_queued_folders_leaves_nothing_behind(qtbot, tmp_path, data_dir, wait_part_way):
    big, dropped, kept = tmp_path / "big", tmp_path / "dropped", tmp_path / "kept"
    copy_photos(big, [f"aib/{i}.jpg" for i in range(100)])
    copy_photos(dropped, ["labelled/dog.jpg", "labelled/cat.jpg"])
    copy_photos(kept, ["labelled/pelican.jpg", "scenes/fruits.jpg", "aib/3.jpg"])
    win = _open_window(qtbot, data_dir)
    wait_part_way(qtbot, win, lambda: [win.add_folder_path(str(folder)) for folder in (big, dropped, kept)])

    win.remove_folder_path(str(dropped))  # still waiting in the queue
    win.remove_folder_path(str(big))  # being indexed right now
    qtbot.waitUntil(lambda: not win.writer.busy and win.library_model.total() == 3, timeout=60_000)
    qtbot.waitUntil(lambda: win.library_panel.roots == [str(kept)], timeout=10_000)
    win.close()
    roots, photos = _catalog_state(data_dir)
    assert roots == [str(kept)]
    assert {Path(p).parent for p in photos} == {kept}  # no orphans of the removed folders


def test_excluding_a_subfolder_mid_run_indexes_the_rest(qtbot, tmp_path, data_dir, wait_part_way):
    lib = tmp_path / "lib"
    copy_photos(lib / "a", [f"aib/{i}.jpg" for i in range(60)])
    copy_photos(lib / "b", [f"aib/{i}.jpg" for i in range(60, 100)])
    win = _open_window(qtbot, data_dir)
    wait_part_way(qtbot, win, lambda: win.add_folder_path(str(lib)))
    win.exclude_folder_path(str(lib / "b"))
    # The run stops, the exclusion lands, the folder is indexed again without b/.
    qtbot.waitUntil(lambda: win.last_report is not None and not win.writer.busy, timeout=60_000)
    qtbot.waitUntil(lambda: win.library_model.total() == 60, timeout=20_000)
    win.close()
    roots, photos = _catalog_state(data_dir)
    assert roots == [str(lib)] and {Path(p).parent.name for p in photos} == {"a"} and len(photos) == 60


def test_a_library_folder_that_is_gone_is_reported_and_its_photos_kept(qtbot, tmp_path, data_dir):
    lib = tmp_path / "usb"
    copy_photos(lib, ["labelled/dog.jpg", "labelled/cat.jpg"])
    with Engine(data_dir) as engine:
        index_now(engine, [str(lib)])
    lib.rename(tmp_path / "unplugged")
    win = _open_window(qtbot, data_dir)
    # The start-up check (no model needed now) can answer before the photo list is read: wait for both.
    qtbot.waitUntil(lambda: win.last_report is not None and win.library_model.total() == 2, timeout=30_000)
    assert win.status_label.text().startswith("Folder not found: usb")
    win.close()


def _grid_of(paths: list[Path]) -> tuple[PhotoGrid, PhotoListModel]:
    model = PhotoListModel()
    model.set_items([Item(PhotoRow(i, str(p), p.stat().st_size, p.stat().st_mtime_ns, None, None, None, None)) for i, p in enumerate(paths)])
    model.set_sort("name")
    return PhotoGrid(model), model


def test_selection_and_current_photo_survive_a_live_reload(qtbot):
    photos = sorted((PHOTOS / "aib").glob("*.jpg"))[:20]
    grid, model = _grid_of(photos[5:])
    qtbot.addWidget(grid)
    picked = [str(photos[i]) for i in (6, 7, 12)]
    for path in picked:
        grid.selectionModel().select(model.index(model.row_of(path)), grid.selectionModel().SelectionFlag.Select)
    grid.selectionModel().setCurrentIndex(model.index(model.row_of(picked[-1])), grid.selectionModel().SelectionFlag.NoUpdate)

    # Indexing found more photos; some sort before the selected ones, so every row moves.
    model.set_items([Item(PhotoRow(i, str(p), 1, 1, None, None, None, None)) for i, p in enumerate(photos)])
    assert sorted(grid.selected_paths()) == sorted(picked)
    assert grid.current_item().photo.path == picked[-1]


def test_preview_follows_its_photo_through_reloads_and_closes_when_it_leaves(qtbot, tmp_path):
    photos = sorted((PHOTOS / "aib").glob("*.jpg"))[:10]
    grid, model = _grid_of(photos[3:])
    qtbot.addWidget(grid)
    loader = ThumbnailLoader(thumb_cache(tmp_path / "thumbs"), workers=1)
    dialog = PreviewDialog(grid, loader, model.row_of(str(photos[5])))
    dialog.show()
    model.set_items([Item(PhotoRow(i, str(p), 1, 1, None, None, None, None)) for i, p in enumerate(photos)])
    assert dialog.current_path() == str(photos[5]) and dialog._row == 5
    dialog.step(1)
    assert dialog.current_path() == str(photos[6])
    model.set_items([Item(PhotoRow(i, str(p), 1, 1, None, None, None, None)) for i, p in enumerate(photos) if i != 6])
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=2_000)
    loader.shutdown()


class _SlowJob(QObject):
    go = Signal()

    @Slot()
    def work(self) -> None:
        time.sleep(1.0)  # something that cannot be interrupted, like an Annoy build


def test_a_worker_past_its_stop_deadline_is_parked_not_destroyed(qtbot):
    thread, job = QThread(), _SlowJob()
    job.moveToThread(thread)
    job.go.connect(job.work)
    thread.start()
    job.go.emit()
    time.sleep(0.1)
    assert not stop_thread(thread, job, timeout_ms=50)
    del thread, job  # with no parking, this would destroy a running QThread and abort the process
    assert unfinished_workers() == 1
    qtbot.waitUntil(lambda: unfinished_workers() == 0, timeout=5_000)


def test_show_in_folder_falls_back_to_the_folder_without_a_file_manager_service(monkeypatch, tmp_path):
    from PySide6.QtGui import QDesktopServices

    from imgsim_desktop.ui import reveal

    target = tmp_path / "lib" / "dog.jpg"
    copy_photos(tmp_path / "lib", ["labelled/dog.jpg"])
    opened: list[str] = []
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path / 'no-bus'}")
    monkeypatch.setattr(reveal.sys, "platform", "linux")
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()))
    reveal.show_in_folder(str(target))
    assert opened == [str(tmp_path / "lib")]


def test_a_folder_inside_the_library_is_covered_and_removing_a_nested_one_keeps_its_photos(qtbot, tmp_path, data_dir, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    lib = tmp_path / "lib"
    copy_photos(lib / "trip", ["labelled/dog.jpg", "labelled/cat.jpg"])
    copy_photos(lib, ["labelled/pelican.jpg"])
    with Engine(data_dir) as engine:
        index_now(engine, [str(lib), str(lib / "trip")])  # an older library: a folder and one inside it, both roots
        model = engine.spec.name
    win = _open_window(qtbot, data_dir)
    qtbot.waitUntil(lambda: win.library_model.total() == 3, timeout=30_000)
    told: list[str] = []
    monkeypatch.setattr(QMessageBox, "information", lambda _p, _t, text, *a, **k: told.append(text))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    win.remove_folder(str(lib / "trip"))
    qtbot.waitUntil(lambda: str(lib / "trip") not in win.library_panel.roots, timeout=20_000)
    qtbot.wait(300)
    assert win.library_model.total() == 3  # lib still covers trip's photos: none vanish
    with Catalog(data_dir / CATALOG_NAME) as catalog:
        assert len(catalog.embedded_file_ids(model)) == 3  # and their embeddings stay
    win.add_folder_path(str(lib / "trip"))  # adding it again: already covered
    assert told and "is inside" in told[0] and win.library_panel.roots == [str(lib)]
    win.close()


def test_the_sidebar_shows_subfolders_with_counts_filters_the_grid_and_has_its_actions_in_view(qtbot, tmp_path, data_dir, monkeypatch):
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    lib = tmp_path / "lib"
    copy_photos(lib / "trip" / "day1", ["aib/1.jpg", "aib/2.jpg"])
    copy_photos(lib / "trip" / "day2", ["aib/3.jpg"])
    copy_photos(lib / "home", ["aib/4.jpg", "aib/5.jpg", "aib/6.jpg"])
    copy_photos(lib, ["aib/7.jpg"])
    with Engine(data_dir) as engine:
        index_now(engine, [str(lib)])
    win = MainWindow(data_dir=str(data_dir))
    qtbot.addWidget(win)
    win.show()
    side = win.library_panel
    qtbot.waitUntil(lambda: win.library_model.total() == 7 and side.tree.topLevelItemCount() == 2, timeout=30_000)

    def tree(item) -> tuple:
        return (item.text(0), item.text(1), [tree(item.child(i)) for i in range(item.childCount())])

    assert [tree(side.tree.topLevelItem(i)) for i in range(2)] == [
        ("All photos", "7", []),
        ("lib", "7", [("home", "3", []), ("trip", "3", [("day1", "2", []), ("day2", "1", [])])]),
    ]
    assert not side.remove_button.isEnabled()  # All photos: no library folder to act on
    side.choose(str(lib / "trip"))
    assert sorted(win.library_model.item(i).name for i in range(win.library_model.rowCount())) == ["1.jpg", "2.jpg", "3.jpg"]
    assert win.pages.currentIndex() == 1 and side.rescan_button.isVisible() and side.remove_button.isEnabled()
    win._reload_photos()  # a live reload (indexing, the watcher) keeps the chosen subfolder
    qtbot.wait(300)
    assert side.current_folder() == str(lib / "trip") and win.library_model.rowCount() == 3

    # The actions are buttons in view, acting on the library folder the chosen one is in.
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda _p, _t, text, *a, **k: asked.append(text) or QMessageBox.StandardButton.No)
    side.remove_button.click()
    assert asked and str(lib) in asked[0] and win.library_panel.roots == [str(lib)]
    before = win.last_report
    side.rescan_button.click()
    qtbot.waitUntil(lambda: win.last_report is not before and win.status_label.text().startswith("Indexed:"), timeout=30_000)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(lib / "trip" / "day2"))
    side.exclude_button.click()
    qtbot.waitUntil(lambda: win.library_model.total() == 6, timeout=20_000)
    qtbot.waitUntil(lambda: side.tree.topLevelItem(1).text(1) == "6", timeout=5_000)
    assert side.current_folder() == str(lib / "trip") and win.library_model.rowCount() == 2
    win.close()

"""Opening the app on an existing library shows its photos, the model and the device in use."""

from __future__ import annotations

from conftest import copy_photos
from imgsim_desktop.core.engine import Engine
from imgsim_desktop.core.library_service import index_now
from imgsim_desktop.ui.main_window import MainWindow


def _open_on(qtbot, tmp_path, data_dir, names: list[str]) -> MainWindow:
    """A window on a library of ``names`` (under shared/photos), indexed and shown."""
    copy_photos(tmp_path / "lib", names)
    with Engine(data_dir) as engine:
        index_now(engine, [str(tmp_path / "lib")])
    return _show(qtbot, data_dir, len(names))


def _show(qtbot, data_dir, count: int) -> MainWindow:
    win = MainWindow(data_dir=str(data_dir))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.library_model.total() == count, timeout=30_000)
    return win


def test_window_opens_on_existing_library(qtbot, tmp_path, data_dir):
    copy_photos(tmp_path / "lib", ["labelled/dog.jpg", "labelled/cat.jpg", "labelled/pelican.jpg"])
    with Engine(data_dir) as engine:
        index_now(engine, [str(tmp_path / "lib")])
    window = MainWindow(data_dir=str(data_dir))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.library_model.total() == 3 and window.last_report is not None, timeout=30_000)
    assert window.pages.currentIndex() == 1
    assert window.last_report.skipped == 3 and window.last_report.indexed == 0  # the start-up catch-up found nothing new
    assert window.device_label.text() in ("EfficientNet-Lite0 · CPU", "EfficientNet-Lite0 · CUDA")
    window.close()


def test_broken_settings_open_with_defaults_and_a_notice(qtbot, data_dir, monkeypatch):
    import json

    from PySide6.QtWidgets import QMessageBox

    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "settings.json").write_text(json.dumps({"thumb_size": 0, "k": 30}))  # 0 once divided by zero in the thumbnail threads
    told: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, title, text, *a, **k: told.append(f"{title}: {text}"))
    win = MainWindow(data_dir=str(data_dir))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: bool(told), timeout=5_000)
    assert "thumb_size = 0" in told[0] and win.zoom.value() == 160 and win.settings.k == 30
    win.close()


def test_a_backbone_that_is_not_installed_is_replaced_with_a_notice(qtbot, data_dir, monkeypatch):
    import json

    from PySide6.QtWidgets import QMessageBox

    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "settings.json").write_text(json.dumps({"model": "vgg16"}))  # exported on another machine, not here
    told: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, title, text, *a, **k: told.append(text))
    win = MainWindow(data_dir=str(data_dir))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: bool(told), timeout=5_000)
    assert "'vgg16' is not installed here; using EfficientNet-Lite0 instead" in told[0]
    assert win.device_label.text().startswith("EfficientNet-Lite0")
    win.close()


def test_the_app_refuses_an_emptied_catalog_instead_of_showing_an_empty_library(qtbot, data_dir, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from imgsim_desktop.__main__ import main
    from imgsim_desktop.storage.catalog import Catalog

    with Catalog(data_dir / "catalog.sqlite3") as catalog:
        catalog.add_root("/photos")
        catalog.backup()  # a library that existed: it has a backup
    (data_dir / "catalog.sqlite3").write_bytes(b"")
    for extra in ("-wal", "-shm"):
        (data_dir / f"catalog.sqlite3{extra}").unlink(missing_ok=True)
    told: list[str] = []
    monkeypatch.setattr(QMessageBox, "critical", lambda _p, title, text, *a, **k: told.append(text))
    assert main(["--data-dir", str(data_dir)]) == 1
    assert told and "is empty" in told[0] and (data_dir / "catalog.sqlite3").read_bytes() == b""


def test_library_and_duplicates_stay_reachable_after_a_search(qtbot, tmp_path, data_dir):
    """Click a photo, Ctrl+F, then Library / Duplicates / Ctrl+L: each goes where it says, even with
    the focus in the results' spin box (its editingFinished once re-ran the search and snapped back)."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QToolButton

    win = _open_on(qtbot, tmp_path, data_dir, ["labelled/dog.jpg", "labelled/cat.jpg", "labelled/pelican.jpg"])

    def search() -> None:
        win.grid.setCurrentIndex(win.library_model.index(0))
        win.act_similar.trigger()
        qtbot.waitUntil(lambda: win.pages.currentIndex() == 2 and win.results_model.rowCount() > 1, timeout=20_000)
        win.k_box.setFocus()
        qtbot.waitUntil(win.k_box.hasFocus, timeout=2_000)

    def click(action) -> None:
        button = next(b for b in win.findChildren(QToolButton) if b.defaultAction() is action)
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)

    for go, page in ((lambda: click(win.act_library), 1), (lambda: click(win.act_duplicates), win.pages.indexOf(win.dup_page)),
                     (lambda: qtbot.keyClick(win, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier), 1)):  # fmt: skip
        search()
        go()
        qtbot.wait(600)  # any re-run search would have answered by now
        assert win.pages.currentIndex() == page
    search()  # a new number in the box does search again, with that many results
    win.k_box.setValue(1)
    win.k_box.editingFinished.emit()
    qtbot.waitUntil(lambda: win.results_model.rowCount() == 2, timeout=20_000)  # the query and one neighbour
    assert win.pages.currentIndex() == 2 and win.settings.k == 1
    win.close()


def test_which_files_could_not_be_read_is_one_click_away(qtbot, tmp_path, data_dir):
    from PySide6.QtCore import Qt

    lib = tmp_path / "lib"
    copy_photos(lib, ["labelled/dog.jpg", "ukbench/ukbench09268_corrupt.jpg"])
    (lib / "empty.jpg").write_bytes(b"")
    win = MainWindow(data_dir=str(data_dir))
    qtbot.addWidget(win)
    win.show()
    win.add_folder_path(str(lib))
    qtbot.waitUntil(lambda: "2 could not be read" in win.index_status.label.text(), timeout=60_000)
    assert win.index_status.errors_button.isVisible()
    qtbot.mouseClick(win.index_status.errors_button, Qt.MouseButton.LeftButton)
    dialog = win.unreadable_dialog
    qtbot.waitUntil(dialog.isVisible, timeout=5_000)
    rows = {dialog.tree.topLevelItem(i).text(0): dialog.tree.topLevelItem(i).text(1) for i in range(dialog.tree.topLevelItemCount())}
    assert set(rows) == {"ukbench09268_corrupt.jpg", "empty.jpg"} and rows["empty.jpg"] == "empty file (0 bytes)"
    dialog.close()

    # Which? belongs to its sentence: a search's news replaces both. That news is the results
    # page's: it is not left under the duplicates page, and is back with the results.
    win.find_similar(str(lib / "dog.jpg"))
    qtbot.waitUntil(lambda: win.status_label.text().endswith("photos like dog.jpg"), timeout=20_000)
    assert not win.index_status.errors_button.isVisible()
    note = win.status_label.text()
    win.show_duplicates()
    assert win.status_label.text() == ""
    win.go_forward()  # back to the search
    assert win.pages.currentIndex() == 2 and win.status_label.text() == note
    win.close()


def test_try_again_reads_files_that_failed_even_unchanged(qtbot, tmp_path, data_dir, monkeypatch):
    """A photo a decoder could not read then (a missing codec, say) is read when the user asks,
    without the file changing."""
    from PySide6.QtCore import Qt

    from imgsim_desktop.core import indexer as indexer_mod
    from imgsim_desktop.core.decode import DecodeError

    lib = tmp_path / "lib"
    copy_photos(lib, ["labelled/dog.jpg", "labelled/cat.jpg"])
    real_open = indexer_mod.open_photo
    codec = {"installed": False}

    def open_photo(path, *a, **k):
        if path.endswith("dog.jpg") and not codec["installed"]:
            raise DecodeError("no decoder for this file")
        return real_open(path, *a, **k)

    monkeypatch.setattr(indexer_mod, "open_photo", open_photo)
    win = MainWindow(data_dir=str(data_dir))
    qtbot.addWidget(win)
    win.show()
    win.add_folder_path(str(lib))
    qtbot.waitUntil(lambda: "1 could not be read" in win.index_status.label.text(), timeout=60_000)
    assert win.library_model.total() == 1
    codec["installed"] = True
    qtbot.mouseClick(win.index_status.errors_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(win.unreadable_dialog.retry_button, Qt.MouseButton.LeftButton)
    assert not win.unreadable_dialog.isVisible()
    qtbot.waitUntil(lambda: win.library_model.total() == 2, timeout=60_000)
    qtbot.waitUntil(lambda: "could not be read" not in win.index_status.label.text() and not win.index_status.errors_button.isVisible(), timeout=10_000)
    win.close()


def test_sort_order_and_window_size_are_remembered(qtbot, tmp_path, data_dir):
    win = _open_on(qtbot, tmp_path, data_dir, ["labelled/pelican.jpg", "labelled/cat.jpg", "labelled/dog.jpg"])
    win.sort_box.setCurrentIndex(2)  # Name
    win.resize(win.width() + 40, 650)
    size = (win.width(), win.height())
    win.close()
    again = _show(qtbot, data_dir, 3)
    names = [again.library_model.item(i).photo.path.rsplit("/", 1)[-1] for i in range(3)]
    assert again.sort_box.currentText() == "Name" and names == ["cat.jpg", "dog.jpg", "pelican.jpg"]
    assert (again.width(), again.height()) == size
    again.close()


def test_splitter_positions_are_remembered(qtbot, tmp_path, data_dir):
    """The sidebar's width and the duplicates page's split open where the user dragged them."""
    win = _open_on(qtbot, tmp_path, data_dir, ["labelled/cat.jpg", "labelled/dog.jpg"])
    win.act_duplicates.trigger()
    qtbot.waitUntil(lambda: win.dup_page.split.sizes()[0] > 0, timeout=5_000)
    win.splitter.moveSplitter(333, 1)  # what dragging the handle does
    win.dup_page.split.moveSplitter(150, 1)
    sidebar, groups = win.splitter.sizes()[0], win.dup_page.split.sizes()[0]
    assert (sidebar, groups) != (240, 320)  # they did move
    win.close()
    again = _show(qtbot, data_dir, 2)
    assert again.splitter.sizes()[0] == sidebar and again.library_panel.width() == sidebar
    again.act_duplicates.trigger()
    qtbot.waitUntil(lambda: again.dup_page.split.sizes()[0] > 0, timeout=5_000)
    assert again.dup_page.split.sizes()[0] == groups
    again.close()


def test_space_and_enter_open_the_preview_but_space_still_types_in_the_filter(qtbot, tmp_path, data_dir):
    from PySide6.QtCore import Qt

    win = _open_on(qtbot, tmp_path, data_dir, ["labelled/dog.jpg", "labelled/cat.jpg"])
    for key in (Qt.Key.Key_Space, Qt.Key.Key_Return):
        win._preview_dialog = None
        win.grid.setFocus()
        win.grid.setCurrentIndex(win.library_model.index(1))
        qtbot.waitUntil(win.grid.hasFocus, timeout=2_000)
        qtbot.keyClick(win.grid, key)
        qtbot.waitUntil(lambda: getattr(win, "_preview_dialog", None) is not None and win._preview_dialog.isVisible(), timeout=5_000)
        win._preview_dialog.close()
    win._preview_dialog = None
    win.filter_box.setFocus()
    qtbot.keyClicks(win.filter_box, "a b")
    assert win.filter_box.text() == "a b" and win._preview_dialog is None
    win.close()


def test_filter_starts_at_the_top_counts_matches_says_when_none_and_works_on_results(qtbot, tmp_path, data_dir):
    win = _open_on(qtbot, tmp_path, data_dir, [f"aib/{i}.jpg" for i in range(24)])
    win.resize(760, 560)
    qtbot.waitUntil(lambda: win.grid.verticalScrollBar().maximum() > 0, timeout=5_000)
    win.grid.verticalScrollBar().setValue(win.grid.verticalScrollBar().maximum())
    qtbot.keyClicks(win.filter_box, "1")  # 1, 10-19, 21
    assert win.grid.verticalScrollBar().value() == 0
    assert win.library_model.rowCount() == 12 and win.filter_count.text() == "12 of 24"
    assert not win.grid.empty_label.isVisible()
    qtbot.keyClicks(win.filter_box, "zz")
    assert win.library_model.rowCount() == 0 and win.filter_count.text() == "0 of 24"
    assert win.grid.empty_label.isVisible() and "1zz" in win.grid.empty_label.text()
    win.filter_box.clear()
    assert win.library_model.rowCount() == 24 and win.filter_count.text() == "" and not win.grid.empty_label.isVisible()

    # On the results page the filter narrows the results (the query stays) and counts them.
    win.find_similar(win.library_model.item(0).photo.path, k=10)
    qtbot.waitUntil(lambda: win.pages.currentIndex() == 2 and win.results_model.rowCount() == 11, timeout=20_000)
    qtbot.keyClicks(win.filter_box, "1")
    names = [win.results_model.item(i).name for i in range(win.results_model.rowCount())]
    hits = [n for n in names[1:]]
    assert win.results_model.item(0).is_query and all("1" in n for n in hits)
    assert win.filter_count.text() == f"{len(hits)} of 10"
    win.show_duplicates()  # where it would do nothing, it is off
    assert not win.filter_box.isEnabled() and not win.sort_box.isEnabled() and win.filter_count.text() == ""
    win.show_library()
    assert win.filter_box.isEnabled() and win.filter_count.text() == "12 of 24"
    win.close()


def _ctrl_wheel(widget, up: bool) -> None:
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    pos = QPointF(widget.rect().center())
    event = QWheelEvent(pos, QPointF(widget.mapToGlobal(pos.toPoint())), QPoint(), QPoint(0, 120 if up else -120),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.ControlModifier, Qt.ScrollPhase.NoScrollPhase, False)  # fmt: skip
    QApplication.sendEvent(widget, event)


def test_ctrl_wheel_and_ctrl_plus_minus_zoom_the_grid_and_keep_the_place(qtbot, tmp_path, data_dir):
    from PySide6.QtCore import Qt

    win = _open_on(qtbot, tmp_path, data_dir, [f"aib/{i}.jpg" for i in range(24)])
    win.resize(900, 640)
    start = win.zoom.value()
    _ctrl_wheel(win.grid.viewport(), up=True)
    assert win.zoom.value() == start + win.zoom.pageStep()
    _ctrl_wheel(win.grid.viewport(), up=False)
    assert win.zoom.value() == start
    win.grid.setFocus()
    qtbot.keyClick(win.grid, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    assert win.zoom.value() == start + win.zoom.pageStep()
    qtbot.keyClick(win.grid, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    assert win.zoom.value() == start
    assert win.grid.verticalScrollBar().value() == 0  # a wheel with Ctrl zooms, it does not scroll

    # Zooming keeps the current photo on screen, here the last one at the bottom of the grid.
    last = win.library_model.index(23)
    win.grid.setCurrentIndex(last)
    win.grid.scrollTo(last)
    for value in (win.zoom.maximum(), win.zoom.minimum(), 200):
        win.zoom.setValue(value)
        qtbot.wait(50)
        assert win.grid.visualRect(last).intersects(win.grid.viewport().rect()), value
        # No empty band at the right: the tiles share the whole width Qt lays them out in (it keeps the scroll bar's room).
        extent = win.grid.style().pixelMetric(win.grid.style().PixelMetric.PM_ScrollBarExtent, None, win.grid.verticalScrollBar())
        width = win.grid.maximumViewportSize().width() - extent
        columns = width // win.grid.gridSize().width()
        assert width - columns * win.grid.gridSize().width() < columns
    win.close()


def test_names_at_the_smallest_tiles_take_two_lines_instead_of_a_few_letters(qtbot):
    from PySide6.QtGui import QFontMetrics
    from PySide6.QtWidgets import QApplication

    from imgsim_desktop.ui.tile_delegate import name_lines, text_height

    metrics = QFontMetrics(QApplication.font())
    name = "bundler_kermit008.jpg"
    lines = name_lines(metrics, name, 80, text_height(80) // 18)
    assert len(lines) == 2 and all(metrics.horizontalAdvance(line) <= 80 for line in lines)
    assert lines[0] == name[: len(lines[0])] and lines[1].endswith("008.jpg")  # the start, and the end that tells them apart
    assert name_lines(metrics, "cat.jpg", 80, 2) == ["cat.jpg"]


def test_help_menu_about_getting_started_and_data_folder(qtbot, tmp_path, data_dir, monkeypatch):
    from PySide6.QtGui import QDesktopServices

    from imgsim_desktop import __version__

    opened: list[str] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or True)
    win = _open_on(qtbot, tmp_path, data_dir, ["labelled/dog.jpg"])
    help_menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&Help")
    assert [a.text() for a in help_menu.actions()] == ["Getting started", "Open data folder", "About imgsim"]
    win.act_about.trigger()
    about = win.about_dialog
    qtbot.waitUntil(about.isVisible, timeout=5_000)
    text = about.text.text()
    assert __version__ in text and str(data_dir) in text and "EfficientNet-Lite0" in text and "Apache-2.0" in text
    assert win.spec.title in text and win._provider in text
    about.close()
    win.act_getting_started.trigger()
    qtbot.waitUntil(win.help_dialog.isVisible, timeout=5_000)
    assert "Find similar" in win.help_dialog.text.text()
    win.help_dialog.close()
    win.act_open_data.trigger()
    assert opened == [str(data_dir)]
    win.close()


def test_preview_home_end_wheel_zoom_one_to_one_and_fit(qtbot, tmp_path, data_dir):
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    win = _open_on(qtbot, tmp_path, data_dir, ["scenes/aloeL.jpg", "labelled/dog.jpg", "labelled/cat.jpg"])
    win.sort_box.setCurrentIndex(2)  # by name: aloeL, cat, dog
    win.grid.setFocus()
    win.grid.setCurrentIndex(win.library_model.index(1))
    qtbot.keyClick(win.grid, Qt.Key.Key_Return)
    dialog = win._preview_dialog
    qtbot.waitUntil(dialog.isVisible, timeout=5_000)
    dialog.resize(900, 640)
    qtbot.keyClick(dialog, Qt.Key.Key_End)
    assert dialog.current_path().endswith("dog.jpg") and "3 of 3" in dialog.windowTitle()
    qtbot.keyClick(dialog, Qt.Key.Key_Home)
    assert dialog.current_path().endswith("aloeL.jpg") and "1 of 3" in dialog.windowTitle()
    qtbot.waitUntil(lambda: dialog._pixmap is not None, timeout=10_000)
    view = dialog.image
    fitted = view.zoom()
    assert fitted < 1 and view.horizontalScrollBar().maximum() == 0  # 1282 px wide, the whole photo shown

    pos = QPointF(view.viewport().rect().center())
    wheel = QWheelEvent(pos, QPointF(view.viewport().mapToGlobal(pos.toPoint())), QPoint(), QPoint(0, 120),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)  # fmt: skip
    QApplication.sendEvent(view.viewport(), wheel)
    assert abs(view.zoom() - fitted * 1.25) < 1e-6 and dialog.zoom_label.text() == f"{fitted * 1.25:.0%}"

    qtbot.keyClick(dialog, Qt.Key.Key_1)  # one photo pixel to one screen pixel, and room to pan
    assert abs(view.zoom() - 1) < 1e-6 and dialog.zoom_label.text() == "100%"
    assert view.horizontalScrollBar().maximum() > 0 and view.dragMode() == view.DragMode.ScrollHandDrag
    qtbot.keyClick(dialog, Qt.Key.Key_F)
    assert abs(view.zoom() - fitted) < 0.01 and view.horizontalScrollBar().maximum() == 0
    qtbot.keyClick(dialog, Qt.Key.Key_Right)  # the next photo starts whole again
    assert dialog.current_path().endswith("cat.jpg") and view.fitting
    dialog.close()
    win.close()


def test_results_legend_close_matches_only_and_a_note_while_indexing(qtbot, tmp_path, data_dir, wait_part_way):
    from imgsim_desktop.ui.tile_delegate import CLOSE

    win = _open_on(qtbot, tmp_path, data_dir, ["ukbench/ukbench00120.jpg", "ukbench/ukbench00120_resize.jpg", "labelled/dog.jpg", "labelled/pelican.jpg"])
    query = next(p.path for p in win.library_model.all_photos() if p.path.endswith("ukbench00120.jpg"))
    win.find_similar(query)
    qtbot.waitUntil(lambda: win.pages.currentIndex() == 2 and win.results_model.rowCount() == 4, timeout=20_000)
    legend = win.results_page.legend.text()
    assert win.results_page.legend.isVisible() and "0.90+" in legend and "0.70+" in legend and "below 0.70" in legend
    assert not win.results_page.note.isVisible()  # the whole library was searched
    scores = [win.results_model.item(i).score for i in range(1, 4)]
    close = sum(s >= CLOSE for s in scores)
    assert 0 < close < 3  # the resized copy is close, the dog and the pelican are not
    win.results_page.close_only.setChecked(True)
    assert win.results_model.rowCount() == 1 + close and win.results_model.item(0).is_query
    assert win.filter_count.text() == f"{close} of 3"
    win.results_page.close_only.setChecked(False)
    assert win.results_model.rowCount() == 4 and win.filter_count.text() == ""

    # While another folder is being indexed, a search says it saw only part of the library.
    more = tmp_path / "more"
    copy_photos(more, [f"aib/{i}.jpg" for i in range(60)])
    wait_part_way(qtbot, win, lambda: win.add_folder_path(str(more)))
    win.find_similar(query)
    qtbot.waitUntil(lambda: win.pages.currentIndex() == 2 and win.results_page.note.isVisible(), timeout=20_000)
    assert "Indexing is still running" in win.results_page.note.text()
    qtbot.waitUntil(lambda: not win.writer.busy, timeout=120_000)
    win.find_similar(query)
    qtbot.waitUntil(lambda: not win.results_page.note.isVisible(), timeout=20_000)
    win.close()


def test_the_window_keeps_its_size_on_the_first_duplicates_visit_and_can_be_narrow(qtbot, tmp_path, data_dir):
    import shutil

    from conftest import PHOTOS

    names = [f"aib/{i}.jpg" for i in range(6)]
    copy_photos(tmp_path / "lib", names)
    shutil.copyfile(PHOTOS / "aib/1.jpg", tmp_path / "lib" / "copy of 1 with a long name to make the summary and captions wide.jpg")
    with Engine(data_dir) as engine:
        index_now(engine, [str(tmp_path / "lib")])
    win = _show(qtbot, data_dir, len(names) + 1)
    assert win.minimumSizeHint().width() <= 940  # it once could not be narrower than 1,073 pixels
    win.resize(940, 600)
    qtbot.waitUntil(lambda: win.size().width() == 940, timeout=2_000)
    scanning: list[bool] = []
    win.dup_page.progress.setVisible = lambda on, bar=win.dup_page.progress: (scanning.append(on), type(bar).setVisible(bar, on))
    win.act_duplicates.trigger()
    qtbot.waitUntil(lambda: win.dup_page.scanned and bool(win.dup_page.tree.groups), timeout=60_000)
    qtbot.wait(100)
    assert True in scanning  # it did scan, with its progress showing
    assert win.size().width() == 940 and win.minimumSizeHint().width() <= 940
    win.close()


def test_newest_first_while_indexing_keeps_the_tile_under_the_pointer_where_it_is(qtbot, tmp_path, data_dir, wait_part_way):
    """Photos indexed meanwhile go in above what the user looks at ("Newest first"): the tile under
    the pointer stays at the same height to the pixel, so a click lands on the photo aimed at.
    (When the rows put in above are not a whole number of grid rows, that tile moves sideways and
    the pointer is then over its neighbour: the next reload holds that one.)"""
    import os

    from PySide6.QtGui import QCursor

    names = [f"aib/{i}.jpg" for i in range(40)]
    for n, path in enumerate(copy_photos(tmp_path / "lib", names)):
        os.utime(path, (1_600_000_000 + n, 1_600_000_000 + n))  # older than anything indexed later
    with Engine(data_dir) as engine:
        index_now(engine, [str(tmp_path / "lib")])
    win = _show(qtbot, data_dir, len(names))
    win.resize(900, 600)
    assert win.sort_box.currentText() == "Newest first"
    bar = win.grid.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0, timeout=5_000)
    bar.setValue(bar.maximum() // 2 + 7)  # part-way into a row: a row-exact anchor would jump
    target = win.grid.indexAt(win.grid.viewport().rect().center())
    QCursor.setPos(win.grid.viewport().mapToGlobal(win.grid.visualRect(target).center()))
    first_row = target.row()

    def under_pointer() -> tuple[str, int]:
        index = win.grid.indexAt(win.grid.viewport().mapFromGlobal(QCursor.pos()))
        assert index.isValid()
        return win.library_model.item(index.row()).photo.path, win.grid.visualRect(index).top()

    aimed = [under_pointer()]
    held: list[tuple[int, int, int, int]] = []  # (photos shown, its row now, its top before, its top now) per reload

    def after_reload(*_) -> None:  # connected after the window's own slot: sees the grid as it is left
        path, top_before = aimed[-1]
        row = win.library_model.row_of(path)
        held.append((win.library_model.total(), row, top_before, win.grid.visualRect(win.library_model.index(row)).top()))
        aimed.append(under_pointer())

    win.library.photos_ready.connect(after_reload)
    more = copy_photos(tmp_path / "more", [f"aib/{i}.jpg" for i in range(40, 100)])
    wait_part_way(qtbot, win, lambda: win.add_folder_path(str(tmp_path / "more")))
    qtbot.waitUntil(lambda: not win.writer.busy and win.library_model.total() == len(names) + len(more), timeout=120_000)
    qtbot.waitUntil(lambda: any(total == len(names) + len(more) for total, *_ in held), timeout=10_000)
    assert len({row for _, row, _, _ in held}) > 1 and held[-1][1] > first_row  # rows went in above it, more than once
    assert all(before == now for _, _, before, now in held), held
    win.close()

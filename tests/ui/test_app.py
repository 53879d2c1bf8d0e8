"""The desktop app as a user drives it: add a folder, wait for indexing, find similar, cancel."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from conftest import PHOTOS, copy_photos
from imgsim_desktop.storage.catalog import PhotoRow
from imgsim_desktop.ui.main_window import MainWindow
from imgsim_desktop.ui.photo_model import Item, PhotoListModel, ScoreRole

KDE_AUTUMN = sorted(p.name for p in (PHOTOS / "wallpapers").glob("kde_Autumn__*.jpg"))


@pytest.fixture
def window(qtbot, data_dir):
    win = MainWindow(data_dir=str(data_dir))
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def _wait_indexed(qtbot, win, timeout=60_000):
    qtbot.waitUntil(lambda: win.last_report is not None and not win.writer.busy, timeout=timeout)
    expected = win.last_report.indexed + win.last_report.skipped
    qtbot.waitUntil(lambda: win.library_model.total() == expected, timeout=timeout)


def _window_indexing_200_photos(qtbot, tmp_path, data_dir, wait_part_way) -> MainWindow:
    """A window part-way into indexing 200 photos."""
    lib = tmp_path / "many"
    for part in ("a", "b"):
        copy_photos(lib / part, [f"aib/{i}.jpg" for i in range(100)])
    win = MainWindow(data_dir=str(data_dir))
    qtbot.addWidget(win)
    win.show()
    wait_part_way(qtbot, win, lambda: win.add_folder_path(str(lib)))
    return win


def test_first_run_shows_empty_state_inviting_add_folder(window, qtbot):
    qtbot.waitUntil(lambda: window.status_label.text() == "0 photos")  # the library was read
    assert window.pages.currentIndex() == 0
    assert window.empty_button.text() == "Add folder…" and window.empty_button.isVisible()


def test_add_folder_index_then_find_similar_puts_near_duplicates_first(window, qtbot, tmp_path, monkeypatch):
    lib = tmp_path / "photos"
    copy_photos(lib / "wallpapers", [f"wallpapers/{n}" for n in KDE_AUTUMN[:4]])
    copy_photos(lib / "misc", ["labelled/dog.jpg", "labelled/pelican.jpg", "scenes/fruits.jpg", "ukbench/ukbench01380.jpg", "aib/5.jpg", "aib/9.jpg"])
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(lib))
    qtbot.mouseClick(window.empty_button, Qt.MouseButton.LeftButton)
    _wait_indexed(qtbot, window)
    assert window.library_model.rowCount() == 10
    assert window.pages.currentIndex() == 1
    assert [window.sidebar.topLevelItem(i).text(0) for i in range(window.sidebar.topLevelItemCount())] == ["All photos", "photos"]

    query = str(lib / "wallpapers" / KDE_AUTUMN[0])
    row = window.library_model.row_of(query)
    window.grid.setCurrentIndex(window.library_model.index(row))
    window.act_similar.trigger()  # the Ctrl+F / toolbar action
    qtbot.waitUntil(lambda: window.pages.currentIndex() == 2, timeout=20_000)
    results = window.results_model
    first = results.item(0)
    assert first.is_query and first.photo.path == query
    stack = results.item(1)  # the three copies: one stacked tile (core.stacks), the other photos after it
    assert {Path(it.photo.path).name for it in [stack, *stack.copies]} == set(KDE_AUTUMN[1:4])
    assert results.rowCount() == 1 + 7 and "2 near-identical copies stacked" in window.status_label.text()
    scores = [results.data(results.index(i), ScoreRole) for i in range(1, results.rowCount())]
    assert scores == sorted(scores, reverse=True) and min(c.score for c in stack.copies) > 0.9 > scores[1]

    # An outside photo as the query (what File > Find similar to image / drop / paste feed in).
    window.find_similar(str(PHOTOS / "wallpapers" / KDE_AUTUMN[5]))
    qtbot.waitUntil(lambda: window.results_model.item(0).photo.path.endswith(KDE_AUTUMN[5]), timeout=20_000)
    assert Path(window.results_model.item(1).photo.path).name in KDE_AUTUMN
    window.act_back.trigger()
    assert window.results_model.item(0).photo.path == query


def test_cancel_stops_indexing_and_reopening_resumes(qtbot, tmp_path, data_dir, wait_part_way):
    win = _window_indexing_200_photos(qtbot, tmp_path, data_dir, wait_part_way)
    win.cancel_button.click()
    _wait_indexed(qtbot, win)
    assert win.status_label.text().startswith("Indexing cancelled")
    partial = win.library_model.total()
    assert 0 < partial < 200
    win.close()

    again = MainWindow(data_dir=str(data_dir))  # reopening picks up where it stopped
    qtbot.addWidget(again)
    again.show()
    qtbot.waitUntil(lambda: again.library_model.total() == 200, timeout=60_000)
    again.close()


def test_grid_model_passes_qt_model_tester(qtmodeltester):
    model = PhotoListModel()
    rows = [PhotoRow(i, f"{os.sep}p{os.sep}img{i:03d}.jpg", 1000 + i, i * 10**9, 64, 48, None, None) for i in range(30)]
    model.set_items([Item(r) for r in rows])
    qtmodeltester.check(model)
    model.set_filter("img01")
    assert model.rowCount() == 10
    model.set_sort("name")
    qtmodeltester.check(model)
    model.set_items([Item(r, score=1 - i / 100) for i, r in enumerate(rows)], keep_order=True)
    assert model.rowCount() == 10 and model.data(model.index(0), ScoreRole) == 0.9  # the filter still applies
    model.set_filter("")
    assert model.rowCount() == 30 and model.data(model.index(0), ScoreRole) == 1.0  # results keep their rank order


def _indexed_window(qtbot, tmp_path, data_dir, names):
    lib = tmp_path / "lib"
    copy_photos(lib, names)
    win = MainWindow(data_dir=str(data_dir))
    qtbot.addWidget(win)
    win.show()
    win.add_folder_path(str(lib))
    _wait_indexed(qtbot, win)
    return win, lib


def test_drop_and_paste_an_outside_photo_as_query(qtbot, tmp_path, data_dir):
    from PySide6.QtCore import QMimeData, QPoint, QUrl
    from PySide6.QtGui import QDropEvent, QGuiApplication, QImage

    win, lib = _indexed_window(qtbot, tmp_path, data_dir, ["ukbench/ukbench00120.jpg", "labelled/dog.jpg", "scenes/fruits.jpg", "labelled/pelican.jpg"])
    outside = PHOTOS / "ukbench/ukbench00120_resize.jpg"
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(outside))])
    drop = QDropEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    win.dropEvent(drop)
    qtbot.waitUntil(lambda: win.pages.currentIndex() == 2, timeout=20_000)
    assert win.results_model.item(0).photo.path == str(outside)
    assert Path(win.results_model.item(1).photo.path).name == "ukbench00120.jpg"

    QGuiApplication.clipboard().setImage(QImage(str(PHOTOS / "labelled/dog.jpg")))
    win.act_paste.trigger()
    qtbot.waitUntil(lambda: "pasted-" in win.results_model.item(0).photo.path, timeout=20_000)
    top = win.results_model.item(1)
    assert Path(top.photo.path).name == "dog.jpg" and top.score > 0.95

    # A picture dragged from a browser arrives as pixels, not a file: it is searched with all the same.
    pixels = QMimeData()
    pixels.setImageData(QImage(str(PHOTOS / "labelled/pelican.jpg")))
    first_paste = win.results_model.item(0).photo.path
    win.dropEvent(QDropEvent(QPoint(10, 10), Qt.DropAction.CopyAction, pixels, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
    qtbot.waitUntil(lambda: win.results_model.item(0).photo.path not in (first_paste, str(outside)), timeout=20_000)
    assert "pasted-" in win.results_model.item(0).photo.path  # its own file: the earlier paste is kept
    assert Path(win.results_model.item(1).photo.path).name == "pelican.jpg"
    # Something that is neither a photo nor a folder is answered, not ignored.
    text = QMimeData()
    text.setText("not a photo")
    win.dropEvent(QDropEvent(QPoint(10, 10), Qt.DropAction.CopyAction, text, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
    assert win.statusBar().currentMessage().startswith("Drop a photo")
    win.close()


def test_copy_path_preview_arrows_and_settings_persist(qtbot, tmp_path, data_dir):
    from PySide6.QtGui import QGuiApplication

    from imgsim_desktop.core.settings import Settings
    from imgsim_desktop.ui.preview import PreviewDialog

    win, lib = _indexed_window(qtbot, tmp_path, data_dir, ["labelled/dog.jpg", "labelled/cat.jpg", "ukbench/ukbench09380.jpg"])
    win.sort_box.setCurrentIndex(2)  # by name: cat, dog, ukbench
    assert [win.library_model.item(i).name for i in range(3)] == ["cat.jpg", "dog.jpg", "ukbench09380.jpg"]
    win.filter_box.setText("dog")
    assert win.library_model.rowCount() == 1
    win.filter_box.setText("")

    dialog = PreviewDialog(win.grid, win.thumbs, 0, win)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.keyClick(dialog, Qt.Key.Key_Right)
    qtbot.keyClick(dialog, Qt.Key.Key_Right)
    assert dialog.current_path().endswith("ukbench09380.jpg")
    qtbot.waitUntil(lambda: dialog._pixmap is not None, timeout=10_000)
    facts = {dialog.facts.itemAt(i, dialog.facts.ItemRole.LabelRole).widget().text(): dialog.facts.itemAt(i, dialog.facts.ItemRole.FieldRole).widget().text() for i in range(dialog.facts.rowCount())}
    assert facts["<b>Resolution</b>"] == "640 × 480" and facts["<b>Camera</b>"] == "Canon IXY DIGITAL 320" and facts["<b>Taken</b>"] == "2006-01-21 14:33:52"
    dialog.close()

    menu = win.tile_menu(win.library_model.item(1).photo.path)
    assert [a.text() for a in menu.actions() if a.text()] == ["Find similar", "Compare backbones", "Open", "Show in folder", "Copy path"]
    next(a for a in menu.actions() if a.text() == "Copy path").trigger()
    assert QGuiApplication.clipboard().text() == str(lib / "dog.jpg")

    win.zoom.setValue(224)
    win.close()
    assert Settings.load(data_dir).thumb_size == 224


def test_painting_tiles_does_not_leak_references_to_none(qtbot):
    """PySide6 6.12 + Python 3.11 drop a reference to None on each index.data() that yields None;
    a delegate doing that aborts the app after enough scrolling. Painting must leave None alone."""
    import gc
    import sys

    from imgsim_desktop.ui.main_window import PhotoGrid

    model = PhotoListModel()
    model.thumbnail_for = lambda item: None  # no thumbnails yet: the placeholder path
    rows = [PhotoRow(i, f"/p/img{i:03d}.jpg", 1, i, 1, 1, None, None) for i in range(200)]
    model.set_items([Item(r, score=None if i % 2 else 0.5) for i, r in enumerate(rows)], keep_order=True)
    view = PhotoGrid(model)
    qtbot.addWidget(view)
    view.resize(900, 700)
    view.show()
    gc.collect()
    before = sys.getrefcount(None)
    for _ in range(40):
        view.viewport().repaint()
    # With the bug, each repaint loses ~100 references (3 lookups x ~30 visible tiles); unrelated
    # objects freed meanwhile may legitimately release a few dozen.
    assert sys.getrefcount(None) >= before - 200


def test_switching_backbone_mid_indexing_restarts_cleanly(qtbot, tmp_path, data_dir, wait_part_way):
    win = _window_indexing_200_photos(qtbot, tmp_path, data_dir, wait_part_way)
    later = tmp_path / "added later"
    copy_photos(later, ["labelled/dog.jpg", "labelled/cat.jpg"])
    win.add_folder_path(str(later))  # queued behind the running folder: not a library root yet
    win.switch_model("mobilenetv2")
    assert win.device_label.text().startswith("MobileNetV2 features")
    # The new workers index the library for the new backbone; the old run's late report is ignored.
    qtbot.waitUntil(lambda: win.library_model.total() == 202 and not win.writer.busy, timeout=90_000)
    assert win.last_report.model == "mobilenetv2"
    assert str(later) in win.library_panel.roots  # the queued folder was not lost in the switch
    assert not win.progress.isVisible()
    win.close()


def test_missing_models_end_in_a_message_not_a_traceback(tmp_path, data_dir, monkeypatch, qapp):
    from PySide6.QtWidgets import QMessageBox

    from imgsim_desktop.__main__ import main

    (tmp_path / "no-models").mkdir()
    monkeypatch.setenv("IMGSIM_MODELS_DIR", str(tmp_path / "no-models"))
    said: list[str] = []
    monkeypatch.setattr(QMessageBox, "critical", lambda _parent, _title, text, *a, **k: said.append(text))
    assert main(["--data-dir", str(data_dir)]) == 1
    assert said and ("manifest" in said[0].lower() or "efficientnet-lite0" in said[0].lower()), said

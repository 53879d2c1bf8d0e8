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
    qtbot.waitUntil(lambda: win.last_report is not None and not win.indexer.busy, timeout=timeout)
    expected = win.last_report.indexed + win.last_report.skipped
    qtbot.waitUntil(lambda: win.library_model.total() == expected, timeout=timeout)


def test_first_run_shows_empty_state_inviting_add_folder(window, qtbot):
    qtbot.waitUntil(lambda: window._resumed)
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
    assert [window.sidebar.item(i).text() for i in range(window.sidebar.count())] == ["All photos", "photos"]

    query = str(lib / "wallpapers" / KDE_AUTUMN[0])
    row = window.library_model.row_of(query)
    window.grid.setCurrentIndex(window.library_model.index(row))
    window.act_similar.trigger()  # the Ctrl+F / toolbar action
    qtbot.waitUntil(lambda: window.pages.currentIndex() == 2, timeout=20_000)
    results = window.results_model
    first = results.item(0)
    assert first.is_query and first.photo.path == query
    leaders = {Path(results.item(i).photo.path).name for i in (1, 2, 3)}
    assert leaders == set(KDE_AUTUMN[1:4])
    scores = [results.data(results.index(i), ScoreRole) for i in range(1, results.rowCount())]
    assert scores == sorted(scores, reverse=True) and scores[2] > 0.9 > scores[3]

    # An outside photo as the query (what File > Find similar to image / drop / paste feed in).
    window.find_similar(str(PHOTOS / "wallpapers" / KDE_AUTUMN[5]))
    qtbot.waitUntil(lambda: window.results_model.item(0).photo.path.endswith(KDE_AUTUMN[5]), timeout=20_000)
    assert Path(window.results_model.item(1).photo.path).name in KDE_AUTUMN
    window.act_back.trigger()
    assert window.results_model.item(0).photo.path == query


def test_cancel_stops_indexing_and_reopening_resumes(qtbot, tmp_path, data_dir):
    lib = tmp_path / "many"
    for part in ("a", "b"):  # 200 photos: a few seconds of work, so the cancel lands mid-run
        copy_photos(lib / part, [f"aib/{i}.jpg" for i in range(100)])
    win = MainWindow(data_dir=str(data_dir))
    qtbot.addWidget(win)
    win.show()
    win.add_folder_path(str(lib))
    qtbot.waitUntil(lambda: win.progress.isVisible() and win.progress.value() > 0, timeout=30_000)
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

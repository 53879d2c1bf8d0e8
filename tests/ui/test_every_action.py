"""The menu actions no other test triggers, each triggered as a click would (QAction.trigger) and
checked by what the user sees: an action nobody clicked in a test is broken until proven otherwise."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication, QDialog, QFileDialog

from conftest import PHOTOS, copy_photos, indexed_window

NAMES = ["ukbench/ukbench00120.jpg", "ukbench/ukbench00120_resize.jpg", "labelled/dog.jpg"]


@pytest.fixture
def window(qtbot, tmp_path, data_dir):
    win = indexed_window(qtbot, tmp_path, data_dir, NAMES)
    yield win
    win.close()


def _select_first(win) -> str:
    win.grid.setCurrentIndex(win.library_model.index(0))
    return win.library_model.item(0).photo.path


def _open_dialogs(kind) -> list:
    return [w for w in QApplication.topLevelWidgets() if isinstance(w, kind) and w.isVisible()]


def test_add_folder_indexes_the_chosen_folder(qtbot, window, tmp_path, monkeypatch):
    more = tmp_path / "more"
    copy_photos(more, ["labelled/cat.jpg", "labelled/pelican.jpg"])
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(more))
    window.act_add.trigger()
    qtbot.waitUntil(lambda: window.library_model.total() == 5, timeout=60_000)
    assert str(more) in window.library_panel.roots


def test_find_similar_to_image_searches_with_a_file_from_outside(qtbot, window, monkeypatch):
    outside = str(PHOTOS / "ukbench/ukbench00120_hflip.jpg")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (outside, ""))
    window.act_query_file.trigger()
    qtbot.waitUntil(lambda: window.pages.currentIndex() == 2 and window.results_model.rowCount() > 1, timeout=30_000)
    assert window.results_model.item(0).photo.path == outside and window.results_model.item(0).is_query


def test_back_then_forward_returns_to_the_search(qtbot, window):
    path = _select_first(window)
    window.act_similar.trigger()
    qtbot.waitUntil(lambda: window.pages.currentIndex() == 2, timeout=30_000)
    window.act_back.trigger()
    qtbot.waitUntil(lambda: window.pages.currentIndex() == 1, timeout=5_000)
    assert window.act_forward.isEnabled()
    window.act_forward.trigger()
    qtbot.waitUntil(lambda: window.pages.currentIndex() == 2, timeout=30_000)
    assert window.results_model.item(0).photo.path == path


def test_cleanup_history_opens(qtbot, window):
    from imgsim_desktop.ui.cleanup_dialogs import CleanupHistoryDialog

    window.act_history.trigger()
    qtbot.waitUntil(lambda: bool(_open_dialogs(CleanupHistoryDialog)), timeout=5_000)
    _open_dialogs(CleanupHistoryDialog)[0].close()


def test_settings_opens_the_settings_dialog(qtbot, window, monkeypatch):
    from imgsim_desktop.ui.settings_dialog import SettingsDialog

    shown: list[SettingsDialog] = []
    monkeypatch.setattr(SettingsDialog, "exec", lambda self: shown.append(self) or QDialog.DialogCode.Rejected)
    window.act_settings.trigger()
    assert len(shown) == 1 and shown[0].windowTitle()


def test_zoom_in_and_out_change_the_tile_size(qtbot, window):
    start = window.zoom.value()
    window.act_zoom_in.trigger()
    bigger = window.zoom.value()
    window.act_zoom_out.trigger()
    window.act_zoom_out.trigger()
    assert bigger > start > window.zoom.value()


def test_compare_backbones_opens_for_the_selected_photo(qtbot, window):
    from imgsim_desktop.ui.research_dialogs import BackboneCompareDialog

    _select_first(window)
    window.research_tools.act_compare.trigger()
    qtbot.waitUntil(lambda: bool(_open_dialogs(BackboneCompareDialog)), timeout=5_000)
    _open_dialogs(BackboneCompareDialog)[0].close()


def test_perturbation_recovery_opens_its_dialog(qtbot, window):
    from imgsim_desktop.ui.research_dialogs import PerturbationDialog

    window.research_tools.act_perturb.trigger()
    qtbot.waitUntil(lambda: bool(_open_dialogs(PerturbationDialog)), timeout=5_000)
    _open_dialogs(PerturbationDialog)[0].close()


def test_quit_closes_the_window(qtbot, window):
    window.act_quit.trigger()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=30_000)

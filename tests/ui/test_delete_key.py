"""Delete on the grid and on the results: the selection goes to the Trash the way a cleanup sends
it (same confirmation and outcome, in the cleanup history) and leaves the grid."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtWidgets import QMessageBox

from conftest import TRASH_HOME, indexed_window


def _select(view, paths: list[str]) -> None:
    model = view.model()
    view.setFocus()
    view.selectionModel().clear()
    for path in paths:
        view.selectionModel().select(model.index(model.row_of(path)), QItemSelectionModel.SelectionFlag.Select)


def test_delete_moves_the_selection_to_the_trash_after_the_cleanup_confirmation(qtbot, tmp_path, data_dir, monkeypatch):
    names = ["labelled/dog.jpg", "labelled/cat.jpg", "labelled/pelican.jpg", "aib/3.jpg"]
    win = indexed_window(qtbot, tmp_path, data_dir, names)
    asked: list[str] = []
    answer = [QMessageBox.StandardButton.No]
    monkeypatch.setattr(QMessageBox, "question", lambda _p, title, text, *a, **k: (asked.append(f"{title}\n{text}"), answer[0])[1])
    dog, cat = str(tmp_path / "lib" / "dog.jpg"), str(tmp_path / "lib" / "cat.jpg")
    size = Path(dog).stat().st_size + Path(cat).stat().st_size

    # Delete typed in the filter box edits the text; it trashes nothing.
    win.filter_box.setFocus()
    qtbot.keyClicks(win.filter_box, "ab")
    qtbot.keyClick(win.filter_box, Qt.Key.Key_Home)
    qtbot.keyClick(win.filter_box, Qt.Key.Key_Delete)
    assert win.filter_box.text() == "b" and not asked
    win.filter_box.clear()

    _select(win.grid, [dog, cat])
    qtbot.waitUntil(win.grid.hasFocus, timeout=2_000)
    qtbot.keyClick(win.grid, Qt.Key.Key_Delete)
    from imgsim_desktop.ui.text import human_size

    assert asked and asked[0].startswith("Move to the Trash\nMove 2 photos (" + human_size(size) + ")")
    assert "to the Trash?" in asked[0] and "You can undo this from History." in asked[0]  # the Trash can be undone on Linux
    qtbot.wait(300)  # "No": nothing happens
    assert Path(dog).exists() and win.library_model.total() == 4

    answer[0] = QMessageBox.StandardButton.Yes
    qtbot.keyClick(win.grid, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: win.library_model.total() == 2, timeout=20_000)
    assert not Path(dog).exists() and not Path(cat).exists()
    trashed = {p.name for p in (TRASH_HOME / "Trash" / "files").iterdir()}
    assert {"dog.jpg", "cat.jpg"} <= trashed
    status = win.status_label.text()
    assert status.startswith(f"Moved 2 photos to the Trash: {human_size(size)} freed") and "system Trash" in status and "Cleanup history" in status
    assert win.library_model.row_of(dog) is None and win.library_model.row_of(cat) is None
    win.dup_page.open_history()  # where Undo lives
    dialog = win.dup_page.history_dialog
    qtbot.waitUntil(lambda: dialog.tree.topLevelItemCount() == 1, timeout=10_000)
    assert dialog.tree.topLevelItem(0).text(0).startswith("Moved to the Trash 2 photos")
    dialog.close()
    win.close()


def test_delete_on_the_results_trashes_the_current_result_and_it_leaves_the_results(qtbot, tmp_path, data_dir, monkeypatch):
    names = [f"aib/{i}.jpg" for i in range(8)]
    win = indexed_window(qtbot, tmp_path, data_dir, names)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    win.find_similar(str(tmp_path / "lib" / "0.jpg"))
    qtbot.waitUntil(lambda: win.pages.currentIndex() == 2 and win.results_model.rowCount() == 8, timeout=20_000)
    victim = win.results_model.item(2).photo.path
    win.results_grid.setFocus()
    win.results_grid.setCurrentIndex(win.results_model.index(2))
    qtbot.waitUntil(win.results_grid.hasFocus, timeout=2_000)
    qtbot.keyClick(win.results_grid, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: not Path(victim).exists(), timeout=20_000)
    qtbot.waitUntil(lambda: win.results_model.row_of(victim) is None and win.results_model.rowCount() == 7, timeout=20_000)
    assert win.pages.currentIndex() == 2  # still the results, searched again without it
    status = win.status_label.text()
    assert status.startswith("Moved 1 photo to the Trash") and "system Trash" in status and status.endswith("6 photos like 0.jpg")
    win.close()

"""The research tools as a user drives them: the collection map, backbones side by side, and the
perturbation-recovery experiment with its report."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFileDialog, QPushButton

from conftest import copy_photos, indexed_window

PHOTOS = [f"aib/{i}.jpg" for i in range(12)] + ["ukbench/ukbench00120.jpg", "ukbench/ukbench00120_resize.jpg"]


@pytest.fixture
def window(qtbot, tmp_path, data_dir, monkeypatch):
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: True)  # no browser in tests
    win = indexed_window(qtbot, tmp_path, data_dir, PHOTOS)
    yield win
    win.close()


def test_collection_map_places_every_photo_and_a_click_searches(qtbot, window):
    tools = window.research_tools
    tools.act_map.trigger()
    view = tools.map_view
    assert window.pages.currentWidget() is view
    qtbot.waitUntil(lambda: len(view.tiles) == len(PHOTOS), timeout=60_000)
    scattered = {(round(t.pos().x(), 3), round(t.pos().y(), 3)) for t in view.tiles.values()}
    assert len(scattered) == len(PHOTOS)
    view.tidy.setChecked(True)
    cells = {(t.pos().x(), t.pos().y()) for t in view.tiles.values()}
    assert len(cells) == len(PHOTOS)  # one photo per grid cell: none hidden
    view.tidy.setChecked(False)
    # The near-duplicate pair sits closer together than a typical pair of photos.
    pos = {Path(p).name: (t.pos().x(), t.pos().y()) for p, t in view.tiles.items()}
    dist = [((ax - bx) ** 2 + (ay - by) ** 2) ** 0.5 for i, (ax, ay) in enumerate(pos.values()) for (bx, by) in list(pos.values())[i + 1 :]]
    (ax, ay), (bx, by) = pos["ukbench00120.jpg"], pos["ukbench00120_resize.jpg"]
    assert ((ax - bx) ** 2 + (ay - by) ** 2) ** 0.5 < sorted(dist)[len(dist) // 2]

    # A photo deleted outside the app leaves the map; the others keep their places.
    before = {p: (t.pos().x(), t.pos().y()) for p, t in view.tiles.items()}
    gone = next(p for p in view.tiles if p.endswith("/3.jpg"))
    Path(gone).unlink()  # the window's folder watcher notices
    qtbot.waitUntil(lambda: gone not in view.tiles, timeout=20_000)
    assert all((t.pos().x(), t.pos().y()) == before[p] for p, t in view.tiles.items())

    query = next(p for p in view.tiles if p.endswith("ukbench00120.jpg"))
    view.photo_clicked.emit(query)
    qtbot.waitUntil(lambda: window.pages.currentIndex() == 2, timeout=20_000)
    assert window.results_model.item(1).photo.path.endswith("ukbench00120_resize.jpg")


def test_backbone_comparison_shows_indexed_backbones_and_says_which_are_not(qtbot, window):
    query = next(p.path for p in window.library_model.all_photos() if p.path.endswith("ukbench00120.jpg"))
    dialog = window.research_tools.compare(query)
    qtbot.waitUntil(lambda: "backbones have this library indexed" in dialog.status.text(), timeout=60_000)
    assert dialog.status.text().startswith("1 of ")  # only the default backbone indexed this library
    first = dialog.lists[0]
    assert first.item(0).toolTip().endswith("ukbench00120_resize.jpg") or first.item(1).toolTip().endswith("ukbench00120_resize.jpg")

    # Index the library with another backbone from the dialog: its column fills in when done.
    button = next(b for b in dialog.findChildren(QPushButton) if b.text().endswith("MobileNetV2 features"))
    button.click()
    qtbot.waitUntil(lambda: dialog.status.text().startswith("2 of "), timeout=120_000)
    assert len(dialog.lists) == 2
    second = [dialog.lists[1].item(i).toolTip() for i in range(2)]
    assert any(p.endswith("ukbench00120_resize.jpg") for p in second)
    dialog.close()


def test_perturbation_recovery_runs_in_the_background_and_exports_a_report(qtbot, window, tmp_path, monkeypatch):
    originals = tmp_path / "originals"
    copy_photos(originals, [f"aib/{i}.jpg" for i in range(20, 26)])
    (originals / "broken.jpg").write_bytes(b"not a photo")
    dialog = window.research_tools.open_perturbation()
    dialog.folder.setText(str(originals))
    for box in dialog.model_boxes:
        box.setChecked(box.property("model") == window.spec.name)
    said: list[str] = []
    window.research_tools.controller.progress.connect(lambda *_: said.append(dialog.status.text()))  # after the dialog's own slot
    dialog.run_button.click()
    qtbot.waitUntil(lambda: dialog.report is not None, timeout=120_000)
    assert said and not any(str(window.data_dir) in line for line in said)  # no internal paths in the progress line
    assert any(" left" in line for line in said), said
    assert dialog.table.rowCount() == 1 and dialog.table.columnCount() == 9  # P/R/F1 at k = 1, 3, 5
    assert float(dialog.table.item(0, 1).text()) > 0  # recall@1 of a real backbone on light edits
    assert dialog.report.originals == 6 and any("broken.jpg" in p for p, _ in dialog.report.errors)
    assert not dialog.chart_label.pixmap().isNull()
    assert not any(p.name != "broken.jpg" and p.suffix != ".jpg" for p in originals.iterdir())  # originals untouched

    out = tmp_path / "report.html"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), "HTML (*.html)"))
    dialog.export_button.click()  # the button, as a user would: its clicked(bool) once arrived as the file name
    qtbot.waitUntil(out.exists, timeout=60_000)
    qtbot.waitUntil(lambda: dialog.status.text() == f"Report saved: {out}", timeout=10_000)
    html = out.read_text()
    assert "data:image/" in html and "perturbation" in html.lower()
    dialog.close()

    # Closing the dialog keeps the finished run: it is there when the dialog opens again, and in Tools -> Export report.
    qtbot.waitUntil(lambda: window.research_tools.dialog is None, timeout=5_000)
    again = window.research_tools.open_perturbation()
    assert again is not dialog and again.report is not None and again.table.rowCount() == 1
    assert again.folder.text() == str(originals) and again.export_button.isEnabled() and not again.chart_label.pixmap().isNull()
    again.close()
    qtbot.waitUntil(lambda: window.research_tools.dialog is None, timeout=5_000)
    out.unlink()
    window.research_tools.act_report.trigger()
    qtbot.waitUntil(out.exists, timeout=60_000)
    assert "perturbation" in out.read_text().lower()


def test_tools_export_report_writes_the_page_and_says_where(qtbot, window, tmp_path, monkeypatch):
    out = tmp_path / "library report.html"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), "HTML (*.html)"))
    opened: list[str] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or True)
    window.research_tools.act_report.trigger()  # Tools -> Export report...
    qtbot.waitUntil(lambda: opened == [str(out)], timeout=60_000)
    assert "<html" in out.read_text() and window.status_label.text() == f"Report saved: {out}"


def test_a_start_up_check_that_found_nothing_new_leaves_the_users_message(qtbot):
    from types import SimpleNamespace

    from PySide6.QtWidgets import QStatusBar

    from imgsim_desktop.ui.index_status import IndexStatus

    bar = QStatusBar()
    qtbot.addWidget(bar)
    status = IndexStatus(bar)
    quiet = SimpleNamespace(indexed=0, skipped=14, errors=[], missing=[], cancelled=False, removed=0)
    status.show_progress(0, 0, 0.0, -1, "scanning", False)
    status.label.setText("Report saved: /tmp/r.html")  # the window wrote meanwhile
    status.show_progress(0, 0, 0.0, -1, "scanning", False)  # a passing phase note does not replace it
    assert status.label.text() == "Report saved: /tmp/r.html"
    status.show_report(quiet)
    assert status.label.text() == "Report saved: /tmp/r.html"
    status.show_report(SimpleNamespace(**{**vars(quiet), "indexed": 3}))  # news replaces it
    assert status.label.text() == "Indexed: 3 new, 14 unchanged"
    status.show_report(quiet)  # and a quiet check after its own message updates it
    assert status.label.text() == "Indexed: 0 new, 14 unchanged"

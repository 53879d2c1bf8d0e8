"""The desktop entry opens a window that shows what the library holds."""

from __future__ import annotations

from conftest import copy_photos
from imgsim_desktop.core.engine import Engine


def test_window_shows_library_count(qtbot, tmp_path, data_dir):
    from imgsim_desktop.ui.main_window import MainWindow

    copy_photos(tmp_path / "lib", ["labelled/dog.jpg", "labelled/cat.jpg", "labelled/pelican.jpg"])
    with Engine(data_dir) as engine:
        engine.index([str(tmp_path / "lib")])
    window = MainWindow(data_dir=str(data_dir))
    qtbot.addWidget(window)
    window.show()
    assert window.isVisible()
    assert window.count_label.text() == "3 photos in the library"

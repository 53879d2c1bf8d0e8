"""The collection map fills with thumbnails at every zoom, however many tiles are on screen."""

from __future__ import annotations

import numpy as np

from conftest import copy_photos
from imgsim_desktop.core.thumbnails import thumb_cache
from imgsim_desktop.ui.map_view import MapView
from imgsim_desktop.workers import thumb_loader
from imgsim_desktop.workers.thumb_loader import ThumbnailLoader


def test_every_visible_tile_gets_its_thumbnail_fitted_tidied_and_zoomed(qtbot, tmp_path, monkeypatch):
    # The loader keeps only its newest requests (300 in the app): with more tiles on screen than
    # that, tiles that asked once stayed grey for good. Here 6 are kept and 60 tiles are shown.
    monkeypatch.setattr(thumb_loader, "MAX_PENDING", 6)
    files = copy_photos(tmp_path / "lib", [f"aib/{i}.jpg" for i in range(60)])
    loader = ThumbnailLoader(thumb_cache(tmp_path / "thumbs"), workers=2)
    view = MapView(loader)
    qtbot.addWidget(view)
    view.resize(900, 700)
    view.show()
    paths = [str(f) for f in files]
    rng = np.random.default_rng(1)
    cells = np.array([(i % 8, i // 8) for i in range(len(paths))])
    view.show_map(paths, rng.random((len(paths), 2)), {p: f.stat().st_mtime_ns for p, f in zip(paths, files, strict=True)}, cells)
    try:
        assert len(view.visible_tiles()) == len(paths)  # fitted: all of them on screen
        qtbot.waitUntil(lambda: not view.missing(), timeout=60_000)
        assert all(t.pixmap is not None for t in view.tiles.values())

        view.tidy.setChecked(True)  # packed and fitted again: still every tile on screen, none grey
        assert len(view.visible_tiles()) == len(paths)
        assert all(t.pixmap is not None for t in view.tiles.values())

        before = view.wanted_edge()
        view.canvas.scale(3, 3)  # zoomed in: the tiles on screen get sharper thumbnails
        view.canvas.moved.emit()
        assert view.wanted_edge() > before and view.missing()
        qtbot.waitUntil(lambda: not view.missing(), timeout=60_000)
        assert 0 < len(view.visible_tiles()) < len(paths)
    finally:
        loader.shutdown()

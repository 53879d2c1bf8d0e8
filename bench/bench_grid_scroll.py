"""Scrolling the thumbnail grid through 50k photos: frame times of the real view + delegate.

    QT_QPA_PLATFORM=offscreen python bench/bench_grid_scroll.py [--items 50000]

Fills the real MainWindow's library model with N rows whose paths are symlinks to the shared
real photos (so thumbnails are really decoded, cached and painted), then scrolls page by page
from top to bottom and back, forcing a synchronous repaint each step, and reports per-frame
paint times, model set-up/sort/filter times, and how many tiles had their thumbnail on screen
when painted. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
PHOTOS = REPO.parent / "shared" / "photos"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--pause-ms", type=int, default=16, help="event-loop time between frames (a 60 Hz scroll)")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QElapsedTimer
    from PySide6.QtWidgets import QApplication

    from imgsim_desktop.storage.catalog import PhotoRow
    from imgsim_desktop.ui.main_window import MainWindow
    from imgsim_desktop.ui.photo_model import Item

    sources = sorted(p for p in PHOTOS.rglob("*.jpg") if "corrupt" not in p.name)
    work = Path(tempfile.mkdtemp(prefix="imgsim-bench-grid-"))
    try:
        links = work / "links"
        links.mkdir()
        rows = []
        for i in range(args.items):
            src = sources[i % len(sources)]
            link = links / f"{i:06d}_{src.name}"
            link.symlink_to(src)
            rows.append(PhotoRow(i, str(link), 1, i * 10**9, 640, 480, None, None))

        app = QApplication(sys.argv[:1])
        window = MainWindow(data_dir=str(work / "data"))
        window.resize(1280, 800)
        window.show()
        while not window._resumed:  # the window's own (empty) library load must land first
            app.processEvents()
        t = time.perf_counter()
        window.library_model.set_items([Item(r) for r in rows])
        set_items_ms = (time.perf_counter() - t) * 1000
        window.pages.setCurrentIndex(1)
        t = time.perf_counter()
        window.library_model.set_filter("000")
        filter_ms = (time.perf_counter() - t) * 1000
        window.library_model.set_filter("")
        t = time.perf_counter()
        window.library_model.set_sort("name")
        sort_ms = (time.perf_counter() - t) * 1000
        app.processEvents()

        grid = window.grid
        bar = grid.verticalScrollBar()
        t = time.perf_counter()
        while bar.maximum() < (args.items // 8) * 100 and time.perf_counter() - t < 30:  # batched layout in progress
            app.processEvents()
        layout_ms = (time.perf_counter() - t) * 1000
        # Jump to a few unseen places and time how long until every visible tile shows its thumbnail.
        fill_ms = []
        for frac in (0.1, 0.35, 0.6, 0.85):
            bar.setValue(int(bar.maximum() * frac))
            app.processEvents()
            grid.viewport().grab()
            first = max(0, grid.indexAt(grid.viewport().rect().topLeft()).row())
            visible = [it for r in range(first, first + 30) if (it := window.library_model.item(r)) is not None]
            t = time.perf_counter()
            while time.perf_counter() - t < 10 and not all(window._thumbnail_for(it) is not None for it in visible):
                app.processEvents()
                time.sleep(0.005)
            fill_ms.append((time.perf_counter() - t) * 1000)
        frames: list[float] = []
        timer = QElapsedTimer()
        painted = with_thumb = 0
        page = grid.viewport().height()
        positions = list(range(0, bar.maximum(), page)) + [bar.maximum()]
        positions += positions[::-1]
        for pos in positions:
            bar.setValue(pos)
            timer.start()
            grid.viewport().grab()  # renders through paintEvent now (repaint() is a no-op offscreen)
            frames.append(timer.nsecsElapsed() / 1e6)
            end = time.perf_counter() + args.pause_ms / 1000
            while time.perf_counter() < end:
                app.processEvents()
            first = grid.indexAt(grid.viewport().rect().topLeft())
            if first.isValid():
                for row in range(first.row(), min(first.row() + 30, window.library_model.rowCount())):
                    painted += 1
                    with_thumb += window.library_model.data(window.library_model.index(row), 1) is not None
        window.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    frames.sort()

    def pct(p):
        return round(frames[min(len(frames) - 1, int(p / 100 * len(frames)))], 2)

    print(
        json.dumps(
            {
                "benchmark": "grid_scroll",
                "items": args.items,
                "frames": len(frames),
                "frame_paint_p50_ms": pct(50),
                "frame_paint_p95_ms": pct(95),
                "frame_paint_max_ms": round(frames[-1], 2),
                "model_set_items_ms": round(set_items_ms, 1),
                "model_filter_ms": round(filter_ms, 1),
                "model_sort_ms": round(sort_ms, 1),
                "batched_layout_ms": round(layout_ms, 1),
                "tiles_with_thumbnail_after_frame": round(with_thumb / max(painted, 1), 3),
                "screen_fill_after_stop_ms": [round(x) for x in fill_ms],
                "note": "a frame budget at 60 Hz is 16.7 ms; thumbnails arrive asynchronously, so fast paging shows placeholders first",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

"""GUI responsiveness while indexing: event-loop latency of the real main window.

    QT_QPA_PLATFORM=offscreen python bench/bench_gui_latency.py [--phone-photos 40] [--small-photos 200]

Builds a library of 12 MP JPEGs (the heavy decode case) plus small real photos, opens the real
MainWindow on a temp data dir, adds the folder, and while the background worker indexes it the
benchmark scrolls the grid (so thumbnails are made too) and measures how late a 10 ms timer
fires: lateness = the time the GUI thread could not react. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

TICK_MS = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phone-photos", type=int, default=40)
    parser.add_argument("--small-photos", type=int, default=200)
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from bench_indexing import SOURCE_PHOTOS, make_photos
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from imgsim_desktop.ui.main_window import MainWindow

    work = Path(tempfile.mkdtemp(prefix="imgsim-bench-gui-"))
    try:
        lib = work / "photos"
        (lib / "phone").mkdir(parents=True)
        make_photos(lib / "phone", args.phone_photos)
        small = sorted(SOURCE_PHOTOS.glob("*.jpg"))
        (lib / "small").mkdir()
        for i in range(args.small_photos):
            shutil.copyfile(small[i % len(small)], lib / "small" / f"{i:04d}.jpg")
        total = args.phone_photos + args.small_photos

        app = QApplication(sys.argv[:1])
        window = MainWindow(data_dir=str(work / "data"))
        window.resize(1280, 800)
        window.show()
        lateness: list[float] = []
        clock = QElapsedTimer()
        state = {"last": 0, "started": False, "t0": 0.0, "done": False}

        def tick() -> None:
            now = clock.elapsed()
            if state["started"] and window.writer.busy:
                lateness.append(max(0, now - state["last"] - TICK_MS))
            state["last"] = now

        def scroll() -> None:  # a user paging through the grid while it fills
            bar = window.grid.verticalScrollBar()
            bar.setValue(bar.value() + 120 if bar.value() < bar.maximum() else 0)

        def start() -> None:
            state["started"], state["t0"] = True, time.perf_counter()
            window.add_folder_path(str(lib))

        def check_done() -> None:
            if state["started"] and window.last_report is not None and not window.writer.busy:
                state["done"] = True
                state["seconds"] = time.perf_counter() - state["t0"]
                app.quit()

        clock.start()
        timers = [QTimer(interval=TICK_MS, timeout=tick), QTimer(interval=60, timeout=scroll), QTimer(interval=100, timeout=check_done)]
        for t in timers:
            t.start()
        QTimer.singleShot(500, start)
        QTimer.singleShot(600_000, app.quit)
        app.exec()
        report = window.last_report
        window.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lateness.sort()

    def pct(p: float) -> float:
        return lateness[min(len(lateness) - 1, int(p / 100 * len(lateness)))] if lateness else float("nan")

    p95 = pct(95)
    print(
        json.dumps(
            {
                "benchmark": "gui_event_loop_latency_while_indexing",
                "photos": total,
                "phone_photos_12mp": args.phone_photos,
                "indexed": report.indexed if report else None,
                "provider": report.provider if report else None,
                "indexing_seconds": round(state.get("seconds", float("nan")), 2),
                "samples": len(lateness),
                "tick_ms": TICK_MS,
                "latency_p50_ms": pct(50),
                "latency_p95_ms": p95,
                "latency_p99_ms": pct(99),
                "latency_max_ms": lateness[-1] if lateness else None,
                "latency_mean_ms": round(statistics.mean(lateness), 2) if lateness else None,
                "goal_p95_ms": 50,
                "goal_met": p95 <= 50,
                "cpu_count": os.cpu_count(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

"""Time from a photo's file being closed in a watched folder to "Find similar" returning it (goal: <= 2 s).

A LibraryService (the library's one writer, watching) follows a temp library; photos are then written one at a time (open, write, close)
and the searcher is asked every 10 ms for the nearest neighbour of that photo's own vector (embedded
beforehand, so the query costs what a query of an indexed photo costs). Then a burst of photos
is written at once and the time until the last one is findable is measured too.

    .venv/bin/python bench/bench_watch_latency.py [--photos 10] [--burst 50] [--polling SECONDS]
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

from imgsim_desktop.core.decode import load_for_model
from imgsim_desktop.core.engine import Engine
from imgsim_desktop.core.library_service import LibraryService

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "photos" / "aib"
GOAL_S = 2.0


def write_photo(source: Path, dest: Path) -> float:
    """Copy like a camera import or a download does, returning the moment the file was closed."""
    data = source.read_bytes()
    with open(dest, "wb") as fh:
        for start in range(0, len(data), 16384):
            fh.write(data[start : start + 16384])
    return time.perf_counter()


def wait_findable(engine: Engine, vector, path: Path, timeout: float = 30.0) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        hits = engine.searcher.similar_to_vector(vector, 1)
        if hits and hits[0].path == str(path):
            return time.perf_counter()
        time.sleep(0.01)
    raise SystemExit(f"{path} was not findable within {timeout} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--photos", type=int, default=10, help="photos written one at a time")
    parser.add_argument("--burst", type=int, default=50, help="photos written at once afterwards")
    parser.add_argument("--polling", type=float, metavar="SECONDS", help="use the polling observer with this interval")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="imgsim-latency-"))
    try:
        lib = work / "library"
        lib.mkdir()
        for i in range(20):
            shutil.copyfile(PHOTOS / f"{i}.jpg", lib / f"{i}.jpg")
        with Engine(work / "data", device="cpu") as engine:
            reconciled = []
            watcher = LibraryService(engine=engine, roots=[str(lib)], on_report=lambda kind, r: reconciled.append(kind), polling=args.polling is not None, poll_interval=args.polling or 10.0)
            watcher.start()
            while not reconciled:
                time.sleep(0.02)
            sources = [PHOTOS / f"{20 + i}.jpg" for i in range(args.photos + args.burst)]
            vectors = [engine.backbone.embed(load_for_model(s, engine.spec.preprocess).pixels[None])[0] for s in sources]
            single = []
            for n in range(args.photos):
                dest = lib / f"new_{n:03d}.jpg"
                closed = write_photo(sources[n], dest)
                single.append(wait_findable(engine, vectors[n], dest) - closed)
                time.sleep(0.5)
            burst_dests = [lib / "burst" / f"b_{n:03d}.jpg" for n in range(args.burst)]
            (lib / "burst").mkdir()
            started = time.perf_counter()
            for n, dest in enumerate(burst_dests):
                write_photo(sources[args.photos + n], dest)
            last_closed = time.perf_counter()
            found = [wait_findable(engine, vectors[args.photos + n], dest) for n, dest in enumerate(burst_dests)]
            mode = watcher.mode
            watcher.stop()
        out = {
            "benchmark": "watch_latency",
            "mode": mode.mode,
            "poll_interval": mode.poll_interval,
            "single_photo_latency_s": [round(x, 3) for x in single],
            "single_p50_s": round(statistics.median(single), 3),
            "single_max_s": round(max(single), 3),
            "goal_s": GOAL_S,
            "ratio_to_goal": round(max(single) / GOAL_S, 3),
            "meets_goal": max(single) <= GOAL_S,
            "burst_photos": args.burst,
            "burst_write_s": round(last_closed - started, 3),
            "burst_last_findable_after_last_close_s": round(max(found) - last_closed, 3),
            "provider": engine.backbone.provider,
            "cpus": os.cpu_count(),
        }
        print(json.dumps(out))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

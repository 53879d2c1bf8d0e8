"""One writer per library, measured: how many photos are embedded and how many scans run.

The experiment that found two writers: a library is open and watched, a folder of N new photos is
added (the app's Add folder), and the photos are counted as they pass through the ONNX session.
With one writer that is N embeddings, not N plus what a second pipeline did again. Then the
library is opened again with nothing changed: the start scans its folders once and embeds nothing.

    .venv/bin/python bench/bench_one_writer.py [--photos 100] [--polling]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from imgsim_desktop.core import indexer as indexer_mod
from imgsim_desktop.core.backbones import Backbone
from imgsim_desktop.core.engine import Engine
from imgsim_desktop.core.library_service import LibraryService, index_now

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "photos" / "aib"


class Counter:
    """Photos through any ONNX session and folder scans, from any thread."""

    def __init__(self) -> None:
        self.embedded = 0
        self.scans: list[list[str]] = []
        self._lock = threading.Lock()
        embed, scan = Backbone.embed, indexer_mod.scan

        def counting_embed(backbone, batch):
            with self._lock:
                self.embedded += len(batch)
            return embed(backbone, batch)

        def counting_scan(paths, *args, **kwargs):
            with self._lock:
                self.scans.append(list(paths))
            return scan(paths, *args, **kwargs)

        Backbone.embed, indexer_mod.scan = counting_embed, counting_scan

    def reset(self) -> None:
        with self._lock:
            self.embedded, self.scans = 0, []


def wait(condition, timeout: float = 600.0) -> float:
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > timeout:
            raise SystemExit("timed out")
        time.sleep(0.02)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=100)
    parser.add_argument("--polling", action="store_true", help="poll instead of native watching")
    args = parser.parse_args()
    sources = sorted(PHOTOS.glob("*.jpg"))[: args.photos]
    counter = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "lib").mkdir()
        shutil.copyfile(PHOTOS.parent / "labelled" / "dog.jpg", work / "lib" / "first.jpg")  # not one of the new ones: a copy is relinked, not embedded
        with Engine(work / "data", device="cpu") as engine:
            index_now(engine, [str(work / "lib")])
            reports: list[str] = []
            service = LibraryService(engine=engine, on_report=lambda kind, r: reports.append(kind), polling=args.polling, poll_interval=0.5)
            service.start()
            wait(lambda: reports and service.idle)
            counter.reset()
            new = work / "new"
            new.mkdir()
            for n, source in enumerate(sources):
                shutil.copyfile(source, new / f"{n:04d}.jpg")
            service.add_folders([str(new)])
            seconds = wait(lambda: len(engine.catalog.photos(engine.spec.name)) == len(sources) + 1 and service.idle)
            time.sleep(2.0)  # whatever the watcher would do about the new folder, it has done by now
            service.stop()
            added = {"photos": len(sources), "embeddings": counter.embedded, "seconds": round(seconds, 2), "scans": len(counter.scans)}

            counter.reset()
            reports.clear()
            again = LibraryService(engine=engine, on_report=lambda kind, r: reports.append(kind), polling=args.polling, poll_interval=0.5)
            again.start()
            start_s = wait(lambda: reports and again.idle)
            time.sleep(2.0)
            again.stop()
            restart = {"scans": len(counter.scans), "embeddings": counter.embedded, "seconds": round(start_s, 2), "reports": reports}
    print(json.dumps({"folder_added_while_watching": added, "start_with_nothing_changed": restart,
                      "one_writer": added["embeddings"] == len(sources) and restart["scans"] == 1 and restart["embeddings"] == 0}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

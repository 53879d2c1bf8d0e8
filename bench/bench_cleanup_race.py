"""Two cleanups moving same-named files into one folder at the same moment: is anything lost?

    python bench/bench_cleanup_race.py [--files 20000] [--names 10]

Each of two processes has its own catalog (as two libraries would) and moves ``--files`` small
files, ``--names`` distinct names repeated over subfolders, into one shared DEST through
core.cleanup.apply. The old check-then-rename lost one photo in 40,000 this way. Prints one JSON
object: files expected and found in DEST, contents missing, steps journaled, seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from imgsim_desktop.core import cleanup  # noqa: E402
from imgsim_desktop.core.cleanup_plan import Removal, Seen  # noqa: E402
from imgsim_desktop.storage.catalog import Catalog  # noqa: E402


def _side(args) -> dict:
    data_dir, files, dest, start_at = args
    removals = [Removal(Seen(p, os.stat(p).st_size, os.stat(p).st_mtime_ns), "chosen") for p in files]
    time.sleep(max(0.0, start_at - time.time()))
    started = time.perf_counter()
    with Catalog(Path(data_dir) / "catalog.sqlite3") as catalog:
        result = cleanup.apply(catalog, removals, "move", dest)
        journaled = len(catalog.actions(result.batch))
    return {"done": len(result.done), "failed": len(result.failed), "journaled": journaled, "seconds": round(time.perf_counter() - started, 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=20000, help="files per process")
    parser.add_argument("--names", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imgsim-race-") as tmp:
        root = Path(tmp)
        jobs, expected = [], Counter()
        start_at = time.time() + 2 + args.files / 5000
        for side in "ab":
            files = []
            for i in range(args.files):
                folder = root / side / str(i // args.names)
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / f"IMG_{i % args.names:04d}.jpg"
                data = f"{side}-{i}".encode() * 20
                path.write_bytes(data)
                expected[hashlib.sha256(data).hexdigest()] += 1
                files.append(str(path))
            jobs.append((str(root / f"data-{side}"), files, str(root / "dest"), start_at))
        (root / "dest").mkdir()
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            sides = pool.map(_side, jobs)
        found = Counter(hashlib.sha256(p.read_bytes()).hexdigest() for p in (root / "dest").iterdir())
        left = sum(1 for p in (root / "a").rglob("*") if p.is_file()) + sum(1 for p in (root / "b").rglob("*") if p.is_file())
        print(json.dumps({
            "benchmark": "cleanup_race", "files_per_process": args.files, "names": args.names,
            "expected": sum(expected.values()), "found_in_dest": sum(found.values()), "left_in_sources": left,
            "contents_missing": sum((expected - found).values()), "contents_extra": sum((found - expected).values()),
            "sides": sides,
        }))  # fmt: skip


if __name__ == "__main__":
    main()

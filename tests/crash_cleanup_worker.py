"""Run by test_cleanup_crash.py: one cleanup (move every photo of a folder into DEST, its sidecars
going with it), to be killed.

Prints "ready" once imported and the plan is made, so the test's kill lands inside the cleanup
itself, not in Python's start-up; prints "done SECONDS" if it was not killed.
"""

import os
import sys
import time
from pathlib import Path

from imgsim_desktop.core import cleanup
from imgsim_desktop.core.cleanup_plan import Removal, Seen
from imgsim_desktop.storage.catalog import Catalog

data_dir, library, dest = sys.argv[1:4]
files = sorted(str(p) for p in Path(library).rglob("*.jpg"))  # the photos; their companions travel with them
removals = [Removal(Seen(p, os.stat(p).st_size, os.stat(p).st_mtime_ns), "chosen") for p in files]
with Catalog(Path(data_dir) / "catalog.sqlite3") as catalog:
    print("ready", flush=True)
    started = time.perf_counter()
    result = cleanup.apply(catalog, removals, "move", dest)
    print("done", time.perf_counter() - started, len(result.done), flush=True)

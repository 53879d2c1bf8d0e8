"""Undo of a cleanup, then indexing: how many photos Backbone.embed is given (issue 14 item 8).

    python bench/undo_relink.py N trash|move

Indexes N photos of ../shared/photos/aib in a temporary library (with a temporary Trash), removes
them all, undoes it, indexes again, and prints what that second run embedded and relinked.
"""

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "photos" / "aib"


def main(n: int, mode: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="imgsim-undo-relink-"))
    os.environ["XDG_DATA_HOME"] = str(tmp / "xdg")  # before send2trash is imported: the Trash is ours
    os.environ["IMGSIM_DATA_DIR"] = str(tmp / "data")
    from imgsim_desktop.core import cleanup, cleanup_plan
    from imgsim_desktop.core.backbones import Backbone
    from imgsim_desktop.core.engine import Engine
    from imgsim_desktop.core.library_service import index_now

    lib = tmp / "lib"
    lib.mkdir()
    for photo in sorted(PHOTOS.glob("*.jpg"))[:n]:
        shutil.copyfile(photo, lib / photo.name)
    calls: list[int] = []
    real = Backbone.embed
    Backbone.embed = lambda self, batch: calls.append(len(batch)) or real(self, batch)
    try:
        with Engine(tmp / "data") as engine:
            index_now(engine, [str(lib)])
            first = sum(calls)
            calls.clear()
            rows = [engine.catalog.photo(str(p)) for p in sorted(lib.iterdir())]
            result = cleanup.apply(engine.catalog, cleanup_plan.chosen_paths(rows), mode, str(tmp / "aside") if mode == "move" else None)
            back = cleanup.undo(engine.catalog, result.batch)
            started = time.perf_counter()
            report = index_now(engine, [str(lib)])
            seconds = time.perf_counter() - started
        print(json.dumps({"benchmark": "undo_relink", "mode": mode, "first_index_embedded": first, "removed": len(result.done),
                          "brought_back": sum(not r["error"] for r in back), "after_undo_embedded": sum(calls),
                          "after_undo_relinked": report.moved, "after_undo_seconds": round(seconds, 3)}))  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])

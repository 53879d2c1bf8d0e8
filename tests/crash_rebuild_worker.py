"""Run by test_crash_safety.py: rebuild the Annoy index over and over until it is killed.

Annoy is forced on (EXACT_LIMIT = 0) even for the test's small library, so every round of the
test has a build in flight to kill.
"""

import sys

from imgsim_desktop.core import search
from imgsim_desktop.core.engine import Engine

search.EXACT_LIMIT = 0

with Engine(sys.argv[1]) as engine:
    while True:
        meta = engine.searcher.rebuild()
        print("rebuilt", meta["generation"], flush=True)

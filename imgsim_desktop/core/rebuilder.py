"""Rebuild the Annoy index in the background once enough of the library has changed.

While a build runs, queries go on against the previous AnnIndex (old Annoy generation + exact
delta - stale ids), which is complete and correct. AnnoyStore writes the new generation to its
own files and switches a pointer file with os.replace; Searcher.refresh() then swaps the new
AnnIndex in with one assignment. So no query ever sees a half-written index, and a process
killed mid-build leaves the previous generation in service.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from imgsim_desktop.core.search import Searcher

log = logging.getLogger(__name__)


class IndexRebuilder:
    """At most one background rebuild at a time for one Searcher.

    ``on_done(meta)`` runs on the rebuild thread after the new index is in service, with the
    generation's metadata (count, n_trees, generation, built_at); ``on_error(message)`` likewise
    when a build fails (the old index stays in use).
    """

    def __init__(self, searcher: Searcher, on_done: Callable[[dict], None] | None = None, on_error: Callable[[str], None] | None = None) -> None:
        self.searcher = searcher
        self.on_done = on_done
        self.on_error = on_error
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.last_error: Exception | None = None  # the last build's failure, for a caller that waits on it

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def maybe_start(self) -> bool:
        """Start a rebuild if one is due (Searcher.needs_rebuild) and none is running; True if started."""
        with self._lock:
            if self.running or not self.searcher.needs_rebuild():
                return False
            self._thread = threading.Thread(target=self._run, name="imgsim-rebuild", daemon=True)
            self._thread.start()
            return True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a running rebuild; True when none is running any more."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.running

    def _run(self) -> None:
        self.last_error = None
        try:
            meta = self.searcher.rebuild()
        except Exception as exc:  # a full disk, say: keep serving the old generation and say why
            log.exception("rebuilding the search index failed")
            self.last_error = exc
            if self.on_error:
                self.on_error(f"{self.searcher.store.dir}: rebuilding the search index failed ({exc})")
            return
        if self.on_done:
            self.on_done(meta)

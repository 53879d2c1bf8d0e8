"""Debouncing of file-system events: paths wait here until their files have settled.

The observer thread only calls ``touch`` / ``closed`` / ``moved`` (cheap, no I/O). The watch
thread calls ``take_ready``, which decides per path whether it can be looked at now:

- a path that no longer exists is ready at once (deleted photos must vanish from results now);
- a file whose writer closed it (inotify IN_CLOSE_WRITE) or that was renamed into place is ready;
- otherwise a file is ready once no event touched it for ``settle_s`` and it is not still growing:
  its mtime is at least ``settle_s`` old, or its size and mtime did not change between two checks.

A burst of events for one path (a camera import writes each file in many chunks) collapses into
one entry, so 2,000 new photos become a few batches, not tens of thousands of events.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass


@dataclass
class _Entry:
    touched: float  # monotonic time of the last event
    ready_now: bool = False  # closed after writing, renamed into place, or retry due
    due: float = 0.0  # not before this monotonic time (retries back off)
    seen: tuple[int, int] | None = None  # (size, mtime_ns) at the previous check
    version: int = 0  # bumped by every event, so a check made without the lock can tell it is outdated


class PendingChanges:
    def __init__(self, settle_s: float = 0.5) -> None:
        self.settle_s = settle_s
        self._entries: dict[str, _Entry] = {}
        self._hints: dict[str, str] = {}  # move destination -> source
        self._lock = threading.Lock()
        self._wake = threading.Event()

    # --- observer thread -------------------------------------------------------------------------

    def touch(self, path: str) -> None:
        """Something happened to ``path`` (created, modified, deleted, or a folder changed)."""
        with self._lock:
            entry = self._entries.get(path)
            if entry is None:
                self._entries[path] = _Entry(time.monotonic())
            else:
                entry.touched, entry.ready_now, entry.seen = time.monotonic(), False, None
                entry.version += 1
        self._wake.set()

    def closed(self, path: str) -> None:
        """The writer closed ``path`` after writing: it is complete unless written again."""
        with self._lock:
            entry = self._entries.setdefault(path, _Entry(time.monotonic()))
            entry.ready_now = True
            entry.version += 1
        self._wake.set()

    def moved(self, src: str, dest: str) -> None:
        """``src`` was renamed to ``dest``: both are looked at together, so the move is recognised."""
        now = time.monotonic()
        with self._lock:
            for path in (src, dest):
                entry = self._entries.setdefault(path, _Entry(now))
                entry.touched, entry.ready_now = now, True
                entry.version += 1
            self._hints[dest] = src
        self._wake.set()

    # --- watch thread ----------------------------------------------------------------------------

    def retry(self, path: str, after_s: float) -> None:
        """Look at ``path`` again after ``after_s`` (a file that failed to decode while being written)."""
        with self._lock:
            entry = self._entries.setdefault(path, _Entry(time.monotonic()))
            entry.due = time.monotonic() + after_s
            entry.ready_now = True
        self._wake.set()

    def wait(self, timeout: float) -> None:
        """Block until an event arrives or ``timeout`` passes."""
        self._wake.wait(timeout)
        self._wake.clear()

    def wake(self) -> None:
        self._wake.set()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def take_ready(self, limit: int | None = None) -> tuple[list[str], dict[str, str]]:
        """Remove and return the paths that can be looked at now, plus the move hints among them."""
        now = time.monotonic()
        wall = time.time()
        with self._lock:
            candidates = [(p, e, e.version) for p, e in self._entries.items() if e.due <= now]
        # Checked without the lock (it stats files); an event meanwhile bumps the version and the
        # path simply waits for the next round.
        checked = [(p, e, version, self._check(p, e, now, wall)) for p, e, version in candidates]
        out: list[str] = []
        with self._lock:
            for path, entry, version, (ready, stamp) in checked:
                if self._entries.get(path) is not entry or entry.version != version:
                    continue
                if ready and (limit is None or len(out) < limit):
                    del self._entries[path]
                    out.append(path)
                elif not ready and stamp is not None:  # still being written: look again one settle period later
                    entry.seen, entry.touched = stamp, now
            hints = {dest: src for dest, src in self._hints.items() if dest in out}
            for dest in hints:
                del self._hints[dest]
        return out, hints

    def next_check_in(self) -> float | None:
        """Seconds until some pending path may become ready (None when nothing is pending)."""
        now = time.monotonic()
        with self._lock:
            if not self._entries:
                return None
            return max(0.0, min((e.due if e.ready_now else max(e.due, e.touched + self.settle_s)) - now for e in self._entries.values()))

    def _check(self, path: str, entry: _Entry, now: float, wall: float) -> tuple[bool, tuple[int, int] | None]:
        """(ready, stamp to remember when not ready)."""
        try:
            st = os.stat(path)
        except OSError:
            return True, None  # gone (or unreadable): resolved as a deletion now
        if entry.ready_now:
            return True, None
        if now - entry.touched < self.settle_s:
            return False, None
        stamp = (st.st_size, st.st_mtime_ns)
        return wall - st.st_mtime_ns / 1e9 >= self.settle_s or stamp == entry.seen, stamp

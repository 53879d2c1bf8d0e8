"""Thumbnails made off the GUI thread: newest requests first, stale ones dropped.

Requests go on a bounded LIFO: the tiles the user is looking at now were requested last, so they
are served first, and when the user scrolls fast the oldest requests (rows long gone off screen)
fall off the end instead of keeping the workers busy.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from PIL import Image
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from imgsim_desktop.core.decode import DecodeError
from imgsim_desktop.storage.thumbs import ThumbCache, level_for

MAX_PENDING = 300


class ThumbnailLoader(QObject):
    ready = Signal(str, int, QImage)  # path, edge in device pixels, image (long side == edge at most)
    failed = Signal(str, int, str)

    def __init__(self, cache: ThumbCache, workers: int = 2, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._cache = cache
        self._pending: OrderedDict[tuple[str, int], int] = OrderedDict()  # (path, level) -> mtime_ns
        self._busy: set[tuple[str, int]] = set()
        self._cond = threading.Condition()
        self._stop = False
        self._threads = [threading.Thread(target=self._work, name=f"thumbs-{i}", daemon=True) for i in range(workers)]
        for t in self._threads:
            t.start()
        threading.Thread(target=cache.prune, name="thumbs-prune", daemon=True).start()

    def request(self, path: str, mtime_ns: int, edge: int) -> None:
        """Ask for a thumbnail whose long side is ``edge`` device pixels (exact, so painting never scales)."""
        key = (path, edge)
        with self._cond:
            if key in self._busy:
                return
            self._pending[key] = mtime_ns
            self._pending.move_to_end(key)  # newest last; workers pop from the end
            while len(self._pending) > MAX_PENDING:
                self._pending.popitem(last=False)
            self._cond.notify()

    def clear(self) -> None:
        """Forget queued requests (e.g. the grid now shows something else)."""
        with self._cond:
            self._pending.clear()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                key, mtime_ns = self._pending.popitem(last=True)
                self._busy.add(key)
            path, edge = key
            try:
                image = self._cache.get(path, mtime_ns, level_for(edge))
                if max(image.size) > edge:
                    image.thumbnail((edge, edge), Image.Resampling.LANCZOS)
                data = image.tobytes()
                qimage = QImage(data, image.width, image.height, image.width * 3, QImage.Format.Format_RGB888).copy()
                if not self._stop:  # after shutdown the receiving window may be gone
                    self.ready.emit(path, edge, qimage)
            except DecodeError as exc:
                if not self._stop:
                    self.failed.emit(path, edge, str(exc))
            except OSError as exc:
                if not self._stop:
                    self.failed.emit(path, edge, f"cannot write thumbnail: {exc}")
            except RuntimeError:
                return  # signal source deleted during shutdown
            finally:
                with self._cond:
                    self._busy.discard(key)

    def shutdown(self) -> None:
        with self._cond:
            self._stop = True
            self._pending.clear()
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=5)

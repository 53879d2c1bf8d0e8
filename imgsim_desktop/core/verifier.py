"""The duplicate check's service: each file's features computed once per scan (a bounded,
thread-safe cache, backed by the feature cache on disk so a repeat scan decodes only new or changed
photos), and pairs of files judged by core.verify on them."""

from __future__ import annotations

import os
import struct
import threading
from collections import OrderedDict
from dataclasses import dataclass

import cv2

from imgsim_desktop.core.decode import DecodeError
from imgsim_desktop.core.verify import FORMAT, Evidence, Features, Limits, Verdict, compare, decide, features, from_bytes, to_bytes


@dataclass(frozen=True)
class Framing:
    """What Features says of a frame's picture, without its keypoints or pixels."""

    frame: tuple[int, int]  # Features.frame
    picture: tuple[float, float, float, float] | None  # Features.picture
    share: float  # of the frame's area that is picture (1.0: no border)


def _framing_of(found: Features) -> Framing:
    x0, y0, x1, y1 = found.small_box
    return Framing(found.frame, found.picture, (x1 - x0) * (y1 - y0) / found.small.size)


class Verifier:
    """Compares pairs of files, computing each file's features once (a bounded, thread-safe cache).

    With a ``disk`` cache (storage.feature_cache.FeatureCache) features also outlive the scan, so a
    repeat scan decodes only photos that are new or changed since the last one.
    """

    def __init__(self, cache_size: int = 512, disk=None) -> None:
        self._cache: OrderedDict[str, Features | DecodeError] = OrderedDict()
        self._size = cache_size
        self._lock = threading.Lock()
        self._disk = disk
        self._framings: dict[str, Framing] = {}

    def framing(self, path: str) -> Framing:
        """Where the picture lies in a file's frame (raises DecodeError like features()). Kept for
        every photo asked, a few numbers each, when its features have long left the bounded cache:
        a scan asks it of each duplicate again after the checks (the group's largest picture, the
        placements), and reading the features back and decoding their small image cost more than
        the checks themselves in a library of many groups."""
        with self._lock:
            known = self._framings.get(path)
        if known is None:
            known = _framing_of(self.features(path))
            with self._lock:
                self._framings[path] = known
        return known

    def features(self, path: str) -> Features:
        """Features of a file; raises DecodeError (remembered, so a bad file is decoded once)."""
        with self._lock:
            hit = self._cache.get(path)
            if hit is not None:
                self._cache.move_to_end(path)
        if hit is None:
            hit = self._load(path)
            with self._lock:
                self._cache[path] = hit
                while len(self._cache) > self._size:
                    gone, old = self._cache.popitem(last=False)
                    if isinstance(old, Features) and old._small_box is not None and gone not in self._framings:
                        self._framings[gone] = _framing_of(old)  # measured already: kept for framing()
        if isinstance(hit, DecodeError):
            raise hit
        return hit

    def _load(self, path: str) -> Features | DecodeError:
        try:
            stat = os.stat(path)
        except OSError as exc:
            return DecodeError(f"cannot read file: {exc.strerror or exc}")
        key = (path, stat.st_size, stat.st_mtime_ns)
        if self._disk is not None:
            data = self._disk.get(*key, FORMAT)
            if data is not None:
                try:
                    return from_bytes(data)
                except (struct.error, ValueError):
                    pass  # damaged entry: compute it again
        try:
            found = features(path)
        except DecodeError as exc:
            return exc  # not stored on disk: the file may be repaired, and then it must be read again
        except cv2.error as exc:  # OpenCV refusing an odd image: a reason, never a traceback
            return DecodeError(f"feature extraction failed ({str(exc).strip().splitlines()[-1]})")
        # Always use the stored precision (points to 1/16 px, float16 thumbnail), cached or not:
        # otherwise a borderline pair could be judged differently on the first scan and the next.
        data = to_bytes(found)
        if self._disk is not None:
            self._disk.put(*key, FORMAT, data)
        return from_bytes(data)

    def compare(self, path_a: str, path_b: str) -> Evidence:
        return compare(self.features(path_a), self.features(path_b))

    def decide(self, path_a: str, path_b: str, limits: Limits) -> Verdict:
        return decide(self.features(path_a), self.features(path_b), limits)

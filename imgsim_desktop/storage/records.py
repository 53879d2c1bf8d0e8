"""Plain records the catalog hands out and takes in."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FileRecord:
    id: int
    path: str
    size: int
    mtime_ns: int
    error: str | None


@dataclass(frozen=True)
class Embedded:
    """One file's outcome in a batch: a vector, or the reason it has none."""

    path: str
    size: int
    mtime_ns: int
    vector: np.ndarray | None = None
    width: int | None = None
    height: int | None = None
    error: str | None = None
    taken_at: str | None = None
    camera: str | None = None


@dataclass(frozen=True)
class PhotoRow:
    """What the grid shows for one photo."""

    id: int
    path: str
    size: int
    mtime_ns: int
    width: int | None
    height: int | None
    taken_at: str | None
    camera: str | None
    sharpness: float | None = None  # core/photo_quality.py; None for photos indexed before catalog v9
    clipped: float | None = None
    tags: str | None = None  # "date,place,camera,...": the kinds of metadata the file carries


@dataclass(frozen=True)
class ContentRecord:
    """A file row as move/copy detection sees it."""

    id: int
    path: str
    size: int
    mtime_ns: int
    fingerprint: str | None
    error: str | None


@dataclass(frozen=True)
class Relink:
    """A file at ``dest`` whose content is already catalogued as row ``source_id`` (moved there, or copied when ``copy``)."""

    source_id: int
    dest: str
    size: int
    mtime_ns: int
    fingerprint: str | None
    copy: bool = False
    parked: bool = False  # source_id is a parked row (catalog.park): a photo a cleanup took away, back

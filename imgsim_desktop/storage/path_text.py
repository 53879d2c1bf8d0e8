"""File names that are not valid UTF-8, stored losslessly in SQLite.

On POSIX a name is bytes; Python shows an undecodable byte (``caf\\xe9.jpg`` from an old Latin-1
disk) as a lone surrogate (U+DC80..U+DCFF, "surrogateescape"), which SQLite's UTF-8 text cannot
hold: the first such photo used to abort every indexing run. At the catalog's boundary those 128
surrogates are swapped for 128 code points of a private-use plane (U+F0F80..U+F0FFF) and back on
the way out, so a path round-trips exactly, prefix queries on folders still work (one code point
for one), and every valid UTF-8 name is stored unchanged. The one name this cannot tell apart is a
real name holding those private-use characters, which no camera, phone or OS writes.
"""

from __future__ import annotations

import sqlite3

_BASE = 0xF0F00  # stored = _BASE + the escaped byte (0x80..0xFF)
_TO_DB = {0xDC00 + b: _BASE + b for b in range(0x80, 0x100)}
_FROM_DB = {v: k for k, v in _TO_DB.items()}


def to_db(value):
    """A parameter as SQLite may store it (only str with escaped bytes changes)."""
    if isinstance(value, str) and not value.isascii():
        return value.translate(_TO_DB)
    return value


def from_db(raw: bytes) -> str:
    """SQLite's text_factory: UTF-8 bytes back to the str Python's os functions take."""
    text = raw.decode("utf-8")
    return text if text.isascii() else text.translate(_FROM_DB)


def _params(params):
    if isinstance(params, dict):
        return {k: to_db(v) for k, v in params.items()}
    return tuple(to_db(v) for v in params)


class PathSafeConnection(sqlite3.Connection):
    """sqlite3.connect(..., factory=PathSafeConnection): every parameter and every text read goes through the mapping."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.text_factory = from_db

    def execute(self, sql, params=()):
        return super().execute(sql, _params(params))

    def executemany(self, sql, seq_of_params):
        return super().executemany(sql, (_params(p) for p in seq_of_params))

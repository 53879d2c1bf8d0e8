"""What the terminal commands print besides JSON: a progress line, and file names made harmless.

A file name may hold any byte but '/' and NUL: ``b\\e[1A\\e[2K\\r...`` printed raw moves the cursor
and rewrites lines the user already read (a fake "0 suggested for removal"). Every name a human
line shows goes through ``shown``; ``--json`` output is escaped by the JSON encoder already.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import sys
import time


def human_size(n: float) -> str:
    """Decimal units (1 MB = 1,000,000 bytes), as GNOME's and macOS's file managers show sizes:
    the app and the CLI both word sizes with this, so the same photos read the same."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


def _argument(text: str, convert, kind: str, ok, must: str):
    """``text`` converted for argparse, or one clear line: "'x' is not <kind>" / "x: must be <must>"."""
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not {kind}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"{text}: must be {must}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (-k, --samples)."""
    return _argument(text, int, "a whole number", lambda v: v >= 1, "at least 1")


def unit_fraction(text: str) -> float:
    """An argparse type: a number from 0 to 1 (--sensitivity); NaN fails the range check too."""
    return _argument(text, float, "a number", lambda v: 0.0 <= v <= 1.0, "from 0 to 1")


def positive_seconds(text: str) -> float:
    """An argparse type: a finite number of seconds above 0 (--poll; -1 or nan made a busy loop)."""
    return _argument(text, float, "a number of seconds", lambda v: math.isfinite(v) and v > 0, "a number of seconds above 0")


def json_line(obj) -> str:
    """One JSON object on one line, valid for strict parsers even when a file name is not valid
    UTF-8 (an old disk's "caf\\xe9.jpg"): Python holds such bytes as lone surrogates, which JSON
    cannot carry. Such a value is written readably ("caf\\ufffd.jpg") and its exact bytes go beside
    it, base64-encoded, under the key with "_bytes" added (a list for a list of names), so a
    script gets the very name back: os.fsdecode(base64.b64decode(obj["path_bytes"]))."""
    return json.dumps(_json_safe(obj))


def _json_safe(value):
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out[key] = _json_safe(item)
            if isinstance(item, str) and _lossy(item):
                out[f"{key}_bytes"] = _b64(item)
            elif isinstance(item, list) and any(isinstance(v, str) and _lossy(v) for v in item):
                out[f"{key}_bytes"] = [_b64(v) if isinstance(v, str) else None for v in item]
        return out
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, str) and _lossy(value):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value


def _lossy(text: str) -> bool:
    return not text.isascii() and any("\udc80" <= ch <= "\udcff" for ch in text)


def _b64(text: str) -> str:
    return base64.b64encode(os.fsencode(text)).decode("ascii")


def shown(text: object) -> str:
    """``text`` with control and format characters (ESC, CR, newline, bidi overrides...) written
    as escapes, so a name prints as one inert line."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == " " else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte of the name (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


class TerminalProgress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.started = time.monotonic()

    def __call__(self, done: int, total: int, message: str) -> None:
        if not self.enabled:
            return
        if total <= 0:
            line = f"{shown(message)}…"
        else:
            elapsed = time.monotonic() - self.started
            rate = done / elapsed if elapsed > 0 else 0.0
            filled = int(30 * done / total)
            eta = f"{(total - done) / rate:5.0f}s left" if rate > 0 and done < total else ""
            line = f"[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} {rate:5.1f} photos/s {eta}"
        width = 100
        sys.stderr.write("\r" + line[:width].ljust(width))
        sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 100 + "\r")
            sys.stderr.flush()

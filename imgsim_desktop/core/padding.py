"""Where a photo's picture is when a border was added around it: its content box.

Copies get borders: letterboxed to 16:9, padded to a square for a feed, framed by an editor. The
border carries no picture, so the duplicate check must not count it: a crop of a photo that was
then padded lies inside its original only once the padding is set aside, and the pixel check must
not compare the padding with the picture the original has there.

A padding band is a run of rows (or columns) at an edge that are all one level: flat across the
row, and at the level of the outermost row. JPEG ringing next to the picture only shortens a band
by a pixel or two. Sky is rarely that flat at these sizes (it has a gradient), and a band is never
taken to cover more than MAX_SHARE of a side, so a nearly empty photo keeps its frame.
"""

from __future__ import annotations

import numpy as np

FLAT_STD = 2.0  # grey levels: spread across a padding row (a painted border is one colour)
SAME_LEVEL = 3.0  # grey levels: each padding row's mean stays this close to the outermost row's
MIN_BAND = 2  # rows: thinner "bands" are resampling edges, not padding
MAX_SHARE = 0.4  # of a side: more than this flat is an empty picture, not a border
# Rows past a band's end that still count as border: the row where border and picture were
# resampled together, and JPEG ringing beside it. Left in, they put a padded crop 2 % outside its
# original.
SEAM = 2


def _band(means: np.ndarray, stds: np.ndarray) -> int:
    """Leading rows that are flat at the first row's level."""
    flat = (stds <= FLAT_STD) & (np.abs(means - means[0]) <= SAME_LEVEL)
    n = len(flat) if flat.all() else int(np.argmin(flat))
    return n + SEAM if MIN_BAND <= n <= MAX_SHARE * len(flat) else 0


def content_box(grey: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the picture inside any flat border, in pixels of ``grey`` (2-D array);
    the whole frame when there is none."""
    h, w = grey.shape
    g = np.asarray(grey, np.float32)
    row_mean, row_std = g.mean(axis=1), g.std(axis=1)
    col_mean, col_std = g.mean(axis=0), g.std(axis=0)
    top, bottom = _band(row_mean, row_std), _band(row_mean[::-1], row_std[::-1])
    left, right = _band(col_mean, col_std), _band(col_mean[::-1], col_std[::-1])
    # A column's spread includes the top and bottom bands (and a row's the side bands): measured
    # again inside the other pair's box, a frame on all four sides is found too.
    if top or bottom:
        inner = g[top : h - bottom]
        left = left or _band(inner.mean(axis=0), inner.std(axis=0))
        right = right or _band(inner.mean(axis=0)[::-1], inner.std(axis=0)[::-1])
    if left or right:
        inner = g[:, left : w - right]
        top = top or _band(inner.mean(axis=1), inner.std(axis=1))
        bottom = bottom or _band(inner.mean(axis=1)[::-1], inner.std(axis=1)[::-1])
    return left, top, w - right, h - bottom


def trimmed(grey: np.ndarray) -> np.ndarray:
    """``grey`` without its flat border."""
    x0, y0, x1, y1 = content_box(grey)
    return grey[y0:y1, x0:x1]

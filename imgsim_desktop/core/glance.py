"""A photo's "glance": a tiny code that stays the same when the photo is turned or mirrored.

The CNN embedding finds re-encoded, resized and edited copies, but a copy turned by a quarter turn
looks like another picture to it (cosine 0.4-0.7 where the duplicate stage asks for 0.7), and a
mirrored one often falls outside a photo's few nearest neighbours. This code closes that gap for
the candidate search only; every pair it proposes still goes through core.verify.

It is the low-frequency cosine transform of a 32 x 32 grey version of the frame (the whole frame
squeezed to a square, so a turned 4:3 photo gives the turned square). Under the eight turns and
flips of a square, coefficient (u, v) only changes sign (flips) or swaps with (v, u) (a transpose
is part of every quarter turn). So the magnitudes |c(u,v)| and |c(v,u)|, taken as an unordered
pair (larger, smaller), do not change at all: one code for all eight orientations, and one nearest
neighbour search instead of eight. Measured on the duplicates benchmark's report half: a rotated
copy's own original is its nearest glance for 90 % of them (crops change the frame and defeat it;
those the embedding finds).
"""

from __future__ import annotations

import cv2
import numpy as np

from imgsim_desktop.core import padding

SIDE = 32  # the grey square the transform is taken of
BORDER_SIDE = 256  # longer side at which an added border is looked for (as the duplicate check's small image)
FREQUENCIES = 8  # u, v < 8: the coarse layout of the picture, not its texture or its noise
_U, _V = np.triu_indices(FREQUENCIES)
_OFF_DIAGONAL = _U != _V
DIMS = (len(_U) - 1) + int(_OFF_DIAGONAL.sum())  # larger of each pair (without the mean), smaller off the diagonal: 63
DTYPE = "<f2"  # stored form: 126 bytes a photo


def of_grey(grey: np.ndarray) -> np.ndarray:
    """The code (DIMS float32, unit length) of a grey image (2-D uint8 array, any size). An added
    border is left out (padding.content_box): a letterboxed copy has its original's layout."""
    grey = np.ascontiguousarray(grey)
    h, w = grey.shape
    if max(h, w) > BORDER_SIDE:  # the border is found on a small version: a fraction of the cost
        k = BORDER_SIDE / max(h, w)
        grey = cv2.resize(grey, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
    picture = padding.trimmed(grey)
    return of_square(cv2.resize(picture, (SIDE, SIDE), interpolation=cv2.INTER_AREA).astype(np.float32))


def of_square(square: np.ndarray) -> np.ndarray:
    """The code of an already squeezed SIDE x SIDE grey square (its level and contrast do not matter)."""
    square = np.asarray(square, np.float32)
    square = square - square.mean()  # brightness edits move the mean only
    coefficients = cv2.dct(np.ascontiguousarray(square))[:FREQUENCIES, :FREQUENCIES]
    a, b = np.abs(coefficients[_U, _V]), np.abs(coefficients[_V, _U])
    code = np.concatenate([np.maximum(a, b)[1:], np.minimum(a, b)[_OFF_DIAGONAL]])
    norm = float(np.linalg.norm(code))
    return (code / norm if norm > 1e-6 else code).astype(np.float32)  # a flat frame has no layout: all zero


def to_bytes(code: np.ndarray) -> bytes:
    return np.asarray(code, DTYPE).tobytes()


def from_bytes(data: bytes) -> np.ndarray | None:
    """The stored code, or None when the bytes are not one (a damaged or foreign value)."""
    if data is None or len(data) != DIMS * np.dtype(DTYPE).itemsize:
        return None
    return np.frombuffer(data, DTYPE).astype(np.float32)

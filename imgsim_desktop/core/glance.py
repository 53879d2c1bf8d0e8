"""A photo's "glance": the coarse layout of its picture, read the same however it is turned.

The CNN embedding finds re-encoded, resized and edited copies, but a copy turned by a quarter turn
looks like another picture to it (cosine 0.2-0.7 where the duplicate stage asks for 0.7), and a
mirrored one often falls outside a photo's few nearest neighbours. The glance closes that gap for
the candidate search only; every pair it proposes still goes through core.verify.

What is stored is the low-frequency cosine transform (8 x 8 coefficients) of a 32 x 32 grey
version of the picture (any added border left out, the picture squeezed to a square, so a turned
4:3 photo gives the turned square). Under the eight turns and flips of a square, coefficient
(u, v) only changes sign (flips) or swaps with (v, u) (a transpose is part of every quarter turn).
Two things are read from it:

  code   the magnitudes |c(u,v)|, |c(v,u)| as an unordered pair: the same for all eight
         orientations, so one nearest-neighbour search finds turned copies. It is coarse: in a
         library of 500 real photos 0.4 % of unrelated pairs agree to 0.95, which in a library of
         100,000 is hundreds of look-alikes per photo.
  hash   a perceptual hash (each coefficient above or below their median: 63 bits) in each of the
         eight orientations, with the signs the magnitudes drop. Among those 500 photos no two
         unrelated ones came within 10 bits of each other in any orientation; 96 % of generated
         uncropped copies (re-encoded, edited, captioned, turned, mirrored) did. A pair the code
         proposes is only checked when its hashes agree this well.
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
DTYPE = "<f2"  # stored form: the 8 x 8 block, 128 bytes a photo
_ODD_U = ((-1.0) ** np.arange(FREQUENCIES))[:, None]  # flipping rows negates the odd rows of the block
_ODD_V = _ODD_U.T
HASH_MATCH_BITS = 10  # of 63: copies (with captions, stickers, turns) mostly within this, unrelated photos never seen there
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def block_of_grey(grey: np.ndarray) -> np.ndarray:
    """The stored form (8 x 8 float32 DCT block) of a grey image (2-D uint8 array, any size). An
    added border is left out (padding.content_box): a letterboxed copy has its original's layout."""
    grey = np.ascontiguousarray(grey)
    h, w = grey.shape
    if max(h, w) > BORDER_SIDE:  # the border is found on a small version: a fraction of the cost
        k = BORDER_SIDE / max(h, w)
        grey = cv2.resize(grey, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
    square = cv2.resize(padding.trimmed(grey), (SIDE, SIDE), interpolation=cv2.INTER_AREA).astype(np.float32)
    square -= square.mean()  # brightness edits move the mean only
    return cv2.dct(np.ascontiguousarray(square))[:FREQUENCIES, :FREQUENCIES].copy()


def code(block: np.ndarray) -> np.ndarray:
    """The orientation-proof code (DIMS float32, unit length; all zero for a flat picture)."""
    return codes(block[None])[0]


def codes(blocks: np.ndarray) -> np.ndarray:
    """code() of each of N blocks (N x 8 x 8): N x DIMS."""
    a, b = np.abs(blocks[:, _U, _V]), np.abs(blocks[:, _V, _U])
    out = np.concatenate([np.maximum(a, b)[:, 1:], np.minimum(a, b)[:, _OFF_DIAGONAL]], axis=1).astype(np.float32)
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return np.where(norm > 1e-6, out / np.maximum(norm, 1e-6), out).astype(np.float32)


def hashes(blocks: np.ndarray) -> np.ndarray:
    """The perceptual hash of each block (N x 8 x 8, or one 8 x 8) in each of the eight
    orientations: N x 8 x 8 bytes (63 bits used), or 8 x 8 for one block."""
    blocks = np.asarray(blocks, np.float32)
    one = blocks.ndim == 2
    blocks = blocks[None] if one else blocks
    turned = []
    for transpose in (False, True):
        c = blocks.transpose(0, 2, 1) if transpose else blocks
        for flip_u in (False, True):
            for flip_v in (False, True):
                turned.append(c * (_ODD_U if flip_u else 1.0) * (_ODD_V if flip_v else 1.0))
    values = np.stack(turned, axis=1).reshape(len(blocks), 8, -1)[:, :, 1:]  # N x 8 orientations x 63
    out = np.packbits(values > np.median(values, axis=2, keepdims=True), axis=2)
    return out[0] if one else out


def hash_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bits apart of pairs of photos' hashes (N x 8 x 8 each, row i against row i) in the
    orientation where they agree best."""
    return _POPCOUNT[np.bitwise_xor(a[:, :1, :], b)].sum(axis=2, dtype=np.int32).min(axis=1)


def hash_distance(a: np.ndarray, b: np.ndarray) -> int:
    """hash_distances for one pair (8 x 8 each)."""
    return int(hash_distances(a[None], b[None])[0])


def to_bytes(block: np.ndarray) -> bytes:
    return np.asarray(block, DTYPE).tobytes()


def from_bytes(data: bytes | None) -> np.ndarray | None:
    """The stored block, or None when the bytes are not one (damaged, or written by an older version)."""
    if data is None or len(data) != FREQUENCIES * FREQUENCIES * np.dtype(DTYPE).itemsize:
        return None
    block = np.frombuffer(data, DTYPE).astype(np.float32).reshape(FREQUENCIES, FREQUENCIES)
    return block if np.all(np.isfinite(block)) else None

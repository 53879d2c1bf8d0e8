"""Do two aligned photos show the same pixels? The part of the duplicate check that geometry alone
cannot do.

One affine transform relates a copy to its original, but it also relates two people's photos of a
flat facade, two frames of a camera sliding over gravel, or the window of a hall seen from two
seats. What differs is the content: a copy agrees with its original everywhere they overlap
(clouds, people, shadows, the grain of the gravel), and its frame lies inside the original's (a
crop) or the original inside it (a border added). Another photo of the same place is shifted
against it (so neither frame contains the other) or, where it is contained, shows other clouds,
other people, other light.

Both checks run on small greyscale versions (SMALL_SIDE on the longer side) kept with each photo's
features: at that size people and clouds are still tens of pixels, and a comparison costs well
under a millisecond. Measured on the real hard negatives of shared/photos/other_shots and scenes
against generated copies (crops to 30 %, rescales, JPEG 30, colour edits, blur, captions,
stickers, borders, rotations, mirrors), see bench/bench_duplicates_quality.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from imgsim_desktop.core import padding

SMALL_SIDE = 256
TILE = 16  # pixels of the small image per compared tile: 16 x 12 tiles for a 4:3 photo
TEXTURED_STD = 6.0  # grey-level spread above which a tile has content to correlate
TILE_CORRELATION = 0.6  # textured tiles of a copy correlate above this (blur, JPEG 30, colour edits)
FLAT_TOLERANCE = 10.0  # flat tiles (sky, walls) must match in level after the global tone fit
CLIPPED = (8.0, 247.0)  # a tile this dark or bright in either photo may have been clipped by an edit
# A copy's tone is a mild edit of the original's: brightness, contrast. A fit outside this range
# means the "overlap" is not one picture (e.g. a lit window matched inside a dark hall).
GAIN_RANGE = (0.4, 2.5)
MIN_TILES = 6  # fewer informative tiles than this: the overlap says nothing either way
TONE_SAMPLE = 4000  # pixels the tone fit uses


@dataclass(frozen=True)
class Overlap:
    a_inside_b: float  # share of A's frame that B covers
    b_inside_a: float  # share of B's frame that lies inside A
    disagreement: float  # share of informative tiles of the overlap where the pixels differ
    tiles: int  # informative tiles compared
    gain: float  # A ~= gain * B + offset, fitted over the overlap
    offset: float
    scattered: float = 0.0  # share of informative tiles differing outside the largest differing patch

    @property
    def contained(self) -> float:
        """How nearly one frame lies inside the other: 1.0 for a crop or an added border."""
        return max(self.a_inside_b, self.b_inside_a)

    def swapped(self) -> Overlap:
        """The same comparison with the roles of A and B exchanged."""
        gain = self.gain if abs(self.gain) > 1e-6 else 1.0
        return Overlap(self.b_inside_a, self.a_inside_b, self.disagreement, self.tiles, 1.0 / gain, -self.offset / gain, self.scattered)

    @property
    def tone_plausible(self) -> bool:
        return GAIN_RANGE[0] <= self.gain <= GAIN_RANGE[1]


def small_grey(gray: np.ndarray) -> np.ndarray:
    """The stored small version of a photo's working-size grey image."""
    h, w = gray.shape
    scale = SMALL_SIDE / max(w, h)
    return cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def _corners(w: float, h: float) -> np.ndarray:
    return _box_corners((0.0, 0.0, w, h))


def _box_corners(box) -> np.ndarray:
    x0, y0, x1, y1 = box
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)


def in_box(polygon, box) -> tuple[float, float]:
    """(area of a convex polygon, e.g. another photo's frame mapped here, inside the box (x0, y0,
    x1, y1), e.g. a picture inside its border; the polygon's own area). Either winding: a mirrored
    frame runs the other way."""
    poly = np.asarray(polygon, np.float32).reshape(-1, 2)
    area = abs(float(cv2.contourArea(poly)))
    if area <= 0:
        return 0.0, 0.0
    inter, _ = cv2.intersectConvexConvex(_box_corners(box), poly)
    return float(inter), area


def containment(model: np.ndarray, size_a: tuple[float, float], size_b: tuple[float, float], box_a=None, box_b=None) -> tuple[float, float]:
    """(share of A's picture inside B's frame, share of B's picture inside A's frame) for ``model``
    mapping A's pixels to B's. A picture is its frame less any added border (``box_a``, ``box_b``:
    (x0, y0, x1, y1), padding.content_box); a frame includes its own border, so a crop that takes
    in a flat edge of the original, which looks like a border, is still inside it."""
    box_a, box_b = box_a or (0.0, 0.0, *size_a), box_b or (0.0, 0.0, *size_b)
    a_in_b = _picture_inside(box_a, cv2.invertAffineTransform(model), size_b)
    b_in_a = _picture_inside(box_b, model, size_a)
    return a_in_b, b_in_a


def _picture_inside(box, to_other: np.ndarray, other_size) -> float:
    """Share of ``box`` that lies inside the other frame; ``to_other`` maps the other frame's pixels here."""
    area = (box[2] - box[0]) * (box[3] - box[1])
    frame = cv2.transform(_corners(*other_size)[None], to_other)[0]
    inter, _ = in_box(frame, box)
    return inter / area if area > 0 else 0.0


def _tone_fit(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """a ~= gain * b + offset, robust to a caption or sticker covering part of the overlap: start
    from the quartiles, then refit a few times on the pixels that agree with the fit. A few thousand
    pixels settle two numbers: a sample keeps it well under a millisecond."""
    step = max(1, len(a) // TONE_SAMPLE)
    a, b = a[::step], b[::step]
    n = len(a)
    at = [n // 4, n // 2, (3 * n) // 4]  # quartiles by partition: a fraction of np.percentile's cost
    qa, qb = np.partition(a, at)[at], np.partition(b, at)[at]
    gain = float(qa[2] - qa[0]) / max(float(qb[2] - qb[0]), 1.0)
    offset = float(qa[1]) - gain * float(qb[1])
    for _ in range(3):
        residual = np.abs(a - (gain * b + offset))
        keep = residual <= max(3.0 * float(np.partition(residual, n // 2)[n // 2]), 4.0)
        if keep.sum() < 100:
            break
        ak, bk = a[keep], b[keep]
        spread = float(bk.var())
        if spread < 1e-6:
            break
        gain = float(((ak - ak.mean()) * (bk - bk.mean())).mean() / spread)
        offset = float(ak.mean() - gain * bk.mean())
    return float(gain), float(offset)


def _tiles(x: np.ndarray, rows: int, cols: int) -> np.ndarray:
    return x[: rows * TILE, : cols * TILE].reshape(rows, TILE, cols, TILE).transpose(0, 2, 1, 3).reshape(rows * cols, TILE * TILE)


def compare(small_a: np.ndarray, small_b: np.ndarray, model: np.ndarray, size_a: tuple[int, int], size_b: tuple[int, int], box_a=None, box_b=None) -> Overlap:
    """Pixel agreement of B warped onto A. ``model`` maps A's working-frame pixels (``size_a``)
    to B's (``size_b``); the small images are those frames scaled to SMALL_SIDE. An added border
    (padding.content_box of each small image, found here unless given as ``box_a`` / ``box_b``)
    is neither picture to contain nor pixels to compare."""
    ha, wa = small_a.shape
    hb, wb = small_b.shape
    # The same map between the small images: scale A's small pixels up to A's frame, map, scale down.
    sa, sb = wa / size_a[0], wb / size_b[0]
    box_a = padding.content_box(small_a) if box_a is None else box_a
    box_b = padding.content_box(small_b) if box_b is None else box_b
    a_in_b, b_in_a = containment(model, size_a, size_b, [v / sa for v in box_a], [v / sb for v in box_b])
    m = model.astype(np.float64).copy()
    m[:, :2] *= sb / sa
    m[:, 2] *= sb
    warped = cv2.warpAffine(small_b.astype(np.float32), m, (wa, ha), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    inside = cv2.warpAffine(_box_mask((hb, wb), box_b), m, (wa, ha), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP) & _box_mask((ha, wa), box_a)
    inside = cv2.erode(inside, np.ones((5, 5), np.uint8)) > 0  # resampling spoils the edge pixels
    if inside.sum() < 4 * TILE * TILE:
        return Overlap(a_in_b, b_in_a, 1.0, 0, 1.0, 0.0)
    # A light blur first: JPEG blocks and resampling differ between copies, content does not.
    a = cv2.GaussianBlur(small_a.astype(np.float32), (0, 0), 1.0)
    b = cv2.GaussianBlur(warped, (0, 0), 1.0)
    gain, offset = _tone_fit(a[inside], b[inside])
    b = gain * b + offset
    rows, cols = ha // TILE, wa // TILE
    ta, tb = _tiles(a, rows, cols), _tiles(b, rows, cols)
    whole = _tiles(inside.astype(np.float32), rows, cols).mean(1) >= 0.95
    ta, tb = ta[whole], tb[whole]
    if len(ta) == 0:
        return Overlap(a_in_b, b_in_a, 0.0, 0, gain, offset)
    mean_a, mean_b = ta.mean(1), tb.mean(1)
    da, db = ta - mean_a[:, None], tb - mean_b[:, None]
    std_a, std_b = np.sqrt((da**2).mean(1)), np.sqrt((db**2).mean(1))
    textured = np.maximum(std_a, std_b) > TEXTURED_STD
    correlation = (da * db).mean(1) / np.maximum(std_a * std_b, 1e-6)
    clipped = (np.minimum(mean_a, mean_b) < CLIPPED[0]) | (np.maximum(mean_a, mean_b) > CLIPPED[1])
    # Flat tiles where an edit may have clipped the levels tell nothing; all others are judged.
    informative = textured | ~clipped
    agree = np.where(textured, correlation > TILE_CORRELATION, np.abs(mean_a - mean_b) < FLAT_TOLERANCE)
    n = int(informative.sum())
    if n < MIN_TILES:
        return Overlap(a_in_b, b_in_a, 0.0, n, gain, offset)
    differ = np.zeros(rows * cols, np.uint8)
    differ[np.flatnonzero(whole)[informative & ~agree]] = 1
    return Overlap(a_in_b, b_in_a, float(1.0 - agree[informative].mean()), n, gain, offset, _outside_largest_patch(differ.reshape(rows, cols)) / n)


def _box_mask(shape: tuple[int, int], box) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = 1
    return mask


def _outside_largest_patch(differ: np.ndarray) -> int:
    """Differing tiles outside the largest connected patch of them. What an edit adds (a caption,
    a sticker, a logo) is one patch; another shot differs here and there (people, parallax)."""
    count, labels = cv2.connectedComponents(differ, connectivity=8)
    if count <= 2:
        return 0
    sizes = np.bincount(labels.ravel())[1:]
    return int(sizes.sum() - sizes.max())

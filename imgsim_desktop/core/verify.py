"""Is photo B the same picture as photo A (re-encoded, resized, cropped, lightly edited)?

A global CNN embedding says "these look alike"; it cannot tell the same photo cropped from another
shot of the same place a moment later. Local features can: ORB keypoints matched between the two
photos, and one similarity transform (scale, rotation, shift: what cropping, resizing and
re-encoding do) fitted with RANSAC. For a copy, almost every confident match lands where the
transform says, to a pixel or two. For another shot of the same scene (a burst, a stereo pair,
consecutive video frames, a new viewpoint) many matches are *near* their predicted place but off
by a few pixels: things moved, or the camera did, and no single 2-D transform explains them.
Content that an edit added (a sticker, a caption) has no match at all and is simply ignored.

Geometry is not the whole answer: a flat facade photographed by two people, or gravel under a
sliding camera, is related by one transform too. So a pair that the geometry accepts must also
pass core.overlap: one frame inside the other, and the same pixels wherever they overlap. A
mirrored copy (selfie cameras, editors) has no matching keypoints at all, so a pair with little
evidence is tried once more with one photo flipped, on the small images kept for the overlap.

Only candidate pairs from the vector index come here, so its cost is per pair, not per library.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
from PIL import Image

from imgsim_desktop.core import overlap, padding
from imgsim_desktop.core.decode import LOCAL_FEATURES_MIN_SIDE, DecodeError, open_image

# Photos are compared at this longer side: enough detail for pixel-accurate keypoints, small
# enough that detection takes a few milliseconds.
WORK_SIDE = 640
# Matching costs features squared (measured 1500: ~20 ms a pair, 1000: ~10 ms) and each feature is 32 bytes
# in the disk cache. 500 was too few: a stereo pair then looked like one photo (tune split).
N_FEATURES = 1000
RATIO = 0.8  # Lowe's ratio test: keep a match only when clearly better than the runner-up
# Residuals, in working pixels, after the fitted transform. Up to TIGHT: the same pixel (JPEG and
# resampling move keypoints by about one pixel). Up to MOVED_FACTOR times that: the same thing,
# displaced a little (a burst, a stereo pair). Beyond: a wrong match, e.g. on a repeated pattern.
TIGHT_PX = 2.5
MOVED_FACTOR = 4.0
MIN_MATCHES = 12
LEVEL_STEP = 1.2  # ORB's pyramid scale factor (OpenCV's default, used below)
FINE_LEVEL = 0  # keypoints of the full-size level: a coarser level samples other pixels after a crop or turn
MIN_FINE = 30  # fine matches needed before their moved share is judged
QUARTER_TURN_DEG = 1.0  # a fitted rotation this close to a multiple of 90 degrees is a quarter turn
MOTION_MARGIN = 1.5  # times the allowed moved shares: beyond, a rejected pair plainly shows two moments
FINE_MOVED_FACTOR = 0.6  # of the allowed moved share: copies 0-5 % (repeated columns), a burst with small motion 7 %
# Matching is nearly all of a pair's cost (1000 x 1000 Hamming distances: ~5 ms; RANSAC ~0.3 ms).
# Most pairs are plain from A's strongest keypoints alone (a quarter of the work), and only a clear
# answer, with margin, settles a pair there (decide()); anything less is matched in full.
QUICK_KEYPOINTS = 250
QUICK_MIN_ALIGNED = 40  # early acceptance needs at least this many aligned points ...
QUICK_MOVED_FACTOR = 0.25  # ... and at most this share of the allowed moved share (0.5 let a
# burst pair through at the default: rubberwhale, 3.4% moved among the strongest, 9.3% among all)
# Early rejection, of another shot: at least this many points near the fitted transform, and over
# this many times the allowed share of them displaced (true pairs of the labelled set: at most 1.1
# times at the default; a stereo pair 3.5, a burst with motion 4.8) ...
QUICK_REJECT_MIN_NEAR = 20
QUICK_REJECT_MOVED_FACTOR = 2.0
QUICK_REJECT_MIN_SHARE = 0.2  # and never below this share, however strict the setting
# (Few quick matches are no evidence of a different photo: an off-centre crop, enlarged to the
# working size, matches the original's strongest points poorly both ways and fully in the full check.)
# Smooth photos (sky, fog, gradients) yield too few keypoints; those are compared as whole frames
# instead: same aspect ratio and a near-perfect correlation of tiny greyscale versions.
TEXTURELESS_KEYPOINTS = 300
THUMB = 32
# The mirror pass: ORB on the small images (overlap.SMALL_SIDE), one of them flipped. Measured on
# real other-shot pairs: at most 84 aligned points with 9 % moved; mirrored copies 250-470, under
# 1 % moved. So it asks for far more, and far cleaner, evidence than the main check.
MIRROR_FEATURES = 500
MIRROR_MIN_ALIGNED = 40  # a mirrored crop to 56 % keeps 46-56 of them; the pixels are checked after
MIRROR_MOVED_FACTOR = 0.4  # of the allowed moved share
# A straight check that aligned this many points and still failed is another shot (a burst, a
# stereo pair: 34-85 points), not a mirrored copy (0-26 straight points, as ORB is not mirror-proof):
# no mirror pass, which costs as much as the rest of the check. A mirrored symmetric facade aligns
# as many straight (36-89): found when its whole frame matches mirrored, missed when also cropped.
ANOTHER_SHOT_ALIGNED = 30
MIRROR_THUMB_CORRELATION = 0.9  # ... unless the whole frames match this well mirrored (_looks_mirrored)
# And the mirror must explain the pair far better than the straight fit did: a symmetric rotunda's
# mirrored crop of one shot aligned 56-63 points, mirrored, on another shot that it matched
# straight with 48-70; a mirrored copy of a facade aligned 408 mirrored, 66 straight.
MIRROR_OVER_STRAIGHT = 2.0
MIRROR_LEVELS = 4  # pyramid levels: both small images are one size, 4 levels cost 25 % less than 8
SMALL_QUALITY = 90  # JPEG quality of the stored small image: ~17 KB (other_shots), artefacts far below what is judged

cv2.setNumThreads(1)  # scans verify pairs from a thread pool; OpenCV's own pool would oversubscribe


@dataclass(eq=False)
class Features:
    points: np.ndarray  # N x 2 float32, working-size pixel coordinates
    descriptors: np.ndarray | None  # N x 32 uint8 ORB descriptors (None when the photo has no texture)
    blur: float  # how much the photo was enlarged to the working size (1.0 when it was larger)
    aspect: float  # width / height
    thumb: np.ndarray  # THUMB x THUMB grey, zero mean, unit variance: for photos with too little texture
    # grey, overlap.SMALL_SIDE on the longer side: the pixels the overlap compares. Read from the
    # disk cache it stays JPEG until a pair needs it: most photos of a scan never get that far.
    small_source: np.ndarray | bytes
    octaves: np.ndarray  # N uint8: the pyramid level each keypoint was found at (its precision)
    _mirror_keys: dict = field(default_factory=dict, repr=False)  # ORB of the small image, per flip
    _small_box: tuple[int, int, int, int] | None = field(default=None, repr=False)

    @property
    def small(self) -> np.ndarray:
        if isinstance(self.small_source, bytes):
            self.small_source = _unjpeg(self.small_source)
        return self.small_source

    @property
    def small_box(self) -> tuple[int, int, int, int]:
        """The picture inside any added border, in pixels of ``small`` (padding.content_box), found once."""
        if self._small_box is None:
            self._small_box = padding.content_box(self.small)
        return self._small_box

    @property
    def picture(self) -> tuple[float, float, float, float] | None:
        """small_box in working-frame pixels; None when there is no border (the whole frame)."""
        x0, y0, x1, y1 = self.small_box
        h, w = self.small.shape
        if (x0, y0, x1, y1) == (0, 0, w, h):
            return None
        k = self.frame[0] / w
        return x0 * k, y0 * k, x1 * k, y1 * k

    @property
    def frame(self) -> tuple[int, int]:
        """(width, height) of the working frame that ``points`` and fitted models are in."""
        if self.aspect >= 1:
            return WORK_SIDE, max(1, round(WORK_SIDE / self.aspect))
        return max(1, round(WORK_SIDE * self.aspect)), WORK_SIDE

    def small_keypoints(self, flipped: bool) -> Features | None:
        """ORB of the small image (mirrored when ``flipped``), for the mirror pass; computed once."""
        if flipped not in self._mirror_keys:
            image = np.ascontiguousarray(self.small[:, ::-1]) if flipped else self.small
            orb = cv2.ORB_create(nfeatures=MIRROR_FEATURES, fastThreshold=10, edgeThreshold=15, patchSize=15, nlevels=MIRROR_LEVELS)
            keypoints, descriptors = orb.detectAndCompute(image, None)
            found = None
            if descriptors is not None and len(keypoints) >= MIN_MATCHES:
                points = np.array([k.pt for k in keypoints], np.float32).reshape(-1, 2)
                octaves = np.array([k.octave for k in keypoints], np.uint8)
                found = Features(points, descriptors, 1.0, self.aspect, self.thumb, image, octaves)
            self._mirror_keys[flipped] = found
        return self._mirror_keys[flipped]


# Disk form of Features (see to_bytes): bump when WORK_SIDE, N_FEATURES or the layout change, so
# entries cached by an older version are simply never found.
FORMAT = b"orb1000v3"  # v2: keypoints strongest first; v3: pyramid levels, the small image for the overlap check
_HEADER = struct.Struct("<IffHI")  # keypoints, blur, aspect, thumb side, bytes of the small image
_POINT_STEP = 16  # keypoints stored in 1/16 px: under 0.05 px of error where TIGHT_PX is 2.5


def to_bytes(f: Features) -> bytes:
    """Compact form for the disk cache: ~32 bytes a keypoint, a 2 KB thumbnail, the small image as JPEG."""
    descriptors = f.descriptors if f.descriptors is not None else np.zeros((0, 32), np.uint8)  # no keypoints
    points = np.round(f.points * _POINT_STEP).astype("<u2")
    small = f.small_source if isinstance(f.small_source, bytes) else _jpeg(f.small_source)
    header = _HEADER.pack(len(descriptors), f.blur, f.aspect, len(f.thumb), len(small))
    octaves = f.octaves.astype(np.uint8) if f.descriptors is not None else np.zeros(0, np.uint8)
    return b"".join((header, points.tobytes(), octaves.tobytes(), descriptors.tobytes(), f.thumb.astype("<f2").tobytes(), small))


def _jpeg(gray: np.ndarray) -> bytes:
    """The small image as JPEG, through Pillow: the packaged app's OpenCV is built without codecs."""
    out = io.BytesIO()
    Image.fromarray(gray).save(out, "JPEG", quality=SMALL_QUALITY)
    return out.getvalue()


def _unjpeg(data: bytes) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("L"))
    except (OSError, SyntaxError) as exc:  # Pillow's errors for a damaged JPEG (from_bytes checked its ends)
        raise DecodeError(f"damaged entry in the feature cache ({exc}); deleting verify-features/ only costs time") from exc


def from_bytes(data: bytes) -> Features:
    n, blur, aspect, side, small_bytes = _HEADER.unpack_from(data)
    at = _HEADER.size
    points = np.frombuffer(data, "<u2", 2 * n, at).reshape(n, 2).astype(np.float32) / _POINT_STEP
    at += 4 * n
    octaves = np.frombuffer(data, np.uint8, n, at)
    at += n
    descriptors = np.frombuffer(data, np.uint8, 32 * n, at).reshape(n, 32) if n else None
    at += 32 * n
    thumb = np.frombuffer(data, "<f2", side * side, at).reshape(side, side).astype(np.float32)
    at += 2 * side * side
    small = data[at : at + small_bytes]
    if len(small) != small_bytes or not (small.startswith(b"\xff\xd8") and small.endswith(b"\xff\xd9")):
        raise ValueError("damaged small image")  # a truncated entry: computed again
    return Features(points, descriptors, blur, aspect, thumb, small, octaves)


@dataclass(frozen=True)
class Limits:
    """What one sensitivity setting asks of a pair (core.duplicates.thresholds makes them)."""

    min_aligned: int  # points exactly where the transform puts them
    max_moved_share: float  # share of matched points displaced a little (another shot)
    min_correlation: float  # whole-frame correlation, for photos too smooth for keypoints
    max_disagreement: float  # share of the overlap's tiles whose pixels differ (core.overlap)
    max_scattered: float  # ... of them outside the largest differing patch (an added caption is one patch)
    min_contained: float  # how nearly one frame must lie inside the other


@dataclass(frozen=True)
class Evidence:
    """What the geometry and the pixels say about a pair; ``same_photo`` is the verdict at a given strictness."""

    matches: int  # confident matches (ratio test; one per B point, see _matches)
    aligned: int  # matches within TIGHT_PX of where the fitted transform puts them
    moved: int  # matches a little further off: the same thing, displaced
    scale: float  # how much B is magnified relative to A
    correlation: float | None = None  # whole-frame correlation, only for photos with too little texture
    model: np.ndarray | None = None  # 2x3 affine, A's working-frame pixels -> B's
    overlap: overlap.Overlap | None = None  # the pixels compared under ``model``
    mirrored: bool = False  # found by the mirror pass (``model`` then flips)
    fine_moved_share: float | None = None  # moved share among the most precise matches (None: too few)

    @property
    def moved_share(self) -> float:
        near = self.aligned + self.moved
        return self.moved / near if near else 1.0

    def geometry_holds(self, limits: Limits) -> bool:
        if self.correlation is not None:
            return self.correlation >= limits.min_correlation
        if self.mirrored:
            return self.aligned >= max(limits.min_aligned, MIRROR_MIN_ALIGNED) and self.moved_share <= MIRROR_MOVED_FACTOR * limits.max_moved_share
        fine_ok = self.fine_moved_share is None or self.fine_moved_share <= FINE_MOVED_FACTOR * limits.max_moved_share or self.quarter_turn
        return self.aligned >= limits.min_aligned and self.moved_share <= limits.max_moved_share and fine_ok

    @property
    def quarter_turn(self) -> bool:
        """Is B A turned by 90, 180 or 270 degrees? Then the precise points' "moved" share says
        nothing: ORB's descriptors are only steered in 12-degree steps, so on a turned photo of a
        repeated pattern (windows, columns) some precise points match their neighbour a few pixels
        away (5-10 % of them, where a burst has 7 %). No second shot is exactly a quarter turn of
        another, and the pixels are still compared."""
        if self.model is None or self.mirrored:
            return False
        angle = float(np.degrees(np.arctan2(self.model[1, 0], self.model[0, 0])))
        turns = round(angle / 90.0)
        return turns % 4 != 0 and abs(angle - 90.0 * turns) <= QUARTER_TURN_DEG

    def shows_motion(self, limits: Limits) -> bool:
        """Another moment beyond doubt: plenty of points where one transform puts them, and too
        many more displaced a little (a pair that fails on its pixels or its few points does not
        count: a heavily edited copy fails that way too)."""
        if self.correlation is not None or self.mirrored or self.aligned < limits.min_aligned:
            return False
        # With margin: two edited copies of one photo (a crop against a letterboxed copy, the
        # picture at other scales) can come out just over the limit (9 % moved of 76 points where
        # 8.5 % is allowed); two aerial shots seconds apart: 24 % of the precise points moved.
        fine_moved = self.fine_moved_share is not None and self.fine_moved_share > MOTION_MARGIN * FINE_MOVED_FACTOR * limits.max_moved_share
        return self.moved_share > MOTION_MARGIN * limits.max_moved_share or fine_moved

    def pixels_agree(self, limits: Limits) -> bool:
        o = self.overlap
        if o is None:
            return self.correlation is not None  # whole-frame verdicts compare the pixels already
        return o.contained >= limits.min_contained and o.tone_plausible and o.disagreement <= limits.max_disagreement and o.scattered <= limits.max_scattered

    def same_photo(self, limits: Limits) -> bool:
        return self.geometry_holds(limits) and self.pixels_agree(limits)


# JPEGs are decoded at the smallest DCT scale whose shorter side keeps at least this much (half the
# working size); the indexer decodes at this size too, so features made there are the same as here.
DECODE_MIN_SIDE = LOCAL_FEATURES_MIN_SIDE


def features(path: str | os.PathLike) -> Features:
    """ORB keypoints of a photo, decoded through decode.open_image (EXIF orientation, guards)."""
    image, full = open_image(path, min_side=DECODE_MIN_SIDE)
    return features_of(image, full)


def stored_form(image: Image.Image, full: tuple[int, int]) -> bytes | None:
    """to_bytes(features_of(...)) for a photo the indexer already has in memory; None when OpenCV
    refuses it (the scan will then try the file itself and report why)."""
    try:
        return to_bytes(features_of(image, full))
    except cv2.error:
        return None


def features_of(image: Image.Image, full: tuple[int, int]) -> Features:
    """ORB keypoints of a decoded photo (RGB, oriented, decoded at DECODE_MIN_SIDE or more);
    ``full`` is its displayed size before any reduced decode."""
    w, h = image.size
    # Both sides of a pair at the same longer side (small photos enlarged too), so a rescaled copy
    # is compared at the original's scale and keypoint noise is about a pixel in either photo.
    # Grey first: resizing one channel instead of three is most of the decode-to-keypoints time.
    scale = WORK_SIDE / max(w, h)
    gray = np.asarray(image.convert("L").resize((max(1, round(w * scale)), max(1, round(h * scale))), resample=3))  # bicubic
    orb = cv2.ORB_create(nfeatures=N_FEATURES, fastThreshold=10)
    keypoints, descriptors = orb.detectAndCompute(gray, None)
    if descriptors is not None:  # strongest first: the quick stage of decide() reads a prefix
        order = np.argsort([-k.response for k in keypoints], kind="stable")
        keypoints, descriptors = [keypoints[i] for i in order], descriptors[order]
    points = np.array([k.pt for k in keypoints], dtype=np.float32).reshape(-1, 2)
    octaves = np.array([k.octave for k in keypoints], np.uint8)
    thumb = cv2.resize(gray, (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32)
    thumb = (thumb - thumb.mean()) / max(float(thumb.std()), 1e-3)
    return Features(points, descriptors, max(1.0, WORK_SIDE / max(full)), w / h, thumb, overlap.small_grey(gray), octaves)


def _whole_frame(a: Features, b: Features, matches: int) -> Evidence:
    """For photos too smooth for keypoints: the same picture in one of the eight orientations
    (turned by quarter turns, mirrored or not) when their tiny versions correlate almost perfectly.
    With a border added to one (a wallpaper letterboxed), the pictures inside are compared."""
    box_a, thumb_a = _picture(a)
    box_b, thumb_b = _picture(b)
    (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = box_a, box_b
    log_aspect_a, log_aspect_b = _log_aspect(box_a), _log_aspect(box_b)
    if log_aspect_a is None or log_aspect_b is None:
        return Evidence(matches, 0, 0, 1.0, 0.0)
    corners_a = np.array([[[ax0, ay0], [ax1, ay0]], [[ax0, ay1], [ax1, ay1]]], np.float32)
    best: tuple[float, int, bool] | None = None
    for turns in range(4):
        if abs((log_aspect_a if turns % 2 == 0 else -log_aspect_a) - log_aspect_b) >= 0.02:
            continue  # a turned frame has the other shape
        for flip in (False, True):
            seen = np.rot90(thumb_a[:, ::-1] if flip else thumb_a, turns)
            score = float(np.mean(seen * thumb_b))
            if best is None or score > best[0]:
                best = (score, turns, flip)
    if best is None:
        return Evidence(matches, 0, 0, 1.0, 0.0)
    score, turns, flip = best
    # The same turn applied to A's corners says which of them lands on B's corners.
    placed = np.rot90(corners_a[:, ::-1] if flip else corners_a, turns)
    source = np.array([placed[0, 0], placed[0, 1], placed[1, 0]], np.float32)
    target = np.array([[bx0, by0], [bx1, by0], [bx0, by1]], np.float32)
    return Evidence(matches, 0, 0, 1.0, score, cv2.getAffineTransform(source, target), mirrored=flip)


def _picture(f: Features) -> tuple[tuple[float, float, float, float], np.ndarray]:
    """The picture's box in the working frame (Features.picture, the whole frame when there is no
    border) and its normalised thumb: the stored one when there is no border."""
    box = f.picture
    if box is None:
        return (0.0, 0.0, *f.frame), f.thumb
    x0, y0, x1, y1 = f.small_box
    thumb = cv2.resize(f.small[y0:y1, x0:x1], (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32)
    return box, (thumb - thumb.mean()) / max(float(thumb.std()), 1e-3)


def _log_aspect(box) -> float | None:
    """log(width / height) of a box (x0, y0, x1, y1); None for an empty one."""
    x0, y0, x1, y1 = box
    return float(np.log((x1 - x0) / (y1 - y0))) if x1 > x0 and y1 > y0 else None


def _nearest_two(a: Features, b: Features, start: int = 0, stop: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Hamming distances to, and indices of, the two closest B keypoints for A's keypoints
    ``start:stop``. batchDistance returns the k best as arrays: no DMatch object per feature, no
    Python loop. This is nearly all of a pair's cost."""
    return cv2.batchDistance(a.descriptors[start:stop], b.descriptors, cv2.CV_32S, normType=cv2.NORM_HAMMING, K=2)


def _matches(a: Features, b: Features, nearest_two: tuple[np.ndarray, np.ndarray], full: bool) -> tuple[np.ndarray, np.ndarray]:
    """Matches of A's first keypoints (as many as ``nearest_two`` has rows) with B's that pass the
    ratio test against B, at most one per B point.

    The quick stage (not ``full``) also checks the way back: B's point must find that A point
    closest among the same first ones, a cheap check there. Over all of A the way back costs two
    thirds as much as the way there (40 % of a full check), so the full check keeps instead, of the
    A points that claim one B point, the closest: same verdicts on the labelled sets at the default
    setting and looser ones; at the strictest a little more "moved" evidence, so a few more true
    copies fall outside its tight limit (bench_duplicates_quality's curve at 0.0: recall 0.930 -> 0.920)."""
    distance, nearest = nearest_two
    confident = np.flatnonzero(distance[:, 0] < RATIO * distance[:, 1])
    best = nearest[confident, 0]
    if len(best) == 0:
        return confident[:0], best[:0]
    if full:
        by_point = np.lexsort((distance[confident, 0], best))  # per B point, closest claim first
        claimed = best[by_point]
        closest = np.ones(len(by_point), bool)
        closest[1:] = claimed[1:] != claimed[:-1]
        ia = np.sort(confident[by_point[closest]])
    else:
        # Only the B points that were matched need the way back: far fewer rows than all of B.
        _, back = cv2.batchDistance(b.descriptors[best], a.descriptors[: len(distance)], cv2.CV_32S, normType=cv2.NORM_HAMMING, K=1)
        ia = confident[back[:, 0] == confident]
    return ia, nearest[ia, 0]


def _fit(a: Features, b: Features, ia: np.ndarray, ib: np.ndarray, base_px: float, by_level: bool = True) -> Evidence:
    """One affine map fitted to the matches (A's keypoints ``ia`` to B's ``ib``) and how well each
    match follows it. A keypoint found at pyramid level L is placed to about 1.2**L pixels (ORB's
    level step), so a coarse match earns a wider tolerance: without it, crops and rotations, whose
    pyramids sample other pixels, looked "moved" like a burst (rot180: 15-18 % moved, now 2-5 %).
    Matches where both keypoints are fine (level <= FINE_LEVEL) are precise to a pixel; their
    moved share is what tells a burst with small motion (rubberwhale: 7 %) from a copy (<= 5 %).
    The quick stage keeps one tolerance for all (not ``by_level``): it must only settle clear cases,
    and a burst's strongest keypoints often lie on what did not move."""
    pa, pb = a.points[ia], b.points[ib]
    # A full affine map: crops, rescales (also to another aspect ratio) and rotations are all one.
    model, _ = cv2.estimateAffine2D(pa, pb, method=cv2.RANSAC, ransacReprojThreshold=2 * base_px, maxIters=2000, confidence=0.995)
    if model is None:
        return Evidence(len(pa), 0, 0, 1.0)
    scale = float(np.sqrt(abs(np.linalg.det(model[:, :2]))))
    # Residuals are in B's working pixels. Keypoints are about a pixel off in a sharp photo, more in
    # one enlarged from a small file, and A's error is magnified where B is a zoomed crop of A.
    tight = base_px * max(a.blur * scale, b.blur, 1.0)
    level = np.maximum(LEVEL_STEP ** a.octaves[ia].astype(np.float32) * scale, LEVEL_STEP ** b.octaves[ib].astype(np.float32))
    tolerance = tight * np.sqrt(np.maximum(level, 1.0)) if by_level else np.full(len(ia), tight)
    residual = np.linalg.norm(pa @ model[:, :2].T + model[:, 2] - pb, axis=1)
    is_aligned = residual <= tolerance
    is_moved = (residual > tolerance) & (residual <= MOVED_FACTOR * tolerance)
    fine = (a.octaves[ia] <= FINE_LEVEL) & (b.octaves[ib] <= FINE_LEVEL)
    fine_aligned, fine_moved = int(np.count_nonzero(is_aligned & fine)), int(np.count_nonzero(is_moved & fine))
    fine_share = fine_moved / (fine_aligned + fine_moved) if fine_aligned + fine_moved >= MIN_FINE else None
    return Evidence(len(pa), int(np.count_nonzero(is_aligned)), int(np.count_nonzero(is_moved)), scale, model=model, fine_moved_share=fine_share)


def _geometry(a: Features, b: Features, nearest_two: tuple[np.ndarray, np.ndarray], full: bool) -> Evidence:
    ia, ib = _matches(a, b, nearest_two, full)
    if len(ia) < MIN_MATCHES:
        textureless = min(len(a.points), len(b.points)) < TEXTURELESS_KEYPOINTS
        return _whole_frame(a, b, len(ia)) if textureless else Evidence(len(ia), 0, 0, 1.0)
    return _fit(a, b, ia, ib, TIGHT_PX, by_level=full)


def _with_pixels(a: Features, b: Features, evidence: Evidence) -> Evidence:
    """The evidence plus the overlap check, which only a fitted model makes possible. The pixels
    are compared on the grid of the photo that shows the overlap larger (B when it is a zoomed
    crop of A): on the coarser one a crop of another shot blurred into agreement (15 % of tiles
    differing where the finer grid found 26 %), so the verdict depended on which photo came first."""
    if evidence.model is None:
        return evidence
    if evidence.scale <= 1.0:
        return replace(evidence, overlap=overlap.compare(a.small, b.small, evidence.model, a.frame, b.frame, a.small_box, b.small_box))
    seen_from_b = overlap.compare(b.small, a.small, cv2.invertAffineTransform(evidence.model), b.frame, a.frame, b.small_box, a.small_box)
    return replace(evidence, overlap=seen_from_b.swapped())


def _mirrored(a: Features, b: Features) -> Evidence | None:
    """The geometry of A against B flipped left-right, on the small images, as a model from A's
    working frame to B's (unflipped) working frame; None when there is too little to match."""
    small_a, small_b = a.small_keypoints(False), b.small_keypoints(True)
    if small_a is None or small_b is None:
        return None
    ia, ib = _matches(small_a, small_b, _nearest_two(small_a, small_b), full=True)
    if len(ia) < MIN_MATCHES:
        return None
    small = _fit(small_a, small_b, ia, ib, TIGHT_PX)
    if small.model is None:
        return None
    model = small.model
    # A's frame -> A's small image -> (model) B's flipped small image -> B's small image -> B's frame.
    (wa, _), (wb, _) = a.frame, b.frame
    small_wb = b.small.shape[1]
    to_small_a = np.diag([a.small.shape[1] / wa, a.small.shape[1] / wa, 1.0])
    unflip = np.array([[-1.0, 0, small_wb - 1], [0, 1, 0], [0, 0, 1]])
    to_frame_b = np.diag([wb / small_wb, wb / small_wb, 1.0])
    full = to_frame_b @ unflip @ np.vstack([model, [0, 0, 1]]) @ to_small_a
    return replace(small, scale=float(np.sqrt(abs(np.linalg.det(full[:2, :2])))), model=full[:2], mirrored=True)


def compare(a: Features, b: Features) -> Evidence:
    """The full evidence (every keypoint of A against every keypoint of B, then the pixels)."""
    if a.descriptors is None or b.descriptors is None or len(a.points) < 2 or len(b.points) < 2:
        return _with_pixels(a, b, _whole_frame(a, b, 0))
    return _with_pixels(a, b, _geometry(a, b, _nearest_two(a, b), full=True))


@dataclass(frozen=True)
class Verdict:
    same: bool
    quick: bool  # settled by the quick stage (A's strongest keypoints alone)
    evidence: Evidence


def decide(a: Features, b: Features, limits: Limits) -> Verdict:
    """Is B the same photo as A? The quick stage settles only clear cases, with margin both ways
    (constants above); every other pair gets the full geometry, whose matching starts from the
    quick stage's rows rather than computing them again. Geometry that holds is then checked
    against the pixels; a pair that is not the same photo as it stands gets the mirror pass."""
    quick, evidence = _straight(a, b, limits)
    holds = evidence.geometry_holds(limits)
    if holds:
        evidence = _with_pixels(a, b, evidence)
        if evidence.pixels_agree(limits) and _holds_both_ways(a, b, limits, quick):
            return Verdict(True, quick, evidence)
    # Not the same photo as it stands; maybe mirrored (a symmetric facade can fool the straight
    # geometry, then the pixels said no). The mirror pass costs as much as the rest of the check.
    if evidence.correlation is None and (holds or not _another_shot(evidence, quick) or (not quick and _looks_mirrored(a, b))):
        mirror = _mirrored(a, b)
        if mirror is not None and mirror.geometry_holds(limits) and mirror.aligned >= MIRROR_OVER_STRAIGHT * evidence.aligned:
            mirror = _with_pixels(a, b, mirror)
            if mirror.pixels_agree(limits):
                return Verdict(True, False, mirror)
    return Verdict(False, quick, evidence)


def _holds_both_ways(a: Features, b: Features, limits: Limits, quick: bool) -> bool:
    """Matching is one-sided (A's keypoints looked for in B), and with another shot the two sides
    can disagree: B's points may find more of what moved (a crop of one shot against another
    shot: 5 % displaced one way, 11 % the other; a shrunk, letterboxed copy of one aerial shot
    against the next: 63 strongest points aligned one way, 15 % of the precise ones moved the
    other). So the answer is asked the other way round too, and both must hold: from B's
    strongest points when A's strongest settled it (a copy: settled again as cheaply), in full
    otherwise. In full, not the quick stage's early "no": it reads B's strongest points only, and
    where a border or a caption shrank the picture in B's frame a few of them off by a pixel
    looked like motion (19 aligned, 6 "moved")."""
    if quick or b.descriptors is None or a.descriptors is None or min(len(a.points), len(b.points)) < 2:
        return _straight(b, a, limits)[1].geometry_holds(limits)
    return _geometry(b, a, _nearest_two(b, a), full=True).geometry_holds(limits)


def _another_shot(straight: Evidence, settled: bool) -> bool:
    """Does a failed straight check already show another shot of the scene (a burst: most of a
    scan's "no"s)? An early "no", or more points aligned than a mirrored copy ever aligns straight."""
    return settled or straight.aligned >= ANOTHER_SHOT_ALIGNED


def _looks_mirrored(a: Features, b: Features) -> bool:
    """Do the two frames, tiny and grey, match better mirrored than straight? What still sends a
    well-aligned pair to the mirror pass: a mirrored copy of a symmetric facade (66-89 points
    aligned straight, as many as a burst), at the cost of two 32 x 32 products."""
    apart = abs(np.log(a.aspect / b.aspect))
    if apart < 0.02 and _mirrored_better(a.thumb, b.thumb):
        return True
    if apart < 0.002:
        return False
    # Other shapes, however slightly: maybe a border was added; the pictures inside are compared
    # (a decode of both small images).
    (box_a, thumb_a), (box_b, thumb_b) = _picture(a), _picture(b)
    log_aspect_a, log_aspect_b = _log_aspect(box_a), _log_aspect(box_b)
    if log_aspect_a is None or log_aspect_b is None or abs(log_aspect_a - log_aspect_b) >= 0.02:
        return False
    return _mirrored_better(thumb_a, thumb_b)


def _mirrored_better(thumb_a: np.ndarray, thumb_b: np.ndarray) -> bool:
    straight, flipped = float(np.mean(thumb_a * thumb_b)), float(np.mean(thumb_a * thumb_b[:, ::-1]))
    return flipped >= MIRROR_THUMB_CORRELATION and flipped > straight


def _straight(a: Features, b: Features, limits: Limits) -> tuple[bool, Evidence]:
    """(settled by the quick stage?, the geometry of B as it is against A)."""
    if min(len(a.points), len(b.points)) >= TEXTURELESS_KEYPOINTS and a.descriptors is not None and b.descriptors is not None:
        first = _nearest_two(a, b, 0, QUICK_KEYPOINTS)
        evidence = _geometry(a, b, first, full=False)
        if evidence.aligned >= max(limits.min_aligned, QUICK_MIN_ALIGNED) and evidence.moved_share <= QUICK_MOVED_FACTOR * limits.max_moved_share:
            return True, evidence
        if evidence.aligned + evidence.moved >= QUICK_REJECT_MIN_NEAR and evidence.moved_share >= max(QUICK_REJECT_MOVED_FACTOR * limits.max_moved_share, QUICK_REJECT_MIN_SHARE):
            return True, evidence
        rest = _nearest_two(a, b, QUICK_KEYPOINTS)
        return False, _geometry(a, b, tuple(np.concatenate(part) for part in zip(first, rest)), full=True)
    if a.descriptors is None or b.descriptors is None or len(a.points) < 2 or len(b.points) < 2:
        return False, _whole_frame(a, b, 0)
    return False, _geometry(a, b, _nearest_two(a, b), full=True)

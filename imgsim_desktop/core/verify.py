"""Is photo B the same picture as photo A (re-encoded, resized, cropped, lightly edited)?

A global CNN embedding says "these look alike"; it cannot tell the same photo cropped from another
shot of the same place a moment later. Local features can: ORB keypoints matched between the two
photos, and one similarity transform (scale, rotation, shift: what cropping, resizing and
re-encoding do) fitted with RANSAC. For a copy, almost every confident match lands where the
transform says, to a pixel or two. For another shot of the same scene (a burst, a stereo pair,
consecutive video frames, a new viewpoint) many matches are *near* their predicted place but off
by a few pixels: things moved, or the camera did, and no single 2-D transform explains them.
Content that an edit added (a sticker, a caption) has no match at all and is simply ignored.

Only candidate pairs from the vector index come here, so its cost is per pair, not per library.
"""

from __future__ import annotations

import os
import struct
import threading
from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

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

cv2.setNumThreads(1)  # scans verify pairs from a thread pool; OpenCV's own pool would oversubscribe


@dataclass(frozen=True)
class Features:
    points: np.ndarray  # N x 2 float32, working-size pixel coordinates
    descriptors: np.ndarray | None  # N x 32 uint8 ORB descriptors (None when the photo has no texture)
    blur: float  # how much the photo was enlarged to the working size (1.0 when it was larger)
    aspect: float  # width / height
    thumb: np.ndarray  # THUMB x THUMB grey, zero mean, unit variance: for photos with too little texture


# Disk form of Features (see to_bytes): bump when WORK_SIDE, N_FEATURES or the layout change, so
# entries cached by an older version are simply never found.
FORMAT = b"orb1000v2"  # v2: keypoints strongest first
_HEADER = struct.Struct("<IffH")  # keypoints, blur, aspect, thumb side
_POINT_STEP = 16  # keypoints stored in 1/16 px: under 0.05 px of error where TIGHT_PX is 2.5


def to_bytes(f: Features) -> bytes:
    """Compact form for the disk cache: ~32 bytes a keypoint plus a 2 KB thumbnail."""
    descriptors = f.descriptors if f.descriptors is not None else np.zeros((0, 32), np.uint8)  # no keypoints
    points = np.round(f.points * _POINT_STEP).astype("<u2")
    header = _HEADER.pack(len(descriptors), f.blur, f.aspect, len(f.thumb))
    return b"".join((header, points.tobytes(), descriptors.tobytes(), f.thumb.astype("<f2").tobytes()))


def from_bytes(data: bytes) -> Features:
    n, blur, aspect, side = _HEADER.unpack_from(data)
    at = _HEADER.size
    points = np.frombuffer(data, "<u2", 2 * n, at).reshape(n, 2).astype(np.float32) / _POINT_STEP
    at += 4 * n
    descriptors = np.frombuffer(data, np.uint8, 32 * n, at).reshape(n, 32) if n else None
    at += 32 * n
    thumb = np.frombuffer(data, "<f2", side * side, at).reshape(side, side).astype(np.float32)
    return Features(points, descriptors, blur, aspect, thumb)


@dataclass(frozen=True)
class Evidence:
    """What the geometry says about a pair; ``same_photo`` is the verdict at a given strictness."""

    matches: int  # confident matches (ratio test; one per B point, see _matches)
    aligned: int  # matches within TIGHT_PX of where the fitted transform puts them
    moved: int  # matches a little further off: the same thing, displaced
    scale: float  # how much B is magnified relative to A
    correlation: float | None = None  # whole-frame correlation, only for photos with too little texture

    @property
    def moved_share(self) -> float:
        near = self.aligned + self.moved
        return self.moved / near if near else 1.0

    def same_photo(self, min_aligned: int, max_moved_share: float, min_correlation: float) -> bool:
        if self.correlation is not None:
            return self.correlation >= min_correlation
        return self.aligned >= min_aligned and self.moved_share <= max_moved_share


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
    thumb = cv2.resize(gray, (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32)
    thumb = (thumb - thumb.mean()) / max(float(thumb.std()), 1e-3)
    return Features(points, descriptors, max(1.0, WORK_SIDE / max(full)), w / h, thumb)


def _whole_frame(a: Features, b: Features, matches: int) -> Evidence:
    same_shape = abs(np.log(a.aspect / b.aspect)) < 0.02
    correlation = float(np.mean(a.thumb * b.thumb)) if same_shape else 0.0
    return Evidence(matches, 0, 0, 1.0, correlation)


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
        return a.points[:0], b.points[:0]
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
    return a.points[ia], b.points[nearest[ia, 0]]


def compare(a: Features, b: Features) -> Evidence:
    """The full geometric evidence (every keypoint of A against every keypoint of B)."""
    if a.descriptors is None or b.descriptors is None or len(a.points) < 2 or len(b.points) < 2:
        return _whole_frame(a, b, 0)
    return _evidence(a, b, _nearest_two(a, b), full=True)


def _evidence(a: Features, b: Features, nearest_two: tuple[np.ndarray, np.ndarray], full: bool) -> Evidence:
    pa, pb = _matches(a, b, nearest_two, full)
    if len(pa) < MIN_MATCHES:
        textureless = min(len(a.points), len(b.points)) < TEXTURELESS_KEYPOINTS
        return _whole_frame(a, b, len(pa)) if textureless else Evidence(len(pa), 0, 0, 1.0)
    # A full affine map: crops, rescales (also to another aspect ratio) and rotations are all one.
    model, _ = cv2.estimateAffine2D(pa, pb, method=cv2.RANSAC, ransacReprojThreshold=2 * TIGHT_PX, maxIters=2000, confidence=0.995)
    if model is None:
        return Evidence(len(pa), 0, 0, 1.0)
    scale = float(np.sqrt(abs(np.linalg.det(model[:, :2]))))
    # Residuals are in B's working pixels. Keypoints are about a pixel off in a sharp photo, more in
    # one enlarged from a small file, and A's error is magnified where B is a zoomed crop of A.
    tight = TIGHT_PX * max(a.blur * scale, b.blur, 1.0)
    residual = np.linalg.norm(pa @ model[:, :2].T + model[:, 2] - pb, axis=1)
    aligned = int(np.count_nonzero(residual <= tight))
    moved = int(np.count_nonzero((residual > tight) & (residual <= MOVED_FACTOR * tight)))
    return Evidence(len(pa), aligned, moved, scale)


def decide(a: Features, b: Features, min_aligned: int, max_moved_share: float, min_correlation: float) -> tuple[bool, bool]:
    """(same photo?, settled by the quick stage?). The quick stage settles only clear cases, with
    margin both ways (constants above); every other pair gets the full evidence, whose matching
    starts from the quick stage's rows rather than computing them again."""
    if min(len(a.points), len(b.points)) >= TEXTURELESS_KEYPOINTS and a.descriptors is not None and b.descriptors is not None:
        first = _nearest_two(a, b, 0, QUICK_KEYPOINTS)
        quick = _evidence(a, b, first, full=False)
        if quick.aligned >= max(min_aligned, QUICK_MIN_ALIGNED) and quick.moved_share <= QUICK_MOVED_FACTOR * max_moved_share:
            return True, True
        if quick.aligned + quick.moved >= QUICK_REJECT_MIN_NEAR and quick.moved_share >= max(QUICK_REJECT_MOVED_FACTOR * max_moved_share, QUICK_REJECT_MIN_SHARE):
            return False, True
        rest = _nearest_two(a, b, QUICK_KEYPOINTS)
        both = tuple(np.concatenate(part) for part in zip(first, rest))
        return _evidence(a, b, both, full=True).same_photo(min_aligned, max_moved_share, min_correlation), False
    return compare(a, b).same_photo(min_aligned, max_moved_share, min_correlation), False


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
                    self._cache.popitem(last=False)
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

    def decide(self, path_a: str, path_b: str, min_aligned: int, max_moved_share: float, min_correlation: float) -> tuple[bool, bool]:
        return decide(self.features(path_a), self.features(path_b), min_aligned, max_moved_share, min_correlation)

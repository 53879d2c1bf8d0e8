"""Camera RAW files -> pixels, through LibRaw (the ``rawpy`` wheels).

Speed first. Most RAW files carry a JPEG preview the camera made (a CR2's or NEF's is full size
or near it, a CRW's 1440x960): when its shorter side is at least what the caller needs, that
JPEG is decoded (with libjpeg's DCT scaling, like any JPEG) and the sensor data is never touched.
Otherwise the sensor data is demosaiced at half size, with the camera's white balance. Either way
the picture comes out turned the way the camera was held (LibRaw's flip, or the preview's own
EXIF orientation), so a preview-path and a sensor-path decode are the same photo.

RAW formats are told by extension: most are TIFF containers whose first image is a small
thumbnail, which Pillow would happily return as "the photo".
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

try:
    import rawpy

    RAW_AVAILABLE = True
except ImportError:  # a source install without a LibRaw wheel for this platform
    rawpy = None
    RAW_AVAILABLE = False

# What LibRaw reads. ".raw" is generic (some Kodak, Leica and Panasonic cameras); LibRaw tells
# those apart by size and content, and refuses what it does not know with a clear error.
RAW_EXTENSIONS = frozenset(
    ".3fr .ari .arw .bay .cap .cr2 .cr3 .crw .dcr .dcs .dng .drf .eip .erf .fff .gpr .iiq .k25 .kdc .mdc .mef .mos .mrw "
    ".nef .nrw .orf .pef .ptx .pxn .r3d .raf .raw .rw2 .rwl .rwz .sr2 .srf .srw .x3f".split()
)

# LibRaw's flip -> the transpose that undoes it (3: upside down, 5: turned left, 6: turned right).
_FLIP = {3: Image.Transpose.ROTATE_180, 5: Image.Transpose.ROTATE_90, 6: Image.Transpose.ROTATE_270}
SENSOR, PREVIEW = "sensor", "preview"


class RawError(Exception):
    """A RAW file that cannot be turned into pixels; str() is a reason fit for the user."""


def is_raw(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in RAW_EXTENSIONS


def open_raw(path: str | os.PathLike, min_side: int | None = None, hold=None) -> tuple[Image.Image, tuple[int, int], str | None, str]:
    """(RGB image, full displayed size, date taken as ISO 8601 or None, which path: PREVIEW or SENSOR).

    ``hold(bytes)``, when given, is a context manager that reserves memory for the sensor decode
    (core.decode's budget shared by decodes running at once)."""
    if rawpy is None:
        raise RawError("RAW files need the rawpy package (LibRaw), which is not installed")
    try:
        with rawpy.imread(os.fspath(path)) as raw:
            return _decode(raw, min_side, hold)
    except rawpy.LibRawFileUnsupportedError:
        raise RawError("a RAW format this LibRaw build cannot decode (the camera's own software or a DNG converter can)") from None
    except (rawpy.LibRawIOError, rawpy.LibRawDataError) as exc:
        raise RawError(f"RAW file is damaged or truncated ({_text(exc)})") from None
    except rawpy.LibRawError as exc:
        raise RawError(f"RAW file could not be read ({_text(exc)})") from None


def _decode(raw, min_side: int | None, hold) -> tuple[Image.Image, tuple[int, int], str | None, str]:
    sizes = raw.sizes
    flip = sizes.flip
    full = (sizes.height, sizes.width) if flip in (5, 6) else (sizes.width, sizes.height)
    preview = _preview(raw, flip, min_side or max(full))
    if preview is not None:
        return preview, full, None, PREVIEW  # the date comes from EXIF (core.decode), not from unpacking the sensor data
    # LibRaw holds the 16-bit sensor data, a 4 x 16-bit half-size working image and the 8-bit result.
    need = sizes.raw_width * sizes.raw_height * 2 + sizes.width * sizes.height * 2 + sizes.width * sizes.height * 3 // 4
    with hold(need) if hold else _nothing():
        rgb = raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8)  # turned by LibRaw's flip
    return Image.fromarray(np.ascontiguousarray(rgb)), full, _taken(raw), SENSOR


def _preview(raw, flip: int, min_side: int) -> Image.Image | None:
    """The camera's embedded preview, turned upright, when its shorter side reaches ``min_side``."""
    try:
        thumb = raw.extract_thumb()
    except rawpy.LibRawError:  # no preview, or one LibRaw cannot unpack
        return None
    if thumb.format == rawpy.ThumbFormat.BITMAP:  # an uncompressed preview (DNG writers, old Kodaks' 96x64)
        data = thumb.data if thumb.data.ndim == 3 else np.dstack([thumb.data] * 3)
        if min(data.shape[:2]) < min_side:
            return None
        if data.dtype != np.uint8:
            data = (data >> 8).astype(np.uint8)
        img = Image.fromarray(np.ascontiguousarray(data[..., :3]))
        return img.transpose(_FLIP[flip]) if flip in _FLIP else img
    try:
        img = Image.open(io.BytesIO(thumb.data))
        if min(img.size) < min_side:
            return None
        exif = img.getexif()
        own = exif.get(0x0112, 1)
        scale = min_side / min(img.size)
        img.draft("RGB", (max(1, int(img.size[0] * scale)), max(1, int(img.size[1] * scale))))
        img = img.convert("RGB")
        img.info["exif_of_preview"] = exif  # the camera's EXIF, for a RAW container Pillow cannot read (CRW, CR3, RAF)
    except (OSError, SyntaxError, ValueError):
        return None  # a damaged preview: the sensor data may still be fine
    if own in _EXIF_TRANSPOSE:  # the preview says itself how it is turned (some cameras write it)
        return img.transpose(_EXIF_TRANSPOSE[own])
    return img.transpose(_FLIP[flip]) if flip in _FLIP else img


_EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90,
}  # fmt: skip


@contextlib.contextmanager
def _nothing():
    yield


def _taken(raw) -> str | None:
    stamp = raw.other.timestamp  # LibRaw's reading of the EXIF date (0 when the file has none)
    if stamp is None or stamp.year <= 1970:
        return None
    return stamp.strftime("%Y-%m-%dT%H:%M:%S")


def _text(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else exc
    return arg.decode(errors="replace") if isinstance(arg, bytes) else str(arg)

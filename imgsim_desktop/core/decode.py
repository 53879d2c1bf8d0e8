"""File -> RGB pixels, robustly: every failure becomes a DecodeError naming the reason.

Formats are recognised by content, never by extension. Large JPEGs are decoded at a reduced
scale with ``draft()`` (libjpeg's DCT scaling), which is most of the speed of indexing phone photos.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from imgsim_desktop.core import raw
from imgsim_desktop.core.photo_quality import metadata_tags

# Refuse anything above this many pixels (~ a 16k x 16k panorama): a decompression bomb guard
# that is ours, so the message is clear and no Pillow warning leaks.
MAX_PIXELS = 268_000_000
# Memory, not pixels, is what a decode can run out of: a 16-bit 16000 x 16000 PNG is 497 KB on
# disk and under MAX_PIXELS, but 512 MB decoded. Each decode states what it will hold (pixels x
# bytes per pixel of its mode, plus its conversion) and is refused above MAX_DECODE_BYTES; decodes
# running at once share DECODE_BUDGET_BYTES, so a pool of them cannot add up past it.
MAX_DECODE_BYTES = 1_500_000_000
BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "LA": 2, "PA": 2, "La": 2, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2,
                   "RGB": 3, "YCbCr": 3, "LAB": 3, "HSV": 3, "RGBA": 4, "RGBa": 4, "RGBX": 4, "CMYK": 4, "I": 4, "F": 4}  # fmt: skip
Image.MAX_IMAGE_PIXELS = None  # our own check below replaces Pillow's warning/error pair
# Pillow warns (UserWarning) about damaged EXIF/ICC/metadata that it still decodes, from Image.open() as well as
# load(). Filtered once, process-wide and only for Pillow's modules: warnings.catch_warnings() swaps the global
# filter list and is not thread-safe, and decoding runs in the indexer's thread pool.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")

try:  # HEIC/HEIF is an optional extra (pillow-heif wheels are GPL)
    from pillow_heif import register_heif_opener

    register_heif_opener()
    HEIF_AVAILABLE = True
except ImportError:
    HEIF_AVAILABLE = False

IMAGE_EXTENSIONS = frozenset(
    ".jpg .jpeg .jpe .jfif .png .webp .avif .tif .tiff .bmp .dib .gif .ppm .pgm .pbm .pnm".split()
    + ([".heic", ".heif"] if HEIF_AVAILABLE else [])
    + (sorted(raw.RAW_EXTENSIONS) if raw.RAW_AVAILABLE else [])
)

# Leading bytes of the raster formats we decode: lets the scanner accept a photo behind a
# wrong extension without trying to decode every document in a folder.
_MAGIC = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",  # TIFF little-endian
    b"MM\x00*",  # TIFF big-endian
    b"P1", b"P2", b"P3", b"P4", b"P5", b"P6",  # netpbm
)


def looks_like_image(head: bytes) -> bool:
    """True when the first bytes of a file match a raster format we can decode."""
    if head.startswith(_MAGIC):
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    return head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis", b"heic", b"heix", b"mif1", b"msf1")


class DecodeError(Exception):
    """A file that cannot be turned into pixels; str() is a reason fit for the user."""


UNREADABLE = "cannot read file: "  # the reason's start when the file could not be read at all


class FormatUnavailable(DecodeError):
    """A photo in a format this installation has no decoder for: skipped, not "unreadable", and
    tried again on every run, so it is indexed as soon as the decoder is installed."""

    def __init__(self, format_name: str, how: str) -> None:
        super().__init__(f"{format_name} photos need {how}")
        self.format_name, self.how = format_name, how


HEIF_HOW = "pillow-heif, an opt-in extra (GPL-licensed): pip install 'imgsim-desktop[heic]' (from a checkout: pip install -e '.[cpu,heic]')"
RAW_HOW = "rawpy (LibRaw), which has no wheel for this platform: build it from source (pip install rawpy)"


def is_transient(reason: str) -> bool:
    """A failure that may pass without the file changing (permission denied, a disk or network
    share that was away): retried on the next run. Content errors wait until the file changes."""
    return reason.startswith(UNREADABLE)


@dataclass(frozen=True)
class Preprocess:
    """How a backbone wants its pixels: square ``input_size``, from a resize then centre crop or a stretch."""

    input_size: int
    resize: int
    resize_mode: str = "shorter_side_center_crop"  # or "stretch"


@dataclass
class Decoded:
    pixels: np.ndarray  # input_size x input_size x 3, uint8, RGB
    width: int  # full-resolution size as displayed (after EXIF orientation)
    height: int
    taken_at: str | None = None  # EXIF DateTimeOriginal as ISO 8601, when the file has one
    camera: str | None = None  # EXIF make + model


@dataclass
class Photo:
    image: Image.Image  # RGB, oriented, possibly reduced by draft()
    width: int
    height: int
    taken_at: str | None
    camera: str | None
    tags: frozenset[str] = frozenset()  # kinds of metadata the file carries (core/photo_quality.TAGS)


_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 0x9003
_SUBSEC_ORIGINAL = 0x9291
_DATETIME = 0x0132
_MAKE, _MODEL = 0x010F, 0x0110


def _exif_facts(exif: Image.Exif, xmp: bytes | None = None) -> tuple[str | None, str | None, frozenset[str]]:
    if not exif:
        return None, None, metadata_tags(None, xmp)
    exif_ifd = exif.get_ifd(_EXIF_IFD)
    original = exif_ifd.get(_DATETIME_ORIGINAL)
    stamp = original or exif.get(_DATETIME)
    taken = None
    if isinstance(stamp, str) and len(stamp) >= 19 and stamp[4] == ":" and stamp[7] == ":":
        taken = f"{stamp[:4]}-{stamp[5:7]}-{stamp[8:10]}T{stamp[11:19]}"  # "YYYY:MM:DD HH:MM:SS" -> ISO
        # The shutter's own sub-second, only beside the shutter's own time (not the file's DateTime,
        # which editors rewrite): two frames of one burst differ there. A fraction in taken_at thus
        # always means "when the camera took it, to the sub-second" (similar_shots.frames_apart).
        fraction = "".join(ch for ch in str(exif_ifd.get(_SUBSEC_ORIGINAL) or "") if ch.isdigit())[:6] if original else ""
        if fraction:
            taken += "." + fraction
    make = str(exif.get(_MAKE) or "").strip(" \x00")
    model = str(exif.get(_MODEL) or "").strip(" \x00")
    camera = model if model.lower().startswith(make.lower()) else f"{make} {model}".strip()
    return taken, camera or None, metadata_tags(exif, xmp)


def open_image(path: str | os.PathLike, min_side: int | None = None) -> tuple[Image.Image, tuple[int, int]]:
    """Open, guard and orient a file. Returns an RGB image plus the full displayed size."""
    photo = open_photo(path, min_side)
    return photo.image, (photo.width, photo.height)


def open_photo(path: str | os.PathLike, min_side: int | None = None) -> Photo:
    """Open, guard and orient a file: RGB pixels, full displayed size, date taken and camera.

    With ``min_side``, JPEGs are decoded at the smallest DCT scale whose shorter side is still at
    least ``min_side``, which is enough for an embedding and several times faster.
    """
    path = Path(path)
    try:
        file_size = path.stat().st_size
        if file_size == 0:
            raise DecodeError("empty file (0 bytes)")
        if raw.is_raw(path):
            if not raw.RAW_AVAILABLE:
                raise FormatUnavailable("Camera RAW", RAW_HOW)
            return _open_raw(path, min_side)
        if not HEIF_AVAILABLE and _is_heif(path):
            raise FormatUnavailable("HEIC/HEIF", HEIF_HOW)
        img = Image.open(path)
        img._imgsim_file_size = file_size  # for the hollow-JPEG check
    except DecodeError:
        raise
    except UnidentifiedImageError:
        raise DecodeError("not an image Pillow can read (unrecognised or corrupt content)") from None
    except OSError as exc:
        if exc.errno is not None:  # a real I/O problem: missing file, no permission, disk error
            raise DecodeError(f"{UNREADABLE}{exc.strerror or exc}") from None
        raise DecodeError(_explain(exc)) from None  # Pillow's content errors carry no errno
    except (SyntaxError, ValueError, RuntimeError, EOFError) as exc:  # e.g. PPM header parse, AVIF/HEIF plugins
        raise DecodeError(_explain(exc)) from None
    try:
        rgb, size, facts = _prepare(img, min_side)
    except DecodeError:
        img.close()
        raise
    except (OSError, SyntaxError, ValueError, RuntimeError, Image.DecompressionBombError, EOFError) as exc:
        img.close()
        raise DecodeError(_explain(exc)) from None
    if rgb is img and getattr(img, "n_frames", 1) > 1:
        rgb = img.copy()  # multi-frame files keep their handle open after load()
    if rgb is not img:
        img.close()
    return Photo(rgb, size[0], size[1], *facts)


def _is_heif(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(16)
    return head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1") and not _avif_inside(path)


def _avif_inside(path: Path) -> bool:
    """A generic 'mif1' file may hold AVIF (which Pillow decodes): its compatible brands say so."""
    with open(path, "rb") as fh:
        box = fh.read(64)
    return b"avif" in box or b"avis" in box


def _open_raw(path: Path, min_side: int | None) -> Photo:
    """A camera RAW file (core/raw.py: the camera's preview when large enough, else the sensor data)."""
    try:
        image, (width, height), taken, _how = raw.open_raw(path, min_side, DECODE_BUDGET.hold)
    except raw.RawError as exc:
        raise DecodeError(str(exc)) from None
    if width * height > MAX_PIXELS:
        image.close()
        raise DecodeError(f"image too large ({width}x{height} pixels, limit {MAX_PIXELS / 1e6:g} MP)")
    facts = _tiff_facts(path)
    if facts[:2] == (None, None) and (exif := image.info.get("exif_of_preview")):
        facts = _exif_facts(exif)
    image.info.pop("exif_of_preview", None)
    return Photo(image, width, height, facts[0] or taken, facts[1], facts[2] | ({"date"} if taken else set()))


def _tiff_facts(path: Path) -> tuple[str | None, str | None, frozenset[str]]:
    """Date taken and camera from a TIFF-based RAW's tags (DNG, CR2, NEF, ARW, ...), read without
    decoding: Pillow cannot open a mosaic as an image, but its EXIF reader walks the tags."""
    try:
        with open(path, "rb") as fp:
            if fp.read(4) not in (b"II*\x00", b"MM\x00*"):
                return None, None, frozenset()
            fp.seek(0)
            exif = Image.Exif()
            exif.load_from_fp(fp)
            return _exif_facts(exif)
    except Exception:  # damaged tags: the photo is still a photo, without a date
        return None, None, frozenset()


def _explain(exc: BaseException) -> str:
    text = str(exc)
    if "truncated" in text.lower() or isinstance(exc, EOFError):
        return "file is truncated (incomplete image data)"
    return f"corrupt image data ({text or type(exc).__name__})"


class _Budget:
    """Bytes of decoded pixels that may be held at once, across threads: a decode waits for room
    (one alone always gets in, so nothing waits forever)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def hold(self, need: int):
        with self._cond:
            self._cond.wait_for(lambda: self.used == 0 or self.used + need <= self.limit)
            self.used += need
        try:
            yield
        finally:
            with self._cond:
                self.used -= need
                self._cond.notify_all()


def _default_budget() -> int:
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        physical = 8 * 1024**3
    return max(MAX_DECODE_BYTES, physical // 4)  # a quarter of the RAM for pixels in flight


DECODE_BUDGET = _Budget(_default_budget())


def _refuse_hollow_jpeg(img: Image.Image, width: int, height: int) -> None:
    """A JPEG header can claim any size; libjpeg pads what the data lacks with grey, so a 50 KB
    file "of" 16000 x 16000 would decode, and be embedded, as a huge grey picture. Every 8 x 8
    block of a real JPEG costs at least about 4 bits even when flat, so a file under a quarter of
    that (width x height / 512 bytes) cannot hold the picture its header claims."""
    size = getattr(img, "_imgsim_file_size", None)
    if img.format == "JPEG" and size is not None and size < width * height / 512:
        raise DecodeError(f"the header claims {width}x{height} pixels but the file holds data for far fewer (damaged or forged)")


def decode_bytes(img: Image.Image, min_side: int | None) -> int:
    """What decoding ``img`` will hold at its peak: its pixels at the mode's depth (a JPEG's
    reduced by draft), twice over for the conversion to 8-bit RGB."""
    width, height = img.size
    if min_side and img.format == "JPEG":
        scale = 1
        while scale < 8 and min(width, height) // (scale * 2) >= min_side:
            scale *= 2  # draft() reduces by 1/2, 1/4 or 1/8
        width, height = -(-width // scale), -(-height // scale)
    return width * height * (BYTES_PER_PIXEL.get(img.mode, 4) + 3)


def _prepare(img: Image.Image, min_side: int | None) -> tuple[Image.Image, tuple[int, int], tuple[str | None, str | None]]:
    width, height = img.size
    if width * height > MAX_PIXELS:
        raise DecodeError(f"image too large ({width}x{height} pixels, limit {MAX_PIXELS / 1e6:g} MP)")
    _refuse_hollow_jpeg(img, width, height)
    need = decode_bytes(img, min_side)
    if need > MAX_DECODE_BYTES:
        raise DecodeError(f"image too large to decode safely ({width}x{height} {img.mode} pixels need {need / 1e9:.1f} GB, "
                          f"limit {MAX_DECODE_BYTES / 1e9:.1f} GB)")  # fmt: skip
    with DECODE_BUDGET.hold(need):
        return _prepare_within_budget(img, min_side, width, height)


def _prepare_within_budget(img: Image.Image, min_side: int | None, width: int, height: int):
    exif = img.getexif()
    orientation = exif.get(0x0112, 1)
    facts = _exif_facts(exif, img.info.get("xmp"))
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    if min_side and img.format == "JPEG" and img.mode in ("RGB", "L", "CMYK", "YCbCr"):
        # draft() keeps both sides >= the request, so ask for min_side on the shorter side.
        scale = min_side / min(img.size)
        img.draft("RGB", (max(1, int(img.size[0] * scale)), max(1, int(img.size[1] * scale))))
    img.load()
    if min_side and img.mode in WIDE_MODES and min(img.size) > 2 * min_side:
        # 16-bit and float pixels: shrink in their own depth first (Pillow's box filter), so the
        # conversion to 8-bit works on a few MB instead of float copies of the whole image.
        factor = min(img.size) / (2 * min_side)
        img = img.resize((max(1, round(img.size[0] / factor)), max(1, round(img.size[1] / factor))), Image.Resampling.BOX)
    if orientation != 1:
        img = ImageOps.exif_transpose(img)
    return _to_rgb(img), (width, height), facts


WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB; transparency is flattened onto white, as viewers show it."""
    mode = img.mode
    if mode in ("L", "RGB") and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"  # tRNS colour key
    if mode == "RGB":
        return img
    if mode in WIDE_MODES:
        # 16-bit and float greyscale: scale by the format's range, not clip at 255. float32 is
        # plenty for 16-bit values and half the memory of float64.
        arr = np.asarray(img, dtype=np.float32)
        top = arr.max(initial=0)
        if mode.startswith("I;16"):
            peak = 65535.0  # the mode says 16 bits: a dark image must stay dark
        elif mode == "F" and top <= 1.0:
            peak = 1.0
        else:
            peak = 65535.0 if top > 255 else 255.0
        arr = np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr).convert("RGB")
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("LA", "PA", "La", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img, mask=img.getchannel("A"))
        return background
    return img.convert("RGB")


# The duplicate check's local features (core.verify) need photos at least this large. Decodes for a
# model keep at least this too, so the indexer makes both from one decode, and a photo's embedding
# is the same whichever path decoded it (indexing, or a query by file).
LOCAL_FEATURES_MIN_SIDE = 320


def model_min_side(prep: Preprocess) -> int:
    """The shorter side a reduced decode keeps for this model's input (and the local features)."""
    return max(LOCAL_FEATURES_MIN_SIDE, prep.resize if prep.resize_mode == "shorter_side_center_crop" else prep.input_size)


def load_for_model(path: str | os.PathLike, prep: Preprocess) -> Decoded:
    """Decode a file to the square RGB array a backbone takes (resize + crop in one resample)."""
    return for_model(open_photo(path, min_side=model_min_side(prep)), prep)


def for_model(photo: Photo, prep: Preprocess) -> Decoded:
    return Decoded(model_pixels(photo.image, prep), photo.width, photo.height, photo.taken_at, photo.camera)


def model_pixels(img: Image.Image, prep: Preprocess) -> np.ndarray:
    size = prep.input_size
    w, h = img.size
    if prep.resize_mode == "stretch":
        box = (0.0, 0.0, float(w), float(h))
    else:
        # The centre crop of `size` out of an image whose shorter side is `resize`, expressed in
        # source pixels, so one resize call does both steps.
        side = min(w, h) * size / prep.resize
        box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
    out = img.resize((size, size), Image.Resampling.BILINEAR, box=box, reducing_gap=3.0)
    return np.asarray(out, dtype=np.uint8)

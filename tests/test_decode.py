"""Decoding: every supported format and pixel mode becomes sensible RGB, EXIF orientation and JPEG draft
are honoured, and every bad file (empty, truncated, wrong extension, not an image, too large) is a
DecodeError with a clear reason instead of a crash. Also: the scanner finds photos by content.

The bad-file corpus is generated in tmp_path at test time; real photos come from ../shared/photos.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, features

from imgsim_desktop.core import decode
from imgsim_desktop.core.decode import DecodeError, Preprocess, load_for_model, looks_like_image, open_image
from imgsim_desktop.core.scanner import scan

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "photos"
FORMATS = PHOTOS / "formats"
JPEG_PHOTO = FORMATS / "ukbench09380.jpeg"
PREP = Preprocess(224, 256)
WHITE = 250  # flattened transparency must come out (near) white

needs_avif = pytest.mark.skipif(not features.check("avif"), reason="Pillow built without AVIF support")


def diff(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two uint8 arrays."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def rgb(path: Path, **kw) -> np.ndarray:
    img, _ = open_image(path, **kw)
    assert img.mode == "RGB"
    return np.asarray(img)


def decode_error(path: Path) -> str:
    with pytest.raises(DecodeError) as info:
        load_for_model(path, PREP)
    message = str(info.value)
    assert message and path.name not in message  # a reason; the caller adds the file name
    return message


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    """A small real photo, not symmetric, so rotations and flips are visible."""
    with Image.open(PHOTOS / "ukbench" / "ukbench09380.jpg") as img:
        return img.convert("RGB").resize((160, 120), Image.Resampling.BILINEAR)


@pytest.fixture(scope="module")
def jpeg_bytes() -> bytes:
    return JPEG_PHOTO.read_bytes()


# --- formats ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in FORMATS.iterdir()) if FORMATS.is_dir() else ["<shared/photos missing>"])
def test_every_file_in_formats_decodes_to_model_input(name):
    out = load_for_model(FORMATS / name, PREP)
    assert out.pixels.shape == (224, 224, 3) and out.pixels.dtype == np.uint8
    assert out.width > 0 and out.height > 0
    assert 10 < out.pixels.mean() < 245 and out.pixels.std() > 10  # a picture, not a blank or a decoding failure


@pytest.mark.parametrize("name", ["ukbench09380.bmp", "ukbench09380.png", "ukbench09380.svg", "ukbench09380.webp"])
def test_same_photo_in_other_format_or_behind_wrong_extension_gives_same_pixels(name):
    reference = load_for_model(JPEG_PHOTO, PREP)
    other = load_for_model(FORMATS / name, PREP)
    assert (other.width, other.height) == (reference.width, reference.height) == (640, 480)
    assert diff(other.pixels, reference.pixels) < 2.0


@pytest.mark.parametrize(
    "fmt, suffix",
    [
        pytest.param("AVIF", ".avif", marks=needs_avif),
        ("WEBP", ".webp"),
        ("TIFF", ".tif"),
        ("BMP", ".bmp"),
        ("PNG", ".png"),
        ("PPM", ".ppm"),
        ("GIF", ".gif"),
        ("HEIF", ".heic"),
    ],
)
def test_pillow_written_formats_decode_to_the_photo(tmp_path, photo, fmt, suffix):
    if fmt == "HEIF":
        pytest.importorskip("pillow_heif")
        assert decode.HEIF_AVAILABLE and ".heic" in decode.IMAGE_EXTENSIONS
    path = tmp_path / f"photo{suffix}"
    photo.save(path, fmt, **({"quality": 90} if fmt in ("AVIF", "WEBP", "HEIF") else {}))
    img, size = open_image(path)
    assert size == (160, 120) and img.size == (160, 120) and img.mode == "RGB"
    # GIF is quantised to 256 colours, lossy codecs blur a little: all stay close to the original photo.
    assert diff(np.asarray(img), np.asarray(photo)) < (12.0 if fmt == "GIF" else 4.0)
    assert load_for_model(path, PREP).pixels.shape == (224, 224, 3)


# --- pixel modes -------------------------------------------------------------------------------------------------------------


def _half_transparent_alpha(size=(160, 120)) -> Image.Image:
    alpha = np.full((size[1], size[0]), 255, np.uint8)
    alpha[: size[1] // 2] = 0  # top half fully transparent
    return Image.fromarray(alpha)


def test_palette_png_with_transparency_is_flattened_onto_white(tmp_path, photo):
    pal = photo.quantize(63)  # indices 0..62 for the photo; 63 is the transparent one
    idx = np.asarray(pal).copy()
    assert idx.max() < 63
    idx[:60] = 63  # top half transparent
    img = Image.fromarray(idx, "P")
    img.putpalette((pal.getpalette() + [0] * 768)[: 64 * 3])
    path = tmp_path / "palette.png"
    img.save(path, transparency=63)
    assert Image.open(path).mode == "P"
    out = rgb(path)
    assert out[:60].min() >= WHITE
    assert diff(out[60:], np.asarray(pal.convert("RGB"))[60:]) < 1.0


def test_rgba_png_transparent_is_white_opaque_unchanged_half_alpha_blended(tmp_path, photo):
    img = photo.convert("RGBA")
    img.putalpha(_half_transparent_alpha())
    path = tmp_path / "rgba.png"
    img.save(path)
    out = rgb(path)
    assert out[:60].min() >= WHITE
    assert np.array_equal(out[60:], np.asarray(photo)[60:])

    black = Image.new("RGBA", (8, 8), (0, 0, 0, 128))  # half-transparent black over white is mid grey
    black.save(tmp_path / "half.png")
    assert np.all(np.abs(rgb(tmp_path / "half.png").astype(int) - 127) <= 2)


def test_grey_with_alpha_la_is_flattened_onto_white(tmp_path, photo):
    img = photo.convert("LA")
    img.putalpha(_half_transparent_alpha())
    path = tmp_path / "la.png"
    img.save(path)
    assert Image.open(path).mode == "LA"
    out = rgb(path)
    assert out[:60].min() >= WHITE
    grey = np.asarray(photo.convert("L"))[60:]
    assert np.array_equal(out[60:, :, 0], grey) and np.array_equal(out[60:, :, 2], grey)


def test_cmyk_jpeg_colours_are_right(tmp_path, photo):
    path = tmp_path / "cmyk.jpg"
    photo.convert("CMYK").save(path, quality=95)
    assert Image.open(path).mode == "CMYK"
    assert diff(rgb(path), np.asarray(photo)) < 3.0  # not inverted, not a colour cast
    assert load_for_model(path, PREP).pixels.shape == (224, 224, 3)


def _grey_reference(tmp_path, photo) -> tuple[np.ndarray, np.ndarray]:
    grey = np.asarray(photo.convert("L"))
    Image.fromarray(grey).save(tmp_path / "grey8.png")
    return grey, load_for_model(tmp_path / "grey8.png", PREP).pixels


def test_16_bit_grey_png_is_scaled_not_clipped(tmp_path, photo):
    grey, reference = _grey_reference(tmp_path, photo)
    path = tmp_path / "grey16.png"
    Image.fromarray(grey.astype(np.uint16) * 257).save(path)  # full 16-bit range, up to 65535
    assert Image.open(path).mode.startswith("I;16")
    out = rgb(path)
    assert out.mean() < 245  # not all white
    assert np.abs(out[..., 0].astype(int) - grey).max() <= 1
    assert diff(load_for_model(path, PREP).pixels, reference) < 1.0


@pytest.mark.parametrize("kind", ["tiff-16", "tiff-32-int", "tiff-float-0-1", "pgm-16"])
def test_high_bit_depth_and_float_grey_match_8_bit_version(tmp_path, photo, kind):
    grey, reference = _grey_reference(tmp_path, photo)
    if kind == "tiff-16":
        img, path = Image.fromarray(grey.astype(np.uint16) * 257), tmp_path / "g.tif"
    elif kind == "tiff-32-int":
        img, path = Image.fromarray(grey.astype(np.int32) * 257), tmp_path / "g.tif"
    elif kind == "tiff-float-0-1":
        img, path = Image.fromarray(grey.astype(np.float32) / 255), tmp_path / "g.tif"
    else:
        img, path = Image.fromarray(grey.astype(np.uint16) * 257), tmp_path / "g.pgm"
    img.save(path)
    assert Image.open(path).mode in ("I;16", "I;16B", "I", "F")
    assert diff(load_for_model(path, PREP).pixels, reference) < 1.0


def test_dark_16_bit_grey_stays_dark(tmp_path, photo):
    path = tmp_path / "dark16.png"
    Image.fromarray(np.asarray(photo.convert("L")).astype(np.uint16)).save(path)  # values 0..255 of 65535: nearly black
    assert rgb(path).max() <= 2


def test_one_bit_image_is_black_and_white(tmp_path, photo):
    bw = photo.convert("1")
    bw.save(tmp_path / "bw.png")
    out = rgb(tmp_path / "bw.png")
    assert set(np.unique(out)) <= {0, 255}
    assert np.array_equal(out[..., 0] == 255, np.asarray(bw))


@pytest.mark.parametrize("mode, key", [("L", 0), ("RGB", (0, 0, 0))])
def test_colour_key_transparency_is_white(tmp_path, mode, key):
    img = Image.new(mode, (16, 16), key)  # every pixel is the transparent colour
    img.save(tmp_path / "key.png", transparency=key)
    assert rgb(tmp_path / "key.png").min() >= WHITE


# --- animation, orientation, draft ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".gif", ".webp", ".png"])
def test_animated_image_uses_first_frame(tmp_path, suffix):
    red, blue = Image.new("RGB", (64, 48), (255, 0, 0)), Image.new("RGB", (64, 48), (0, 0, 255))
    path = tmp_path / f"anim{suffix}"
    red.save(path, save_all=True, append_images=[blue], duration=100, loop=0)
    assert Image.open(path).n_frames == 2
    mean = load_for_model(path, PREP).pixels.reshape(-1, 3).mean(axis=0)
    assert mean[0] > 240 and mean[2] < 15


def test_real_animated_gif_uses_first_frame():
    with Image.open(FORMATS / "giphy.gif") as gif:
        assert gif.n_frames > 1
        first = np.asarray(gif.convert("RGB"))
        gif.seek(gif.n_frames - 1)
        last = np.asarray(gif.convert("RGB"))
    assert diff(first, last) > 5  # the test means something only if the frames differ
    assert diff(rgb(FORMATS / "giphy.gif"), first) < 1.0


# The transform a viewer applies to the stored pixels for each EXIF orientation value.
DISPLAY = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _with_orientation(photo: Image.Image, path: Path, orientation: int, **kw) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    photo.save(path, exif=exif, **kw)


@pytest.mark.parametrize("orientation", sorted(DISPLAY))
def test_exif_orientation_is_applied(tmp_path, photo, orientation):
    path = tmp_path / "oriented.jpg"
    _with_orientation(photo, path, orientation, quality=95)
    with Image.open(path) as stored:
        expected = np.asarray(stored.convert("RGB").transpose(DISPLAY[orientation]))
    img, size = open_image(path)
    assert size == img.size == (expected.shape[1], expected.shape[0])
    assert size == ((120, 160) if orientation >= 5 else (160, 120))
    assert np.array_equal(np.asarray(img), expected)


def test_rotated_jpeg_matches_upright_photo_after_load_for_model(tmp_path, photo):
    rotated, upright, plain = tmp_path / "rotated.jpg", tmp_path / "upright.jpg", tmp_path / "plain.jpg"
    _with_orientation(photo, rotated, 6, quality=95)  # stored landscape, displayed portrait
    photo.transpose(Image.Transpose.ROTATE_270).save(upright, quality=95)
    photo.save(plain, quality=95)
    out = load_for_model(rotated, PREP)
    assert (out.width, out.height) == (120, 160)
    assert diff(out.pixels, load_for_model(upright, PREP).pixels) < 3.0
    assert diff(out.pixels, load_for_model(plain, PREP).pixels) > 20.0  # orientation really matters here


def test_damaged_exif_decodes_without_printing_warnings(tmp_path, photo):
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010E] = "x" * 100  # ImageDescription, stored beyond the IFD: cut off below
    path = tmp_path / "bad_exif.jpg"
    photo.save(path, exif=exif.tobytes()[:-60])
    # What a CLI user sees, with Python's default warning filters (pytest's own filters would hide or change it).
    # The displayed size (120, 160) shows the orientation survives the damage.
    code = f"from imgsim_desktop.core.decode import open_image; print(open_image({str(path)!r})[1])"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (run.returncode, run.stdout.strip(), run.stderr) == (0, "(120, 160)", "")


@pytest.fixture(scope="module")
def large_jpegs(photo, tmp_path_factory) -> tuple[Path, Path]:
    """4000x3000 JPEGs, one plain and one with EXIF orientation 6 (made from the photo, fast to encode)."""
    folder = tmp_path_factory.mktemp("large")
    big = photo.resize((4000, 3000), Image.Resampling.BILINEAR)
    plain, rotated = folder / "big.jpg", folder / "big_rotated.jpg"
    big.save(plain, quality=85)
    _with_orientation(big, rotated, 6, quality=85)
    return plain, rotated


def test_large_jpeg_is_decoded_with_draft(large_jpegs):
    plain, rotated = large_jpegs
    img, size = open_image(plain, min_side=256)
    assert size == (4000, 3000)  # the full size is reported, not the draft size
    assert 256 <= min(img.size) < 1000 and img.size[0] > img.size[1]

    img, size = open_image(rotated, min_side=256)
    assert size == (3000, 4000)
    assert 256 <= min(img.size) < 1000 and img.size[0] < img.size[1]

    full, size = open_image(plain)
    assert full.size == size == (4000, 3000)


def test_draft_decode_gives_nearly_the_same_model_input_as_full_decode(large_jpegs):
    plain, _ = large_jpegs
    drafted = load_for_model(plain, PREP)
    full, _ = open_image(plain)
    assert (drafted.width, drafted.height) == (4000, 3000)
    assert diff(drafted.pixels, decode.model_pixels(full, PREP)) < 3.0


def test_small_jpeg_is_not_drafted_below_requested_side(tmp_path, photo):
    photo.save(tmp_path / "small.jpg", quality=95)
    img, size = open_image(tmp_path / "small.jpg", min_side=256)
    assert img.size == size == (160, 120)


# --- decompression bomb -------------------------------------------------------------------------------------------------------


def test_decompression_bomb_guard_uses_max_pixels(monkeypatch, tmp_path, photo):
    path = tmp_path / "photo.png"
    photo.save(path)
    monkeypatch.setattr(decode, "MAX_PIXELS", 160 * 120)
    assert load_for_model(path, PREP).pixels.shape == (224, 224, 3)  # exactly at the limit is fine
    monkeypatch.setattr(decode, "MAX_PIXELS", 160 * 120 - 1)
    message = decode_error(path)
    assert "too large" in message and "160x120" in message


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_crafted_bomb_header_is_refused_before_decoding(tmp_path):
    # A tiny file claiming 30000x30000 pixels (900 MP): refused by the real limit without allocating anything.
    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _png_chunk(b"IEND", b"")
    (tmp_path / "bomb.png").write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # our own guard, not Pillow's DecompressionBombWarning
        message = decode_error(tmp_path / "bomb.png")
    assert "too large" in message and "30000x30000" in message


# --- bad files ----------------------------------------------------------------------------------------------------------------


def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert "empty" in decode_error(tmp_path / "empty.jpg")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "TIFF", "BMP", "PPM"])
def test_file_cut_in_half_is_reported_truncated(tmp_path, photo, jpeg_bytes, fmt):
    if fmt == "JPEG":
        data = jpeg_bytes  # the real camera JPEG
    else:
        buf = io.BytesIO()
        photo.save(buf, fmt)
        data = buf.getvalue()
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: len(data) // 2])
    assert "truncated" in decode_error(path)


@pytest.mark.parametrize("fmt, keep", [("JPEG", 300), ("WEBP", 0.5)])
def test_file_cut_in_its_header_is_reported_truncated_or_corrupt(tmp_path, photo, jpeg_bytes, fmt, keep):
    if fmt == "JPEG":
        data = jpeg_bytes
    else:
        buf = io.BytesIO()
        photo.save(buf, fmt)
        data = buf.getvalue()
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: keep if isinstance(keep, int) else int(len(data) * keep)])
    message = decode_error(path)
    assert "cannot read file" not in message
    assert "truncated" in message or "corrupt" in message


def test_random_bytes_named_jpg(tmp_path):
    (tmp_path / "noise.jpg").write_bytes(np.random.default_rng(0).bytes(4096))
    assert "not an image" in decode_error(tmp_path / "noise.jpg")


def test_text_file_named_png(tmp_path):
    (tmp_path / "notes.png").write_text("shopping list\n- milk\n- bread\n")
    assert "not an image" in decode_error(tmp_path / "notes.png")


def test_real_svg_is_not_an_image(tmp_path):
    svg = '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><circle cx="32" cy="32" r="20"/></svg>\n'
    (tmp_path / "drawing.svg").write_text(svg)
    assert "not an image" in decode_error(tmp_path / "drawing.svg")


def test_corrupt_photo_from_shared_set():
    message = decode_error(PHOTOS / "ukbench" / "ukbench09268_corrupt.jpg")
    assert "not an image" in message or "corrupt" in message


def test_file_gone_before_decoding(tmp_path):
    message = decode_error(tmp_path / "deleted.jpg")
    assert "cannot read file" in message and "No such file" in message


def test_malformed_ppm_header_is_a_decode_error(tmp_path):
    (tmp_path / "bad.ppm").write_bytes(b"P6\n1x 1\n255\n\x00\x00\x00")
    message = decode_error(tmp_path / "bad.ppm")
    assert "not an image" in message or "corrupt" in message


@needs_avif
def test_avif_with_damaged_payload_is_a_decode_error(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(buf, "AVIF")
    data = buf.getvalue()
    start = data.find(b"mdat") + 4
    (tmp_path / "bad.avif").write_bytes(data[:start] + bytes(len(data) - start))  # valid container, zeroed pixels
    assert "corrupt" in decode_error(tmp_path / "bad.avif")


# --- sniffing and the scanner ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt, kw",
    [
        ("JPEG", {}),
        ("PNG", {}),
        ("GIF", {}),
        ("BMP", {}),
        ("TIFF", {}),
        ("WEBP", {}),
        pytest.param("AVIF", {}, marks=needs_avif),
        ("PPM", {}),
        ("PPM", {"mode": "L"}),
        ("PPM", {"mode": "1"}),
    ],
)
def test_looks_like_image_recognises_every_raster_format(photo, fmt, kw):
    buf = io.BytesIO()
    photo.convert(kw.get("mode", "RGB")).save(buf, fmt)
    assert looks_like_image(buf.getvalue()[:16])


def test_looks_like_image_recognises_heic():
    pytest.importorskip("pillow_heif")
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(buf, "HEIF")
    assert looks_like_image(buf.getvalue()[:16])


@pytest.mark.parametrize(
    "head",
    [
        b'<?xml version="1.0"?><svg',
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3",
        b"PK\x03\x04\x14\x00\x00\x00",
        b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00",  # MP4 video
        b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00",  # QuickTime video
        b"shopping list\n",
        b"",
    ],
)
def test_looks_like_image_rejects_documents_and_videos(head):
    assert not looks_like_image(head)


def test_scan_finds_images_by_extension_and_by_content(tmp_path, jpeg_bytes):
    lib = tmp_path / "library"
    (lib / "sub").mkdir(parents=True)
    (lib / ".thumbnails").mkdir()
    (lib / "photo.jpg").write_bytes(jpeg_bytes)
    (lib / "photo.dat").write_bytes(jpeg_bytes)  # a JPEG behind an unknown extension: sniffed
    (lib / "sub" / "photo.svg").write_bytes(jpeg_bytes)  # a JPEG behind an image-ish but unsupported extension
    (lib / "drawing.svg").write_text('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>')
    (lib / "notes.txt").write_text("not a photo")
    (lib / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00" + bytes(64))
    (lib / "clip.bin").write_bytes(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00" + bytes(64))  # video, unknown extension
    (lib / "fake.mp4").write_bytes(jpeg_bytes)  # skip-listed extension: never sniffed
    (lib / ".hidden.jpg").write_bytes(jpeg_bytes)
    (lib / ".thumbnails" / "thumb.jpg").write_bytes(jpeg_bytes)

    result = scan([str(lib)])
    found = sorted(Path(f.path).relative_to(lib).as_posix() for f in result.files)
    assert found == ["photo.dat", "photo.jpg", "sub/photo.svg"]
    assert result.problems == [] and result.missing_roots == []
    assert all(Path(f.path).is_absolute() and f.size == len(jpeg_bytes) for f in result.files)
    # what the scanner finds, the decoder reads by content
    for f in result.files:
        assert load_for_model(f.path, PREP).pixels.shape == (224, 224, 3)

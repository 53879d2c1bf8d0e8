"""A file's format comes from its bytes: a JPEG named .png is a JPEG, and the name is caught lying."""

from __future__ import annotations

import os

import pytest
from PIL import Image

from conftest import PHOTOS
from imgsim_desktop.core.file_format import detect, file_format


@pytest.mark.parametrize(
    ("name", "ext", "label", "lies"),
    [
        ("ukbench09380.jpeg", ".jpg", "JPEG", False),
        ("ukbench09380.png", ".jpg", "JPEG (named .png)", True),
        ("ukbench09380.bmp", ".jpg", "JPEG (named .bmp)", True),
        ("ukbench09380.svg", ".jpg", "JPEG (named .svg)", True),
        ("ukbench09380.webp", ".webp", "WebP", False),
        ("copyleft.tiff", ".tif", "TIFF", False),
        ("giphy.gif", ".gif", "GIF", False),
        ("Iggy.1024.ppm", ".ppm", "PPM", False),
        ("baboon.pgm", ".pgm", "PGM", False),
        ("marbles.pbm", ".pbm", "PBM", False),
    ],
)
def test_the_formats_photos(name, ext, label, lies):
    fmt = file_format(str(PHOTOS / "formats" / name))
    assert (fmt.ext, fmt.label(), fmt.lies) == (ext, label, lies)


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("Canon_EOS-D30__CRW.CRW", "Canon CRW"),  # its own signature
        ("Blackmagic_PocketCinemaCamera4K__Blackmagic.dng", "DNG"),  # TIFF bytes: the RAW name is believed
        ("GoPro_HERO8-Black__Hero8.GPR", "GoPro GPR"),
        ("Kodak_DC50__RAW_KODAK_DC50_e.KDC", "Kodak KDC"),
        ("Kodak_C330__RAW_KODAK_C330_FORMAT_NONE_YRGB.raw", "RAW"),  # headerless: only the name is known
    ],
)
def test_camera_raws(name, label):
    fmt = file_format(str(PHOTOS / "raw" / name))
    assert fmt.label() == label and not fmt.lies


def test_real_files_written_in_each_format_and_renamed(tmp_path):
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    with Image.open(PHOTOS / "formats" / "ukbench09380.jpeg") as im:
        photo = im.convert("RGB").resize((96, 72))
    written = {"png": "PNG", "gif": "GIF", "bmp": "BMP", "tif": "TIFF", "webp": "WebP", "ppm": "PPM", "heic": "HEIC", "avif": "AVIF"}
    for ext, name in written.items():
        honest, renamed = tmp_path / f"shot.{ext}", tmp_path / f"shot_{ext}.jpg"
        photo.save(honest)
        os.link(honest, renamed)  # the very same bytes, behind a JPEG name
        assert file_format(str(honest)).label() == name, ext
        assert file_format(str(renamed)).label() == f"{name} (named .jpg)", ext
    assert not file_format(str(tmp_path / "shot.tif")).lies  # ".tif" and ".tiff" are one format


@pytest.mark.parametrize(
    ("path", "head", "label"),
    [
        ("/p/a.cr2", b"II*\x00\x10\x00\x00\x00CR\x02\x00", "Canon CR2"),
        ("/p/a.tif", b"II*\x00\x10\x00\x00\x00CR\x02\x00", "Canon CR2 (named .tif)"),
        ("/p/a.cr3", b"\x00\x00\x00\x18ftypcrx \x00\x00\x00\x01crx isom", "Canon CR3"),
        ("/p/a.orf", b"IIRO\x08\x00\x00\x00", "Olympus ORF"),
        ("/p/a.rw2", b"IIU\x00\x18\x00\x00\x00", "Panasonic RW2"),
        ("/p/a.raf", b"FUJIFILMCCD-RAW 0201FF383501", "Fujifilm RAF"),
        ("/p/a.heif", b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic", "HEIC"),  # either name is honest
        ("/p/a.heic", b"\x00\x00\x00\x14ftypmif1\x00\x00\x00\x00mif1", "HEIF"),
        ("/p/a.nef", b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG (named .nef)"),  # a RAW name on a JPEG lies
        ("/p/a.svg", b'\xef\xbb\xbf<?xml version="1.0"?>\n<!-- drawn by hand -->\n<svg xmlns="http://www.w3.org/2000/svg">', "SVG"),
        ("/p/a.jpg", b"<svg/>", "SVG (named .jpg)"),
        ("/p/a.png", b"\x00\x01\x02\x03 nothing we know", "PNG"),  # unknown bytes: the name is all there is
        ("/p/noext", b"\x89PNG\r\n\x1a\n\x00\x00", "PNG (no extension)"),
    ],
)
def test_signatures(path, head, label):
    assert detect(path, head).label() == label


def test_an_edited_file_is_read_again(tmp_path):
    path = tmp_path / "photo.jpg"
    with Image.open(PHOTOS / "formats" / "ukbench09380.jpeg") as im:
        im.save(path, "JPEG")
    assert file_format(str(path)).label() == "JPEG"
    with Image.open(PHOTOS / "formats" / "ukbench09380.jpeg") as im:
        im.save(path, "PNG")  # replaced in place: another size, another mtime
    os.utime(path, ns=(1, 10**18))
    assert file_format(str(path)).label() == "PNG (named .jpg)"
    assert file_format(str(tmp_path / "gone.png")).label() == "PNG"  # unreadable: the name, and no error

"""Camera RAW files: the real ones in shared/photos/raw, and DNGs written here from real photos (a
Bayer mosaic of the photo, with and without a preview, turned or not), so the preview path and the
sensor path both run and must give the same, upright photo."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import PHOTOS
from imgsim_desktop.core import raw
from imgsim_desktop.core.decode import DecodeError, open_photo
from imgsim_desktop.core.scanner import is_candidate

tifffile = pytest.importorskip("tifffile")

RAWS = PHOTOS / "raw"
BLACK, WHITE = 256, 4095
# XYZ -> linear sRGB (D65), as DNG's ColorMatrix1 (XYZ -> camera): the "camera" sees linear sRGB.
XYZ_TO_SRGB = (32406, -15372, -4986, -9689, 18758, 415, 557, -2040, 10570)


def write_dng(path, photo: Image.Image, preview: bool = False, orientation: int = 1) -> None:
    """``photo`` as a camera would store it: an RGGB mosaic of its linear light (12 bits over a black
    level), turned the other way when ``orientation`` says the camera was held on its side, with
    an RGB preview in IFD0 (the raw in a SubIFD) when ``preview``."""
    stored = photo.convert("RGB")
    if orientation == 6:  # displayed turned 90 degrees clockwise: stored turned back
        stored = stored.transpose(Image.Transpose.ROTATE_90)
    rgb = np.asarray(stored).astype(np.float32) / 255.0
    h, w = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
    linear = rgb[:h, :w] ** 2.2
    mosaic = np.empty((h, w), np.float32)
    mosaic[0::2, 0::2] = linear[0::2, 0::2, 0]
    mosaic[0::2, 1::2] = linear[0::2, 1::2, 1]
    mosaic[1::2, 0::2] = linear[1::2, 0::2, 1]
    mosaic[1::2, 1::2] = linear[1::2, 1::2, 2]
    data = (BLACK + mosaic * (WHITE - BLACK)).astype(np.uint16)
    ifd0 = [
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50708, "s", 0, "imgsim test camera", True),  # UniqueCameraModel
        (271, "s", 0, "imgsim", True),  # Make
        (272, "s", 0, "Test Camera", True),  # Model
        (274, "H", 1, (orientation,), True),  # Orientation
        (306, "s", 0, "2024:05:17 10:11:12", True),  # DateTime
    ]
    sensor = [
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, (0, 1, 1, 2), True),  # CFAPattern: RGGB
        (50714, "H", 1, (BLACK,), True),  # BlackLevel
        (50717, "H", 1, (WHITE,), True),  # WhiteLevel
        (50721, "2i", 9, tuple(v for x in XYZ_TO_SRGB for v in (x, 10000)), True),  # ColorMatrix1
        (50728, "2I", 3, (1, 1, 1, 1, 1, 1), True),  # AsShotNeutral: grey is grey
        (50778, "H", 1, (21,), True),  # CalibrationIlluminant1: D65
    ]
    with tifffile.TiffWriter(path) as tif:
        if preview:
            tif.write(np.asarray(stored)[:h, :w], photometric="rgb", subfiletype=1, subifds=1, extratags=ifd0)
            tif.write(data, photometric=32803, subfiletype=0, extratags=sensor)
        else:
            tif.write(data, photometric=32803, subfiletype=0, extratags=ifd0 + sensor)


def grey(image: Image.Image, size=(64, 48)) -> np.ndarray:
    g = np.asarray(image.convert("L").resize(size, Image.Resampling.BOX), np.float32)
    return (g - g.mean()) / (g.std() + 1e-6)


def same_picture(a: Image.Image, b: Image.Image) -> float:
    """Correlation of the two pictures' small grey versions (1.0: identical)."""
    return float((grey(a) * grey(b)).mean())


@pytest.fixture(scope="module")
def pelican() -> Image.Image:
    return Image.open(PHOTOS / "labelled/pelican.jpg").convert("RGB")  # wider than tall: a turn shows


def test_the_shared_raw_files_decode_and_the_one_libraw_cannot_says_so():
    sizes = {}
    for path in sorted(RAWS.iterdir()):
        if path.suffix == ".md":
            continue
        assert is_candidate(str(path)), path.name
        if path.suffix == ".GPR":
            with pytest.raises(DecodeError, match="RAW format this LibRaw build cannot decode"):
                open_photo(path, min_side=224)
            continue
        photo = open_photo(path, min_side=224)
        assert min(photo.image.size) >= 224 or min(photo.image.size) == min(photo.width, photo.height) // 2
        assert np.asarray(photo.image).std() > 10  # a picture, not a flat grey
        sizes[path.name] = (photo.width, photo.height)
    assert sizes["Canon_EOS-D30__CRW.CRW"] == (2176, 1448)
    assert sizes["Canon_EOS-Kiss-X4-MagicLantern__colorchart.dng"] == (1734, 1156)
    assert sizes["Blackmagic_PocketCinemaCamera4K__Blackmagic.dng"] == (4128, 2176)


def test_a_crw_through_its_preview_and_through_its_sensor_data_is_the_same_photo():
    path = RAWS / "Canon_EOS-D30__CRW.CRW"
    preview, full, taken, how = raw.open_raw(path, min_side=224)
    sensor, full2, _taken, how2 = raw.open_raw(path, min_side=1200)  # more than its 960-px preview holds
    assert (how, how2) == (raw.PREVIEW, raw.SENSOR) and full == full2 == (2176, 1448)
    assert same_picture(preview, sensor) > 0.95
    photo = open_photo(path, min_side=224)
    assert photo.taken_at == "2018-01-01T13:03:32" and photo.camera == "Canon EOS D30"  # from the preview's EXIF


@pytest.mark.parametrize("with_preview", [False, True])
@pytest.mark.parametrize("orientation", [1, 6])
def test_a_dng_of_a_real_photo_decodes_upright_to_that_photo(tmp_path, pelican, with_preview, orientation):
    path = tmp_path / "IMG_0001.dng"
    write_dng(path, pelican, preview=with_preview, orientation=orientation)
    photo = open_photo(path, min_side=224)
    _img, _full, _taken, how = raw.open_raw(path, min_side=224)
    assert how == (raw.PREVIEW if with_preview else raw.SENSOR)
    assert (photo.width > photo.height) == (pelican.width > pelican.height)  # upright, either way it was stored
    assert same_picture(photo.image, pelican) > 0.9
    colours = np.asarray(photo.image.resize((32, 24))).reshape(-1, 3).mean(0)
    assert np.abs(colours - np.asarray(pelican.resize((32, 24))).reshape(-1, 3).mean(0)).max() < 20  # white balance kept
    assert photo.camera == "imgsim Test Camera" and photo.taken_at == "2024-05-17T10:11:12"


def test_the_preview_path_and_the_sensor_path_of_one_dng_agree(tmp_path, pelican):
    path = tmp_path / "IMG_0002.dng"
    write_dng(path, pelican, preview=True, orientation=6)
    preview, _, _, how = raw.open_raw(path, min_side=224)
    sensor, _, _, how2 = raw.open_raw(path, min_side=10_000)  # no preview is that large
    assert (how, how2) == (raw.PREVIEW, raw.SENSOR)
    assert preview.size[0] > preview.size[1] and sensor.size[0] > sensor.size[1]  # both upright (the pelican is wide)
    assert same_picture(preview, sensor) > 0.95


def test_damaged_raw_files_end_in_a_message_naming_the_reason(tmp_path, pelican):
    good = tmp_path / "good.dng"
    write_dng(good, pelican)
    cut = tmp_path / "cut.dng"
    cut.write_bytes(good.read_bytes()[:4096])
    text = tmp_path / "notes.nef"
    text.write_text("not a photo at all")
    for path in (cut, text):
        with pytest.raises(DecodeError) as caught:
            open_photo(path, min_side=224)
        assert "RAW" in str(caught.value)


def test_a_folder_of_raw_files_indexes_and_searches(tmp_path, data_dir, capsys, pelican):
    from imgsim_desktop.cli import main

    lib = tmp_path / "card"
    lib.mkdir()
    write_dng(lib / "IMG_0003.dng", pelican, preview=True, orientation=6)
    shutil.copyfile(RAWS / "Canon_EOS-D30__CRW.CRW", lib / "CRW_0001.CRW")
    shutil.copyfile(RAWS / "GoPro_HERO8-Black__Hero8.GPR", lib / "GOPR0001.GPR")
    pelican.save(lib / "pelican.jpg", quality=90)
    assert main(["index", str(lib), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["indexed"] == 3
    assert [(e["path"].rsplit("/", 1)[-1], "cannot decode" in e["error"]) for e in report["errors"]] == [("GOPR0001.GPR", True)]
    assert main(["similar", str(lib / "pelican.jpg"), "-k", "1", "--json"]) == 0
    best = json.loads(capsys.readouterr().out.splitlines()[0])["results"][0]
    assert best["path"].endswith("IMG_0003.dng") and best["score"] > 0.9  # the RAW of the same photo


def test_a_format_without_its_decoder_is_skipped_and_read_once_the_decoder_is_there(tmp_path, data_dir, monkeypatch, lite0):
    """HEIC without the opt-in pillow-heif: not "could not be read", not stored as broken; said as
    skipped with how to enable it, and indexed on the next run once the decoder is installed."""
    pytest.importorskip("pillow_heif")
    from imgsim_desktop.core import decode
    from imgsim_desktop.core.engine import Engine
    from imgsim_desktop.core.library_service import index_now

    lib = tmp_path / "phone"
    lib.mkdir()
    Image.open(PHOTOS / "labelled/dog.jpg").save(lib / "IMG_0001.heic", "HEIF", quality=90)
    shutil.copyfile(PHOTOS / "labelled/cat.jpg", lib / "IMG_0002.jpg")
    monkeypatch.setattr(decode, "HEIF_AVAILABLE", False)  # as on an install without the heic extra
    with Engine(data_dir) as engine:
        engine._backbone = lite0
        first = index_now(engine, [str(lib)])
        assert (first.indexed, first.errors) == (1, [])
        assert [(Path(u["path"]).name, u["format"]) for u in first.unsupported] == [("IMG_0001.heic", "HEIC/HEIF")]
        assert "heic" in first.unsupported[0]["how"] and engine.catalog.errors() == []
        monkeypatch.setattr(decode, "HEIF_AVAILABLE", True)  # the extra installed
        second = index_now(engine, [str(lib)])
        assert (second.indexed, second.skipped, second.unsupported) == (1, 1, [])


def test_the_app_says_which_formats_were_skipped_and_how_to_read_them(qtbot):
    from types import SimpleNamespace

    from PySide6.QtWidgets import QStatusBar

    from imgsim_desktop.ui.index_status import IndexStatus

    bar = QStatusBar()
    qtbot.addWidget(bar)
    status = IndexStatus(bar)
    how = "pillow-heif, an opt-in extra"
    report = SimpleNamespace(indexed=5, skipped=0, errors=[], missing=[], cancelled=False, removed=0,
                             unsupported=[{"path": f"/p/IMG_{n}.heic", "format": "HEIC/HEIF", "how": how} for n in range(2)])  # fmt: skip
    status.show_report(report)
    assert status.label.text() == "Indexed: 5 new, 0 unchanged, 2 HEIC/HEIF photos skipped"
    assert how in status.label.toolTip() and not status.errors_button.isVisible()


def test_a_raw_and_its_jpeg_are_one_shot_and_only_a_third_copy_is_offered(tmp_path, data_dir, capsys, pelican):
    """Once RAWs are indexed, the camera's RAW+JPEG of one shot meet in one duplicate group: both
    stay by default (one shot), and only another copy of the photo is suggested for removal."""
    import os

    from imgsim_desktop.cli import main

    lib = tmp_path / "card"
    (lib / "other").mkdir(parents=True)
    write_dng(lib / "IMG_0007.dng", pelican, preview=True)
    pelican.save(lib / "IMG_0007.jpg", quality=92)
    shutil.copyfile(lib / "IMG_0007.jpg", lib / "other" / "IMG_0007 copy.jpg")
    st = os.stat(lib / "IMG_0007.jpg")
    os.utime(lib / "IMG_0007.dng", ns=(st.st_atime_ns, st.st_mtime_ns))  # written at the same moment, as a camera does
    assert main(["index", str(lib)]) == 0
    capsys.readouterr()
    assert main(["duplicates", "--json"]) == 0
    [group] = [g for g in json.loads(capsys.readouterr().out)["groups"] if len(g["members"]) == 3]
    keep = {Path(m["path"]).name: m["keep"] for m in group["members"]}
    assert keep == {"IMG_0007.dng": True, "IMG_0007.jpg": True, "IMG_0007 copy.jpg": False}
    assert {Path(m["path"]).name: Path(m["pair"]).name for m in group["members"] if m["pair"]} == {"IMG_0007.dng": "IMG_0007.jpg", "IMG_0007.jpg": "IMG_0007.dng"}

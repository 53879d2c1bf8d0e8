"""The duplicates compare view on real photos: captions, loading, synchronised zoom and pan, 100%, failures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import shiboken6
from PIL import Image
from PySide6.QtGui import QImage

from conftest import PHOTOS
from imgsim_desktop.core.thumbnails import thumb_cache
from imgsim_desktop.storage.catalog import PhotoRow
from imgsim_desktop.ui.compare_view import SCENE_WIDTH, CompareView
from imgsim_desktop.workers.thumb_loader import ThumbnailLoader

AUTUMN = PHOTOS / "wallpapers" / "kde_Autumn__1920x1080.jpg"


def _row(path: Path, taken_at: str | None = None) -> PhotoRow:
    with Image.open(path) as img:
        width, height = img.size
    st = os.stat(path)
    return PhotoRow(id=0, path=str(path), size=st.st_size, mtime_ns=st.st_mtime_ns, width=width, height=height,
                    taken_at=taken_at, camera=None)


@pytest.fixture
def loader(tmp_path):
    loader = ThumbnailLoader(thumb_cache(tmp_path / "thumbs"), workers=1)
    yield loader
    loader.shutdown()


@pytest.fixture
def pair(tmp_path):
    """The wallpaper, and a 16:9 crop of it scaled down and saved as PNG: a near-duplicate of another size and shape."""
    crop = tmp_path / "autumn crop.png"
    with Image.open(AUTUMN) as img:
        img.crop((80, 25, 720, 385)).resize((480, 270)).save(crop)
    return _row(AUTUMN, "2021-06-01T10:20:30"), _row(crop)


@pytest.fixture
def compare(qtbot, loader):
    view = CompareView(loader)
    qtbot.addWidget(view)
    view.resize(1000, 600)
    view.show()
    qtbot.waitExposed(view)
    return view


def _shown(compare) -> bool:
    return all(not v.item.pixmap().isNull() for v in compare.views)


def _centre(view):
    return view.mapToScene(view.viewport().rect().center())


def test_shows_both_photos_with_captions_and_notes(compare, pair, qtbot):
    left, right = pair
    compare.show_pair(left, right, "keep", "remove")
    assert compare.views[0].message.text() == "Loading…"
    qtbot.waitUntil(lambda: _shown(compare), timeout=5000)
    assert [v.message.text() for v in compare.views] == ["", ""]
    assert compare.views[0].item.pixmap().width() == 800  # edge = the photo's long side: real pixels
    assert compare.views[1].item.pixmap().width() == 480
    left_caption, right_caption = (c.text() for c in compare.captions)
    assert "kde_Autumn__1920x1080.jpg" in left_caption and "800 × 500" in left_caption and "JPEG" in left_caption
    assert f"{left.size / 1000:.1f} KB" in left_caption and "2021-06-01 10:20:30" in left_caption  # decimal units, as the CLI
    assert str(AUTUMN.parent) in left_caption
    assert "autumn crop.png" in right_caption and "480 × 270" in right_caption and "PNG" in right_caption and "—" in right_caption
    assert [n.text() for n in compare.notes] == ["keep", "remove"] and all(n.isVisible() for n in compare.notes)
    # Both images span the same scene width; the wider crop is just less tall.
    widths = [v.item.sceneBoundingRect().width() for v in compare.views]
    assert widths == [pytest.approx(SCENE_WIDTH)] * 2
    assert compare.views[1].item.sceneBoundingRect().height() < compare.views[0].item.sceneBoundingRect().height()
    # Fit mode: the whole photo is visible, in the same transform on both sides.
    assert compare.views[0].transform() == compare.views[1].transform()
    assert compare.views[0].mapToScene(compare.views[0].viewport().rect()).boundingRect().contains(
        compare.views[0].item.sceneBoundingRect().adjusted(1, 1, -1, -1))


def test_zoom_and_pan_are_synchronised(compare, pair, qtbot):
    compare.show_pair(*pair)
    qtbot.waitUntil(lambda: _shown(compare), timeout=5000)
    left, right = compare.views
    fitted = left.transform().m11()
    compare.zoom_by(2)
    assert left.transform().m11() == pytest.approx(2 * fitted)
    assert right.transform() == left.transform()
    assert left.horizontalScrollBar().maximum() > 0  # zoomed in enough to pan

    left.horizontalScrollBar().setValue(0)
    left.verticalScrollBar().setValue(left.verticalScrollBar().maximum())
    target = _centre(left)
    assert target.x() < SCENE_WIDTH / 2 - 50  # really moved away from the middle
    got = _centre(right)
    assert abs(got.x() - target.x()) <= 2 and abs(got.y() - target.y()) <= 2

    right.horizontalScrollBar().setValue(right.horizontalScrollBar().maximum())  # and the other way round
    assert abs(_centre(left).x() - _centre(right).x()) <= 2
    assert _centre(left).x() > SCENE_WIDTH / 2 + 50


def test_actual_size_shows_left_pixels_one_to_one(compare, pair, qtbot):
    compare.show_pair(*pair)
    qtbot.waitUntil(lambda: _shown(compare), timeout=5000)
    compare.actual_size()
    left = compare.views[0]
    device_px_per_image_px = left.transform().m11() * left.item.scale() * compare.devicePixelRatioF()
    assert device_px_per_image_px == pytest.approx(1.0)
    assert compare.views[1].transform() == left.transform()
    assert compare.zoom_label.text() == "100%"
    compare.fit()
    assert left.transform().m11() * left.item.scale() < 1  # 800 px do not fit in ~480 px


def test_failing_file_shows_the_reason(compare, pair, tmp_path, qtbot):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo at all\n")
    compare.show_pair(pair[0], _row_unknown(bad))
    qtbot.waitUntil(lambda: "Cannot show" in compare.views[1].message.text(), timeout=5000)
    assert "not an image" in compare.views[1].message.text()
    qtbot.waitUntil(lambda: not compare.views[0].item.pixmap().isNull(), timeout=5000)


def test_stale_answers_are_ignored_and_closing_disconnects(compare, pair, loader, qtbot):
    left, right = pair
    compare.show_pair(left, right)
    qtbot.waitUntil(lambda: _shown(compare), timeout=5000)
    compare.clear()
    compare.show_pair(right, left)
    image = QImage(10, 10, QImage.Format.Format_RGB888)
    loader.ready.emit(right.path, 2048, image)  # an edge nobody asked for now
    loader.ready.emit("/elsewhere/old.jpg", 800, image)
    assert compare.views[0].item.pixmap().width() != 10 and compare.views[1].item.pixmap().width() != 10
    compare.close()
    loader.ready.emit(right.path, 480, image)  # after closing: no longer listening
    assert compare.views[0].item.pixmap().width() != 10


def test_deleted_view_is_not_called_by_the_loader(loader, pair, qtbot):
    left, right = pair
    view = CompareView(loader)  # not closed first: deleted along with its page, say
    view.show_pair(left, right)
    qtbot.waitUntil(lambda: _shown(view), timeout=5000)
    view.show_pair(right, left)
    shiboken6.delete(view)
    loader.ready.emit(right.path, 480, QImage(10, 10, QImage.Format.Format_RGB888))  # no call into the dead widget
    qtbot.wait(200)  # and the real answers to the second request land nowhere


def _row_unknown(path: Path) -> PhotoRow:
    st = os.stat(path)
    return PhotoRow(id=0, path=str(path), size=st.st_size, mtime_ns=st.st_mtime_ns, width=None, height=None, taken_at=None, camera=None)


# --- why the two are one group (core.explain) ----------------------------------------------------

def _explained_group(tmp_path, pair):
    """The wallpaper (anchor), its crop, and a mirrored half-size copy, placed by hand: the
    duplicate check's own placements are not what is tested here."""
    from imgsim_desktop.core.duplicates import Group, Member, Placement

    left, crop = pair
    mirror = tmp_path / "autumn mirror.jpg"
    with Image.open(AUTUMN) as img:
        img.transpose(Image.Transpose.FLIP_LEFT_RIGHT).resize((400, 250)).save(mirror)
    # Working frames: the wallpaper 640 x 400; the crop's 640 x 360 frame is its (80, 25) .. (720, 385) at 0.8.
    members = [Member(left.path, 1.0, placement=Placement((1, 0, 0, 0, 1, 0), (640, 400))),
               Member(crop.path, 0.97, placement=Placement((0.8, 0, 64, 0, 0.8, 20), (640, 360))),
               Member(str(mirror), 0.95, placement=Placement((-1, 0, 640, 0, 1, 0), (640, 400)))]
    rows = {r.path: r for r in (left, crop, _row(mirror))}
    return Group("duplicate", members), rows


def test_reason_and_outline_of_the_copy_on_the_keeper(compare, pair, tmp_path, qtbot):
    from imgsim_desktop.core import explain

    group, rows = _explained_group(tmp_path, pair)
    left, crop = pair
    why = explain.in_group(group, crop.path, left.path, rows)
    text = explain.describe(why, crop, left, copy="The right one", original="the left one")
    assert text.startswith("The right one is the left one cropped to 58 % of its area, resized to 75 % and re-encoded as PNG")
    compare.show_pair(left, crop, "keep", "remove", text, why.region)
    assert compare.reason.isVisible() and compare.reason.text() == text
    height = SCENE_WIDTH * 500 / 800  # the left picture in scene units, centred on y = 0
    expected = [(80, 25), (720, 25), (720, 385), (80, 385)]  # where the crop was cut, in the left photo's pixels
    assert compare.region_points() == [pytest.approx((x * SCENE_WIDTH / 800, y * height / 500 - height / 2)) for x, y in expected]
    assert compare.region_item.scene() is compare.views[0].scene() and compare.region_item.pen().isCosmetic()
    qtbot.waitUntil(lambda: _shown(compare), timeout=5000)
    assert len(compare.region_points()) == 4  # still there once the pictures came
    compare.clear()
    assert not compare.reason.isVisible() and compare.region_points() == []


def test_duplicates_page_explains_the_selected_member(qtbot, loader, pair, tmp_path):
    from imgsim_desktop.core.settings import Settings
    from imgsim_desktop.ui.duplicates_page import DuplicatesPage

    group, rows = _explained_group(tmp_path, pair)
    settings = Settings(keep_rule="resolution")  # the 800 x 500 wallpaper is the keeper
    page = DuplicatesPage(settings, loader)
    qtbot.addWidget(page)
    page.resize(1100, 800)
    page.show()
    page.tree.fill([group], rows, settings.keeper_rules())
    page._select_first_group()
    reason = page.compare.reason
    assert reason.isVisible() and reason.text().startswith("The right one is the left one cropped to 58 % of its area")
    assert page.compare._rows[0].path == pair[0].path and len(page.compare.region_points()) == 4

    page.tree.setCurrentItem(page.tree._items[group.members[2].path])  # the mirrored copy
    assert page.compare._rows[1].path == group.members[2].path
    assert reason.text().startswith("The right one is the left one mirrored, resized to 50 % and re-encoded")
    assert [(round(x), round(y)) for x, y in page.compare.region_points()] == [(1000, -312), (0, -312), (0, 312), (1000, 312)]

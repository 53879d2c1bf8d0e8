"""Why two photos are in one group, from hand-made placements: the numbers and the words."""

from __future__ import annotations

import math

import pytest

from imgsim_desktop.core.duplicates import Group, Member, Placement
from imgsim_desktop.core.explain import describe, facts, in_group, phrase, relation
from imgsim_desktop.storage.records import PhotoRow

IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
ANCHOR = Member("/p/a.jpg", 1.0, placement=Placement(IDENTITY, (640, 480)))


def _row(path: str, width: int, height: int, size: int = 1_000_000) -> PhotoRow:
    return PhotoRow(id=0, path=path, size=size, mtime_ns=0, width=width, height=height, taken_at=None, camera=None)


def _member(path: str, to_anchor, frame, tone=(1.0, 0.0), exact=False) -> Member:
    return Member(path, 0.97, exact, Placement(tuple(float(v) for v in to_anchor), frame, tone))


def _corners(rel):
    return [tuple(round(v, 4) for v in corner) for corner in rel.region]


def test_a_letterboxed_crop_is_measured_by_its_picture_and_says_it_was_given_a_border():
    # The same crop as below, then padded top and bottom: a 640 x 640 frame whose picture is the
    # 640 x 465 band from y = 87.5. Its corners on the keeper are the crop's, not the padding's.
    crop = Member("/p/boxed.jpg", 0.9, placement=Placement((0.8, 0, 128, 0, 0.8, 50 - 0.8 * 87.5), (640, 640), picture=(0.0, 87.5, 640.0, 552.5)))
    rel = relation(crop, ANCHOR, member_size=(3200, 3200), keeper_size=(4000, 3000))
    assert rel.area_share == pytest.approx(0.62, abs=0.005) and rel.keeper_inside_copy == pytest.approx(1.0)
    assert _corners(rel) == [(0.2, 0.1042), (1.0, 0.1042), (1.0, 0.8792), (0.2, 0.8792)]
    assert phrase(rel, None, None) == "the keeper cropped to 62 % of its area, given a border and re-encoded"


def test_off_centre_crop_covers_its_share_of_the_keeper():
    # 512 x 372 keeper pixels from (128, 50), enlarged to a 640 x 465 working frame.
    crop = _member("/p/crop.jpg", (0.8, 0, 128, 0, 0.8, 50), (640, 465))
    rel = relation(crop, ANCHOR, member_size=(3200, 2325), keeper_size=(4000, 3000))
    assert rel.kind == "duplicate" and not rel.mirrored and rel.quarter_turns == 0
    assert rel.area_share == pytest.approx(0.62) and rel.keeper_inside_copy == pytest.approx(1.0)
    assert rel.scale == pytest.approx(1.0)  # the crop kept the original's pixels: not resized
    assert _corners(rel) == [(0.2, 0.1042), (1.0, 0.1042), (1.0, 0.8792), (0.2, 0.8792)]
    text = describe(rel, _row(crop.path, 3200, 2325, 1_500_000), _row(ANCHOR.path, 4000, 3000, 2_000_000))
    assert text == "This photo is the keeper cropped to 62 % of its area and re-encoded (25 % smaller file)."


def test_padded_copy_reaches_outside_the_keeper():
    padded = _member("/p/padded.png", (1.25, 0, -80, 0, 1.25, -60), (640, 480))  # the keeper at 80 %, framed by a border
    rel = relation(padded, ANCHOR, member_size=(640, 480), keeper_size=(512, 384))
    assert rel.area_share == pytest.approx(1.0) and rel.keeper_inside_copy == pytest.approx(0.64)
    assert _corners(rel) == [(-0.125, -0.125), (1.125, -0.125), (1.125, 1.125), (-0.125, 1.125)]
    assert rel.scale == pytest.approx(1.0)
    assert phrase(rel, _row(padded.path, 640, 480), _row(ANCHOR.path, 512, 384)) == (
        "the keeper with a wider frame (the keeper fills 64 % of it) and re-encoded as PNG"
    )


def test_keeper_cropped_from_the_copy():
    # The keeper is the middle 62.5 % x 62.5 % of the copy: the copy shows more.
    whole = _member("/p/whole.jpg", (1.6, 0, -192, 0, 1.6, -144), (640, 480))
    rel = relation(whole, ANCHOR, member_size=(4096, 3072), keeper_size=(1600, 1200))
    assert rel.area_share == pytest.approx(1.0) and rel.keeper_inside_copy == pytest.approx(0.390625)
    assert rel.scale == pytest.approx(4096 / (1600 / 0.625))  # copy px per keeper px: 1.6
    text = describe(rel, _row(whole.path, 4096, 3072), _row(ANCHOR.path, 1600, 1200), copy="The right one", original="the left one")
    assert text == "The right one is the left one with a wider frame (the left one fills 39 % of it), enlarged to 160 % and re-encoded."


def test_mirror_and_flip():
    mirror = _member("/p/m.jpg", (-1, 0, 640, 0, 1, 0), (640, 480))
    rel = relation(mirror, ANCHOR)
    assert rel.mirrored and rel.quarter_turns == 0 and rel.rotation == pytest.approx(0.0)
    assert rel.area_share == pytest.approx(1.0) and rel.keeper_inside_copy == pytest.approx(1.0)
    assert _corners(rel) == [(1.0, 0.0), (0.0, 0.0), (0.0, 1.0), (1.0, 1.0)]
    same = _row(ANCHOR.path, 4000, 3000)
    assert describe(rel, _row(mirror.path, 4000, 3000), same) == "This photo is the keeper mirrored and re-encoded."
    flip = _member("/p/f.jpg", (1, 0, 0, 0, -1, 480), (640, 480))  # top to bottom
    rel = relation(flip, ANCHOR)
    assert rel.mirrored and rel.quarter_turns == 2
    assert describe(rel, None, None) == "This photo is the keeper flipped upside down and re-encoded."


def test_quarter_turns_and_a_small_straightening():
    # The copy is the keeper turned clockwise: keeper (x, y) -> copy (480 - y, x); copy -> keeper (v, 480 - u).
    cw = _member("/p/cw.jpg", (0, 1, 0, -1, 0, 480), (480, 640))
    rel = relation(cw, ANCHOR, member_size=(1500, 2000), keeper_size=(4000, 3000))
    assert rel.quarter_turns == 1 and not rel.mirrored and rel.rotation == pytest.approx(90.0)
    assert rel.scale == pytest.approx(0.5) and rel.area_share == pytest.approx(1.0)
    assert _corners(rel) == [(0.0, 1.0), (0.0, 0.0), (1.0, 0.0), (1.0, 1.0)]
    assert phrase(rel, None, None) == "the keeper rotated a quarter turn clockwise, resized to 50 % and re-encoded"

    ccw = _member("/p/ccw.jpg", (0, -1, 640, 1, 0, 0), (480, 640))  # copy (u, v) -> keeper (640 - v, u)
    rel = relation(ccw, ANCHOR)
    assert rel.quarter_turns == 3 and rel.rotation == pytest.approx(-90.0)
    assert phrase(rel, None, None) == "the keeper rotated a quarter turn anticlockwise and re-encoded"

    half = _member("/p/half.jpg", (-1, 0, 640, 0, -1, 480), (640, 480))
    assert phrase(relation(half, ANCHOR), None, None) == "the keeper turned upside down and re-encoded"

    c, s = math.cos(math.radians(3)), math.sin(math.radians(3))
    tilted = _member("/p/tilt.jpg", (c, s, 0, -s, c, 0), (640, 480))  # the keeper turned 3° clockwise
    rel = relation(tilted, ANCHOR)
    assert rel.rotation == pytest.approx(3.0) and rel.quarter_turns == 0 and rel.area_share < 0.98
    assert "rotated 3° clockwise" in phrase(rel, None, None)


def test_keeper_that_is_not_the_anchor_composes_through_it():
    # The keeper is the anchor mirrored; the copy is a crop of the anchor, tone-edited.
    keeper = _member("/p/keeper.jpg", (-1, 0, 640, 0, 1, 0), (640, 480), tone=(1.25, -20.0))  # anchor = 1.25 keeper - 20
    crop = _member("/p/crop.jpg", (0.625, 0, 100, 0, 0.625, 60), (640, 480))  # anchor [100, 500] x [60, 360]
    rel = relation(crop, keeper, member_size=(1000, 750), keeper_size=(2000, 1500))
    assert rel.mirrored and rel.quarter_turns == 0
    assert rel.area_share == pytest.approx(0.390625) and rel.keeper_inside_copy == pytest.approx(1.0)
    assert rel.scale == pytest.approx(0.8)  # 1000 real px where the keeper has 400 / 640 * 2000 = 1250
    assert _corners(rel) == [(0.8438, 0.125), (0.2188, 0.125), (0.2188, 0.75), (0.8438, 0.75)]
    assert rel.tone == pytest.approx((1.25, -20.0)) and rel.brightness == pytest.approx(12.0)
    text = describe(rel, _row(crop.path, 1000, 750), _row(keeper.path, 2000, 1500))
    assert text == (
        "This photo is the keeper cropped to 39 % of its area, mirrored, resized to 80 %, "
        "made brighter, given more contrast and re-encoded."
    )
    # And the other way round: the keeper seen from the crop is wider, mirrored back and enlarged.
    back = relation(keeper, crop, member_size=(2000, 1500), keeper_size=(1000, 750))
    assert back.mirrored and back.area_share == pytest.approx(1.0) and back.keeper_inside_copy == pytest.approx(0.390625)
    assert back.scale == pytest.approx(1.25) and back.tone[0] == pytest.approx(0.8)


def test_exact_similar_keeper_and_unplaced_duplicates():
    keeper_row, copy_row = _row("/p/a.jpg", 4000, 3000), _row("/p/b.jpg", 4000, 3000)
    exact = Group("exact", [Member("/p/a.jpg", 1.0, True), Member("/p/b.jpg", 1.0, True)])
    rows = {r.path: r for r in (keeper_row, copy_row)}
    rel = in_group(exact, "/p/b.jpg", "/p/a.jpg", rows)
    assert rel.exact and describe(rel, copy_row, keeper_row) == "This photo is a byte-identical copy of the keeper."
    assert describe(in_group(exact, "/p/a.jpg", "/p/a.jpg", rows), keeper_row, keeper_row) == "suggested keeper"

    similar = Group("similar", [Member("/p/a.jpg", 1.0), Member("/p/b.jpg", 0.93)])
    rel = in_group(similar, "/p/b.jpg", "/p/a.jpg", rows)
    assert rel.kind == "similar" and not rel.geometry
    assert describe(rel, copy_row, keeper_row, copy="The right one", original="the left one") == (
        "The right one is another shot of the same moment as the left one."
    )

    # A duplicate the check placed nowhere: only the catalog's sizes and names speak.
    unplaced = Group("duplicate", [Member("/p/a.jpg", 1.0), Member("/p/b.webp", 0.99)])
    small = _row("/p/b.webp", 2000, 1500, 300_000)
    rel = in_group(unplaced, "/p/b.webp", "/p/a.jpg", {keeper_row.path: keeper_row, small.path: small})
    assert rel.kind == "duplicate" and not rel.geometry
    assert (
        describe(rel, small, keeper_row)
        == "This photo is the same photo as the keeper, resized to 50 % and re-encoded as WebP (70 % smaller file)."
    )


def test_exact_members_of_a_duplicate_group_borrow_their_twins_placement():
    rows = {p: _row(p, 4000, 3000, 2_000_000) for p in ("/p/a.jpg", "/p/c.jpg")}
    rows |= {p: _row(p, 2000, 3000, 700_000) for p in ("/p/b.jpg", "/p/b copy.jpg")}
    half = (0.5, 0, 160, 0, 0.5, 0)  # a 213 x 320 piece of the anchor, from x = 160
    group = Group(
        "duplicate",
        [
            Member("/p/a.jpg", 1.0),  # the anchor, placed nowhere: the identity in its own frame
            Member("/p/b copy.jpg", 0.98, exact=True),  # byte-identical to b.jpg, which carries the placement
            _member("/p/b.jpg", half, (427, 640), exact=True),
            _member("/p/c.jpg", IDENTITY, (640, 480)),
        ],
    )
    rel = in_group(group, "/p/b copy.jpg", "/p/c.jpg", rows)
    assert rel.kind == "duplicate" and rel.area_share == pytest.approx(427 * 640 * 0.25 / (640 * 480), rel=1e-6)
    assert describe(rel, rows["/p/b copy.jpg"], rows["/p/c.jpg"]).startswith("This photo is the keeper cropped to 22 % of its area")
    assert in_group(group, "/p/b copy.jpg", "/p/b.jpg", rows).exact
    assert in_group(group, "/p/c.jpg", "/p/a.jpg", rows).area_share == pytest.approx(1.0)
    # Same size, both exact, but placed apart: copies of two different files, not of each other.
    other = _member("/p/d.jpg", (1, 0, 0, 0, 1, 0), (640, 480), exact=True)
    assert not relation(other, group.members[2]).exact


def test_facts_are_the_json_numbers():
    crop = _member("/p/crop.jpg", (0.8, 0, 128, 0, 0.8, 50), (640, 465))
    got = facts(relation(crop, ANCHOR, member_size=(3200, 2325), keeper_size=(4000, 3000)))
    assert got["kind"] == "duplicate" and got["exact"] is False and got["mirrored"] is False
    assert got["area_share"] == 0.62 and got["keeper_inside_copy"] == 1.0 and got["scale"] == 1.0
    assert got["rotation"] == 0.0 and got["quarter_turns"] == 0
    assert got["tone"] == {"gain": 1.0, "offset": 0.0, "brightness": 0.0}
    assert got["region"][0] == [0.2, 0.1042]
    assert facts(relation(Member("/p/b.jpg", 1.0, True), Member("/p/a.jpg", 1.0, True), tier="exact")) == {"kind": "exact", "exact": True}


def test_formats_are_told_from_the_bytes_not_the_names(tmp_path):
    real, renamed, webp = tmp_path / "a.jpg", tmp_path / "b.png", tmp_path / "c.png"
    real.write_bytes(b"\xff\xd8\xff\xe0" + bytes(60))
    renamed.write_bytes(b"\xff\xd8\xff\xe0" + bytes(60))  # a JPEG whose name says PNG
    webp.write_bytes(b"RIFF\x00\x00\x00\x00WEBPVP8 " + bytes(60))
    keeper = _row(str(real), 4000, 3000, 64)
    mirror = _member(str(renamed), (-1, 0, 640, 0, 1, 0), (640, 480))
    rel = relation(mirror, ANCHOR)
    assert phrase(rel, _row(str(renamed), 4000, 3000, 64), keeper) == "the keeper mirrored and re-encoded"
    assert phrase(rel, _row(str(webp), 4000, 3000, 64), keeper) == "the keeper mirrored and re-encoded as WebP"


def test_a_degenerate_placement_draws_nothing():
    flat = _member("/p/flat.jpg", (0, 0, 10, 0, 0, 10), (640, 480))  # every pixel to one point: no inverse
    rel = relation(ANCHOR, flat)
    assert rel.kind == "duplicate" and not rel.geometry and facts(rel) == {"kind": "duplicate", "exact": False}

"""Turned and mirrored copies are found although the embedding does not bring them close: the
glance code is the same for all eight orientations, a scan verifies the pairs it proposes, and a
library indexed before glance codes existed gets them at its first scan."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from conftest import PHOTOS, copy_photos, rewind_catalog
from imgsim_desktop.core import glance
from imgsim_desktop.core.duplicates import find_groups, thresholds
from imgsim_desktop.core.engine import Engine
from imgsim_desktop.core.glance_pairs import GLANCE_FLOOR
from imgsim_desktop.core.library_service import index_now

# A photo whose half-turned copy the embedding places far away (cosine ~0.5; the duplicate stage
# starts at thresholds(0.5).duplicate_cosine = 0.7): only the glance brings the pair to the check.
TOWER = PHOTOS / "other_shots/ox_all_souls_towers__all_souls_000006.jpg"
UNRELATED = ["labelled/dog.jpg", "labelled/cat.jpg", "aib/19.jpg", "other_shots/ox_all_souls_towers__all_souls_000055.jpg"]
TURNS = {
    "rot90": lambda im: im.transpose(Image.Transpose.ROTATE_90),
    "rot180": lambda im: im.transpose(Image.Transpose.ROTATE_180),
    "rot270": lambda im: im.transpose(Image.Transpose.ROTATE_270),
    "mirror": ImageOps.mirror,
    "flip": ImageOps.flip,
    "transpose": lambda im: im.transpose(Image.Transpose.TRANSPOSE),
    "transverse": lambda im: im.transpose(Image.Transpose.TRANSVERSE),
}


def _block(img: Image.Image) -> np.ndarray:
    return glance.block_of_grey(np.asarray(img.convert("L")))


def _code(img: Image.Image) -> np.ndarray:
    return glance.code(_block(img))


def test_the_glance_of_a_photo_is_the_same_however_it_is_turned_or_flipped():
    with Image.open(TOWER) as im:
        photo = im.convert("RGB")
    code = _code(photo)
    assert code.shape == (glance.DIMS,) and abs(float(np.linalg.norm(code)) - 1) < 1e-5
    for name, turn in TURNS.items():
        assert float(code @ _code(turn(photo))) > 0.999, name
    # Re-encoded small and brightened (what copying does), still far above the floor ...
    copy = ImageEnhance.Brightness(TURNS["rot90"](photo).resize((photo.height // 3, photo.width // 3))).enhance(1.2)
    assert float(code @ _code(copy)) > GLANCE_FLOOR
    # ... while another photo of the same tower, and a dog, are below it.
    for other in UNRELATED[-1:] + UNRELATED[:1]:
        with Image.open(PHOTOS / other) as im:
            assert float(code @ _code(im.convert("RGB"))) < GLANCE_FLOOR, other


def test_a_turned_copys_hash_agrees_in_one_orientation_and_another_shot_never_does():
    with Image.open(TOWER) as im:
        photo = im.convert("RGB")
    original = glance.hashes(_block(photo))
    for name, turn in TURNS.items():
        copy = ImageEnhance.Contrast(turn(photo)).enhance(1.2)
        assert glance.hash_distance(original, glance.hashes(_block(copy))) <= glance.HASH_MATCH_BITS, name
    # Another shot of the same tower has the same coarse layout (its code is close) but not the same picture.
    with Image.open(PHOTOS / UNRELATED[-1]) as im:
        other = glance.hashes(_block(im.convert("RGB")))
    assert glance.hash_distance(original, other) > glance.HASH_MATCH_BITS


def test_stored_glances_round_trip_and_foreign_bytes_are_refused():
    block = glance.block_of_grey(np.arange(64 * 48, dtype=np.uint8).reshape(48, 64))
    assert np.allclose(glance.from_bytes(glance.to_bytes(block)), block, rtol=1e-2, atol=0.5)
    assert glance.from_bytes(b"short") is None and glance.from_bytes(None) is None
    assert glance.from_bytes(b"\x00" * 126) is None  # the form an older version stored: made again
    assert not np.any(glance.code(glance.block_of_grey(np.full((30, 40), 128, np.uint8))))  # a flat frame has no layout


@pytest.fixture(scope="module")
def turned_library(tmp_path_factory):
    root = tmp_path_factory.mktemp("turned")
    lib = root / "lib"
    copy_photos(lib, [str(TOWER.relative_to(PHOTOS))] + UNRELATED)
    with Image.open(TOWER) as im:
        photo = im.convert("RGB")
    TURNS["rot180"](photo).save(lib / "tower_upside_down.jpg", quality=90)
    ImageEnhance.Contrast(TURNS["rot90"](photo)).enhance(1.15).save(lib / "tower_sideways.jpg", quality=80)
    return root


def _tower_group(groups) -> set[str]:
    found = [{Path(m.path).name for m in g.members} for g in groups if g.tier == "duplicate"]
    return next((names for names in found if TOWER.name in names), set())


def test_a_scan_finds_turned_copies_the_embedding_places_far_apart(turned_library):
    with Engine(turned_library / "data", device="cpu") as engine:
        index_now(engine, [str(turned_library / "lib")])
        tower = engine.catalog.vector_for_path(engine.searcher.model, str(turned_library / "lib" / TOWER.name))[1]
        upside_down = engine.catalog.vector_for_path(engine.searcher.model, str(turned_library / "lib" / "tower_upside_down.jpg"))[1]
        assert float(tower @ upside_down) < thresholds(0.5).duplicate_cosine  # the embedding alone would not propose it
        groups = find_groups(engine.searcher)
    assert _tower_group(groups) == {TOWER.name, "tower_upside_down.jpg", "tower_sideways.jpg"}
    assert not any(Path(m.path).name in {Path(u).name for u in UNRELATED} for g in groups if g.tier == "duplicate" for m in g.members)


def test_a_library_indexed_before_glances_gets_them_at_its_first_scan(turned_library, tmp_path):
    data = tmp_path / "data"
    with Engine(data, device="cpu") as engine:
        index_now(engine, [str(turned_library / "lib")])
    rewind_catalog(data / "catalog.sqlite3", 7, "ALTER TABLE files DROP COLUMN glance")  # as v7 wrote it
    with Engine(data, device="cpu") as engine:
        groups = find_groups(engine.searcher)
    assert TOWER.name in _tower_group(groups) and "tower_upside_down.jpg" in _tower_group(groups)
    with sqlite3.connect(data / "catalog.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM files WHERE glance IS NULL").fetchone()[0] == 0

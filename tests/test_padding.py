"""An added border is found, and only a border: the picture inside it is what the duplicate check
and the glance code look at."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from conftest import PHOTOS
from imgsim_desktop.core import glance, padding

PHOTO = PHOTOS / "other_shots/ox_radcliffe_camera__radcliffe_camera_000093.jpg"


def _grey(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L"))


def test_the_picture_inside_a_border_is_found_on_every_side():
    with Image.open(PHOTO) as im:
        photo = im.convert("RGB").resize((256, 192))
    assert padding.content_box(_grey(photo)) == (0, 0, 256, 192)  # a real photo has no border
    framed = ImageOps.expand(photo, border=(20, 10, 30, 15), fill=(30, 160, 60))
    x0, y0, x1, y1 = padding.content_box(_grey(framed))
    # Each edge within the seam's few pixels of the true one, never outside the picture.
    assert 20 <= x0 <= 20 + padding.SEAM and 10 <= y0 <= 10 + padding.SEAM
    assert 276 - padding.SEAM <= x1 <= 276 and 202 - padding.SEAM <= y1 <= 202


def test_a_nearly_empty_picture_keeps_its_frame():
    flat = np.full((100, 120), 200, np.uint8)
    assert padding.content_box(flat) == (0, 0, 120, 100)  # all flat: nothing to call a border
    flat[10:90, 55:60] = 20  # a thin dark pole in a white field: the field beside it is picture
    x0, _, x1, _ = padding.content_box(flat)
    assert (x0, x1) == (0, 120)


def test_a_letterboxed_turned_copy_has_its_originals_glance():
    with Image.open(PHOTO) as im:
        photo = im.convert("RGB")
    copy = ImageOps.expand(photo.transpose(Image.Transpose.ROTATE_90), border=(0, 90), fill=(0, 0, 0))
    a, b = glance.block_of_grey(_grey(photo)), glance.block_of_grey(_grey(copy))
    assert float(glance.code(a) @ glance.code(b)) > 0.98
    assert glance.hash_distance(glance.hashes(a), glance.hashes(b)) <= glance.HASH_MATCH_BITS

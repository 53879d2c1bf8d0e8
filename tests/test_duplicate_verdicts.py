"""What the duplicate check must get right on real photos: other shots of one place are never the
same photo, copies (mirrored, rotated, cropped, captioned) are; one photo's many copies are one
group; byte-identical files inside a group are flagged and placed."""

from __future__ import annotations

import io
import random
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from conftest import PHOTOS
from imgsim_desktop.core import explain, verify
from imgsim_desktop.core.duplicates import find_groups, thresholds
from imgsim_desktop.core.engine import Engine
from imgsim_desktop.core.library_service import index_now

RULE = thresholds(0.5).pair
OTHER = PHOTOS / "other_shots"

# The hardest pairs of other_shots: the geometry alone called each of them one photo (a planar
# facade or gravel under a moving camera, a lit window in a dark hall, a wider shot of a facade).
HARD_NEGATIVES = [
    ("ox_keble_hall__keble_000057.jpg", "ox_keble_hall__keble_000063.jpg"),
    ("ukb_00012__ukbench00014.jpg", "ukb_00012__ukbench00015.jpg"),
    ("boof_triple_pebbles__pebbles_01.jpg", "boof_triple_pebbles__pebbles_02.jpg"),
    ("boof_triple_rock_leaves__rock_leaves_02.jpg", "boof_triple_rock_leaves__rock_leaves_03.jpg"),
    ("bundler_kermit__kermit000.jpg", "bundler_kermit__kermit002.jpg"),
    ("ox_all_souls_towers__all_souls_000006.jpg", "ox_all_souls_towers__all_souls_000055.jpg"),
    ("lightglue_dsc041x__DSC_0410.jpg", "lightglue_dsc041x__DSC_0411.jpg"),
    # Aerial shots seconds apart: ground and clouds nearly the same pixels, the frame shifted 2 %.
    ("boof_scene_6__image18.jpg", "boof_scene_6__image19.jpg"),
]


def features(path: Path) -> verify.Features:
    return verify.from_bytes(verify.to_bytes(verify.features(path)))  # as a scan sees them, from the cache


@pytest.mark.parametrize("pair", HARD_NEGATIVES, ids=lambda p: p[0].split("__")[0])
def test_other_shots_of_one_place_are_never_the_same_photo(pair):
    a, b = (features(OTHER / name) for name in pair)
    for x, y in ((a, b), (b, a)):
        assert not verify.decide(x, y, RULE).same


def _caption(img: Image.Image) -> Image.Image:
    img = img.copy()
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, int(img.height * 0.86), img.width, img.height), fill=(0, 0, 0))
    draw.text((12, int(img.height * 0.89)), "Summer 2019", fill=(255, 255, 255))
    return img


def _corner_crop(img: Image.Image) -> Image.Image:  # 35 % of the area, bottom right
    w, h = img.size
    return img.crop((int(w * 0.41), int(h * 0.41), w, h))


COPIES = {
    "mirror": ImageOps.mirror,
    "rot90": lambda im: im.transpose(Image.Transpose.ROTATE_90),
    "rot180": lambda im: im.transpose(Image.Transpose.ROTATE_180),
    "corner_crop": _corner_crop,
    "caption": _caption,
    "colour": lambda im: ImageEnhance.Color(ImageEnhance.Brightness(im).enhance(1.2)).enhance(1.3),
    "border": lambda im: ImageOps.expand(im, border=(im.width // 10, 0), fill=(0, 0, 0)),
    # A border counts for nothing: a crop then letterboxed lies inside its original once it is set aside.
    "crop_then_letterbox": lambda im: ImageOps.expand(im.crop((0, 0, int(im.width * 0.75), int(im.height * 0.8))), border=(0, im.height // 7), fill=(250, 250, 250)),
    "mirror_then_frame": lambda im: ImageOps.expand(ImageOps.mirror(im), border=im.width // 25, fill=(120, 40, 90)),
}


@pytest.mark.parametrize("edit", sorted(COPIES))
def test_generated_copies_of_real_photos_are_found(tmp_path, edit):
    for name in ("ox_radcliffe_camera__radcliffe_camera_000093.jpg", "boof_triple_pebbles__pebbles_01.jpg"):
        with Image.open(OTHER / name) as im:
            COPIES[edit](im.convert("RGB")).save(tmp_path / "copy.jpg", quality=80)
        verdict = verify.decide(features(OTHER / name), features(tmp_path / "copy.jpg"), RULE)
        assert verdict.same, (name, edit)
        assert verdict.evidence.mirrored == edit.startswith("mirror")


def test_the_shared_mirrored_copy_is_found():
    original, flipped = features(PHOTOS / "ukbench/ukbench00120.jpg"), features(PHOTOS / "ukbench/ukbench00120_hflip.jpg")
    verdict = verify.decide(original, flipped, RULE)
    assert verdict.same and verdict.evidence.mirrored


def test_forty_copies_of_one_photo_are_one_group_and_say_how_they_were_made(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    rng = random.Random(3)
    with Image.open(PHOTOS / "aib/7.jpg") as im:
        base = im.convert("RGB")
    base.save(lib / "original.jpg", quality=95)
    for i in range(40):
        img = base
        if i % 4 == 1:
            img = img.resize((int(img.width * rng.uniform(0.5, 0.9)),) * 2)
        elif i % 4 == 2:
            w, h = img.size
            x, y = rng.randint(0, w // 6), rng.randint(0, h // 6)
            img = img.crop((x, y, x + int(w * 0.8), y + int(h * 0.8)))
        elif i % 4 == 3:
            img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.85, 1.2))
        img.save(lib / f"copy{i:02}.jpg", quality=rng.randint(40, 90))
    mirrored = ImageOps.mirror(base)
    mirrored.save(lib / "selfie.jpg", quality=85)
    # The same JPEG bytes under a lying name, and a re-encode of it: one photo, one group.
    shutil.copyfile(PHOTOS / "formats/ukbench09380.jpeg", lib / "shop.jpg")
    shutil.copyfile(PHOTOS / "formats/ukbench09380.png", lib / "shop.png")
    shutil.copyfile(PHOTOS / "formats/ukbench09380.webp", lib / "shop.webp")
    with Engine(tmp_path / "data", device="cpu") as engine:
        index_now(engine, [str(lib)])
        groups = [g for g in find_groups(engine.searcher) if g.tier in ("exact", "duplicate")]
        rows = {m.path: engine.catalog.photo(m.path) for g in groups for m in g.members}
    clusters = [g for g in groups if any(Path(m.path).name == "original.jpg" for m in g.members)]
    assert len(clusters) == 1, [len(g.members) for g in groups]
    cluster = clusters[0]
    assert len(cluster.members) == 42
    assert all(m.placement is not None for m in cluster.members)
    keeper = str(lib / "original.jpg")
    selfie = explain.in_group(cluster, str(lib / "selfie.jpg"), keeper, rows)
    assert selfie.mirrored
    crop = explain.in_group(cluster, str(lib / "copy02.jpg"), keeper, rows)
    assert 0.55 <= crop.area_share <= 0.73  # 80 % of each side
    (shop,) = [g for g in groups if any(Path(m.path).name == "shop.jpg" for m in g.members)]
    assert shop.tier == "duplicate"
    assert {Path(m.path).name: m.exact for m in shop.members} == {"shop.jpg": True, "shop.png": True, "shop.webp": False}


def _jpeg_features(img: Image.Image, quality: int) -> verify.Features:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    out.seek(0)
    with Image.open(out) as im:
        return verify.from_bytes(verify.to_bytes(verify.features_of(im.convert("RGB"), im.size)))


def test_a_crop_of_one_shot_is_not_a_rescale_of_the_next_whichever_comes_first():
    # Two frames of one scene a moment apart: the top of one, cropped (45 % of the area), against the
    # other, shrunk. Judged on the shrunk photo's coarse grid the pixels blurred into agreement, so
    # the verdict depended on the order; on the crop's finer grid they differ either way round.
    with Image.open(OTHER / "boof_scene_0__image00.jpg") as im:
        first = im.convert("RGB")
    with Image.open(OTHER / "boof_scene_0__image01.jpg") as im:
        second = im.convert("RGB")
    w, h = first.size
    cw, ch = int(w * 0.447**0.5), int(h * 0.447**0.5)
    x, y = (w - cw) // 2, (h - ch) // 10
    crop = _jpeg_features(first.crop((x, y, x + cw, y + ch)), 87)
    small = _jpeg_features(second.resize((round(second.width * 0.616), round(second.height * 0.616)), Image.Resampling.LANCZOS), 85)
    assert not verify.decide(small, crop, RULE).same
    assert not verify.decide(crop, small, RULE).same

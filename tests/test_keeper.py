"""Keeper rules pick the copy a careful person would keep; protected folders are never offered."""

from __future__ import annotations

import pytest

from conftest import PHOTOS
from imgsim_desktop.core.keeper import KeeperRules, choose
from imgsim_desktop.storage.catalog import PhotoRow


def row(path, w=100, h=100, size=1000, taken=None, mtime=0):
    return PhotoRow(0, path, size, mtime, w, h, taken, None)


SMALL = row("/a/small.jpg", 640, 480, 90_000, "2020-01-01T10:00:00", 5)
BIG = row("/a/big.jpg", 4000, 3000, 3_000_000, "2021-06-01T10:00:00", 9)
HEIC = row("/b/orig.heic", 4000, 3000, 1_500_000, "2019-05-05T10:00:00", 1)
LARGEST = row("/c/huge.png", 4000, 3000, 9_000_000, None, 1_580_000_000 * 10**9)  # file date Jan 2020


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (["resolution", "size"], LARGEST),
        (["resolution", "oldest"], HEIC),
        (["size"], LARGEST),
        (["oldest"], HEIC),
        (["newest"], BIG),
        (["format", "resolution"], HEIC),
    ],
)
def test_rules_in_order(order, expected):
    keeper, remove = choose([SMALL, BIG, HEIC, LARGEST], KeeperRules(order=order))
    assert keeper is expected
    assert set(map(id, remove)) == {id(p) for p in [SMALL, BIG, HEIC, LARGEST] if p is not expected}


def test_date_taken_is_used_and_file_date_only_without_exif():
    copied_later = row("/x/a.jpg", taken=None, mtime=1_650_000_000 * 10**9)  # file written in 2022, no EXIF
    keeper, _ = choose([copied_later, SMALL], KeeperRules(order=["oldest"]))
    assert keeper is SMALL  # taken 2020
    older_file = row("/x/b.jpg", taken=None, mtime=1_500_000_000 * 10**9)  # 2017
    keeper, _ = choose([older_file, SMALL], KeeperRules(order=["oldest"]))
    assert keeper is older_file


def test_preferred_folder_wins_and_protected_folder_is_never_removed():
    keeper, remove = choose([SMALL, BIG, HEIC], KeeperRules(order=["folder", "resolution"], preferred_folders=["/a"]))
    assert keeper is BIG
    keeper, remove = choose([SMALL, BIG, HEIC], KeeperRules(order=["resolution", "size"], protected_folders=["/a"]))
    assert keeper is BIG and remove == [HEIC]  # /a/small.jpg is protected: kept though not the keeper
    keeper, remove = choose([SMALL, HEIC], KeeperRules(order=["size"], protected_folders=["/a/"]))
    assert keeper is SMALL and remove == [HEIC]  # the protected copy stays anyway: the other one can go


def test_unknown_rule_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown keeper rule.*biggest"):
        KeeperRules(order=["biggest"])


def test_format_rule_judges_the_bytes_not_the_name():
    """formats/ukbench09380.png is JPEG bytes: by its name it would outrank the real JPEG (and the WebP)."""

    def real(name, taken):
        path = PHOTOS / name
        return PhotoRow(0, str(path), path.stat().st_size, path.stat().st_mtime_ns, 640, 480, taken, None)

    jpeg = real("formats/ukbench09380.jpeg", "2021-01-01T10:00:00")
    lying_png = real("formats/ukbench09380.png", "2020-01-01T10:00:00")
    webp = real("formats/ukbench09380.webp", "2022-01-01T10:00:00")
    # Both JPEG by content: a tie on format, so the next rule decides, whichever way it points.
    assert choose([jpeg, lying_png], KeeperRules(order=["format", "newest"]))[0] is jpeg
    assert choose([jpeg, lying_png], KeeperRules(order=["format", "oldest"]))[0] is lying_png
    assert choose([lying_png, webp], KeeperRules(order=["format", "newest"]))[0] is lying_png  # a lossy WebP ranks below JPEG
    png = real("scenes/basketball1.png", None)  # a real PNG still outranks a JPEG
    assert choose([jpeg, png], KeeperRules(order=["format", "newest"]))[0] is png


def test_when_every_rule_ties_the_name_without_a_copy_mark_is_kept(tmp_path):
    data = (PHOTOS / "labelled" / "dog.jpg").read_bytes()
    names = ["dog copy.jpg", "Copy of dog.jpg", "dog (2).jpg", "dog - Copy.jpg", "dog.jpg"]
    for name in names:
        (tmp_path / name).write_bytes(data)  # byte-identical: resolution, size, format and dates all tie
    rows = [row(str(tmp_path / n), 1080, 1080, len(data)) for n in names]
    keeper, remove = choose(rows, KeeperRules())
    assert keeper.path.endswith("/dog.jpg") and len(remove) == 4  # not "Copy of dog.jpg", first by the alphabet


def _indexed_row(path) -> PhotoRow:
    """The row the indexer stores for ``path``: decoded and measured the indexer's way."""
    from imgsim_desktop.core import photo_quality
    from imgsim_desktop.core.decode import open_photo

    photo = open_photo(path, min_side=320)
    quality = photo_quality.measure(photo.image)
    st = path.stat()
    return PhotoRow(0, str(path), st.st_size, st.st_mtime_ns, photo.width, photo.height, photo.taken_at, photo.camera,
                    quality.sharpness, quality.clipped, photo_quality.to_text(photo.tags))  # fmt: skip


def test_a_stripped_copy_and_a_blurred_copy_are_never_the_keeper(tmp_path):
    """A messenger's copy (no metadata, re-encoded to more bytes), a blurred copy (metadata kept, even
    as a 'preferred' PNG) and a PNG re-save lose to the camera's original under the default rules."""
    from PIL import Image, ImageFilter

    photo = Image.open(PHOTOS / "labelled/pelican.jpg").convert("RGB").resize((960, 720))
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0132] = "Canon", "Canon EOS R6", "2023:08:14 17:32:05"
    exif.get_ifd(0x8825).update({1: "N", 2: (48.0, 51.0, 29.6), 3: "E", 4: (2.0, 17.0, 40.2)})
    blurred = photo.filter(ImageFilter.GaussianBlur(2.0))
    files = {
        "original.jpg": (photo, {"quality": 90, "exif": exif}),
        "IMG-20230814-WA0001.jpg": (photo, {"quality": 97}),
        "blurred.jpg": (blurred, {"quality": 95, "exif": exif}),
        "blurred.png": (blurred, {}),
        "resaved.png": (photo, {}),
    }
    for name, (image, options) in files.items():
        image.save(tmp_path / name, **options)
    rows = [_indexed_row(tmp_path / name) for name in files]
    assert rows[0].tags == "date,place,camera" and rows[1].tags == ""
    keeper, remove = choose(rows, KeeperRules())
    assert keeper.path.endswith("original.jpg") and len(remove) == 4
    # ...while the format rule alone (the old default's first rule) would keep the PNG re-save.
    assert choose(rows, KeeperRules(order=["format", "resolution", "size"]))[0].path.endswith(".png")


def test_sharpness_stands_aside_when_a_member_was_never_measured():
    sharp = PhotoRow(0, "/a/sharp.jpg", 1000, 0, 100, 100, None, None, 0.9, 0.0, "")
    unmeasured = PhotoRow(0, "/a/old-row.jpg", 2000, 0, 100, 100, None, None)  # indexed before catalog v9
    assert choose([sharp, unmeasured], KeeperRules(order=["sharpness", "size"]))[0] is unmeasured  # size decides
    blurred = PhotoRow(0, "/a/blurred.jpg", 2000, 0, 100, 100, None, None, 0.1, 0.0, "")
    assert choose([sharp, blurred], KeeperRules(order=["sharpness", "size"]))[0] is sharp


SHOT_RAW = row("/shoot/IMG_1.CR2", 4000, 3000, 25_000_000, "2024-05-01T10:00:00")
SHOT_JPEG = row("/shoot/IMG_1.JPG", 4000, 3000, 6_000_000, "2024-05-01T10:00:00")
BACKUP = row("/backup/IMG_1.JPG", 4000, 3000, 6_000_000, "2024-05-01T10:00:00")
PAIRS = {SHOT_RAW.path: SHOT_JPEG.path, SHOT_JPEG.path: SHOT_RAW.path}  # core.companions.partners of the group


@pytest.mark.parametrize(("rule", "keeper", "removed"), [
    ("both", SHOT_RAW, [BACKUP]),  # one shot: nothing of it is offered, only the other copy
    ("raw", SHOT_RAW, [BACKUP, SHOT_JPEG]),
    ("jpeg", SHOT_JPEG, [BACKUP, SHOT_RAW]),
])  # fmt: skip
def test_the_pair_rule_says_what_of_one_shot_stays(rule, keeper, removed):
    assert choose([BACKUP, SHOT_JPEG, SHOT_RAW], KeeperRules(pair_rule=rule), PAIRS) == (keeper, removed)


def test_a_jpeg_with_its_raw_beside_it_is_kept_over_its_copy():
    only_jpeg = {SHOT_JPEG.path: SHOT_RAW.path}  # the RAW is not a library photo: it is not in the group
    assert choose([BACKUP, SHOT_JPEG], KeeperRules(), only_jpeg) == (SHOT_JPEG, [BACKUP])
    assert choose([BACKUP, SHOT_JPEG], KeeperRules(), {}) == (BACKUP, [SHOT_JPEG])  # without it the path decides
    assert choose([BACKUP, SHOT_JPEG], KeeperRules(preferred_folders=["/backup"]), only_jpeg)[0] == BACKUP  # the user's folder first
    with pytest.raises(ValueError, match="RAW\\+JPEG"):
        KeeperRules(pair_rule="neither")


def test_a_lossy_webp_re_save_is_offered_and_a_lossless_one_ranks_as_png(tmp_path):
    """The usual web re-encode is a lossy WebP of a JPEG original: the JPEG stays. A lossless WebP
    (plain, or extended with EXIF ahead of its image) is told from its bytes and ranks with PNG."""
    from PIL import Image

    original = PHOTOS / "formats/ukbench09380.jpeg"
    image = Image.open(original)
    lossy, lossless, extended = tmp_path / "lossy.webp", tmp_path / "lossless.webp", tmp_path / "extended.webp"
    image.save(lossy, quality=80)
    image.save(lossless, lossless=True)
    exif = Image.Exif()
    exif[0x0110] = "a camera"
    image.save(extended, lossless=True, exif=exif.tobytes())

    def row(path, taken):
        return PhotoRow(0, str(path), path.stat().st_size, path.stat().st_mtime_ns, 640, 480, taken, None)

    jpeg = row(original, "2020-01-01T10:00:00")
    by_format = KeeperRules(order=["format", "oldest"])
    assert choose([jpeg, row(lossy, "2019-01-01T10:00:00")], by_format)[0] is jpeg
    for made in (lossless, extended):
        webp = row(made, "2021-01-01T10:00:00")
        assert choose([jpeg, webp], by_format)[0] is webp
        png = row(PHOTOS / "scenes/basketball1.png", "2019-01-01T10:00:00")
        assert choose([webp, png], by_format)[0] is png  # a tie on format: the older one

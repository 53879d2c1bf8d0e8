"""Duplicate tiers on real photos, "not duplicates" memory, unreadable files, candidate pairs."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from conftest import PHOTOS, copy_photos, rewind_catalog
from imgsim_desktop.core import neighbours, verify
from imgsim_desktop.core.decode import open_photo
from imgsim_desktop.core.duplicates import find_groups, pairs_to_verify, thresholds
from imgsim_desktop.core.engine import Engine
from imgsim_desktop.core.library_service import index_now
from imgsim_desktop.core.neighbours import neighbour_pairs
from imgsim_desktop.core.progress import Cancelled, Progress
from imgsim_desktop.core.search import AnnIndex
from imgsim_desktop.core.verifier import Verifier
from imgsim_desktop.storage.annoy_store import AnnoyStore
from imgsim_desktop.storage.catalog import SCHEMA_VERSION, Catalog
from imgsim_desktop.storage.feature_cache import FEATURE_CACHE, FeatureCache

# (The wallpapers' kde_* files of one group are byte-identical here, so crops are made by the test.)
PATH_COPIES = ["kde_Path__640x480.jpg", "path_crop.jpg", "path_small.png", "path_brighter.jpg"]
EDITED = ["scenes/ela_original.jpg", "scenes/ela_modified.jpg"]
# Same scene, another shot: similar at most, never duplicates.
OTHER_SHOTS = [("basketball1.png", "basketball2.png"), ("aloeL.jpg", "aloeR.jpg"), ("leuvenA.jpg", "leuvenB.jpg"), ("left.jpg", "right.jpg")]


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    root = tmp_path_factory.mktemp("dups")
    lib = root / "lib"
    copy_photos(lib, EDITED + [f"scenes/{n}" for pair in OTHER_SHOTS for n in pair] + ["labelled/dog.jpg"])
    make_copies(lib)
    with Engine(root / "data", device="cpu") as engine:
        assert index_now(engine, [str(lib)]).indexed == 15
    return root


def make_copies(lib: Path) -> None:
    """One photo, re-encoded three ways: cropped, shrunk to PNG, brightened and recompressed."""
    (original,) = copy_photos(lib, ["wallpapers/kde_Path__640x480.jpg"])
    with Image.open(original) as im:
        photo = im.convert("RGB")
    w, h = photo.size
    photo.crop((int(w * 0.12), int(h * 0.05), int(w * 0.92), int(h * 0.9))).save(lib / "path_crop.jpg", quality=80)
    photo.resize((w // 2, h // 2), Image.Resampling.LANCZOS).save(lib / "path_small.png")
    ImageEnhance.Brightness(photo).enhance(1.2).save(lib / "path_brighter.jpg", quality=50)


@pytest.fixture
def engine(library):
    with Engine(library / "data", device="cpu") as engine:
        yield engine
        for pair in engine.catalog.rejected_pairs():
            engine.catalog.unreject_pair(*pair)


def names(groups, tier):
    return [sorted(Path(m.path).name for m in g.members) for g in groups if g.tier == tier]


def test_crops_and_edits_are_duplicates_other_shots_are_not(engine):
    groups = find_groups(engine.searcher)
    dupes = names(groups, "duplicate")
    assert sorted(PATH_COPIES) in dupes
    # ela_modified is another crop of a larger photo (with a sticker pasted in): neither frame lies
    # inside the other, which is also what two neighbours of a panorama look like, so the
    # duplicate tier does not claim it; it stays a similar shot.
    assert not any("ela_modified.jpg" in g for g in dupes)
    for a, b in OTHER_SHOTS:
        assert not any(a in g and b in g for g in dupes), (a, b)
    assert all(len(g.members) >= 2 and g.members[0].score == 1.0 for g in groups)
    assert any(["basketball1.png", "basketball2.png"] == g for g in names(groups, "similar"))


def test_rejected_pair_never_returns(engine, library):
    lib = library / "lib"
    small, big = str(lib / "path_small.png"), str(lib / "kde_Path__640x480.jpg")
    engine.catalog.reject_pair(big, small)
    assert engine.catalog.rejected_pairs() == {frozenset((small, big))}
    for sensitivity in (0.0, 0.5, 1.0):
        groups = find_groups(engine.searcher, sensitivity)
        assert not any(small in paths and big in paths for paths in ({m.path for m in g.members} for g in groups))
    engine.catalog.unreject_pair(small, big)
    assert any({small, big} <= {m.path for m in g.members} for g in find_groups(engine.searcher))


def test_unreadable_file_is_reported_and_the_scan_goes_on(tmp_path, data_dir):
    lib = tmp_path / "lib"
    copy_photos(lib, EDITED)
    make_copies(lib)
    with Engine(data_dir, device="cpu") as engine:
        index_now(engine, [str(lib)])
        broken = lib / "path_crop.jpg"
        broken.write_bytes(broken.read_bytes()[:300])  # truncated after indexing
        errors = []
        groups = find_groups(engine.searcher, on_error=lambda path, reason: errors.append((path, reason)))
    assert [p for p, _ in errors] == [str(broken)] and "truncated" in errors[0][1]
    dupes = names(groups, "duplicate")
    assert ["kde_Path__640x480.jpg", "path_brighter.jpg", "path_small.png"] in dupes
    assert all(broken.name not in g for tier in ("duplicate", "similar") for g in names(groups, tier))


def test_scan_can_be_cancelled(engine):
    progress = Progress()
    progress.cancel()
    with pytest.raises(Cancelled):
        find_groups(engine.searcher, progress=progress)


def test_old_catalog_gains_rejected_pairs(tmp_path):
    path = tmp_path / "catalog.sqlite3"
    Catalog(path).close()
    rewind_catalog(path, 3, "DROP TABLE rejected_pairs")
    with Catalog(path) as catalog:
        catalog.reject_pair("/b.jpg", "/a.jpg")
        assert catalog.rejected_pairs() == {frozenset(("/a.jpg", "/b.jpg"))}
    assert sqlite3.connect(path).execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)


@pytest.mark.parametrize("path", ["all_pairs", "cells"])
def test_candidate_pairs_from_annoy_and_delta_match_brute_force(tmp_path, monkeypatch, path):
    if path == "cells":  # the path libraries past ALL_PAIRS_LIMIT take: k-means cells, SPILL each
        monkeypatch.setattr(neighbours, "ALL_PAIRS_LIMIT", 500)
    rng = np.random.default_rng(0)
    dim, n = 32, 3000
    centres = rng.standard_normal((300, dim)).astype(np.float32)
    vecs = centres[rng.integers(300, size=n)] + 0.25 * rng.standard_normal((n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    ids = np.arange(100, 100 + n, dtype=np.int64)
    indexed = 2800  # the rest is the exact delta; a few indexed ids are stale (deleted since)
    store = AnnoyStore(tmp_path, "m", dim)
    store.build([(ids[:indexed], vecs[:indexed])])
    stale = set(ids[:50].tolist())
    loaded = store.load()
    assert np.array_equal(loaded.vectors(), vecs[:indexed])  # read from the Annoy file, as Annoy stores them
    ann = AnnIndex(loaded, ids[indexed:], vecs[indexed:], stale)
    a, b, cos = neighbour_pairs(ann, 4, 0.9, Progress())
    found = set(zip(a.tolist(), b.tolist()))
    live = np.array([i not in stale for i in ids.tolist()])
    scores = vecs[live] @ vecs[live].T
    np.fill_diagonal(scores, -1)
    best = np.argmax(scores, axis=1)  # every live vector's single nearest neighbour, when close enough
    live_ids = ids[live]
    truth = {tuple(sorted((int(live_ids[i]), int(live_ids[j])))) for i, j in enumerate(best) if scores[i, j] >= 0.9}
    assert len(truth) > 500
    assert len(truth & found) / len(truth) >= 0.99
    assert all(x < y and x not in stale and y not in stale for x, y in found) and np.all(cos >= 0.9)
    assert np.allclose(cos, [float(vecs[x - 100] @ vecs[y - 100]) for x, y in zip(a.tolist(), b.tolist())], atol=1e-4)


def test_only_each_photos_most_alike_candidates_are_verified():
    # A burst of four frames, all alike, plus one pair below the floor.
    a = np.array([0, 2, 0, 1, 0, 1, 4])
    b = np.array([1, 3, 2, 3, 3, 2, 5])
    cos = np.array([0.96, 0.95, 0.94, 0.93, 0.92, 0.91, 0.60], np.float32)
    assert pairs_to_verify(a, b, cos, floor=0.7, per_photo=1) == [(0, 1), (2, 3)]
    # Each frame's two best: 0-3 and 1-2 are nobody's top two, and are never checked.
    assert pairs_to_verify(a, b, cos, floor=0.7, per_photo=2) == [(0, 1), (2, 3), (0, 2), (1, 3)]
    assert pairs_to_verify(a, b, cos, floor=0.5, per_photo=9) == list(zip(a.tolist(), b.tolist()))


def test_first_scan_after_indexing_decodes_nothing_and_reports_progress(tmp_path, data_dir, monkeypatch):
    lib = tmp_path / "lib"
    copy_photos(lib, EDITED + ["scenes/aloeL.jpg", "scenes/aloeR.jpg"])
    make_copies(lib)
    with Engine(data_dir, device="cpu") as engine:
        index_now(engine, [str(lib)])
        assert len(list((data_dir / FEATURE_CACHE).rglob("*.bin"))) == len(list(lib.iterdir()))

        def no_decoding(path):
            raise AssertionError(f"decoded {path} again")

        monkeypatch.setattr("imgsim_desktop.core.verifier.features", no_decoding)  # the indexer made every photo's features
        reports = []
        first = find_groups(engine.searcher, progress=Progress(lambda done, total, what: reports.append((done, total, what))))
        assert any(g.tier == "duplicate" for g in first)
        for stage in ("finding candidate pairs", "checking possible duplicates"):
            done, total, _ = [r for r in reports if r[2] == stage][-1]
            assert done == total > 0, stage
        assert find_groups(engine.searcher) == first
        # An edited photo is a new key: decoded again, never served from the old entry.
        edited = lib / "path_brighter.jpg"
        os.utime(edited, ns=(edited.stat().st_atime_ns, edited.stat().st_mtime_ns + 10**9))
        with pytest.raises(AssertionError, match="path_brighter"):
            find_groups(engine.searcher)


def test_features_made_while_indexing_are_the_scans_own(tmp_path):
    """Same bytes whether the indexer made them from its decode or a scan from the file: otherwise
    a borderline pair could be judged one way after indexing and another after an edit."""
    big = tmp_path / "camera.jpg"  # large enough that the reduced (DCT-scaled) decode kicks in
    with Image.open(PHOTOS / "scenes/aloeL.jpg") as im:
        im.convert("RGB").resize((4000, 3000)).save(big, quality=90)
    files = [big, *copy_photos(tmp_path, ["aib/3.jpg", "scenes/ela_original.jpg"])]
    make_copies(tmp_path)  # PNG and small JPEG copies too
    files += [tmp_path / "path_small.png", tmp_path / "kde_Path__640x480.jpg"]
    for path in files:
        photo = open_photo(path, min_side=verify.DECODE_MIN_SIDE)
        assert verify.stored_form(photo.image, (photo.width, photo.height)) == verify.to_bytes(verify.features(path)), path.name


def test_cached_features_give_the_same_evidence(tmp_path):
    make_copies(tmp_path)
    a, b = tmp_path / "kde_Path__640x480.jpg", tmp_path / "path_crop.jpg"
    fa, fb = verify.features(a), verify.features(b)
    again = [verify.from_bytes(verify.to_bytes(f)) for f in (fa, fb)]
    assert np.abs(again[0].points - fa.points).max() <= 1 / 32 and np.array_equal(again[0].descriptors, fa.descriptors)
    cached, fresh = verify.compare(*again), verify.compare(fa, fb)
    rule = thresholds(0.5).pair
    assert cached.same_photo(rule) and fresh.same_photo(rule)
    assert abs(cached.aligned - fresh.aligned) <= 0.02 * fresh.aligned
    cache = FeatureCache(tmp_path / "cache")
    cache.put(str(a), 10, 20, b"v1", b"data")
    assert cache.get(str(a), 10, 20, b"v1") == b"data"
    assert cache.get(str(a), 10, 21, b"v1") is None and cache.get(str(a), 10, 20, b"v2") is None


def test_a_damaged_or_swapped_feature_cache_entry_is_made_again_never_trusted(tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    cache.put("/p/left.jpg", 10, 20, b"v1", b"left features")
    cache.put("/p/right.jpg", 11, 21, b"v1", b"right features")
    left, right = cache._file("/p/left.jpg", 10, 20, b"v1"), cache._file("/p/right.jpg", 11, 21, b"v1")
    right.write_bytes(left.read_bytes())  # one photo's entry under the other's name
    assert cache.get("/p/right.jpg", 11, 21, b"v1") is None and not right.exists()
    damaged = bytearray(left.read_bytes())
    damaged[-1] ^= 1
    left.write_bytes(bytes(damaged))
    assert cache.get("/p/left.jpg", 10, 20, b"v1") is None


def test_quick_stage_settles_only_clear_cases(tmp_path):
    make_copies(tmp_path)
    names = ["scenes/aloeL.jpg", "scenes/aloeR.jpg", "scenes/rubberwhale1.png", "scenes/rubberwhale2.png", "scenes/apple.jpg", "scenes/orange.jpg"]
    stereo_l, stereo_r, frame1, frame2, apple, orange = (verify.features(p) for p in copy_photos(tmp_path, names))
    copy = [verify.features(tmp_path / n) for n in ("kde_Path__640x480.jpg", "path_small.png")]
    rule = thresholds(0.5).pair

    def verdict(x, y):
        v = verify.decide(x, y, rule)
        return v.same, v.quick

    assert verdict(*copy) == (True, True)  # settled by A's strongest keypoints alone
    assert verdict(stereo_l, stereo_r) == (False, True)  # many points clearly displaced
    # Consecutive video frames: barely moved, so only the full check may say no. Nor does having
    # little in common with the strongest keypoints settle anything (an off-centre crop has that too).
    assert verdict(frame1, frame2) == (False, False)
    assert verdict(apple, orange) == (False, False)
    with Image.open(PHOTOS / "wallpapers/kde_Path__1920x1080.jpg") as im:
        photo = im.convert("RGB")
    w, h = photo.size
    photo.crop((int(w * 0.4), int(h * 0.4), w, h)).save(tmp_path / "corner.jpg", quality=85)  # 60 % bottom-right
    original, corner = verify.features(PHOTOS / "wallpapers/kde_Path__1920x1080.jpg"), verify.features(tmp_path / "corner.jpg")
    for x, y in ((original, corner), (corner, original)):  # no early "no" where the full check says yes
        assert verify.decide(x, y, rule).same == verify.compare(x, y).same_photo(rule)
    assert verify.decide(corner, original, rule).same
    for pair in ((stereo_l, stereo_r), (apple, orange), (frame1, frame2)):
        assert verify.compare(*pair).same_photo(rule) is False  # the full check agrees with each early "no"


def test_first_and_repeat_scans_judge_a_pair_on_the_same_features(tmp_path):
    """A cold cache must not decide a borderline pair differently from a warm one."""
    a, b = copy_photos(tmp_path / "lib", EDITED)
    cold = Verifier(disk=FeatureCache(tmp_path / "cache"))
    warm = Verifier(disk=FeatureCache(tmp_path / "cache"))
    first = cold.compare(str(a), str(b))
    again = warm.compare(str(a), str(b))  # a new scan: features come from the disk cache
    assert (first.aligned, first.matches) == (again.aligned, again.matches)
    assert np.array_equal(cold.features(str(a)).points, warm.features(str(a)).points)


def test_feature_cache_stays_under_its_cap_dropping_the_least_recently_used(tmp_path):
    cache = FeatureCache(tmp_path / "cache", cap_bytes=0)
    keys = [(f"/p/{i}.jpg", 100 + i, 7, b"v1") for i in range(5)]
    for i, key in enumerate(keys):
        cache.put(*key, b"x" * 1000)
        os.utime(cache._file(*key), (1000 + i, 1000 + i))  # written in this order, long ago
    cache.cap_bytes = 3 * 1020 + 100  # room for three entries (1,000 bytes and a 20-byte seal each)
    assert cache.get(*keys[0]) == b"x" * 1000  # a hit: the oldest entry becomes the newest used
    assert cache.prune() == 2 * 1020
    assert cache.get(*keys[0]) is not None and cache.get(*keys[1]) is None and cache.get(*keys[2]) is None
    assert all(cache.get(*k) is not None for k in keys[3:])


def test_byte_identical_files_with_different_extensions_are_one_exact_group(tmp_path, data_dir):
    lib = tmp_path / "lib"
    lib.mkdir()
    names = ["a.jpg", "b.png", "c.bmp", "d.svg"]  # the same JPEG bytes, mostly behind lying names
    for name in names:
        shutil.copyfile(PHOTOS / "formats" / "ukbench09380.jpeg", lib / name)
    with Engine(data_dir, device="cpu") as engine:
        assert index_now(engine, [str(lib)]).indexed == 4
        groups = find_groups(engine.searcher)
    assert [(g.tier, sorted(Path(m.path).name for m in g.members)) for g in groups] == [("exact", names)]


def test_similar_shots_taken_days_apart_are_not_one_moment(engine, library):
    """basketball1/2 are consecutive frames: similar shots, unless their dates say otherwise."""
    frames = [str(library / "lib" / n) for n in OTHER_SHOTS[0]]
    db = sqlite3.connect(library / "data" / "catalog.sqlite3")

    def taken(first: str, second: str) -> list[list[str]]:
        db.executemany("UPDATE files SET taken_at = ? WHERE path = ?", [(first, frames[0]), (second, frames[1])])
        db.commit()
        return names(find_groups(engine.searcher), "similar")

    try:
        assert list(OTHER_SHOTS[0]) in taken("2020-06-01T12:00:00", "2020-06-01T12:00:02")
        assert list(OTHER_SHOTS[0]) not in taken("2020-06-01T12:00:00", "2020-06-02T12:00:00")
    finally:
        taken(None, None)
        db.close()


def test_frames_of_one_camera_sequence_are_not_checked_and_a_copy_keeping_the_time_still_is(tmp_path, data_dir, monkeypatch):
    """scenes/leuvenA and leuvenB: one iPhone, 14 s apart, with the shutter's sub-second: two
    exposures, which the scan tells from their capture times without opening them. A resized copy
    of leuvenA that kept its EXIF has the same moment and is still checked and found."""
    lib = tmp_path / "lib"
    first, second = copy_photos(lib, ["scenes/leuvenA.jpg", "scenes/leuvenB.jpg"])
    with Image.open(first) as im:
        exif = im.getexif()
        im.resize((im.width * 3 // 4, im.height * 3 // 4), Image.Resampling.LANCZOS).save(lib / "leuvenA small.jpg", quality=85, exif=exif)
    assert open_photo(first).taken_at == "2019-04-14T13:46:10.830"
    checked: list[set[str]] = []
    decide = Verifier.decide

    def spy(self, path_a, path_b, limits):
        checked.append({Path(path_a).name, Path(path_b).name})
        return decide(self, path_a, path_b, limits)

    monkeypatch.setattr(Verifier, "decide", spy)
    with Engine(data_dir, device="cpu") as engine:
        index_now(engine, [str(lib)])
        groups = find_groups(engine.searcher, tiers=("exact", "duplicate"))
    assert [sorted(Path(m.path).name for m in g.members) for g in groups] == [["leuvenA small.jpg", "leuvenA.jpg"]]
    assert {"leuvenA.jpg", "leuvenA small.jpg"} in checked
    assert {"leuvenA.jpg", "leuvenB.jpg"} not in checked and {"leuvenA small.jpg", "leuvenB.jpg"} not in checked

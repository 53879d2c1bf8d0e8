"""Similar shots are one moment: no chaining through intermediaries, dates and cameras respected."""

from __future__ import annotations

import numpy as np

from imgsim_desktop.core.similar_shots import MOMENT_SECONDS, group_similar, moments, seconds
from imgsim_desktop.storage.catalog import Catalog, Embedded

T = 0.8  # the threshold in these tests


def pairs(*triples):
    """Candidate pairs as find_groups hands them over: arrays sorted most alike first."""
    triples = sorted(triples, key=lambda t: -t[2])
    a, b, cos = zip(*triples)
    return np.array(a), np.array(b), np.array(cos, np.float32)


def group(*triples, when=None, camera=None, apart=None, excluded=()):
    return group_similar(*pairs(*triples), T, when or {}, camera or {}, apart or {}, set(excluded))


def test_a_chain_of_look_alikes_is_not_one_group():
    # 0~1~2~3~4 each like the next only: the old union-find made one group of five.
    chain = [(0, 1, 0.95), (1, 2, 0.94), (2, 3, 0.93), (3, 4, 0.92)]
    assert group(*chain) == [[0, 1], [2, 3]]


def test_a_photo_joins_only_if_alike_to_every_member():
    burst = [(0, 1, 0.97), (0, 2, 0.96), (1, 2, 0.95)]  # three frames, all alike
    assert group(*burst) == [[0, 1, 2]]
    # 3 looks like 0 and 1 (more than they look like 2!) but not like 2: it stays out.
    assert group(*burst, (3, 0, 0.99), (3, 1, 0.98)) == [[0, 1, 3]]  # greedy by cosine: 0-3 first, then 1, not 2
    assert group(*burst, (3, 0, 0.90), (3, 1, 0.90)) == [[0, 1, 2]]  # the burst formed first; 3 misses 2


def test_pairs_below_the_threshold_rejected_or_excluded_never_group():
    assert group((0, 1, 0.79)) == []
    assert group((0, 1, 0.9), apart={0: {1}, 1: {0}}) == []
    assert group((0, 1, 0.9), (1, 2, 0.9), (0, 2, 0.9), excluded={1}) == [[0, 2]]
    # A rejected pair inside a would-be group keeps the second photo out of it.
    assert group((0, 1, 0.95), (0, 2, 0.9), (1, 2, 0.9), apart={1: {2}, 2: {1}}) == [[0, 1]]


def test_two_groups_merge_only_when_every_cross_pair_is_alike():
    square = [(0, 1, 0.99), (2, 3, 0.98), (0, 2, 0.9), (0, 3, 0.9), (1, 2, 0.9), (1, 3, 0.9)]
    assert group(*square) == [[0, 1, 2, 3]]
    assert group(*square[:-1]) == [[0, 1], [2, 3]]  # 1-3 missing: two groups stay two


def test_dated_photos_share_a_group_only_within_minutes():
    burst = [(0, 1, 0.99), (0, 2, 0.98), (1, 2, 0.97), (0, 3, 0.96), (1, 3, 0.96), (2, 3, 0.96)]
    day = 86_400
    # Same view, same framing: two frames one afternoon, two a year later.
    when = {0: 1000.0, 1: 1003.0, 2: 1000.0 + 365 * day, 3: 1005.0 + 365 * day}
    assert group(*burst, when=when) == [[0, 1], [2, 3]]
    near = {0: 0.0, 1: MOMENT_SECONDS - 1.0, 2: None, 3: None}  # undated photos: similarity alone decides
    assert group(*burst, when=near) == [[0, 1, 2, 3]]
    assert group((0, 1, 0.99), when={0: 0.0, 1: MOMENT_SECONDS + 1.0}) == []


def test_every_dated_pair_in_a_group_is_within_the_window():
    # 0 and 2 are each within the window of 1 but not of each other: 1 goes with one, not both.
    triangle = [(0, 1, 0.99), (1, 2, 0.98), (0, 2, 0.97)]
    when = {0: 0.0, 1: 0.6 * MOMENT_SECONDS, 2: 1.2 * MOMENT_SECONDS}
    assert group(*triangle, when=when) == [[0, 1]]


def test_two_known_cameras_must_agree():
    same_time = {0: 0.0, 1: 2.0, 2: 4.0}
    pair = [(0, 1, 0.99), (0, 2, 0.98), (1, 2, 0.97)]
    assert group(*pair, when=same_time, camera={0: "Canon EOS R5", 1: "Apple iPhone 13", 2: "Canon EOS R5"}) == [[0, 2]]
    assert group(*pair, when=same_time, camera={0: "Canon EOS R5", 1: None, 2: "canon eos r5 "}) == [[0, 1, 2]]


def test_seconds_compare_local_times_and_tolerate_bad_dates():
    assert seconds("2021-03-28T01:59:00") is not None
    # Across a DST change (Europe, 28 March 2021, 02:00 -> 03:00) wall-clock minutes stay minutes.
    assert seconds("2021-03-28T03:01:00") - seconds("2021-03-28T01:59:00") == 62 * 60
    assert seconds("2021-03-28T01:59:00+01:00") == seconds("2021-03-28T00:59:00")
    assert seconds(None) is None and seconds("") is None and seconds("0000:00:00") is None
    assert moments({7: ("2020-01-01T00:00:10", "Nikon D750"), 8: (None, None)}) == ({7: seconds("2020-01-01T00:00:10"), 8: None}, {7: "Nikon D750", 8: None})


def test_catalog_gives_date_taken_and_camera_per_vector(tmp_path):
    with Catalog(tmp_path / "c.sqlite3") as catalog:
        vec = np.ones(4, np.float32)
        catalog.store_batch("m", [Embedded("/p/a.jpg", 1, 1, vec, taken_at="2020-05-01T10:00:00", camera="Nikon D750"),
                                  Embedded("/p/b.jpg", 2, 1, vec)])  # fmt: skip
        ids = catalog.vector_ids_for_paths("m", ["/p/a.jpg", "/p/b.jpg"])
        assert catalog.taken_for_vectors(ids.values()) == {ids["/p/a.jpg"]: ("2020-05-01T10:00:00", "Nikon D750"), ids["/p/b.jpg"]: (None, None)}


def test_frames_apart_needs_the_shutters_sub_second_one_camera_and_under_a_minute():
    from imgsim_desktop.core.similar_shots import frames_apart

    assert frames_apart("2019-04-14T13:46:10.830", "iPhone 6", "2019-04-14T13:45:56.100", "iphone 6")
    assert frames_apart("2019-04-14T13:46:10.830", "iPhone 6", "2019-04-14T13:46:10.930", "iPhone 6")  # 10 frames a second
    assert not frames_apart("2019-04-14T13:46:10.830", "iPhone 6", "2019-04-14T13:46:10.830", "iPhone 6")  # one moment: a copy
    assert not frames_apart("2019-04-14T13:46:10", "iPhone 6", "2019-04-14T13:45:56", "iPhone 6")  # to the second: maybe the file's DateTime
    assert not frames_apart("2019-04-14T13:46:10.830", "iPhone 6", "2019-04-14T13:45:56.100", "Canon EOS R5")
    assert not frames_apart("2019-04-14T13:46:10.830", None, "2019-04-14T13:45:56.100", None)
    assert not frames_apart("2019-04-14T14:46:10.830", "iPhone 6", "2019-04-14T13:46:10.830", "iPhone 6")  # an hour: a time-zone fix

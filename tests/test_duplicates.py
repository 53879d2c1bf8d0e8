"""Duplicate tiers on real photos, "not duplicates" memory, unreadable files, candidate pairs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from conftest import copy_photos
from imgsim_desktop.core.duplicates import find_groups
from imgsim_desktop.core.engine import Engine
from imgsim_desktop.core.neighbours import neighbour_pairs
from imgsim_desktop.core.progress import Cancelled, Progress
from imgsim_desktop.core.search import AnnIndex
from imgsim_desktop.storage.annoy_store import AnnoyStore
from imgsim_desktop.storage.catalog import Catalog

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
        assert engine.index([str(lib)]).indexed == 15
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
    assert ["ela_modified.jpg", "ela_original.jpg"] in dupes  # cropped, with an object pasted in
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
        engine.index([str(lib)])
        broken = lib / "path_crop.jpg"
        broken.write_bytes(broken.read_bytes()[:300])  # truncated after indexing
        errors = []
        groups = find_groups(engine.searcher, on_error=lambda path, reason: errors.append((path, reason)))
    assert [p for p, _ in errors] == [str(broken)] and "truncated" in errors[0][1]
    dupes = names(groups, "duplicate")
    assert ["kde_Path__640x480.jpg", "path_brighter.jpg", "path_small.png"] in dupes
    assert ["ela_modified.jpg", "ela_original.jpg"] in dupes
    assert all(broken.name not in g for tier in ("duplicate", "similar") for g in names(groups, tier))


def test_scan_can_be_cancelled(engine):
    progress = Progress()
    progress.cancel()
    with pytest.raises(Cancelled):
        find_groups(engine.searcher, progress=progress)


def test_old_catalog_gains_rejected_pairs(tmp_path):
    path = tmp_path / "catalog.sqlite3"
    Catalog(path).close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE rejected_pairs")
    db.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with Catalog(path) as catalog:
        catalog.reject_pair("/b.jpg", "/a.jpg")
        assert catalog.rejected_pairs() == {frozenset(("/a.jpg", "/b.jpg"))}
    assert sqlite3.connect(path).execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("4",)


def test_candidate_pairs_from_annoy_and_delta_match_brute_force(tmp_path):
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
    ann = AnnIndex(store.load(), ids[indexed:], vecs[indexed:], stale)
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

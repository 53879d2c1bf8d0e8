"""Catalog v5: fingerprints, the v4 -> v5 upgrade, and relinking moved/copied content without decoding."""

from __future__ import annotations

import os
import shutil
import sqlite3

import numpy as np

from conftest import PHOTOS, rewind_catalog
from imgsim_desktop.core.fingerprint import WHOLE_LIMIT, fingerprint
from imgsim_desktop.core.relink import relink_known_content
from imgsim_desktop.core.scanner import FileStat
from imgsim_desktop.storage.catalog import SCHEMA_VERSION, Catalog, Embedded


def stat_of(path) -> FileStat:
    st = os.stat(path)
    return FileStat(str(path), st.st_size, st.st_mtime_ns)


def test_fingerprint_follows_content_not_name_or_time(tmp_path):
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    shutil.copyfile(PHOTOS / "aib/1.jpg", a)
    shutil.copyfile(PHOTOS / "aib/1.jpg", b)
    os.utime(b, ns=(1, 1))
    assert fingerprint(a) == fingerprint(b)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(WHOLE_LIMIT * 3))
    before = fingerprint(big)
    with open(big, "r+b") as fh:  # one byte changed inside a sampled region of a large file
        fh.seek(WHOLE_LIMIT * 3 - 10)
        fh.write(b"\x00" if fh.read(1) != b"\x00" else b"\x01")
    assert fingerprint(big) != before


def test_v4_catalog_gains_fingerprints_and_keeps_its_rows(tmp_path):
    path = tmp_path / "catalog.sqlite3"
    with Catalog(path) as catalog:
        catalog.store_batch("m", [Embedded("/p/a.jpg", 10, 20, np.ones(4, np.float32))])
    rewind_catalog(path, 4, "ALTER TABLE files DROP COLUMN fingerprint")
    with Catalog(path) as catalog:
        catalog.set_fingerprints([("/p/a.jpg", 10, 20, "abc")])
        assert [r.fingerprint for r in catalog.files_with_sizes([10])] == ["abc"]
        assert catalog.integrity_ok()
    assert sqlite3.connect(path).execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)


def test_moves_keep_the_row_copies_get_their_own_and_legacy_rows_match_by_mtime(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    for name in ("a", "b", "c"):
        shutil.copyfile(PHOTOS / f"aib/{ord(name)}.jpg", lib / f"{name}.jpg")
    with Catalog(tmp_path / "catalog.sqlite3") as catalog:
        files = [stat_of(lib / f"{n}.jpg") for n in "abc"]
        catalog.store_batch("m", [Embedded(f.path, f.size, f.mtime_ns, np.full(4, i, np.float32)) for i, f in enumerate(files)])
        catalog.set_fingerprints((f.path, f.size, f.mtime_ns, fingerprint(f.path)) for f in files[:2])  # c: a v4 row
        ids = catalog.vector_ids_for_paths("m", [f.path for f in files])
        os.rename(lib / "a.jpg", lib / "a-moved.jpg")
        shutil.copyfile(lib / "b.jpg", lib / "b-copy.jpg")
        os.rename(lib / "c.jpg", lib / "c-moved.jpg")  # rename keeps mtime: enough for a row without fingerprint
        shutil.copyfile(PHOTOS / "aib/90.jpg", lib / "new.jpg")
        todo = [stat_of(lib / n) for n in ("a-moved.jpg", "b-copy.jpg", "c-moved.jpg", "new.jpg")]
        out = relink_known_content(catalog, "m", todo, [str(lib / "a.jpg"), str(lib / "c.jpg")])
        assert (out.moved, out.copied) == (2, 1)
        assert [f.path for f in out.todo] == [str(lib / "new.jpg")] and out.gone == []
        now = catalog.vector_ids_for_paths("m", [str(lib / n) for n in ("a-moved.jpg", "b.jpg", "b-copy.jpg", "c-moved.jpg")])
        assert now[str(lib / "a-moved.jpg")] == ids[files[0].path] and now[str(lib / "c-moved.jpg")] == ids[files[2].path]
        assert now[str(lib / "b-copy.jpg")] != now[str(lib / "b.jpg")]  # a copy has its own vector id...
        vectors = dict(catalog.vector_for_path("m", str(lib / n))[:2] for n in ("b.jpg", "b-copy.jpg"))
        assert len(vectors) == 2 and all(np.array_equal(v, np.full(4, 1, np.float32)) for v in vectors.values())  # ...with the same vector


def test_same_size_different_content_is_not_relinked(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    data = (PHOTOS / "aib/5.jpg").read_bytes()
    (lib / "a.jpg").write_bytes(data)
    with Catalog(tmp_path / "catalog.sqlite3") as catalog:
        f = stat_of(lib / "a.jpg")
        catalog.store_batch("m", [Embedded(f.path, f.size, f.mtime_ns, np.ones(4, np.float32))])
        catalog.set_fingerprints([(f.path, f.size, f.mtime_ns, fingerprint(f.path))])
        (lib / "a.jpg").unlink()
        (lib / "b.jpg").write_bytes(data[:-3] + b"xyz")  # same size, other bytes
        os.utime(lib / "b.jpg", ns=(f.mtime_ns, f.mtime_ns))  # even the same mtime
        out = relink_known_content(catalog, "m", [stat_of(lib / "b.jpg")], [f.path])
        assert (out.moved, out.copied, out.gone) == (0, 0, [f.path])

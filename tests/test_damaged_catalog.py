"""A damaged or emptied catalog is never taken for a new, empty library: it is refused with a clear
message, and `imgsim restore-catalog` brings back the folders and the cleanup history from the
backup made daily and after each cleanup."""

from __future__ import annotations

import json

import pytest

from conftest import copy_photos
from imgsim_desktop.cli import main
from imgsim_desktop.storage.catalog import Catalog, CatalogError, backup_path


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def library_with_history(tmp_path, data_dir, capsys):
    lib = tmp_path / "lib"
    [dog] = copy_photos(lib, ["labelled/dog.jpg"])
    (lib / "dog copy.jpg").write_bytes(dog.read_bytes())
    copy_photos(lib, ["labelled/cat.jpg"])
    assert run(capsys, "index", str(lib))[0] == 0
    code, out, _ = run(capsys, "duplicates", "--json", "--apply", "move", str(tmp_path / "aside"))
    assert code == 0 and json.loads(out)["applied"]["done"]
    assert backup_path(data_dir / "catalog.sqlite3").exists()  # written after the cleanup
    return lib, json.loads(out)["applied"]["batch"]


def test_an_emptied_catalog_is_refused_not_started_afresh(library_with_history, data_dir, capsys):
    catalog = data_dir / "catalog.sqlite3"
    catalog.write_bytes(b"")
    for extra in ("-wal", "-shm"):
        (data_dir / f"catalog.sqlite3{extra}").unlink(missing_ok=True)
    code, _, err = run(capsys, "status")
    assert code == 2 and "is empty" in err and "restore-catalog" in err
    assert catalog.read_bytes() == b""  # nothing was changed
    with pytest.raises(CatalogError):
        Catalog(catalog)


def test_restore_brings_back_folders_and_history(library_with_history, data_dir, capsys):
    lib, batch = library_with_history
    catalog = data_dir / "catalog.sqlite3"
    with open(catalog, "r+b") as fh:
        fh.write(b"scribbled over by another program")
    code, _, err = run(capsys, "history")
    assert code == 2 and "not a catalog" in err
    code, out, _ = run(capsys, "restore-catalog")
    assert code == 0 and "restored 1 folder(s)" in out
    assert list(data_dir.glob("catalog.sqlite3.damaged-*"))  # the damaged one is kept
    code, out, _ = run(capsys, "history")
    assert code == 0 and batch in out
    code, out, _ = run(capsys, "index", str(lib), "--json")
    assert code == 0 and json.loads(out)["indexed"] == 2  # embedded again
    code, out, _ = run(capsys, "undo", batch)
    assert code == 0 and (lib / "dog copy.jpg").exists()


def test_scribbled_pages_end_in_one_clear_line(library_with_history, data_dir, capsys):
    catalog = data_dir / "catalog.sqlite3"
    with Catalog(catalog) as c:  # everything in the main file, then its pages damaged past the header
        c._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(catalog.read_bytes())
    page = 4096
    for start in range(page, len(data), page):
        data[start + 8 : start + 600] = b"\xa5" * 592
    catalog.write_bytes(bytes(data))
    code, _, err = run(capsys, "duplicates")
    assert code == 2 and "is damaged" in err and "restore-catalog" in err and "Traceback" not in err


def test_a_full_disk_is_one_line_saying_what_can_go(tmp_path, data_dir, capsys, monkeypatch):
    import sqlite3

    from imgsim_desktop.storage.catalog import Catalog as _Catalog

    lib = tmp_path / "lib"
    copy_photos(lib, ["labelled/dog.jpg"])
    assert run(capsys, "index", str(lib))[0] == 0
    copy_photos(lib, ["labelled/cat.jpg"])

    def full(*_a, **_k):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(_Catalog, "store_batch", full)
    code, _, err = run(capsys, "index", str(lib))
    assert code == 2 and "is full" in err and "MB free" in err and "verify-features" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_caches_stop_writing_before_the_disk_is_full(tmp_path, monkeypatch):
    from imgsim_desktop.storage import disk_cache
    from imgsim_desktop.storage.feature_cache import FeatureCache

    cache = FeatureCache(tmp_path / "cache")
    monkeypatch.setattr(disk_cache, "RESERVE_BYTES", 1 << 62)  # as if the disk had less than the reserve left
    disk_cache._room.clear()
    cache.put("/p/a.jpg", 1, 2, b"v1", b"features")
    assert cache.get("/p/a.jpg", 1, 2, b"v1") is None and not any((tmp_path / "cache").rglob("*.bin"))
    monkeypatch.setattr(disk_cache, "RESERVE_BYTES", 0)
    disk_cache._room.clear()
    cache.put("/p/a.jpg", 1, 2, b"v1", b"features")
    assert cache.get("/p/a.jpg", 1, 2, b"v1") == b"features"


def test_a_catalog_lost_the_day_its_folders_were_added_restores_them(tmp_path, data_dir, capsys):
    """The daily backup is taken when the library opens; folders added, excluded or "not
    duplicates" chosen after that are backed up as they change, not a day later."""
    lib, other = tmp_path / "lib", tmp_path / "other"
    copy_photos(lib, ["labelled/dog.jpg", "labelled/cat.jpg"])
    copy_photos(lib / "private", ["labelled/pelican.jpg"])
    copy_photos(other, ["aib/5.jpg"])
    assert run(capsys, "index", str(lib))[0] == 0  # the first open backed up an empty catalog
    assert run(capsys, "index", str(other))[0] == 0
    with Catalog(data_dir / "catalog.sqlite3") as c:
        c.exclude(str(lib / "private"))
        c.reject_pair(str(lib / "dog.jpg"), str(lib / "cat.jpg"))
    catalog = data_dir / "catalog.sqlite3"
    catalog.write_bytes(b"")
    for extra in ("-wal", "-shm"):
        (data_dir / f"catalog.sqlite3{extra}").unlink(missing_ok=True)
    code, out, _ = run(capsys, "restore-catalog")
    assert code == 0 and "restored 2 folder(s)" in out
    with Catalog(catalog) as c:
        assert c.roots() == sorted([str(lib), str(other)]) and c.excluded() == [str(lib / "private")]
        assert c.rejected_pairs() == {frozenset([str(lib / "dog.jpg"), str(lib / "cat.jpg")])}


def test_a_library_on_a_read_only_disk_is_searched_and_refuses_writes_in_one_line(tmp_path, data_dir, capsys, monkeypatch):
    """A data folder on a read-only disk (a backup drive, a mount gone read-only after errors):
    searching takes no lock and writes nothing; what must write says so and names the file, and
    never calls the catalog damaged or sends the user to restore-catalog."""
    import errno
    import sqlite3

    from imgsim_desktop.core import cleanup
    from imgsim_desktop.storage.catalog import Catalog as _Catalog

    lib = tmp_path / "lib"
    copy_photos(lib, ["labelled/dog.jpg", "labelled/cat.jpg"])
    assert run(capsys, "index", str(lib))[0] == 0
    lock = str(data_dir / "cleanup.lock")

    def read_only_lock(*_a, **_k):
        raise OSError(errno.EROFS, "Read-only file system", lock)

    def read_only_db(*_a, **_k):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(cleanup, "lock_for", read_only_lock)
    code, out, err = run(capsys, "similar", str(lib / "dog.jpg"), "-k", "1")
    assert code == 0 and "cat.jpg" in out and not err
    (lib / "dog copy.jpg").write_bytes((lib / "dog.jpg").read_bytes())
    code, _, err = run(capsys, "duplicates", "--tier", "exact", "--apply", "move", str(tmp_path / "aside"))
    assert code == 2 and err.strip().endswith(f"imgsim: cannot write {lock}: Read-only file system; nothing was changed")
    assert (lib / "dog copy.jpg").exists()
    monkeypatch.setattr(_Catalog, "reject_pair", read_only_db)
    code, _, err = run(capsys, "duplicates", "--not-duplicates", str(lib / "dog.jpg"), str(lib / "cat.jpg"))
    assert code == 2 and "is read-only" in err and "damaged" not in err and "restore-catalog" not in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_opening_a_current_catalog_writes_nothing(tmp_path):
    """A full disk once stopped every command, status too, because opening wrote schema_version."""
    path = tmp_path / "catalog.sqlite3"
    with Catalog(path) as c:
        c.add_root(str(tmp_path / "lib"))
        c._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = path.read_bytes()
    with Catalog(path) as c:
        assert c._db.total_changes == 0 and c.roots() == [str(tmp_path / "lib")]
    assert path.read_bytes() == before

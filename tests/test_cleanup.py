"""Cleanup never loses a photo: trash or move, protected folders refused (by real path), failures
left in place, moves undone, nothing replaced, files checked against the scan right before they go."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
from pathlib import Path

import pytest

from conftest import TRASH_HOME, copy_photos
from imgsim_desktop.core import cleanup, cleanup_plan, safe_move
from imgsim_desktop.core.cleanup_plan import Removal, Seen
from imgsim_desktop.core.duplicates import Group, Member
from imgsim_desktop.core.engine import Engine
from imgsim_desktop.core.library_service import index_now


@pytest.fixture
def engine(tmp_path, data_dir):
    lib = tmp_path / "lib"
    copy_photos(lib, ["labelled/dog.jpg", "labelled/cat.jpg"])
    copy_photos(lib / "keep", ["labelled/pelican.jpg"])
    with Engine(data_dir) as eng:
        index_now(eng, [str(lib)])
        eng.lib = lib
        yield eng


def chosen(engine, *paths) -> list[Removal]:
    return cleanup_plan.chosen_paths([engine.catalog.photo(str(p)) for p in paths])


def group_of(tier: str, *paths) -> Group:
    return Group(tier, [Member(str(p), 1.0) for p in paths])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_trash_moves_to_trash_logs_and_drops_from_library(engine):
    dog = engine.lib / "dog.jpg"
    size = dog.stat().st_size
    result = cleanup.apply(engine.catalog, chosen(engine, dog), "trash")
    assert not dog.exists() and result.failed == [] and result.bytes_freed == size
    trashed = [p for p in (TRASH_HOME / "Trash" / "files").iterdir() if p.name.startswith("dog")]
    assert len(trashed) >= 1 and trashed[-1].stat().st_size == size
    log = engine.catalog.actions(result.batch)
    assert [(a["action"], a["source"]) for a in log] == [("trash", str(dog))]
    assert engine.catalog.file_by_path(str(dog)) is None


def test_protected_folder_is_never_touched(engine):
    pelican = engine.lib / "keep" / "pelican.jpg"
    result = cleanup.apply(engine.catalog, chosen(engine, pelican, engine.lib / "cat.jpg"), "trash", protected=[str(engine.lib / "keep")])
    assert pelican.exists() and result.refused == [str(pelican)]
    assert not (engine.lib / "cat.jpg").exists()


def test_protected_by_real_path_holds_for_a_library_indexed_through_a_symlink(tmp_path, data_dir):
    real = tmp_path / "real" / "lib"
    copies = copy_photos(real / "copies", ["labelled/dog.jpg", "labelled/cat.jpg", "labelled/pelican.jpg"])
    (tmp_path / "link").mkdir()
    (tmp_path / "link" / "lib").symlink_to(real, target_is_directory=True)
    with Engine(data_dir) as eng:
        index_now(eng, [str(tmp_path / "link" / "lib")])  # the catalog knows the photos by the link's path
        rows = [eng.catalog.photo(str(tmp_path / "link" / "lib" / "copies" / p.name)) for p in copies]
        assert all(rows)
        result = cleanup.apply(eng.catalog, cleanup_plan.chosen_paths(rows), "move", str(tmp_path / "out"), protected=[str(real / "copies")])
    assert all(p.exists() for p in copies) and len(result.refused) == 3 and result.done == []
    assert cleanup.inside(str(tmp_path / "link" / "lib" / "copies" / "x.jpg"), [str(tmp_path / "real" / "lib" / ".." / "lib" / "copies")])


def test_failing_trash_leaves_file_in_place_and_reports_it(engine, monkeypatch):
    def no_trash(path):
        raise OSError(95, "Operation not supported", path)  # e.g. a network share without a trash

    monkeypatch.setattr(cleanup, "send2trash", no_trash)
    cat = engine.lib / "cat.jpg"
    result = cleanup.apply(engine.catalog, chosen(engine, cat), "trash")
    assert cat.exists() and result.done == []
    assert result.failed[0]["path"] == str(cat) and "left in place" in result.failed[0]["error"]
    assert engine.catalog.file_by_path(str(cat)) is not None and engine.catalog.actions() == []


def test_move_then_undo_restores_every_file(engine, tmp_path):
    dest = tmp_path / "review"
    dest.mkdir()
    (dest / "dog.jpg").write_bytes(b"someone else's file")  # must not be overwritten
    originals = {p: p.read_bytes() for p in (engine.lib / "dog.jpg", engine.lib / "cat.jpg")}
    result = cleanup.apply(engine.catalog, chosen(engine, *originals), "move", move_to=str(dest))
    assert sorted(os.listdir(dest)) == ["cat.jpg", "dog (2).jpg", "dog.jpg"]
    assert (dest / "dog.jpg").read_bytes() == b"someone else's file"
    assert not any(p.exists() for p in originals)
    restored = cleanup.undo(engine.catalog, result.batch)
    assert [r["error"] for r in restored] == [None, None]
    assert {p: p.read_bytes() for p in originals} == originals
    assert sorted(os.listdir(dest)) == ["dog.jpg"]
    assert all(a["undone_at"] for a in engine.catalog.actions(result.batch) if a["action"] == "move")
    assert cleanup.undo(engine.catalog, result.batch) == []  # undoing twice does nothing


def test_undo_never_replaces_a_file_that_took_the_name_back(engine, tmp_path):
    dog = engine.lib / "dog.jpg"
    result = cleanup.apply(engine.catalog, chosen(engine, dog), "move", move_to=str(tmp_path / "out"))
    dog.write_bytes(b"a new photo under the old name")
    restored = cleanup.undo(engine.catalog, result.batch)
    assert restored[0]["error"] and dog.read_bytes() == b"a new photo under the old name"
    assert (tmp_path / "out" / "dog.jpg").exists()


def force_cross_device(monkeypatch):
    """Renames out of the library fail as they do across volumes; renames inside DEST (publishing the
    verified copy) still work."""
    real = safe_move.rename_noreplace

    def rename(source, target):
        if os.path.dirname(source) != os.path.dirname(target):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real(source, target)

    monkeypatch.setattr(cleanup, "rename_noreplace", rename)


def unlink_fails(monkeypatch, os_module, path, err: int) -> None:
    """``os_module.unlink(path)`` fails with ``err`` (what a read-only folder or card does); other unlinks work."""
    real = os.unlink

    def unlink(target, *args, **kwargs):
        if str(target) == str(path):
            raise PermissionError(err, os.strerror(err), str(target))
        real(target, *args, **kwargs)

    monkeypatch.setattr(os_module, "unlink", unlink)


def test_move_across_volumes_copies_verifies_then_removes(engine, tmp_path, monkeypatch):
    force_cross_device(monkeypatch)
    dog = engine.lib / "dog.jpg"
    data, mtime = dog.read_bytes(), dog.stat().st_mtime_ns
    result = cleanup.apply(engine.catalog, chosen(engine, dog), "move", move_to=str(tmp_path / "elsewhere"))
    target = Path(result.done[0]["target"])
    assert not dog.exists() and target.read_bytes() == data and target.stat().st_mtime_ns == mtime
    assert os.listdir(tmp_path / "elsewhere") == ["dog.jpg"]  # no temporary copy left behind
    assert cleanup.undo(engine.catalog, result.batch)[0]["error"] is None and dog.read_bytes() == data


@pytest.mark.skipif(not os.path.isdir("/dev/shm") or os.stat("/dev/shm").st_dev == os.stat(Path(__file__).parent).st_dev,
                    reason="needs a second file system (/dev/shm)")  # fmt: skip
def test_move_to_another_real_file_system_and_back(engine, tmp_path):
    import tempfile

    with tempfile.TemporaryDirectory(dir="/dev/shm") as other:
        photos = {p: p.read_bytes() for p in (engine.lib / "dog.jpg", engine.lib / "cat.jpg")}
        if os.stat(other).st_dev == os.stat(engine.lib).st_dev:
            pytest.skip("the test folder is on /dev/shm itself")
        result = cleanup.apply(engine.catalog, chosen(engine, *photos), "move", move_to=other)
        assert len(result.done) == 2 and sorted(os.listdir(other)) == ["cat.jpg", "dog.jpg"]
        assert [r["error"] for r in cleanup.undo(engine.catalog, result.batch)] == [None, None]
        assert {p: p.read_bytes() for p in photos} == photos and os.listdir(other) == []


def test_full_destination_leaves_no_partial_files_and_stops(engine, tmp_path, monkeypatch):
    force_cross_device(monkeypatch)
    real_write = os.write
    budget = [60_000]  # bytes the "disk" still takes

    def write(fd, data):
        if budget[0] <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = min(len(data), budget[0])
        budget[0] -= n
        return real_write(fd, bytes(data[:n]))

    monkeypatch.setattr(safe_move.os, "write", write)
    photos = [engine.lib / "dog.jpg", engine.lib / "cat.jpg"]
    before = {p: digest(p) for p in photos}
    dest = tmp_path / "full"
    result = cleanup.apply(engine.catalog, chosen(engine, *photos), "move", move_to=str(dest))
    assert result.done == [] and result.stopped and "No space left" in result.failed[0]["error"]
    assert os.listdir(dest) == [] and {p: digest(p) for p in photos} == before
    assert engine.catalog.actions() == []
    monkeypatch.setattr(safe_move.os, "write", real_write)
    again = cleanup.apply(engine.catalog, chosen(engine, *photos), "move", move_to=str(dest))
    assert sorted(os.listdir(dest)) == ["cat.jpg", "dog.jpg"] and len(again.done) == 2  # not 'dog (2).jpg'


def test_source_that_cannot_be_removed_keeps_the_photo_and_no_copy(engine, tmp_path, monkeypatch):
    force_cross_device(monkeypatch)
    dog = engine.lib / "dog.jpg"
    unlink_fails(monkeypatch, cleanup.os, dog, errno.EROFS)
    for _ in range(2):  # a retry does not pile up copies either
        result = cleanup.apply(engine.catalog, chosen(engine, dog), "move", move_to=str(tmp_path / "out"))
        assert result.done == [] and "cannot be removed" in result.failed[0]["error"]
    assert dog.exists() and os.listdir(tmp_path / "out") == [] and engine.catalog.actions() == []


def test_destination_inside_the_library_or_a_protected_folder_is_refused(engine, tmp_path):
    dog = engine.lib / "dog.jpg"
    (tmp_path / "alias").symlink_to(engine.lib, target_is_directory=True)
    for dest, protected in ((engine.lib / "dupes", []), (tmp_path / "alias" / "dupes", []), (tmp_path / "safe" / "x", [str(tmp_path / "safe")])):
        with pytest.raises(cleanup.CleanupRefused):
            cleanup.apply(engine.catalog, chosen(engine, dog), "move", move_to=str(dest), protected=protected)
    assert dog.exists() and not (engine.lib / "dupes").exists()


# --- checked against the scan right before the move --------------------------------------------


def exact_pair(tmp_path, data_dir):
    lib = tmp_path / "lib"
    keep, copy = copy_photos(lib, ["labelled/dog.jpg"])[0], lib / "dog copy.jpg"
    copy.write_bytes(keep.read_bytes())
    other = copy_photos(tmp_path / "elsewhere", ["labelled/cat.jpg"])[0]
    eng = Engine(data_dir)
    index_now(eng, [str(lib)])
    rows = {str(p): eng.catalog.photo(str(p)) for p in (keep, copy)}
    return eng, keep, copy, other, rows


def test_a_copy_overwritten_after_the_scan_is_skipped(tmp_path, data_dir):
    eng, keep, copy, other, rows = exact_pair(tmp_path, data_dir)
    with eng:
        plan = cleanup_plan.plan([group_of("exact", keep, copy)], rows, {str(copy)})
        copy.write_bytes(other.read_bytes())  # another photo under the copy's name, in the user's thinking time
        result = cleanup.apply(eng.catalog, plan, "move", str(tmp_path / "out"))
    assert result.done == [] and "changed since the scan" in result.skipped[0]["reason"]
    assert copy.read_bytes() == other.read_bytes()


def test_the_same_size_and_date_with_other_bytes_is_still_caught(tmp_path, data_dir):
    eng, keep, copy, _, rows = exact_pair(tmp_path, data_dir)
    with eng:
        plan = cleanup_plan.plan([group_of("exact", keep, copy)], rows, {str(copy)})
        st = copy.stat()
        data = bytearray(copy.read_bytes())
        data[len(data) // 2] ^= 0xFF
        copy.write_bytes(bytes(data))
        os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns))  # size and date as the scan saw them
        result = cleanup.apply(eng.catalog, plan, "move", str(tmp_path / "out"))
    assert result.done == [] and result.skipped and copy.exists()


def test_a_copy_whose_keeper_is_gone_is_never_moved(tmp_path, data_dir):
    eng, keep, copy, _, rows = exact_pair(tmp_path, data_dir)
    with eng:
        plan = cleanup_plan.plan([group_of("duplicate", keep, copy)], rows, {str(copy)})
        keep.unlink()  # deleted meanwhile: the copy is now the last one
        result = cleanup.apply(eng.catalog, plan, "trash")
    assert result.done == [] and "last one" in result.skipped[0]["reason"] and copy.exists()


def test_every_member_chosen_keeps_one(tmp_path, data_dir):
    eng, keep, copy, _, rows = exact_pair(tmp_path, data_dir)
    with eng:
        plan = cleanup_plan.plan([group_of("exact", keep, copy)], rows, {str(keep), str(copy)})
        result = cleanup.apply(eng.catalog, plan, "trash")
    assert result.done == [] and len(result.skipped) == 2 and keep.exists() and copy.exists()


def test_similar_tier_skips_a_file_replaced_after_indexing(tmp_path, data_dir):
    eng, keep, copy, other, rows = exact_pair(tmp_path, data_dir)
    with eng:
        plan = cleanup_plan.plan([group_of("similar", keep, copy)], rows, {str(copy)})
        os.replace(other, copy)
        result = cleanup.apply(eng.catalog, plan, "trash")
    assert result.done == [] and result.skipped and copy.exists()


def test_cli_and_app_suggest_the_same_removals(tmp_path, data_dir):
    from imgsim_desktop.core.keeper import KeeperRules
    from imgsim_desktop.ui.group_tree import GroupTree  # noqa: F401  (the app's tree asks cleanup_plan.suggested)

    eng, keep, copy, _, rows = exact_pair(tmp_path, data_dir)
    with eng:
        groups = [group_of("exact", keep, copy)]
        assert cleanup_plan.suggested(groups, rows, KeeperRules(), ["exact"]) == {str(copy)}  # ' copy' loses the path tie-break
        assert cleanup_plan.suggested(groups, rows, KeeperRules(), ["similar"]) == set()


# --- no rename ever replaces a file ------------------------------------------------------------


def test_rename_noreplace_refuses_an_existing_name(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"A")
    b.write_bytes(b"B")
    with pytest.raises(FileExistsError):
        safe_move.rename_noreplace(str(a), str(b))
    assert a.read_bytes() == b"A" and b.read_bytes() == b"B"
    safe_move.rename_noreplace(str(a), str(tmp_path / "c"))
    assert not a.exists() and (tmp_path / "c").read_bytes() == b"A"


def test_a_name_taken_between_the_check_and_the_move_is_not_replaced(engine, tmp_path, monkeypatch):
    """The race, made certain: the free name the check found is taken by the time of the move."""
    dest = tmp_path / "out"
    dest.mkdir()
    real_first_free = cleanup._Names.first_free
    taken = []

    def first_free_then_taken(self, target):
        name = real_first_free(self, target)
        if not taken:  # another process writes exactly this name right now
            Path(name).write_bytes(b"the other process's photo")
            taken.append(name)
        return name

    monkeypatch.setattr(cleanup._Names, "first_free", first_free_then_taken)
    dog = engine.lib / "dog.jpg"
    data = dog.read_bytes()
    result = cleanup.apply(engine.catalog, chosen(engine, dog), "move", str(dest))
    assert Path(taken[0]).read_bytes() == b"the other process's photo"
    assert Path(result.done[0]["target"]).read_bytes() == data and result.done[0]["target"] != taken[0]
    assert engine.catalog.actions(result.batch)[0]["target"] == result.done[0]["target"]  # the journal names where it went


def _race_worker(args) -> None:
    import time

    from imgsim_desktop.storage.catalog import Catalog

    data_dir, files, dest, start_at = args
    time.sleep(max(0.0, start_at - time.time()))  # both processes start moving at the same moment
    seen = [Removal(Seen(p, os.stat(p).st_size, os.stat(p).st_mtime_ns), "chosen") for p in files]
    with Catalog(Path(data_dir) / "catalog.sqlite3") as catalog:
        result = cleanup.apply(catalog, seen, "move", dest)
    assert not result.failed, result.failed[:3]


def test_two_cleanups_into_one_destination_lose_nothing(tmp_path):
    """Two processes, each moving files of the same names into one folder at the same time."""
    import multiprocessing
    import time

    count = 150
    jobs, expected = [], []
    start_at = time.time() + 3
    for side in "ab":
        folder = tmp_path / side
        folder.mkdir()
        files = []
        for i in range(count):
            sub = folder / str(i // 10)
            sub.mkdir(exist_ok=True)
            path = sub / f"IMG_{i % 10}.jpg"  # ten names, each 15 times per side: all collide
            path.write_bytes(f"{side}{i}".encode() * 50)
            files.append(str(path))
            expected.append(hashlib.sha256(path.read_bytes()).hexdigest())
        jobs.append((str(tmp_path / f"data-{side}"), files, str(tmp_path / "dest"), start_at))
    (tmp_path / "dest").mkdir()
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_race_worker, jobs)
    found = sorted(digest(p) for p in (tmp_path / "dest").iterdir())
    assert found == sorted(expected)  # 300 files, every content once


def test_terminal_names_are_shown_escaped():
    from imgsim_desktop.terminal import shown

    hostile = "b\x1b[1A\x1b[2K\rfake.jpg"
    assert shown(hostile) == "b\\x1b[1A\\x1b[2K\\x0dfake.jpg" and shown("Été 2024.jpg") == "Été 2024.jpg"
    assert "\u202e" not in shown("gpj.\u202eexe") and "\n" not in shown("a\nb")


# --- from a review of the crash windows ---------------------------------------------------------


def test_a_step_recovery_cannot_finish_waits_and_the_rest_goes_on(tmp_path, monkeypatch):
    from imgsim_desktop.storage.catalog import Catalog

    (tmp_path / "card").mkdir()
    (tmp_path / "dest").mkdir()
    stuck, free = tmp_path / "card" / "a.jpg", tmp_path / "card" / "b.jpg"
    stuck.write_bytes(b"a" * 100)
    free.write_bytes(b"b" * 100)
    with Catalog(tmp_path / "catalog.sqlite3") as catalog:
        for photo in (stuck, free):  # both killed after their link, before the unlink of the original
            st = photo.stat()
            catalog.begin_step("b1", "move", str(photo), str(tmp_path / "dest" / photo.name), st.st_size, st.st_mtime_ns, st.st_ino)
            os.link(photo, tmp_path / "dest" / photo.name)
        real_unlink = os.unlink
        unlink_fails(monkeypatch, cleanup.os, stuck, errno.EROFS)  # the card went read-only
        notes = cleanup.recover(catalog)
        assert any("cannot be finished yet" in n for n in notes) and not free.exists()
        assert [s["source"] for s in catalog.pending_steps()] == [str(stuck)]
        monkeypatch.setattr(cleanup.os, "unlink", real_unlink)  # the card is writable again
        cleanup.recover(catalog)
        assert catalog.pending_steps() == [] and not stuck.exists() and (tmp_path / "dest" / "a.jpg").exists()


def test_an_unlink_error_that_was_not_true_keeps_the_copy(engine, tmp_path, monkeypatch):
    force_cross_device(monkeypatch)
    dog = engine.lib / "dog.jpg"
    data = dog.read_bytes()
    real_unlink = os.unlink

    def unlink_then_complain(path, *a, **k):
        real_unlink(path, *a, **k)
        if str(path) == str(dog):
            raise OSError(errno.EIO, "Input/output error", str(path))  # a network share's retransmit

    monkeypatch.setattr(cleanup.os, "unlink", unlink_then_complain)
    result = cleanup.apply(engine.catalog, chosen(engine, dog), "move", str(tmp_path / "out"))
    assert (tmp_path / "out" / "dog.jpg").read_bytes() == data and len(result.done) == 1


def test_one_file_under_two_names_is_not_its_own_keeper(tmp_path, data_dir):
    eng, keep, copy, _, rows = exact_pair(tmp_path, data_dir)
    with eng:
        copy.unlink()
        os.link(keep, copy)  # the "copy" is the keeper itself (a folder indexed twice, a hard link)
        rows = {str(keep): rows[str(keep)], str(copy): dataclasses.replace(rows[str(keep)], path=str(copy))}  # as a scan of both names sees them
        plan = cleanup_plan.plan([group_of("exact", keep, copy)], rows, {str(copy)})
        result = cleanup.apply(eng.catalog, plan, "trash")
    assert result.done == [] and "last one" in result.skipped[0]["reason"] and keep.exists()


def test_the_link_fallback_takes_its_new_name_back_when_the_old_cannot_go(tmp_path, monkeypatch):
    monkeypatch.setattr(safe_move, "_RENAMEAT2", None)  # as on macOS, or a file system without the flag
    source, target = tmp_path / "a.jpg", tmp_path / "b.jpg"
    source.write_bytes(b"photo")
    unlink_fails(monkeypatch, safe_move.os, source, errno.EACCES)  # a read-only folder
    with pytest.raises(PermissionError):
        safe_move.rename_noreplace(str(source), str(target))
    assert source.read_bytes() == b"photo" and not target.exists() and source.stat().st_nlink == 1

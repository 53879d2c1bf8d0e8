"""A photo's companions (sidecars, Apple edit files, a Live Photo's video, the RAW of a RAW+JPEG
pair) go with it when cleanup moves or trashes it, come back with it on Undo, are never left
behind nor moved without it, and a crash between the photo and its companions is finished."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from conftest import PHOTOS, TRASH_HOME
from imgsim_desktop.core import cleanup, companions
from imgsim_desktop.core.cleanup_plan import Removal, Seen
from imgsim_desktop.core.engine import Engine
from imgsim_desktop.core.library_service import index_now
from imgsim_desktop.storage.catalog import Catalog

RAW = PHOTOS / "raw" / "Canon_EOS-D30__CRW.CRW"  # a real RAW file, as the RAW half of a pair
XMP = '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="{}"/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
AAE = '<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>adjustmentFormatIdentifier</key><string>com.apple.photo</string></dict></plist>'

# Every kind of companion of IMG_1.JPG, in the letter cases cameras and programs write them.
EVERY_KIND = {
    "IMG_1.CRW": "raw",  # the RAW of the pair (same stem, same moment)
    "IMG_1.JPG.xmp": "xmp",  # darktable / digiKam, named by the whole file name
    "IMG_1.xmp": "xmp",  # Lightroom, named by the stem: shared by the JPEG and the RAW
    "IMG_1.crw.xmp": "xmp",  # the RAW's own darktable sidecar
    "IMG_1_01.CRW.xmp": "xmp",  # darktable's second version of the RAW
    "IMG_1.CRW.pp3": "pp3",  # RawTherapee, for the RAW
    "img_1.jpg.pp3": "pp3",  # RawTherapee, for the JPEG, another letter case
    "IMG_1.AAE": "aae",  # Apple Photos' edits
    "IMG_1.MOV": "live",  # the Live Photo's video
}
STRANGERS = ["IMG_10.JPG", "IMG_10.xmp", "IMG_1 copy.xmp", "IMG_12.MOV"]  # alike names, other photos' files


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_shot(folder: Path, stem: str = "IMG_1", photo: str = "labelled/dog.jpg", kinds: dict[str, str] = EVERY_KIND) -> Path:
    """The photo as '<stem>.JPG' (a copy of a shared photo) with the given companions beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    jpg = folder / f"{stem}.JPG"
    jpg.write_bytes((PHOTOS / photo).read_bytes())
    for n, name in enumerate(kinds):
        path = folder / name.replace("IMG_1", stem).replace("img_1", stem.lower())
        kind = kinds[name]
        if kind == "raw":
            path.write_bytes(RAW.read_bytes())
        elif kind == "xmp":
            path.write_text(XMP.format(n))
        elif kind == "aae":
            path.write_text(AAE)
        elif kind == "live":
            path.write_bytes(b"\x00\x00\x00\x14ftypqt  " + bytes(range(256)) * 40)  # a QuickTime header, enough for a file manager
        else:
            path.write_text(f"[Version]\nAppVersion=5.9\n# {n}\n")
    st = jpg.stat()
    for other in folder.iterdir():  # written in the same second as the photo, as a camera does
        os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    return jpg


def removal(path: Path) -> Removal:
    st = path.stat()
    return Removal(Seen(str(path), st.st_size, st.st_mtime_ns), "chosen")


@pytest.fixture
def catalog(tmp_path):
    with Catalog(tmp_path / "data" / "catalog.sqlite3") as cat:
        yield cat


def test_companions_of_finds_every_kind_and_nothing_else(tmp_path):
    lib = tmp_path / "lib"
    jpg = write_shot(lib)
    for name in STRANGERS:
        (lib / name).write_text("another photo's")
    found = {os.path.basename(c.path): c.kind for c in companions.companions_of(str(jpg))}
    assert found == EVERY_KIND
    shared = next(c for c in companions.companions_of(str(jpg)) if c.path.endswith("IMG_1.xmp"))
    assert set(shared.owners) == {str(jpg), str(lib / "IMG_1.CRW")}  # the stem's sidecar belongs to both halves of the pair
    raw_side = {os.path.basename(c.path): c.kind for c in companions.companions_of(str(lib / "IMG_1.CRW"))}
    assert raw_side["IMG_1.JPG"] == "jpeg" and "IMG_1.MOV" not in raw_side  # a Live Photo's video belongs to the HEIC/JPEG


def test_a_raw_from_another_moment_is_not_the_pair(tmp_path):
    lib = tmp_path / "lib"
    jpg = write_shot(lib, kinds={"IMG_1.CRW": "raw"})
    os.utime(lib / "IMG_1.CRW", (jpg.stat().st_mtime - 3600,) * 2)  # an hour apart: another shot with a reused number
    assert companions.companions_of(str(jpg)) == []
    same = companions.Folders(taken=lambda p: "2024-05-01T10:00:00")  # dates taken agree: the file dates do not matter
    assert [c.kind for c in same.companions_of(str(jpg))] == ["raw"]


def test_move_takes_every_companion_and_undo_brings_them_back(tmp_path, catalog):
    lib, dest = tmp_path / "lib", tmp_path / "review"
    jpg = write_shot(lib)
    for name in STRANGERS:
        (lib / name).write_text("another photo's")
    before = {p.name: digest(p) for p in lib.iterdir()}
    result = cleanup.apply(catalog, [removal(jpg)], "move", str(dest))
    assert result.failed == [] and [d["path"] for d in result.photos] == [str(jpg)]
    assert sorted(p.name for p in lib.iterdir()) == sorted(STRANGERS)  # nothing of the shot is left behind
    assert {p.name: digest(p) for p in dest.iterdir()} == {n: before[n] for n in ["IMG_1.JPG", *EVERY_KIND]}
    assert sorted(result.companion_kinds) == sorted(EVERY_KIND.values())
    assert len(catalog.actions(result.batch)) == 1 + len(EVERY_KIND)  # one journaled step each
    restored = cleanup.undo(catalog, result.batch)
    assert [r["error"] for r in restored] == [None] * (1 + len(EVERY_KIND))
    assert sorted(r["companion"] or "photo" for r in restored) == sorted(["photo", *EVERY_KIND.values()])
    assert {p.name: digest(p) for p in lib.iterdir()} == before and list(dest.iterdir()) == []


def test_trash_takes_every_companion(tmp_path, catalog):
    lib = tmp_path / "lib"
    jpg = write_shot(lib, stem="IMG_7301")
    (lib / "IMG_7302.JPG").write_bytes(jpg.read_bytes())
    names = [p.name for p in lib.iterdir() if p.name != "IMG_7302.JPG"]
    wanted = {name: digest(lib / name) for name in names}
    result = cleanup.apply(catalog, [removal(jpg)], "trash")
    assert result.failed == [] and len(result.done) == 1 + len(EVERY_KIND)
    assert [p.name for p in lib.iterdir()] == ["IMG_7302.JPG"]
    trash = TRASH_HOME / "Trash" / "files"
    for name, sha in wanted.items():
        assert (trash / name).exists() and digest(trash / name) == sha, name
        info = (TRASH_HOME / "Trash" / "info" / f"{name}.trashinfo").read_text()
        assert f"Path={lib / name}" in info  # the trash knows where to restore it


def test_companions_take_the_photos_new_name_at_the_destination(tmp_path, catalog):
    lib, dest = tmp_path / "lib", tmp_path / "review"
    jpg = write_shot(lib, kinds={"IMG_1.xmp": "xmp", "IMG_1.JPG.xmp": "xmp"})
    dest.mkdir()
    (dest / "IMG_1.JPG").write_bytes(b"another photo, already here")
    (dest / "IMG_1 (2).xmp").write_text("another sidecar, already here")
    result = cleanup.apply(catalog, [removal(jpg)], "move", str(dest))
    assert result.failed == []
    assert sorted(p.name for p in dest.iterdir()) == ["IMG_1 (2).xmp", "IMG_1 (3).JPG", "IMG_1 (3).JPG.xmp", "IMG_1 (3).xmp", "IMG_1.JPG"]
    assert (dest / "IMG_1 (2).xmp").read_text() == "another sidecar, already here"


def test_a_sidecar_shared_by_two_photos_leaves_with_the_last(tmp_path, catalog):
    lib, dest = tmp_path / "lib", tmp_path / "review"
    jpg = write_shot(lib, kinds={"IMG_1.xmp": "xmp"})
    png = lib / "IMG_1.png"  # another photo of the stem (an export): the stem's sidecar is its too
    png.write_bytes((PHOTOS / "labelled" / "boats.png").read_bytes())
    first = cleanup.apply(catalog, [removal(jpg)], "move", str(dest))
    assert first.companion_kinds == [] and (lib / "IMG_1.xmp").exists()  # the PNG still needs it
    second = cleanup.apply(catalog, [removal(png)], "move", str(dest))
    assert second.companion_kinds == ["xmp"] and sorted(p.name for p in lib.iterdir()) == []
    both = tmp_path / "lib2"
    jpg2 = write_shot(both, kinds={"IMG_1.xmp": "xmp"})
    png2 = both / "IMG_1.png"
    png2.write_bytes((PHOTOS / "labelled" / "boats.png").read_bytes())
    result = cleanup.apply(catalog, [removal(jpg2), removal(png2)], "move", str(tmp_path / "review2"))
    assert [(os.path.basename(d["path"]), d.get("of")) for d in result.done] == [("IMG_1.JPG", None), ("IMG_1.png", None), ("IMG_1.xmp", str(png2))]


@pytest.mark.parametrize(("rule", "stays"), [("both", []), ("jpeg", []), ("raw", ["IMG_1.CRW", "IMG_1.CRW.pp3", "IMG_1.xmp"])])
def test_the_pair_rule_says_whether_the_raw_goes_with_its_jpeg(tmp_path, catalog, rule, stays):
    lib = tmp_path / "lib"
    jpg = write_shot(lib, kinds={"IMG_1.CRW": "raw", "IMG_1.CRW.pp3": "pp3", "IMG_1.xmp": "xmp", "IMG_1.JPG.xmp": "xmp"})
    cleanup.apply(catalog, [removal(jpg)], "move", str(tmp_path / "review"), pair_rule=rule)
    assert sorted(p.name for p in lib.iterdir()) == stays  # "keep RAW only": the RAW stays, with its sidecars


def test_a_pair_half_that_is_a_library_photo_moves_only_when_chosen(tmp_path, data_dir):
    lib = tmp_path / "lib"
    write_shot(lib, kinds={"IMG_1.CRW": "raw", "IMG_1.CRW.xmp": "xmp", "IMG_1.xmp": "xmp"})
    with Engine(data_dir) as eng:
        index_now(eng, [str(lib)])  # the JPEG is a photo of the library (the RAW is not indexed yet)
        assert eng.catalog.photo(str(lib / "IMG_1.JPG")) is not None
        result = cleanup.apply(eng.catalog, [removal(lib / "IMG_1.CRW")], "move", str(tmp_path / "review"))
    assert [os.path.basename(d["path"]) for d in result.done] == ["IMG_1.CRW", "IMG_1.CRW.xmp"]
    assert sorted(p.name for p in lib.iterdir()) == ["IMG_1.JPG", "IMG_1.xmp"]  # the JPEG stays, with the stem's sidecar


def test_a_companion_that_cannot_follow_puts_its_photo_back(tmp_path, catalog, monkeypatch):
    lib, dest = tmp_path / "lib", tmp_path / "review"
    jpg = write_shot(lib, kinds={"IMG_1.CRW": "raw", "IMG_1.xmp": "xmp", "IMG_1.AAE": "aae"})
    before = {p.name: digest(p) for p in lib.iterdir()}
    real = cleanup.rename_noreplace

    def refuse_the_sidecar(source, target):
        if source.endswith(".AAE"):
            raise PermissionError(13, "Permission denied", source)
        real(source, target)

    monkeypatch.setattr(cleanup, "rename_noreplace", refuse_the_sidecar)
    result = cleanup.apply(catalog, [removal(jpg)], "move", str(dest))
    assert result.done == [] and len(result.failed) == 1
    error = result.failed[0]["error"]
    assert result.failed[0]["path"] == str(jpg) and "IMG_1.AAE could not go with it" in error and "Permission denied" in error and "put back" in error
    assert {p.name: digest(p) for p in lib.iterdir()} == before and list(dest.iterdir()) == []
    assert all(a["undone_at"] for a in catalog.actions(result.batch) if a["action"] == "move")


class Killed(BaseException):
    """The process dies here (as kill -9 would: no cleanup code runs after it)."""


@pytest.mark.parametrize("mode", ["move", "trash"])
def test_a_crash_between_the_photo_and_its_companions_is_finished(tmp_path, catalog, monkeypatch, mode):
    lib, dest = tmp_path / "lib", tmp_path / "review"
    jpg = write_shot(lib, stem="IMG_4242", kinds={"IMG_1.CRW": "raw", "IMG_1.xmp": "xmp", "IMG_1.MOV": "live"})
    before = {p.name: digest(p) for p in lib.iterdir()}
    real_rename, real_trash = cleanup.rename_noreplace, cleanup.send2trash

    def die_after_the_photo(real):
        def step(source, *rest):
            if not source.endswith(".JPG"):
                raise Killed
            real(source, *rest)

        return step

    monkeypatch.setattr(cleanup, "rename_noreplace", die_after_the_photo(real_rename))
    monkeypatch.setattr(cleanup, "send2trash", die_after_the_photo(real_trash))
    with pytest.raises(Killed):
        cleanup.apply(catalog, [removal(jpg)], mode, str(dest) if mode == "move" else None)
    assert not jpg.exists() and len(catalog.pending_steps()) == 3  # the photo left; its companions' steps wait, logged
    monkeypatch.setattr(cleanup, "rename_noreplace", real_rename)
    monkeypatch.setattr(cleanup, "send2trash", real_trash)
    notes = cleanup.recover(catalog)  # the next start
    assert len(notes) == 3 and all("followed its photo" in n for n in notes) and catalog.pending_steps() == []
    assert list(lib.iterdir()) == []
    if mode == "trash":
        assert all((TRASH_HOME / "Trash" / "files" / name).exists() for name in before)
        return
    assert {p.name: digest(p) for p in dest.iterdir()} == before
    assert all(r["error"] is None for r in cleanup.undo(catalog, catalog.actions()[0]["batch"]))
    assert {p.name: digest(p) for p in lib.iterdir()} == before


def test_a_crash_before_the_photo_moved_leaves_the_companions_beside_it(tmp_path, catalog):
    lib, dest = tmp_path / "lib", tmp_path / "review"
    jpg = write_shot(lib, kinds={"IMG_1.xmp": "xmp", "IMG_1.AAE": "aae"})
    st = jpg.stat()
    photo = catalog.begin_step("b1", "move", str(jpg), str(dest / jpg.name), st.st_size, st.st_mtime_ns, st.st_ino)
    for name in ("IMG_1.xmp", "IMG_1.AAE"):
        cst = (lib / name).stat()
        catalog.begin_step("b1", "move", str(lib / name), str(dest / name), cst.st_size, cst.st_mtime_ns, cst.st_ino, note=f"companion xmp of step {photo}")
    notes = cleanup.recover(catalog)
    assert len(notes) == 3 and catalog.pending_steps() == [] and catalog.actions() == []
    assert sorted(p.name for p in lib.iterdir()) == ["IMG_1.AAE", "IMG_1.JPG", "IMG_1.xmp"]


def test_counts_read_as_the_user_sees_them():
    assert companions.with_companions("3 photos", ["xmp", "aae"]) == "3 photos (and 2 sidecars)"
    assert companions.with_companions("1 photo", ["xmp", "live", "raw"]) == "1 photo (and 1 sidecar, 1 Live Photo video and 1 RAW file)"
    assert companions.with_companions("2 photos", []) == "2 photos"

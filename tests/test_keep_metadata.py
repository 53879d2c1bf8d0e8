"""Keep the metadata of removed copies (opt-in): what the copies carry and the keeper lacks goes into
the keeper's XMP sidecar (created, or merged into the one it has), never into the photo file; it is
journaled and undone with the cleanup; the sidecar is read back by the project's own parser and by
exiftool."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from conftest import PHOTOS
from imgsim_desktop.core import cleanup, xmp_sidecar
from imgsim_desktop.core.cleanup_plan import Removal, Seen
from imgsim_desktop.core.photo_quality import metadata_tags
from imgsim_desktop.storage.catalog import Catalog

ORIGINAL = PHOTOS / "scenes" / "ela_original.jpg"  # date taken and GPS in its EXIF
COPY_SIDECAR = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" xmp:Rating="4">
<dc:subject><rdf:Bag><rdf:li>harbour</rdf:li><rdf:li>Brasil</rdf:li></rdf:Bag></dc:subject>
<dc:title><rdf:Alt><rdf:li xml:lang="x-default">Evening at the pier – São Paulo</rdf:li></rdf:Alt></dc:title>
</rdf:Description></rdf:RDF></x:xmpmeta>
<?xpacket end="w"?>"""
KEEPER_SIDECAR = """<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/"
 xmlns:darktable="http://darktable.sf.net/" xmp:Rating="2" darktable:xmp_version="5">
<dc:subject><rdf:Bag><rdf:li>harbour</rdf:li></rdf:Bag></dc:subject>
<darktable:history><rdf:Seq><rdf:li darktable:operation="exposure"/></rdf:Seq></darktable:history>
</rdf:Description></rdf:RDF></x:xmpmeta>
"""


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def catalog(tmp_path):
    with Catalog(tmp_path / "data" / "catalog.sqlite3") as cat:
        yield cat


@pytest.fixture
def shot(tmp_path):
    """A keeper stripped of its metadata (a messenger's copy, larger) and the original with its
    EXIF and a sidecar (keywords, rating, title), in another folder."""
    lib = tmp_path / "lib"
    (lib / "kept").mkdir(parents=True)
    (lib / "old").mkdir()
    keeper = lib / "kept" / "IMG_2001.jpg"
    with Image.open(ORIGINAL) as img:
        img.resize((img.width * 2, img.height * 2)).save(keeper, quality=92)  # no EXIF, no XMP
    copy = lib / "old" / "IMG_2001.jpg"
    shutil.copyfile(ORIGINAL, copy)
    (lib / "old" / "IMG_2001.xmp").write_text(COPY_SIDECAR, encoding="utf-8")
    return keeper, copy


def removal_of(copy: Path, keeper: Path) -> Removal:
    seen = lambda p: Seen(str(p), p.stat().st_size, p.stat().st_mtime_ns)  # noqa: E731
    return Removal(seen(copy), "duplicate", (seen(keeper),))


@pytest.mark.parametrize("mode", ["move", "trash"])
def test_the_copies_metadata_goes_into_a_new_sidecar_and_undo_removes_it(catalog, shot, tmp_path, mode):
    keeper, copy = shot
    keeper_sum = sha(keeper)
    result = cleanup.apply(catalog, [removal_of(copy, keeper)], mode, str(tmp_path / "aside") if mode == "move" else None, keep_metadata=True)
    sidecar = keeper.with_suffix(".xmp")
    assert not copy.exists() and sha(keeper) == keeper_sum  # the photo file itself is never rewritten
    assert result.metadata == [{"keeper": str(keeper), "sidecar": str(sidecar), "kinds": ["date", "place", "keywords", "rating", "title"],
                                "sources": [str(copy)], "created": True}]  # fmt: skip
    data = sidecar.read_bytes()
    assert metadata_tags(None, data) >= {"date", "place", "keywords", "rating", "title"}  # the project's own reader
    facts = xmp_sidecar.from_xmp(data)
    assert facts == xmp_sidecar.Facts("2018-06-06T22:20:11", ("23,31.356177S", "47,30.269910W"), ("harbour", "Brasil"), 4, "Evening at the pier – São Paulo")
    (step,) = [a for a in catalog.actions(result.batch) if a["action"] == "metadata"]
    assert step["source"] == str(sidecar) and step["previous"] is None and step["written"] == sha(sidecar)
    restored = cleanup.undo(catalog, result.batch)
    assert all(r["error"] is None for r in restored) and any(r.get("metadata") for r in restored)
    assert not sidecar.exists() and copy.exists() and sha(keeper) == keeper_sum


def test_an_existing_sidecar_is_merged_and_undo_puts_its_bytes_back(catalog, shot, tmp_path):
    keeper, copy = shot
    sidecar = keeper.with_suffix(".xmp")
    sidecar.write_text(KEEPER_SIDECAR, encoding="utf-8")
    before = sidecar.read_bytes()
    result = cleanup.apply(catalog, [removal_of(copy, keeper)], "move", str(tmp_path / "aside"), keep_metadata=True)
    assert result.metadata[0]["kinds"] == ["date", "place", "keywords", "title"] and not result.metadata[0]["created"]  # its own rating stays
    merged = xmp_sidecar.from_xmp(sidecar.read_bytes())
    assert merged.rating == 2 and merged.keywords == ("harbour", "Brasil") and merged.date == "2018-06-06T22:20:11"
    text = sidecar.read_text(encoding="utf-8")
    assert 'darktable:operation="exposure"' in text and 'darktable:xmp_version="5"' in text  # what it had is kept, under its own prefix
    assert cleanup.undo(catalog, result.batch) and sidecar.read_bytes() == before


def test_off_by_default(catalog, shot, tmp_path):
    keeper, copy = shot
    result = cleanup.apply(catalog, [removal_of(copy, keeper)], "move", str(tmp_path / "aside"))
    assert result.metadata == [] and not keeper.with_suffix(".xmp").exists()


def test_nothing_to_add_writes_nothing(catalog, shot, tmp_path):
    keeper, copy = shot
    shutil.copyfile(copy, keeper)  # the keeper has the EXIF...
    keeper.with_suffix(".xmp").write_text(COPY_SIDECAR, encoding="utf-8")  # ...and the same sidecar
    before = keeper.with_suffix(".xmp").read_bytes()
    result = cleanup.apply(catalog, [removal_of(copy, keeper)], "move", str(tmp_path / "aside"), keep_metadata=True)
    assert result.metadata == [] and keeper.with_suffix(".xmp").read_bytes() == before and not copy.exists()


def test_a_sidecar_that_is_not_xmp_is_left_alone_and_the_copy_stays(catalog, shot, tmp_path):
    keeper, copy = shot
    sidecar = keeper.with_suffix(".xmp")
    sidecar.write_bytes(b"not xml at all \x00\x01")
    result = cleanup.apply(catalog, [removal_of(copy, keeper)], "move", str(tmp_path / "aside"), keep_metadata=True)
    assert copy.exists() and sidecar.read_bytes() == b"not xml at all \x00\x01" and result.done == []
    (skipped,) = result.skipped
    assert skipped["path"] == str(copy) and str(sidecar) in skipped["reason"] and "not readable XMP" in skipped["reason"] and "left in place" in skipped["reason"]


def test_undo_leaves_a_sidecar_changed_since(catalog, shot, tmp_path):
    keeper, copy = shot
    result = cleanup.apply(catalog, [removal_of(copy, keeper)], "move", str(tmp_path / "aside"), keep_metadata=True)
    sidecar = keeper.with_suffix(".xmp")
    sidecar.write_bytes(sidecar.read_bytes().replace(b'xmp:Rating="4"', b'xmp:Rating="5"'))  # the user edited it in Lightroom
    errors = {r["path"]: r["error"] for r in cleanup.undo(catalog, result.batch)}
    assert "changed since" in errors[str(sidecar)] and str(sidecar) in errors[str(sidecar)]
    assert errors[str(copy)] is None and b'xmp:Rating="5"' in sidecar.read_bytes()


@pytest.mark.parametrize("state", ["logged only", "written", "changed by another"])
def test_recovery_of_a_sidecar_write(tmp_path, state):
    sidecar = tmp_path / "IMG_1.xmp"
    old, new = b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>", b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><!-- new --></x:xmpmeta>"
    sidecar.write_bytes(old)
    with Catalog(tmp_path / "catalog.sqlite3") as catalog:
        catalog.begin_step("b1", "metadata", str(sidecar), None, len(new), previous=old, written=xmp_sidecar.digest(new))
        if state == "written":
            sidecar.write_bytes(new)
        elif state == "changed by another":
            sidecar.write_bytes(b"someone else's edit")
        (note,) = cleanup.recover(catalog)
        assert catalog.pending_steps() == [] and str(sidecar) in note
        done = [a for a in catalog.actions() if a["action"] == "metadata"]
        assert len(done) == (state == "written")
        if state == "written":
            assert cleanup.undo(catalog, "b1")[0]["error"] is None and sidecar.read_bytes() == old
        else:
            assert sidecar.read_bytes() == (old if state == "logged only" else b"someone else's edit")


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool is not installed (apt-get install libimage-exiftool-perl)")
def test_exiftool_reads_the_written_sidecar(catalog, shot, tmp_path):
    keeper, copy = shot
    cleanup.apply(catalog, [removal_of(copy, keeper)], "move", str(tmp_path / "aside"), keep_metadata=True)
    out = subprocess.run(["exiftool", "-j", "-n", "-XMP:all", str(keeper.with_suffix(".xmp"))], capture_output=True, text=True, check=True, timeout=60)
    (tags,) = json.loads(out.stdout)
    assert "Error" not in tags and "Warning" not in tags, tags
    assert tags["Rating"] == 4 and tags["Subject"] == ["harbour", "Brasil"] and tags["Title"] == "Evening at the pier – São Paulo"
    assert tags["DateTimeOriginal"] == "2018:06:06 22:20:11"
    assert tags["GPSLatitude"] == pytest.approx(-(23 + 31 / 60 + 21.3706 / 3600), abs=1e-5)
    assert tags["GPSLongitude"] == pytest.approx(-(47 + 30 / 60 + 16.1946 / 3600), abs=1e-5)

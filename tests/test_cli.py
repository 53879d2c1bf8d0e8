"""`imgsim` as a script would use it: JSON contracts, exit codes, clear messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PHOTOS, copy_photos
from conftest import run_cli as run
from imgsim_desktop.cli import main


@pytest.fixture
def indexed(tmp_path, data_dir, capsys) -> Path:
    lib = tmp_path / "lib"
    copy_photos(lib, ["ukbench/ukbench00120.jpg", "ukbench/ukbench00120_hflip.jpg", "labelled/dog.jpg", "labelled/pelican.jpg", "scenes/fruits.jpg"])
    copy_photos(lib, ["formats/ukbench09380.jpeg", "formats/ukbench09380.webp", "ukbench/ukbench09268_corrupt.jpg"])
    code, out, _ = run(capsys, "index", str(lib), "--json")
    assert code == 0
    report = json.loads(out)
    assert {"indexed", "skipped", "errors", "model", "provider"} <= report.keys()
    assert report["indexed"] == 7 and report["model"] == "efficientnet-lite0"
    assert report["errors"] == [{"path": str(lib / "ukbench09268_corrupt.jpg"), "error": report["errors"][0]["error"]}]
    return lib


def test_similar_json_one_line_per_query_best_first(indexed, capsys):
    outside = PHOTOS / "ukbench/ukbench00120_resize.jpg"
    code, out, _ = run(capsys, "similar", str(indexed / "ukbench00120.jpg"), str(outside), "-k", "3", "--json")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [q["query"] for q in lines] == [str(indexed / "ukbench00120.jpg"), str(outside)]
    for q in lines:
        scores = [r["score"] for r in q["results"]]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True) and all(-1 <= s <= 1 for s in scores)
    assert lines[0]["results"][0]["path"] == str(indexed / "ukbench00120_hflip.jpg")
    assert str(indexed / "ukbench00120.jpg") not in [r["path"] for r in lines[0]["results"]]  # the query itself is not a result
    assert Path(lines[1]["results"][0]["path"]).name.startswith("ukbench00120")


def test_similar_bad_query_is_reported_and_others_still_answered(indexed, capsys, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really")
    code, out, _ = run(capsys, "similar", str(bad), str(indexed / "dog.jpg"), "--json")
    first, second = (json.loads(line) for line in out.splitlines())
    assert code == 1 and first["results"] == [] and "broken.jpg" in first["query"] and first["error"]
    assert len(second["results"]) == 6


def test_duplicates_json_groups(indexed, capsys):
    code, out, _ = run(capsys, "duplicates", "--json")
    groups = sorted((g["tier"], sorted(Path(m["path"]).name for m in g["members"])) for g in json.loads(out)["groups"])
    assert code == 0
    assert ("duplicate", ["ukbench09380.jpeg", "ukbench09380.webp"]) in groups  # same photo, two formats
    assert ("duplicate", ["ukbench00120.jpg", "ukbench00120_hflip.jpg"]) in groups  # mirrored: a selfie camera's copy


def test_duplicates_suggests_keepers_and_changes_nothing_without_apply(indexed, capsys, tmp_path):
    before = sorted(p.name for p in indexed.iterdir())
    code, out, _ = run(capsys, "duplicates", "--json", "--keep", "resolution,size")
    groups = json.loads(out)["groups"]
    assert code == 0 and sorted(p.name for p in indexed.iterdir()) == before
    for group in groups:
        members = group["members"]
        assert sum(m["suggested_keeper"] for m in members) == 1
        assert any(not m["keep"] for m in members) == (group["tier"] != "similar")  # similar shots only with --tier similar
    code, out, _ = run(capsys, "duplicates", "--json", "--apply", "move", str(tmp_path / "review"), "--protect", str(indexed / "nothing-here"))
    applied = json.loads(out)["applied"]
    moved = sorted(Path(d["path"]).name for d in applied["done"])
    assert code == 0 and moved and applied["failed"] == []
    assert sorted(p.name for p in (tmp_path / "review").iterdir()) == moved
    assert all(not (indexed / name).exists() for name in moved)


def test_models_and_status(indexed, capsys):
    code, out, _ = run(capsys, "models", "--json")
    models = {m["name"]: m for m in map(json.loads, out.splitlines())}  # one object per line
    assert code == 0 and models["efficientnet-lite0"]["installed"] and models["efficientnet-lite0"]["default"]
    assert all(m["install"] for m in models.values() if not m["installed"])
    code, out, _ = run(capsys, "status", "--json")
    status = json.loads(out)
    assert status["files"] == 8 and status["errors"] == 1 and status["embeddings"] == {"efficientnet-lite0": 7}
    assert status["error_files"][0]["path"].endswith("ukbench09268_corrupt.jpg")


def test_unknown_model_is_a_clear_error(data_dir, capsys):
    code, _, err = run(capsys, "similar", str(PHOTOS / "labelled/dog.jpg"), "--model", "nope")
    assert code == 2 and "unknown model 'nope'" in err and "efficientnet-lite0" in err


def test_installed_console_script_runs(data_dir):
    out = subprocess.run([sys.executable, "-m", "imgsim_desktop.cli", "models"], capture_output=True, text=True)
    assert out.returncode == 0 and "efficientnet-lite0" in out.stdout


def test_exact_copies_are_their_own_tier(indexed, capsys):
    code, out, _ = run(capsys, "duplicates", "--json", "--tier", "exact")
    assert code == 0 and json.loads(out)["groups"] == []  # jpeg and webp are near-duplicates, not byte copies
    (indexed / "copy_of_dog.jpg").write_bytes((indexed / "dog.jpg").read_bytes())
    run(capsys, "index", str(indexed), "--json")
    code, out, _ = run(capsys, "duplicates", "--json", "--tier", "exact")
    groups = [(g["tier"], sorted(Path(m["path"]).name for m in g["members"])) for g in json.loads(out)["groups"]]
    assert groups == [("exact", ["copy_of_dog.jpg", "dog.jpg"])]


def test_not_duplicates_pair_never_comes_back(indexed, capsys):
    jpeg, webp = indexed / "ukbench09380.jpeg", indexed / "ukbench09380.webp"
    code, out, _ = run(capsys, "duplicates", "--not-duplicates", str(jpeg), str(webp))
    assert code == 0 and "will not be grouped again" in out
    code, out, _ = run(capsys, "duplicates", "--json")
    names = [sorted(Path(m["path"]).name for m in g["members"]) for g in json.loads(out)["groups"]]
    assert code == 0 and all("ukbench09380.jpeg" not in g or "ukbench09380.webp" not in g for g in names)
    run(capsys, "duplicates", "--not-duplicates", str(webp), str(jpeg), "--undo")
    code, out, _ = run(capsys, "duplicates", "--json")
    assert ["ukbench09380.jpeg", "ukbench09380.webp"] in [sorted(Path(m["path"]).name for m in g["members"]) for g in json.loads(out)["groups"]]


def test_duplicates_say_why_relative_to_the_suggested_keeper(indexed, capsys, monkeypatch):
    from imgsim_desktop.core import duplicates
    from imgsim_desktop.core.duplicates import Group, Member, Placement

    jpeg, webp, other = (str(indexed / n) for n in ("ukbench09380.jpeg", "ukbench09380.webp", "pelican.jpg"))
    code, out, _ = run(capsys, "duplicates", "--json")
    for group in json.loads(out)["groups"]:
        for m in group["members"]:
            reason = m["reason"]
            assert reason["text"] and reason["kind"] in ("keeper", "exact", "duplicate", "similar")
            assert (reason["text"] == "suggested keeper") == m["suggested_keeper"]
            if group["tier"] == "similar" and not m["suggested_keeper"]:
                assert reason["text"] == "This photo is another shot of the same moment as the keeper."

    # Placements made by hand (the duplicate check's own are tested elsewhere): the jpeg is the
    # webp's top-right quarter, mirrored and enlarged; with --keep format,size the jpeg (a lossy WebP
    # ranks below JPEG; the pelican is a smaller JPEG) is the keeper, not the anchor.
    quarter = Placement((-0.5, 0.0, 640.0, 0.0, 0.5, 0.0), (640, 480))
    identity = Placement((1.0, 0.0, 0.0, 0.0, 1.0, 0.0), (640, 480))
    made = [Group("duplicate", [Member(webp, 1.0, placement=identity), Member(jpeg, 0.99, placement=quarter), Member(other, 0.9, placement=identity)])]
    monkeypatch.setattr(duplicates, "find_groups", lambda *a, **k: made)
    code, out, _ = run(capsys, "duplicates", "--json", "--keep", "format,size")
    members = {Path(m["path"]).name: m for m in json.loads(out)["groups"][0]["members"]}
    assert code == 0 and members["ukbench09380.jpeg"]["suggested_keeper"]
    assert members["ukbench09380.jpeg"]["reason"] == {"text": "suggested keeper", "kind": "keeper", "exact": False}
    reason = members["ukbench09380.webp"]["reason"]  # the keeper is a crop of the webp: the webp shows more
    assert reason["area_share"] == 1.0 and reason["keeper_inside_copy"] == 0.25 and reason["mirrored"] and reason["quarter_turns"] == 0
    assert reason["scale"] == 0.5 and reason["exact"] is False and reason["tone"]["gain"] == 1.0
    assert reason["region"] == [[2.0, 0.0], [0.0, 0.0], [0.0, 2.0], [2.0, 2.0]]
    assert reason["text"].startswith("This photo is the keeper with a wider frame (the keeper fills 25 % of it), mirrored, resized to 50 % and re-encoded as WebP")
    other_reason = members["pelican.jpg"]["reason"]
    assert other_reason["keeper_inside_copy"] == 0.25 and other_reason["mirrored"] and {"rotation", "tone", "region"} <= other_reason.keys()

    code, out, _ = run(capsys, "duplicates", "--keep", "format,size")
    lines = out.splitlines()
    keeper_line = next(i for i, line in enumerate(lines) if line.endswith("ukbench09380.jpeg"))
    assert "keep  *" in lines[keeper_line] and "wider frame" not in lines[keeper_line + 1]
    webp_line = next(i for i, line in enumerate(lines) if line.endswith("ukbench09380.webp"))
    assert lines[webp_line + 1].strip().startswith("This photo is the keeper with a wider frame")


def test_apply_move_into_the_library_is_refused_before_the_scan(indexed, capsys):
    before = sorted(p.name for p in indexed.iterdir())
    code, _, err = run(capsys, "duplicates", "--apply", "move", str(indexed / "dupes"))
    assert code == 2 and "inside the library folder" in err and "nothing was changed" in err
    assert sorted(p.name for p in indexed.iterdir()) == before


def test_apply_move_then_history_and_undo_bring_everything_back(indexed, capsys, tmp_path):
    before = {p.name: p.read_bytes() for p in indexed.iterdir()}
    code, out, _ = run(capsys, "duplicates", "--json", "--apply", "move", str(tmp_path / "aside"))
    applied = json.loads(out)["applied"]
    assert code == 0 and applied["done"] and not applied["failed"] and applied["skipped"] == []
    moved = {Path(d["path"]).name for d in applied["done"]}
    assert moved and not any((indexed / n).exists() for n in moved)
    code, out, _ = run(capsys, "history")
    assert code == 0 and applied["batch"] in out and f"imgsim undo {applied['batch']}" in out
    code, out, _ = run(capsys, "undo", applied["batch"])
    assert code == 0 and out.startswith(f"moved {len(moved)} photo(s) back")
    assert {p.name: p.read_bytes() for p in indexed.iterdir()} == before
    code, _, err = run(capsys, "undo", "no-such-batch")
    assert code == 2 and "no cleanup no-such-batch" in err


def test_apply_trash_then_undo_brings_everything_back_from_the_trash_and_reindexing_embeds_nothing(indexed, capsys):
    from imgsim_desktop.core import trash_info

    if not trash_info.FREEDESKTOP:
        pytest.skip("the Trash is read back on Linux and the BSDs only")
    before = {p.name: p.read_bytes() for p in indexed.iterdir()}
    code, out, _ = run(capsys, "duplicates", "--apply", "trash")
    assert code == 0 and out.splitlines()[-1].startswith("trashed ")
    batch = out.split("imgsim undo ")[1].split(")")[0]
    code, out, _ = run(capsys, "history")
    assert f"imgsim undo {batch}" in out and "/Trash/files/" in out  # where each went
    code, out, _ = run(capsys, "undo", batch)
    assert code == 0 and out.startswith("moved ") and " back" in out
    assert {p.name: p.read_bytes() for p in indexed.iterdir()} == before
    code, out, _ = run(capsys, "index", str(indexed), "--json")
    report = json.loads(out)
    assert code == 0 and report["indexed"] == 0 and report["moved"] >= 1  # relinked, not embedded again


def test_keep_metadata_writes_the_keepers_sidecar_and_undo_takes_it_out(tmp_path, data_dir, capsys):
    from PIL import Image

    lib = tmp_path / "lib"
    lib.mkdir()
    original = PHOTOS / "scenes" / "ela_original.jpg"  # date and GPS in its EXIF
    (lib / "a").mkdir()
    (lib / "a" / "IMG_1.jpg").write_bytes(original.read_bytes())
    with Image.open(original) as img:
        img.resize((img.width * 2, img.height * 2)).save(lib / "IMG_1 big.jpg", quality=95)  # the keeper: larger, stripped
    assert run(capsys, "index", str(lib))[0] == 0
    code, _, err = run(capsys, "duplicates", "--keep-metadata")
    assert code == 2 and "--apply" in err
    code, out, _ = run(capsys, "duplicates", "--json", "--apply", "move", str(tmp_path / "aside"), "--keep-metadata", "--keep", "resolution")
    applied = json.loads(out)["applied"]
    assert code == 0 and [Path(d["path"]).name for d in applied["done"]] == ["IMG_1.jpg"]
    (kept,) = applied["metadata"]
    assert kept["sidecar"] == str(lib / "IMG_1 big.xmp") and kept["kinds"] == ["date", "place"] and kept["created"]
    assert b"exif:GPSLatitude" in (lib / "IMG_1 big.xmp").read_bytes()
    code, out, _ = run(capsys, "undo", applied["batch"])
    assert code == 0 and "took the kept metadata out of 1 sidecar(s)" in out
    assert not (lib / "IMG_1 big.xmp").exists() and (lib / "a" / "IMG_1.jpg").exists()


def test_hostile_file_names_cannot_rewrite_the_terminal(tmp_path, data_dir, capsys):
    lib = tmp_path / "lib"
    [photo] = copy_photos(lib, ["labelled/dog.jpg"])
    hostile = lib / "b\x1b[1A\x1b[2K\rfake.jpg"
    photo.rename(hostile)
    (lib / "copy.jpg").write_bytes(hostile.read_bytes())
    assert run(capsys, "index", str(lib))[0] == 0
    code, out, _ = run(capsys, "duplicates")
    assert code == 0 and "\x1b" not in out and "\r" not in out and "b\\x1b[1A\\x1b[2K\\x0dfake.jpg" in out
    code, out, _ = run(capsys, "duplicates", "--json")
    assert str(hostile) in [m["path"] for g in json.loads(out)["groups"] for m in g["members"]]  # JSON keeps the real name


def test_ctrl_c_during_a_cleanup_stops_after_the_file_in_hand(capsys):
    import os
    import signal

    from imgsim_desktop.cli_cleanup import _stop_on_ctrl_c

    before = signal.getsignal(signal.SIGINT)  # ignored when the suite runs in the background
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with _stop_on_ctrl_c(tell=True) as stop:
        assert not stop()
        os.kill(os.getpid(), signal.SIGINT)  # the first Ctrl+C only asks to stop
        assert stop()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # a second one interrupts at once
    assert "stopping after this file" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back as it was
    signal.signal(signal.SIGINT, before)


def test_bad_options_are_one_clear_line(data_dir, capsys):
    code, _, err = run(capsys, "duplicates", "--keep", "bogus")
    assert code == 2 and err.strip() == "imgsim: --keep: unknown keeper rule(s): bogus; known: resolution, size, oldest, newest, format, folder, metadata, sharpness"
    with pytest.raises(SystemExit) as stop:
        main(["similar", "x.jpg", "-k", "-3"])
    assert stop.value.code == 2 and "-3: must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, says",
    [
        (["duplicates", "--sensitivity", "7"], "7: must be from 0 to 1"),
        (["duplicates", "--sensitivity", "nan"], "nan: must be from 0 to 1"),
        (["watch", "x", "--poll", "-1"], "-1: must be a number of seconds above 0"),  # a busy loop before
        (["watch", "x", "--poll", "nan"], "nan: must be a number of seconds above 0"),
        (["report", "--out", "r.html", "-k", "-2"], "-2: must be at least 1"),
        (["report", "--out", "r.html", "--samples", "0"], "0: must be at least 1"),  # 'the library is empty' before
    ],
)
def test_numbers_out_of_range_are_refused_before_anything_runs(data_dir, capsys, argv, says):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2 and says in capsys.readouterr().err


def test_a_closed_pipe_ends_the_command_quietly(indexed, capsys, monkeypatch):
    """`imgsim duplicates --json | head`: the reader left, so the command ends quietly, no BrokenPipeError traceback."""
    import io

    class ClosedPipe(io.StringIO):
        def write(self, _text):
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self):
            raise io.UnsupportedOperation("no file descriptor")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["duplicates", "--json"]) == 0
    assert main(["status"]) == 0


def test_apply_says_what_went_with_the_photos_and_undo_brings_it_back(tmp_path, data_dir, capsys):
    from test_companions import write_shot

    lib = tmp_path / "lib"
    write_shot(lib / "shoot", kinds={"IMG_1.CRW": "raw", "IMG_1.xmp": "xmp"})  # the camera's RAW+JPEG pair and its sidecar
    write_shot(lib / "backup", kinds={"IMG_1.JPG.xmp": "xmp", "IMG_1.AAE": "aae"})  # a copy of the JPEG, with sidecars of its own
    before = {p: p.read_bytes() for p in lib.rglob("*") if p.is_file()}
    assert run(capsys, "index", str(lib))[0] == 0
    # Keep the backup: the shot's JPEG would go, but its RAW is a photo of the library (indexed), so
    # it stays, and with it the sidecar the two share; only a photo the user chose ever moves.
    code, out, _ = run(capsys, "duplicates", "--prefer-folder", str(lib / "backup"))
    assert code == 0 and "one shot with IMG_1.CRW (RAW file), which stays" in out
    assert "1 suggested for removal (" in out and "(and" not in out
    code, out, _ = run(capsys, "duplicates", "--apply", "move", str(tmp_path / "aside"))  # by default the pair's JPEG is the keeper
    assert code == 0 and "one shot with IMG_1.CRW (RAW file), which stays" in out
    assert "moved 1 photo(s) (and 2 sidecars); batch" in out
    assert sorted(p.name for p in (tmp_path / "aside").iterdir()) == ["IMG_1.AAE", "IMG_1.JPG", "IMG_1.JPG.xmp"]
    assert sorted(p.name for p in (lib / "backup").iterdir()) == []
    batch = out.split("imgsim undo ")[1].split(")")[0]
    code, out, _ = run(capsys, "history")
    assert "IMG_1.AAE" in out and "(sidecar, with its photo)" in out
    code, out, _ = run(capsys, "undo", batch)
    assert code == 0 and out.startswith("moved 1 photo(s) (and 2 sidecars) back")
    assert {p: p.read_bytes() for p in lib.rglob("*") if p.is_file()} == before

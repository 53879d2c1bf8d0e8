"""The CLI as a newcomer meets it (issue 17): every command's --json is one object per line, the
models list is whole and its install command runs as copied, index summaries say what happened
to missing folders and known unreadable files, a closed pipe is quiet, and the report says the
terminal's command and folds exact copies."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PHOTOS, REPO, copy_photos
from conftest import run_cli as run
from imgsim_desktop.cli import build_parser, main
from imgsim_desktop.core.backbones import list_models


@pytest.fixture
def library(tmp_path, data_dir, capsys) -> Path:
    lib = tmp_path / "lib"
    copy_photos(lib, ["ukbench/ukbench00120.jpg", "ukbench/ukbench00120_resize.jpg", "labelled/dog.jpg", "labelled/pelican.jpg"])
    copy_photos(lib, ["scenes/fruits.jpg", "ukbench/ukbench09268_corrupt.jpg"])
    shutil.copyfile(lib / "dog.jpg", lib / "dog copy.jpg")
    shutil.copyfile(lib / "dog.jpg", lib / "dog (2).jpg")
    code, _, _ = run(capsys, "index", str(lib))
    assert code == 0
    return lib


def json_lines(out: str) -> list[dict]:
    lines = out.splitlines()
    assert lines, "no output"
    objects = [json.loads(line) for line in lines]
    assert all(isinstance(o, dict) for o in objects), out[:300]
    return objects


def _subcommands(parser) -> set[str]:
    """Every runnable command path, nested ones included ('eval perturb', 'models add')."""
    import argparse

    found = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = _subcommands(sub)
                found |= {f"{name} {n}" for n in nested}
                if not any(isinstance(a, argparse._SubParsersAction) and a.required for a in sub._actions):
                    found.add(name)
    return found


def test_every_command_prints_one_json_object_per_line(library, data_dir, tmp_path, capsys):
    seen: dict[str, list[dict]] = {}

    def check(name: str, *argv: str, code: int = 0) -> list[dict]:
        got, out, err = run(capsys, *argv, "--json")
        assert got == code, f"{name}: exit {got}: {err}"
        seen[name] = json_lines(out)
        return seen[name]

    check("index", "index", str(library))
    check("similar", "similar", str(library / "dog.jpg"), str(library / "fruits.jpg"))
    check("status", "status")
    models = check("models", "models")
    assert {m["name"] for m in models} == {s.name for s in list_models()}
    check("models add", "models", "add", "my-net", str(REPO / "models" / "efficientnet_lite0.onnx"), "--input-size", "224")
    check("duplicates", "duplicates")
    moved = check("duplicates --apply", "duplicates", "--apply", "move", str(tmp_path / "dupes"))[0]
    check("history", "history")
    check("undo", "undo", moved["applied"]["batch"])
    check("eval map", "eval", "map", "--out", str(tmp_path / "map.png"))
    check("report", "report", "--out", str(tmp_path / "r.html"), "--samples", "1", "--models", "efficientnet-lite0")
    originals = tmp_path / "originals"
    copy_photos(originals, ["aib/0.jpg", "aib/1.jpg", "aib/10.jpg"])
    check("eval perturb", "eval", "perturb", "--originals", str(originals), "--models", "efficientnet-lite0", "--out", str(tmp_path / "eval"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "imgsim_desktop.cli", "watch", str(library), "--json", "--poll", "0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        first = [proc.stdout.readline() for _ in range(2)]  # the mode, then the start-up check
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    seen["watch"] = json_lines("".join(first) + rest)
    assert proc.returncode == 0, err
    check("restore-catalog", "restore-catalog")  # last: it puts the backup in place of the catalog
    assert _subcommands(build_parser()) <= {name.split(" --")[0] for name in seen}, "a command without a --json check here"


def test_models_list_shows_whole_licences_and_a_command_that_runs_as_copied(data_dir, capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0
    specs = list_models()
    for spec in specs:
        assert spec.licence in out  # never cut
    missing = [s for s in specs if not s.installed]
    assert missing, "every backbone is installed: nothing to check the command with"
    lines = out.splitlines()
    hint_line = lines[lines.index(next(line for line in lines if line.split()[0] == missing[0].name)) + 1]
    command = hint_line.split("add it with: ", 1)[1]
    assert command == missing[0].install_hint and "DIR" not in command and "..." not in command
    *installs, export = (shlex.split(part) for part in command.split(" && "))
    torch = next(i for i in installs if "torch" in i)
    assert torch[1:4] == ["-m", "pip", "install"] and torch[-2:] == ["--index-url", "https://download.pytorch.org/whl/cpu"]  # never PyPI's CUDA build
    assert all(i[1:4] == ["-m", "pip", "install"] for i in installs) and any("onnx" in i for i in installs)
    assert Path(export[0]).is_file() and Path(export[1]).is_file() and export[2] == missing[0].name
    # The export script takes the command's arguments: --half-only needs no torch and stops at the missing file.
    done = subprocess.run([*export, "--half-only"], capture_output=True, text=True, timeout=120)
    assert f"{missing[0].name}: " in done.stderr and "does not exist; export it first" in done.stderr, done.stderr


def test_index_of_a_missing_folder_says_not_found_in_its_summary(data_dir, tmp_path, capsys):
    gone = tmp_path / "nonexistent_dir"
    code, out, err = run(capsys, "index", str(gone))
    assert code == 1
    assert err.strip() == f"not found: {gone}"
    assert out.startswith("indexed 0, unchanged 0, removed 0, errors 0, not found 1 in ")
    code, out, _ = run(capsys, "index", str(gone), "--json")
    assert code == 1 and json.loads(out)["missing_paths"] == [str(gone)]


def test_a_second_index_says_known_unreadable_files_were_skipped(library, capsys):
    code, out, err = run(capsys, "index", str(library))
    assert code == 0 and err == ""
    assert re.match(
        r"indexed 0, unchanged 8, removed 0, errors 0 \(of the unchanged, 1 could not be read before and was skipped: "
        r"`imgsim status` lists it, --retry-failed tries it again\) in ",
        out,
    ), out
    code, out, _ = run(capsys, "index", str(library), "--json")
    assert json.loads(out)["known_unreadable"] == 1
    code, out, err = run(capsys, "index", str(library), "--retry-failed")
    assert "ukbench09268_corrupt.jpg" in err and "errors 1 in " in out and "could not be read before" not in out


@pytest.mark.parametrize("argv", [["status", "--json"], ["duplicates", "--json"], ["models", "--json"]])
def test_a_pipe_closed_early_ends_quietly(library, data_dir, argv):
    """`imgsim status --json | head -0`: a real pipe whose reader is gone before the first write."""
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run([sys.executable, "-m", "imgsim_desktop.cli", *argv], stdout=write, stderr=subprocess.PIPE, text=True, timeout=300)
    finally:
        os.close(write)
    assert done.returncode == 0 and "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr


def test_report_with_a_backbone_not_indexed_says_the_terminal_command(library, data_dir, tmp_path, capsys):
    out_html = tmp_path / "r.html"
    code, out, _ = run(capsys, "report", "--out", str(out_html), "--photo", str(library / "pelican.jpg"), "--models", "efficientnet-lite0,efficientnet-lite2")
    assert code == 0
    command = f"imgsim index --model efficientnet-lite2 {library}"  # the data folder from $IMGSIM_DATA_DIR, as this run
    assert f"efficientnet-lite2: no neighbours in the report, the library is not indexed with it yet; to add them: {command}" in out
    page = out_html.read_text()
    assert f"run {command}" in page and "choose it as the backbone" not in page
    code, out, _ = run(capsys, "report", "--out", str(out_html), "--photo", str(library / "pelican.jpg"), "--models", "efficientnet-lite2", "--data-dir", str(data_dir))
    assert f"to add them: imgsim index --model efficientnet-lite2 --data-dir {data_dir} {library}\n" in out
    # The command as printed does what it says: afterwards the report has neighbours under both.
    assert main(shlex.split(out.rsplit("to add them: ", 1)[1])[1:]) == 0
    code, out, _ = run(capsys, "report", "--out", str(out_html), "--photo", str(library / "pelican.jpg"), "--models", "efficientnet-lite0,efficientnet-lite2")
    assert code == 0 and "not indexed" not in out and "not indexed" not in out_html.read_text()


def test_report_folds_exact_copies_and_fits_a_1400_px_window(library, data_dir, tmp_path, capsys):
    from imgsim_desktop.research import report

    out_html = tmp_path / "r.html"
    code, _, _ = run(capsys, "report", "--out", str(out_html), "--photo", str(library / "pelican.jpg"), "-k", "3", "--models", "efficientnet-lite0")
    assert code == 0
    page = out_html.read_text()
    row = page.split("<h4>EfficientNet-Lite0</h4>", 1)[1].split("</div>", 1)[0]
    shown = re.findall(r"<br>([^<]+?)(?:<details|</figcaption>)", row)
    assert len(shown) == 3 and len(set(shown)) == 3, shown  # three distinct photos, not dog three times
    dogs = [name for name in shown if name.startswith("dog")]
    assert len(dogs) == 1 and "+2 exact copies" in row
    folded = {"dog.jpg", "dog copy.jpg", "dog (2).jpg"} - set(dogs)
    assert all(name in row for name in folded)
    # Eight figures and their gaps, with the page margins and a scroll bar, within 1400 px; more wrap.
    assert 8 * report.FIGURE_PX + 7 * report.GAP_PX + 2 * report.MARGIN_PX + 20 <= 1400
    assert "flex-wrap: wrap" in report.STYLE and "overflow-x" not in report.STYLE
    assert f"width: {report.FIGURE_PX}px" in report.STYLE


def test_a_sample_with_exact_copies_shows_them_under_it(library, data_dir, tmp_path, capsys):
    out_html = tmp_path / "r.html"
    code, _, _ = run(capsys, "report", "--out", str(out_html), "--photo", str(library / "dog.jpg"), "-k", "3", "--models", "efficientnet-lite0")
    assert code == 0
    page = out_html.read_text()
    sample_row, neighbours = page.split("<h4>EfficientNet-Lite0</h4>", 1)
    assert "+2 exact copies" in sample_row and "dog copy.jpg" in sample_row and "dog (2).jpg" in sample_row
    assert "dog copy.jpg" not in neighbours and "dog (2).jpg" not in neighbours


def test_no_onnx_runtime_is_one_line_naming_both_choices(library, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as after `pip install -e .` without an extra
    # A photo from outside the library must be embedded (a library photo's stored vector needs no runtime).
    code, out, err = run(capsys, "similar", str(PHOTOS / "labelled/cat.jpg"))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "ONNX Runtime is not installed" in err and "`pip install onnxruntime`" in err and "`pip install onnxruntime-gpu`" in err


@pytest.mark.parametrize(
    "platform",
    [("linux", "x86_64"), ("win32", "AMD64"), ("linux", "aarch64"), ("darwin", "arm64"), ("darwin", "x86_64")],
)
def test_each_extra_installs_exactly_one_onnx_runtime(platform):
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = {"sys_platform": platform[0], "platform_machine": platform[1], "extra": ""}

    def runtimes(reqs: list[str]) -> set[str]:
        wanted = [Requirement(r) for r in reqs]
        return {r.name for r in wanted if r.name.startswith("onnxruntime") and (r.marker is None or r.marker.evaluate(env))}

    assert runtimes(project["dependencies"]) == set()  # the base names none, so an extra can choose
    extras = project["optional-dependencies"]
    assert runtimes(extras["cpu"]) == {"onnxruntime"}
    assert len(runtimes(extras["gpu"])) == 1
    assert runtimes(extras["gpu"]) == ({"onnxruntime-gpu"} if platform in (("linux", "x86_64"), ("win32", "AMD64")) else {"onnxruntime"})
    assert runtimes(extras["test"]) == set()  # the README's test command adds `cpu` itself


def test_the_app_and_the_cli_give_one_size_for_the_same_photos(library, capsys):
    from imgsim_desktop.ui.text import human_size

    code, out, _ = run(capsys, "duplicates", "--json")
    doomed = [m["path"] for g in json.loads(out)["groups"] for m in g["members"] if not m["keep"]]
    total = sum(os.path.getsize(p) for p in doomed)
    assert len(doomed) >= 2 and total > 1000
    code, out, _ = run(capsys, "duplicates")
    cli_size = re.search(r"suggested for removal \(([\d.]+ (?:bytes|[KMG]B))\)", out).group(1)
    assert cli_size == human_size(total) == (f"{total / 1e6:.1f} MB" if total >= 1e6 else f"{total / 1e3:.1f} KB")

"""Shared fixtures. Tests never touch the user's real data dir: IMGSIM_DATA_DIR points at a temp dir."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PHOTOS = REPO.parent / "shared" / "photos"

# Set before any imgsim module computes a data dir, for every test and subprocess.
os.environ["IMGSIM_DATA_DIR"] = tempfile.mkdtemp(prefix="imgsim-test-default-")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# send2trash reads this once at import: tests trash into their own folder, never the user's trash.
TRASH_HOME = Path(tempfile.mkdtemp(prefix="imgsim-test-xdg-"))
os.environ["XDG_DATA_HOME"] = str(TRASH_HOME)


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("IMGSIM_DATA_DIR", str(path))
    return path


def copy_photos(dest: Path, names: list[str]) -> list[Path]:
    """Copy photos (paths relative to shared/photos) into dest, flat; returns the copies."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for name in names:
        target = dest / Path(name).name
        shutil.copyfile(PHOTOS / name, target)
        out.append(target)
    return out


@pytest.fixture(scope="session")
def lite0():
    from imgsim_desktop.core.backbones import Backbone, get_model

    return Backbone(get_model("efficientnet-lite0"), device="cpu")


def rewind_catalog(path: Path, version: int, *statements: str) -> None:
    """Make a current catalog look like one an older release wrote: undo its newer schema parts."""
    db = sqlite3.connect(path)
    for sql in statements:
        db.execute(sql)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
    db.commit()
    db.close()


@pytest.fixture
def wait_part_way(monkeypatch):
    """``wait_part_way(qtbot, win, start)``: run ``start()`` and return once the window's indexer
    has reported some but not all photos done, with the status bar's progress showing.

    The test photos are small: a fast machine indexes a hundred in well under a second, quicker
    than the 4 Hz progress reports, and a poll of the progress bar can miss such a run (it did in
    CI). So each decode is slowed to make the run last seconds, and the test listens to the
    progress signal itself."""
    from imgsim_desktop.core.indexer import Indexer

    decode = Indexer._decode

    def slow_decode(self, f):
        time.sleep(0.03)
        return decode(self, f)

    monkeypatch.setattr(Indexer, "_decode", slow_decode)

    def wait(qtbot, win, start) -> None:
        part_way: list[int] = []
        win.writer.progress.connect(lambda done, total, *_: part_way.append(done) if 0 < done < total else None)
        start()
        qtbot.waitUntil(lambda: bool(part_way) and win.progress.isVisible(), timeout=30_000)

    return wait


def indexed_window(qtbot, tmp_path: Path, data_dir: Path, names: list[str]):
    """A main window on a library of ``names`` (under shared/photos, copied into tmp_path/lib),
    indexed first, shown once its photos are listed and its start-up check is done."""
    from imgsim_desktop.core.engine import Engine
    from imgsim_desktop.core.library_service import index_now
    from imgsim_desktop.ui.main_window import MainWindow

    copy_photos(tmp_path / "lib", names)
    with Engine(data_dir) as engine:
        index_now(engine, [str(tmp_path / "lib")])
    win = MainWindow(data_dir=str(data_dir))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.library_model.total() >= len(names) and win.last_report is not None, timeout=30_000)
    return win


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """`imgsim ARGV` in this process: (exit code, stdout, stderr)."""
    from imgsim_desktop.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def engine(data_dir, lite0):
    """An Engine on the test's data folder sharing one ONNX session for the whole run."""
    from imgsim_desktop.core.engine import Engine

    with Engine(data_dir) as eng:
        eng._backbone = lite0
        yield eng

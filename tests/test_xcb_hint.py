"""`imgsim-desktop` on a Linux machine missing an xcb library: a hint naming it, not Qt's abort.

The missing library is real to the loader: a copy of Qt's xcb plugin and its XcbQpa library whose
dependency names were changed to sonames no system has, so ldd reports them "not found"."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from imgsim_desktop import xcb_check

linux_with_ldd = pytest.mark.skipif(not sys.platform.startswith("linux") or not shutil.which("ldd"), reason="ldd and Qt's xcb plugin are Linux things")
HIDDEN = {b"libxcb-icccm.so.4": b"libxcb-zzzzz.so.4", b"libxcb-keysyms.so.1": b"libxcb-yyyyyyy.so.1"}  # same lengths


def _real_plugin() -> Path:
    from imgsim_desktop.__main__ import _xcb_plugin

    return _xcb_plugin()


@pytest.fixture
def hidden_plugin(tmp_path) -> Path:
    """The plugin, with libxcb-icccm and libxcb-keysyms hidden from the loader."""
    real = _real_plugin()
    qt_lib = (real.parent / ".." / ".." / "lib").resolve()
    lib, platforms = tmp_path / "Qt" / "lib", tmp_path / "Qt" / "plugins" / "platforms"
    lib.mkdir(parents=True)
    platforms.mkdir(parents=True)
    shutil.copy(real, platforms / real.name)  # finds its Qt libraries through $ORIGIN/../../lib
    for other in qt_lib.iterdir():  # Qt and its ICU
        (lib / other.name).symlink_to(other)
    qpa = lib / "libQt6XcbQpa.so.6"
    qpa.unlink()
    data = (qt_lib / "libQt6XcbQpa.so.6").read_bytes()
    for name, fake in HIDDEN.items():
        assert name + b"\0" in data, f"libQt6XcbQpa no longer names {name.decode()}: choose another library to hide"
        data = data.replace(name + b"\0", fake + b"\0")
    qpa.write_bytes(data)
    return platforms / real.name


@linux_with_ldd
def test_missing_libraries_are_the_ones_the_loader_cannot_find(hidden_plugin):
    already = set(xcb_check.missing_libraries(_real_plugin()))  # what this machine lacks anyway (nothing, on CI)
    found = set(xcb_check.missing_libraries(hidden_plugin))
    assert found - already == {"libxcb-zzzzz.so.4", "libxcb-yyyyyyy.so.1"}


@linux_with_ldd
def test_app_start_prints_the_hint_instead_of_qts_abort(hidden_plugin, tmp_path):
    script = (
        "import sys; from pathlib import Path; import imgsim_desktop.__main__ as m; "
        "m._xcb_plugin = lambda: Path(sys.argv[1]); sys.exit(m.main(['--data-dir', sys.argv[2]]))"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "DISPLAY": ":99"}
    done = subprocess.run([sys.executable, "-c", script, str(hidden_plugin), str(tmp_path / "data")], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    missing_line = next(line for line in done.stderr.splitlines() if "cannot load: missing " in line)
    assert "libxcb-zzzzz.so.4" in missing_line and "libxcb-yyyyyyy.so.1" in missing_line  # beside any this machine lacks anyway
    assert "Could not load the Qt platform plugin" not in done.stderr  # Qt never got to abort
    assert not (tmp_path / "data").exists()  # nothing was started


def test_hint_names_the_debian_packages_in_one_command():
    text = xcb_check.hint(["libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libfoo.so.2"])
    assert "missing libxcb-icccm.so.4, libxcb-keysyms.so.1, libfoo.so.2" in text
    assert "sudo apt-get install libxcb-icccm4 libxcb-keysyms1\n" in text
    assert "provides libfoo.so.2" in text


def test_missing_libraries_reads_ldds_not_found_lines(tmp_path, monkeypatch):
    fake_ldd = tmp_path / "ldd"
    fake_ldd.write_text(
        "#!/bin/sh\necho '\tlibQt6XcbQpa.so.6 => /x/libQt6XcbQpa.so.6 (0x1)'\necho '\tlibxcb-icccm.so.4 => not found'\n"
        "echo '\tlibxcb-keysyms.so.1 => not found'\necho '\tlibxcb-icccm.so.4 => not found'\n"
    )
    fake_ldd.chmod(0o755)
    plugin = tmp_path / "libqxcb.so"
    plugin.write_bytes(b"\x7fELF")
    monkeypatch.setattr(xcb_check, "LDD", (str(fake_ldd),))
    assert xcb_check.missing_libraries(plugin) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert xcb_check.missing_libraries(tmp_path / "absent.so") == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="xcb is Linux's")
def test_only_an_xcb_start_is_checked():
    assert xcb_check.uses_xcb({"QT_QPA_PLATFORM": "xcb"})
    assert xcb_check.uses_xcb({})  # X11 session or none: Qt picks xcb
    assert not xcb_check.uses_xcb({"QT_QPA_PLATFORM": "offscreen"})
    assert not xcb_check.uses_xcb({"QT_QPA_PLATFORM": "wayland;xcb"})
    assert not xcb_check.uses_xcb({"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"})
    assert xcb_check.uses_xcb({"QT_QPA_PLATFORM": "offscreen"}, ["-platform", "xcb"])

"""The installable app: --self-test from source, and the PyInstaller bundle built, checked and installed.

The bundle test is the slow one (a clean build venv the first time, then PyInstaller: minutes on
2 cores); it runs packaging/build.py exactly as a release would, so CI proves that a clean clone
can produce a working, portable executable.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

LINUX_X86_64 = sys.platform.startswith("linux") and platform.machine() == "x86_64"
# The goals: a one-folder CPU build of at most 350 MB that starts to its window within 2 s.
# Last measured: 341.2 MB on Linux x86-64 (330.3 MB at commit c7da024), where build.py compiles a slim OpenCV. A dependency or plugin that
# grows, or a trim that stops working, fails here. Elsewhere OpenCV's wheel (~150 MB) ships as it is.
SIZE_CEILING_MB = 350 if LINUX_X86_64 else 500
STARTUP_GOAL_S = 2.0


def _self_test(cmd: list[str], **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("IMGSIM_MODELS_DIR", "IMGSIM_DATA_DIR")}
    full_env.update(QT_QPA_PLATFORM="offscreen", **env)
    return subprocess.run([*cmd, "--self-test"], env=full_env, capture_output=True, text=True, timeout=600)


def test_self_test_from_source_passes_and_opens_the_window():
    proc = _self_test([sys.executable, "-m", "imgsim_desktop"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    for step in ("bundle", "model", "index", "query", "annoy", "opencv", "window"):
        assert any(ln.startswith(f"ok   {step} ") for ln in lines), proc.stdout
    assert "ukbench00120_resize.jpg first" in proc.stdout
    assert lines[-1] == "self-test passed"


def test_self_test_names_what_is_broken_and_fails(tmp_path):
    proc = _self_test([sys.executable, "-m", "imgsim_desktop"], IMGSIM_MODELS_DIR=str(tmp_path))
    assert proc.returncode == 1
    assert f"FAIL bundle: no manifest.json in {tmp_path}" in proc.stdout
    # The window step fails too (the app cannot start without a manifest): every broken step is named.
    assert proc.stdout.splitlines()[-1].startswith("self-test FAILED: bundle")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the bundle test and install script are Linux-only here")
@pytest.mark.bundle
def test_bundle_builds_passes_self_test_and_installs(tmp_path):
    dist = tmp_path / "dist"
    # The build venv and PyInstaller's cache live in build/ and are reused by later runs.
    build = subprocess.run([sys.executable, str(REPO / "packaging" / "build.py"), "--dist", str(dist)], capture_output=True, text=True, timeout=4500)
    assert build.returncode == 0, build.stdout[-6000:] + build.stderr[-6000:]
    assert "self-test passed" in build.stdout
    report = json.loads((dist / "build-report.json").read_text())

    if LINUX_X86_64:
        baseline, fast = report["annoy"], report["annoy_fast"]
        assert baseline["portable"] and baseline.get("march") in (None, ["x86-64-v2"]) and not any(baseline["found"].values()), baseline
        assert fast["portable"] and fast["found"]["zmm (AVX-512)"] == fast["found"]["opmask {%k} (AVX-512)"] == 0, fast
        # The bundle picks the AVX2 build only where the CPU has x86-64-v3, and can be told not to.
        has_v3 = {"avx2", "fma", "bmi2", "movbe"} <= set(Path("/proc/cpuinfo").read_text().split())
        assert ("x86-64-v3 build" if has_v3 else "baseline build") in build.stdout
        forced = _self_test([str(dist / "imgsim-desktop" / "imgsim-desktop")], IMGSIM_ANNOY_BASELINE="1")
        assert forced.returncode == 0 and "trees, baseline build" in forced.stdout, forced.stdout + forced.stderr
    assert report["size"]["mb"] <= SIZE_CEILING_MB, report["size"]
    assert report["startup"]["median_s"] <= STARTUP_GOAL_S, report["startup"]

    internal = dist / "imgsim-desktop" / "_internal"
    assert sorted(p.name for p in (internal / "models").iterdir()) == [
        "efficientnet_lite0.onnx", "efficientnet_lite2.onnx", "imagenet_classes.txt", "manifest.json", "mobilenetv2_features.onnx",
    ]  # fmt: skip
    assert not list(internal.rglob("*onnxruntime_providers_cuda*")) and not (internal / "pillow_heif").exists()
    # The trims of packaging/imgsim-desktop.spec took effect: no QtNetwork or OpenSSL, the reduced
    # ICU data library, one real copy of the libgfortran numpy and scipy share.
    assert not list(internal.rglob("*Qt6Network*")) and not list(internal.rglob("libcrypto.so*")) and not list(internal.rglob("libssl.so*"))
    if LINUX_X86_64:
        # OpenCV is build.py's own: no FFmpeg, codecs or OpenBLAS beside it.
        assert not (internal / "opencv_python_headless.libs").exists() and not list(internal.rglob("libavcodec*"))
        assert all(p.stat().st_size < 10e6 for p in internal.glob("PySide6/Qt/lib/libicudata.so.*"))
        shared = [p for p in internal.glob("scipy.libs/libgfortran-*") if (internal / "numpy.libs" / p.name).exists()]
        assert shared and all(p.is_symlink() and p.resolve() == (internal / "numpy.libs" / p.name).resolve() for p in shared)

    prefix = tmp_path / "prefix"
    script = dist / "imgsim-desktop" / "install-linux.sh"
    install = subprocess.run([str(script), "--prefix", str(prefix)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    desktop = (prefix / "share/applications/imgsim-desktop.desktop").read_text()
    assert f"Exec={prefix}/opt/imgsim-desktop/imgsim-desktop %F" in desktop
    assert (prefix / "share/icons/hicolor/256x256/apps/imgsim-desktop.png").is_file()
    assert (prefix / "share/icons/hicolor/scalable/apps/imgsim-desktop.svg").is_file()
    installed = _self_test([str(prefix / "bin" / "imgsim-desktop")])  # through the symlink, as a terminal would
    assert installed.returncode == 0, installed.stdout + installed.stderr

    subprocess.run([str(script), "--prefix", str(prefix), "--uninstall"], check=True, capture_output=True, timeout=120)
    assert not (prefix / "opt/imgsim-desktop").exists() and not (prefix / "bin/imgsim-desktop").exists()
    assert not list((prefix / "share").rglob("imgsim-desktop*"))

#!/usr/bin/env python3
"""Build the one-folder imgsim-desktop app with PyInstaller, check it, and say what it weighs.

    python packaging/build.py                 # clean CPU build venv (made once, reused), build, test
    python packaging/build.py --fresh-venv    # throw the build venv away first
    python packaging/build.py --use-current   # build from the interpreter running this script

Steps: (1) a build venv with the app's dependencies, plain `onnxruntime` (CPU) instead of
`onnxruntime-gpu`, PyInstaller, and Annoy compiled from source with portable flags (x86-64-v2,
plus an x86-64-v3 build the bundle picks on AVX2 CPUs), and on Linux x86-64 OpenCV rebuilt from
source with only the modules the app uses (~150 MB less); (2) proof that each Annoy extension holds
no instructions beyond its level; (3) PyInstaller with
packaging/imgsim-desktop.spec; (4) the bundle's size and its largest parts; (5) the built
executable's --self-test, offscreen; (6) start-to-window time (--startup-probe, offscreen).
A summary goes to <dist>/build-report.json. Standard library only, so any Python 3.11+ runs it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "packaging" / "imgsim-desktop.spec"
APP = "imgsim-desktop"
PYINSTALLER = "pyinstaller>=6.10,<7"

# Annoy's setup.py adds -march=native on x86_64 Linux: the extension then uses every instruction
# the *build* machine has (AVX-512 on a recent server) and dies with SIGILL on a user's older CPU.
# ANNOY_COMPILER_ARGS replaces its whole flag list (comma-separated), so the rest of its defaults
# are restated here; dropping -DANNOYLIB_MULTITHREADED_BUILD would make index builds single-threaded.
# The baseline is x86-64-v2 (SSE4.2, POPCNT: every x86-64 CPU since ~2009), the level numpy's own
# wheels require. Annoy only uses its hand-vectorised distance code with AVX, and the baseline
# build measured ~3x slower at queries, so a second build for x86-64-v3 (AVX2, FMA: Haswell/Zen
# and later) rides along and packaging/pyi_rth_annoy.py loads it where the CPU has those.
DEFAULT_MARCH = "x86-64-v2"
FAST_MARCH = "x86-64-v3"
FAST_ENV = "IMGSIM_ANNOY_V3"  # tells the spec where the x86-64-v3 extension is
ANNOY_FLAGS = ["-D_CRT_SECURE_NO_WARNINGS", "-fpermissive", "-O3", "-ffast-math", "-fno-associative-math", "-DANNOYLIB_MULTITHREADED_BUILD", "-std=c++14"]
# Instruction families (as objdump prints them) and the level that introduced them: ymm registers
# and VEX-encoded (v-prefixed) SIMD mnemonics mean AVX/AVX2/FMA; zmm and opmask registers, AVX-512.
FAMILIES = {
    "zmm (AVX-512)": (re.compile(r"%zmm\d"), "avx512"),
    "opmask {%k} (AVX-512)": (re.compile(r"\{%k\d\}|%k\d\b"), "avx512"),
    "ymm (AVX/AVX2)": (re.compile(r"%ymm\d"), "avx"),
    "VEX mnemonics (AVX/FMA)": (re.compile(r"^\s*[0-9a-f]+:\s+v(?!err|erw)[a-z0-9]+\s", re.M), "avx"),
}
ALLOWED = {"x86-64": set(), "x86-64-v2": set(), "x86-64-v3": {"avx"}, "x86-64-v4": {"avx", "avx512"}}

# OpenCV's PyPI wheel weighs ~150 MB in a bundle: cv2 links FFmpeg, AV1/VPX codecs and OpenBLAS for
# modules the app never loads. The duplicate check uses ORB, Hamming matching, an affine RANSAC and
# resize (core, imgproc, features, geometry), so the bundle gets the *same release* built from its
# PyPI source with only those modules, no codecs, video or LAPACK: a 25 MB cv2, 21 MB stripped.
# calib, stereo and imgcodecs (with no codec libraries) ride along only because opencv-python's
# build insists on typing stubs that name a few of their functions. SSE3 baseline with newer SIMD
# picked at run time, as in OpenCV's own x86-64 wheels, less the AVX-512 variants.
OPENCV = "opencv-python-headless"
OPENCV_CMAKE_ARGS = [
    "-DBUILD_LIST=core,imgproc,features,geometry,flann,calib,stereo,imgcodecs,python3",
    "-DCPU_BASELINE=SSE3", "-DCPU_DISPATCH=SSE4_1,SSE4_2,AVX,FP16,AVX2",
    *(f"-DWITH_{lib}=OFF" for lib in (
        "EIGEN", "FFMPEG", "GSTREAMER", "LAPACK", "OPENBLAS", "IPP", "ITT", "OPENCL", "PNG", "JPEG", "TIFF", "WEBP",
        "OPENJPEG", "JASPER", "OPENEXR", "AVIF", "V4L", "PROTOBUF",
    )),
    "-DBUILD_TESTS=OFF", "-DBUILD_PERF_TESTS=OFF", "-DBUILD_EXAMPLES=OFF", "-DBUILD_opencv_apps=OFF",
]  # fmt: skip


def log(msg: str) -> None:
    print(f"[build] {msg}", flush=True)


def run(cmd: list, **kw) -> subprocess.CompletedProcess:
    log("$ " + " ".join(str(c) for c in cmd))
    return subprocess.run([str(c) for c in cmd], check=True, **kw)


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def requirement_name(req: str) -> str:
    return re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0].lower()


def cpu_requirements() -> list[str]:
    """The app's dependencies for a CPU-only bundle: onnxruntime (≈60 MB) in place of
    onnxruntime-gpu, whose CUDA/TensorRT provider libraries alone are hundreds of MB."""
    deps = project()["dependencies"]
    cpu_ort = next(d for d in project()["optional-dependencies"]["cpu"] if requirement_name(d) == "onnxruntime")  # the `cpu` extra
    out = [d for d in deps if requirement_name(d) not in ("onnxruntime", "onnxruntime-gpu", "annoy")]
    return [*out, cpu_ort.split(";")[0].strip(), PYINSTALLER]


def annoy_requirement() -> str:
    return next(d for d in project()["dependencies"] if requirement_name(d) == "annoy")


def linux_x86_64() -> bool:
    return sys.platform.startswith("linux") and platform.machine() == "x86_64"


def annoy_env(march: str) -> dict:
    env = dict(os.environ)
    if linux_x86_64():
        env["ANNOY_COMPILER_ARGS"] = ",".join([*ANNOY_FLAGS, f"-march={march}", "-mtune=generic"])
    # Elsewhere setup.py adds no -march (Windows, macOS, arm64): its defaults are already portable.
    return env


def make_venv(venv: Path, march: str, fresh: bool) -> Path:
    """A build venv holding exactly what the bundle needs; reused while its recipe is unchanged."""
    recipe = {
        "python": sys.version,
        "requirements": cpu_requirements(),
        "annoy": annoy_requirement(),
        "annoy_args": [annoy_env(m).get("ANNOY_COMPILER_ARGS") for m in (march, FAST_MARCH)],
        "opencv_cmake_args": OPENCV_CMAKE_ARGS if linux_x86_64() else None,
    }
    stamp = venv / "imgsim-build-recipe.json"
    if not fresh and stamp.is_file() and json.loads(stamp.read_text()) == recipe:
        log(f"build venv {venv} is up to date")
        return venv_python(venv)
    if venv.exists():
        shutil.rmtree(venv)
    run([sys.executable, "-m", "venv", venv])
    py = venv_python(venv)
    # From source, and never from pip's wheel cache: a cached wheel built with -march=native (any
    # earlier `pip install annoy` on this machine) would be reused silently, whatever the flags.
    from_source = ["--disable-pip-version-check", "-q", "--no-binary", "annoy", "--no-cache-dir"]
    run([py, "-m", "pip", "install", *from_source, annoy_requirement()], env=annoy_env(march))
    if linux_x86_64():
        version = subprocess.run([str(py), "-c", "import importlib.metadata as m; print(m.version('annoy'))"], check=True, capture_output=True, text=True).stdout.strip()
        with tempfile.TemporaryDirectory() as tmp:
            run([py, "-m", "pip", "wheel", *from_source, "--no-deps", "-w", tmp, f"annoy=={version}"], env=annoy_env(FAST_MARCH))
            with zipfile.ZipFile(next(Path(tmp).glob("annoy-*.whl"))) as wheel:
                member = next(n for n in wheel.namelist() if n.startswith("annoy/annoylib"))
                target = venv / f"annoy-{FAST_MARCH}" / Path(member).name
                target.parent.mkdir()
                target.write_bytes(wheel.read(member))
    run([py, "-m", "pip", "install", "--disable-pip-version-check", "-q", *recipe["requirements"]])
    if linux_x86_64():
        install_slim_opencv(py, venv.parent / "opencv-slim")
    stamp.write_text(json.dumps(recipe, indent=1))
    return py


def installed_version(py: Path, dist: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    return subprocess.run([str(py), "-c", code], check=True, capture_output=True, text=True).stdout.strip()


def install_slim_opencv(py: Path, cache: Path) -> None:
    """Replace the venv's OpenCV wheel with the same version built from source with only the modules
    the app uses (OPENCV_CMAKE_ARGS). The wheel is kept in ``cache`` (~6 minutes to build on 2 cores)."""
    version = installed_version(py, OPENCV)
    key = hashlib.sha256(json.dumps([version, OPENCV_CMAKE_ARGS, sys.implementation.cache_tag]).encode()).hexdigest()[:12]
    folder = cache / f"{version}-{key}"
    wheel = next(folder.glob("*.whl"), None)
    if wheel is None:
        env = dict(os.environ, ENABLE_HEADLESS="1", CMAKE_ARGS=" ".join(OPENCV_CMAKE_ARGS), CMAKE_BUILD_PARALLEL_LEVEL=str(os.cpu_count() or 2))
        with tempfile.TemporaryDirectory() as tmp:
            # --no-cache-dir: pip's wheel cache ignores CMAKE_ARGS, so it could hand back a build made with other flags.
            no_cache = ["--no-cache-dir", "--no-binary", OPENCV]
            run([py, "-m", "pip", "wheel", "--disable-pip-version-check", "-q", "--no-deps", *no_cache, "-w", tmp, f"{OPENCV}=={version}"], env=env)
            folder.mkdir(parents=True, exist_ok=True)
            built = next(Path(tmp).glob("*.whl"))
            partial = folder / (built.name + ".partial")  # an interrupted copy is never taken for a wheel
            shutil.copy2(built, partial)
            wheel = partial.replace(folder / built.name)
    run([py, "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-deps", "--force-reinstall", wheel])


def fast_annoy(venv: Path) -> Path | None:
    return next((venv / f"annoy-{FAST_MARCH}").glob("annoylib*"), None)


def annoy_extension(py: Path) -> Path:
    code = "import annoy.annoylib as m; print(m.__file__)"
    return Path(subprocess.run([str(py), "-c", code], check=True, capture_output=True, text=True).stdout.strip())


def check_portable(so: Path, march: str) -> dict:
    """Evidence that an Annoy extension runs on any CPU of its target level: instruction counts
    from objdump and the compiler flags gcc recorded in its debug info (DW_AT_producer). Fails the
    build when it uses an instruction family its level does not have."""
    evidence: dict = {"file": str(so), "target": march}
    if not linux_x86_64():
        evidence["skipped"] = "instruction check runs on x86_64 Linux only"
        return evidence
    allowed = ALLOWED.get(march, {"avx", "avx512"})
    problems = []
    if shutil.which("readelf"):
        info = subprocess.run(["readelf", "--debug-dump=info", str(so)], capture_output=True, text=True).stdout
        producer = re.search(r"DW_AT_producer\s*:.*?(GNU C\+\+.*)", info)
        if producer:
            flags = producer.group(1).strip()
            evidence["march"] = re.findall(r"-march=(\S+)", flags)
            evidence["avx_flags"] = sorted(set(re.findall(r"-m(avx[\w-]*|fma)\b", flags)))
            if evidence["march"] != [march]:
                problems.append(f"compiled with -march={evidence['march']}")
            family = {f: "avx512" if f.startswith("avx512") else "avx" for f in evidence["avx_flags"]}
            if banned := [f for f, fam in family.items() if fam not in allowed]:
                problems.append(f"code generation enabled for {', '.join(banned)}")
    if not shutil.which("objdump"):
        evidence["skipped"] = "objdump not found (binutils): instructions not counted"
        return evidence
    asm = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(so)], check=True, capture_output=True, text=True).stdout
    evidence["instructions"] = sum(1 for ln in asm.splitlines() if re.match(r"^\s*[0-9a-f]+:\s", ln))
    evidence["found"] = {name: len(rx.findall(asm)) for name, (rx, _) in FAMILIES.items()}
    problems += [f"{evidence['found'][name]} {name}" for name, (_, fam) in FAMILIES.items() if evidence["found"][name] and fam not in allowed]
    evidence["portable"] = not problems
    if problems:
        raise SystemExit(f"[build] {so} is not portable to every {march} CPU: {'; '.join(problems)}")
    return evidence


def project_version() -> str:
    return project()["version"]


def pyinstaller(py: Path, dist: Path, work: Path, fast: Path | None) -> Path:
    env = dict(os.environ)
    env.pop(FAST_ENV, None)
    if fast:
        env[FAST_ENV] = str(fast)
    run([py, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN", "--distpath", dist, "--workpath", work, SPEC], cwd=ROOT, env=env)
    bundle = dist / APP
    if sys.platform.startswith("linux"):
        # So an unpacked bundle (a tarball of dist/imgsim-desktop) can install itself.
        shutil.copy2(ROOT / "packaging" / "install-linux.sh", bundle / "install-linux.sh")
    if sys.platform == "darwin" and (dist / f"{APP}.app").is_dir():
        bundle = dist / f"{APP}.app"
    return bundle


def executable(bundle: Path) -> Path:
    if bundle.suffix == ".app":
        return bundle / "Contents" / "MacOS" / APP
    return bundle / (APP + ".exe" if os.name == "nt" else APP)


def measure(bundle: Path, top: int = 15) -> dict:
    """Bytes on disk (symlinks not followed, like du --apparent-size) and the biggest files."""
    files = [(p.stat().st_size, p) for p in bundle.rglob("*") if p.is_file() and not p.is_symlink()]
    total = sum(size for size, _ in files)
    groups: dict[str, int] = {}
    for size, path in files:
        rel = path.relative_to(bundle).parts
        key = "/".join(rel[:3]) if rel[0] == "_internal" else rel[0]
        groups[key] = groups.get(key, 0) + size
    biggest = sorted(groups.items(), key=lambda kv: -kv[1])[:top]
    return {"bytes": total, "mb": round(total / 1e6, 1), "files": len(files), "largest": [{"path": k, "mb": round(v / 1e6, 1)} for k, v in biggest]}


def headless_env() -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    for var in ("IMGSIM_DATA_DIR", "IMGSIM_MODELS_DIR", "PYTHONPATH", "PYTHONHOME"):
        env.pop(var, None)  # the bundle must find everything by itself
    return env


def self_test(exe: Path) -> None:
    proc = subprocess.run([str(exe), "--self-test"], env=headless_env(), capture_output=True, text=True, timeout=600)
    print(proc.stdout + proc.stderr, end="", flush=True)
    if proc.returncode != 0:
        raise SystemExit(f"[build] self-test of {exe} failed (exit {proc.returncode})")


def startup(exe: Path, data_dir: Path, runs: int) -> dict:
    """Start-to-window: wall time from spawning the executable until it prints that its window was
    shown (the first run also warms the page cache, as a user's second launch would be)."""
    walls, inside = [], []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.Popen([str(exe), "--startup-probe", "--data-dir", str(data_dir)], env=headless_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for line in proc.stdout:
            if line.startswith("startup-probe:"):
                walls.append(time.perf_counter() - started)
                found = re.search(r"after ([\d.]+) s", line)
                if found:
                    inside.append(float(found.group(1)))
        if proc.wait(timeout=120) != 0:
            raise SystemExit(f"[build] {exe} --startup-probe failed (exit {proc.returncode})")
    return {"runs": runs, "cold_s": round(walls[0], 3), "median_s": round(statistics.median(walls), 3), "in_process_median_s": round(statistics.median(inside), 3) if inside else None}



def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--venv", type=Path, default=ROOT / "build" / "venv-cpu", help="build venv (default: build/venv-cpu)")
    where.add_argument("--use-current", action="store_true", help="build with this interpreter's packages (its Annoy, its onnxruntime)")
    ap.add_argument("--fresh-venv", action="store_true", help="recreate the build venv")
    ap.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder (default: dist/)")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "pyinstaller", help="PyInstaller work folder")
    ap.add_argument("--march", default=DEFAULT_MARCH, help=f"CPU level Annoy is compiled for (default {DEFAULT_MARCH}; x86-64 for the oldest CPUs)")
    ap.add_argument("--skip-tests", action="store_true", help="no self-test and no startup measurement")
    ap.add_argument("--startup-runs", type=int, default=3)
    args = ap.parse_args(argv)

    report: dict = {"version": project_version(), "platform": f"{sys.platform}-{platform.machine()}", "python": platform.python_version()}
    began = time.perf_counter()
    py = Path(sys.executable) if args.use_current else make_venv(args.venv.resolve(), args.march, args.fresh_venv)
    report["venv_s"] = round(time.perf_counter() - began, 1)

    report["annoy"] = check_portable(annoy_extension(py), args.march)
    log(f"annoy: {json.dumps(report['annoy'])}")
    fast = None if args.use_current else fast_annoy(args.venv.resolve())
    if fast:
        report["annoy_fast"] = check_portable(fast, FAST_MARCH)
        log(f"annoy ({FAST_MARCH}): {json.dumps(report['annoy_fast'])}")

    began = time.perf_counter()
    bundle = pyinstaller(py, args.dist.resolve(), args.work.resolve(), fast)
    report["pyinstaller_s"] = round(time.perf_counter() - began, 1)
    report["size"] = measure(bundle)
    log(f"bundle {bundle}: {report['size']['mb']} MB in {report['size']['files']} files")
    for part in report["size"]["largest"]:
        log(f"  {part['mb']:>7.1f} MB  {part['path']}")

    exe = executable(bundle)
    if not args.skip_tests:
        began = time.perf_counter()
        self_test(exe)
        report["self_test_s"] = round(time.perf_counter() - began, 1)
        probe_dir = args.work.resolve() / "startup-probe-data"
        shutil.rmtree(probe_dir, ignore_errors=True)
        report["startup"] = startup(exe, probe_dir, args.startup_runs)
        log(f"start to window: {json.dumps(report['startup'])}")
    report["executable"] = str(exe)
    (args.dist / "build-report.json").write_text(json.dumps(report, indent=1))
    log(f"done: {exe}  (report: {args.dist / 'build-report.json'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

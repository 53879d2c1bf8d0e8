"""PyInstaller runtime hook: use the AVX2 build of Annoy's extension on CPUs that can run it.

The Linux bundle carries two builds of ``annoy.annoylib``: the baseline (x86-64-v2) where pip
installed it, which runs on any x86-64 CPU since ~2009, and one compiled for x86-64-v3 (AVX2,
FMA), whose hand-vectorised distance code answers queries ~3x faster. Annoy has no dispatch of its
own, so before the app imports it this hook puts a finder first on sys.meta_path that resolves
``annoy.annoylib`` to the v3 file, but only when the CPU reports every x86-64-v3 feature.
Set IMGSIM_ANNOY_BASELINE=1 to keep the baseline (the build's self-test checks both).
"""

import importlib.util
import os
import sys

# The x86-64-v3 level as /proc/cpuinfo names it (abm = LZCNT); the kernel hides AVX flags when
# the OS does not save AVX state, so these also mean "usable".
_V3 = {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}


def _cpu_flags() -> set:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _fast_extension():
    folder = os.path.join(getattr(sys, "_MEIPASS", ""), "annoy", "x86-64-v3")
    if os.environ.get("IMGSIM_ANNOY_BASELINE") or not os.path.isdir(folder) or not _V3 <= _cpu_flags():
        return None
    return next((os.path.join(folder, f) for f in os.listdir(folder) if f.startswith("annoylib")), None)


class _AnnoyV3Finder:
    def __init__(self, path: str) -> None:
        self.path = path

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "annoy.annoylib":
            return None
        return importlib.util.spec_from_file_location(fullname, self.path)


_path = _fast_extension()
if _path:
    sys.meta_path.insert(0, _AnnoyV3Finder(_path))

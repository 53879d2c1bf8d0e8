"""Before Qt starts on X11: which libraries its xcb platform plugin needs and cannot find.

Qt aborts the process when the plugin does not load, and since 6.5 its message names
libxcb-cursor0 whatever is really missing (often libxcb-icccm4 and libxcb-keysyms1 on a minimal
system). ``ldd`` on the plugin lists every library the loader cannot find, its Qt libraries'
dependencies included; the hint names them with the Debian/Ubuntu packages that hold them.
Standard library only: it runs before Qt is loaded.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

LDD = ("ldd",)  # the loader's view of a library's dependencies (tests point it elsewhere)

# soname -> Debian/Ubuntu package (Fedora: dnf install xcb-util-cursor xcb-util-wm xcb-util-keysyms
# xcb-util-image xcb-util-renderutil libxkbcommon-x11).
DEBIAN_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
    "libGLX.so.0": "libglx0",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
}

_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found\s*$", re.MULTILINE)


def uses_xcb(environ=os.environ, qt_args: list[str] = ()) -> bool:
    """Whether Qt will try the xcb plugin first: Linux, and no other platform asked for or implied."""
    if not sys.platform.startswith("linux"):
        return False
    asked = ""
    for n, arg in enumerate(qt_args):  # -platform NAME (Qt's own option) wins over the variable
        if arg in ("-platform", "--platform") and n + 1 < len(qt_args):
            asked = qt_args[n + 1]
    asked = asked or environ.get("QT_QPA_PLATFORM", "")
    if asked:
        return asked.split(";")[0].split(":")[0].strip() == "xcb"
    # Unset: Qt 6 prefers Wayland in a Wayland session, xcb everywhere else.
    return not (environ.get("XDG_SESSION_TYPE") == "wayland" and environ.get("WAYLAND_DISPLAY"))


def missing_libraries(plugin: Path) -> list[str]:
    """Sonames ``plugin`` (or a library it pulls in) needs and the loader cannot find; [] when
    everything is there or the check cannot be made (no ldd, no plugin)."""
    if not Path(plugin).is_file() or not shutil.which(LDD[0]):
        return []
    try:
        done = subprocess.run([*LDD, str(plugin)], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    return list(dict.fromkeys(_NOT_FOUND.findall(done.stdout)))


def hint(missing: list[str]) -> str:
    """What to tell the user, in a few lines: the libraries, and one command that installs them."""
    packages = list(dict.fromkeys(DEBIAN_PACKAGES.get(name, "") for name in missing))
    known = [p for p in packages if p]
    lines = [
        f"imgsim-desktop: Qt's X11 (xcb) platform plugin cannot load: missing {', '.join(missing)}.",
    ]
    if known:
        lines.append(f"  Debian/Ubuntu: sudo apt-get install {' '.join(known)}")
    unknown = [name for name in missing if name not in DEBIAN_PACKAGES]
    if unknown:
        lines.append(f"  (install the package that provides {', '.join(unknown)})")
    lines.append("  The README's set-up lists every library the app needs. On Wayland, QT_QPA_PLATFORM=wayland uses no xcb library.")
    return "\n".join(lines)

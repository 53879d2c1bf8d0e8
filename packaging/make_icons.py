#!/usr/bin/env python3
"""Render resources/imgsim.svg to the PNG sizes desktops look for (resources/icons/).

The PNGs are committed: freedesktop menus, the Windows .ico and the macOS .icns (PyInstaller
converts the 256 px PNG with Pillow) all need bitmaps, and a build should not depend on an SVG
renderer. Re-run after editing the SVG:  python packaging/make_icons.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication(sys.argv[:1])  # noqa: F841 - painting needs an application object
    renderer = QSvgRenderer(str(RESOURCES / "imgsim.svg"))
    out = RESOURCES / "icons"
    out.mkdir(exist_ok=True)
    for size in SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        image.save(str(out / f"imgsim-desktop-{size}.png"))
    print(f"wrote {len(SIZES)} icons to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

""""Show in folder": open the file manager with the photo selected, not just its folder.

Each platform has its own way: Explorer's /select switch, Finder's `open -R`, and on Linux the
freedesktop FileManager1 D-Bus interface (Nautilus, Dolphin, Nemo, Caja, Thunar...). Where none
answers, the folder itself is opened.
"""

from __future__ import annotations

import os
import subprocess
import sys

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices


def _freedesktop_show(path: str) -> bool:
    try:
        from PySide6.QtDBus import QDBusConnection, QDBusInterface, QDBusMessage
    except ImportError:
        return False
    bus = QDBusConnection.sessionBus()
    if not bus.isConnected():
        return False
    manager = QDBusInterface("org.freedesktop.FileManager1", "/org/freedesktop/FileManager1", "org.freedesktop.FileManager1", bus)
    if not manager.isValid():
        return False
    reply = manager.call("ShowItems", [QUrl.fromLocalFile(path).toString()], "")
    return reply.type() != QDBusMessage.MessageType.ErrorMessage


def show_in_folder(path: str) -> None:
    try:
        if sys.platform == "win32":
            subprocess.Popen(["explorer", "/select,", os.path.normpath(path)])
            return
        if sys.platform == "darwin":
            subprocess.Popen(["open", "-R", path])
            return
        if _freedesktop_show(path):
            return
    except OSError:
        pass  # no such tool here: fall back to opening the folder
    QDesktopServices.openUrl(QUrl.fromLocalFile(os.path.dirname(path)))

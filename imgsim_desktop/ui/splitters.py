"""Splitters that open where the user left them (Settings.splitters, saved with the window's size)."""

from __future__ import annotations

from PySide6.QtWidgets import QSplitter

from imgsim_desktop.core.settings import Settings


def remember(splitter: QSplitter, settings: Settings, name: str) -> None:
    """Give ``splitter`` its saved sizes, and note each move the user makes in ``settings``."""
    saved = settings.splitters.get(name)
    if saved and len(saved) == splitter.count():
        splitter.setSizes(saved)
    splitter.splitterMoved.connect(lambda *_: settings.splitters.__setitem__(name, splitter.sizes()))

"""Where things live: user data (platformdirs, overridable) and bundled models/resources.

The same lookup works from a source checkout, an installed package and a PyInstaller bundle,
so no caller ever builds these paths itself.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

APP_NAME = "imgsim-desktop"
DATA_DIR_ENV = "IMGSIM_DATA_DIR"
MODELS_DIR_ENV = "IMGSIM_MODELS_DIR"


def data_dir(override: str | os.PathLike | None = None) -> Path:
    """Catalog, indexes, thumbnails and settings: --data-dir, then $IMGSIM_DATA_DIR, then platformdirs."""
    chosen = override or os.environ.get(DATA_DIR_ENV)
    path = Path(chosen).expanduser() if chosen else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _bundle_root() -> Path:
    frozen = getattr(sys, "_MEIPASS", None)  # PyInstaller unpacks data files here
    if frozen:
        return Path(frozen)
    return Path(__file__).resolve().parent.parent


def models_dir() -> Path:
    override = os.environ.get(MODELS_DIR_ENV)
    return Path(override) if override else _bundle_root() / "models"


def resources_dir() -> Path:
    return _bundle_root() / "resources"

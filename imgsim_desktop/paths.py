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


class Layout:
    """What lives in a data folder, named once. Everything but the catalog (and its backup) is
    disposable: deleting it costs time, not data."""

    CATALOG = "catalog.sqlite3"  # folders, files, embeddings, cleanup journal and history
    INDEXES = "indexes"  # Annoy indexes, one per backbone
    THUMBS = "thumbs"  # thumbnail cache
    FEATURES = "verify-features"  # the duplicate check's per-photo features
    MAPS = "maps"  # collection map coordinates
    MODELS = "models"  # user-added ONNX models and their registry
    SETTINGS = "settings.json"
    CACHES = (FEATURES, THUMBS, MAPS)  # what a full disk may give up

    def __init__(self, data_dir: str | os.PathLike) -> None:
        root = Path(data_dir)
        self.root = root
        self.catalog = root / self.CATALOG
        self.indexes = root / self.INDEXES
        self.thumbs = root / self.THUMBS
        self.features = root / self.FEATURES
        self.maps = root / self.MAPS
        self.models = root / self.MODELS
        self.settings = root / self.SETTINGS


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


def lexically_inside(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or lies under it, comparing the strings as given (the way the catalog
    stores them). Whether the file system means the same folder is core/folders.really_inside."""
    folder = folder.rstrip("/\\") or folder
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)

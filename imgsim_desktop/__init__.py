"""imgsim-desktop: find visually similar photos and near-duplicates in a personal collection."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("imgsim-desktop")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

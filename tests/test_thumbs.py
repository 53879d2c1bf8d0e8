"""Thumbnails and previews come at the size asked for; only the small grid sizes are cached."""

from __future__ import annotations

from conftest import PHOTOS
from imgsim_desktop.storage.thumbs import ThumbCache, level_for


def _cached_files(folder):
    return [p for p in folder.rglob("*.jpg")]


def test_grid_thumbnails_are_cached_and_previews_keep_their_detail(tmp_path):
    photo = PHOTOS / "scenes" / "aloeL.jpg"  # 1282 x 1110
    mtime = photo.stat().st_mtime_ns
    cache = ThumbCache(tmp_path / "thumbs")

    small = cache.get(str(photo), mtime, level_for(200))
    assert max(small.size) == 256
    assert len(_cached_files(tmp_path / "thumbs")) == 1

    preview = cache.get(str(photo), mtime, level_for(1200))
    assert max(preview.size) == 1200  # not capped at the largest grid size
    assert len(_cached_files(tmp_path / "thumbs")) == 1  # previews are not stored

    whole = cache.get(str(photo), mtime, level_for(4000))
    assert whole.size == (1282, 1110)  # never enlarged past the photo itself

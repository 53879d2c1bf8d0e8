"""Thumbnails and previews come at the size asked for; only the small grid sizes are cached."""

from __future__ import annotations

import os

from conftest import PHOTOS
from imgsim_desktop.core.thumbnails import thumb_cache
from imgsim_desktop.storage.thumbs import level_for


def _cached_files(folder):
    return [p for p in folder.rglob("*.jpg")]


def test_grid_thumbnails_are_cached_and_previews_keep_their_detail(tmp_path):
    photo = PHOTOS / "scenes" / "aloeL.jpg"  # 1282 x 1110
    mtime = photo.stat().st_mtime_ns
    cache = thumb_cache(tmp_path / "thumbs")

    small = cache.get(str(photo), mtime, level_for(200))
    assert max(small.size) == 256
    assert len(_cached_files(tmp_path / "thumbs")) == 1

    preview = cache.get(str(photo), mtime, level_for(1200))
    assert max(preview.size) == 1200  # not capped at the largest grid size
    assert len(_cached_files(tmp_path / "thumbs")) == 1  # previews are not stored

    whole = cache.get(str(photo), mtime, level_for(4000))
    assert whole.size == (1282, 1110)  # never enlarged past the photo itself


def test_cache_stays_under_its_cap_dropping_the_least_recently_used(tmp_path):
    photos = sorted((PHOTOS / "aib").glob("*.jpg"))[:6]
    cache = thumb_cache(tmp_path / "thumbs", cap_bytes=0)
    for i, photo in enumerate(photos):
        cache.get(str(photo), photo.stat().st_mtime_ns, 256)
        os.utime(cache._file(str(photo), photo.stat().st_mtime_ns, 256), (1000 + i, 1000 + i))  # used in this order
    sizes = {f: f.stat().st_size for f in _cached_files(tmp_path / "thumbs")}
    cache.cap_bytes = sum(sizes.values()) - 1  # one thumbnail too many
    cache.get(str(photos[0]), photos[0].stat().st_mtime_ns, 256)  # a hit: photos[0] is now the newest used
    freed = cache.prune()
    left = _cached_files(tmp_path / "thumbs")
    assert len(left) == 5 and freed > 0
    assert cache._file(str(photos[0]), photos[0].stat().st_mtime_ns, 256) in left  # used recently: kept
    assert cache._file(str(photos[1]), photos[1].stat().st_mtime_ns, 256) not in left  # least recently used: gone

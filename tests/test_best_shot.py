"""The best frame of a burst, from what the indexer measures: sharp, then well exposed, then largest."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image, ImageEnhance

from conftest import PHOTOS
from imgsim_desktop.core import photo_quality
from imgsim_desktop.core.best_shot import best_shot
from imgsim_desktop.core.cleanup_plan import keeper_of, suggested
from imgsim_desktop.core.decode import open_photo
from imgsim_desktop.core.duplicates import Group, Member
from imgsim_desktop.core.keeper import KeeperRules
from imgsim_desktop.storage.records import PhotoRow


def burst(tmp_path, sharp_frame: int = 2, frames: int = 5, edit=None) -> list[PhotoRow]:
    """A burst made from one real photo: each frame a little further along (the camera panning),
    every frame but ``sharp_frame`` smeared by motion; each row as the indexer stores it."""
    photo = Image.open(PHOTOS / "labelled/pelican.jpg").convert("RGB").resize((900, 675))
    rows = []
    for n in range(frames):
        frame = photo.crop((12 * n, 6 * n, 12 * n + 840, 6 * n + 630))
        if edit is not None:
            frame = edit(n, frame)
        elif n != sharp_frame:
            pixels = cv2.blur(np.asarray(frame), (15, 1))  # a horizontal motion smear of 15 px
            frame = Image.fromarray(pixels)
        path = tmp_path / f"IMG_{1000 + n}.jpg"
        frame.save(path, quality=92)
        decoded = open_photo(path, min_side=320)
        quality = photo_quality.measure(decoded.image)
        st = path.stat()
        rows.append(PhotoRow(n, str(path), st.st_size, st.st_mtime_ns, decoded.width, decoded.height, None, None, quality.sharpness, quality.clipped, ""))
    return rows


def test_the_one_sharp_frame_of_a_motion_blurred_burst_is_the_best_shot(tmp_path):
    rows = burst(tmp_path, sharp_frame=3)
    pick = best_shot(rows)
    assert pick.row is rows[3] and pick.reason == "sharpest; the others are blurred"


def test_among_sharp_frames_the_well_exposed_one_wins(tmp_path):
    def exposure(n, frame):  # all sharp; every frame but the first blown out by two stops
        return frame if n == 0 else ImageEnhance.Brightness(frame).enhance(2.2)

    rows = burst(tmp_path, edit=exposure, frames=3)
    pick = best_shot(rows)
    assert pick.row is rows[0] and "best exposed" in pick.reason


def test_frames_never_measured_get_no_best_shot_and_the_keeper_rules_decide(tmp_path):
    rows = burst(tmp_path, frames=2)
    old = PhotoRow(9, str(tmp_path / "old.jpg"), 10, 0, 4000, 3000, None, None)  # indexed before catalog v9
    assert best_shot([*rows, old]) is None
    group = Group("similar", [Member(r.path, 0.9) for r in [*rows, old]])
    kept, remove, why = keeper_of(group, [*rows, old], KeeperRules(order=["resolution"]))
    assert kept is old and why is None and remove == rows


def test_select_suggested_on_similar_shots_ticks_all_but_the_best_shot(tmp_path):
    rows = burst(tmp_path, sharp_frame=1, frames=4)
    group = Group("similar", [Member(r.path, 0.9) for r in rows])
    chosen = suggested([group], {r.path: r for r in rows}, KeeperRules(), ["similar"])
    assert chosen == {r.path for r in rows} - {rows[1].path}

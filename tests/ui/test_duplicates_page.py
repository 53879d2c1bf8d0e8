"""Reviewing duplicates in the app: scan, tiers, suggested removals, protected folders,
"Not duplicates", cleanup to a folder with a confirmed summary, history and undo, a failing trash."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import shiboken6
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from conftest import PHOTOS, copy_photos
from imgsim_desktop.core.engine import Engine
from imgsim_desktop.core.library_service import index_now
from imgsim_desktop.ui.main_window import MainWindow

COPIES = ["original.jpg", "cropped.jpg", "small.jpg"]


def _edited_copies(folder: Path) -> None:
    """One photo, a crop of it, and a downscaled re-encode: the same photo, three files."""
    folder.mkdir(parents=True)
    with Image.open(PHOTOS / "scenes" / "building.jpg") as img:
        img.save(folder / COPIES[0], quality=95)
        w, h = img.size
        img.crop((w // 10, h // 12, w - w // 8, h - h // 10)).save(folder / COPIES[1], quality=90)
        img.resize((w // 2, h // 2), Image.Resampling.LANCZOS).save(folder / COPIES[2], quality=80)


@pytest.fixture
def library(tmp_path, data_dir):
    lib = tmp_path / "lib"
    _edited_copies(lib / "copies")
    copy_photos(lib / "scenes", ["scenes/aloeL.jpg", "scenes/aloeR.jpg"])  # a stereo pair: similar shots
    copy_photos(lib / "misc", ["labelled/dog.jpg", "labelled/pelican.jpg", "aib/5.jpg", "aib/9.jpg", "scenes/fruits.jpg"])
    (lib / "backup").mkdir()
    shutil.copy2(lib / "misc" / "dog.jpg", lib / "backup" / "dog.jpg")  # an exact copy
    with Engine(data_dir) as engine:
        index_now(engine, [str(lib)])
    return lib


def _open_duplicates(qtbot, data_dir):
    win = MainWindow(data_dir=str(data_dir))
    qtbot.addWidget(win)
    win.show()
    win.act_duplicates.trigger()
    page = win.dup_page
    assert win.pages.currentWidget() is page
    qtbot.waitUntil(lambda: page.scan_button.isEnabled() and bool(page.tree.groups), timeout=60_000)
    return win, page


def _shown(page) -> list[tuple[str, set[str]]]:
    return [(g.tier, {Path(m.path).parent.name + "/" + Path(m.path).name for m in g.members}) for g in page.tree.shown]


def _select(page, path: Path) -> None:
    page.tree.setCurrentItem(page.tree._items[str(path)])


def test_scan_shows_tiers_and_suggests_removals_but_never_in_protected_folders(qtbot, library, data_dir):
    win, page = _open_duplicates(qtbot, data_dir)
    shown = _shown(page)
    assert ("exact", {"misc/dog.jpg", "backup/dog.jpg"}) in shown
    assert ("duplicate", {f"copies/{n}" for n in COPIES}) in shown
    assert all("scenes/aloeL.jpg" not in members for _, members in shown)  # not duplicates...
    page.view_box.setCurrentIndex(1)
    assert ("similar", {"scenes/aloeL.jpg", "scenes/aloeR.jpg"}) in _shown(page)  # ...but similar shots
    assert not page.tree.visible_ticked()  # similar shots are never pre-selected
    page.view_box.setCurrentIndex(0)

    ticked = set(page.tree.visible_ticked())
    # One photo of each duplicate group is kept: the largest copy, one of the dogs.
    assert str(library / "copies" / COPIES[0]) not in ticked
    assert len(ticked) == 3 and sum("dog.jpg" in p for p in ticked) == 1
    assert "3 selected" in page.summary.text()

    page.settings.protected_folders = [str(library / "backup"), str(library / "misc")]
    page.tree.apply_rules(page.settings.keeper_rules(), page.tree.tiers)
    assert not any("dog.jpg" in p for p in page.tree.visible_ticked())
    item = page.tree._items[str(library / "backup" / "dog.jpg")]
    assert item.text(1) == "protected" and not item.flags() & Qt.ItemFlag.ItemIsUserCheckable

    # The compare view shows the suggested keeper beside the chosen copy.
    _select(page, library / "copies" / COPIES[2])
    assert page.compare.isVisible()
    win.close()


def test_not_duplicates_is_remembered_across_scans(qtbot, library, data_dir):
    win, page = _open_duplicates(qtbot, data_dir)
    odd_one = library / "copies" / COPIES[2]
    _select(page, odd_one)
    page.not_duplicates.click()
    assert all(str(odd_one) not in {m.path for m in g.members} for g in page.tree.groups)
    page.scan()
    qtbot.waitUntil(lambda: page.scan_button.isEnabled(), timeout=60_000)
    members = [{m.path for m in g.members} for g in page.tree.groups]
    assert {str(library / "copies" / n) for n in COPIES[:2]} in members  # the rest still group
    assert all(str(odd_one) not in m for m in members)  # the rejected photo never comes back
    win.close()


def test_move_cleanup_is_logged_and_undone(qtbot, library, data_dir, tmp_path, monkeypatch):
    win, page = _open_duplicates(qtbot, data_dir)
    # A scan can finish before the window's photo list (and library folders) arrives: the scan
    # brings the folders too, so the "inside your library" guard below never sees an empty list.
    page.library_roots = []
    page.scan_button.click()
    qtbot.waitUntil(lambda: page.library_roots == [str(library)] and page.scan_button.isEnabled(), timeout=60_000)
    before = win.library_model.total()
    chosen = page.tree.visible_ticked()
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda _p, _t, text, *a, **k: asked.append(text) or QMessageBox.StandardButton.Yes)
    warned: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, _t, text, *a, **k: warned.append(text))
    page.clean_up("move", move_to=str(library / "misc" / "dupes"))  # inside the library: they would come back
    assert warned and "is inside the library folder" in warned[0] and not asked
    page.clean_up("move", move_to=str(tmp_path / "set aside"))
    assert asked and asked[0].startswith(f"Move {len(chosen)} photos (") and "set aside" in asked[0]
    # The photo list and the page hear of the move separately: wait for both.
    qtbot.waitUntil(lambda: win.library_model.total() == before - len(chosen) and "out of the library" in page.summary.text(), timeout=20_000)
    assert not any(Path(p).exists() for p in chosen)
    assert len(list((tmp_path / "set aside").iterdir())) == len(chosen)
    assert not page.tree.visible_ticked()

    page.open_history()
    dialog = page.history_dialog
    qtbot.waitUntil(lambda: dialog.tree.topLevelItemCount() == 1, timeout=10_000)
    assert dialog.tree.topLevelItem(0).text(0).startswith(f"Moved {len(chosen)} photos")
    assert dialog.undo_button.isEnabled()
    dialog.undo_button.click()
    qtbot.waitUntil(lambda: all(Path(p).exists() for p in chosen), timeout=10_000)
    qtbot.waitUntil(lambda: win.library_model.total() == before, timeout=60_000)  # re-indexed
    qtbot.waitUntil(lambda: not dialog.undo_button.isEnabled() and "moved back" in dialog.tree.topLevelItem(0).text(0), timeout=10_000)
    assert page.stale_bar.isVisible() and "changed since this scan" in page.stale_label.text()  # the groups predate the undo
    dialog.close()
    win.close()


def test_a_failing_trash_leaves_the_photos_and_says_which(qtbot, library, data_dir, monkeypatch):
    from imgsim_desktop.core import cleanup

    def no_trash_here(path):
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr(cleanup, "send2trash", no_trash_here)
    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, _t, text, *a, **k: warnings.append(text))
    win, page = _open_duplicates(qtbot, data_dir)
    chosen = page.tree.visible_ticked()
    page.clean_up("trash", confirm=False)
    qtbot.waitUntil(lambda: bool(warnings), timeout=10_000)
    assert all(Path(p).exists() for p in chosen)
    assert all(Path(p).name in warnings[0] for p in chosen) and "cannot move to the trash" in warnings[0]
    assert sorted(page.tree.visible_ticked()) == sorted(chosen)  # still offered, nothing forgotten
    win.close()


def test_switching_backbone_mid_scan_leaves_the_page_usable_and_closes_its_dialogs(qtbot, library, data_dir):
    win, page = _open_duplicates(qtbot, data_dir)
    page.open_history()
    history = page.history_dialog
    qtbot.waitUntil(history.isVisible, timeout=5_000)
    page.scan()
    assert not page.scan_button.isEnabled()
    win.switch_model("mobilenetv2")  # the scan's worker goes away with the old backbone
    assert page.scan_button.isEnabled() and page.summary.text() == "The backbone changed: scan again."
    qtbot.waitUntil(lambda: not shiboken6.isValid(history) or not history.isVisible(), timeout=5_000)  # it belonged to the old worker
    page.scan()  # the new worker answers
    qtbot.waitUntil(page.scan_button.isEnabled, timeout=60_000)
    win.close()


def test_format_column_shows_the_real_format_and_a_lying_name(qtbot):
    from imgsim_desktop.core.duplicates import Group, Member
    from imgsim_desktop.core.keeper import KeeperRules
    from imgsim_desktop.storage.catalog import PhotoRow
    from imgsim_desktop.ui.group_tree import COLUMNS, GroupTree

    paths = [PHOTOS / "formats" / n for n in ("ukbench09380.jpeg", "ukbench09380.png", "ukbench09380.webp")]
    rows = {str(p): PhotoRow(i, str(p), p.stat().st_size, p.stat().st_mtime_ns, 640, 480, None, None) for i, p in enumerate(paths)}
    tree = GroupTree()
    qtbot.addWidget(tree)
    tree.fill([Group("duplicate", [Member(str(p), 1.0) for p in paths])], rows, KeeperRules())
    column = COLUMNS.index("Format")
    honest, lying, webp = (tree._items[str(p)] for p in paths)
    assert (honest.text(column), lying.text(column), webp.text(column)) == ("JPEG", "JPEG (named .png)", "WebP")
    assert 'JPEG data, but its name ends in ".png"' in lying.toolTip(column)
    assert honest.toolTip(column) == "" and webp.toolTip(column) == ""
    # The keeper rules judge the bytes too: the renamed JPEG ties with the real one (the next rules
    # decide between them), and the lossy WebP ranks below both, so it is ticked.
    assert str(paths[2]) in tree.ticked and len(tree.ticked) == 2


def test_a_photo_changed_after_the_scan_is_left_and_named(qtbot, library, data_dir, tmp_path, monkeypatch):
    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, _t, text, *a, **k: warnings.append(text))
    win, page = _open_duplicates(qtbot, data_dir)
    chosen = page.tree.visible_ticked()
    changed = Path(chosen[0])
    changed.write_bytes((PHOTOS / "labelled" / "cat.jpg").read_bytes())  # replaced while the user was deciding
    page.clean_up("move", move_to=str(tmp_path / "out"), confirm=False)
    qtbot.waitUntil(lambda: bool(warnings), timeout=20_000)
    assert changed.name in warnings[0] and "changed since the scan" in warnings[0]
    assert changed.read_bytes() == (PHOTOS / "labelled" / "cat.jpg").read_bytes()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(Path(p).name for p in chosen[1:])
    win.close()


def test_ticking_every_copy_of_a_photo_is_refused_before_anything_moves(qtbot, library, data_dir, tmp_path, monkeypatch):
    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, _t, text, *a, **k: warnings.append(text))
    win, page = _open_duplicates(qtbot, data_dir)
    group = next(g for g in page.tree.shown if g.tier != "similar")
    for member in group.members:
        item = page.tree._items[member.path]
        item.setCheckState(0, Qt.CheckState.Checked)
    page.trash_button.click()
    assert warnings and "keeps one copy" in warnings[0]
    assert all(Path(m.path).exists() for m in group.members)
    win.close()


def test_an_interrupted_cleanup_is_finished_at_start_and_the_user_told(qtbot, library, data_dir, tmp_path, monkeypatch):
    import os

    from imgsim_desktop.core.engine import CATALOG_NAME
    from imgsim_desktop.storage.catalog import Catalog

    dog = library / "misc" / "dog.jpg"
    st = dog.stat()
    (tmp_path / "out").mkdir()
    with Catalog(data_dir / CATALOG_NAME) as catalog:  # a cleanup killed right after its rename
        catalog.begin_step("crashed", "move", str(dog), str(tmp_path / "out" / "dog.jpg"), st.st_size, st.st_mtime_ns, st.st_ino)
    os.rename(dog, tmp_path / "out" / "dog.jpg")
    told: list[str] = []
    monkeypatch.setattr(QMessageBox, "information", lambda _p, title, text, *a, **k: told.append(title + "\n" + text))
    win = MainWindow(data_dir=str(data_dir))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: bool(told), timeout=20_000)
    assert "interrupted cleanup" in told[0] and "dog.jpg" in told[0]
    win.dup_page.open_history()
    dialog = win.dup_page.history_dialog
    qtbot.waitUntil(lambda: dialog.tree.topLevelItemCount() == 1 and dialog.undo_button.isEnabled() is not None, timeout=10_000)
    dialog.tree.setCurrentItem(dialog.tree.topLevelItem(0))
    assert dialog.undo_button.isEnabled()
    dialog.undo_button.click()
    qtbot.waitUntil(dog.exists, timeout=10_000)
    dialog.close()
    win.close()


def test_the_page_says_when_the_library_changed_since_its_scan(qtbot, library, data_dir, tmp_path, monkeypatch):
    import shutil as _shutil

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    win, page = _open_duplicates(qtbot, data_dir)
    qtbot.waitUntil(lambda: win.writer.mode is not None, timeout=30_000)
    before = len(page.tree.groups)
    assert page.stale_bar.isHidden()
    # A cleanup of the page's own: nothing stale about it.
    page.clean_up("move", move_to=str(tmp_path / "aside"), confirm=False)
    qtbot.waitUntil(lambda: "out of the library" in page.summary.text(), timeout=20_000)
    qtbot.wait(2500)  # the watcher sees those files leave
    assert page.stale_bar.isHidden()
    # New copies arrive from outside the app.
    _shutil.copy2(library / "misc" / "pelican.jpg", library / "misc" / "pelican copy.jpg")
    qtbot.waitUntil(page.stale_bar.isVisible, timeout=20_000)
    assert "changed since this scan" in page.stale_label.text() and "1 added" in page.stale_label.text()
    page.rescan_button.click()
    qtbot.waitUntil(lambda: page.scan_button.isEnabled() and page.stale_bar.isHidden(), timeout=60_000)
    assert any("pelican copy.jpg" in m.path for g in page.tree.groups for m in g.members) and len(page.tree.groups) <= before
    win.close()


def test_after_a_move_the_page_says_where_and_undo_brings_them_back(qtbot, library, data_dir, tmp_path, monkeypatch):
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda _p, _t, text, *a, **k: asked.append(text) or QMessageBox.StandardButton.Yes)
    win, page = _open_duplicates(qtbot, data_dir)
    page.tree.clear_ticks()
    group = next(g for g in page.tree.shown if g.tier == "exact")
    one = group.members[-1].path
    page.tree._items[one].setCheckState(0, Qt.CheckState.Checked)
    page.clean_up("move", move_to=str(tmp_path / "aside"))
    assert asked[0].startswith("Move 1 photo (")  # not "1 photos"
    qtbot.waitUntil(page.undo_button.isVisible, timeout=20_000)
    outcome = page.summary.text().split(" · ")[-1]  # after the group count, when groups remain
    assert outcome.startswith("Moved 1 photo (") and str(tmp_path / "aside") in outcome
    assert not Path(one).exists()
    page.undo_button.click()
    qtbot.waitUntil(lambda: Path(one).exists() and page.summary.text().split(" · ")[-1] == "Moved 1 photo back", timeout=20_000)
    assert not page.undo_button.isVisible()
    win.close()


def test_similarity_is_to_the_kept_photo_and_the_compare_view_and_group_rows_follow_the_ticks(qtbot, library, data_dir):
    import numpy as np

    from imgsim_desktop.storage.catalog import Catalog
    from imgsim_desktop.ui.group_tree import FOLDER, ICON, SIMILARITY

    win, page = _open_duplicates(qtbot, data_dir)
    tree = page.tree
    original, cropped, small = (str(library / "copies" / n) for n in COPIES)
    group = next(g for g in tree.shown if g.tier == "duplicate")
    top = tree.topLevelItem(tree.shown.index(group))
    assert tree.keeper(group) == original and tree._items[original].text(SIMILARITY) == "kept"
    assert "photos of original.jpg" in top.text(0)

    def cosine(a: str, b: str) -> float:
        with Catalog(data_dir / "catalog.sqlite3") as catalog:
            x, y = (catalog.vector_for_path(win.spec.name, p)[1].astype(np.float64) for p in (a, b))
        return float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))

    # Keep the small copy instead: the column now says how alike the others are to it, and the
    # compare view puts it on the left, without the user having to click another row.
    _select(page, cropped)
    tree._items[original].setCheckState(0, Qt.CheckState.Checked)
    tree._items[small].setCheckState(0, Qt.CheckState.Unchecked)
    assert tree.keeper(group) == small and tree._items[small].text(SIMILARITY) == "kept"
    for other in (original, cropped):
        assert tree._items[other].text(SIMILARITY) == f"{cosine(small, other):.3f}"
    assert page.compare._rows[0].path == small and page.compare._rows[1].path == cropped
    assert "photos of small.jpg" in top.text(0)
    top.setExpanded(False)  # collapsed, the group row still shows the kept photo's thumbnail
    def shown(item) -> bool:  # a thumbnail, not the transparent placeholder
        return item.icon(0).pixmap(ICON).toImage().pixelColor(ICON // 2, ICON // 2).alpha() > 0

    qtbot.waitUntil(lambda: shown(top), timeout=10_000)
    assert top.icon(0).pixmap(ICON).toImage() == tree._items[small].icon(0).pixmap(ICON).toImage()

    # "Not duplicates" on the chosen photo: the compare view moves on to what is left of the group.
    page.not_duplicates.click()
    assert page.compare._rows[1] is not None and cropped not in {r.path for r in page.compare._rows}

    # The columns use the width they have: the folder column takes what is left, no blank strip beside it.
    header = tree.header()
    assert sum(header.sectionSize(i) for i in range(header.count())) >= tree.viewport().width() - 2
    assert header.sectionSize(FOLDER) > 100
    win.close()



def test_a_burst_shows_its_best_shot_and_select_suggested_keeps_it(qtbot, tmp_path):
    """Similar shots: the sharp frame of a motion-blurred burst is marked "best shot" with why, the
    group is named after it, nothing is ticked until asked, and Select suggested ticks the rest."""
    from test_best_shot import burst  # tests/ is on the path (conftest)

    from imgsim_desktop.core.duplicates import Group, Member
    from imgsim_desktop.core.keeper import KeeperRules
    from imgsim_desktop.ui.group_tree import COLUMNS, GroupTree

    rows = burst(tmp_path, sharp_frame=2, frames=4)
    tree = GroupTree()
    qtbot.addWidget(tree)
    tree.show_tiers(("similar",))
    tree.fill([Group("similar", [Member(r.path, 0.95) for r in rows])], {r.path: r for r in rows}, KeeperRules())
    action = COLUMNS.index("Suggestion")
    best = tree._items[rows[2].path]
    assert best.text(action) == "best shot" and "sharpest; the others are blurred" in best.toolTip(action)
    assert tree.ticked == set() and "IMG_1002.jpg" in tree.topLevelItem(0).text(0)
    assert tree.keeper(tree.shown[0]) == rows[2].path  # the compare view sets the others beside it
    tree.apply_rules(KeeperRules(), ("similar",))  # "Select suggested"
    assert tree.ticked == {r.path for r in rows} - {rows[2].path}
    assert [tree._items[r.path].text(action) for r in rows] == ["remove", "remove", "best shot", "remove"]


def test_a_photos_sidecars_show_in_its_row_and_go_with_it_and_come_back(qtbot, tmp_path, data_dir, monkeypatch):
    from test_companions import write_shot

    lib = tmp_path / "lib"
    write_shot(lib / "shoot", kinds={"IMG_1.CRW": "raw", "IMG_1.xmp": "xmp"})  # the camera's RAW+JPEG pair
    write_shot(lib / "backup", kinds={"IMG_1.JPG.xmp": "xmp", "IMG_1.AAE": "aae"})  # a copy of its JPEG, with sidecars
    before = {p: p.read_bytes() for p in lib.rglob("*") if p.is_file()}
    with Engine(data_dir) as engine:
        index_now(engine, [str(lib)])
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda _p, _t, text, *a, **k: asked.append(text) or QMessageBox.StandardButton.Yes)
    win, page = _open_duplicates(qtbot, data_dir)
    shot, copy = str(lib / "shoot" / "IMG_1.JPG"), str(lib / "backup" / "IMG_1.JPG")
    assert page.tree._items[shot].text(4) == "JPEG + CRW"  # the row says it is one shot with a RAW
    assert "IMG_1.CRW (RAW file)" in page.tree._items[shot].toolTip(0) and "IMG_1.AAE (sidecar)" in page.tree._items[copy].toolTip(0)
    assert page.tree.visible_ticked() == [copy]  # the JPEG with its RAW beside it is kept
    page.clean_up("move", move_to=str(tmp_path / "aside"))
    assert asked[0].startswith("Move 1 photo (") and "with 2 sidecars that belong to them" in asked[0]
    assert "Going with them: IMG_1.JPG.xmp (sidecar), IMG_1.AAE (sidecar)" in asked[0]
    qtbot.waitUntil(page.undo_button.isVisible, timeout=20_000)
    assert page.summary.text().startswith("Moved 1 photo (and 2 sidecars) (")
    assert sorted(p.name for p in (tmp_path / "aside").iterdir()) == ["IMG_1.AAE", "IMG_1.JPG", "IMG_1.JPG.xmp"]
    page.undo_button.click()
    qtbot.waitUntil(lambda: page.summary.text().endswith("Moved 1 photo (and 2 sidecars) back"), timeout=20_000)
    assert {p: p.read_bytes() for p in lib.rglob("*") if p.is_file()} == before
    page.open_history()
    dialog = page.history_dialog
    qtbot.waitUntil(lambda: dialog.tree.topLevelItemCount() == 1, timeout=10_000)
    assert dialog.tree.topLevelItem(0).text(0).startswith("Moved 1 photo (and 2 sidecars) (")
    assert [dialog.tree.topLevelItem(0).child(i).text(0) for i in range(3)] == ["Moved (undone)"] + ["Moved (sidecar, with its photo) (undone)"] * 2
    dialog.close()
    page.pair_box.setCurrentIndex(page.pair_box.findData("raw"))
    page.pair_box.activated.emit(page.pair_box.currentIndex())
    assert page.settings.pair_rule == "raw" and page.settings.keeper_rules().pair_rule == "raw"
    win.close()


@pytest.mark.parametrize(("rule", "ticked"), [("both", []), ("raw", ["IMG_1.JPG"]), ("jpeg", ["IMG_1.CRW"])])
def test_a_raw_and_its_jpeg_in_one_group_show_as_one_shot(qtbot, tmp_path, rule, ticked):
    """Once RAW files are indexed, a RAW and its JPEG can meet in one duplicate group: one shot, whose
    rows the RAW+JPEG rule ticks (nothing by default)."""
    from test_companions import write_shot

    from imgsim_desktop.core import companions
    from imgsim_desktop.core.duplicates import Group, Member
    from imgsim_desktop.core.keeper import KeeperRules
    from imgsim_desktop.storage.catalog import PhotoRow
    from imgsim_desktop.ui.group_tree import GroupTree

    write_shot(tmp_path / "shoot", kinds={"IMG_1.CRW": "raw", "IMG_1.xmp": "xmp"})
    paths = [str(tmp_path / "shoot" / n) for n in ("IMG_1.JPG", "IMG_1.CRW")]
    rows = {p: PhotoRow(0, p, os.path.getsize(p), os.stat(p).st_mtime_ns, 1440, 960, None, None) for p in paths}
    [group] = companions.attach([Group("duplicate", [Member(p, 1.0) for p in paths])], companions.Folders())
    tree = GroupTree()
    qtbot.addWidget(tree)
    tree.fill([group], rows, KeeperRules(pair_rule=rule))
    title = tree.topLevelItem(0).text(0)
    assert title.startswith("1. Duplicates · 2 photos of IMG_1.") and title.endswith(" · a RAW+JPEG pair: one shot")
    assert sorted(os.path.basename(p) for p in tree.visible_ticked()) == ticked


def test_after_a_trash_undo_brings_the_photos_back_from_the_trash_without_embedding_them(qtbot, library, data_dir, monkeypatch):
    from imgsim_desktop.core import trash_info
    from imgsim_desktop.core.backbones import Backbone

    if not trash_info.FREEDESKTOP:
        pytest.skip("the Trash is read back on Linux and the BSDs only")
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    win, page = _open_duplicates(qtbot, data_dir)
    chosen = page.tree.visible_ticked()
    sums = {p: Path(p).read_bytes() for p in chosen}
    before = win.library_model.total()
    page.clean_up("trash")
    qtbot.waitUntil(page.undo_button.isVisible, timeout=20_000)
    assert "to the Trash" in page.summary.text() and not any(Path(p).exists() for p in chosen)
    qtbot.waitUntil(lambda: win.library_model.total() == before - len(chosen), timeout=20_000)
    embedded: list[int] = []
    real_embed = Backbone.embed
    monkeypatch.setattr(Backbone, "embed", lambda self, batch: embedded.append(len(batch)) or real_embed(self, batch))
    page.undo_button.click()
    qtbot.waitUntil(lambda: all(Path(p).exists() for p in chosen) and page.summary.text().endswith("back"), timeout=20_000)
    assert {p: Path(p).read_bytes() for p in chosen} == sums
    qtbot.waitUntil(lambda: win.library_model.total() == before, timeout=60_000)  # in the library again...
    assert embedded == []  # ...relinked from their parked rows, not embedded again
    win.close()


def test_keep_metadata_is_a_saved_setting_and_goes_with_the_cleanup(qtbot, library, data_dir, tmp_path, monkeypatch):
    from imgsim_desktop.core.settings import Settings

    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda _p, _t, text, *a, **k: asked.append(text) or QMessageBox.StandardButton.Yes)
    win, page = _open_duplicates(qtbot, data_dir)
    assert not page.keep_metadata.isChecked()  # off by default
    page.keep_metadata.click()
    assert Settings.load(Path(data_dir)).keep_metadata  # saved at once
    sent: list[tuple] = []
    real_apply = page.controller.apply
    monkeypatch.setattr(page.controller, "apply", lambda *a, **k: sent.append(a) or real_apply(*a, **k))
    page.clean_up("move", move_to=str(tmp_path / "aside"))
    assert "XMP sidecar" in asked[0] and sent and sent[0][-1] is True
    qtbot.waitUntil(page.undo_button.isVisible, timeout=20_000)
    win.close()

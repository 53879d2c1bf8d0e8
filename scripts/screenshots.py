"""Drive the real app on a sample library and save screenshots of its main views.

    xvfb-run -a -s "-screen 0 1400x900x24" python scripts/screenshots.py OUT_DIR [PHOTO_FOLDER]

Uses a fresh temporary data dir, so the user's own library is never touched. Saves:
empty.png, indexing.png, grid.png, folders.png, unreadable.png, similar.png, preview.png, stacked.png (near-identical
results in one tile), stacked_open.png (its copies shown), duplicates.png,
cleanup_confirm.png, similar_shots.png, map.png, map_grid.png, backbones.png, about.png.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "screenshots").resolve()
    photos = Path(sys.argv[2] if len(sys.argv) > 2 else REPO.parent / "shared" / "photos").resolve()
    out.mkdir(parents=True, exist_ok=True)
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from imgsim_desktop.ui.main_window import MainWindow

    app = QApplication(sys.argv[:1])
    data = tempfile.mkdtemp(prefix="imgsim-shots-")
    window = MainWindow(data_dir=data)
    window.resize(1360, 860)
    window.show()
    shots: list[str] = []

    def shot(name: str) -> None:
        QApplication.processEvents()
        window.grab().save(str(out / name))
        shots.append(name)

    def wait_until(cond, then, timeout_s: float = 120.0) -> None:
        remaining = [int(timeout_s * 10)]

        def poll() -> None:
            remaining[0] -= 1
            if cond() or remaining[0] <= 0:
                then()
            else:
                QTimer.singleShot(100, poll)

        poll()

    def step_empty() -> None:
        shot("empty.png")
        window.add_folder_path(str(photos))
        wait_until(lambda: window.writer.busy and window.library_model.rowCount() >= 24, step_indexing)

    def step_indexing() -> None:
        shot("indexing.png")
        wait_until(lambda: not window.writer.busy, lambda: QTimer.singleShot(3000, step_grid))

    def step_grid() -> None:
        shot("grid.png")
        side = window.library_panel
        side.tree.expandAll()
        side.choose(str(photos / "ukbench"))  # the folder tree filters the grid
        QTimer.singleShot(2500, step_folders)

    def step_folders() -> None:
        shot("folders.png")
        window.library_panel.choose("")
        window.show_unreadable()  # what "N could not be read · Which?" lists
        QTimer.singleShot(1000, step_unreadable)

    def step_unreadable() -> None:
        window.unreadable_dialog.grab().save(str(out / "unreadable.png"))
        shots.append("unreadable.png")
        window.unreadable_dialog.close()
        target = next(p for p in (photos / "ukbench" / "ukbench00120.jpg", *sorted(photos.rglob("*.jpg"))) if p.exists())
        window.find_similar(str(target))
        wait_until(lambda: window.pages.currentIndex() == 2, lambda: QTimer.singleShot(3000, step_similar))

    def step_similar() -> None:
        shot("similar.png")
        window._preview(window.results_grid, 1)
        QTimer.singleShot(2500, step_preview)

    def step_preview() -> None:
        window._preview_dialog.grab().save(str(out / "preview.png"))
        shots.append("preview.png")
        window._preview_dialog.close()
        # A wallpaper kept in many sizes that came out byte-identical: its copies are one stacked tile.
        wallpaper = next(p.path for p in sorted(window.library_model.all_photos(), key=lambda p: p.path) if "/wallpapers/kde_" in p.path)
        window.find_similar(wallpaper)
        model = window.results_model
        wait_until(lambda: window.history and window.history.current.query == wallpaper and any(model.item(i).copies for i in range(model.rowCount())),
                   lambda: QTimer.singleShot(3000, step_stacked))  # fmt: skip

    def step_stacked() -> None:
        shot("stacked.png")
        model = window.results_model
        top = next(model.item(i) for i in range(model.rowCount()) if model.item(i).copies)
        model.toggle_stack(top.photo.path)  # what a click on its badge does
        QTimer.singleShot(2500, step_stacked_open)

    def step_stacked_open() -> None:
        shot("stacked_open.png")
        window.show_duplicates()
        page = window.dup_page
        wait_until(lambda: page.scan_button.isEnabled() and bool(page.tree.groups), step_duplicates, timeout_s=300)

    def step_duplicates() -> None:
        page = window.dup_page
        tree = page.tree
        # Point at a photo in the first edited-copy group (not a byte-identical one) for the compare view.
        group = next((g for g in tree.shown if g.tier == "duplicate"), tree.shown[0] if tree.shown else None)
        if group is not None:
            tree.setCurrentItem(tree._items[group.members[-1].path])
        QTimer.singleShot(2500, lambda: (shot("duplicates.png"), step_confirm()))

    def step_confirm() -> None:
        # The confirmation before anything moves: shot while it is up, then answered No.
        def grab_and_decline() -> None:
            box = QApplication.activeModalWidget()
            if box is not None:
                box.grab().save(str(out / "cleanup_confirm.png"))
                shots.append("cleanup_confirm.png")
                box.reject()

        QTimer.singleShot(1500, grab_and_decline)
        window.dup_page.clean_up("trash")  # returns once the box is answered
        window.dup_page.view_box.setCurrentIndex(1)
        QTimer.singleShot(2500, step_similar_shots)

    def step_similar_shots() -> None:
        shot("similar_shots.png")
        window.research_tools.act_map.trigger()
        view = window.research_tools.map_view
        wait_until(lambda: bool(view.tiles), lambda: QTimer.singleShot(4000, step_map), timeout_s=300)

    def step_map() -> None:
        shot("map.png")
        window.research_tools.map_view.tidy.setChecked(True)
        window.research_tools.map_view.fit()
        QTimer.singleShot(3000, step_map_grid)

    def step_map_grid() -> None:
        shot("map_grid.png")
        target = next(p.path for p in window.library_model.all_photos() if p.path.endswith("ukbench00120.jpg"))
        dialog = window.research_tools.compare(target)
        dialog.resize(1300, 800)
        wait_until(lambda: bool(dialog.lists), lambda: QTimer.singleShot(3000, lambda: step_backbones(dialog)))

    def step_backbones(dialog) -> None:
        dialog.grab().save(str(out / "backbones.png"))
        shots.append("backbones.png")
        dialog.close()
        window.show_about()
        QTimer.singleShot(1000, step_about)

    def step_about() -> None:
        window.about_dialog.grab().save(str(out / "about.png"))
        shots.append("about.png")
        window.about_dialog.close()
        window.close()
        app.quit()

    QTimer.singleShot(1500, step_empty)
    app.exec()
    print("\n".join(str(out / s) for s in shots))
    return 0 if len(shots) == 16 else 1


if __name__ == "__main__":
    sys.exit(main())

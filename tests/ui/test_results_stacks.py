"""Results: near-identical copies are one stacked tile with a count badge; a click on the badge
shows them; the top k then holds more distinct photos."""

from __future__ import annotations

from conftest import PHOTOS, indexed_window
from imgsim_desktop.ui.tile_delegate import PADDING, STACK_COLOUR


def _copies(folder, source, count: int) -> list[str]:
    """``count`` copies of ``source`` as a library collects them: re-encoded, resized, brightened, PNG."""
    from PIL import Image, ImageEnhance

    photo = Image.open(source).convert("RGB")
    made = []
    for n in range(count):
        image = photo.resize((photo.width * (10 - n % 4) // 10, photo.height * (10 - n % 4) // 10)) if n % 4 else photo
        image = ImageEnhance.Brightness(image).enhance(1 + 0.02 * (n % 3))
        target = folder / (f"copy {n}.png" if n % 5 == 4 else f"copy {n}.jpg")
        image.save(target, **({} if target.suffix == ".png" else {"quality": 60 + 4 * n}))
        made.append(str(target))
    return made


def test_copies_stack_into_one_tile_that_a_click_on_its_badge_opens(qtbot, tmp_path, data_dir):
    from PySide6.QtCore import QPoint, Qt

    lib = tmp_path / "lib"
    lib.mkdir()
    copies = _copies(lib, PHOTOS / "aib/0.jpg", 8)
    win = indexed_window(qtbot, tmp_path, data_dir, [f"aib/{i}.jpg" for i in range(30)])
    win.resize(1200, 800)
    qtbot.waitUntil(lambda: win.library_model.total() == 38, timeout=30_000)
    k = 5
    win.find_similar(str(lib / "0.jpg"), k=k)
    qtbot.waitUntil(lambda: win.pages.currentIndex() == 2 and win.results_model.rowCount() > 1, timeout=20_000)
    model, grid = win.results_model, win.results_grid
    tiles = [model.item(i) for i in range(model.rowCount())]
    assert tiles[0].is_query and len(tiles) == 1 + k
    stacked = [t for t in tiles if t.copies]
    assert len(stacked) == 1 and {stacked[0].photo.path, *(c.photo.path for c in stacked[0].copies)} == set(copies)
    # Eight copies would have filled the top five: now four other photos show beside their stack.
    distinct = [t for t in tiles[1:] if t.photo.path not in copies]
    assert len(distinct) == k - 1
    assert "8 photos" not in win.status_label.text() and "7 near-identical copies stacked" in win.status_label.text()

    # The badge is painted at the stack's top right corner, in the stack's colour.
    row = tiles.index(stacked[0])
    rect = grid.visualRect(model.index(row))
    right = rect.x() + (rect.width() + grid.tile_delegate.tile) // 2 - 8
    top = rect.y() + PADDING + 6
    image = grid.viewport().grab().toImage()
    colours = [image.pixelColor(x, top) for x in range(right - 20, right)]
    assert sum(abs(c.red() - STACK_COLOUR.red()) + abs(c.green() - STACK_COLOUR.green()) + abs(c.blue() - STACK_COLOUR.blue()) < 30 for c in colours) > 10
    assert "8 near-identical copies stacked" in model.data(model.index(row), Qt.ItemDataRole.ToolTipRole)

    # A click elsewhere on the tile selects it; a click on the badge shows the copies right after it.
    qtbot.mouseClick(grid.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert model.rowCount() == 1 + k and grid.currentIndex().row() == row
    qtbot.mouseClick(grid.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(right, top))
    assert model.rowCount() == 1 + k + 7
    opened = [model.item(i).photo.path for i in range(row, row + 8)]
    assert set(opened) == set(copies) and all(model.stack_state(model.item(i)) == "copy" for i in range(row + 1, row + 8))
    rect = grid.visualRect(model.index(row))
    qtbot.mouseClick(grid.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(rect.x() + (rect.width() + grid.tile_delegate.tile) // 2 - 8, top))
    assert model.rowCount() == 1 + k and model.stack_state(model.item(row)) == "closed"
    win.close()

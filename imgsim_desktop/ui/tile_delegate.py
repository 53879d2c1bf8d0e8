"""Paints one grid tile: thumbnail (or a placeholder until it arrives), name, and score badge."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from imgsim_desktop.ui.text import readable

TEXT_HEIGHT = 18  # one line of the name
PADDING = 6
TWO_LINES_BELOW = 128  # smaller tiles show the name on two lines: one would keep only a few letters


def text_height(tile: int) -> int:
    return TEXT_HEIGHT * (2 if tile < TWO_LINES_BELOW else 1)


def name_lines(metrics, name: str, width: int, lines: int) -> list[str]:
    """The name in at most ``lines`` lines of ``width`` pixels: broken where it no longer fits,
    the last line elided in the middle (names differ at their end: the number and the extension)."""
    out: list[str] = []
    rest = name
    while len(out) < lines - 1 and metrics.horizontalAdvance(rest) > width:
        cut = len(rest)
        while cut > 1 and metrics.horizontalAdvance(rest[:cut]) > width:
            cut -= 1
        out.append(rest[:cut])
        rest = rest[cut:]
    out.append(metrics.elidedText(rest, Qt.TextElideMode.ElideMiddle, width))
    return out


class TileDelegate(QStyledItemDelegate):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.tile = 160

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return QSize(self.tile + 2 * PADDING, self.tile + text_height(self.tile) + 2 * PADDING)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        palette = option.palette
        rect = option.rect
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected:
            painter.fillRect(rect.adjusted(2, 2, -2, -2), palette.color(QPalette.ColorRole.Highlight))
        elif option.state & QStyle.StateFlag.State_MouseOver:
            painter.fillRect(rect.adjusted(2, 2, -2, -2), palette.color(QPalette.ColorRole.AlternateBase))
        box = QRect(rect.x() + (rect.width() - self.tile) // 2, rect.y() + PADDING, self.tile, self.tile)  # the cell may be wider
        # Read the Python item directly, never index.data(): in PySide6 6.12 on Python 3.11 every
        # index.data() call that yields None drops a reference to None, and after enough paints the
        # interpreter aborts ("deallocating None"). The model's own methods do not cross into C++.
        model = index.model()
        item = model.item(index.row())
        if item is None:
            painter.restore()
            return
        pixmap = model.thumbnail_for(item) if model.thumbnail_for else None
        stack = model.stack_state(item) if hasattr(model, "stack_state") else None
        if isinstance(pixmap, QPixmap) and not pixmap.isNull():
            dpr = pixmap.devicePixelRatio()
            room = box.adjusted(0, 2 * STACK_STEP, -2 * STACK_STEP, 0) if stack == "closed" else box  # the prints beneath show top right
            size = QSize(round(pixmap.width() / dpr), round(pixmap.height() / dpr)).scaled(room.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, size.width(), size.height())
            target.moveCenter(room.center())
        else:
            target = box.adjusted(8, 8, -8, -8)
        if stack == "closed":  # the copies as prints lying under the top one
            for step in (2, 1):
                painter.setPen(palette.color(QPalette.ColorRole.Dark))
                painter.setBrush(palette.color(QPalette.ColorRole.Button))
                painter.drawRect(target.translated(step * STACK_STEP, -step * STACK_STEP))
        if isinstance(pixmap, QPixmap) and not pixmap.isNull():
            painter.drawPixmap(target, pixmap)
        else:
            painter.fillRect(target, palette.color(QPalette.ColorRole.Midlight))
        if stack == "copy":  # shown out of an open stack: framed in the stack's colour
            painter.setPen(QPen(STACK_COLOUR, 2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(target.adjusted(-1, -1, 1, 1))
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        painter.setPen(palette.color(role))
        width = rect.width() - 2 * PADDING
        lines = name_lines(painter.fontMetrics(), readable(item.name), width, text_height(self.tile) // TEXT_HEIGHT)
        for n, line in enumerate(lines):
            text_rect = QRect(rect.x() + PADDING, box.bottom() + 2 + n * TEXT_HEIGHT, width, TEXT_HEIGHT)
            painter.drawText(text_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter, line)
        if item.is_query:
            self._badge(painter, box, "query", QColor(30, 110, 220))
        elif item.score is not None:
            self._badge(painter, box, f"{item.score:.2f}", _score_colour(item.score))
        if stack in ("closed", "open"):
            text = stack_text(item, stack == "open")
            painter.setFont(bold(painter.font()))
            badge = self.stack_badge(rect, painter.fontMetrics(), text)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(STACK_COLOUR)
            painter.drawRoundedRect(badge, 4, 4)
            painter.setPen(QColor("white"))
            painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()

    def stack_badge(self, rect: QRect, metrics: QFontMetrics, text: str) -> QRect:
        """Where a stack's count badge lies in a tile of ``rect``: its top right corner (a click there opens or closes the stack)."""
        right = rect.x() + (rect.width() + self.tile) // 2 - 4
        width = metrics.horizontalAdvance(text) + 10
        return QRect(right - width, rect.y() + PADDING + 4, width, metrics.height() + 4)

    @staticmethod
    def _badge(painter: QPainter, box: QRect, text: str, colour: QColor) -> None:
        painter.setFont(bold(painter.font()))
        metrics = painter.fontMetrics()
        badge = QRect(box.x() + 4, box.y() + 4, metrics.horizontalAdvance(text) + 10, metrics.height() + 4)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawRoundedRect(badge, 4, 4)
        painter.setPen(QColor("white"))
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)


STACK_STEP = 4  # pixels between the prints of a stack
STACK_COLOUR = QColor(110, 60, 170)


def stack_text(item, open_: bool) -> str:
    """A stack's badge: "12 copies" while stacked, "▾ 12" while its copies are shown."""
    count = len(item.copies) + 1
    return f"▾ {count}" if open_ else f"{count} copies"


def bold(font: QFont) -> QFont:
    font = QFont(font)
    font.setBold(True)
    return font


NEAR, CLOSE = 0.9, 0.7  # the badge's colour bands; "only close matches" keeps CLOSE and up
BANDS = [(NEAR, QColor(20, 140, 60), "near-identical"), (CLOSE, QColor(200, 120, 0), "alike"), (-1.0, QColor(90, 90, 90), "less alike")]


def _score_colour(score: float) -> QColor:
    return next(colour for low, colour, _ in BANDS if score >= low)


def legend_html() -> str:
    """The badge colours explained, for the results header."""
    chips = []
    for low, colour, words in BANDS:
        band = f"{low:.2f}+" if low >= 0 else f"below {CLOSE:.2f}"
        chips.append(f'<span style="background:{colour.name()}; color:white">&nbsp;{band}&nbsp;</span> {words}')
    return " &nbsp; ".join(chips)

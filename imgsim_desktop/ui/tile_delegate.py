"""Paints one grid tile: thumbnail (or a placeholder until it arrives), name, and score badge."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

TEXT_HEIGHT = 18
PADDING = 6


class TileDelegate(QStyledItemDelegate):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.tile = 160

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return QSize(self.tile + 2 * PADDING, self.tile + TEXT_HEIGHT + 2 * PADDING)

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
        box = QRect(rect.x() + PADDING, rect.y() + PADDING, self.tile, self.tile)
        # Read the Python item directly, never index.data(): in PySide6 6.12 on Python 3.11 every
        # index.data() call that yields None drops a reference to None, and after enough paints the
        # interpreter aborts ("deallocating None"). The model's own methods do not cross into C++.
        model = index.model()
        item = model.item(index.row())
        if item is None:
            painter.restore()
            return
        pixmap = model.thumbnail_for(item) if model.thumbnail_for else None
        if isinstance(pixmap, QPixmap) and not pixmap.isNull():
            dpr = pixmap.devicePixelRatio()
            size = QSize(round(pixmap.width() / dpr), round(pixmap.height() / dpr)).scaled(box.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, size.width(), size.height())
            target.moveCenter(box.center())
            painter.drawPixmap(target, pixmap)
        else:
            painter.fillRect(box.adjusted(8, 8, -8, -8), palette.color(QPalette.ColorRole.Midlight))
        text_rect = QRect(rect.x() + PADDING, box.bottom() + 2, self.tile, TEXT_HEIGHT)
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        painter.setPen(palette.color(role))
        name = painter.fontMetrics().elidedText(item.name, Qt.TextElideMode.ElideMiddle, self.tile)
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter, name)
        if item.is_query:
            self._badge(painter, box, "query", QColor(30, 110, 220))
        elif item.score is not None:
            self._badge(painter, box, f"{item.score:.2f}", _score_colour(item.score))
        painter.restore()

    @staticmethod
    def _badge(painter: QPainter, box: QRect, text: str, colour: QColor) -> None:
        font = QFont(painter.font())
        font.setBold(True)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        badge = QRect(box.x() + 4, box.y() + 4, metrics.horizontalAdvance(text) + 10, metrics.height() + 4)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawRoundedRect(badge, 4, 4)
        painter.setPen(QColor("white"))
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)


def _score_colour(score: float) -> QColor:
    if score >= 0.9:
        return QColor(20, 140, 60)  # near-duplicate territory
    if score >= 0.7:
        return QColor(200, 120, 0)
    return QColor(90, 90, 90)

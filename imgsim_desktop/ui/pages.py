"""Two simple pages of the main window: the first-run invitation and the "Find similar" results."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QSpinBox, QVBoxLayout, QWidget

from imgsim_desktop.ui.tile_delegate import CLOSE, legend_html


class EmptyPage(QWidget):
    """What a first run shows: one clear thing to do."""

    add_requested = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        title = QLabel("Your library is empty", alignment=Qt.AlignmentFlag.AlignCenter)
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.8)
        title.setFont(font)
        hint = QLabel(
            "Add a folder of photos. imgsim indexes it in the background — nothing is changed or uploaded —\n"
            "then right-click any photo and choose “Find similar”, or drop a photo here to search with it.",
            alignment=Qt.AlignmentFlag.AlignCenter,
        )
        hint.setWordWrap(True)
        self.button = QPushButton("Add folder…")
        self.button.setMinimumWidth(180)
        self.button.clicked.connect(self.add_requested)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.button)
        row.addStretch(1)
        layout.addWidget(title)
        layout.addWidget(hint)
        layout.addSpacing(12)
        layout.addLayout(row)
        layout.addStretch(3)


class ResultsPage(QWidget):
    """A results grid under a header: what was searched for, how many results, which backbone."""

    def __init__(self, grid: QWidget, k: int, models: list[tuple[str, str]], current_model: str, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        header = QHBoxLayout()
        header.setContentsMargins(8, 6, 8, 0)
        self.title = QLabel()
        self.title.setMinimumWidth(60)  # a long file name is cut, it does not widen the window
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        header.addWidget(self.title, 1)
        header.addWidget(QLabel("Results"))
        self.k_box = QSpinBox(minimum=1, maximum=500, value=k)
        self.k_box.setToolTip("How many neighbours to show")
        header.addWidget(self.k_box)
        header.addWidget(QLabel("Backbone"))
        self.model_box = QComboBox()
        for name, title in models:
            self.model_box.addItem(title, name)
        self.show_model(current_model)
        header.addWidget(self.model_box)
        layout.addLayout(header)
        second = QHBoxLayout()
        second.setContentsMargins(8, 0, 8, 0)
        self.legend = QLabel(legend_html(), wordWrap=True)
        self.legend.setToolTip("The badge on each result: its similarity to the query (cosine of their embeddings)")
        second.addWidget(self.legend, 1)
        self.close_only = QCheckBox("Only close matches")
        self.close_only.setToolTip(f"Hide results less alike than {CLOSE:.2f}")
        second.addWidget(self.close_only)
        layout.addLayout(second)
        # Said when the search could not see the whole library (indexing is still running).
        self.note = QLabel(wordWrap=True)
        self.note.setContentsMargins(8, 0, 8, 0)
        self.note.hide()
        layout.addWidget(self.note)
        layout.addWidget(grid, 1)

    def show_model(self, name: str) -> None:
        self.model_box.setCurrentIndex(max(0, self.model_box.findData(name)))

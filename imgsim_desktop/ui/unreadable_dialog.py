"""Which files could not be read, and why: what the status bar's "N could not be read" refers to."""

from __future__ import annotations

import os

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QTreeWidget, QTreeWidgetItem, QVBoxLayout

from imgsim_desktop.ui.text import readable


class UnreadableDialog(QDialog):
    retry_requested = Signal()  # "Try again": read every file that failed once more, changed or not

    def __init__(self, errors: list[dict], parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Files that could not be read")
        self.resize(820, 420)
        layout = QVBoxLayout(self)
        count = len(errors)
        layout.addWidget(QLabel(f"{count:,} file{'s' * (count != 1)} could not be read. They stay where they are and are tried again "
                                "when they change (unreadable ones at the next run). Try again reads them all now: after installing a "
                                "decoder, say, or fixing permissions."))  # fmt: skip
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["File", "Why", "Folder"])
        self.tree.setRootIsDecorated(False)
        for e in errors:
            item = QTreeWidgetItem([readable(os.path.basename(e["path"])), e["error"], readable(os.path.dirname(e["path"]))])
            item.setToolTip(0, readable(e["path"]))
            item.setToolTip(1, e["error"])
            self.tree.addTopLevelItem(item)
        for column in (0, 1):
            self.tree.resizeColumnToContents(column)
        layout.addWidget(self.tree, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.retry_button = buttons.addButton("Try again", QDialogButtonBox.ButtonRole.ActionRole)
        self.retry_button.clicked.connect(self.retry_requested)
        self.retry_button.clicked.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

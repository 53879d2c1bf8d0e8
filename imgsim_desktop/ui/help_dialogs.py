"""Help menu windows: About (version, models and their licences, data folder, device) and a
short "Getting started"."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout

from imgsim_desktop import __version__
from imgsim_desktop.core.backbones import list_models

GETTING_STARTED = """
<h3>Getting started</h3>
<ol>
<li><b>Add a folder</b> of photos (File → Add folder…, Ctrl+O, or drop a folder on the window).
imgsim indexes it in the background; nothing is changed or uploaded. New and changed photos in it are
picked up while the app runs.</li>
<li><b>Find similar</b>: select a photo and press Ctrl+F (or right-click it → Find similar). The
results are ranked by likeness; the badge on each is its similarity (green: near-identical, 0.90 and
up; orange: alike, 0.70 and up; grey: less alike). Drop or paste (Ctrl+V) a photo from elsewhere to
search with it.</li>
<li><b>Look closer</b>: Space or Enter opens the preview; ← → walk through the grid, Home and End
jump to the first and last photo, the wheel zooms.</li>
<li><b>Clean up duplicates</b>: Tools → Duplicates (Ctrl+D) groups copies of the same photo; the
suggested copies to remove are ticked. Nothing moves until you confirm; moves can be undone from
the cleanup history.</li>
<li><b>Find your way back</b>: Back and Forward walk through your searches; Library (Ctrl+L) shows
every photo. Filter by file name in the toolbar; Ctrl+wheel or Ctrl++ / Ctrl+- change the
thumbnail size.</li>
</ol>
"""


class AboutDialog(QDialog):
    def __init__(self, data_dir: Path, model_title: str, device: str, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About imgsim")
        models = []
        for spec in list_models(data_dir):
            state = "" if spec.installed else " (not installed)"
            licence = html.escape(spec.licence or "licence not stated")
            source = f" · {html.escape(spec.source)}" if spec.source else ""
            models.append(f"<li>{html.escape(spec.title)}{state}: {licence}{source}</li>")
        self.text = QLabel(
            f"<h2>imgsim {html.escape(__version__)}</h2>"
            "<p>Finds similar photos and duplicates in your own folders, on this computer.</p>"
            f"<p><b>Searching with:</b> {html.escape(model_title)} · {html.escape(device)}</p>"
            f"<p><b>Models and their licences:</b></p><ul>{''.join(models)}</ul>"
            f"<p><b>Data folder</b> (catalog, thumbnails, settings): {html.escape(str(data_dir))}</p>"
        )
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
        self.setMinimumWidth(560)


class GettingStartedDialog(QDialog):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Getting started")
        self.text = QLabel(GETTING_STARTED)
        self.text.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
        self.setMinimumWidth(620)

"""Research tools as windows: a photo's neighbours under every backbone side by side, and the
perturbation-recovery experiment (precision / recall / F1 at k) with its chart and report."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QCheckBox,
    QDialog,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from imgsim_desktop.ui.index_status import duration

THUMB = 96  # logical pixels
DEFAULT_KS = (1, 3, 5)  # what research.perturb measures unless told otherwise
COLUMN_WIDTH = 330


class BackboneCompareDialog(QDialog):
    """One column per installed backbone: the query's nearest neighbours with their scores. A
    backbone the library is not indexed with offers to index it (in the background) right there."""

    index_requested = Signal(str)  # model name

    def __init__(self, controller, loader, mtimes: dict[str, int], query: str, k: int = 12, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Neighbours by backbone — {os.path.basename(query)}")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.resize(1200, 760)
        self.loader, self.mtimes, self.query = loader, mtimes, query
        self.controller, self.k = controller, k
        self._notes: dict[str, QLabel] = {}
        self.lists: list[QListWidget] = []
        self._items: dict[str, list[QListWidgetItem]] = {}
        self.status = QLabel("Searching with every backbone…")
        self.query_icon = QLabel()
        header = QHBoxLayout()
        header.addWidget(self.query_icon)
        header.addWidget(QLabel(f"<b>{os.path.basename(query)}</b><br>{os.path.dirname(query)}"), 1)
        self.scroll = QScrollArea(widgetResizable=True)
        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addWidget(self.status)
        layout.addWidget(self.scroll, 1)
        controller.neighbours_ready.connect(self._ready)
        controller.failed.connect(self._failed)
        loader.ready.connect(self._thumbnail_ready)
        loader.request(query, mtimes.get(query, 0), self._edge())
        controller.neighbours(query, k)

    def _edge(self) -> int:
        return round(THUMB * self.devicePixelRatioF())

    def refresh(self) -> None:
        """Search again (a backbone has just been indexed)."""
        self.status.setText("Searching with every backbone…")
        self.controller.neighbours(self.query, self.k)

    def show_index_progress(self, model: str, done: int, total: int) -> None:
        if model in self._notes:
            self._notes[model].setText(f"Indexing the library… {done:,} of {total:,}" if total else "Indexing the library…")

    def _ready(self, query: str, by_backbone) -> None:
        if query != self.query:
            return
        self.columns = QHBoxLayout()
        box = QWidget()
        box.setLayout(self.columns)
        self.scroll.setWidget(box)  # replaces (and deletes) the columns of an earlier answer
        self.lists, self._items, self._notes = [], {}, {}
        shown = [b for b in by_backbone if b.results is not None]
        self.status.setText(f"{len(shown)} of {len(by_backbone)} backbones have this library indexed. Scores are cosine similarity.")
        for b in by_backbone:
            column = QVBoxLayout()
            title = QLabel(f"<b>{b.title}</b>")
            column.addWidget(title)
            if b.results is None:
                note = QLabel("The library is not indexed with this backbone yet." if b.needs_indexing else b.note, wordWrap=True)
                note.setFixedWidth(COLUMN_WIDTH)
                column.addWidget(note)
                if b.needs_indexing:
                    index = QPushButton(f"Index the library with {b.title}")
                    index.clicked.connect(lambda _=False, m=b.model, button=index: (button.setEnabled(False), self.index_requested.emit(m)))
                    column.addWidget(index)
                    self._notes[b.model] = note
                column.addStretch(1)
            else:
                column.addWidget(self._result_list(b.results), 1)
            self.columns.addLayout(column)
        self.columns.addStretch(1)

    def _result_list(self, results) -> QListWidget:
        # A list, not a grid: rank n sits at the same height in every column, easy to compare across.
        view = QListWidget()
        view.setIconSize(QSize(THUMB, THUMB))
        view.setUniformItemSizes(True)
        view.setSpacing(2)
        view.setFixedWidth(COLUMN_WIDTH)
        view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        for rank, (path, score) in enumerate(results, 1):
            item = QListWidgetItem(f"{rank}.  {score:.3f}\n{os.path.basename(path)}")
            item.setToolTip(path)
            view.addItem(item)
            self._items.setdefault(path, []).append(item)
            self.loader.request(path, self.mtimes.get(path, 0), self._edge())
        self.lists.append(view)
        return view

    def _thumbnail_ready(self, path: str, edge: int, image) -> None:
        if edge != self._edge():
            return
        pixmap = QPixmap.fromImage(image)
        pixmap.setDevicePixelRatio(self.devicePixelRatioF())
        if path == self.query:
            self.query_icon.setPixmap(pixmap)
        if path in self._items:
            for item in self._items[path]:
                item.setIcon(QIcon(pixmap))

    def _failed(self, job: str, message: str) -> None:
        if job == "compare":
            self.status.setText(f"Comparison failed: {message}")


class PerturbationDialog(QDialog):
    """Make five perturbed copies of each original, index them, and measure how many come back."""

    def __init__(self, controller, models: list[tuple[str, str]], sample_paths, work_dir: Path, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Perturbation recovery")
        self.resize(1000, 760)
        self.controller, self.sample_paths = controller, sample_paths
        self.report = None
        self.chart = ""
        # Copies and their throwaway index live here, replaced by each run: one set at most, in
        # the app's data folder, never beside the user's photos.
        self.work_dir = work_dir
        self.folder = QLineEdit(placeholderText="A folder of original photos (they are only read)")
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._choose)
        self.model_boxes = []
        models_row = QHBoxLayout()
        models_row.addWidget(QLabel("Backbones:"))
        for name, title in models:
            box = QCheckBox(title, checked=True)
            box.setProperty("model", name)
            self.model_boxes.append(box)
            models_row.addWidget(box)
        models_row.addStretch(1)
        self.run_button = QPushButton("Run")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel", enabled=False)
        self.cancel_button.clicked.connect(controller.cancel)
        self.progress = QProgressBar(textVisible=False)
        self.status = QLabel("Each original gets five copies: JPEG recompression, downscale-and-upscale, crop, "
                             "colour change with blur, rotation with an overlay. The originals are only read.", wordWrap=True)  # fmt: skip
        self.table = QTableWidget()
        self.profiles = QTableWidget()
        self.chart_label = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.export_button = QPushButton("Export HTML report…", enabled=False)
        self.export_button.clicked.connect(lambda _checked=False: self.export())  # clicked(bool) is not a file name
        grid = QGridLayout()
        grid.addWidget(QLabel("Originals"), 0, 0)
        grid.addWidget(self.folder, 0, 1)
        grid.addWidget(browse, 0, 2)
        buttons = QHBoxLayout()
        for w in (self.run_button, self.cancel_button, self.progress):
            buttons.addWidget(w)
        results = QHBoxLayout()
        tables = QVBoxLayout()
        tables.addWidget(self.table)
        tables.addWidget(QLabel(f"Share of each kind of copy found in the top {max(DEFAULT_KS)}:"))
        tables.addWidget(self.profiles)
        tables.addStretch(1)
        results.addLayout(tables, 3)  # nine metric columns need the room more than the chart
        results.addWidget(self.chart_label, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addLayout(models_row)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addLayout(results, 1)
        layout.addWidget(self.export_button, 0, Qt.AlignmentFlag.AlignRight)
        controller.progress.connect(self._progress)
        controller.perturb_ready.connect(self._ready)
        controller.report_ready.connect(self._report_ready)
        controller.failed.connect(self._failed)

    def _choose(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of original photos")
        if folder:
            self.folder.setText(folder)

    def run(self) -> None:
        originals = self.folder.text().strip()
        if not os.path.isdir(originals):
            self.status.setText(f"Not a folder: {originals or '(none chosen)'}")
            return
        models = [b.property("model") for b in self.model_boxes if b.isChecked()]
        if not models:
            self.status.setText("Choose at least one backbone.")
            return
        shutil.rmtree(self.work_dir, ignore_errors=True)
        self.work_dir.mkdir(parents=True)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText("Making copies and indexing them…")
        self._started = time.monotonic()
        self.controller.perturbation(originals, str(self.work_dir), models)

    def _plain(self, message: str) -> str:
        """A progress message without the app's own working paths (the copies' folder in the data folder)."""
        return re.sub(re.escape(str(self.work_dir)) + r"[^\s:,;]*", "the copies", message)

    def _progress(self, job: str, done: int, total: int, message: str) -> None:
        if job == "perturb":
            self.progress.setRange(0, max(total, 0))
            self.progress.setValue(done)
            left = ""
            elapsed = time.monotonic() - getattr(self, "_started", time.monotonic())
            if 0 < done < total and (elapsed > 1 or done * 10 >= total):  # an estimate once there is something to go on
                left = f" · about {duration(elapsed / done * (total - done))} left"
            if message or left:
                self.status.setText(self._plain(message or "Working") + left)

    def _ready(self, report, chart: str) -> None:
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.show_result(report, chart)

    def show_result(self, report, chart: str) -> None:
        """A finished run's numbers, chart and export (also the last run's, when the dialog opens again)."""
        self.report, self.chart = report, chart
        self.export_button.setEnabled(True)
        problems = "\n".join(f"{os.path.basename(p) or p}: {why}" for p, why in report.errors[:30])
        if not report.originals:  # nothing was measured: say why instead of showing empty numbers
            self.export_button.setEnabled(False)
            self.status.setText(f"Nothing to measure. {problems}")
            return
        said = f" {len(report.errors)} problem{'s' * (len(report.errors) != 1)} (hover to see)." if report.errors else ""
        self.status.setText(f"{report.originals} originals, {report.copies} copies.{said}")
        self.status.setToolTip(problems)
        self._fill_tables(report)
        pixmap = QPixmap(chart)
        if not pixmap.isNull():
            self.chart_label.setPixmap(pixmap.scaled(QSize(520, 520), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))

    def _fill_tables(self, report) -> None:
        headers = [f"{m}@{k}" for k in report.ks for m in ("P", "R", "F1")]
        self.table.setColumnCount(len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        self.table.setRowCount(len(report.backbones))
        self.table.setVerticalHeaderLabels([b.title for b in report.backbones])
        for row, b in enumerate(report.backbones):
            values = [b.at_k[k][m] for k in report.ks for m in ("precision", "recall", "f1")]
            for col, value in enumerate(values):
                self.table.setItem(row, col, QTableWidgetItem(f"{value:.3f}"))
        profiles = list(report.backbones[0].recall_by_profile) if report.backbones else []
        self.profiles.setColumnCount(len(profiles))
        self.profiles.setHorizontalHeaderLabels([p.replace("_", " + ") for p in profiles])
        self.profiles.setRowCount(len(report.backbones))
        self.profiles.setVerticalHeaderLabels([b.title for b in report.backbones])
        for row, b in enumerate(report.backbones):
            for col, p in enumerate(profiles):
                self.profiles.setItem(row, col, QTableWidgetItem(f"{b.recall_by_profile[p]:.3f}"))
        for table in (self.table, self.profiles):
            table.resizeColumnsToContents()
            table.setSizeAdjustPolicy(QAbstractScrollArea.SizeAdjustPolicy.AdjustToContents)  # as wide as its columns
            # As tall as the rows it has: the chart gets the room that is left.
            table.setFixedHeight(table.horizontalHeader().height() + table.verticalHeader().length() + 2 * table.frameWidth() + 16)

    def export(self, out: str | None = None) -> None:
        if out is None:
            out, _ = QFileDialog.getSaveFileName(self, "Save the report", "imgsim-report.html", "HTML (*.html)")
            if not out:
                return
        self.status.setText("Writing the report…")
        self.controller.report(out, list(self.sample_paths()), self.report, self.chart)

    def _report_ready(self, path: str) -> None:
        self.status.setText(f"Report saved: {path}")
        self.last_report_path = path
        QDesktopServices.openUrl(QUrl.fromLocalFile(path))

    def _failed(self, job: str, message: str) -> None:
        if job in ("perturb", "report"):
            self.run_button.setEnabled(True)
            self.cancel_button.setEnabled(False)
            self.status.setText(f"{'The experiment' if job == 'perturb' else 'The report'} stopped: {message}")

    def done(self, result: int) -> None:
        try:
            self.controller.cancel()
        except RuntimeError:
            pass  # its worker is gone already (the backbone changed)
        super().done(result)

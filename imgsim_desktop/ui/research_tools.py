"""The Tools menu's research part: collection map page, backbone comparison, perturbation
recovery and the HTML report, wired to the window's research worker."""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import QObject, Qt, QUrl
from PySide6.QtGui import QAction, QDesktopServices
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox

from imgsim_desktop.core.backbones import list_models
from imgsim_desktop.ui.map_view import MapView
from imgsim_desktop.ui.research_dialogs import BackboneCompareDialog, PerturbationDialog

REPORT_SAMPLES = 6


class ResearchTools(QObject):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.controller = None
        self.map_view = MapView(window.thumbs)
        self.map_view.photo_clicked.connect(window.find_similar)
        self.map_view.cancel.connect(lambda: self.controller.cancel())
        self.dialog = None
        self.last_perturbation: tuple | None = None  # (report, chart, originals): kept until a new run, dialog closed or not
        self.act_map = self._action("Collection map", self.show_map, "Ctrl+M", "Every photo placed by likeness (PCA + t-SNE)")
        self.act_compare = self._action("Compare backbones", self.compare_selected, "Ctrl+B", "The selected photo's neighbours under every backbone")
        self.act_perturb = self._action("Perturbation recovery…", self.open_perturbation, tip="How well edited copies of your photos are found, per backbone")
        self.act_report = self._action("Export report…", self.export_report, tip="An HTML page with neighbours per backbone (and the latest perturbation results)")

    def _action(self, text: str, slot, shortcut: str | None = None, tip: str = "") -> QAction:
        act = QAction(text, self.window)
        act.triggered.connect(lambda _checked=False: slot())  # triggered(bool) must not arrive as the slot's first argument
        if shortcut:
            act.setShortcut(shortcut)
        act.setToolTip(tip or text)
        self.window.addAction(act)
        return act

    def add_to(self, menu: QMenu) -> None:
        for act in (self.act_map, self.act_compare, self.act_perturb, self.act_report):
            menu.addAction(act)

    def set_controller(self, controller) -> None:
        """The window's research worker (replaced when the backbone changes)."""
        self.controller = controller
        controller.progress.connect(self._progress)
        controller.map_ready.connect(self._map_ready)
        controller.failed.connect(self._failed)
        controller.report_ready.connect(self._report_ready)
        controller.perturb_ready.connect(self._perturbation_done)

    def _perturbation_done(self, report, chart: str) -> None:
        if report.originals:
            self.last_perturbation = (report, chart, self.dialog.folder.text() if self.dialog is not None else "")

    def _mtimes(self) -> dict[str, int]:
        return {p.path: p.mtime_ns for p in self.window.library_model.all_photos()}

    # --- collection map ------------------------------------------------------------------------

    def show_map(self) -> None:
        self.window.pages.setCurrentWidget(self.map_view)
        self.map_view.show_busy(0, 0, "Computing the map (it is kept until the library changes)…")
        self.controller.collection_map()

    def _progress(self, job: str, done: int, total: int, message: str) -> None:
        if job == "map":
            self.map_view.show_busy(done, total, message)

    def _map_ready(self, found, cells) -> None:
        self.map_view.show_map(found.paths, found.xy, self._mtimes(), cells)

    def _failed(self, job: str, message: str) -> None:
        if job == "map":
            shown = "; the map shown is the previous one" if self.map_view.tiles else ""
            self.map_view.show_message(f"No new map: {message.rstrip('.')}{shown}.")
        elif job == "report" and self.dialog is None:
            # A message box, not the status bar: the indexing status would overwrite it at once.
            QMessageBox.warning(self.window, "The report was not written", message)

    # --- backbones, perturbation, report -------------------------------------------------------

    def compare_selected(self) -> None:
        item = self.window.current_view().current_item()
        if item is None:
            self.window.statusBar().showMessage("Select a photo first, then Compare backbones.", 4000)
            return
        self.compare(item.photo.path)

    def compare(self, path: str) -> BackboneCompareDialog:
        dialog = BackboneCompareDialog(self.controller, self.window.thumbs, self._mtimes(), path, parent=self.window)
        self.controller.destroyed.connect(dialog.close)  # the backbone changed: its worker is gone
        dialog.index_requested.connect(lambda model: self._index_with(model, dialog))
        dialog.show()
        return dialog

    def _index_with(self, model: str, dialog: BackboneCompareDialog) -> None:
        """Index the library with another backbone, in turn with the library's other work (one
        writer), then show its column."""
        writer = self.window.writer
        writer.other_progress.connect(lambda name, done, total: name == model and shiboken6.isValid(dialog) and dialog.show_index_progress(model, done, total))
        writer.other_finished.connect(lambda report: report.model == model and shiboken6.isValid(dialog) and dialog.refresh())
        settings = self.window.settings
        writer.index_with(model, settings.device, settings.threads or None)

    def _samples(self) -> list[str]:
        """The selected photos, else a few spread evenly through the library."""
        chosen = self.window.current_view().selected_paths()
        if chosen:
            return chosen[:REPORT_SAMPLES]
        photos = sorted(p.path for p in self.window.library_model.all_photos())
        step = max(1, len(photos) // REPORT_SAMPLES)
        return photos[::step][:REPORT_SAMPLES]

    def open_perturbation(self) -> PerturbationDialog:
        models = [(s.name, s.title) for s in list_models(self.window.data_dir) if s.installed]
        if self.dialog is not None:  # one experiment window at a time
            self.dialog.raise_()
            self.dialog.activateWindow()
            return self.dialog
        self.dialog = PerturbationDialog(self.controller, models, self._samples, self.window.data_dir / "research" / "perturb", self.window)
        self.dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)  # and with it, its connections to the worker
        self.dialog.finished.connect(self._dialog_closed)
        self.controller.destroyed.connect(self.dialog.close)
        if self.last_perturbation is not None:  # closing the dialog never discards a finished run
            report, chart, originals = self.last_perturbation
            self.dialog.folder.setText(originals)
            self.dialog.show_result(report, chart)
        self.dialog.show()
        return self.dialog

    def _dialog_closed(self) -> None:
        self.dialog = None

    def export_report(self, out: str | None = None) -> None:
        if self.dialog is not None and self.dialog.report is not None:
            self.dialog.export(out)  # include the experiment on screen
            return
        if out is None:
            out, _ = QFileDialog.getSaveFileName(self.window, "Save the report", "imgsim-report.html", "HTML (*.html)")
            if not out:
                return
        self.window.status_label.setText("Writing the report…")
        report, chart, _ = self.last_perturbation or (None, "", "")
        self.controller.report(out, self._samples(), report, chart)  # with the last experiment, if any

    def _report_ready(self, path: str) -> None:
        if self.dialog is None:  # the dialog announces its own
            self.window.status_label.setText(f"Report saved: {path}")
            QDesktopServices.openUrl(QUrl.fromLocalFile(path))

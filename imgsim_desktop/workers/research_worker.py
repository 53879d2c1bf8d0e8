"""The research tools off the GUI thread: collection map, backbone comparison, perturbation
recovery and the HTML report. One QThread; each long job can be cancelled and reports progress."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from imgsim_desktop.core.engine import Engine
from imgsim_desktop.core.progress import Cancelled, Progress
from imgsim_desktop.paths import Layout
from imgsim_desktop.workers.lifecycle import WorkerController

log = logging.getLogger(__name__)


class _ResearchJob(QObject):
    progress = Signal(str, int, int, str)  # job, done, total, message
    map_ready = Signal(object, object)  # CollectionMap, tidy-grid cells (n x 2 ints)
    neighbours_ready = Signal(str, object)  # query path, [BackboneNeighbours]
    perturb_ready = Signal(object, str)  # PerturbReport, chart PNG path
    report_ready = Signal(str)  # HTML path
    problem = Signal(str, str)  # path, reason (a file skipped; the job goes on)
    failed = Signal(str, str)  # job, message

    def __init__(self, data_dir: str, model: str, device: str) -> None:
        super().__init__()
        self.data_dir, self.model, self.device = data_dir, model, device
        self.control = Progress()

    def _start(self, job: str) -> Progress:
        self.control = Progress(lambda d, t, m: self.progress.emit(job, d, t, m), rate_hz=4)
        return self.control

    def _run(self, job: str, work) -> None:
        try:
            work(self._start(job))
        except Cancelled:
            self.failed.emit(job, "Cancelled.")
        except Exception as exc:  # shown in the tool's window; the app keeps running
            log.exception("research job failed")  # the traceback goes to the log; the user gets one line
            self.failed.emit(job, f"{exc}")

    @Slot()
    def collection_map(self) -> None:
        from imgsim_desktop.research.collection_map import grid_snap, load_or_compute

        def work(progress: Progress) -> None:
            with Engine(self.data_dir, model=self.model, device=self.device) as engine:
                found = load_or_compute(Layout(self.data_dir).maps, engine.catalog, self.model, progress)
            self.map_ready.emit(found, grid_snap(found.xy) if len(found.paths) else None)

        self._run("map", work)

    @Slot(str, int)
    def neighbours(self, path: str, k: int) -> None:
        from imgsim_desktop.research.backbone_compare import neighbours_by_backbone

        self._run("compare", lambda _p: self.neighbours_ready.emit(path, neighbours_by_backbone(self.data_dir, path, k, device=self.device)))

    @Slot(str, str, object)
    def perturbation(self, originals: str, work_dir: str, models) -> None:
        from imgsim_desktop.research.perturb import run_perturbation_eval, write_chart

        def work(progress: Progress) -> None:
            report = run_perturbation_eval(Path(originals), Path(work_dir), models or None, device=self.device,
                                           progress=progress, on_error=self.problem.emit)  # fmt: skip
            chart = Path(work_dir) / "perturbation.png"
            write_chart(report, chart)
            self.perturb_ready.emit(report, str(chart))

        self._run("perturb", work)

    @Slot(str, object, object, str)
    def report(self, out_html: str, samples, perturb_report, chart: str) -> None:
        from imgsim_desktop.research.report import write_report

        def work(_progress: Progress) -> None:
            path = write_report(Path(out_html), self.data_dir, list(samples), perturb_report, chart_png=Path(chart) if chart else None)
            self.report_ready.emit(str(path))

        self._run("report", work)


class ResearchController(WorkerController):
    progress = Signal(str, int, int, str)
    map_ready = Signal(object, object)
    neighbours_ready = Signal(str, object)
    perturb_ready = Signal(object, str)
    report_ready = Signal(str)
    problem = Signal(str, str)
    failed = Signal(str, str)
    _map = Signal()
    _neighbours = Signal(str, int)
    _perturb = Signal(str, str, object)
    _report = Signal(str, object, object, str)

    def __init__(self, data_dir: str, model: str, device: str = "auto", parent: QObject | None = None) -> None:
        super().__init__(parent)
        job = _ResearchJob(str(data_dir), model, device)
        self._start(job, ("progress", "map_ready", "neighbours_ready", "perturb_ready", "report_ready", "problem", "failed"),
                    [(self._map, job.collection_map), (self._neighbours, job.neighbours), (self._perturb, job.perturbation), (self._report, job.report)])  # fmt: skip

    def collection_map(self) -> None:
        self._map.emit()

    def neighbours(self, path: str, k: int = 10) -> None:
        self._neighbours.emit(path, k)

    def perturbation(self, originals: str, work_dir: str, models: list[str] | None = None) -> None:
        self._perturb.emit(originals, work_dir, models)

    def report(self, out_html: str, samples: list[str], perturb_report=None, chart: str = "") -> None:
        self._report.emit(out_html, samples, perturb_report, chart)

    def cancel(self) -> None:
        self._job.control.cancel()

    _stopping = cancel

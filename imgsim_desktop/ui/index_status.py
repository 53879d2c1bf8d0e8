"""The status bar's indexing part: message, progress, pause/resume, cancel, and model · device."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QStatusBar, QToolButton, QWidget


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class _Label(QLabel):
    """The status label; it says when anyone (not only this status) writes to it."""

    written = Signal(str)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        super().setText(text)
        self.written.emit(text)


class IndexStatus(QObject):
    pause_clicked = Signal()
    cancel_clicked = Signal()
    errors_clicked = Signal()  # "Which?": show the files that could not be read

    def __init__(self, bar: QStatusBar) -> None:
        super().__init__(bar)
        self.label = _Label()
        self.progress = QProgressBar(maximumWidth=220, textVisible=False)
        self.pause_button = QToolButton(text="Pause")
        self.pause_button.clicked.connect(self.pause_clicked)
        self.cancel_button = QToolButton(text="Cancel")
        self.cancel_button.clicked.connect(self.cancel_clicked)
        self.device_label = QLabel()
        self.errors_button = QToolButton(text="Which?")
        self.errors_button.setToolTip("List the files that could not be read, and why")
        self.errors_button.clicked.connect(self.errors_clicked)
        self.errors_button.hide()
        # "Which?" explains the sentence it sits beside: once another message replaces it, it goes.
        self._errors_said = ""  # the sentence the errors belong to
        self.label.written.connect(lambda text: self.errors_button.setVisible(bool(self.errors) and text == self._errors_said))
        self.errors: list[dict] = []  # {path, error} of the last report that had any
        self.waiting = 0  # photos found but not indexed yet by the run in progress
        self._said = ""  # what this status last wrote: other parts of the window share the label
        left = QWidget()  # the button right after the sentence it explains, not at the far end
        row = QHBoxLayout(left)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.label)
        row.addWidget(self.errors_button)
        row.addStretch(1)
        bar.addWidget(left, 1)
        for w in (self.progress, self.pause_button, self.cancel_button):
            bar.addPermanentWidget(w)
            w.hide()
        self.watch_label = QLabel()
        bar.addPermanentWidget(self.watch_label)
        bar.addPermanentWidget(self.device_label)

    def show_progress(self, done: int, total: int, rate: float, eta: float, phase: str, paused: bool) -> None:
        if phase in ("scanning", "building search index"):
            if self.label.text() in ("", self._said):  # a passing phase never hides what the user was just told
                self._say("Looking for photos…" if phase == "scanning" else "Building the search index…")
            self.progress.setRange(0, 0)  # busy indicator: no count to show yet
            return
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.waiting = max(0, total - done)
        parts = [f"Indexing {done:,} / {total:,}"]
        if rate > 0:
            parts.append(f"{rate:.1f} photos/s")
        if eta >= 0 and done < total:
            parts.append(duration(eta) + " left")
        if paused:
            parts.append("paused")
        self._say(" · ".join(parts))

    def set_busy(self, busy: bool) -> None:
        self.waiting = 0
        for w in (self.progress, self.pause_button, self.cancel_button):
            w.setVisible(busy)
        self.pause_button.setText("Pause")

    def set_paused(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")
        if paused:
            self._say(self.label.text() + " · paused")

    def show_report(self, report) -> None:
        errors = f", {len(report.errors)} could not be read" if report.errors else ""
        skipped, how = unsupported_note(report)
        verb = "Indexing cancelled" if report.cancelled else "Indexed"
        text = f"{verb}: {report.indexed:,} new, {report.skipped:,} unchanged{errors}{skipped}"
        tips = [f"{Path(e['path']).name}: {e['error']}" for e in report.errors[:30]] + how
        if report.missing:
            # An unplugged drive or unmounted share: its photos stay in the library until it is back.
            names = ", ".join(Path(m).name or m for m in report.missing[:3])
            text = f"Folder not found: {names} (disconnected?) · {text}"
            tips = [f"Not found, photos kept: {m}" for m in report.missing] + tips
        news = report.indexed or report.errors or report.missing or report.cancelled or getattr(report, "removed", 0) or skipped
        if not news and self.label.text() not in ("", self._said):
            return  # a check that found nothing new never hides what the user was just told (report saved, …)
        self._say(text)
        self.label.setToolTip("\n".join(tips))
        self._set_errors(report.errors)

    def _say(self, text: str) -> None:
        self._said = text
        self.label.setText(text)

    def _set_errors(self, errors: list[dict]) -> None:
        self.errors = list(errors)
        self._errors_said = self._said
        self.errors_button.setVisible(bool(errors))

    def show_watch_mode(self, mode) -> None:
        """Watching natively, or polling (and why: the system's watch limit, say)."""
        self.watch_label.setText("Watching folders" if mode.mode == "native" else f"Checking folders every {mode.poll_interval:g} s")
        self.watch_label.setToolTip(mode.describe().capitalize())

    def show_watch_changes(self, report) -> None:
        parts = [(report.indexed, "new or changed"), (report.moved, "moved"), (report.copied, "copied"), (report.removed, "removed")]
        said = ", ".join(f"{n:,} {what}" for n, what in parts if n)
        errors = f", {len(report.errors)} could not be read" if report.errors else ""
        skipped, how = unsupported_note(report)
        if said or errors or skipped:
            self._say(f"Library updated: {said or 'nothing new'}{errors}{skipped}")
            self._set_errors(report.errors)
            self.label.setToolTip("\n".join([f"{Path(e['path']).name}: {e['error']}" for e in report.errors[:30]] + how))


def unsupported_note(report) -> tuple[str, list[str]]:
    """(", 3 HEIC/HEIF photos skipped", [how to read them]) for photos no installed decoder reads:
    not unreadable, only waiting for a decoder; every run tries them again."""
    by_format: dict[str, list[dict]] = {}
    for item in getattr(report, "unsupported", None) or []:
        by_format.setdefault(item["format"], []).append(item)
    said = "".join(f", {len(items):,} {name} photo{'s' * (len(items) != 1)} skipped" for name, items in by_format.items())
    how = [f"{name} photos are skipped: reading them needs {items[0]['how']}." for name, items in by_format.items()]
    return said, how

"""Preferences: backbone, device, threads, thumbnail size, number of results."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QSpinBox

from imgsim_desktop.core.backbones import cuda_device_count, default_threads, list_models
from imgsim_desktop.core.settings import Settings

DEVICES = [("Automatic (GPU when available)", "auto"), ("CPU", "cpu"), ("GPU (CUDA)", "gpu")]


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, data_dir: Path, active_provider: str, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self._settings = settings
        form = QFormLayout(self)
        self.model = QComboBox()
        for spec in list_models(data_dir):
            label = spec.title if spec.installed else f"{spec.title} (not installed)"
            self.model.addItem(label, spec.name)
            if not spec.installed:
                self.model.model().item(self.model.count() - 1).setEnabled(False)
        self.model.setCurrentIndex(max(0, self.model.findData(settings.model)))
        form.addRow("Backbone", self.model)
        self.device = QComboBox()
        for label, value in DEVICES:
            self.device.addItem(label, value)
        self.device.setCurrentIndex(max(0, self.device.findData(settings.device)))
        form.addRow("Device", self.device)
        gpus = cuda_device_count()
        form.addRow("", QLabel(f"Now running on: {active_provider}" + ("" if gpus else " (no CUDA GPU found on this machine)")))
        self.threads = QSpinBox(minimum=0, maximum=256, value=settings.threads, specialValueText=f"Automatic ({default_threads()})")
        form.addRow("Inference threads", self.threads)
        self.thumb = QSpinBox(minimum=80, maximum=320, singleStep=8, value=settings.thumb_size, suffix=" px")
        form.addRow("Thumbnail size", self.thumb)
        self.k = QSpinBox(minimum=1, maximum=500, value=settings.k)
        form.addRow("Similar photos shown", self.k)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def result_settings(self) -> Settings:
        return replace(
            self._settings,
            model=self.model.currentData(),
            device=self.device.currentData(),
            threads=self.threads.value(),
            thumb_size=self.thumb.value(),
            k=self.k.value(),
        )

"""The perturbation-recovery chart as a PNG, drawn with matplotlib's Agg canvas.

Only ``matplotlib.figure`` and the Agg canvas are used, never pyplot: pyplot picks a global
(possibly Qt) backend and keeps figures alive, which a GUI process must not inherit.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from imgsim_desktop.research.perturb import PerturbReport

METRIC_LABELS = {"precision": "precision", "recall": "recall", "f1": "F1"}


def draw_perturb_chart(report: PerturbReport, png_path: Path) -> None:
    from imgsim_desktop.research.perturb import PROFILE_TITLES, PROFILES

    backbones = report.backbones
    fig = Figure(figsize=(11, 8), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    top_ax, bottom_ax = fig.subplots(2, 1)
    fig.suptitle(f"Perturbation recovery: {report.originals} originals, {report.copies} copies")

    # Top: one group of bars per (k, metric), one bar per backbone.
    groups = [(k, m) for k in report.ks for m in METRIC_LABELS]
    _grouped_bars(
        top_ax,
        [f"{METRIC_LABELS[m]}@{k}" for k, m in groups],
        [(b.title, [b.at_k[k][m] for k, m in groups]) for b in backbones],
    )
    top_ax.set_title("precision = copies in top k / k,  recall = copies in top k / 5")

    top = max(report.ks)
    _grouped_bars(
        bottom_ax,
        [PROFILE_TITLES[p] for p in PROFILES],
        [(b.title, [b.recall_by_profile[p] for p in PROFILES]) for b in backbones],
    )
    bottom_ax.set_title(f"share of each profile's copies found in the top {top}")

    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = png_path.with_name(png_path.name + ".tmp")
    fig.savefig(tmp, format="png")
    os.replace(tmp, png_path)  # a viewer never sees half a file


def _grouped_bars(ax, groups: list[str], series: list[tuple[str, list[float]]]) -> None:
    x = np.arange(len(groups))
    width = 0.8 / max(1, len(series))
    for n, (label, values) in enumerate(series):
        ax.bar(x + (n - (len(series) - 1) / 2) * width, values, width, label=label)
    ax.set_xticks(x, groups, rotation=0, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.grid(axis="y", alpha=0.3)
    if series:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside: bars reach the top
    else:
        ax.text(0.5, 0.5, "no backbone could be evaluated", ha="center", va="center", transform=ax.transAxes)

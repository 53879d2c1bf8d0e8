"""The perturbation-recovery chart as a PNG: grouped bars drawn with Pillow.

Why not matplotlib: the chart is two panels of bars on a 0..1 axis, and matplotlib with its font
and layout dependencies would add about 40 MB to an app bundle that is already over its size
goal. Pillow is here anyway (it decodes every photo) and its default font scales.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFont

from imgsim_desktop.research.profiles import PROFILE_TITLES, PROFILES

if TYPE_CHECKING:
    from imgsim_desktop.research.perturb import PerturbReport

METRIC_LABELS = {"precision": "precision", "recall": "recall", "f1": "F1"}
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
WIDTH, HEIGHT = 1100, 800
LEFT, RIGHT = 60, 230  # room for the axis labels, and for the legend
TICKS = [i / 5 for i in range(6)]


def draw_perturb_chart(report: PerturbReport, png_path: Path) -> None:
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    fonts = {size: ImageFont.load_default(size=size) for size in (12, 14, 17)}
    _centred(draw, WIDTH / 2, 12, f"Perturbation recovery: {report.originals} originals, {report.copies} copies", fonts[17])
    backbones = report.backbones
    groups = [(k, m) for k in report.ks for m in METRIC_LABELS]
    _panel(
        draw, fonts, top=50, bottom=390,
        title="precision = copies in top k / k,  recall = copies in top k / 5",
        labels=[f"{METRIC_LABELS[m]}@{k}" for k, m in groups],
        series=[(b.title, [b.at_k[k][m] for k, m in groups]) for b in backbones],
    )  # fmt: skip
    _panel(
        draw, fonts, top=440, bottom=780,
        title=f"share of each profile's copies found in the top {max(report.ks)}",
        labels=[PROFILE_TITLES[p] for p in PROFILES],
        series=[(b.title, [b.recall_by_profile[p] for p in PROFILES]) for b in backbones],
    )  # fmt: skip
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = png_path.with_name(png_path.name + ".tmp")
    image.save(tmp, format="PNG")
    os.replace(tmp, png_path)  # a viewer never sees half a file


def _panel(draw: ImageDraw.ImageDraw, fonts, top: int, bottom: int, title: str, labels: list[str], series: list[tuple[str, list[float]]]) -> None:
    """A 0..1 bar panel: one group of bars per label, one bar (and colour) per series."""
    _centred(draw, (LEFT + WIDTH - RIGHT) / 2, top, title, fonts[14])
    plot_top, plot_bottom = top + 26, bottom - 30
    x0, x1 = LEFT, WIDTH - RIGHT

    def y_of(value: float) -> float:
        return plot_bottom - (plot_bottom - plot_top) * min(max(value, 0.0), 1.05) / 1.05

    for tick in TICKS:  # gridlines and their values
        y = y_of(tick)
        draw.line([(x0, y), (x1, y)], fill="#e6e6e6")
        draw.text((x0 - 8, y), f"{tick:.1f}", fill="#333333", font=fonts[12], anchor="rm")
    draw.rectangle([x0, plot_top, x1, plot_bottom], outline="#555555")
    if not series:
        _centred(draw, (x0 + x1) / 2, (plot_top + plot_bottom) / 2, "no backbone could be evaluated", fonts[14])
        return
    slot = (x1 - x0) / max(1, len(labels))
    bar = slot * 0.8 / len(series)
    for g, label in enumerate(labels):
        start = x0 + g * slot + slot * 0.1
        for n, (_, values) in enumerate(series):
            left = start + n * bar
            draw.rectangle([left, y_of(values[g]), left + bar - 1, plot_bottom], fill=COLOURS[n % len(COLOURS)])
        _centred(draw, x0 + (g + 0.5) * slot, plot_bottom + 8, label, fonts[12])
    for n, (name, _) in enumerate(series):  # legend, outside the plot: bars reach its top
        y = plot_top + 4 + n * 20
        draw.rectangle([x1 + 14, y, x1 + 28, y + 12], fill=COLOURS[n % len(COLOURS)])
        draw.text((x1 + 34, y + 6), name, fill="#222222", font=fonts[12], anchor="lm")


def _centred(draw: ImageDraw.ImageDraw, x: float, y: float, text: str, font) -> None:
    draw.text((x, y), text, fill="#222222", font=font, anchor="mt")

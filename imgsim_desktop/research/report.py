"""The research report as one self-contained HTML page: neighbours of sample photos under every
backbone, and the perturbation-recovery metrics with their chart.

Everything is embedded (thumbnails as base64 JPEG, the chart as base64 PNG), so the page can be
mailed or archived on its own. Every path and name is escaped.
"""

from __future__ import annotations

import base64
import datetime
import io
import os
import tempfile
from collections.abc import Callable
from html import escape
from pathlib import Path

from imgsim_desktop.core.decode import DecodeError, open_image
from imgsim_desktop.core.duplicates import collapse_exact
from imgsim_desktop.core.progress import Progress
from imgsim_desktop.research.backbone_compare import BackboneSearch
from imgsim_desktop.research.output_file import HTML_MARK
from imgsim_desktop.research.perturb import METRICS, PROFILE_TITLES, PROFILES, PerturbReport, write_chart

THUMB = 160  # px, longer side of the encoded thumbnail (sharp on a 1.15x screen)
# Layout: a row of 8 neighbours (the default -k) fits a 1400 px window with its scroll bar:
# 8 x 136 + 7 x 8 + 2 x 24 = 1192 px. Rows wrap rather than scroll sideways when there are more.
FIGURE_PX = 136
GAP_PX = 8
MARGIN_PX = 24
EXTRA_NEIGHBOURS = 8  # asked for beyond k, so that exact copies folded away leave k distinct photos

STYLE = f"""
body {{ font: 14px/1.4 system-ui, sans-serif; margin: {MARGIN_PX}px; color: #222; }}
h3 {{ margin-bottom: .3em; word-break: break-all; }}
.row {{ display: flex; flex-wrap: wrap; gap: {GAP_PX}px; align-items: flex-start; padding-bottom: 4px; }}
figure {{ margin: 0; width: {FIGURE_PX}px; flex: none; text-align: center; font-size: 12px; }}
figure img, .missing {{ width: {FIGURE_PX}px; height: {FIGURE_PX}px; object-fit: contain; background: #eee; display: block; }}
.missing {{ display: flex; align-items: center; justify-content: center; color: #a00; font-size: 11px; padding: 4px; box-sizing: border-box; }}
figcaption {{ word-break: break-all; }}
.copies {{ color: #555; font-size: 11px; }}
.copies summary {{ cursor: pointer; }}
.backbone {{ margin: .6em 0; }}
.backbone h4 {{ margin: 0 0 .2em; }}
.note {{ color: #666; font-style: italic; }}
table.metrics {{ border-collapse: collapse; margin: 1em 0; }}
table.metrics th, table.metrics td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
table.metrics th:first-child, table.metrics td:first-child {{ text-align: left; }}
"""


class _Thumbnails:
    """Each photo's thumbnail is encoded once, however often it appears in the report."""

    def __init__(self) -> None:
        self._done: dict[str, str] = {}

    def figure(self, path: str, caption: str, copies: list[str] = ()) -> str:
        """One photo; its exact copies (same bytes) are named under it instead of taking figures of their own."""
        if path not in self._done:
            self._done[path] = self._encode(path)
        if copies:
            names = "<br>".join(escape(os.path.basename(c)) for c in copies)
            count = f"+{len(copies)} exact cop{'ies' if len(copies) != 1 else 'y'}"
            caption += f'<details class="copies"><summary>{count}</summary>{names}</details>'
        return f"<figure>{self._done[path]}<figcaption>{caption}</figcaption></figure>"

    @staticmethod
    def _encode(path: str) -> str:
        try:
            image, _ = open_image(path, min_side=THUMB)
            image.thumbnail((THUMB, THUMB))
            buf = io.BytesIO()
            image.save(buf, "JPEG", quality=82)
        except (DecodeError, OSError) as exc:
            return f'<div class="missing">{escape(str(exc))}</div>'
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        return f'<img src="data:image/jpeg;base64,{data}" alt="{escape(os.path.basename(path))}">'


def write_report(
    out_html: Path,
    data_dir,
    sample_paths: list[str],
    perturb: PerturbReport | None = None,
    k: int = 8,
    chart_png: Path | None = None,
    models=None,
    device: str = "auto",
    progress: Progress | None = None,
    index_command: Callable[[str], str] | None = None,
) -> Path:
    """Write the page to ``out_html`` (atomically) and return its path. ``index_command(model)``,
    where given (the terminal), is the command that indexes the library with a backbone it lacks;
    the page then names it instead of the app's way."""
    progress = progress or Progress()
    thumbs = _Thumbnails()
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        HTML_MARK,  # lets a later run tell its own report from a file it must not replace
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>imgsim research report</title><style>{STYLE}</style></head><body>",
        "<h1>imgsim research report</h1>",
        f"<p>Generated {escape(datetime.datetime.now().isoformat(timespec='seconds'))}. Scores are cosine similarity of the backbones' embeddings.</p>",
    ]
    if sample_paths:
        parts.append(f"<h2>Neighbours of {len(sample_paths)} sample photo{'s' if len(sample_paths) != 1 else ''} by backbone</h2>")
    with BackboneSearch(data_dir, models, device) as search:
        for n, sample in enumerate(sample_paths):
            progress.check()
            progress.report(n, len(sample_paths), os.path.basename(sample))
            parts.append(_sample_section(sample, search.neighbours(sample, k + EXTRA_NEIGHBOURS), k, thumbs, index_command))
    if perturb is not None:
        parts.append(_perturb_section(perturb, chart_png))
    parts.append("</body></html>")
    progress.report(len(sample_paths), len(sample_paths), "done", force=True)

    out_html = Path(out_html)
    out_html.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_html.with_name(out_html.name + ".tmp")
    try:
        tmp.write_text("\n".join(parts), encoding="utf-8")
        os.replace(tmp, out_html)
    finally:
        tmp.unlink(missing_ok=True)
    return out_html


def _sample_section(sample: str, by_backbone, k: int, thumbs: _Thumbnails, index_command: Callable[[str], str] | None = None) -> str:
    """The sample and, per backbone, its k nearest distinct photos: exact copies (of the sample or of
    a neighbour) are folded into the figure of the first of them, as the app's results fold them."""
    rows, sample_copies = [], []
    for b in by_backbone:
        figures = None
        if b.results is not None:
            scores = dict(b.results)
            folded = collapse_exact([sample, *scores])
            sample_copies += [c for c in folded.pop(sample, []) if c not in sample_copies]
            figures = "".join(
                thumbs.figure(path, f"{scores[path]:.3f}<br>{escape(os.path.basename(path))}", copies)
                for path, copies in list(folded.items())[:k]
            )
        rows.append((b, figures))
    parts = [f"<section><h3>{escape(os.path.basename(sample))}</h3>", '<div class="row">', thumbs.figure(sample, escape(sample), sample_copies), "</div>"]
    for b, figures in rows:
        parts.append(f'<div class="backbone"><h4>{escape(b.title)}</h4>')
        note = f"library not indexed with {b.title} yet: run {index_command(b.model)}" if b.needs_indexing and index_command else b.note
        if note:
            parts.append(f'<p class="note">{escape(note)}</p>')
        if figures is not None:
            if figures:
                parts.append(f'<div class="row">{figures}</div>')
            else:
                why = "only exact copies of this photo" if sample_copies else "the library holds only this photo"
                parts.append(f'<p class="note">no neighbours: {why}</p>')
        parts.append("</div>")
    parts.append("</section>")
    return "\n".join(parts)


def _perturb_section(report: PerturbReport, chart_png: Path | None) -> str:
    parts = [
        "<h2>Perturbation recovery</h2>",
        f"<p>{report.originals} originals, {report.copies} perturbed copies ({escape(', '.join(PROFILE_TITLES[p] for p in PROFILES))}). "
        "Each original is queried; its relevant set is its five copies. Precision@k = copies in the top k / k, recall@k = copies in the top k / 5.</p>",
        '<table class="metrics"><tr><th>backbone</th>'
        + "".join(f"<th>{'F1' if m == 'f1' else m}@{k}</th>" for k in report.ks for m in METRICS)
        + "<th>seconds</th></tr>",
    ]
    for b in report.backbones:
        cells = "".join(f"<td>{b.at_k[k][m]:.3f}</td>" for k in report.ks for m in METRICS)
        parts.append(f"<tr><td>{escape(b.title)}</td>{cells}<td>{b.seconds:.1f}</td></tr>")
    parts.append("</table>")
    parts.append(f"<p>Share of each profile's copies found in the top {max(report.ks)}:</p>")
    parts.append(
        '<table class="metrics"><tr><th>backbone</th>' + "".join(f"<th>{escape(PROFILE_TITLES[p])}</th>" for p in PROFILES) + "</tr>"
    )
    for b in report.backbones:
        parts.append(f"<tr><td>{escape(b.title)}</td>" + "".join(f"<td>{b.recall_by_profile[p]:.3f}</td>" for p in PROFILES) + "</tr>")
    parts.append("</table>")
    if report.errors:
        items = "".join(f"<li>{escape(p)}: {escape(r)}</li>" for p, r in report.errors)
        parts.append(f"<p>Skipped:</p><ul>{items}</ul>")
    parts.append(f'<img alt="perturbation recovery chart" src="data:image/png;base64,{_chart_base64(report, chart_png)}">')
    return "\n".join(parts)


def _chart_base64(report: PerturbReport, chart_png: Path | None) -> str:
    if chart_png is not None and Path(chart_png).is_file():
        return base64.b64encode(Path(chart_png).read_bytes()).decode("ascii")
    with tempfile.TemporaryDirectory(prefix="imgsim-chart-") as tmp:
        png = Path(tmp) / "chart.png"
        write_chart(report, png)
        return base64.b64encode(png.read_bytes()).decode("ascii")

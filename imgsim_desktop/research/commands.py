"""`imgsim eval perturb`, `imgsim eval map` and `imgsim report`: the research tools from a terminal.

Kept beside the research code rather than in cli.py, which only registers these parsers; heavy
imports (scikit-learn) happen when a command runs, never when the parser is built.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from imgsim_desktop import paths
from imgsim_desktop.research.output_file import refusal
from imgsim_desktop.terminal import TerminalProgress, json_line, positive_int, shown


def add_research_parsers(sub, common: argparse.ArgumentParser, with_model: argparse.ArgumentParser) -> None:
    p = sub.add_parser("eval", help="research: perturbation recovery per backbone, collection map")
    esub = p.add_subparsers(dest="eval_cmd", required=True)
    e = esub.add_parser("perturb", parents=[common], help="how well perturbed copies of photos are found again, per backbone")
    e.add_argument("--originals", required=True, type=_path, metavar="DIR", help="folder of original photos (read only)")
    e.add_argument("--models", type=_names, help="comma-separated backbones (default: every installed one)")
    e.add_argument("--ks", type=_ks, default=(1, 3, 5), help="comma-separated k values (default 1,3,5)")
    e.add_argument("--out", type=_path, metavar="DIR", help="where the JSON, chart and work files go (default: a new temp folder)")
    e.add_argument("--seed", type=int, default=0, help="seed of the perturbations (default 0)")
    e.add_argument("--keep-copies", action="store_true", help="keep the perturbed copies and the throwaway library in OUT/work")
    e.set_defaults(func=cmd_eval_perturb)
    m = esub.add_parser("map", parents=[common, with_model], help="2-D map of the library (PCA + t-SNE) as a PNG of thumbnails")
    m.add_argument("--out", type=_path, default=Path("map.png"), help="PNG to write (default map.png)")
    m.add_argument("--grid", action="store_true", help="tidy grid: one thumbnail per cell")
    m.add_argument("--force", action="store_true", help="replace --out even if imgsim did not write it")
    m.set_defaults(func=cmd_eval_map)

    r = sub.add_parser("report", parents=[common], help="self-contained HTML report: neighbours per backbone, perturbation metrics")
    r.add_argument("--out", required=True, type=_path, help="HTML file to write")
    r.add_argument("--force", action="store_true", help="replace --out even if imgsim did not write it")
    which = r.add_mutually_exclusive_group()
    which.add_argument("--samples", type=positive_int, default=6, help="number of library photos to show (default 6, chosen evenly)")
    which.add_argument("--photo", action="append", type=_path, metavar="P", help="a photo to show (repeatable)")
    r.add_argument("-k", type=positive_int, default=8, help="neighbours per backbone (default 8)")
    r.add_argument("--models", type=_names, help="comma-separated backbones (default: every installed one)")
    r.add_argument("--perturb-originals", type=_path, metavar="DIR", help="also run the perturbation evaluation on this folder")
    r.set_defaults(func=cmd_report)


def _path(text: str) -> Path:
    return Path(text).expanduser()


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(sorted({int(t) for t in text.split(",") if t.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of whole numbers") from None
    if not ks or ks[0] < 1:
        raise argparse.ArgumentTypeError("k values must be at least 1")
    return ks


def _bar(args):
    from imgsim_desktop.core.progress import Progress

    bar = TerminalProgress(not args.json)
    return bar, Progress(bar)


def _run_perturb(args, originals: Path, out: Path, keep: bool, ks: tuple[int, ...] = (1, 3, 5), seed: int = 0):
    """The evaluation with unreadable files reported on stderr; returns (report, chart path)."""
    from imgsim_desktop.research.perturb import run_perturbation_eval, write_chart

    def skipped(path: str, reason: str) -> None:
        if not args.json:
            print(f"skipped {shown(path)}: {shown(reason)}", file=sys.stderr)

    bar, progress = _bar(args)
    work = out / "work"
    try:
        report = run_perturbation_eval(
            originals, work, args.models, ks, args.device, seed, progress, skipped, paths.data_dir(args.data_dir)
        )
    finally:
        bar.finish()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    chart = out / "perturbation.png"
    write_chart(report, chart)
    return report, chart


def cmd_eval_perturb(args) -> int:
    out = args.out or Path(tempfile.mkdtemp(prefix="imgsim-eval-"))
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        report, chart = _run_perturb(args, args.originals, out, args.keep_copies, args.ks, args.seed)
    except (FileNotFoundError, ValueError) as exc:
        print(f"imgsim: {shown(exc)}", file=sys.stderr)
        return 2
    result = report.to_json() | {
        "seconds": round(time.perf_counter() - started, 1),
        "chart": str(chart),
        "json": str(out / "perturbation.json"),
    }
    (out / "perturbation.json").write_text(json.dumps(result, indent=2))
    if args.json:
        print(json_line(result))
    else:
        print(report.table())
        print(f"\n{time.perf_counter() - started:.1f}s in all; JSON {out / 'perturbation.json'}, chart {chart}")
    return 0 if report.backbones else 1


def cmd_eval_map(args) -> int:
    from imgsim_desktop.core.engine import Engine
    from imgsim_desktop.research.collection_map import grid_snap, load_or_compute

    if problem := refusal(args.out, ".png", args.force):
        print(f"imgsim: {shown(problem)}", file=sys.stderr)
        return 2
    bar, progress = _bar(args)
    started = time.perf_counter()
    with Engine(args.data_dir, model=args.model, device=args.device) as engine:
        found = load_or_compute(paths.Layout(engine.data_dir).maps, engine.catalog, engine.spec.name, progress)
    bar.finish()
    if not found.paths:
        print(
            f"imgsim: the library has no photos indexed with {args.model or 'the default backbone'}: run `imgsim index FOLDER` first",
            file=sys.stderr,
        )
        return 1
    elapsed = time.perf_counter() - started
    cells = grid_snap(found.xy) if args.grid else None
    problems = _draw_map(found.paths, found.xy, cells, args.out)
    out = {"photos": len(found.paths), "model": found.model, "png": str(args.out), "cached": found.seconds == 0.0,
           "map_seconds": round(found.seconds if found.seconds else elapsed, 2), "sampled": found.sampled, "unreadable": problems}  # fmt: skip
    if args.json:
        print(json_line(out))
    else:
        for path, reason in problems:
            print(f"skipped {shown(path)}: {shown(reason)}", file=sys.stderr)
        how = "from the cache" if out["cached"] else f"computed in {found.seconds:.1f}s" + (" (t-SNE on a sample)" if found.sampled else "")
        print(f"map of {len(found.paths)} photos ({found.model}) {how}; written to {shown(args.out)}")
    return 0


def _draw_map(photo_paths: list[str], xy, cells, png: Path, canvas: int = 2400) -> list[tuple[str, str]]:
    """Thumbnails at their map points (or grid cells) on one PNG; returns unreadable photos."""
    from PIL import Image

    from imgsim_desktop.core.decode import DecodeError, open_image

    n = len(photo_paths)
    if cells is not None:
        columns, rows = int(cells[:, 0].max()) + 1, int(cells[:, 1].max()) + 1
        tile = max(8, min(128, canvas // max(columns, rows)))
        origins = cells * tile
        size = (columns * tile, rows * tile)
    else:
        tile = max(8, min(96, int(canvas / math.sqrt(n) * 0.8)))
        origins = (xy * (canvas - tile)).astype(int)
        size = (canvas, canvas)
    image = Image.new("RGB", size, (245, 245, 245))
    problems = []
    for path, (x, y) in zip(photo_paths, origins.tolist()):
        try:
            thumb, _ = open_image(path, min_side=tile)
        except DecodeError as exc:
            problems.append((path, str(exc)))
            continue
        thumb.thumbnail((tile, tile))
        image.paste(thumb, (x + (tile - thumb.width) // 2, y + (tile - thumb.height) // 2))
    from PIL.PngImagePlugin import PngInfo

    from imgsim_desktop.research.output_file import MARK

    info = PngInfo()
    info.add_text("Software", MARK)  # a later run may replace its own map, never another PNG
    png.parent.mkdir(parents=True, exist_ok=True)
    tmp = png.with_name(png.name + ".tmp")
    try:
        image.save(tmp, "PNG", pnginfo=info)
        os.replace(tmp, png)
    finally:
        tmp.unlink(missing_ok=True)
    return problems


def cmd_report(args) -> int:
    from imgsim_desktop.research.report import write_report

    if problem := refusal(args.out, ".html", args.force):
        print(f"imgsim: {shown(problem)}", file=sys.stderr)
        return 2
    data_dir = paths.data_dir(args.data_dir)
    samples = [os.path.abspath(p) for p in args.photo] if args.photo else _sample_photos(data_dir, args.samples)
    if not samples and not args.perturb_originals:
        print("imgsim: the library is empty: index a folder first, or name photos with --photo", file=sys.stderr)
        return 1
    perturb = chart = None
    with tempfile.TemporaryDirectory(prefix="imgsim-report-") as tmp:
        if args.perturb_originals:
            try:
                perturb, chart = _run_perturb(args, args.perturb_originals, Path(tmp), keep=False)
            except (FileNotFoundError, ValueError) as exc:
                print(f"imgsim: {shown(exc)}", file=sys.stderr)
                return 2
        unindexed = _unindexed_backbones(data_dir, args.models, args.data_dir) if samples else {}
        out = write_report(
            args.out, data_dir, samples, perturb, k=args.k, chart_png=chart, models=args.models, device=args.device,
            index_command=lambda name: unindexed.get(name, ""),
        )  # fmt: skip
    if args.json:
        print(json_line({"report": str(out), "samples": samples, "not_indexed": [{"model": m, "command": c} for m, c in unindexed.items()]}))
    else:
        print(f"report written to {out} ({len(samples)} sample photos)")
        for name, command in unindexed.items():
            print(f"{name}: no neighbours in the report, the library is not indexed with it yet; to add them: {command}")
    return 0


def _unindexed_backbones(data_dir: Path, wanted: list[str] | None, given_data_dir: str | None) -> dict[str, str]:
    """Installed backbones the report asks for that hold no embeddings yet, each with the command
    that indexes the library's folders with it (with --data-dir when the report was given one)."""
    import shlex

    from imgsim_desktop.core.backbones import list_models
    from imgsim_desktop.core.engine import CATALOG_NAME
    from imgsim_desktop.storage.catalog import Catalog

    with Catalog(data_dir / CATALOG_NAME) as catalog:
        stats = catalog.stats()
    specs = {s.name: s for s in list_models(data_dir)}
    names = [n for n, s in specs.items() if s.installed] if wanted is None else [n for n in wanted if n in specs and specs[n].installed]
    data = ["--data-dir", str(data_dir)] if given_data_dir else []
    roots = stats["roots"] or ["FOLDER"]
    return {
        name: " ".join(shlex.quote(part) for part in ["imgsim", "index", "--model", name, *data, *roots])
        for name in names
        if not stats["embeddings"].get(name)
    }


def _sample_photos(data_dir: Path, count: int) -> list[str]:
    """``count`` readable library photos spread over the collection (same choice every run)."""
    from imgsim_desktop.core.engine import CATALOG_NAME
    from imgsim_desktop.storage.catalog import Catalog

    with Catalog(data_dir / CATALOG_NAME) as catalog:
        every = sorted(row.path for row in catalog.photos())
    return sorted(random.Random(0).sample(every, min(count, len(every))))

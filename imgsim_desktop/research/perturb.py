"""Perturbation recovery: are edited copies of a photo found again by its nearest neighbours?

Each original gets five copies, one per profile (JPEG recompression, downscale-and-upscale,
crop, colour/brightness change with blur, rotation with an overlay). Originals and copies are
indexed together in a throwaway library, each original is queried by its own stored vector
(itself excluded), and its relevant set is its five copies:

    precision@k = copies in the top k / k        recall@k = copies in the top k / 5

The user's photos and library are never written: copies and the library live in ``work_dir``.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

from imgsim_desktop.core.backbones import Backbone, ModelError, default_threads, list_models
from imgsim_desktop.core.decode import DecodeError, open_image
from imgsim_desktop.core.indexer import Indexer
from imgsim_desktop.core.progress import Cancelled, Progress
from imgsim_desktop.core.scanner import scan
from imgsim_desktop.core.search import Searcher
from imgsim_desktop.paths import Layout
from imgsim_desktop.research.profiles import PROFILE_TITLES, PROFILES  # noqa: F401  (also imported from here)
from imgsim_desktop.storage.catalog import Catalog

METRICS = ("precision", "recall", "f1")
COPY_QUALITY = 95  # copies are saved nearly lossless, so each profile's own change dominates

ErrorSink = Callable[[str, str], None]


# --- the five edits -----------------------------------------------------------------------------


def perturb(image: Image.Image, profile: str, rng: random.Random) -> Image.Image:
    """One edited copy of an RGB image. Strengths are drawn from ``rng``: strong enough to change
    every pixel, mild enough that a person still sees the same photo."""
    try:
        edit = _EDITS[profile]
    except KeyError:
        raise ValueError(f"unknown perturbation profile '{profile}'; known: {', '.join(PROFILES)}") from None
    return edit(image.convert("RGB"), rng)


def _jpeg(img: Image.Image, rng: random.Random) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=rng.randint(10, 30))  # blocking and ringing of a heavily re-shared photo
    buf.seek(0)
    with Image.open(buf) as out:
        return out.convert("RGB")


def _rescale(img: Image.Image, rng: random.Random) -> Image.Image:
    factor = rng.uniform(0.2, 0.4)  # a thumbnail blown back up: the detail is gone, the size is not
    small = img.resize((max(8, round(img.width * factor)), max(8, round(img.height * factor))), Image.Resampling.BILINEAR)
    return small.resize(img.size, Image.Resampling.BICUBIC)


def _crop(img: Image.Image, rng: random.Random) -> Image.Image:
    keep_w, keep_h = rng.uniform(0.55, 0.8), rng.uniform(0.55, 0.8)  # 30-64 % of the area stays
    w, h = max(1, round(img.width * keep_w)), max(1, round(img.height * keep_h))
    left, top = rng.randint(0, img.width - w), rng.randint(0, img.height - h)
    return img.crop((left, top, left + w, top + h))


def _colour_blur(img: Image.Image, rng: random.Random) -> Image.Image:
    def away_from_one(low: float, high: float) -> float:  # an edit that never rounds to "no change"
        return rng.choice((rng.uniform(low, 0.85), rng.uniform(1.15, high)))

    out = ImageEnhance.Brightness(img).enhance(away_from_one(0.6, 1.4))
    out = ImageEnhance.Color(out).enhance(away_from_one(0.3, 1.7))
    gains = [rng.uniform(0.85, 1.15) for _ in range(3)]  # a colour cast, like a wrong white balance
    out = Image.merge("RGB", [band.point(lambda v, g=g: min(255, int(v * g))) for band, g in zip(out.split(), gains)])
    radius = min(img.size) * rng.uniform(0.004, 0.01)  # in proportion, so big and small photos blur alike
    return out.filter(ImageFilter.GaussianBlur(max(1.0, radius)))


def _rotate_overlay(img: Image.Image, rng: random.Random) -> Image.Image:
    angle = rng.uniform(8, 20) * rng.choice((-1, 1))
    out = img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=(0, 0, 0))
    # A caption band with text across the bottom or top, as a meme or a watermark would add.
    layer = Image.new("RGBA", out.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    band = max(8, round(out.height * rng.uniform(0.12, 0.2)))
    top = 0 if rng.random() < 0.5 else out.height - band
    colour = tuple(rng.randint(0, 255) for _ in range(3))
    draw.rectangle((0, top, out.width, top + band), fill=(*colour, 200))
    font = ImageFont.load_default(size=max(8, band * 0.6))
    text_colour = (255, 255, 255, 255) if sum(colour) < 384 else (0, 0, 0, 255)
    draw.text((band * 0.3, top + band * 0.15), "imgsim © copy", fill=text_colour, font=font)
    return Image.alpha_composite(out.convert("RGBA"), layer).convert("RGB")


_EDITS = {"jpeg": _jpeg, "rescale": _rescale, "crop": _crop, "colour_blur": _colour_blur, "rotate_overlay": _rotate_overlay}


# --- copies on disk -----------------------------------------------------------------------------


def make_copies(
    originals: list[Path], out_dir: Path, seed: int = 0, progress: Progress | None = None, on_error: ErrorSink | None = None
) -> dict[str, dict[str, str]]:
    """Write one copy per profile of each original into ``out_dir``.

    Returns {original path: {profile: copy path}} (absolute paths). An original that cannot be
    read or edited is passed to ``on_error(path, reason)`` and left out; the others go on. The
    same seed gives the same copies.
    """
    progress = progress or Progress()
    out_dir = Path(os.path.abspath(out_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(n, Path(os.path.abspath(p))) for n, p in enumerate(originals)]
    copies: dict[str, dict[str, str]] = {}
    progress.report(0, len(jobs), "making perturbed copies", force=True)
    # Pillow releases the GIL while decoding, filtering and encoding: a pool keeps the cores busy.
    with ThreadPoolExecutor(default_threads(), thread_name_prefix="perturb") as pool:
        try:
            results = pool.map(lambda job: _copies_of(job[1], out_dir / f"{job[0]:05d}_{job[1].stem}", seed), jobs)
            for done, ((_, original), outcome) in enumerate(zip(jobs, results), 1):
                progress.check()
                if isinstance(outcome, str):
                    if on_error:
                        on_error(str(original), outcome)
                else:
                    copies[str(original)] = outcome
                progress.report(done, len(jobs), original.name)
        finally:
            pool.shutdown(cancel_futures=True)  # a cancel must not wait for every queued photo
    return copies


def _copies_of(original: Path, stem: Path, seed: int) -> dict[str, str] | str:
    """The five copies of one original, or the reason there are none."""
    written: list[Path] = []
    try:
        image, _ = open_image(original)
        out = {}
        for profile in PROFILES:
            # Seeded per photo and profile: the copies do not depend on order, threads or the other photos.
            rng = random.Random(f"{seed}:{original.name}:{profile}")
            target = stem.with_name(f"{stem.name}__{profile}.jpg")
            perturb(image, profile, rng).save(target, "JPEG", quality=COPY_QUALITY)
            written.append(target)
            out[profile] = str(target)
        return out
    except DecodeError as exc:
        return str(exc)
    except Exception as exc:  # e.g. the work folder is full; one bad photo must not end the run
        for path in written:
            path.unlink(missing_ok=True)
        return f"cannot make its perturbed copies: {type(exc).__name__}: {exc}"


# --- metrics ------------------------------------------------------------------------------------


def scores_at_k(returned: list[str], relevant: set[str], k: int) -> tuple[float, float, float]:
    """(precision, recall, F1) of the first k results: correct / k, correct / len(relevant).

    Precision divides by k even when fewer than k results came back: a missing result is not a
    correct one.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    correct = sum(1 for path in returned[:k] if path in relevant)
    precision = correct / k
    recall = correct / len(relevant) if relevant else 0.0
    f1 = 2 * precision * recall / (precision + recall) if correct else 0.0
    return precision, recall, f1


@dataclass
class BackboneScores:
    model: str
    title: str
    at_k: dict[int, dict[str, float]]  # k -> {"precision", "recall", "f1"}, means over the originals
    recall_by_profile: dict[str, float]  # share of each profile's copies found in the top max(ks)
    seconds: float  # indexing + querying
    provider: str = ""  # CPU or CUDA


@dataclass
class PerturbReport:
    originals: int
    copies: int
    ks: tuple[int, ...]
    backbones: list[BackboneScores]
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path or model, reason)

    def to_json(self) -> dict:
        return {
            "originals": self.originals,
            "copies": self.copies,
            "ks": list(self.ks),
            "profiles": list(PROFILES),
            "backbones": [
                {
                    "model": b.model,
                    "title": b.title,
                    "provider": b.provider,
                    "seconds": round(b.seconds, 3),
                    "at_k": {str(k): {m: round(v, 4) for m, v in b.at_k[k].items()} for k in self.ks},
                    "recall_by_profile": {p: round(v, 4) for p, v in b.recall_by_profile.items()},
                }
                for b in self.backbones
            ],
            "errors": [{"path": p, "error": r} for p, r in self.errors],
        }

    def table(self) -> str:
        """The metrics as plain text: one row per backbone, then recall per profile."""
        name_w = max([len("backbone"), *(len(b.title) for b in self.backbones)])
        head = f"{'backbone':{name_w}}  " + "  ".join(f"{m[0].upper() if m != 'f1' else 'F1'}@{k:<3}" for k in self.ks for m in METRICS)
        lines = [
            f"{self.originals} originals, {self.copies} copies; precision = copies in top k / k, recall = copies in top k / 5",
            "",
            head,
        ]
        for b in self.backbones:
            lines.append(f"{b.title:{name_w}}  " + "  ".join(f"{b.at_k[k][m]:5.3f}" for k in self.ks for m in METRICS))
        top = max(self.ks)
        lines += ["", f"recall@{top} by profile", f"{'backbone':{name_w}}  " + "  ".join(f"{p:>14}" for p in PROFILES) + "   seconds"]
        for b in self.backbones:
            lines.append(f"{b.title:{name_w}}  " + "  ".join(f"{b.recall_by_profile[p]:14.3f}" for p in PROFILES) + f"  {b.seconds:8.1f}")
        if not self.backbones:
            lines.append("(no backbone could be evaluated)")
        return "\n".join(lines)


# --- the experiment -----------------------------------------------------------------------------


class _Slice(Progress):
    """A stage of a longer job: its done/total become a share of the whole, cancel is the whole's."""

    def __init__(self, whole: Progress, offset: int, span: int, grand_total: int, label: str) -> None:
        super().__init__()
        self.whole, self.offset, self.span, self.grand_total, self.label = whole, offset, span, grand_total, label

    def report(self, done: int, total: int, message: str = "", force: bool = False) -> None:
        part = self.span * min(done, total) // total if total > 0 else 0
        self.whole.report(self.offset + part, self.grand_total, f"{self.label}: {message}" if message else self.label, force=force)

    def check(self) -> None:
        self.whole.check()

    @property
    def cancelled(self) -> bool:
        return self.whole.cancelled


def run_perturbation_eval(
    originals_dir: Path,
    work_dir: Path,
    models: list[str] | None = None,
    ks: Iterable[int] = (1, 3, 5),
    device: str = "auto",
    seed: int = 0,
    progress: Progress | None = None,
    on_error: ErrorSink | None = None,
    data_dir: Path | None = None,
) -> PerturbReport:
    """Copies, index, query and score, for each backbone in ``models`` (None: every installed one).

    ``work_dir`` receives the copies (copies/) and a throwaway library (library/, wiped first);
    ``data_dir`` is only read, to find models the user added. Unreadable originals and unusable
    models are reported through ``on_error`` and in ``errors``; the rest of the run goes on.
    """
    progress = progress or Progress()
    ks = tuple(sorted(set(ks)))
    if not ks or ks[0] < 1:
        raise ValueError(f"k values must be at least 1, got {ks}")
    errors: list[tuple[str, str]] = []

    def problem(path: str, reason: str) -> None:
        errors.append((path, reason))
        if on_error:
            on_error(path, reason)

    work_dir = Path(os.path.abspath(work_dir))
    originals = _find_originals(Path(originals_dir), work_dir, problem)
    specs = _chosen_models(models, data_dir, problem)
    if not originals:
        problem(str(originals_dir), "no photos found in this folder")
    # Units of work: one per original copied, then per backbone one per file indexed and one per query.
    per_backbone = 7 * len(originals)
    grand = len(originals) + per_backbone * len(specs)
    copies = make_copies(originals, work_dir / "copies", seed, _Slice(progress, 0, len(originals), grand, "copies"), problem)
    if not copies:
        specs = []  # scores over no photos would read as backbones that find nothing

    library = work_dir / "library"
    shutil.rmtree(library, ignore_errors=True)  # results must come from these copies only, never stale ones
    library.mkdir(parents=True)
    scores: list[BackboneScores] = []
    with Catalog(Layout(library).catalog) as catalog:
        for n, spec in enumerate(specs):
            offset = len(originals) + n * per_backbone
            stage = _Slice(progress, offset, per_backbone, grand, spec.title)
            try:
                scores.append(_score_backbone(catalog, Layout(library).indexes, spec, device, copies, ks, stage, problem))
            except ModelError as exc:
                problem(spec.name, str(exc))
    progress.report(grand, grand, "done", force=True)
    return PerturbReport(len(copies), sum(len(c) for c in copies.values()), ks, scores, errors)


def _find_originals(folder: Path, work_dir: Path, problem: ErrorSink) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder of originals")
    found = scan([str(folder)])
    for path, reason in found.problems:
        problem(path, reason)
    # A work folder inside the originals' folder holds earlier copies: they are not originals.
    inside_work = str(work_dir) + os.sep
    return [Path(f.path) for f in found.files if not f.path.startswith(inside_work)]


def _chosen_models(models: list[str] | None, data_dir: Path | None, problem: ErrorSink) -> list:
    specs = {s.name: s for s in list_models(data_dir)}
    if models is None:
        return [s for s in specs.values() if s.installed]
    chosen = []
    for name in models:
        spec = specs.get(name)
        if spec is None:
            problem(name, f"unknown model; known: {', '.join(specs)}")
        elif not spec.installed:
            problem(name, f"model is not installed ({spec.path} is missing); add it with: {spec.install_hint}")
        else:
            chosen.append(spec)
    return chosen


def _score_backbone(
    catalog: Catalog,
    index_dir: Path,
    spec,
    device: str,
    copies: dict[str, dict[str, str]],
    ks: tuple[int, ...],
    progress: Progress,
    problem: ErrorSink,
) -> BackboneScores:
    started = time.perf_counter()
    backbone = Backbone(spec, device=device)
    n = len(copies)
    files = [path for original, by_profile in copies.items() for path in (original, *by_profile.values())]
    indexing = _Slice(progress, 0, 6 * n, 7 * n, "indexing")  # six of every seven units: one query per original follows
    report = Indexer(catalog, backbone).run(files, indexing)
    if report.cancelled:
        raise Cancelled()
    failed = {e["path"]: e["error"] for e in report.errors}
    searcher = Searcher(catalog, index_dir, backbone)
    if searcher.needs_rebuild():
        searcher.rebuild()

    top = max(ks)
    sums = {k: dict.fromkeys(METRICS, 0.0) for k in ks}
    found_by_profile = dict.fromkeys(PROFILES, 0)
    queried = 0
    for done, (original, by_profile) in enumerate(copies.items(), 1):
        progress.check()
        known = catalog.vector_for_path(spec.name, original)
        if known is None:  # the indexer could not read it (it was readable when copied: rare)
            problem(original, failed.get(original, f"not indexed with {spec.title}"))
            continue
        returned = [r.path for r in searcher.similar_to_vector(known[1], top, exclude=original)]
        relevant = set(by_profile.values())
        for k in ks:
            for metric, value in zip(METRICS, scores_at_k(returned, relevant, k)):
                sums[k][metric] += value
        for profile, path in by_profile.items():
            found_by_profile[profile] += path in returned
        queried += 1
        progress.report(6 * n + done, 7 * n, "querying")
    mean = 1.0 / queried if queried else 0.0
    return BackboneScores(
        model=spec.name,
        title=spec.title,
        at_k={k: {m: v * mean for m, v in sums[k].items()} for k in ks},
        recall_by_profile={p: c * mean for p, c in found_by_profile.items()},
        seconds=time.perf_counter() - started,
        provider=backbone.provider,
    )


def write_chart(report: PerturbReport, png_path: Path) -> None:
    """Grouped bars of P/R/F1 at each k per backbone, and recall per profile (see research/chart.py)."""
    from imgsim_desktop.research.chart import draw_perturb_chart

    draw_perturb_chart(report, png_path)

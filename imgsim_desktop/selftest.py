"""`imgsim-desktop --self-test`: prove an installation works end to end, without a display.

It runs the same engine a user's library uses (default model, indexer, catalog, search, Annoy,
OpenCV verification) on the sample photos shipped in ``resources/samples`` and a throw-away data
folder, then starts the real window offscreen in a child process. It is the check a packaged
build gets before it ships (packaging/build.py), so it must only rely on what the bundle
carries: nothing from a source checkout, no network, no user data.

Every step prints one line, ``ok`` or ``FAIL`` with the reason; the exit status is 0 only when
every step passed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from imgsim_desktop.core.library_service import index_now

# The query photo, the near-duplicate it must find first (same scene, resized to 300x300), and
# what "clearly more alike than the rest" means in cosine similarity.
QUERY = "ukbench00120.jpg"
NEAR_DUPLICATE = "ukbench00120_resize.jpg"
MIN_MARGIN = 0.05
# A 12-bit RGGB DNG written from RAW_SOURCE (resources/samples/SOURCES.md says how).
RAW_SAMPLE, RAW_SOURCE = "ukbench09348.dng", "ukbench09348.jpg"
PROBE_ENV = "IMGSIM_STARTUP_PROBE"
PROBE_LINE = "startup-probe: window shown after"
GUI_TIMEOUT_S = 120


class CheckFailed(Exception):
    pass


def _say(line: str) -> None:
    # A windowed Windows build has no console: stdout is None there and the exit status speaks.
    if sys.stdout is not None:
        print(line, flush=True)


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def samples_dir() -> Path:
    from imgsim_desktop import paths

    return paths.resources_dir() / "samples"


def process_age() -> float | None:
    """Seconds since this process was created (Linux), else None: a startup figure must include
    interpreter start-up and imports, which a timer started in Python would miss."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def quit_after_first_show(app, window) -> None:
    """For --startup-probe: once the window's first frame is due, print the time since process
    start and close the window as a user would (its closeEvent stops the workers it started), so
    the normal end of main() and the shutdown path are exercised too."""
    from PySide6.QtCore import QTimer

    def report() -> None:
        age = process_age()
        visible = window.isVisible()
        _say(f"{PROBE_LINE} {age:.3f} s" if age is not None else f"{PROBE_LINE} ? s (no process clock)")
        window.close()  # the last window: the app quits with status 0
        if not visible:
            app.exit(3)

    # A zero timer fires after the show event and the first paint have been processed.
    QTimer.singleShot(0, report)


class _Run:
    """Runs named steps, printing each outcome; later steps still run after a failure when they
    do not depend on it, so one run names every broken part."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def step(self, name: str, fn: Callable[[], str | None]):
        started = time.perf_counter()
        try:
            detail = fn()
        except CheckFailed as exc:
            self._fail(name, str(exc))
            return False
        except Exception as exc:  # noqa: BLE001 - the self-test reports whatever broke, with its trace
            self._fail(name, f"{type(exc).__name__}: {exc}")
            if sys.stdout is not None:
                traceback.print_exc(file=sys.stdout)
            return False
        took = time.perf_counter() - started
        _say(f"ok   {name} ({took:.2f} s){': ' + detail if detail else ''}")
        return True

    def _fail(self, name: str, why: str) -> None:
        self.failures.append(name)
        _say(f"FAIL {name}: {why}")


def _check_core(run: _Run, work: Path) -> None:
    from imgsim_desktop import __version__, paths

    state: dict = {}

    def bundle() -> str:
        samples = samples_dir()
        _expect(samples.is_dir(), f"sample photos missing: {samples}")
        names = sorted(p.name for p in samples.glob("*.jpg"))
        _expect({QUERY, NEAR_DUPLICATE} <= set(names), f"{samples} lacks {QUERY} / {NEAR_DUPLICATE}")
        _expect((paths.models_dir() / "manifest.json").is_file(), f"no manifest.json in {paths.models_dir()}")
        state["samples"] = samples
        frozen = "frozen" if getattr(sys, "frozen", False) else "source"
        return f"imgsim-desktop {__version__} ({frozen}), {len(names)} samples, models in {paths.models_dir()}"

    def load_model() -> str:
        from imgsim_desktop.core.engine import Engine

        # CPU on purpose: the answer must not depend on a GPU being present where this runs.
        engine = Engine(data_dir=work / "data", device="cpu")
        state["engine"] = engine
        backbone = engine.backbone  # loads the session, checking the model's sha256
        return f"{engine.spec.name} on {backbone.provider}"

    def index() -> str:
        engine = state["engine"]
        samples = state["samples"]
        report = index_now(engine, [str(samples)])
        expected = len(list(samples.glob("*.jpg"))) + len(list(samples.glob("*.dng")))
        _expect(not report.errors, f"indexing errors: {report.errors}")
        _expect(report.indexed == expected, f"indexed {report.indexed} of {expected} sample photos")
        return f"{report.indexed} photos"

    def query() -> str:
        engine = state["engine"]
        results = engine.similar(state["samples"] / QUERY, k=5)
        _expect(len(results) >= 2, f"expected several neighbours, got {results}")
        first, second = results[0], results[1]
        _expect(Path(first.path).name == NEAR_DUPLICATE, f"nearest to {QUERY} is {Path(first.path).name} ({first.score:.3f}), not {NEAR_DUPLICATE}")
        _expect(first.score - second.score >= MIN_MARGIN, f"{NEAR_DUPLICATE} only {first.score - second.score:.3f} ahead of {Path(second.path).name}")
        state["query_vector"] = engine.searcher.vector_for_file(state["samples"] / QUERY)[0]
        return f"{NEAR_DUPLICATE} first ({first.score:.3f}; next {second.score:.3f})"

    def annoy_index() -> str:
        # Small libraries are searched exactly, so the query above never touched Annoy's compiled
        # code; build and query a real index here, since that code is what portable flags protect.
        import numpy as np

        from imgsim_desktop.core.search import AnnIndex
        from imgsim_desktop.storage.annoy_store import AnnoyStore

        engine = state["engine"]
        store = AnnoyStore(work / "annoy", engine.spec.name, engine.spec.embedding_dim)
        store.build(engine.catalog.iter_vectors(engine.spec.name))
        loaded = store.load()
        _expect(loaded is not None, "the built Annoy index could not be loaded")
        try:
            no_delta = np.zeros((0, engine.spec.embedding_dim), np.float32)
            hits = AnnIndex(loaded, loaded.ids[:0], no_delta, set()).query(state["query_vector"], 2)
            names = engine.catalog.paths_for_vectors(h.vector_id for h in hits)
            found = [Path(names[h.vector_id]).name for h in hits]
        finally:
            loaded.unload()
        _expect(found[:2] == [QUERY, NEAR_DUPLICATE], f"Annoy's nearest to {QUERY}: {found}")
        from annoy import annoylib

        # Which compiled build answered: a bundle picks the x86-64-v3 one on AVX2 CPUs (packaging/).
        build = "x86-64-v3 build" if "x86-64-v3" in Path(annoylib.__file__).parts else "baseline build"
        return f"{len(loaded.ids)} items, {loaded.n_trees} trees, {build}"

    def verify_pair() -> str:
        from imgsim_desktop.core import verify

        samples = state["samples"]
        # Through the disk cache's form, as a scan reads them: that also needs a JPEG codec (Pillow's).
        query, near, far = (verify.from_bytes(verify.to_bytes(verify.features(samples / name))) for name in (QUERY, NEAR_DUPLICATE, "ukbench01380.jpg"))
        same, other = verify.compare(query, near), verify.compare(query, far)
        _expect(same.aligned > max(verify.MIN_MATCHES, 3 * other.aligned), f"ORB/RANSAC: {same.aligned} aligned matches for the copy vs {other.aligned} for another photo")
        return f"{same.aligned} aligned matches for the copy, {other.aligned} for another photo"

    def research() -> str:
        # The Tools menu's map (PCA + t-SNE from scikit-learn) and chart (Pillow) must work frozen
        # too: a bundle missing a module would only fail when a user opens them.
        from imgsim_desktop.research.collection_map import compute_map
        from imgsim_desktop.research.perturb import PROFILES, BackboneScores, PerturbReport, write_chart

        engine = state["engine"]
        found = compute_map(engine.catalog, engine.spec.name)
        near = {Path(p).name: xy for p, xy in zip(found.paths, found.xy.tolist())}
        _expect(set(near) >= {QUERY, NEAR_DUPLICATE} and found.xy.shape == (len(found.paths), 2), f"map of the samples: {sorted(near)}")
        scores = {k: {"precision": 1.0, "recall": 0.2 * k, "f1": 0.5} for k in (1, 3)}
        chart = work / "chart.png"
        write_chart(PerturbReport(1, 5, (1, 3), [BackboneScores(engine.spec.name, engine.spec.title, scores, dict.fromkeys(PROFILES, 1.0), 0.0)]), chart)
        _expect(chart.stat().st_size > 1000, "the perturbation chart came out empty")
        return f"map of {len(found.paths)} photos, chart {chart.stat().st_size / 1000:.0f} KB"

    def raw_photo() -> str:
        # LibRaw (rawpy's compiled library) demosaics a DNG made from one of the samples: a bundle
        # missing it would only fail when a user adds a folder of RAW files.
        import numpy as np

        from imgsim_desktop.core import raw
        from imgsim_desktop.core.decode import open_photo

        samples = state["samples"]
        dng = open_photo(samples / RAW_SAMPLE, min_side=224)
        _image, _size, _taken, how = raw.open_raw(samples / RAW_SAMPLE, min_side=224)
        jpeg = open_photo(samples / RAW_SOURCE, min_side=224)
        small = [np.asarray(p.image.convert("L").resize((64, 48)), np.float32) for p in (dng, jpeg)]
        a, b = ((x - x.mean()) / (x.std() + 1e-6) for x in small)
        likeness = float((a * b).mean())
        _expect(how == raw.SENSOR and likeness > 0.9, f"{RAW_SAMPLE} through LibRaw ({how}) is not its photo: correlation {likeness:.3f}")
        return f"{RAW_SAMPLE} {dng.width}x{dng.height} demosaiced, correlation {likeness:.3f} with {RAW_SOURCE}"

    if not run.step("bundle", bundle):
        return
    try:
        if run.step("model", load_model) and run.step("index", index) and run.step("query", query):
            run.step("annoy", annoy_index)
            run.step("research", research)
        run.step("opencv", verify_pair)
        run.step("raw", raw_photo)
    finally:
        if "engine" in state:
            state["engine"].close()


def app_command() -> list[str]:
    """How to start this same app again: the frozen executable, or this interpreter on the package."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "imgsim_desktop"]


def _check_gui(run: _Run, work: Path) -> None:
    def window() -> str:
        # A child process, so the measurement starts cold like a user's launch, and so a Qt
        # failure (a missing platform plugin aborts the process) is reported instead of fatal.
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
        started = time.perf_counter()
        proc = subprocess.run(
            [*app_command(), "--startup-probe", "--data-dir", str(work / "gui-data")],
            env=env, capture_output=True, text=True, timeout=GUI_TIMEOUT_S,
        )  # fmt: skip
        wall = time.perf_counter() - started
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(PROBE_LINE)), None)
        _expect(proc.returncode == 0 and line is not None, f"window did not open (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-800:]}")
        return f"main window shown offscreen, {line[len(PROBE_LINE) :].strip()} from process start ({wall:.2f} s wall incl. shutdown)"

    run.step("window", window)


def main(gui: bool = True) -> int:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    run = _Run()
    with tempfile.TemporaryDirectory(prefix="imgsim-selftest-") as tmp:
        work = Path(tmp)
        _check_core(run, work)
        if gui:
            _check_gui(run, work)
    if run.failures:
        _say(f"self-test FAILED: {', '.join(run.failures)}")
        return 1
    _say("self-test passed")
    return 0

"""Research tools on real photos: perturbation recovery metrics, collection map, backbone comparison, HTML report."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import PHOTOS, copy_photos
from imgsim_desktop.cli import main
from imgsim_desktop.core.decode import model_pixels, open_image
from imgsim_desktop.core.progress import Cancelled, Progress
from imgsim_desktop.research import collection_map as cmap
from imgsim_desktop.research.backbone_compare import neighbours_by_backbone
from imgsim_desktop.research.perturb import PROFILES, perturb, run_perturbation_eval, scores_at_k, write_chart
from imgsim_desktop.research.report import write_report
from imgsim_desktop.storage.catalog import Catalog

ORIGINALS = [f"aib/{n}.jpg" for n in (0, 7, 13, 21, 34, 48, 55, 62, 77, 90)]
MODEL = "efficientnet-lite0"


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """One real run: 10 originals (+ one corrupt file) -> 50 copies, indexed and queried with the default backbone."""
    root = tmp_path_factory.mktemp("perturb")
    originals = root / "originals"
    copy_photos(originals, [*ORIGINALS, "ukbench/ukbench09268_corrupt.jpg"])
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in originals.iterdir()}
    seen: list[tuple[str, str]] = []
    reports: list[tuple[int, int]] = []
    report = run_perturbation_eval(originals, root / "work", [MODEL], device="cpu", progress=Progress(lambda d, t, m: reports.append((d, t))),
                                   on_error=lambda p, r: seen.append((p, r)))  # fmt: skip
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in originals.iterdir()}
    return {"report": report, "root": root, "originals": originals, "seen": seen, "progress": reports, "untouched": before == after}


# --- metrics ------------------------------------------------------------------------------------


def test_scores_at_k_match_a_hand_computed_case():
    relevant = {"c1", "c2", "c3", "c4", "c5"}
    returned = ["c1", "x", "c2", "c3", "y"]
    # Worked by hand: top 1 holds c1; top 3 holds c1, c2; top 5 holds c1, c2, c3.
    assert scores_at_k(returned, relevant, 1) == pytest.approx((1.0, 0.2, 1 / 3))  # F1 = 2*1*0.2 / 1.2
    assert scores_at_k(returned, relevant, 3) == pytest.approx((2 / 3, 0.4, 0.5))  # F1 = 2*(2/3)*0.4 / (2/3+0.4)
    assert scores_at_k(returned, relevant, 5) == pytest.approx((0.6, 0.6, 0.6))
    assert scores_at_k(["c1"], relevant, 5) == pytest.approx((0.2, 0.2, 0.2))  # a missing result is not a correct one
    assert scores_at_k(["x", "y"], relevant, 1) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        scores_at_k(returned, relevant, 0)


# --- the five profiles --------------------------------------------------------------------------


def test_each_profile_changes_the_photo_but_keeps_it_recognisable(lite0):
    original, _ = open_image(PHOTOS / "aib/21.jpg")
    other, _ = open_image(PHOTOS / "aib/62.jpg")
    prep = lite0.spec.preprocess
    emb_original, emb_other = lite0.embed(np.stack([model_pixels(original, prep), model_pixels(other, prep)]))
    for profile in PROFILES:
        copy = perturb(original, profile, random.Random(f"t:{profile}"))
        assert copy.mode == "RGB"
        if profile == "crop":
            assert (
                0.5 * original.width <= copy.width <= 0.8 * original.width and 0.5 * original.height <= copy.height <= 0.8 * original.height
            )
        else:
            assert copy.size == original.size, profile
            diff = np.abs(np.asarray(copy, np.int16) - np.asarray(original, np.int16)).mean()
            assert diff > 2.0, f"{profile} barely changed the photo ({diff:.2f})"
        # The same seed gives the same copy; a different one a different copy.
        assert np.array_equal(np.asarray(copy), np.asarray(perturb(original, profile, random.Random(f"t:{profile}"))))
        assert not np.array_equal(np.asarray(copy), np.asarray(perturb(original, profile, random.Random("other"))))
        # Recognisable: the backbone sees it as much closer to its original than to another photo.
        emb_copy = lite0.embed(model_pixels(copy, prep)[None])[0]
        assert emb_copy @ emb_original > emb_copy @ emb_other + 0.1, profile
    with pytest.raises(ValueError, match="unknown perturbation profile"):
        perturb(original, "sepia", random.Random(0))


# --- the experiment -----------------------------------------------------------------------------


def test_real_photos_give_sane_metrics(evaluated):
    report = evaluated["report"]
    assert (report.originals, report.copies, report.ks) == (10, 50, (1, 3, 5))
    (scores,) = report.backbones
    assert scores.model == MODEL and scores.seconds > 0
    for k in report.ks:
        p, r, f1 = (scores.at_k[k][m] for m in ("precision", "recall", "f1"))
        assert 0 <= p <= 1 and 0 <= r <= 1
        # Each original has exactly 5 relevant copies: recall@k = precision@k * k / 5 by definition.
        assert r == pytest.approx(p * k / 5)
    assert scores.at_k[1]["precision"] >= 0.9  # the nearest photo is nearly always a copy
    assert scores.at_k[5]["recall"] >= 0.7
    assert scores.recall_by_profile["jpeg"] >= 0.9 and scores.recall_by_profile["rescale"] >= 0.9
    # The mean over profiles is the overall recall at the largest k.
    assert np.mean(list(scores.recall_by_profile.values())) == pytest.approx(scores.at_k[5]["recall"])
    done = evaluated["progress"]
    assert done[-1][0] == done[-1][1] and all(d <= t for d, t in done)


def test_unreadable_original_is_reported_and_skipped(evaluated):
    report = evaluated["report"]
    corrupt = str(evaluated["originals"] / "ukbench09268_corrupt.jpg")
    assert [p for p, _ in evaluated["seen"]] == [corrupt] and report.errors == evaluated["seen"]
    assert "truncated" in report.errors[0][1] or "corrupt" in report.errors[0][1]
    assert not list((evaluated["root"] / "work" / "copies").glob("*ukbench09268*"))
    assert evaluated["untouched"] and len(list(evaluated["originals"].iterdir())) == 11  # the originals were only read


def test_json_has_every_field_and_the_chart_is_a_png(evaluated, tmp_path):
    report = evaluated["report"]
    out = json.loads(json.dumps(report.to_json()))
    assert out.keys() == {"originals", "copies", "ks", "profiles", "backbones", "errors"}
    (b,) = out["backbones"]
    assert b.keys() == {"model", "title", "provider", "seconds", "at_k", "recall_by_profile"}
    assert b["at_k"].keys() == {"1", "3", "5"} and all(v.keys() == {"precision", "recall", "f1"} for v in b["at_k"].values())
    assert list(b["recall_by_profile"]) == list(PROFILES)
    assert out["errors"][0]["path"].endswith("ukbench09268_corrupt.jpg")
    table = report.table()
    assert "EfficientNet-Lite0" in table and f"{report.backbones[0].at_k[3]['precision']:5.3f}" in table
    png = tmp_path / "chart.png"
    write_chart(report, png)
    with Image.open(png) as img:
        assert img.format == "PNG" and img.width > 500 and img.height > 400
        img.verify()


def test_cancel_stops_the_run(tmp_path):
    originals = tmp_path / "originals"
    copy_photos(originals, ORIGINALS[:3])
    stop_after_first: list[Progress] = []
    progress = Progress(lambda done, total, message: done >= 1 and stop_after_first[0].cancel(), rate_hz=1e9)
    stop_after_first.append(progress)
    with pytest.raises(Cancelled):
        run_perturbation_eval(originals, tmp_path / "work", [MODEL], device="cpu", progress=progress)
    assert not (tmp_path / "work" / "library" / "catalog.sqlite3").exists()  # stopped before indexing


def test_unknown_model_or_empty_folder_is_reported_and_nothing_is_scored(tmp_path):
    originals = tmp_path / "originals"
    copy_photos(originals, ORIGINALS[:2])
    seen = []
    report = run_perturbation_eval(originals, tmp_path / "work", ["no-such-model"], on_error=lambda p, r: seen.append((p, r)))
    assert report.backbones == [] and seen[0][0] == "no-such-model" and "unknown model" in seen[0][1]
    assert "no backbone could be evaluated" in report.table()
    (tmp_path / "empty").mkdir()
    report = run_perturbation_eval(tmp_path / "empty", tmp_path / "work2", [MODEL], device="cpu")
    assert report.backbones == [] and report.errors == [(str(tmp_path / "empty"), "no photos found in this folder")]


# --- collection map -----------------------------------------------------------------------------


@pytest.fixture
def library_copy(evaluated, tmp_path) -> Path:
    """The run's throwaway library (originals + copies, embedded), copied so a test may change it."""
    return Path(shutil.copytree(evaluated["root"] / "work" / "library", tmp_path / "library"))


def test_map_is_deterministic_in_the_unit_square_and_cached_until_the_library_changes(library_copy, tmp_path):
    cache = tmp_path / "maps"
    with Catalog(library_copy / "catalog.sqlite3") as catalog:
        first = cmap.load_or_compute(cache, catalog, MODEL)
        assert first.xy.shape == (60, 2) and first.xy.dtype == np.float32 and first.seconds > 0
        assert first.xy.min() >= 0 and first.xy.max() <= 1 and np.isclose(first.xy.max(), 1)
        assert sorted(first.paths) == sorted(r.path for r in catalog.photos(MODEL))
        again = cmap.compute_map(catalog, MODEL)
        assert np.array_equal(again.xy, first.xy) and again.paths == first.paths  # same seed, same map
        cached = cmap.load_or_compute(cache, catalog, MODEL)
        assert cached.seconds == 0 and np.array_equal(cached.xy, first.xy) and cached.fingerprint == first.fingerprint
        # A copy sits close to its original: nearer than the median distance between photos.
        where = dict(zip(first.paths, first.xy))
        original = next(p for p in first.paths if p.endswith("/21.jpg"))
        jpeg_copy = next(p for p in first.paths if p.endswith("_21__jpeg.jpg"))
        spread = np.median(np.linalg.norm(first.xy[:, None] - first.xy[None], axis=-1))
        assert np.linalg.norm(where[original] - where[jpeg_copy]) < spread / 2
        catalog.remove_files([original])
        changed = cmap.load_or_compute(cache, catalog, MODEL)
    assert changed.seconds > 0 and len(changed.paths) == 59 and original not in changed.paths and changed.fingerprint != first.fingerprint


def test_map_of_tiny_and_sampled_libraries():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(60, 32)).astype(np.float32)
    for n in (0, 1, 3, 6):
        xy, sampled = cmap.layout_2d(vectors[:n])
        assert xy.shape == (n, 2) and not sampled and (n == 0 or (xy.min() >= 0 and xy.max() <= 1))
    cmap_limit = cmap.TSNE_LIMIT
    try:
        cmap.TSNE_LIMIT = 40  # beyond the limit: t-SNE on a sample, the rest placed by neighbours
        twins = np.concatenate([vectors, vectors[:5]])  # the last five repeat the first five
        xy, sampled = cmap.layout_2d(twins)
    finally:
        cmap.TSNE_LIMIT = cmap_limit
    assert sampled and xy.shape == (65, 2) and xy.min() >= 0 and xy.max() <= 1
    # A twin lands where the photo is: exactly when one of them was placed by neighbours, close by when t-SNE saw both.
    assert np.abs(xy[60:] - xy[:5]).max() < 0.1


def _order_kept(points: np.ndarray, cells: np.ndarray) -> bool:
    """In every grid row the cells keep the points' left-to-right order, in every column their top-to-bottom order."""
    for axis in (0, 1):
        other = 1 - axis
        for line in np.unique(cells[:, other]):
            members = np.flatnonzero(cells[:, other] == line)
            by_point = members[np.argsort(points[members, axis])]
            if not np.all(np.diff(cells[by_point, axis]) > 0):
                return False
    return True


def test_grid_snap_gives_each_point_its_own_cell_and_keeps_neighbours_together(monkeypatch):
    rng = np.random.default_rng(3)
    clusters = np.concatenate([rng.normal((0.1, 0.5), 0.03, (50, 2)), rng.normal((0.9, 0.5), 0.03, (50, 2))])
    scattered = rng.random((300, 2))
    for exact_limit in (10_000, 10):  # optimal assignment, then the banded one used for large maps
        monkeypatch.setattr(cmap, "GRID_EXACT_LIMIT", exact_limit)
        monkeypatch.setattr(cmap, "GRID_BAND_POINTS", 60)
        cells = cmap.grid_snap(clusters)
        assert cells.shape == (100, 2) and len({tuple(c) for c in cells.tolist()}) == 100 and cells.min() >= 0
        assert _order_kept(clusters, cells)
        assert cells[:50, 0].mean() + 5 < cells[50:, 0].mean()  # the left cluster stays on the left
        snapped = cmap.grid_snap(scattered, columns=20)
        assert len({tuple(c) for c in snapped.tolist()}) == 300 and snapped[:, 0].max() < 20 and snapped[:, 1].max() < 15
        assert _order_kept(scattered, snapped)
    assert not _order_kept(scattered, rng.permutation(snapped))  # the check itself can fail
    assert cmap.grid_snap(np.zeros((0, 2))).shape == (0, 2)


# --- backbone comparison and the report ---------------------------------------------------------


def test_backbone_comparison_notes_a_backbone_the_library_is_not_indexed_with(library_copy):
    with Catalog(library_copy / "catalog.sqlite3") as catalog:
        query = next(r.path for r in catalog.photos(MODEL) if r.path.endswith("/34.jpg"))
    found = neighbours_by_backbone(library_copy, query, k=5, models=[MODEL, "efficientnet-lite2", "no-such-model"], device="cpu")
    lite0, lite2, unknown = found
    assert lite0.model == MODEL and len(lite0.results) == 5 and lite0.note == ""
    assert all("_34__" in Path(p).name for p, _ in lite0.results[:4])  # its own copies come first
    assert query not in [p for p, _ in lite0.results]
    assert lite2.results is None and "not indexed" in lite2.note
    assert unknown.results is None and "unknown model" in unknown.note


class _Nesting(HTMLParser):
    """Fails on an end tag that does not close the innermost open element."""

    VOID = {"meta", "img", "br", "link", "input", "hr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack.pop() == tag, f"</{tag}> closes nothing open"


def test_html_report_embeds_samples_neighbours_and_metrics(evaluated, library_copy, tmp_path):
    odd = copy_photos(tmp_path / "outside", ["labelled/dog.jpg"])[0].rename(tmp_path / "outside" / "a&b <dog>.jpg")
    with Catalog(library_copy / "catalog.sqlite3") as catalog:
        sample = next(r.path for r in catalog.photos(MODEL) if r.path.endswith("/48.jpg"))
    out = write_report(
        tmp_path / "r" / "report.html", library_copy, [sample, str(odd)], evaluated["report"], k=4, models=[MODEL, "mobilenetv2"]
    )
    text = out.read_text(encoding="utf-8")
    parser = _Nesting()
    parser.feed(text)
    parser.close()
    assert parser.stack == [] and text.startswith("<!DOCTYPE html>")
    assert "48.jpg" in text and "a&amp;b &lt;dog&gt;.jpg" in text and "<dog>" not in text
    jpegs = [s for s in parser.images if s.startswith("data:image/jpeg;base64,")]
    assert len(jpegs) >= 2 + 2 * 4 and sum(s.startswith("data:image/png;base64,") for s in parser.images) == 1
    assert "not indexed" in text  # mobilenetv2 has no vectors in this library
    b = evaluated["report"].backbones[0]
    assert "precision@1" in text and f"<td>{b.at_k[5]['recall']:.3f}</td>" in text
    assert "ukbench09268_corrupt.jpg" in text  # the skipped original is listed


# --- command line -------------------------------------------------------------------------------


def test_cli_eval_perturb_writes_json_and_chart(tmp_path, data_dir, capsys):
    originals = tmp_path / "originals"
    copy_photos(originals, ORIGINALS[:3])
    code = main(
        [
            "eval",
            "perturb",
            "--originals",
            str(originals),
            "--models",
            MODEL,
            "--ks",
            "1,2",
            "--out",
            str(tmp_path / "out"),
            "--json",
            "--device",
            "cpu",
        ]
    )
    printed = json.loads(capsys.readouterr().out)
    assert code == 0 and printed["ks"] == [1, 2] and printed["originals"] == 3
    assert json.loads(Path(printed["json"]).read_text())["backbones"] == printed["backbones"]
    assert Path(printed["chart"]).is_file() and not (tmp_path / "out" / "work").exists()  # work files are removed unless --keep-copies
    assert main(["eval", "perturb", "--originals", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o2")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_cli_report_and_map_on_a_library(library_copy, tmp_path, capsys):
    assert (
        main(["report", "--data-dir", str(library_copy), "--out", str(tmp_path / "r.html"), "--samples", "2", "--models", MODEL, "--json"])
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert len(printed["samples"]) == 2 and all(s in (tmp_path / "r.html").read_text() for s in printed["samples"])
    assert main(["eval", "map", "--data-dir", str(library_copy), "--out", str(tmp_path / "map.png"), "--grid", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["photos"] == 60 and not printed["cached"] and printed["unreadable"] == []
    with Image.open(tmp_path / "map.png") as img:
        assert img.width >= 8 * 8 and img.getextrema() != ((245, 245), (245, 245), (245, 245))  # thumbnails were drawn


def test_report_and_map_never_replace_a_file_they_did_not_write(library_copy, tmp_path, capsys):
    photo = tmp_path / "holiday.jpg"
    photo.write_bytes((PHOTOS / "labelled" / "dog.jpg").read_bytes())
    before = photo.read_bytes()
    other_png = tmp_path / "drawing.png"
    Image.new("RGB", (4, 4)).save(other_png)
    for argv in (["report", "--out", str(photo), "--samples", "1", "--models", MODEL], ["eval", "map", "--out", str(other_png)],
                 ["report", "--out", str(tmp_path), "--samples", "1"], ["eval", "map", "--out", str(tmp_path)]):  # fmt: skip
        assert main([*argv, "--data-dir", str(library_copy)]) == 2
        err = capsys.readouterr().err
        assert ("was not written by imgsim" in err or "is a folder" in err) and "Traceback" not in err
    assert photo.read_bytes() == before and not list(tmp_path.glob("*.tmp"))
    out = tmp_path / "map.png"
    assert main(["eval", "map", "--data-dir", str(library_copy), "--out", str(out)]) == 0
    assert main(["eval", "map", "--data-dir", str(library_copy), "--out", str(out)]) == 0  # its own map: replaced
    assert main(["eval", "map", "--data-dir", str(library_copy), "--out", str(other_png), "--force"]) == 0
    capsys.readouterr()

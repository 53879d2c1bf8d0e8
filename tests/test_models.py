"""The shipped weights are really pretrained, checksummed, and listed honestly."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest

from conftest import PHOTOS
from imgsim_desktop.core.backbones import Backbone, ModelError, add_user_model, get_model, list_models
from imgsim_desktop.core.decode import load_for_model

LABELLED = PHOTOS / "labelled"
UKBENCH = PHOTOS / "ukbench"


def _pixels(spec, paths):
    return np.stack([load_for_model(p, spec.preprocess).pixels for p in paths])


@pytest.mark.parametrize("name", ["efficientnet-lite0", "efficientnet-lite2"])
def test_top5_labels_on_labelled_photos(name):
    backbone = Backbone(get_model(name), device="cpu")
    rows = list(csv.DictReader((LABELLED / "labels.csv").open()))
    assert len(rows) == 12
    top5 = backbone.classify(_pixels(backbone.spec, [LABELLED / r["file"] for r in rows]))
    misses = []
    for row, predicted in zip(rows, top5, strict=True):
        expected = set(row["imagenet_classes_expected_in_top5"].split("|"))
        if not expected & {label for label, _ in predicted}:
            misses.append((row["file"], predicted))
    assert not misses, f"{name} misclassified: {misses}"


@pytest.mark.parametrize("name", ["efficientnet-lite0", "efficientnet-lite2", "mobilenetv2"])
def test_near_duplicates_score_above_unrelated_photos(name):
    backbone = Backbone(get_model(name), device="cpu")
    near = ["ukbench00120_resize.jpg", "ukbench00120_hflip.jpg", "ukbench00120_rotation.jpg"]
    unrelated = ["ukbench01380.jpg", "ukbench08976.jpg", "ukbench09040.jpg", "ukbench09348.jpg"]
    emb = backbone.embed(_pixels(backbone.spec, [UKBENCH / f for f in ["ukbench00120.jpg", *near, *unrelated]]))
    cos = emb[1:] @ emb[0]
    near_cos, unrelated_cos = cos[: len(near)], cos[len(near) :]
    assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert near_cos.min() > 0.7
    assert unrelated_cos.max() < 0.6
    assert near_cos.min() - unrelated_cos.max() > 0.2


def test_bundled_models_installed_and_seed_backbones_listed_with_install_command():
    specs = {s.name: s for s in list_models()}
    for name in ("efficientnet-lite0", "efficientnet-lite2", "mobilenetv2"):
        assert specs[name].installed and specs[name].sha256 and specs[name].licence
    for name in ("vgg16", "resnet50", "resnet152", "densenet121"):
        assert name in specs
        if not specs[name].installed:
            with pytest.raises(ModelError, match=f"export_models.py {name}"):
                get_model(name)


def test_checksum_mismatch_is_refused(tmp_path, monkeypatch):
    models = tmp_path / "models"
    shutil.copytree(get_model("mobilenetv2").path.parent, models, ignore=shutil.ignore_patterns("*lite*"))
    data = bytearray((models / "mobilenetv2_features.onnx").read_bytes())
    data[-100] ^= 0xFF  # one flipped byte inside the weights
    (models / "mobilenetv2_features.onnx").write_bytes(bytes(data))
    monkeypatch.setenv("IMGSIM_MODELS_DIR", str(models))
    with pytest.raises(ModelError, match="checksum mismatch"):
        Backbone(get_model("mobilenetv2"))


def test_user_added_onnx_model_embeds_like_the_original(data_dir):
    original = get_model("mobilenetv2")
    data_dir.mkdir(parents=True)
    spec = add_user_model(
        data_dir,
        "my-mobilenet",
        original.path,
        input_size=224,
        mean=list(original.mean),
        std=list(original.std),
        resize_mode="stretch",
    )
    assert spec.embedding_dim == 1280 and spec.embedding_output == "embedding"
    assert get_model("my-mobilenet", data_dir).user_added
    photo = [UKBENCH / "ukbench00120.jpg"]
    a = Backbone(original).embed(_pixels(original, photo))
    b = Backbone(get_model("my-mobilenet", data_dir)).embed(_pixels(spec, photo))
    assert np.allclose(a, b, atol=1e-5)
    with pytest.raises(ModelError, match="already exists"):
        add_user_model(data_dir, "my-mobilenet", original.path, input_size=224, mean=[0, 0, 0], std=[1, 1, 1])
    with pytest.raises(ModelError, match="does not accept"):
        add_user_model(data_dir, "wrong-size", original.path, input_size=100, mean=[0, 0, 0], std=[1, 1, 1])


def test_provider_is_reported_and_cpu_works_without_gpu(lite0):
    assert lite0.provider in ("CPU", "CUDA")
    assert lite0.session.get_providers()[0] == ("CUDAExecutionProvider" if lite0.provider == "CUDA" else "CPUExecutionProvider")

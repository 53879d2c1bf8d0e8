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


# --- `imgsim models add`: names are names, files are checked before they are accepted ---------
# `onnx` is not a dependency, so the tiny test graphs are written as raw protobuf (ModelProto).

import os  # noqa: E402
import struct  # noqa: E402

from imgsim_desktop import cli  # noqa: E402
from imgsim_desktop.core.backbones import ModelRefused  # noqa: E402


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num: int, value) -> bytes:
    if isinstance(value, int):
        return _varint(num << 3) + _varint(value)
    if isinstance(value, float):
        return _varint(num << 3 | 5) + struct.pack("<f", value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(num << 3 | 2) + _varint(len(data)) + data


def _value_info(name: str, dims: list) -> bytes:
    shape = b"".join(_field(1, _field(2, d) if isinstance(d, str) else _field(1, d)) for d in dims)
    return _field(1, name) + _field(2, _field(1, _field(1, 1) + _field(2, shape)))  # elem_type FLOAT


def _node(op: str, inputs: list[str], outputs: list[str], **ints) -> bytes:
    attrs = b""
    for key, vals in ints.items():
        attrs += _field(5, _field(1, key) + b"".join(_field(8, v) for v in vals) + _field(20, 7))  # INTS
    return b"".join(_field(1, i) for i in inputs) + b"".join(_field(2, o) for o in outputs) + _field(4, op) + attrs


def _scalar(name: str, value: float) -> bytes:
    return _field(2, 1) + _field(8, name) + _field(9, struct.pack("<f", value))  # FLOAT, 0-d


def _onnx(nodes: list[bytes], input_dims: list, output_dims: list, initializers: list[bytes] = ()) -> bytes:
    graph = b"".join(_field(1, n) for n in nodes) + _field(2, "g") + b"".join(_field(5, t) for t in initializers)
    graph += _field(11, _value_info("image", input_dims)) + _field(12, _value_info("embedding", output_dims))
    return _field(1, 8) + _field(7, graph) + _field(8, _field(1, "") + _field(2, 13))  # IR 8, opset 13


SIZE = 32


def _pooled(pool=8, batch="N", layout="nchw", tail=None):
    """image -> AveragePool(pool) -> Flatten -> [tail op] -> embedding; 3*(32/pool)^2 values per image."""
    dims = [batch, 3, SIZE, SIZE] if layout == "nchw" else [batch, SIZE, SIZE, 3]
    nodes = [_node("AveragePool", ["image"], ["p"], kernel_shape=[pool, pool], strides=[pool, pool]), _node("Flatten", ["p"], ["f"])]
    inits = []
    if tail == "constant":
        nodes += [_node("Mul", ["f", "zero"], ["z"]), _node("Add", ["z", "one"], ["embedding"])]
        inits = [_scalar("zero", 0.0), _scalar("one", 1.0)]
    elif tail == "batch-mixing":  # subtracts the batch mean: a row depends on its batch companions
        nodes += [_node("ReduceMean", ["f"], ["m"], axes=[0]), _node("Sub", ["f", "m"], ["embedding"])]
    elif tail == "nan":
        nodes += [_node("Mul", ["f", "nan"], ["embedding"])]
        inits = [_scalar("nan", float("nan"))]
    else:
        nodes[-1] = _node("Flatten", ["p"], ["embedding"])
    return _onnx(nodes, dims, [batch, "D"], inits)


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _snapshot(root):
    """Every file under ``root`` with its bytes (directories as None)."""
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes()) for p in sorted(root.rglob("*"))}


def _add(data_dir, name, file, **kw):
    kw = {"input_size": SIZE, "mean": [127.5] * 3, "std": [64.0] * 3, "resize_mode": "stretch", **kw}
    return add_user_model(data_dir, name, file, **kw)


@pytest.fixture
def sandbox(tmp_path, data_dir):
    """tmp/outer/{victim.onnx, data/models/...}: a file a traversing name could hit, and the data dir."""
    outer = tmp_path / "outer"
    data = outer / "data"
    (data / "models").mkdir(parents=True)
    (outer / "victim.onnx").write_bytes(b"precious bytes")
    (tmp_path / "victim.onnx").write_bytes(b"precious bytes too")
    good = _write(tmp_path / "good.onnx", _pooled())
    return tmp_path, data, good


def test_good_tiny_model_is_accepted_and_usable(sandbox):
    tmp_path, data, good = sandbox
    spec = _add(data, "tiny-pool_v1.2", good)
    assert spec.embedding_dim == 48 and spec.embedding_output == "embedding" and spec.user_added
    assert sorted(p.name for p in (data / "models").iterdir()) == ["tiny-pool_v1.2.onnx", "user_models.json"]
    assert (data / "models" / "tiny-pool_v1.2.onnx").read_bytes() == good.read_bytes()
    backbone = Backbone(get_model("tiny-pool_v1.2", data), device="cpu")
    rng = np.random.default_rng(0)
    emb = backbone.embed(rng.integers(0, 256, (9, SIZE, SIZE, 3), dtype=np.uint8))
    assert emb.shape == (9, 48) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)


@pytest.mark.parametrize(
    "name",
    [
        "../../victim",
        "../victim",
        "/abs/path",
        "a/b",
        "a\\b",
        "..",
        ".",
        ".hidden",
        "",
        "with space",
        "tab\there",
        "esc\x1b[31m",
        "new\nline",
        "x" * 65,
        "naïve",
        "CON",
    ],
)
def test_names_that_are_not_plain_names_are_refused_and_nothing_is_written(sandbox, name, capsys):
    tmp_path, data, good = sandbox
    before = _snapshot(tmp_path)
    with pytest.raises(ModelRefused, match="invalid model name") as info:
        _add(data, name, good)
    assert "\n" not in str(info.value)
    assert ("ASCII letters" in str(info.value)) != ("reserved device name" in str(info.value))
    assert _snapshot(tmp_path) == before
    # the CLI: one line on stderr, exit 2, no traceback; still nothing written
    assert cli.main(["models", "add", name, str(good), "--input-size", str(SIZE), "--data-dir", str(data)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("imgsim: invalid model name") and err.count("\n") == 1 and "Traceback" not in err
    assert _snapshot(tmp_path) == before


def test_absolute_name_outside_the_data_dir_is_refused(sandbox):
    tmp_path, data, good = sandbox
    victim = tmp_path / "victim.onnx"
    before = _snapshot(tmp_path)
    with pytest.raises(ModelRefused, match="invalid model name"):
        _add(data, str(victim.with_suffix("")), good)
    assert victim.read_bytes() == b"precious bytes too" and _snapshot(tmp_path) == before


def test_a_name_already_installed_is_refused_and_that_model_is_untouched(sandbox):
    tmp_path, data, good = sandbox
    _add(data, "mine", good)
    bad = _write(tmp_path / "bad.onnx", b"not onnx")
    before = _snapshot(tmp_path)
    for name in ("mine", "MINE", "mobilenetv2"):  # user-added, same name in another case, built-in
        with pytest.raises(ModelRefused, match="already exists; choose another name, e.g. '") as info:
            _add(data, name, bad)
        assert "\n" not in str(info.value)
    assert _snapshot(tmp_path) == before
    # a stray file of that name that is not registered is not replaced either
    (data / "models" / "stray.onnx").write_bytes(b"someone's file")
    with pytest.raises(ModelRefused, match="already exists"):
        _add(data, "stray", good)
    assert (data / "models" / "stray.onnx").read_bytes() == b"someone's file"


@pytest.mark.parametrize(
    ("data", "kw", "message"),
    [
        (b"this is not an ONNX file at all", {}, "not a loadable ONNX model"),
        (_pooled(tail="constant"), {}, "same embedding for 4 different test images"),
        (_pooled(tail="nan"), {}, "NaN or infinite"),
        (_pooled(pool=16), {}, "only 12 value"),
        (
            _onnx([_node("Flatten", ["image"], ["embedding"])], ["N", 3, 64, 64], ["N", "D"]),
            {"input_size": 64},
            "12288 values per image; refused, embeddings above 8192",
        ),
        (_pooled(batch=1), {}, "fixed batch size of 1"),
        (_pooled(tail="batch-mixing"), {}, "changes with the other images in its batch"),
        (_pooled(layout="nhwc"), {}, "NHWC"),
        (_pooled(), {"input_size": 48}, "does not accept 48x48"),
        (_pooled(), {"output": "logits"}, "no output named 'logits'"),
        (_pooled(), {"std": [64.0, 0.0, 64.0]}, "--std .* must be positive"),
        (_pooled(), {"mean": [float("nan")] * 3}, "--mean .* finite"),
        (_pooled(), {"input_size": 0}, "--input-size 0"),
        (_pooled(), {"resize": 16}, "--resize 16"),
    ],
    ids=[
        "not-onnx",
        "constant",
        "nan",
        "too-small",
        "too-wide",
        "batch-1",
        "batch-mixing",
        "nhwc",
        "wrong-size",
        "no-output",
        "zero-std",
        "nan-mean",
        "size-0",
        "resize-small",
    ],
)
def test_unusable_models_are_refused_leaving_models_dir_as_it_was(sandbox, data, kw, message, capsys):
    tmp_path, data_dir, good = sandbox
    _add(data_dir, "existing", good)
    candidate = _write(tmp_path / "candidate.onnx", data)
    before = _snapshot(tmp_path)
    with pytest.raises(ModelRefused, match=message) as info:
        _add(data_dir, "candidate", candidate, **kw)
    assert "\n" not in str(info.value)
    assert _snapshot(tmp_path) == before  # no temp file left, registry and existing model byte for byte
    assert Backbone(get_model("existing", data_dir), device="cpu").spec.embedding_dim == 48
    if not kw:
        assert cli.main(["models", "add", "candidate", str(candidate), "--input-size", str(SIZE), "--data-dir", str(data_dir)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("imgsim: ") and err.count("\n") == 1 and "Traceback" not in err
        assert _snapshot(tmp_path) == before


def test_refused_add_into_a_fresh_data_dir_leaves_no_models_dir(tmp_path):
    data = tmp_path / "fresh"
    data.mkdir()
    with pytest.raises(ModelRefused):
        _add(data, "x", _write(tmp_path / "bad.onnx", b"junk"))
    assert list(data.iterdir()) == []


def test_cli_add_reports_the_model(sandbox, capsys):
    tmp_path, data, good = sandbox
    assert cli.main(["models", "add", "tiny", str(good), "--input-size", str(SIZE), "--data-dir", str(data)]) == 0
    assert "added tiny: 48-d embedding from output 'embedding'" in capsys.readouterr().out
    assert os.path.isfile(data / "models" / "tiny.onnx")


def test_status_shows_the_library_and_names_a_damaged_model(tmp_path, data_dir, monkeypatch, capsys):
    from conftest import copy_photos
    from imgsim_desktop.cli import main

    lib = tmp_path / "lib"
    copy_photos(lib, ["labelled/dog.jpg", "labelled/cat.jpg"])
    assert main(["index", str(lib), "--model", "mobilenetv2"]) == 0
    models = tmp_path / "models"
    shutil.copytree(get_model("mobilenetv2").path.parent, models, ignore=shutil.ignore_patterns("*lite*"))
    data = bytearray((models / "mobilenetv2_features.onnx").read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = bytes(4096)  # a block of the weights zeroed
    (models / "mobilenetv2_features.onnx").write_bytes(bytes(data))
    monkeypatch.setenv("IMGSIM_MODELS_DIR", str(models))
    capsys.readouterr()
    assert main(["status", "--model", "mobilenetv2"]) == 0
    out = capsys.readouterr().out
    assert f"folders:   {lib}" in out and "photos:    2" in out
    assert "CANNOT BE USED" in out and "mobilenetv2_features.onnx: checksum mismatch" in out
    assert main(["index", str(lib), "--model", "mobilenetv2"]) == 0  # nothing new: the model is not needed
    assert "not loaded: nothing to embed" in capsys.readouterr().out
    copy_photos(lib, ["labelled/pelican.jpg"])
    assert main(["index", str(lib), "--model", "mobilenetv2"]) == 2  # a photo to embed: refused in one line
    assert "checksum mismatch" in capsys.readouterr().err

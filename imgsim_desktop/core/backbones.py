"""Model registry (bundled manifest + user-added models) and the ONNX Runtime session that embeds.

The session asks for CUDA first and falls back to CPU. Which provider is really active is read
back from the session, since the "available providers" list only says what the wheel was built
with, not whether a GPU is there.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import json
import logging
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from filelock import FileLock

from imgsim_desktop import paths
from imgsim_desktop.core.decode import Preprocess
from imgsim_desktop.core.safe_move import rename_noreplace

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
        install_hint=_install_hint(entry, base, user_added),
        default=bool(entry.get("default")),
    )


# What models/export_models.py needs to export each bundled model (torch's own ONNX exporter needs onnx).
EXPORT_TOOLS_DEFAULT = "torch onnx"


def _command(parts: list[str]) -> str:
    """A command line the user's shell runs as written: quoted for cmd.exe on Windows, sh elsewhere."""
    if sys.platform == "win32":
        return subprocess.list2cmdline(parts)
    return " ".join(shlex.quote(p) for p in parts)


def _install_hint(entry: dict, base: Path, user_added: bool) -> str:
    """One command that installs the model when pasted into a terminal (no placeholders where the
    value is known): the export script run by this installation's Python, from a source checkout."""
    name = entry["name"]
    if user_added:  # its file was deleted from the data folder: only the user has the .onnx
        pre = entry["preprocess"]
        return f"imgsim models add {name} YOUR_MODEL.onnx --input-size {pre['input_size']} (the file you added it from)"
    tools = (entry.get("export_requires") or EXPORT_TOOLS_DEFAULT).split()
    script = base / "export_models.py"
    if not script.is_file() or getattr(sys, "frozen", False):  # the packaged app ships no export tools
        return (
            f"in a source checkout, {_installs('python3', tools)} && "
            f"{_command(['python3', 'models/export_models.py', name])}, then copy models/{entry['file']} into {base}"
        )
    python = sys.executable or "python3"
    return f"{_installs(python, tools)} && {_command([python, str(script), name])}"


# PyTorch from PyPI is a CUDA build on Linux (gigabytes); exporting a model needs only the CPU one.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def _installs(python: str, tools: list[str]) -> str:
    torch = [t for t in tools if t.split("=")[0].split(">")[0].split("<")[0] in ("torch", "torchvision")]
    rest = [t for t in tools if t not in torch]
    steps = [_command([python, "-m", "pip", "install", *torch, "--index-url", TORCH_CPU_INDEX])] if torch else []
    steps += [_command([python, "-m", "pip", "install", *rest])] if rest else []
    return " && ".join(steps)


def list_models(data_dir: Path | None = None) -> list[ModelSpec]:
    """Bundled models first (installed or not), then the user's own."""
    bundled = paths.models_dir()
    specs: list[ModelSpec] = []
    manifest = bundled / MANIFEST_NAME
    if manifest.is_file():
        specs += [_spec_from_entry(e, bundled, False) for e in json.loads(manifest.read_text())["models"]]
    if data_dir is not None:
        user_file = paths.Layout(data_dir).models / USER_MODELS_NAME
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


class ModelRefused(ModelError, ValueError):
    """``imgsim models add`` refused a name, a description or a file; the message is one line."""


#: A model name is a name, never a path: it becomes ``<data>/models/<name>.onnx``.
MODEL_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MODEL_NAME_RULE = "a model name is 1-64 ASCII letters, digits, '-', '_' or '.', not starting with '.'"
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
MIN_EMBEDDING_DIM = 16
MAX_EMBEDDING_DIM = 8192


def check_model_name(name: str) -> str:
    """``name`` if it can be a model name, else :class:`ModelRefused` saying why."""
    if not isinstance(name, str) or not MODEL_NAME_RE.fullmatch(name):
        raise ModelRefused(f"invalid model name {name!r}: {MODEL_NAME_RULE}")
    if name.split(".")[0].casefold() in _WINDOWS_RESERVED:
        raise ModelRefused(f"invalid model name {name!r}: '{name.split('.')[0]}' is a reserved device name on Windows; choose another name")
    return name


def _one_line(exc: BaseException, limit: int = 240) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


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

    ``name`` is a plain name (see :data:`MODEL_NAME_RULE`), never a path. The file is copied to a
    temporary file inside ``<data>/models/``, checked by running it the way the indexer will
    (see :func:`_validate_model`), and only then given its final name, ``<name>.onnx``, which must
    not be taken. Anything refused raises :class:`ModelRefused` and leaves every existing file as
    it was; nothing is ever written outside ``<data>/models/``.
    """
    check_model_name(name)
    mean_t, std_t = _check_description(input_size, mean, std, resize, resize_mode)
    onnx_file = Path(onnx_file)
    target_dir = paths.Layout(data_dir).models
    user_file = target_dir / USER_MODELS_NAME
    try:
        known = list_models(data_dir)
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelRefused(f"{user_file}: unreadable ({_one_line(exc)}); fix or remove it before adding models") from None
    taken = next((s for s in known if s.name.casefold() == name.casefold()), None)
    if taken is not None:
        kind = "user-added" if taken.user_added else "built-in"
        raise ModelRefused(f"a {kind} model named '{taken.name}' already exists; choose another name, e.g. '{_free_name(name, known, target_dir)}'")
    final_name = f"{name}.onnx"
    if _file_taken(target_dir, final_name):
        raise ModelRefused(f"{target_dir / final_name} already exists (not a registered model); choose another name or move that file away")
    if not onnx_file.is_file():
        raise ModelRefused(f"{onnx_file}: no such file")

    created_dir = not target_dir.exists()
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / final_name
    if target.resolve().parent != target_dir.resolve():  # defence in depth: the name rule already forbids this
        raise ModelRefused(f"invalid model name {name!r}: {MODEL_NAME_RULE}")
    fd, tmp_name = tempfile.mkstemp(prefix=".adding-", suffix=".onnx.part", dir=target_dir)
    tmp = Path(tmp_name)
    placed = False
    try:
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out, open(onnx_file, "rb") as src:
                for block in iter(lambda: src.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            raise ModelRefused(f"{onnx_file}: cannot copy into {target_dir} ({_one_line(exc)})") from None
        probe_spec = ModelSpec(
            name=name,
            title=title or name,
            path=tmp,
            preprocess=Preprocess(int(input_size), int(resize or input_size), resize_mode),
            mean=mean_t,
            std=std_t,
            embedding_output=output or "",
            embedding_dim=0,
        )
        chosen, dim = _validate_model(probe_spec, onnx_file.name, output)
        entry = {
            "name": name,
            "title": title or name,
            "file": final_name,
            "sha256": digest.hexdigest(),
            "preprocess": {"input_size": int(input_size), "resize": int(resize or input_size), "resize_mode": resize_mode, "mean": list(mean_t), "std": list(std_t)},
            "embedding_output": chosen,
            "outputs": [],
            "embedding_dim": dim,
            "licence": "user-supplied",
            "source": str(onnx_file),
        }
        _place_no_clobber(tmp, target)
        placed = True
        with FileLock(str(Path(data_dir) / "user_models.lock")):  # two adds at once: neither entry is lost
            registry = json.loads(user_file.read_text()) if user_file.is_file() else {"format": 1, "models": []}
            registry["models"].append(entry)
            reg_fd, reg_tmp = tempfile.mkstemp(prefix=".user_models-", suffix=".json.part", dir=target_dir)
            try:
                with os.fdopen(reg_fd, "w") as fh:
                    fh.write(json.dumps(registry, indent=2))
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(reg_tmp, user_file)  # the registry itself is ours to replace: a new version of it
            except BaseException:
                Path(reg_tmp).unlink(missing_ok=True)
                raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        if placed:
            target.unlink(missing_ok=True)  # ours: _place_no_clobber never overwrites
        if created_dir:
            with contextlib.suppress(OSError):
                target_dir.rmdir()  # only if still empty
        raise
    return _spec_from_entry(entry, target_dir, True)


def _check_description(input_size, mean, std, resize, resize_mode) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if not isinstance(input_size, int) or not 8 <= input_size <= 4096:
        raise ModelRefused(f"--input-size {input_size}: must be a whole number of pixels between 8 and 4096")
    if resize_mode not in ("shorter_side_center_crop", "stretch"):
        raise ModelRefused(f"--resize-mode {resize_mode!r}: must be 'shorter_side_center_crop' or 'stretch'")
    if resize is not None and (not isinstance(resize, int) or not input_size <= resize <= 8192):
        raise ModelRefused(f"--resize {resize}: must be at least the input size ({input_size}) and at most 8192")
    try:
        mean_t = tuple(float(v) for v in mean)
        std_t = tuple(float(v) for v in std)
    except (TypeError, ValueError):
        raise ModelRefused(f"--mean {mean} / --std {std}: must be numbers") from None
    if len(mean_t) != 3 or len(std_t) != 3:
        raise ModelRefused(f"--mean and --std take 3 values each (R G B), got {len(mean_t)} and {len(std_t)}")
    if not all(np.isfinite(mean_t)):
        raise ModelRefused(f"--mean {' '.join(map(str, mean_t))}: values must be finite")
    if not all(np.isfinite(v) and v > 0 for v in std_t):
        raise ModelRefused(f"--std {' '.join(map(str, std_t))}: every value must be positive (pixels are divided by it), in 0-255 units, e.g. 58.395 57.12 57.375")
    return mean_t, std_t


def _file_taken(directory: Path, file_name: str) -> bool:
    """A file of that name is there, compared without case (macOS and Windows ignore it)."""
    if (directory / file_name).exists() or (directory / file_name).is_symlink():
        return True
    try:
        return any(p.name.casefold() == file_name.casefold() for p in directory.iterdir())
    except OSError:
        return False


def _free_name(name: str, known: list[ModelSpec], directory: Path) -> str:
    names = {s.name.casefold() for s in known}
    stem = name[:60]
    for i in range(2, 1000):
        candidate = f"{stem}-{i}"
        if candidate.casefold() not in names and not _file_taken(directory, f"{candidate}.onnx"):
            return candidate
    return f"{stem}-new"


def _place_no_clobber(tmp: Path, target: Path) -> None:
    """Give ``tmp`` the name ``target`` (same folder) atomically, refusing if ``target`` exists."""
    try:
        rename_noreplace(str(tmp), str(target))  # the cleanup's primitive: fails rather than replaces
    except FileExistsError:
        raise ModelRefused(f"{target} appeared while the model was being checked; nothing was changed, try again with another name") from None


def _test_images(size: int) -> np.ndarray:
    """Four distinct synthetic RGB images (uint8, 4 x size x size x 3): gradients, noise, checkerboard."""
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    horizontal = np.stack(np.broadcast_arrays(ramp[None, :], ramp[::-1][None, :], np.full((size, size), 128.0)), axis=-1)
    vertical = np.stack(np.broadcast_arrays(ramp[:, None] * 0.3, ramp[:, None], 255 - ramp[:, None]), axis=-1)
    noise = np.random.default_rng(1234).integers(0, 256, (size, size, 3)).astype(np.float32)
    cells = ((np.arange(size)[:, None] // max(1, size // 8) + np.arange(size)[None, :] // max(1, size // 8)) % 2) * 255.0
    checker = np.stack([cells, 255 - cells, cells * 0.5], axis=-1)
    images = [np.broadcast_to(im, (size, size, 3)) for im in (horizontal, vertical, noise, checker)]
    return np.clip(np.stack(images), 0, 255).astype(np.uint8)


def _validate_model(spec: ModelSpec, shown_name: str, output: str | None) -> tuple[str, int]:
    """Run the model the way the indexer will and refuse it, in one line, if it cannot serve.

    Checks: loads on CPU; one float image input N x 3 x H x W (H, W = input size or dynamic) with
    a dynamic batch dimension (the indexer embeds 8 images at a time on CPU, 32 on GPU); the
    chosen output gives one row per image, at least 16 and at most 8192 values, finite, different
    for different images, and the same for an image whether it is run alone or in a batch.
    Returns (output name, embedding width).
    """
    ort = onnx_runtime()

    size = spec.preprocess.input_size
    try:
        sess = ort.InferenceSession(str(spec.path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - any load failure is a refusal
        detail = _one_line(exc).replace(str(spec.path), shown_name)  # name the user's file, not our temporary copy
        raise ModelRefused(f"{shown_name}: not a loadable ONNX model ({detail})") from None
    inputs = sess.get_inputs()
    if len(inputs) != 1:
        raise ModelRefused(f"{shown_name}: expected exactly one image input, found {len(inputs)} ({', '.join(i.name for i in inputs)})")
    inp = inputs[0]
    dims = list(inp.shape or [])
    shape_text = " x ".join(str(d) if d not in (None, "") else "?" for d in dims) or "no shape"
    if inp.type != "tensor(float)":
        raise ModelRefused(f"{shown_name}: input '{inp.name}' is {inp.type}; imgsim feeds float32 pixels (tensor(float))")
    if len(dims) != 4:
        raise ModelRefused(f"{shown_name}: input '{inp.name}' is {shape_text}; imgsim feeds N x 3 x H x W images")
    fixed = [d if isinstance(d, int) and d > 0 else None for d in dims]
    if fixed[1] not in (None, 3):
        layout = "N x H x W x 3 (NHWC)" if fixed[3] in (None, 3) else shape_text
        raise ModelRefused(f"{shown_name}: input '{inp.name}' is {shape_text}, read as {layout}; imgsim feeds N x 3 x H x W (NCHW), re-export it channels-first")
    if any(d is not None and d != size for d in fixed[2:]):
        raise ModelRefused(f"{shown_name}: does not accept {size}x{size} images (input '{inp.name}' is {shape_text}); pass the model's own --input-size")
    if fixed[0] is not None:
        raise ModelRefused(
            f"{shown_name}: input '{inp.name}' has a fixed batch size of {fixed[0]} ({shape_text}); imgsim embeds 8-32 images per run, "
            "so re-export it with a dynamic batch dimension"
        )
    names = [o.name for o in sess.get_outputs()]
    chosen = output or names[0]
    if chosen not in names:
        raise ModelRefused(f"{shown_name}: no output named '{chosen}' (outputs: {', '.join(names)})")
    del sess
    try:
        backbone = Backbone(replace(spec, embedding_output=chosen), device="cpu", threads=1, verify=False)
    except ModelError as exc:
        raise ModelRefused(f"{shown_name}: {_one_line(exc)}") from None
    images = _test_images(size)
    try:
        batch = np.asarray(backbone._run(images, [chosen])[0])
        singles = [np.asarray(backbone._run(im[None], [chosen])[0]) for im in images]
    except Exception as exc:  # noqa: BLE001 - a run failure is a refusal
        detail = _one_line(exc).replace(str(spec.path), shown_name)
        raise ModelRefused(f"{shown_name}: does not accept {len(images)}x3x{size}x{size} input ({detail})") from None
    if batch.ndim == 0 or batch.shape[0] != len(images) or any(s.ndim == 0 or s.shape[0] != 1 for s in singles):
        got = "x".join(map(str, batch.shape)) or "a scalar"
        raise ModelRefused(
            f"{shown_name}: output '{chosen}' does not honour the batch dimension ({len(images)} images gave {got}); it must give one row per image"
        )
    if not np.issubdtype(batch.dtype, np.number):
        raise ModelRefused(f"{shown_name}: output '{chosen}' is {batch.dtype}, not numbers")
    rows = batch.reshape(len(images), -1).astype(np.float64)
    dim = rows.shape[1]
    if dim < MIN_EMBEDDING_DIM:
        raise ModelRefused(f"{shown_name}: output '{chosen}' has only {dim} value(s) per image; an embedding needs at least {MIN_EMBEDDING_DIM} (pick another with --output)")
    if dim > MAX_EMBEDDING_DIM:
        raise ModelRefused(
            f"{shown_name}: output '{chosen}' has {dim} values per image; refused, embeddings above {MAX_EMBEDDING_DIM} dimensions make the index too large and slow "
            "(pick a pooled output with --output)"
        )
    if not np.isfinite(rows).all() or not all(np.isfinite(s).all() for s in singles):
        raise ModelRefused(f"{shown_name}: output '{chosen}' contains NaN or infinite values on test images")
    unit = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    if np.abs(unit - unit[0]).max() < 1e-6:
        raise ModelRefused(f"{shown_name}: output '{chosen}' gives the same embedding for {len(images)} different test images, so it cannot tell photos apart")
    single_rows = np.concatenate([s.reshape(1, -1) for s in singles]).astype(np.float64)
    single_unit = single_rows / np.maximum(np.linalg.norm(single_rows, axis=1, keepdims=True), 1e-12)
    if single_rows.shape != rows.shape or not np.allclose(single_unit, unit, atol=1e-3):
        raise ModelRefused(
            f"{shown_name}: output '{chosen}' for an image changes with the other images in its batch; each row must depend only on its own image"
        )
    return chosen, dim


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
    ort = onnx_runtime()

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


def expected_provider(device: str) -> str:
    """Which provider a session would ask for first ("CUDA" or "CPU"), without loading a model:
    what the app shows until a session says what it really got (a CUDA that fails falls back)."""
    ort = onnx_runtime()
    if device in ("auto", "gpu") and "CUDAExecutionProvider" in ort.get_available_providers() and cuda_device_count() > 0:
        return "CUDA"
    return "CPU"


def onnx_runtime():
    """The onnxruntime module, or one line saying how to install it (the `cpu` or `gpu` extra)."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise ModelError(
            f"ONNX Runtime is not installed for {sys.executable} ({exc}): choose one, never both: "
            "`pip install onnxruntime` (CPU, a 28 MB wheel) or `pip install onnxruntime-gpu` (NVIDIA GPUs, 256 MB); "
            "from a source checkout, `pip install -e '.[cpu]'` or `pip install -e '.[gpu]'`"
        ) from None
    return onnxruntime


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


class Backbone:
    """One ONNX session for one model: preprocess (normalise) + run + L2-normalise."""

    def __init__(self, spec: ModelSpec, device: str = "auto", threads: int | None = None, verify: bool = True) -> None:
        ort = onnx_runtime()

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

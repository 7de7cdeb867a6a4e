"""One loader for exported CNNs, whatever runs them: `load_runtime` (kiosk-safe: numpy only at
import; never torch).

Backends, chosen by the file's suffix:

* ``.onnx`` → **onnxruntime** (CPU execution provider; dynamic batch).
* ``.tflite`` → **ai_edge_litert** (LiteRT, preferred; XNNPACK on the CPU), else
  **tflite_runtime**. tflite-runtime's last release (2.14) was built against NumPy 1.x and does
  not import under NumPy 2 ("A module that was compiled using NumPy 1.x cannot be run in NumPy
  2"): that case raises `BackendUnavailableError` saying so, rather than a bare ImportError.

Every backend returns the same `Prediction`: ``probs`` (N, 5), ``logits`` (N, 5) and, for
models exported with the fused Grad-CAM, ``cam_mi`` and ``cam_top`` (N, 1000) — the MI map and
the map of the top class (``top_class``). Models without a map (AlexNet-1D) have
``has_cam = False`` and ``cam_mi = cam_top = None``; `ModelRuntime.cam_note` says why.
Inputs are standardised (N, 12, 1000) float32; int8 TFLite models with an int8 input tensor get
it quantized with the file's own scale and zero point.

>>> rt = load_runtime("model.bin")
Traceback (most recent call last):
...
detak.export.runtime.ModelFileError: model.bin: not an exported model file (.onnx or .tflite)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["BACKENDS", "Prediction", "ModelRuntime", "ModelFileError",
           "BackendUnavailableError", "load_runtime", "available_backends", "model_filename",
           "find_model_file", "NO_CAM_NOTE"]

BACKENDS: tuple[str, ...] = ("onnxruntime", "ai_edge_litert", "tflite_runtime")
SUFFIX_RUNTIME: dict[str, str] = {".onnx": "onnx", ".tflite": "tflite"}
NO_CAM_NOTE = ("this model has no fused Grad-CAM: its head is not global-average-pooling "
               "(or concat-pooling) + linear, so no activation map is available on the kiosk")


class ModelFileError(ValueError):
    """A path that is not a readable exported model (missing, wrong suffix, wrong outputs)."""


class BackendUnavailableError(RuntimeError):
    """No installed backend can run this model file; the message names what is missing."""


@dataclasses.dataclass
class Prediction:
    """Outputs of an exported model for N records."""

    probs: np.ndarray
    logits: np.ndarray
    cam_mi: np.ndarray | None = None
    cam_top: np.ndarray | None = None

    @property
    def top_class(self) -> np.ndarray:
        """Index of the highest-scoring class per record (the class ``cam_top`` explains)."""
        return np.argmax(self.logits, axis=1)


def model_filename(stem: str, runtime: str, precision: str) -> str:
    """File name of an exported model: ``STEM.PRECISION.onnx`` or ``STEM.PRECISION.tflite``.

    >>> model_filename("edge", "tflite", "int8")
    'edge.int8.tflite'
    """
    ext = {"onnx": ".onnx", "tflite": ".tflite"}.get(runtime)
    if ext is None:
        raise ValueError(f"unknown exported runtime {runtime!r}; use onnx or tflite")
    if precision not in ("fp32", "int8"):
        raise ValueError(f"unknown precision {precision!r}; use fp32 or int8")
    return f"{stem}.{precision}{ext}"


def find_model_file(folder: str | Path, stem: str, runtime: str, precision: str) -> Path | None:
    """``folder/STEM.PRECISION.EXT`` if present, else None.

    >>> find_model_file(".", "no-such-model", "onnx", "int8") is None
    True
    """
    p = Path(folder) / model_filename(stem, runtime, precision)
    return p if p.is_file() else None


def _tflite_runtime_numpy_problem(err: BaseException) -> bool:
    text = str(err)
    return any(s in text for s in ("NumPy 1.x", "_ARRAY_API", "numpy.core.multiarray",
                                   "numpy.core._multiarray_umath"))


def _numpy2_message() -> str:
    return (f"tflite_runtime is installed but was built for NumPy 1.x and this environment has "
            f"NumPy {np.__version__}: tflite-runtime 2.14 (its last release) imports, then fails "
            "when it creates an interpreter ('_ARRAY_API not found'); install ai-edge-litert "
            "(preferred) or use NumPy < 2")


def _tflite_runtime_needs_numpy1() -> bool:
    """True when the installed tflite-runtime (≤ 2.14, built on NumPy 1.x) meets NumPy ≥ 2."""
    from importlib.metadata import PackageNotFoundError, version

    if int(np.__version__.split(".")[0]) < 2:
        return False
    try:
        major, minor = (int(v) for v in version("tflite-runtime").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return False
    return (major, minor) <= (2, 14)


def _tflite_interpreter(backend: str | None) -> tuple[str, Any]:
    """(backend name, Interpreter class) for TFLite files."""
    tried: list[str] = []
    if backend in (None, "ai_edge_litert"):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            from ai_edge_litert.interpreter import Interpreter

            return "ai_edge_litert", Interpreter
        except ImportError as err:
            tried.append(f"ai_edge_litert: {err}")
            if backend == "ai_edge_litert":
                raise BackendUnavailableError(f"ai_edge_litert is not usable ({err}); "
                                              "pip install ai-edge-litert") from err
    if backend in (None, "tflite_runtime"):
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError as err:
            if _tflite_runtime_numpy_problem(err):
                raise BackendUnavailableError(_numpy2_message()) from err
            tried.append(f"tflite_runtime: {err}")
        else:
            if _tflite_runtime_needs_numpy1():
                raise BackendUnavailableError(_numpy2_message())
            return "tflite_runtime", Interpreter
    raise BackendUnavailableError("no TFLite interpreter: " + "; ".join(tried) +
                                  " (pip install ai-edge-litert)")


def available_backends() -> dict[str, str]:
    """Each backend → its version, or ``"unavailable: REASON"``. Importing is the check.

    >>> sorted(available_backends())
    ['ai_edge_litert', 'onnxruntime', 'tflite_runtime']
    """
    out: dict[str, str] = {}
    try:
        import onnxruntime

        out["onnxruntime"] = onnxruntime.__version__
    except ImportError as err:
        out["onnxruntime"] = f"unavailable: {err}"
    for name, dist in (("ai_edge_litert", "ai-edge-litert"),
                       ("tflite_runtime", "tflite-runtime")):
        try:
            _tflite_interpreter(name)
            from importlib.metadata import version

            out[name] = version(dist)
        except (BackendUnavailableError, ImportError) as err:
            out[name] = f"unavailable: {err}"
        except Exception as err:  # noqa: BLE001 - a broken wheel must not break the listing
            out[name] = f"unavailable: {type(err).__name__}: {err}"
    return out


class ModelRuntime:
    """An exported model loaded by one backend; `run` maps standardised records to a
    `Prediction`. Use `load_runtime` to make one."""

    def __init__(self, path: Path, backend: str, threads: int, output_names: list[str],
                 batch: int | None, run_batch: Callable[[np.ndarray], dict[str, np.ndarray]],
                 batch_size: int = 256, samples: int | None = None) -> None:
        self.path = path
        self.backend = backend
        self.threads = threads
        self.output_names = output_names
        self.batch = batch  # fixed batch of the file (TFLite: 1), None when dynamic
        self._run_batch = run_batch
        self.batch_size = batch_size
        self.samples = samples  # input length the file was exported for (None: unknown)

    @property
    def runtime(self) -> str:
        """``onnx`` or ``tflite``."""
        return SUFFIX_RUNTIME[self.path.suffix.lower()]

    @property
    def precision(self) -> str:
        """``int8`` if the file name says so, else ``fp32``."""
        return "int8" if ".int8." in self.path.name.lower() else "fp32"

    @property
    def has_cam(self) -> bool:
        """True if the model outputs the fused Grad-CAM maps."""
        return "cam_mi" in self.output_names and "cam_top" in self.output_names

    @property
    def cam_note(self) -> str | None:
        """Why there is no map (None when there is one)."""
        return None if self.has_cam else NO_CAM_NOTE

    def __repr__(self) -> str:
        return (f"ModelRuntime({self.path.name}, backend={self.backend}, threads={self.threads}"
                f", cam={self.has_cam})")

    def run(self, x: np.ndarray) -> Prediction:
        """Outputs for standardised records ``x`` (N, 12, L) float32 (or one (12, L) record)."""
        arr = np.asarray(x, dtype=np.float32)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[1] != 12:
            raise ValueError(f"{self.path.name}: input must be (records, 12, samples), got "
                             f"{arr.shape}")
        if self.samples is not None and arr.shape[2] != self.samples:
            raise ValueError(f"{self.path.name}: input must be {self.samples} samples per lead "
                             f"(10 s at 100 Hz), got {arr.shape[2]}")
        step = self.batch or self.batch_size
        parts: dict[str, list[np.ndarray]] = {k: [] for k in self.output_names}
        for s in range(0, len(arr), step):
            chunk = arr[s:s + step]
            n = len(chunk)
            if self.batch and n < self.batch:  # a fixed-batch file: pad the last chunk
                chunk = np.concatenate([chunk, np.zeros((self.batch - n, *chunk.shape[1:]),
                                                        np.float32)])
            out = self._run_batch(np.ascontiguousarray(chunk))
            for k in self.output_names:
                parts[k].append(np.asarray(out[k], dtype=np.float32)[:n])
        cat = {k: (np.concatenate(v) if v else np.empty((0,), np.float32))
               for k, v in parts.items()}
        return Prediction(probs=cat["probs"], logits=cat["logits"], cam_mi=cat.get("cam_mi"),
                          cam_top=cat.get("cam_top"))

    def run_batch(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """One call of the backend on a batch it accepts as is (float32 (B, 12, L); B = the
        file's fixed batch for TFLite): the raw output dict. For latency measurements."""
        return self._run_batch(x)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Probabilities only (N, 5)."""
        return self.run(x).probs


def _onnx_runtime(path: Path, threads: int, batch_size: int) -> ModelRuntime:
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise BackendUnavailableError(f"{path.name}: onnxruntime is not installed "
                                      "(pip install onnxruntime)") from err
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    try:
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise ModelFileError(f"{path}: onnxruntime cannot load it ({err})") from err
    names = [o.name for o in sess.get_outputs()]
    input_name = sess.get_inputs()[0].name
    dims = sess.get_inputs()[0].shape
    samples = dims[2] if len(dims) == 3 and isinstance(dims[2], int) else None

    def run_batch(x: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(names, sess.run(names, {input_name: x}), strict=True))

    return ModelRuntime(path, "onnxruntime", threads, names, None, run_batch, batch_size,
                        samples=samples)


def _tflite_runtime(path: Path, threads: int, backend: str | None) -> ModelRuntime:
    name, interpreter_cls = _tflite_interpreter(backend)
    try:
        interp = interpreter_cls(model_path=str(path), num_threads=int(threads))
    except (ValueError, RuntimeError) as err:
        raise ModelFileError(f"{path}: {name} cannot load it ({err})") from err
    sigs = interp.get_signature_list()
    if not sigs:
        raise ModelFileError(f"{path}: no signature in the TFLite file (export it with "
                             "`detak export tflite`)")
    key = "serving_default" if "serving_default" in sigs else next(iter(sigs))
    runner = interp.get_signature_runner(key)
    input_key = sigs[key]["inputs"][0]
    details = runner.get_input_details()[input_key]
    dtype = np.dtype(details["dtype"])
    scale, zero = details.get("quantization", (0.0, 0))
    batch = int(details["shape"][0])
    names = list(sigs[key]["outputs"])
    out_details = runner.get_output_details()

    def quantize(x: np.ndarray) -> np.ndarray:
        if dtype == np.float32:
            return x
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(dtype)

    def dequantize(k: str, v: np.ndarray) -> np.ndarray:
        d = out_details[k]
        if np.dtype(d["dtype"]) == np.float32:
            return v
        s, z = d.get("quantization", (0.0, 0))
        return (v.astype(np.float32) - z) * s

    def run_batch(x: np.ndarray) -> dict[str, np.ndarray]:
        out = runner(**{input_key: quantize(x)})
        return {k: dequantize(k, np.array(v)) for k, v in out.items()}

    shape = list(details["shape"])
    return ModelRuntime(path, name, threads, names, batch, run_batch,
                        samples=int(shape[2]) if len(shape) == 3 else None)


def load_runtime(path: str | Path, threads: int = 1, backend: str | None = None,
                 batch_size: int = 256) -> ModelRuntime:
    """Load an exported model (``.onnx`` or ``.tflite``) with ``threads`` CPU threads.

    ``backend``: None picks onnxruntime for ONNX and ai_edge_litert, then tflite_runtime, for
    TFLite; or one of `BACKENDS` to force it.
    """
    p = Path(path)
    runtime = SUFFIX_RUNTIME.get(p.suffix.lower())
    if runtime is None:
        raise ModelFileError(f"{path}: not an exported model file (.onnx or .tflite)")
    if not p.is_file():
        raise ModelFileError(f"{path}: no such model file")
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if int(threads) < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    if runtime == "onnx":
        if backend not in (None, "onnxruntime"):
            raise ValueError(f"{p.name}: an ONNX file runs on onnxruntime, not {backend}")
        rt = _onnx_runtime(p, int(threads), batch_size)
    else:
        if backend == "onnxruntime":
            raise ValueError(f"{p.name}: a TFLite file runs on ai_edge_litert or "
                             "tflite_runtime, not onnxruntime")
        rt = _tflite_runtime(p, int(threads), backend)
    missing = {"logits", "probs"} - set(rt.output_names)
    if missing:
        raise ModelFileError(f"{p}: outputs {rt.output_names} lack {sorted(missing)}; not a "
                             "detak export (detak export onnx|tflite)")
    return rt

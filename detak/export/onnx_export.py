"""ONNX export (host only: torch, onnx, onnxruntime.quantization).

* `export_onnx` writes the fp32 graph of `detak.export.cam.export_graph` (batch-norms folded,
  fused Grad-CAM where the head allows it): opset 17, input ``ecg`` (batch, 12, 1000) with a
  dynamic batch, outputs ``logits``, ``probs`` and, with a map, ``cam_mi``, ``cam_top``.
* `quantize_onnx` makes the int8 model: onnxruntime's static quantization in QDQ format,
  per-channel symmetric int8 weights, activations calibrated on standardised records with one
  of `CALIBRATION_METHODS` (MinMax, Entropy, Percentile; settings in `CALIBRATOR_OPTIONS`,
  ranges computed by onnxruntime's calibrators and handed to ``quantize_static``). The head
  and the map (`HEAD_SCOPE` nodes) stay in float; the model is pre-processed first
  (`quant_pre_process`: shape inference and graph optimisation).

Activations are uint8 by default (``U8S8``): on x86 CPUs with AVX-512 VNNI (and AVX2) this is
the kernel onnxruntime runs fastest; on ARM, onnxruntime prefers ``S8S8`` —
``activation_type="int8"``.

>>> import tempfile, torch
>>> from detak.models.cnn.registry import build_model
>>> with tempfile.TemporaryDirectory() as d:
...     p = export_onnx(build_model("edge"), Path(d) / "edge.fp32.onnx")
...     onnx_output_names(p)
['logits', 'probs', 'cam_mi', 'cam_top']
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["OPSET", "INPUT_NAME", "CALIBRATION_METHODS", "HEAD_SCOPE", "export_onnx",
           "quantize_onnx", "onnx_output_names", "head_nodes"]

OPSET = 17
INPUT_NAME = "ecg"
CALIBRATION_METHODS: tuple[str, ...] = ("minmax", "entropy", "percentile")
HEAD_SCOPE = "/head/"  # node names of the (unquantized) head and map in the exported graph
FLOAT_SCOPES_KEY = "detak.float_scopes"  # metadata: node-name prefixes kept in float
# Calibrator settings. onnxruntime's Entropy default (128 histogram bins for 128 quantized bins)
# leaves a single candidate threshold — the min/max range, i.e. MinMax again. With 512 bins the
# KL search tries thresholds from 1/4 of the largest |activation| up in steps of 1/256 (TensorRT
# uses 2048 bins; onnxruntime's pure-Python search then takes ~25 s per model instead of ~4 s).
# Percentile keeps onnxruntime's 2048 bins and 99.999th percentile.
CALIBRATOR_OPTIONS: dict[str, dict[str, Any]] = {
    "minmax": {"symmetric": False},
    "entropy": {"num_bins": 512, "num_quantized_bins": 128, "symmetric": False},
    "percentile": {"num_bins": 2048, "percentile": 99.999, "symmetric": True},
}


def export_onnx(model: Any, path: str | Path, *, cam: bool = True, opset: int = OPSET,
                n_samples: int = 1000) -> Path:
    """Export ``model`` (a torch CNN of `detak.models.cnn`) as fp32 ONNX to ``path``."""
    import torch

    from detak.export.cam import export_graph

    if opset < 17:
        raise ValueError(f"opset {opset} is too old; detak exports opset 17 or newer")
    graph = export_graph(model, cam=cam, n_samples=n_samples)
    names = list(graph.output_names)

    class _Tuple(torch.nn.Module):
        def __init__(self, g: torch.nn.Module) -> None:
            super().__init__()
            self.body, self.head = g.body, g.head

        def forward(self, x: torch.Tensor) -> tuple:
            out = self.head(self.body(x))
            return tuple(out[k] for k in names)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(2, 12, n_samples)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(_Tuple(graph).eval(), (example,), str(path), dynamo=False,
                          opset_version=opset, input_names=[INPUT_NAME], output_names=names,
                          dynamic_axes={k: {0: "batch"} for k in [INPUT_NAME, *names]},
                          do_constant_folding=True)
    import onnx

    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, {FLOAT_SCOPES_KEY: ",".join(graph.float_scopes)})
    onnx.save(model, str(path))
    return path


def onnx_output_names(path: str | Path) -> list[str]:
    """Output names of an ONNX model file."""
    import onnx

    return [o.name for o in onnx.load(str(path), load_external_data=False).graph.output]


def head_nodes(path: str | Path) -> list[str]:
    """Names of the nodes left in float by `quantize_onnx`: those under the scopes the
    exporter recorded in the model's metadata (``detak.float_scopes``; default `HEAD_SCOPE`) —
    the head and the maps, or only the last linear layer and the sigmoid (AlexNet-1D)."""
    import onnx

    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    scopes = tuple(s for s in props.get(FLOAT_SCOPES_KEY, HEAD_SCOPE).split(",") if s)
    return [n.name for n in model.graph.node if any(n.name.startswith(s) for s in scopes)]


class _Reader:
    """onnxruntime CalibrationDataReader over standardised (N, 12, L) records."""

    def __init__(self, x: np.ndarray, batch_size: int) -> None:
        self.x = np.asarray(x, dtype=np.float32)
        self.batch_size = batch_size
        self._it: Iterator[dict[str, np.ndarray]] | None = None

    def _batches(self) -> Iterator[dict[str, np.ndarray]]:
        for s in range(0, len(self.x), self.batch_size):
            yield {INPUT_NAME: np.ascontiguousarray(self.x[s:s + self.batch_size])}

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._it is None:
            self._it = self._batches()
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = None


def quantize_onnx(fp32_path: str | Path, out_path: str | Path, calibration_x: np.ndarray, *,
                  method: str = "minmax", per_channel: bool = True,
                  activation_type: str = "uint8", batch_size: int = 32) -> Path:
    """Static int8 QDQ quantization of ``fp32_path`` calibrated on ``calibration_x``
    (standardised (N, 12, L) float32); writes ``out_path``.

    >>> quantize_onnx("m.onnx", "q.onnx", np.zeros((2, 12, 1000)), method="kl")
    Traceback (most recent call last):
    ...
    ValueError: unknown calibration method 'kl'; use one of minmax, entropy, percentile
    """
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"unknown calibration method {method!r}; use one of "
                         f"{', '.join(CALIBRATION_METHODS)}")
    if activation_type not in ("uint8", "int8"):
        raise ValueError(f"activation_type must be uint8 or int8, got {activation_type!r}")
    x = np.asarray(calibration_x, dtype=np.float32)
    if x.ndim != 3 or len(x) == 0:
        raise ValueError(f"calibration records must be (N, 12, L) with N > 0, got {x.shape}")
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data
    from onnxruntime.quantization.shape_inference import quant_pre_process

    calib = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
             "percentile": CalibrationMethod.Percentile}[method]
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="detak-quant-") as tmp, \
            contextlib.redirect_stdout(io.StringIO()):  # the calibrators print progress
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre))
        calibrator = create_calibrator(pre, None, augmented_model_path=str(Path(tmp) / "aug.onnx"),
                                       calibrate_method=calib,
                                       extra_options=CALIBRATOR_OPTIONS[method])
        # one batch per call: the histogram calibrators stack a call's batches (so they must
        # be the same size) and keep every activation of a call in memory
        for s in range(0, len(x), batch_size):
            calibrator.collect_data(_Reader(x[s:s + batch_size], batch_size))
        cache = Path(tmp) / "ranges.json"
        save_tensors_data(calibrator.compute_data(), cache)
        del calibrator
        quantize_static(
            str(pre), str(out_path), None, quant_format=QuantFormat.QDQ,
            per_channel=per_channel, activation_type=(QuantType.QUInt8 if activation_type ==
                                                      "uint8" else QuantType.QInt8),
            weight_type=QuantType.QInt8, calibrate_method=calib,
            nodes_to_exclude=head_nodes(pre), extra_options={"WeightSymmetric": True},
            calibration_cache_path=str(cache))
    return out_path

"""LiteRT/TFLite export with litert-torch (host only: ``pip install "detak[host]"``).

* `export_tflite` (fp32): `detak.export.cam.export_graph` converted by ``litert_torch.convert``;
  signature ``serving_default`` with input ``args_0`` (1, 12, 1000) and outputs ``logits``,
  ``probs`` and, with a map, ``cam_mi``, ``cam_top``.
* `export_tflite_int8`: PT2E post-training quantization with litert-torch's
  ``PT2EQuantizer`` — per-channel symmetric int8 weights, int8 activations observed with its
  histogram observer over the same standardised calibration records as ONNX — the head and
  the map left in float (`detak.export.cam.FLOAT_MODULES`), then converted. The model's input
  tensor is int8 (its scale and zero point are in the file; `detak.export.runtime` quantizes
  float input for it). A ``MaxPool1d`` (InceptionTime's pool branch) shares its input's
  quantization parameters (`_share_max_pool1d_qparams`): litert-torch's quantizer annotates
  only ``max_pool2d``, and a 1-D pool left with an observer of its own made the converter
  refuse the graph (``'tfl.reshape' op quantization parameters violate the same scale
  constraint``); InceptionTime's batch-norm after the concatenation is folded into the branch
  convolutions (`_fold_concat_batchnorm`), so the concatenation is quantized after it. A
  graph the converter still refuses raises `LitertInt8ConversionError`.

The batch is fixed at 1: litert-torch 0.10 cannot lower a dynamic batch through ``Conv1d``
(``broadcast_in_dim shape must have every element be nonnegative``), and the kiosk runs one
record at a time anyway. `detak.export.runtime` loops over larger batches.

>>> import tempfile, torch
>>> from detak.models.cnn.registry import build_model
>>> with tempfile.TemporaryDirectory() as d:  # doctest: +SKIP
...     export_tflite(build_model("edge"), Path(d) / "edge.fp32.tflite").stat().st_size > 0
True
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["export_tflite", "export_tflite_int8", "LitertInt8ConversionError",
           "LitertTorchMissingError"]


class LitertTorchMissingError(ImportError):
    """litert-torch (the host's TFLite converter) is not installed."""


class LitertInt8ConversionError(ValueError):
    """litert-torch's converter refused the quantized graph (its message is kept)."""


_MAX_POOL_1D = ("max_pool1d.default", "max_pool1d_with_indices.default")


def _share_max_pool1d_qparams(model: Any) -> Any:
    """Give every ``max_pool1d`` of an annotated PT2E graph its input's quantization.

    TFLite's ``MAX_POOL_2D`` and the ``RESHAPE``s around a 1-D pool must keep one scale from
    input to output. litert-torch 0.10 annotates ``max_pool2d`` only: a ``max_pool1d`` got an
    observer of its own and the converter refused the graph. Sharing is exact (a maximum
    commutes with a monotone quantizer); the pool's input keeps the observer that its other
    quantized consumer (InceptionTime: the bottleneck convolution) put on it. A pool whose input
    has no quantized consumer is left alone (it stays in float).
    """
    from torchao.quantization.pt2e.quantizer import (
        QuantizationAnnotation,
        SharedQuantizationSpec,
    )

    for node in model.graph.nodes:
        if node.op != "call_function" or not str(node.target).endswith(_MAX_POOL_1D):
            continue
        x = node.args[0]
        edge = next(((x, user) for user in x.users if user is not node
                     and x in getattr(user.meta.get("quantization_annotation"),
                                      "input_qspec_map", {})), None)
        if edge is None:
            continue
        shared = SharedQuantizationSpec(edge)
        node.meta["quantization_annotation"] = QuantizationAnnotation(
            input_qspec_map={x: shared}, output_qspec=shared, _annotated=True)
    return model


def _fold_concat_batchnorm(graph: Any) -> Any:
    """Fold InceptionTime's batch-norm after the concatenation into the four branch convolutions
    (each takes its slice of the channels), in place on an export graph.

    `detak.export.cam.fold_batchnorm` folds only a batch-norm right after one convolution; the
    one after InceptionTime's concatenation stayed, so the int8 graph quantized the
    concatenation *before* it, with one scale for branches whose spreads differ tenfold (the
    max-pool branch kept ~3 bits) and ran the batch-norm in float. Folded, the concatenation
    carries the normalised values. The function is unchanged: fp32 outputs agree to rounding.
    """
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    from detak.models.cnn.inceptiontime import InceptionModule

    for module in graph.modules():
        if not isinstance(module, InceptionModule) or not isinstance(module.bn, nn.BatchNorm1d):
            continue
        bn = module.bn
        branches = [*module.convs, module.pool_branch[-1]]
        start = 0
        for conv in branches:
            part = slice(start, start + conv.out_channels)
            start = part.stop
            weight, bias = fuse_conv_bn_weights(
                conv.weight, conv.bias, bn.running_mean[part], bn.running_var[part], bn.eps,
                bn.weight[part], bn.bias[part])
            conv.weight, conv.bias = weight, bias
        if start != bn.num_features:
            raise ValueError(f"branches give {start} channels, the batch-norm has "
                             f"{bn.num_features}")
        module.bn = nn.Identity()
    return graph


def _quantizer(pq: Any) -> Any:
    """litert-torch's PT2E quantizer with `_share_max_pool1d_qparams` after its annotation."""

    class _Quantizer(pq.PT2EQuantizer):  # type: ignore[misc, name-defined]
        def annotate(self, model: Any) -> Any:
            return _share_max_pool1d_qparams(super().annotate(model))

    return _Quantizer()


def _litert_torch() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import litert_torch
    except ImportError as err:
        raise LitertTorchMissingError(
            f"TFLite export needs litert-torch (pip install \"detak[host]\"): {err}") from err
    return litert_torch


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """litert-torch prints a progress tree on stdout and warnings on the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def export_tflite(model: Any, path: str | Path, *, cam: bool = True,
                  n_samples: int = 1000) -> Path:
    """fp32 TFLite of ``model``'s export graph (batch 1) at ``path``."""
    import torch

    from detak.export.cam import export_graph

    litert_torch = _litert_torch()
    graph = export_graph(model, cam=cam, n_samples=n_samples)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _quiet():
        edge = litert_torch.convert(graph, (torch.zeros(1, 12, n_samples),))
        edge.export(str(path))
    return path


def export_tflite_int8(model: Any, path: str | Path, calibration_x: np.ndarray, *,
                       cam: bool = True, n_samples: int = 1000) -> Path:
    """int8 TFLite (PT2E static quantization, per-channel weights) calibrated on
    ``calibration_x`` (standardised (N, 12, L) float32), written to ``path``."""
    import torch
    from torchao.quantization.pt2e import move_exported_model_to_eval, quantize_pt2e

    from detak.export.cam import FLOAT_MODULES, export_graph

    x = np.asarray(calibration_x, dtype=np.float32)
    if x.ndim != 3 or len(x) == 0:
        raise ValueError(f"calibration records must be (N, 12, L) with N > 0, got {x.shape}")
    litert_torch = _litert_torch()
    from litert_torch.quantize import pt2e_quantizer as pq
    from litert_torch.quantize.quant_config import QuantConfig

    graph = _fold_concat_batchnorm(export_graph(model, cam=cam, n_samples=n_samples))
    example = (torch.zeros(1, 12, n_samples),)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _quiet():
        exported = torch.export.export(graph, example).module()
        quantizer = _quantizer(pq).set_global(
            pq.get_symmetric_quantization_config(is_per_channel=True))
        for head_type in FLOAT_MODULES:  # head and maps stay in float
            quantizer.set_module_type(head_type, None)
            # torch.export (2.14) records module types in nn_module_stack as qualified-name
            # strings, which litert-torch 0.10's type filter compares with `in`: give both
            quantizer.set_module_type(f"{head_type.__module__}.{head_type.__qualname__}", None)
        prepared = quantize_pt2e.prepare_pt2e(exported, quantizer)
        with torch.no_grad():
            for i in range(len(x)):
                prepared(torch.from_numpy(x[i:i + 1]))
        converted = quantize_pt2e.convert_pt2e(prepared, fold_quantize=False)
        move_exported_model_to_eval(converted)
        try:
            edge = litert_torch.convert(converted, example,
                                        quant_config=QuantConfig(pt2e_quantizer=quantizer))
        except ValueError as err:
            raise LitertInt8ConversionError(str(err)) from err
        edge.export(str(path))
    return path

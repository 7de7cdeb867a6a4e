"""ONNX and LiteRT/TFLite export, int8 quantization, fused Grad-CAM, runtime loader, signed
model bundles (issue 5), and inference above `detak.models` (which never imports this package).

Kiosk-safe (no torch): `runtime` (`load_runtime`: one API over onnxruntime, ai_edge_litert and
tflite_runtime), `bundle` (signed bundles: verify, install), `compare`, `cli`; `predict`
(runtime choice, bundle resolution, ``detak predict``), `catalog` (``detak models list|info``)
and `predict_cli` (``detak evaluate|predict|models``).
Host only (torch; litert-torch for TFLite): `cam` (the exported graph with the fused Grad-CAM),
`onnx_export`, `tflite_export`, `pipeline` (``detak export onnx|tflite``). The calibration set
for int8 is `representative`. Guide: ``docs/export.md``.

>>> from detak.export import load_runtime
>>> load_runtime.__module__
'detak.export.runtime'
"""

from detak.export.runtime import Prediction, load_runtime

__all__ = ["Prediction", "load_runtime"]

"""detak.export.runtime: one loader over onnxruntime, ai_edge_litert and tflite_runtime, named
errors for bad files and missing backends, no-map models, fixed-batch padding."""

from __future__ import annotations

import sys
import types

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from detak.export import runtime as rt_mod
from detak.export.runtime import (
    BackendUnavailableError,
    ModelFileError,
    available_backends,
    load_runtime,
)
from tests.export.conftest import torch_outputs

# Measured on the 2-epoch test model, 7 fold-9 records: fp32 files agree with torch to ~1e-7 in
# probability and r = 1.0000 in the MI map; int8 files to 1.0e-3 (ONNX) / 1.3e-3 (LiteRT), map
# r >= 0.991 / 0.996. The bounds leave ~8x room for int8 rounding, not for a wrong graph.
TOLERANCE = {"fp32": {"probs": 1e-5, "cam_r": 0.9999}, "int8": {"probs": 0.01, "cam_r": 0.95}}
FILES = [("edge.fp32.onnx", "onnxruntime"), ("edge.int8.onnx", "onnxruntime"),
         ("edge.fp32.tflite", "ai_edge_litert"), ("edge.int8.tflite", "ai_edge_litert")]


@pytest.mark.parametrize(("name", "backend"), FILES)
def test_every_backend_agrees_with_torch(exported_edge, fold9_sample, edge_module, name,
                                         backend):
    """Each file on its backend: the output contract, and the same outputs as the torch fp32
    graph (fused maps included) — to float rounding in fp32, to int8 rounding in int8."""
    x, _ = fold9_sample
    rt = load_runtime(exported_edge / name, threads=1)
    assert rt.backend == backend and rt.has_cam and rt.cam_note is None
    assert rt.precision == name.split(".")[1] and rt.runtime == name.rsplit(".", 1)[1]
    out = rt.run(x[:7])
    assert out.probs.shape == (7, 5) and out.logits.shape == (7, 5)
    assert out.cam_mi.shape == out.cam_top.shape == (7, 1000)
    assert ((out.probs > 0) & (out.probs < 1)).all()
    np.testing.assert_allclose(out.probs, 1 / (1 + np.exp(-out.logits)), atol=1e-5)
    assert (out.cam_mi >= 0).all() and (out.cam_top >= 0).all()  # Grad-CAM's ReLU
    one = rt.run(x[3])  # a single (12, 1000) record
    np.testing.assert_allclose(one.probs[0], out.probs[3], atol=1e-6)
    ref = torch_outputs(edge_module, x[:7])
    tol = TOLERANCE[name.split(".")[1]]
    prob_diff = np.abs(out.probs - ref["probs"]).max()
    cam_r = min(np.corrcoef(a, b)[0, 1] for a, b in zip(out.cam_mi, ref["cam_mi"], strict=True)
                if b.std() > 0)
    assert prob_diff < tol["probs"], prob_diff
    assert cam_r > tol["cam_r"], cam_r


def test_tflite_runtime_is_reported_not_a_crash(exported_edge, monkeypatch):
    """tflite_runtime is not installed here (its last release needs NumPy 1.x): forcing it gives
    a named error that points to ai-edge-litert."""
    status = available_backends()
    assert status["onnxruntime"][0].isdigit() and status["ai_edge_litert"][0].isdigit()
    if status["tflite_runtime"].startswith("unavailable"):
        with pytest.raises(BackendUnavailableError, match="ai-edge-litert"):
            load_runtime(exported_edge / "edge.int8.tflite", backend="tflite_runtime")
    # the NumPy-2 case, with a stand-in for the installed 2.14 wheel
    fake = types.ModuleType("tflite_runtime")
    fake_interp = types.ModuleType("tflite_runtime.interpreter")
    fake_interp.Interpreter = object
    monkeypatch.setitem(sys.modules, "tflite_runtime", fake)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", fake_interp)
    import importlib.metadata as md

    real_version = md.version
    monkeypatch.setattr(md, "version", lambda d: "2.14.0" if d == "tflite-runtime"
                        else real_version(d))
    monkeypatch.setattr(rt_mod.np, "__version__", "2.1.0")
    with pytest.raises(BackendUnavailableError, match=r"NumPy 1\.x.*ai-edge-litert"):
        load_runtime(exported_edge / "edge.int8.tflite", backend="tflite_runtime")
    monkeypatch.setattr(rt_mod.np, "__version__", "1.26.4")  # with NumPy 1.x it would be used
    assert rt_mod._tflite_interpreter("tflite_runtime")[0] == "tflite_runtime"


def test_bad_files_and_arguments_are_named_errors(tmp_path, exported_edge):
    with pytest.raises(ModelFileError, match=r"model\.bin: not an exported model file"):
        load_runtime(tmp_path / "model.bin")
    with pytest.raises(ModelFileError, match="no such model file"):
        load_runtime(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="junk.onnx: onnxruntime cannot load it"):
        load_runtime(tmp_path / "junk.onnx")
    (tmp_path / "junk.tflite").write_bytes(b"not a model either")
    with pytest.raises(ModelFileError, match="junk.tflite"):
        load_runtime(tmp_path / "junk.tflite")
    with pytest.raises(ValueError, match="threads must be at least 1"):
        load_runtime(exported_edge / "edge.int8.onnx", threads=0)
    with pytest.raises(ValueError, match="runs on onnxruntime"):
        load_runtime(exported_edge / "edge.int8.onnx", backend="ai_edge_litert")
    with pytest.raises(ValueError, match=r"\(records, 12, samples\), got \(2, 8, 1000\)"):
        load_runtime(exported_edge / "edge.int8.onnx").run(np.zeros((2, 8, 1000), np.float32))
    for name in ("edge.int8.onnx", "edge.int8.tflite"):   # 5 s instead of 10: named, both
        with pytest.raises(ValueError, match=rf"{name}: input must be 1000 samples .*got 500"):
            load_runtime(exported_edge / name).run(np.zeros((1, 12, 500), np.float32))
    # a valid ONNX file that is not a detak export
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 12, 1000])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 12, 1000])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]),
              str(tmp_path / "other.onnx"))
    with pytest.raises(ModelFileError, match=r"lack \['logits', 'probs'\]"):
        load_runtime(tmp_path / "other.onnx")


def test_a_model_without_a_map_says_so(tmp_path):
    import torch

    from detak.export.onnx_export import export_onnx
    from detak.models.cnn.registry import build_model

    torch.manual_seed(0)
    p = export_onnx(build_model("alexnet1d"), tmp_path / "alexnet1d.fp32.onnx")
    rt = load_runtime(p)
    assert not rt.has_cam and "no fused Grad-CAM" in rt.cam_note
    out = rt.run(np.zeros((2, 12, 1000), np.float32))
    assert out.cam_mi is None and out.cam_top is None and out.probs.shape == (2, 5)


def test_fixed_batch_files_are_run_record_by_record(exported_edge, fold9_sample):
    x, _ = fold9_sample
    rt = load_runtime(exported_edge / "edge.fp32.tflite")
    together = rt.run(x[:3]).probs
    apart = np.concatenate([rt.run(x[i:i + 1]).probs for i in range(3)])
    np.testing.assert_array_equal(together, apart)

"""detak.export.tflite_export: fp32 LiteRT parity with torch (probabilities and maps), int8
model with an int8 input tensor and a float head, both through the one runtime loader."""

from __future__ import annotations

import numpy as np

from detak.export.compare import rowwise_pearson
from detak.export.runtime import load_runtime
from tests.export.conftest import torch_outputs


def test_fp32_tflite_matches_torch_on_100_records(exported_edge, edge_module, fold9_sample):
    x, _ = fold9_sample
    ref = torch_outputs(edge_module, x)
    rt = load_runtime(exported_edge / "edge.fp32.tflite")
    assert rt.backend == "ai_edge_litert" and rt.batch == 1 and rt.has_cam
    out = rt.run(x)
    assert np.abs(out.probs - ref["probs"]).max() <= 1e-4
    for got, want in ((out.cam_mi, ref["cam_mi"]), (out.cam_top, ref["cam_top"])):
        np.testing.assert_allclose(got, want, atol=1e-5 * max(1.0, np.abs(want).max()))


def test_int8_tflite_is_quantized_and_close_to_fp32(exported_edge, fold9_sample):
    from ai_edge_litert.interpreter import Interpreter

    path = exported_edge / "edge.int8.tflite"
    interp = Interpreter(model_path=str(path))
    runner = interp.get_signature_runner()
    inp = runner.get_input_details()["args_0"]
    assert np.dtype(inp["dtype"]) == np.int8 and inp["quantization"][0] > 0
    outs = runner.get_output_details()
    assert sorted(outs) == ["cam_mi", "cam_top", "logits", "probs"]
    assert all(np.dtype(d["dtype"]) == np.float32 for d in outs.values())  # float head
    ops = {op["op_name"] for op in interp._get_ops_details()}
    assert "CONV_2D" in ops
    int8_tensors = [t for t in interp.get_tensor_details() if np.dtype(t["dtype"]) == np.int8]
    assert len(int8_tensors) >= 13 * 2  # at least the 13 conv weights and their outputs
    # int8 weights: ~3 of every 4 weight bytes gone; the limit for edge int8 is 1 MB
    from detak.models.cnn.registry import build_model, count_parameters

    int8_size = (exported_edge / "edge.int8.tflite").stat().st_size
    saved = (exported_edge / "edge.fp32.tflite").stat().st_size - int8_size
    assert saved > 0.7 * 3 * count_parameters(build_model("edge"))
    assert int8_size <= 1_000_000

    x, _ = fold9_sample
    fp = load_runtime(exported_edge / "edge.fp32.tflite").run(x)
    q = load_runtime(path).run(x)
    assert np.abs(q.probs - fp.probs).max() < 0.08
    assert np.nanmedian(rowwise_pearson(q.cam_top, fp.cam_top)) > 0.95


def test_onnx_and_tflite_agree(exported_edge, fold9_sample):
    x, _ = fold9_sample
    a = load_runtime(exported_edge / "edge.fp32.onnx").run(x[:20])
    b = load_runtime(exported_edge / "edge.fp32.tflite").run(x[:20])
    assert np.abs(a.probs - b.probs).max() <= 1e-4
    np.testing.assert_allclose(a.cam_top, b.cam_top, atol=1e-5 * max(1, np.abs(a.cam_top).max()))

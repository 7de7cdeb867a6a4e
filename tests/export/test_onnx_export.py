"""detak.export.onnx_export: fp32 parity with torch (probabilities and maps), graph properties
(opset, dynamic batch, folded batch-norm), int8 QDQ per-channel with a float head, and the three
calibration methods really differ."""

from __future__ import annotations

import hashlib

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from detak.export.compare import rowwise_pearson
from detak.export.onnx_export import (
    CALIBRATION_METHODS,
    export_onnx,
    head_nodes,
    quantize_onnx,
)
from detak.export.runtime import load_runtime
from tests.export.conftest import torch_outputs


def test_bad_inputs_are_named_errors(tmp_path, edge_module):
    with pytest.raises(ValueError, match="opset 13"):
        export_onnx(edge_module, tmp_path / "m.onnx", opset=13)
    p = export_onnx(edge_module, tmp_path / "m.onnx")
    with pytest.raises(ValueError, match=r"\(N, 12, L\).*\(12, 1000\)"):
        quantize_onnx(p, tmp_path / "q.onnx", np.zeros((12, 1000), np.float32))
    with pytest.raises(ValueError, match="activation_type"):
        quantize_onnx(p, tmp_path / "q.onnx", np.zeros((2, 12, 1000), np.float32),
                      activation_type="int4")


def test_fp32_onnx_matches_torch_on_100_records(exported_edge, edge_module, fold9_sample):
    x, _ = fold9_sample
    ref = torch_outputs(edge_module, x)
    out = load_runtime(exported_edge / "edge.fp32.onnx").run(x)
    assert len(x) == 100
    assert np.abs(out.probs - ref["probs"]).max() <= 1e-4
    for got, want in ((out.cam_mi, ref["cam_mi"]), (out.cam_top, ref["cam_top"])):
        np.testing.assert_allclose(got, want, atol=1e-5 * max(1.0, np.abs(want).max()))
    assert np.array_equal(out.top_class, ref["logits"].argmax(1))


def test_graph_properties(exported_edge):
    model = onnx.load(str(exported_edge / "edge.fp32.onnx"))
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    inp = model.graph.input[0]
    assert inp.name == "ecg"
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [12, 1000]
    ops = {n.op_type for n in model.graph.node}
    assert "BatchNormalization" not in ops and "Conv" in ops
    assert [o.name for o in model.graph.output] == ["logits", "probs", "cam_mi", "cam_top"]
    # two records in, two rows out: the batch is dynamic
    out = load_runtime(exported_edge / "edge.fp32.onnx").run(np.zeros((3, 12, 1000), np.float32))
    assert out.probs.shape == (3, 5) and out.cam_mi.shape == (3, 1000)


def test_int8_is_qdq_per_channel_with_a_float_head(exported_edge):
    model = onnx.load(str(exported_edge / "edge.int8.onnx"))
    nodes = model.graph.node
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producer = {o: n for n in nodes for o in n.output}
    convs = [n for n in nodes if n.op_type == "Conv"]
    assert len(convs) == 13
    for conv in convs:
        w_dq = producer[conv.input[1]]
        assert w_dq.op_type == "DequantizeLinear"
        w = inits[w_dq.input[0]]
        scale = inits[w_dq.input[1]]
        assert w.dtype == np.int8 and scale.shape == (w.shape[0],)  # one scale per channel
        assert producer[conv.input[0]].op_type == "DequantizeLinear"  # quantized activations
    head = [n for n in nodes if n.name.startswith("/head/") and n.op_type in ("Gemm", "MatMul")]
    assert head, "the head nodes should keep their names"
    for n in head:  # float weights: no DequantizeLinear feeds a head weight
        assert all(i in inits and inits[i].dtype == np.float32 for i in n.input[1:2]
                   if i in inits)
    # int8 weights: ~3 of every 4 weight bytes gone; the limit for edge int8 is 1 MB
    from detak.models.cnn.registry import build_model, count_parameters

    int8_size = (exported_edge / "edge.int8.onnx").stat().st_size
    saved = (exported_edge / "edge.fp32.onnx").stat().st_size - int8_size
    assert saved > 0.7 * 3 * count_parameters(build_model("edge"))
    assert int8_size <= 1_000_000


def test_int8_stays_close_to_fp32(exported_edge, fold9_sample):
    x, y = fold9_sample
    fp = load_runtime(exported_edge / "edge.fp32.onnx").run(x)
    q = load_runtime(exported_edge / "edge.int8.onnx").run(x)
    assert np.abs(q.probs - fp.probs).max() < 0.08
    r = rowwise_pearson(q.cam_top, fp.cam_top)
    assert np.nanmedian(r) > 0.95


def test_calibration_methods_really_differ(exported_edge):
    """onnxruntime's default Entropy settings (128 bins for 128 quantized bins) collapse to
    MinMax; ours must not, and the card records all three with the chosen one the best."""
    import json

    from detak.export.onnx_export import CALIBRATOR_OPTIONS

    opts = CALIBRATOR_OPTIONS["entropy"]
    assert opts["num_bins"] > opts["num_quantized_bins"]
    card = json.loads((exported_edge / "export.json").read_text())
    int8 = card["exports"]["onnx"]["int8"]
    methods = int8["calibration_methods"]
    assert sorted(methods) == sorted(CALIBRATION_METHODS)
    diffs = {m: methods[m]["max_abs_prob_diff_vs_fp32"] for m in methods}
    assert len(set(diffs.values())) == 3, diffs  # three different quantizations
    best = max(methods[m]["macro_auc"] for m in methods)
    assert methods[int8["calibration_method"]]["macro_auc"] == best == int8["macro_auc"]
    assert int8["sha256"] == hashlib.sha256(
        (exported_edge / "edge.int8.onnx").read_bytes()).hexdigest()


def test_entropy_clips_where_minmax_does_not(tmp_path, exported_edge, fold9_sample):
    x, _ = fold9_sample
    scales = {}
    for method in ("minmax", "entropy"):
        p = quantize_onnx(exported_edge / "edge.fp32.onnx", tmp_path / f"{method}.onnx", x[:32],
                          method=method)
        g = onnx.load(str(p)).graph
        scales[method] = np.array([float(numpy_helper.to_array(i)) for i in g.initializer
                                   if i.name.endswith("_scale") and list(i.dims) == []])
    assert scales["entropy"].shape == scales["minmax"].shape
    assert (scales["entropy"] <= scales["minmax"] * (1 + 1e-6)).all()
    assert (scales["entropy"] < scales["minmax"] * 0.99).any()


def test_head_nodes_are_found(exported_edge):
    names = head_nodes(exported_edge / "edge.fp32.onnx")
    assert sum("MatMul" in n for n in names) >= 3  # logits, maps, upsampling
    assert any("ArgMax" in n for n in names)
    assert not any(n.startswith("/body/") for n in names)


def test_alexnet_int8_quantizes_its_head_but_not_the_last_layer(tmp_path):
    """AlexNet-1D's head holds most of its weights: int8 quantizes it, except the last linear
    layer and the sigmoid, so probabilities keep their resolution."""
    import torch

    from detak.models.cnn.registry import build_model

    torch.manual_seed(0)
    fp32 = export_onnx(build_model("alexnet1d"), tmp_path / "alexnet1d.fp32.onnx")
    assert all(n.startswith("/head/out/") for n in head_nodes(fp32)) and head_nodes(fp32)
    x = np.random.default_rng(0).normal(size=(6, 12, 1000)).astype(np.float32)
    q = quantize_onnx(fp32, tmp_path / "alexnet1d.int8.onnx", x, method="minmax")
    assert q.stat().st_size < 0.3 * fp32.stat().st_size  # ~3.4 MB of ~13.3 MB
    a, b = load_runtime(fp32).run(x), load_runtime(q).run(x)
    assert len(np.unique(b.probs)) >= 0.8 * b.probs.size  # not a handful of int8 levels
    assert np.abs(a.probs - b.probs).max() < 0.05

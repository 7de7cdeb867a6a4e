"""benchmarks/edge_int8_speed.py: MACs counted on the ONNX graph agree with the torch count
and include the map head; a round's ratio pairs the model with that round's GEMM; the pruned
graphs have the outputs they are named for."""

import numpy as np
import pytest
from edge_int8_speed import graph_macs, paired_change, summarise, variants


@pytest.fixture(scope="module")
def edge_int8(tmp_path_factory):
    from detak.export.onnx_export import export_onnx, quantize_onnx
    from detak.models.cnn.registry import build_model

    d = tmp_path_factory.mktemp("edge")
    model = build_model("edge").eval()
    fp32 = export_onnx(model, d / "edge.fp32.onnx")
    x = np.random.default_rng(0).standard_normal((8, 12, 1000)).astype(np.float32)
    return model, quantize_onnx(fp32, d / "edge.int8.onnx", x)


def test_graph_macs_match_the_torch_count_and_add_the_map_head(edge_int8):
    import onnx

    from detak.models.cnn.registry import count_macs

    model, path = edge_int8
    macs = graph_macs(onnx.load(str(path)))
    linear = model.head.in_features * model.head.out_features
    assert macs["Conv"] == count_macs(model) - linear  # every conv, through its QDQ weights
    steps = 63  # the feature map's length for 1000 samples
    cam = 2 * model.head.in_features * steps + 2 * steps * 1000  # two maps, then upsampled
    assert macs.get("Gemm", 0) + macs.get("MatMul", 0) == linear + cam


def test_pruned_graphs_have_their_outputs(edge_int8):
    _, path = edge_int8
    g = variants(path)
    assert [o.name for o in g["nocam"].graph.output] == ["logits", "probs"]
    assert len(g["body"].graph.output) == 1 and "head" not in g["body"].graph.output[0].name
    assert g["quantize"].graph.node[-1].op_type == "QuantizeLinear"
    assert graph_macs(g["body"]) == {"Conv": graph_macs(g["cam"])["Conv"]}


def test_a_rounds_ratio_uses_that_rounds_gemm():
    # load doubles in round 2: the model takes 100 then 200 µs, the GEMM 400 then 200 G MAC/s
    timing = {"times_us": {("m", "cam"): [100.0, 200.0], ("n", "cam"): [90.0, 210.0]},
              "gemm_gmacs": [400.0, 200.0]}
    row = summarise("m", {"cam": {"Conv": 20_000_000}}, None, timing)
    # round 1: 200 G MAC/s of 400; round 2: 100 of 200 — 50 % both times, not 100/300
    assert row["cam_pct"] == pytest.approx(50.0)
    assert row["cam_pct_p25_p75"] == pytest.approx((50.0, 50.0))
    med, lo, hi = paired_change(timing, "n", "m")
    # per round 90/100 and 210/200: median 0.975, quartiles between them
    assert med == pytest.approx(0.975) and (lo, hi) == pytest.approx((0.9375, 1.0125))

"""InceptionTime through the LiteRT int8 path (issue 18 item 7): its max-pool branch used to make
litert-torch refuse the quantized graph ("'tfl.reshape' op quantization parameters violate the
same scale constraint"). A tiny InceptionTime-shaped network (random weights, 4 filters, three
modules: the pool branch and a residual shortcut) must now convert, run with an int8 max-pool
and agree with torch; with the max-pool fix switched off the converter's refusal must surface as
`LitertInt8ConversionError`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detak.export import tflite_export
from detak.export.tflite_export import LitertInt8ConversionError, export_tflite_int8
from detak.models.cnn.inceptiontime import InceptionModule, InceptionTime


def _tiny(depth: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return InceptionTime(depth=depth, filters=4).eval()


def _records(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 12, 1000)).astype(np.float32)


def test_tiny_inceptiontime_exports_to_int8_litert_and_matches_torch(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from detak.export.cam import export_graph
    from detak.export.compare import rowwise_pearson
    from detak.export.runtime import load_runtime

    model = _tiny(depth=3)
    path = export_tflite_int8(model, tmp_path / "it.int8.tflite", _records(6, 0))
    interp = Interpreter(model_path=str(path))
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    pools = [op for op in interp._get_ops_details() if op["op_name"] == "MAX_POOL_2D"]
    assert len(pools) == 3  # one per inception module, quantized: int8 in, int8 out
    for op in pools:
        dtypes = {np.dtype(tensors[i]["dtype"]) for i in (*op["inputs"], *op["outputs"])}
        assert dtypes == {np.dtype(np.int8)}

    x = _records(8, 1)
    with torch.inference_mode():
        ref = export_graph(model)(torch.from_numpy(x))
    ref_logits = ref["logits"].numpy()
    out = load_runtime(path).run(x)
    # int8 against torch fp32 (random weights: the logits vary little between records, so the
    # comparison is over all logits, not per class)
    r = rowwise_pearson(out.logits.reshape(1, -1), ref_logits.reshape(1, -1))[0]
    assert r > 0.99, r
    assert np.abs(out.logits - ref_logits).max() <= 0.05 * np.abs(ref_logits).max()


def test_without_the_max_pool_fix_the_refusal_is_a_named_error(tmp_path, monkeypatch):
    monkeypatch.setattr(tflite_export, "_share_max_pool1d_qparams", lambda model: model)
    with pytest.raises(LitertInt8ConversionError, match="same scale constraint"):
        export_tflite_int8(_tiny(depth=1), tmp_path / "it.int8.tflite", _records(4, 0))
    assert not (tmp_path / "it.int8.tflite").exists()


def test_concat_batchnorm_folded_into_the_branches_keeps_the_function():
    """The batch-norm after the concatenation goes into the four branch convolutions (so the
    int8 graph quantizes normalised values, not branches whose spreads differ tenfold)."""
    from detak.export.cam import export_graph
    from detak.export.tflite_export import _fold_concat_batchnorm

    model = _tiny(depth=3)
    with torch.no_grad():  # a trained-looking batch-norm: branch spreads and shifts differ
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.uniform_(-2, 2)
                module.running_var.uniform_(0.1, 50)
                module.weight.uniform_(0.5, 2)
                module.bias.uniform_(-1, 1)
    plain = export_graph(model)
    folded = _fold_concat_batchnorm(export_graph(model))
    modules = [m for m in folded.modules() if isinstance(m, InceptionModule)]
    assert len(modules) == 3 and all(isinstance(m.bn, torch.nn.Identity) for m in modules)
    x = torch.from_numpy(_records(4, 2))
    with torch.inference_mode():
        a, b = plain(x), folded(x)
    for key in ("logits", "cam_mi", "cam_top"):
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5)

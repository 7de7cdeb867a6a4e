"""detak.export.cam: the fused Grad-CAM equals autograd Grad-CAM at the last conv map; batch-norm
folding keeps the outputs; AlexNet-1D exports without a map."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from detak.data.samples import load_sample, sample_names
from detak.export.cam import (
    MI_INDEX,
    cam_kind,
    export_graph,
    fold_batchnorm,
    reference_gradcam,
)
from detak.export.compare import rowwise_pearson
from detak.models.cnn.registry import build_model
from detak.models.cnn_data import preprocess_recording


@pytest.fixture(scope="module")
def ecg() -> np.ndarray:
    """The bundled PTB-XL sample records, filtered and roughly standardised (real ECGs)."""
    recs = [load_sample(s) for s in sample_names() if s.startswith("ptbxl")]
    x = np.concatenate([preprocess_recording(r) for r in recs])
    return ((x - x.mean()) / x.std()).astype(np.float32)


# seeds under which the MI maps of these records are non-trivial (not flat after the ReLU)
SEEDS = {"edge": 0, "resnet1d": 1, "inceptiontime": 2, "alexnet1d": 0}


def _perturbed(name: str, seed: int | None = None) -> nn.Module:
    """A model with non-trivial batch-norm statistics and affine terms (as after training), so
    folding and the closed-form gradients are exercised."""
    seed = SEEDS[name] if seed is None else seed
    torch.manual_seed(seed)
    m = build_model(name).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm1d):
                n = mod.num_features
                mod.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
                mod.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                mod.weight.copy_(torch.rand(n, generator=g) + 0.5)
                mod.bias.copy_(torch.randn(n, generator=g) * 0.3)
    return m


@pytest.mark.parametrize("name", ["edge", "resnet1d", "inceptiontime"])
def test_fused_cam_equals_autograd_gradcam(name, ecg):
    model = _perturbed(name)
    graph = export_graph(model)
    x = torch.from_numpy(ecg)
    with torch.no_grad():
        out = graph(x)
        logits = model(x)
    assert graph.has_cam
    np.testing.assert_allclose(out["logits"].numpy(), logits.numpy(), atol=1e-4, rtol=1e-4)
    checked = 0
    for key, classes in (("cam_mi", MI_INDEX), ("cam_top", logits.argmax(1))):
        ref = reference_gradcam(model, ecg, classes)
        fused = out[key].numpy()
        assert fused.shape == ref.shape == (len(ecg), 1000)
        r = rowwise_pearson(fused, ref)
        flat = np.ptp(ref, axis=1) == 0
        # where autograd's map is flat (ReLU of a negative map), the fused one is flat too
        assert np.all(np.ptp(fused[flat], axis=1) <= 1e-6 * (np.abs(ref).max() + 1e-12))
        assert np.all(r[~flat] >= 0.999), (key, r)
        checked += int((~flat).sum())
    assert checked >= 8, "too few non-trivial maps for the comparison to mean anything"


def test_the_comparison_can_fail(ecg):
    """The MI map is not the map of another class (NORM): r drops below the bar."""
    model = _perturbed("edge")
    with torch.no_grad():
        fused = export_graph(model)(torch.from_numpy(ecg))["cam_mi"].numpy()
    r = rowwise_pearson(fused, reference_gradcam(model, ecg, 0))
    assert np.isfinite(r).sum() >= 3
    assert np.nanmin(r) < 0.999


def test_batchnorm_folding_keeps_outputs_and_removes_the_norms(ecg):
    model = _perturbed("edge")
    from detak.export.cam import FeatureBody

    body = FeatureBody(model)
    folded = fold_batchnorm(body)
    assert sum(isinstance(m, nn.BatchNorm1d) for m in folded.modules()) == 0
    assert sum(isinstance(m, nn.BatchNorm1d) for m in body.modules()) > 0  # original untouched
    x = torch.from_numpy(ecg)
    with torch.no_grad():
        np.testing.assert_allclose(folded(x).numpy(), body(x).numpy(), atol=1e-4, rtol=1e-4)


def test_alexnet_exports_without_a_map(ecg):
    model = _perturbed("alexnet1d")
    assert cam_kind(model) is None
    graph = export_graph(model)
    assert not graph.has_cam and graph.output_names == ("logits", "probs")
    with torch.no_grad():
        out = graph(torch.from_numpy(ecg[:2]))
        ref = model(torch.from_numpy(ecg[:2]))
    assert sorted(out) == ["logits", "probs"]
    np.testing.assert_allclose(out["logits"].numpy(), ref.numpy(), atol=1e-4, rtol=1e-4)


def test_cam_can_be_switched_off_for_a_gap_model(ecg):
    model = _perturbed("edge")
    graph = export_graph(model, cam=False)
    with torch.no_grad():
        out = graph(torch.from_numpy(ecg[:2]))
        ref = model(torch.from_numpy(ecg[:2]))
    assert sorted(out) == ["logits", "probs"]
    np.testing.assert_allclose(out["probs"].numpy(), torch.sigmoid(ref).numpy(), atol=1e-5)


@pytest.mark.parametrize("name", ["edge", "resnet1d"])
def test_the_map_selection_is_one_matmul(name, ecg, tmp_path):
    """onnxruntime pays roughly a microsecond per node at batch 1, and its ReduceSum over the
    class axis is dearer still: the MI map and the top class's map are picked from the class
    maps by one MatMul with a (batch, 2, classes) one-hot selection, not by Mul + ReduceSum +
    Slice + Concat (issue 18: the int8 model's time next to onnxruntime's GEMM rate)."""
    import onnx

    from detak.export.onnx_export import export_onnx
    from detak.export.runtime import load_runtime

    model = _perturbed(name)
    path = export_onnx(model, tmp_path / f"{name}.onnx")
    ops = [n.op_type for n in onnx.load(str(path)).graph.node if n.name.startswith("/head/")]
    assert "ReduceSum" not in ops
    if name == "edge":  # (ResNet's longer maps are resized: Shape, Slice, Concat size the Resize)
        assert "Slice" not in ops and "Concat" not in ops
        # GAP head: the two classes' weight rows are gathered first, so three MatMuls in all
        # (the logits, the two maps, their upsampling) and no one-hot
        assert ops.count("MatMul") == 3 and "Equal" not in ops
    out = load_runtime(path).run(ecg[:4])
    graph = export_graph(model)
    with torch.no_grad():
        ref = graph(torch.from_numpy(ecg[:4]))
        maps = reference_gradcam(model, ecg[:4], ref["logits"].argmax(1))
    np.testing.assert_allclose(out.cam_top, ref["cam_top"].numpy(), atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(out.cam_mi, ref["cam_mi"].numpy(), atol=1e-5, rtol=1e-4)
    assert np.nanmin(rowwise_pearson(out.cam_top, maps)) > 0.999

"""Grad-CAM: named errors, equality with the closed-form and the fused (export) CAM, layers,
and the per-lead derived view. Inputs are real fold-9 PTB-XL records."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detak.explain.gradcam import (
    LayerNotFoundError,
    cam_closed_form,
    class_index,
    gradcam,
    gradcam_per_lead,
)
from tests.explain.cnn_helpers import fold9_small, random_model


@pytest.fixture(scope="module")
def x():
    return fold9_small(4)[1]


def test_unknown_class_is_named():
    with pytest.raises(ValueError, match="unknown class 'AFIB'"):
        class_index("AFIB")
    with pytest.raises(ValueError, match="class index 7 out of range"):
        class_index(7)


def test_unknown_layer_is_named_with_the_known_ones(x):
    m = random_model("edge")
    with pytest.raises(LayerNotFoundError, match=r"no layer 'blocks\.9'.*stem"):
        gradcam(m, x, "MI", layer="blocks.9")


def test_bad_input_shape_is_named():
    with pytest.raises(ValueError, match=r"\(batch, leads, samples\), got shape \(1000,\)"):
        gradcam(random_model("edge"), np.zeros(1000, np.float32))


def test_one_class_per_record_needs_one_per_record(x):
    with pytest.raises(ValueError, match="2 classes given for 4 records"):
        gradcam(random_model("edge"), x, [1, 2])


def test_gap_head_gradcam_equals_closed_form_and_fused_export_cam(x):
    from detak.export.cam import export_graph, reference_gradcam

    m = random_model("edge")
    nonzero = 0
    for c in range(5):
        g = gradcam(m, x, c)
        assert g.shape == (4, 1000) and (g >= 0).all()
        nonzero += g.max() > 0
        np.testing.assert_allclose(g, cam_closed_form(m, x, c), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(g, reference_gradcam(m, torch.from_numpy(x), c),
                                   rtol=1e-4, atol=1e-6)
    assert nonzero >= 2  # the comparison is not between all-zero maps
    # the kiosk's graph: batch-norm folded into the convs, the CAM fused into the head; it
    # outputs the MI map and the top class's map
    with torch.no_grad():
        out = export_graph(m)(torch.from_numpy(x))
    top = out["logits"].argmax(dim=1).numpy()
    g_top = gradcam(m, x, top)
    assert g_top.max() > 0
    np.testing.assert_allclose(g_top, out["cam_top"].numpy(), rtol=1e-3,
                               atol=1e-4 * float(g_top.max()))
    g_mi = gradcam(m, x, "MI")
    np.testing.assert_allclose(g_mi, out["cam_mi"].numpy(), rtol=1e-3,
                               atol=1e-4 * max(float(g_top.max()), float(g_mi.max())))


def test_concat_pool_head_gradcam_equals_fused_export_cam(x):
    from detak.export.cam import export_graph

    m = random_model("resnet1d")
    with torch.no_grad():
        out = export_graph(m)(torch.from_numpy(x))
    top = out["logits"].argmax(dim=1).numpy()
    g_top = gradcam(m, x, top)
    assert g_top.max() > 0
    np.testing.assert_allclose(g_top, out["cam_top"].numpy(), rtol=1e-3,
                               atol=1e-4 * float(g_top.max()))
    g_mi = gradcam(m, x, "MI")
    np.testing.assert_allclose(g_mi, out["cam_mi"].numpy(), rtol=1e-3,
                               atol=1e-4 * float(g_top.max()))


def test_default_layer_is_the_last_conv_map(x):
    m = random_model("edge")
    np.testing.assert_allclose(gradcam(m, x, 1), gradcam(m, x, 1, layer="blocks.3"),
                               rtol=1e-5, atol=1e-7)
    early = gradcam(m, x, 1, layer="blocks.1")   # 250 steps, upsampled
    assert early.shape == (4, 1000) and not np.allclose(early, gradcam(m, x, 1))


def test_layer_followed_by_inplace_relu_is_read_before_it(x):
    # stem.1 is a batch-norm whose output the in-place ReLU overwrites: the map must use the
    # BN output (negative values kept), i.e. differ from the ReLU's own output (stem.2)
    m = random_model("edge")
    a = gradcam(m, x[:1], 1, layer="stem.1")
    b = gradcam(m, x[:1], 1, layer="stem.2")
    assert not np.allclose(a, b)


def test_alexnet_gradcam_is_coarse_but_defined(x):
    g = gradcam(random_model("alexnet1d"), x, "MI")
    assert g.shape == (4, 1000) and (g >= 0).all()


def test_per_lead_view_sums_to_gradcam_and_follows_the_input(x):
    m = random_model("edge")
    c = int(np.argmax([gradcam(m, x, k).sum() for k in range(5)]))  # a class with a map
    per = gradcam_per_lead(m, x, c)
    assert per.shape == (4, 12, 1000) and (per >= 0).all() and per.max() > 0
    np.testing.assert_allclose(per.sum(axis=1), gradcam(m, x, c), rtol=1e-4, atol=1e-7)
    # a lead that is all zero has input x gradient 0, so gets no share
    x0 = x.copy()
    x0[:, 6] = 0.0
    per0 = gradcam_per_lead(m, x0, c)
    assert np.abs(per0[:, 6]).max() == 0.0
    assert per0[:, 7].max() > 0

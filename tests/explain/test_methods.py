"""The attribution dispatcher and Integrated Gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detak.explain.gradcam import gradcam
from detak.explain.methods import attribute, integrated_gradients, parse_method
from tests.explain.cnn_helpers import fold9_small, random_model


@pytest.fixture(scope="module")
def x():
    return fold9_small(2)[1]


@pytest.mark.parametrize("spec,msg", [
    ("lime", "unknown method 'lime'"),
    ("shap:fast", "method 'shap' takes no ':fast' option"),
    ("lrp:nope", "unknown LRP composite 'nope'"),
    ("ig:fast", "method 'ig' takes no ':fast' option"),
])
def test_bad_method_specs_are_named(spec, msg):
    with pytest.raises(ValueError, match=msg):
        parse_method(spec)


def test_integrated_gradients_complete_to_the_logit_difference(x):
    m = random_model("edge")
    ig = integrated_gradients(m, x, "MI", steps=64)
    with torch.no_grad():
        diff = (m(torch.from_numpy(x))[:, 1] - m(torch.zeros(1, 12, 1000))[0, 1]).numpy()
    # completeness up to the midpoint rule's error
    np.testing.assert_allclose(ig.sum(axis=(1, 2)), diff, rtol=0.05, atol=0.02)


def test_gradcam_method_spreads_the_map_evenly_over_leads(x):
    m = random_model("edge")
    a = attribute(m, x, "MI", "gradcam")
    np.testing.assert_allclose(a.sum(axis=1), gradcam(m, x, "MI"), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(a[:, 0], a[:, 11])


def test_random_method_is_seeded(x):
    m = random_model("edge")
    a, b = attribute(m, x, 1, "random", seed=3), attribute(m, x, 1, "random", seed=3)
    assert np.array_equal(a, b) and not np.array_equal(a, attribute(m, x, 1, "random", seed=4))


def test_shap_without_background_is_named_and_with_it_matches_gradient_shap(x):
    from detak.explain.shap_cnn import gradient_shap

    m = random_model("edge")
    with pytest.raises(ValueError, match="method 'shap' needs background="):
        attribute(m, x, "MI", "shap")
    bg = np.random.default_rng(1).standard_normal((4, 12, 1000)).astype(np.float32)
    a = attribute(m, x, "MI", "shap", background=bg, shap_samples=8, seed=3)
    b = gradient_shap(m, x, "MI", bg, nsamples=8, seed=3)
    assert a.shape == x.shape and np.abs(a).max() > 0
    np.testing.assert_array_equal(a, b)

"""SHAP for the 12-lead CNNs (issue 7, item 6): expected gradients with `shap.GradientExplainer`
against a background sample of training records, read per lead × time segment.

Expected gradients (Erion et al. 2021; SHAP's GradientExplainer) average, over ``nsamples``
draws of a background record x' and a point on the straight line from x' to x, the input
gradient times (x - x'): Integrated Gradients with the baseline drawn from the training data
instead of one fixed input. Its attributions add up, in expectation, to
logit(x) - E[logit(background)], so the sum over a lead × 40 ms cell
(`detak.explain.faithfulness.cell_scores`) is that cell's SHAP value, the lead × time-segment
"players" the issue asks for. A gradient method, not a sampling one: KernelSHAP over the 3,000
lead × 40 ms cells of a record would need many thousands of forward passes per record.

`detak.explain.methods.attribute` calls it as method ``shap``; unlike the other methods it needs
the background data (`training_background`: ``n`` records of the PTB-XL training folds 1-8,
standardised like the model's input), passed as ``background=``.

Cost: ``nsamples`` forward + backward passes per record, like ``ig`` with as many steps (the
default 64 is twice the report's IG), plus the background's share of memory.

>>> import torch
>>> from detak.explain.faithfulness import cell_scores
>>> from detak.models.cnn.registry import build_model
>>> m = build_model("edge").eval()
>>> a = gradient_shap(m, torch.randn(2, 12, 1000), "MI", np.zeros((4, 12, 1000), np.float32),
...                   nsamples=8)
>>> a.shape, cell_scores(a).shape
((2, 12, 1000), (2, 12, 250))
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from detak.explain.gradcam import _as_tensor, class_index
from detak.signal.filters import Standardizer

__all__ = ["gradient_shap", "training_background", "SHAP_NOTE", "TRAIN_FOLDS"]

TRAIN_FOLDS: tuple[int, ...] = tuple(range(1, 9))
SHAP_NOTE = ("SHAP (expected gradients, shap.GradientExplainer) against training records; "
             "values add up to logit - E[logit(background)]")


class _OneLogit(nn.Module):
    """The model's logit of one class, as a (B, 1) output (what GradientExplainer explains)."""

    def __init__(self, model: nn.Module, cls: int) -> None:
        super().__init__()
        self.model = model
        self.cls = cls

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[:, self.cls:self.cls + 1]


def gradient_shap(model: nn.Module, x: torch.Tensor | np.ndarray, cls: int | str,
                  background: np.ndarray | torch.Tensor, *, nsamples: int = 64, seed: int = 0,
                  batch_size: int = 64) -> np.ndarray:
    """SHAP values (B, leads, samples) float32 of the logit of ``cls`` for ``x`` (model units),
    by `shap.GradientExplainer` with ``background`` (K, leads, samples) in the same units.

    >>> from detak.models.cnn.registry import build_model
    >>> gradient_shap(build_model("edge"), np.zeros((1, 12, 1000)), "MI",
    ...               np.zeros((1, 12, 900)))
    Traceback (most recent call last):
    ...
    ValueError: SHAP background records have shape (12, 900); the input's are (12, 1000)
    """
    import shap  # host extra; imported here so that the module can be listed without it

    xt = _as_tensor(x)
    bg = _as_tensor(background)
    if bg.ndim != 3 or tuple(bg.shape[1:]) != tuple(xt.shape[1:]):
        raise ValueError(f"SHAP background records have shape {tuple(bg.shape[1:])}; the "
                         f"input's are {tuple(xt.shape[1:])}")
    if nsamples < 1:
        raise ValueError(f"SHAP needs nsamples >= 1, got {nsamples}")
    model.eval()
    explainer = shap.GradientExplainer(_OneLogit(model, class_index(cls)), bg,
                                       batch_size=batch_size)
    values = explainer.shap_values(xt, nsamples=nsamples, rseed=seed)
    return np.asarray(values, dtype=np.float32).reshape(tuple(xt.shape))


def training_background(standardizer: Standardizer, n: int = 64, seed: int = 0,
                        folds: Sequence[int] = TRAIN_FOLDS) -> np.ndarray:
    """``n`` labelled records of the PTB-XL training ``folds`` (a seeded draw spread evenly over
    the folds), preprocessed and standardised like the model's input: (n, 12, 1000) float32.
    Reads ``$DETAK_DATA``; `FileNotFoundError` or `FoldNotAvailableError` when absent."""
    from detak.models.cnn_data import fold_arrays

    if n < 1:
        raise ValueError(f"the SHAP background needs at least 1 record, got {n}")
    rng = np.random.default_rng(seed)
    per = np.diff(np.linspace(0, n, len(folds) + 1).round().astype(int))
    parts = []
    for fold, k in zip(folds, per, strict=True):
        if k == 0:
            continue
        fa = fold_arrays(int(fold))
        rows = np.sort(rng.choice(np.flatnonzero(fa.labelled), int(k), replace=False))
        parts.append(np.asarray(fa.x[rows], np.float32))
    x = np.concatenate(parts)
    return np.asarray(standardizer.transform(x), np.float32)

"""One entry point for every attribution method: ``attribute(model, x, cls, method)``.

Methods (`parse_method` reads them; the CLI's ``--method``):

* ``gradcam`` — Grad-CAM at the last conv map (`detak.explain.gradcam.gradcam`), a map over
  time only, spread evenly over the 12 leads (each lead gets map / 12) so that it has the
  same (leads, samples) shape as the others; its lead scores are therefore uniform by
  construction.
* ``gradcam_lead`` — the derived per-lead view (`gradcam_per_lead`: Grad-CAM split across
  leads by smoothed |input × gradient|); sums over leads to the Grad-CAM map.
* ``lrp`` or ``lrp:COMPOSITE`` — LRP with a composite of `detak.explain.lrp.COMPOSITES`
  (default ``s1``, S1's rule table with z^B on the input: it needs the per-lead bounds; the
  ``*_flat`` composites give lead-uniform relevance, see `lead_resolved`).
* ``ig`` — Integrated Gradients (Sundararajan et al. 2017) from the all-zero input (in model
  units: the training mean, a flat line), `integrated_gradients`; ``ig`` sums to
  logit(x) - logit(0) up to the Riemann error.
* ``shap`` — SHAP by expected gradients (`detak.explain.shap_cnn.gradient_shap`) against a
  ``background`` sample of training records (`detak.explain.shap_cnn.training_background`),
  ``shap_samples`` gradient passes per record; adds up to logit(x) - E[logit(background)].
* ``random`` — i.i.d. Gaussian attribution (seeded): the floor any method must beat.

All return (B, leads, samples) float32 attribution of the class's logit.

>>> import torch
>>> from detak.models.cnn.registry import build_model
>>> m = build_model("edge").eval()
>>> x = torch.randn(1, 12, 1000)
>>> [attribute(m, x, "MI", k).shape for k in ("gradcam", "ig", "random")]
[(1, 12, 1000), (1, 12, 1000), (1, 12, 1000)]
>>> parse_method("lrp:s1")
('lrp', 's1')
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from detak.explain.gradcam import _as_tensor, _class_vector, gradcam, gradcam_per_lead
from detak.explain.lrp import COMPOSITES, FLAT_FIRST, ZBoxBounds, lrp
from detak.explain.shap_cnn import gradient_shap

__all__ = ["METHOD_KINDS", "DEFAULT_COMPOSITE", "parse_method", "method_label", "attribute",
           "integrated_gradients", "lead_resolved", "method_note", "needs_background",
           "SIGNED"]

METHOD_KINDS: tuple[str, ...] = ("gradcam", "gradcam_lead", "lrp", "ig", "shap", "random")
DEFAULT_COMPOSITE = "s1"
SIGNED: frozenset[str] = frozenset({"lrp", "ig", "shap", "random"})
_KNOWN = "gradcam, gradcam_lead, lrp[:COMPOSITE], ig, shap or random"


def parse_method(spec: str) -> tuple[str, str | None]:
    """``"lrp:COMPOSITE"`` → ("lrp", COMPOSITE); ``"lrp"`` → ("lrp", the default composite);
    other methods → (name, None). `ValueError` names the known methods and composites.

    >>> parse_method("gradcam"), parse_method("lrp")
    (('gradcam', None), ('lrp', 's1'))
    >>> parse_method("lime")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown method 'lime'; use gradcam, gradcam_lead, lrp[:COMPOSITE], ig, shap ...
    """
    kind, _, comp = spec.strip().partition(":")
    kind = kind.lower()
    if kind not in METHOD_KINDS:
        raise ValueError(f"unknown method {spec!r}; use {_KNOWN}")
    if kind == "lrp":
        comp = comp or DEFAULT_COMPOSITE
        if comp not in COMPOSITES:
            raise ValueError(f"unknown LRP composite {comp!r}; known: {', '.join(COMPOSITES)}")
        return kind, comp
    if comp:
        raise ValueError(f"method {kind!r} takes no ':{comp}' option (only lrp:COMPOSITE)")
    return kind, None


def method_label(spec: str) -> str:
    """Canonical name of a method spec (``lrp`` → ``lrp:s1``).

    >>> method_label("LRP"), method_label("ig")
    ('lrp:s1', 'ig')
    """
    kind, comp = parse_method(spec)
    return f"{kind}:{comp}" if comp else kind


def lead_resolved(spec: str) -> bool:
    """Whether the method can tell leads apart: not ``gradcam`` (time only), not the flat
    first-layer LRP composites (relevance spread evenly over the leads), not ``random``.

    >>> [lead_resolved(m) for m in ("gradcam", "gradcam_lead", "lrp:epsilon_plus_flat", "lrp")]
    [False, True, False, True]
    """
    kind, comp = parse_method(spec)
    return kind not in ("gradcam", "random") and comp not in FLAT_FIRST


def needs_background(spec: str) -> bool:
    """Whether `attribute` needs ``background=`` (training records) for the method: ``shap``.

    >>> needs_background("shap"), needs_background("ig")
    (True, False)
    """
    return parse_method(spec)[0] == "shap"


def method_note(spec: str) -> str:
    """What a reader of the method's map should know (empty when nothing to say).

    >>> method_note("gradcam")
    'Grad-CAM (time only; spread evenly over the leads)'
    """
    from detak.explain.gradcam import PER_LEAD_LABEL
    from detak.explain.shap_cnn import SHAP_NOTE

    kind, _ = parse_method(spec)
    if kind == "gradcam_lead":
        return PER_LEAD_LABEL
    if kind == "gradcam":
        return "Grad-CAM (time only; spread evenly over the leads)"
    if kind == "shap":
        return SHAP_NOTE
    if not lead_resolved(spec) and kind == "lrp":
        return "flat first-layer rule: relevance spread evenly over the leads"
    return ""


def integrated_gradients(model: nn.Module, x: torch.Tensor | np.ndarray,
                         cls: int | str | Sequence[int] = "MI", steps: int = 32,
                         baseline: torch.Tensor | np.ndarray | None = None,
                         batch_size: int = 64) -> np.ndarray:
    """Integrated Gradients of the class logit from ``baseline`` (default zeros), midpoint rule
    with ``steps`` points: ``(x - x0) * mean_k grad(x0 + (k + 0.5) / steps * (x - x0))``.

    >>> from detak.models.cnn.registry import build_model
    >>> integrated_gradients(build_model("edge"), np.zeros((12, 1000)), "MI", steps=0)
    Traceback (most recent call last):
    ...
    ValueError: Integrated Gradients needs steps >= 1, got 0
    """
    if steps < 1:
        raise ValueError(f"Integrated Gradients needs steps >= 1, got {steps}")
    xt = _as_tensor(x)
    idx = _class_vector(cls, len(xt))
    x0 = torch.zeros_like(xt) if baseline is None else _as_tensor(baseline).expand_as(xt)
    model.eval()
    alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps
    out = np.empty(tuple(xt.shape), dtype=np.float32)
    per = max(1, batch_size // steps)
    for s in range(0, len(xt), per):
        xb, x0b, ib = xt[s:s + per], x0[s:s + per], idx[s:s + per]
        path = (x0b[:, None] + alphas[None, :, None, None] * (xb - x0b)[:, None])
        path = path.reshape(-1, *xb.shape[1:]).requires_grad_(True)
        with torch.enable_grad():
            logits = model(path)
            cls_rep = ib.repeat_interleave(steps)
            (g,) = torch.autograd.grad(logits.gather(1, cls_rep[:, None]).sum(), path)
        g = g.reshape(len(xb), steps, *xb.shape[1:]).mean(dim=1)
        out[s:s + per] = ((xb - x0b) * g).numpy()
    return out


def attribute(model: nn.Module, x: torch.Tensor | np.ndarray,
              cls: int | str | Sequence[int] = "MI", method: str = "gradcam", *,
              bounds: ZBoxBounds | None = None, ig_steps: int = 32, seed: int = 0,
              background: np.ndarray | torch.Tensor | None = None, shap_samples: int = 64
              ) -> np.ndarray:
    """Attribution (B, leads, samples) float32 of the logit of ``cls`` by ``method`` (see the
    module docstring). ``bounds``: z^B bounds for the ``lrp:epsilon_gamma_box`` / ``lrp:s1``
    composites; ``background``, ``shap_samples``: ``shap``'s training records (model units) and
    gradient samples per record; ``seed``: the ``random`` and ``shap`` draws.

    >>> from detak.models.cnn.registry import build_model
    >>> attribute(build_model("edge"), np.zeros((1, 12, 1000)), "MI", "shap")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: method 'shap' needs background= (training records in model units, see ...)
    """
    kind, comp = parse_method(method)
    xt = _as_tensor(x)
    if kind == "shap":
        if background is None:
            raise ValueError("method 'shap' needs background= (training records in model "
                             "units, see detak.explain.shap_cnn.training_background)")
        return gradient_shap(model, xt, cls, background, nsamples=shap_samples, seed=seed)
    if kind == "gradcam":
        cam = gradcam(model, xt, cls)
        return np.repeat(cam[:, None, :] / xt.shape[1], xt.shape[1], axis=1).astype(np.float32)
    if kind == "gradcam_lead":
        return gradcam_per_lead(model, xt, cls)
    if kind == "lrp":
        return lrp(model, xt, cls, comp or DEFAULT_COMPOSITE, bounds=bounds)
    if kind == "ig":
        return integrated_gradients(model, xt, cls, steps=ig_steps)
    rng = np.random.default_rng(seed)
    return rng.standard_normal(tuple(xt.shape)).astype(np.float32)

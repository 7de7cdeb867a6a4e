"""Grad-CAM for the 12-lead CNNs (host, torch): *when* in the record the model saw its evidence.

`gradcam` is Selvaraju et al.'s Grad-CAM as S1 uses it: at a layer (default: the last
convolutional map, ``model.features``) with activations ``A`` (C × T'),
``alpha_k = mean_t d logit_c / d A_k(t)`` and ``map = ReLU(sum_k alpha_k A_k)``, linearly
interpolated to the input length (``align_corners=False``). The map is in logit units per step
and is **not** normalised, so it equals, number for number, the class activation map the export
issue fuses into the kiosk's graph: for a GAP + Linear head ``alpha = w_c / T'`` and the map is
``ReLU(w_c · A) / T'`` (`cam_closed_form`; ``detak.export.cam.GapCamHead``).

`gradcam_per_lead` is a *derived* per-lead view, labelled as such everywhere it is used: the
temporal Grad-CAM map split across the 12 leads in proportion to the (smoothed) magnitude of
input × gradient of each lead. Grad-CAM proper has no lead axis (the convolutions mix all
leads in the first layer); the split keeps ``sum over leads = the Grad-CAM map`` at every step.

Torch is imported by this module: host only.

>>> import torch
>>> from detak.models.cnn.registry import build_model
>>> m = build_model("edge").eval()
>>> x = torch.randn(2, 12, 1000)
>>> cam = gradcam(m, x, "MI")
>>> cam.shape, bool((cam >= 0).all())
((2, 1000), True)
>>> bool(np.allclose(cam, cam_closed_form(m, x, "MI"), atol=1e-6))
True
>>> gradcam_per_lead(m, x, "MI").shape
(2, 12, 1000)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from detak.models.cnn_data import CLASSES

__all__ = ["LayerNotFoundError", "class_index", "gradcam", "gradcam_per_lead",
           "cam_closed_form", "layer_activation_gradient", "PER_LEAD_LABEL"]

PER_LEAD_LABEL = ("Grad-CAM split across leads by smoothed |input x gradient| "
                  "(derived view, not Grad-CAM proper)")


class LayerNotFoundError(ValueError):
    """The layer asked for is not a submodule of the model (names the known layers)."""


def class_index(cls: int | str) -> int:
    """Index of a class given by name (``"MI"``) or index (0-4) in `CLASSES`.

    >>> class_index("MI"), class_index(3)
    (1, 3)
    >>> class_index("AFIB")
    Traceback (most recent call last):
    ...
    ValueError: unknown class 'AFIB'; the CNNs predict NORM, MI, STTC, CD, HYP
    """
    if isinstance(cls, str) and not cls.strip().lstrip("-").isdigit():
        name = cls.strip().upper()
        if name not in CLASSES:
            raise ValueError(f"unknown class {cls!r}; the CNNs predict {', '.join(CLASSES)}")
        return CLASSES.index(name)
    i = int(cls)
    if not 0 <= i < len(CLASSES):
        raise ValueError(f"class index {i} out of range 0-{len(CLASSES) - 1} "
                         f"({', '.join(CLASSES)})")
    return i


def _as_tensor(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x, dtype=np.float32)) if not isinstance(x, torch.Tensor) \
        else x.detach().float()
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3:
        raise ValueError(f"expected input (batch, leads, samples), got shape {tuple(t.shape)}")
    return t


def _class_vector(cls: int | str | Sequence[int] | np.ndarray, n: int) -> torch.Tensor:
    if isinstance(cls, (str, int, np.integer)):
        return torch.full((n,), class_index(cls), dtype=torch.long)
    idx = torch.as_tensor([class_index(int(c)) for c in cls], dtype=torch.long)
    if len(idx) != n:
        raise ValueError(f"{len(idx)} classes given for {n} records")
    return idx


def layer_activation_gradient(model: nn.Module, x: torch.Tensor | np.ndarray,
                              cls: int | str | Sequence[int], layer: str | None = None
                              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(activations A (B, C, T'), d logit_cls / d A, logits (B, 5)) at ``layer``: a submodule
    name of ``model`` (its output), or None for ``model.features`` (the last conv map).

    The model runs in eval mode. A layer whose output is later modified in place (a
    batch-norm followed by an in-place ReLU) is read before the modification.
    """
    model.eval()
    xt = _as_tensor(x)
    idx = _class_vector(cls, len(xt))
    store: dict[str, torch.Tensor] = {}
    handle = None
    if layer is None:
        if not hasattr(model, "features"):
            raise LayerNotFoundError(f"{type(model).__name__} has no features(); name a layer")
        original = model.features

        def features(inp: torch.Tensor) -> torch.Tensor:
            a = original(inp)
            store["a"] = a
            return a.clone()

        model.features = features  # instance attribute shadows the method
    else:
        modules = dict(model.named_modules())
        if layer not in modules or not layer:
            known = ", ".join(n for n, m in model.named_modules()
                              if n and isinstance(m, (nn.Conv1d, nn.Sequential)))
            raise LayerNotFoundError(f"{type(model).__name__} has no layer {layer!r}; "
                                     f"convolution/sequential layers: {known}")

        def hook(_mod: nn.Module, _inp: tuple, out: torch.Tensor) -> torch.Tensor:
            store["a"] = out
            return out.clone()

        handle = modules[layer].register_forward_hook(hook)
    try:
        with torch.enable_grad():
            logits = model(xt)
            a = store["a"]
            if a.ndim != 3:
                raise LayerNotFoundError(f"layer {layer!r} gives shape {tuple(a.shape)}, not "
                                         "(batch, channels, time)")
            target = logits.gather(1, idx[:, None]).sum()
            (grad,) = torch.autograd.grad(target, a)
    finally:
        if layer is None:
            del model.features
        elif handle is not None:
            handle.remove()
    return a.detach(), grad.detach(), logits.detach()


def _upsample(m: torch.Tensor, n: int) -> torch.Tensor:
    if m.shape[-1] == n:
        return m
    return F.interpolate(m[:, None], size=n, mode="linear", align_corners=False)[:, 0]


def gradcam(model: nn.Module, x: torch.Tensor | np.ndarray,
            cls: int | str | Sequence[int] = "MI", layer: str | None = None) -> np.ndarray:
    """Grad-CAM maps (B, n_samples) float32 for class ``cls`` (one for all records, or one per
    record) at ``layer`` (default: the last conv map), upsampled to the input length.

    >>> from detak.models.cnn.registry import build_model
    >>> gradcam(build_model("resnet1d"), np.zeros((12, 1000), np.float32), "NORM").shape
    (1, 1000)
    """
    xt = _as_tensor(x)
    a, g, _ = layer_activation_gradient(model, xt, cls, layer)
    alpha = g.mean(dim=-1, keepdim=True)
    cam = torch.relu((alpha * a).sum(dim=1))
    return _upsample(cam, xt.shape[-1]).numpy().astype(np.float32)


def cam_closed_form(model: nn.Module, x: torch.Tensor | np.ndarray,
                    cls: int | str | Sequence[int] = "MI") -> np.ndarray:
    """The class activation map of a GAP + Linear head computed without gradients:
    ``ReLU(head.weight[c] @ features(x)) / T'`` upsampled like `gradcam` — Grad-CAM's exact
    value for such heads (the fused map of the export issue). `ValueError` for other heads.

    >>> from detak.models.cnn.registry import build_model
    >>> cam_closed_form(build_model("alexnet1d"), np.zeros((1, 12, 1000)))
    Traceback (most recent call last):
    ...
    ValueError: AlexNet1d has no GAP + Linear head: its CAM has no closed form here
    """
    head, pool = getattr(model, "head", None), getattr(model, "pool", None)
    if not (isinstance(head, nn.Linear) and isinstance(pool, nn.AdaptiveAvgPool1d)
            and pool.output_size in (1, (1,))):
        raise ValueError(f"{type(model).__name__} has no GAP + Linear head: its CAM has no "
                         "closed form here")
    model.eval()
    xt = _as_tensor(x)
    idx = _class_vector(cls, len(xt))
    with torch.no_grad():
        a = model.features(xt)
        w = head.weight[idx]  # (B, C)
        cam = torch.relu(torch.einsum("bc,bct->bt", w, a)) / a.shape[-1]
    return _upsample(cam, xt.shape[-1]).numpy().astype(np.float32)


def _smooth(v: torch.Tensor, width: int) -> torch.Tensor:
    if width <= 1:
        return v
    b, c, n = v.shape
    kernel = torch.ones(1, 1, width, dtype=v.dtype) / width
    out = F.conv1d(F.pad(v.reshape(b * c, 1, n), (width // 2, width - 1 - width // 2),
                         mode="replicate"), kernel)
    return out.reshape(b, c, n)


def gradcam_per_lead(model: nn.Module, x: torch.Tensor | np.ndarray,
                     cls: int | str | Sequence[int] = "MI", layer: str | None = None,
                     smooth: int | None = None) -> np.ndarray:
    """`PER_LEAD_LABEL`: (B, leads, n_samples) float32, non-negative, summing over leads to the
    `gradcam` map. Lead shares at step t are ``s_l(t) / sum_l s_l(t)`` with ``s`` the
    moving average of ``|x * d logit / d x|`` over ``smooth`` samples (default: the input
    length / the map's length, one step of the conv map); equal shares where all are 0.
    """
    xt = _as_tensor(x)
    cam = torch.from_numpy(gradcam(model, xt, cls, layer))
    idx = _class_vector(cls, len(xt))
    model.eval()
    xg = xt.clone().requires_grad_(True)
    with torch.enable_grad():
        logits = model(xg)
        (g,) = torch.autograd.grad(logits.gather(1, idx[:, None]).sum(), xg)
    if smooth is None:
        a, _, _ = layer_activation_gradient(model, xt[:1], idx[:1], layer)
        smooth = max(1, int(round(xt.shape[-1] / a.shape[-1])))
    s = _smooth((xt * g).abs().detach(), int(smooth))
    total = s.sum(dim=1, keepdim=True)
    share = torch.where(total > 0, s / total.clamp_min(1e-30),
                        torch.full_like(s, 1.0 / s.shape[1]))
    return (share * cam[:, None, :]).numpy().astype(np.float32)

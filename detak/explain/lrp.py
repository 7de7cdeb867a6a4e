"""Layer-wise relevance propagation for the 12-lead CNNs with zennit (host, torch): *which lead*
and which samples carry the evidence for a class, signed.

Composites (`COMPOSITES`, selectable by name; S1's rule table: LRP-0 / ε for the top and
middle layers, γ or αβ for lower convolutions, flat / w² / z^B for the first layer):

=========================  ===============================================================
``epsilon``                LRP-ε (ε = 1e-6: numerically LRP-0) in every conv and dense layer
``epsilon_plus_flat``      zennit's EpsilonPlusFlat rules: flat input layer(s), z+ convs, ε dense
``epsilon_gamma_box``      zennit's EpsilonGammaBox rules: z^B input layer(s) (per-lead bounds),
                           γ=0.25 convs, ε dense
``epsilon_alpha2_beta1``   zennit's EpsilonAlpha2Beta1: α=2 β=1 convs, ε dense
``epsilon_alpha2_beta1_flat``  the same with flat input layer(s)
``s1``                     S1's table by depth: LRP-0 in the dense (top) layers, ε=0.25 in the
                           upper half of the convs (middle), γ=0.25 in the lower half, z^B in
                           every conv that reads the input (per-lead bounds)
``s1_flat``, ``s1_wsquare``  ``s1`` with the flat or w² rule in the input layer(s)
=========================  ===============================================================

The input layers are every conv that reads the input directly or through weight-free pooling
(`_layer_order`): one for AlexNet-1D, ResNet-1D and edge; three for InceptionTime (the first
module's bottleneck and max-pool branch, and the first residual shortcut). zennit's own
first-layer composites put the first-layer rule on the first conv in module order only, so
detak builds all of them by layer name.

z^B needs the lowest and highest value of each lead of the (standardised) input:
`zbox_bounds` takes them from the training folds 1-8 of PTB-XL (min and max per lead after
filtering, cached) and maps them through the model's standardizer.

Batch-norm and the other non-standard parts are canonized (`canonizers`, applied only while the
composite is registered, then reverted): every ``BatchNorm1d`` is merged into the convolution
before it (a slice of it per branch after InceptionTime's concatenation) or into the linear
layer after it (the concat-pool head: BN → dropout → Linear), and is left as an exact identity;
residual additions become zennit ``Sum`` modules (relevance split in proportion to each
branch's contribution, the ε rule of ResNets in zennit's ResNet canonizer) with a ReLU module
of their own; the head's time mean becomes an ``AdaptiveAvgPool1d`` (rule: proportional,
zennit's Norm). Max pooling passes relevance to the arg-max (the gradient), which conserves it.
An un-merged batch-norm is an error (`CanonizerError`), not a silent wrong answer.

The flat first-layer rule (``*_flat`` composites, `FLAT_FIRST`) ignores input values and
weights, so it spreads relevance evenly over the 12 leads: use z^B (``s1``,
``epsilon_gamma_box``), w² or the αβ / ε composites for lead relevance.

The explained quantity is the class's logit: the output relevance is the logit, so input
relevance sums to it up to what biases absorb (exactly, for bias-free models and the ε/0
rules: `tests/explain/test_lrp.py`).

>>> import torch
>>> from detak.models.cnn.registry import build_model
>>> m = build_model("edge").eval()
>>> r = lrp(m, torch.randn(1, 12, 1000), "MI", "epsilon_plus_flat")
>>> r.shape, r.dtype
((1, 12, 1000), dtype('float32'))
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from zennit.canonizers import AttributeCanonizer, Canonizer, CompositeCanonizer
from zennit.composites import (
    EpsilonAlpha2Beta1,
    LayerMapComposite,
    layer_map_base,
)
from zennit.core import Composite
from zennit.layer import Sum
from zennit.rules import AlphaBeta, Epsilon, Flat, Gamma, WSquare, ZBox, ZPlus

from detak.explain.gradcam import _as_tensor, _class_vector
from detak.models.cnn.heads import ConcatPoolHead
from detak.models.cnn.inceptiontime import InceptionModule, InceptionTime
from detak.models.cnn.resnet1d import BasicBlock1d
from detak.signal.filters import Standardizer

__all__ = ["COMPOSITES", "FLAT_FIRST", "NEEDS_BOUNDS", "CanonizerError", "BoundsRequiredError",
           "canonizers", "make_composite", "lrp", "zbox_bounds", "training_lead_range",
           "ZBoxBounds"]

COMPOSITES: dict[str, str] = {
    "epsilon": "LRP-epsilon (1e-6, ~LRP-0) in every conv and dense layer",
    "epsilon_plus_flat": "flat first layer, z+ convs, epsilon dense (zennit EpsilonPlusFlat)",
    "epsilon_gamma_box": "z^B first layer, gamma=0.25 convs, epsilon dense (zennit "
                         "EpsilonGammaBox)",
    "epsilon_alpha2_beta1": "alpha=2 beta=1 convs, epsilon dense (zennit EpsilonAlpha2Beta1)",
    "epsilon_alpha2_beta1_flat": "flat first layer, alpha2-beta1 convs, epsilon dense",
    "s1": "S1's table: LRP-0 dense, epsilon=0.25 upper convs, gamma=0.25 lower convs, z^B on "
          "the input layer(s)",
    "s1_flat": "S1's table with the flat rule on the input layer(s)",
    "s1_wsquare": "S1's table with the w^2 rule on the input layer(s)",
}
NEEDS_BOUNDS: frozenset[str] = frozenset({"epsilon_gamma_box", "s1"})
# the flat rule gives every input of a first-layer neuron's receptive field the same share,
# whatever its value or weight: relevance is spread evenly over the 12 leads, so lead scores
# of these composites are uniform by construction (their time profile is still informative)
FLAT_FIRST: frozenset[str] = frozenset({"epsilon_plus_flat", "epsilon_alpha2_beta1_flat",
                                        "s1_flat"})
S1_EPSILON = 0.25
S1_GAMMA = 0.25


class CanonizerError(RuntimeError):
    """A model part the LRP canonizers do not know how to handle (names the module)."""


class BoundsRequiredError(ValueError):
    """A z^B composite was asked for without the per-lead input bounds."""


# --- canonizers ---------------------------------------------------------------------------

def _skip(m: nn.Module) -> bool:
    return isinstance(m, (nn.Dropout, nn.Identity))


class _BatchNormMerge(Canonizer):
    """One batch-norm merged into convolutions before it (each with the slice of channels it
    produces) or into one linear layer after it; reverted by `remove`."""

    def __init__(self, bn: nn.BatchNorm1d | None = None,
                 before: Sequence[tuple[nn.Module, slice]] = (),
                 after: nn.Linear | None = None) -> None:
        self.bn, self.before, self.after = bn, list(before), after
        self.saved: list[tuple[nn.Module, torch.Tensor, torch.Tensor | None]] = []
        self.saved_bn: dict[str, torch.Tensor] = {}

    def apply(self, root_module: nn.Module) -> list[Canonizer]:  # pragma: no cover - unused
        return []

    def copy(self) -> _BatchNormMerge:
        return _BatchNormMerge(self.bn, self.before, self.after)

    def register(self) -> None:
        bn = self.bn
        with torch.no_grad():
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            shift = bn.bias - bn.running_mean * scale
            self.saved_bn = {k: getattr(bn, k).data.clone()
                             for k in ("weight", "bias", "running_mean", "running_var")}
            targets = [m for m, _ in self.before] + ([self.after] if self.after else [])
            self.saved = [(m, m.weight.data.clone(),
                           None if m.bias is None else m.bias.data.clone()) for m in targets]
            for conv, sl in self.before:
                s, t = scale[sl], shift[sl]
                b = conv.bias.data if conv.bias is not None else torch.zeros_like(s)
                new_w = conv.weight.data * s[:, None, None]
                if conv.bias is None:
                    conv.bias = nn.Parameter(torch.zeros_like(s))
                conv.weight.data = new_w
                conv.bias.data = b * s + t
            if self.after is not None:
                lin = self.after
                b = lin.bias.data if lin.bias is not None else torch.zeros(lin.out_features)
                new_b = b + lin.weight.data @ shift
                lin.weight.data = lin.weight.data * scale[None, :]
                if lin.bias is None:
                    lin.bias = nn.Parameter(torch.zeros(lin.out_features))
                lin.bias.data = new_b
            # the batch-norm becomes an exact identity: (x - 0) / sqrt(1 - eps + eps) * 1 + 0
            bn.weight.data = torch.ones_like(bn.weight)
            bn.bias.data = torch.zeros_like(bn.bias)
            bn.running_mean.data = torch.zeros_like(bn.running_mean)
            bn.running_var.data = torch.full_like(bn.running_var, 1.0 - bn.eps)

    def remove(self) -> None:
        for m, w, b in self.saved:
            m.weight.data = w
            if b is None:
                m.bias = None
            else:
                m.bias.data = b
        for k, v in self.saved_bn.items():
            getattr(self.bn, k).data = v


def _find_merges(root: nn.Module) -> list[_BatchNormMerge]:
    """Every batch-norm of detak's CNNs paired with the layer(s) it merges into."""
    merges: dict[int, _BatchNormMerge] = {}

    def add(bn: nn.BatchNorm1d, before: Sequence[tuple[nn.Module, slice]] = (),
            after: nn.Linear | None = None) -> None:
        merges.setdefault(id(bn), _BatchNormMerge(bn, before, after))

    for mod in root.modules():
        if isinstance(mod, BasicBlock1d):
            add(mod.bn1, [(mod.conv1, slice(None))])
            add(mod.bn2, [(mod.conv2, slice(None))])
        elif isinstance(mod, InceptionModule):
            branches = [*mod.convs, mod.pool_branch[-1]]
            start, parts = 0, []
            for conv in branches:
                parts.append((conv, slice(start, start + conv.out_channels)))
                start += conv.out_channels
            if start != mod.bn.num_features:
                raise CanonizerError(f"InceptionModule: branches give {start} channels, its "
                                     f"batch-norm has {mod.bn.num_features}")
            add(mod.bn, parts)
        elif isinstance(mod, nn.Sequential):
            kids = [k for k in mod.children() if not _skip(k)]
            for prev, nxt in zip(kids[:-1], kids[1:], strict=True):
                if (isinstance(prev, nn.Conv1d) and isinstance(nxt, nn.BatchNorm1d)
                        and prev.out_channels == nxt.num_features):
                    add(nxt, [(prev, slice(None))])
                elif (isinstance(prev, nn.BatchNorm1d) and isinstance(nxt, nn.Linear)
                      and prev.num_features == nxt.in_features):
                    add(prev, after=nxt)
    names = {id(m): n for n, m in root.named_modules()}
    missing = [names[id(m)] for m in root.modules()
               if isinstance(m, nn.modules.batchnorm._BatchNorm) and id(m) not in merges]
    if missing:
        raise CanonizerError("LRP: batch-norm layer(s) " + ", ".join(missing) + " of "
                             f"{type(root).__name__} cannot be merged into a neighbouring "
                             "conv/linear layer; LRP would be wrong")
    return list(merges.values())


class MergeBatchNorm1d(Canonizer):
    """Merge every batch-norm of detak's CNNs into its neighbouring layer (see module doc)."""

    def apply(self, root_module: nn.Module) -> list[Canonizer]:
        found = _find_merges(root_module)
        for m in found:
            m.register()
        return found

    def register(self) -> None:  # pragma: no cover - instances come from apply
        pass

    def remove(self) -> None:  # pragma: no cover
        pass

    def copy(self) -> MergeBatchNorm1d:
        return MergeBatchNorm1d()


def _basic_block_forward(self: BasicBlock1d, x: torch.Tensor) -> torch.Tensor:
    y = self.canonizer_relu1(self.bn1(self.conv1(x)))
    y = self.bn2(self.conv2(y))
    return self.canonizer_relu2(self.canonizer_sum(torch.stack([y, self.shortcut(x)], dim=-1)))


def _inception_features(self: InceptionTime, x: torch.Tensor) -> torch.Tensor:
    res = x
    for d, module in enumerate(self.modules_):
        x = module(x)
        if str(d) in self.shortcuts:
            s = self.canonizer_sums[str(d)](torch.stack([x, self.shortcuts[str(d)](res)], -1))
            x = self.canonizer_relus[str(d)](s)
            res = x
    return x


def _concat_head_forward(self: ConcatPoolHead, feats: torch.Tensor) -> torch.Tensor:
    pooled = torch.cat([feats.amax(dim=-1), self.canonizer_avg(feats)[..., 0]], dim=1)
    return self.mlp(pooled)


def _attribute_map(name: str, module: nn.Module) -> dict | None:
    if isinstance(module, BasicBlock1d):
        return {"forward": _basic_block_forward.__get__(module), "canonizer_sum": Sum(),
                "canonizer_relu1": nn.ReLU(), "canonizer_relu2": nn.ReLU()}
    if isinstance(module, InceptionTime):
        keys = list(module.shortcuts.keys())
        return {"features": _inception_features.__get__(module),
                "canonizer_sums": nn.ModuleDict({k: Sum() for k in keys}),
                "canonizer_relus": nn.ModuleDict({k: nn.ReLU() for k in keys})}
    if isinstance(module, ConcatPoolHead):
        return {"forward": _concat_head_forward.__get__(module),
                "canonizer_avg": nn.AdaptiveAvgPool1d(1)}
    return None


def canonizers() -> list[Canonizer]:
    """The canonizers for detak's CNNs: batch-norm merging, residual sums, the head's mean."""
    return [CompositeCanonizer([MergeBatchNorm1d(), AttributeCanonizer(_attribute_map)])]


# --- z^B bounds ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ZBoxBounds:
    """Per-lead lowest and highest input value (model units, i.e. standardised), shape (12,)."""

    low: np.ndarray
    high: np.ndarray

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        low = torch.as_tensor(np.asarray(self.low, np.float32))[None, :, None]
        high = torch.as_tensor(np.asarray(self.high, np.float32))[None, :, None]
        return low, high


def training_lead_range(folds: Sequence[int] | None = None, cache: bool = True
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Per-lead min and max (mV, after S1's filters) over the PTB-XL training folds (1-8 by
    default), cached as JSON in ``cache_dir()/explain`` (keyed by the folds' data checksums and
    the preprocessing key)."""
    from detak.data.paths import cache_dir
    from detak.models.cnn_data import TRAIN_FOLDS, _default_ptb, _fold_checksum, fold_arrays
    from detak.models.cnn_data import preprocessing_key as pkey

    folds = tuple(int(f) for f in (folds or TRAIN_FOLDS))
    ptb = _default_ptb()
    h = hashlib.sha256(pkey().encode())
    for f in folds:
        ids, raw = ptb.load_fold(f)
        h.update(_fold_checksum(ids, raw).encode())
    path = cache_dir() / "explain" / f"lead_range_{h.hexdigest()[:16]}.json"
    if cache and path.is_file():
        d = json.loads(path.read_text())
        return np.asarray(d["min_mv"]), np.asarray(d["max_mv"])
    lo = np.full(12, np.inf)
    hi = np.full(12, -np.inf)
    for f in folds:
        x = fold_arrays(f).x
        for s in range(0, len(x), 512):
            chunk = np.asarray(x[s:s + 512])
            lo = np.minimum(lo, chunk.min(axis=(0, 2)))
            hi = np.maximum(hi, chunk.max(axis=(0, 2)))
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"folds": list(folds), "min_mv": lo.tolist(),
                                    "max_mv": hi.tolist()}))
    return lo, hi


def zbox_bounds(standardizer: Standardizer, lead_range: tuple[np.ndarray, np.ndarray] | None
                = None) -> ZBoxBounds:
    """z^B bounds in model units: the training folds' per-lead range (`training_lead_range`,
    unless ``lead_range`` (min_mv, max_mv) is given) through ``standardizer``.

    >>> s = Standardizer([0.0], [0.5], False)
    >>> b = zbox_bounds(s, (np.full(12, -2.0), np.full(12, 3.0)))
    >>> float(b.low[0]), float(b.high[0])
    (-4.0, 6.0)
    """
    lo, hi = lead_range if lead_range is not None else training_lead_range()
    lo = np.asarray(lo, np.float64).reshape(1, -1, 1)
    hi = np.asarray(hi, np.float64).reshape(1, -1, 1)
    low = np.asarray(standardizer.transform(lo), np.float64).reshape(-1)
    high = np.asarray(standardizer.transform(hi), np.float64).reshape(-1)
    return ZBoxBounds(np.minimum(low, high), np.maximum(low, high))


# --- composites ---------------------------------------------------------------------------

def _layer_order(model: nn.Module, n_leads: int = 12, n_samples: int = 1000
                 ) -> tuple[list[str], list[str], set[str]]:
    """(convs in execution order, linears in execution order, convs reading the input — directly
    or through weight-free pooling, like InceptionTime's max-pool branch)."""
    names = {id(m): n for n, m in model.named_modules()}
    convs: list[str] = []
    linears: list[str] = []
    input_layers: set[str] = set()
    x = torch.zeros(1, n_leads, n_samples)
    input_like: list[torch.Tensor] = [x]   # the input and weight-free views of it

    def hook(mod: nn.Module, inp: tuple) -> None:
        name = names[id(mod)]
        if isinstance(mod, nn.Conv1d):
            if name not in convs:
                convs.append(name)
            if any(inp[0] is t for t in input_like):
                input_layers.add(name)
        elif name not in linears:
            linears.append(name)

    def pooled(mod: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        if any(inp[0] is t for t in input_like):
            input_like.append(out)

    handles = [m.register_forward_pre_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv1d, nn.Linear))]
    handles += [m.register_forward_hook(pooled) for m in model.modules()
                if isinstance(m, (nn.MaxPool1d, nn.AvgPool1d, nn.Identity, nn.Dropout))]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for h in handles:
            h.remove()
    return convs, linears, input_layers


class _NamedRules(Composite):
    """Rules by module name, then by type (zennit's base map: activations, sums, pooling)."""

    def __init__(self, by_name: dict[str, object], canonizer_list: list[Canonizer]) -> None:
        self.by_name = by_name
        self.base = layer_map_base(1e-6)
        super().__init__(module_map=self._map, canonizers=canonizer_list)

    def _map(self, ctx: dict, name: str, module: nn.Module) -> object | None:
        if name in self.by_name:
            return self.by_name[name]
        return next((hook for types, hook in self.base if isinstance(module, types)), None)


def make_composite(name: str, model: nn.Module, bounds: ZBoxBounds | None = None) -> Composite:
    """The zennit composite ``name`` (`COMPOSITES`) for ``model``, with detak's canonizers.

    >>> from detak.models.cnn.registry import build_model
    >>> make_composite("epsilon_gamma_box", build_model("edge"))
    Traceback (most recent call last):
    ...
    detak.explain.lrp.BoundsRequiredError: LRP composite 'epsilon_gamma_box' uses the z^B rule: \
give the per-lead input bounds (zbox_bounds(standardizer))
    """
    if name not in COMPOSITES:
        raise ValueError(f"unknown LRP composite {name!r}; known: {', '.join(COMPOSITES)}")
    if name in NEEDS_BOUNDS and bounds is None:
        raise BoundsRequiredError(f"LRP composite {name!r} uses the z^B rule: give the "
                                  "per-lead input bounds (zbox_bounds(standardizer))")
    canon = canonizers()
    if name == "epsilon":
        conv_types = (nn.Conv1d, nn.Linear)
        return LayerMapComposite(layer_map_base() + [(conv_types, Epsilon(epsilon=1e-6))],
                                 canonizers=canon)
    if name == "epsilon_alpha2_beta1":
        return EpsilonAlpha2Beta1(canonizers=canon)
    # the rest are built by layer name: the input rule on every input layer (zennit's
    # EpsilonPlusFlat / EpsilonGammaBox / EpsilonAlpha2Beta1Flat rules and defaults; S1's table)
    convs, linears, inputs = _layer_order(model)
    rest = [c for c in convs if c not in inputs]
    if name in NEEDS_BOUNDS:
        low, high = bounds.tensors()
        in_rule: Callable[[], object] = lambda: ZBox(low=low, high=high)  # noqa: E731
    else:
        in_rule = WSquare if name == "s1_wsquare" else Flat
    rules: dict[str, object] = {c: in_rule() for c in inputs}
    if name.startswith("s1"):   # by depth: γ in the lower half, ε in the upper, LRP-0 dense
        half = len(rest) // 2
        rules.update({c: Gamma(gamma=S1_GAMMA) for c in rest[:half]})
        rules.update({c: Epsilon(epsilon=S1_EPSILON) for c in rest[half:]})
        rules.update({lin: Epsilon(epsilon=1e-9) for lin in linears})
    else:
        conv_rule: Callable[[], object] = {
            "epsilon_plus_flat": ZPlus, "epsilon_gamma_box": lambda: Gamma(gamma=0.25),
            "epsilon_alpha2_beta1_flat": lambda: AlphaBeta(alpha=2, beta=1)}[name]
        rules.update({c: conv_rule() for c in rest})
        rules.update({lin: Epsilon(epsilon=1e-6) for lin in linears})
    return _NamedRules(rules, canon)


def lrp(model: nn.Module, x: torch.Tensor | np.ndarray, cls: int | str | Sequence[int] = "MI",
        composite: str = "epsilon_plus_flat", bounds: ZBoxBounds | None = None,
        batch_size: int = 64) -> np.ndarray:
    """LRP relevance (B, leads, samples) float32 of the logit of ``cls`` (one class, or one per
    record) with the composite ``composite`` (`COMPOSITES`); the model is restored afterwards.

    >>> from detak.models.cnn.registry import build_model
    >>> lrp(build_model("edge"), np.zeros((12, 1000), np.float32), "MI", "nope")
    Traceback (most recent call last):
    ...
    ValueError: unknown LRP composite 'nope'; known: epsilon, epsilon_plus_flat, \
epsilon_gamma_box, epsilon_alpha2_beta1, epsilon_alpha2_beta1_flat, s1, s1_flat, s1_wsquare
    """
    xt = _as_tensor(x)
    idx = _class_vector(cls, len(xt))
    model.eval()
    comp = make_composite(composite, model, bounds)
    out = np.empty(tuple(xt.shape), dtype=np.float32)
    with comp.context(model) as modified:
        for s in range(0, len(xt), batch_size):
            xb = xt[s:s + batch_size].clone().requires_grad_(True)
            ib = idx[s:s + batch_size]
            with torch.enable_grad():
                logits = modified(xb)
                onehot = torch.zeros_like(logits)
                onehot[torch.arange(len(xb)), ib] = 1.0
                (rel,) = torch.autograd.grad(logits, xb, grad_outputs=onehot * logits.detach())
            out[s:s + batch_size] = rel.detach().numpy()
    return out


def relevance_dir() -> Path:
    """Where bounds and other LRP caches live: ``cache_dir()/explain``."""
    from detak.data.paths import cache_dir

    return cache_dir() / "explain"

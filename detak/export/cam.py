"""Grad-CAM fused into the forward pass, and the graph that gets exported (host only: torch).

Grad-CAM (Selvaraju et al. 2017) weights the last convolutional feature map ``A`` (C × T) by
``alpha_k = mean_t d logit_c / d A_k(t)`` and keeps ``ReLU(sum_k alpha_k A_k)``. For the heads
of detak's CNNs the gradient is known in closed form, so the map is computed in the forward
pass and the kiosk needs no gradients:

* **GAP + Linear** (`edge`): ``logit_c = w_c · mean_t A + b_c``, so ``alpha = w_c / T`` and the
  map is ``ReLU(w_c · A) / T`` — the class activation map (Zhou et al. 2016).
* **Concat pooling + MLP** (`resnet1d`, `inceptiontime`; `ConcatPoolHead` in eval mode):
  ``logit = W2 · BN2(ReLU(W1 · BN1([max_t A, mean_t A]) + b1)) + b2``. With the batch-norms
  folded into the linears, ``g = d logit_c / d [max, mean] = (W2'_c ⊙ 1[h > 0]) W1'``, and
  since the max of each channel passes its whole gradient to its arg-max step(s) and the mean
  ``1/T`` to every step, ``alpha_k = (g_max,k + g_mean,k) / T`` — exact, ties included.
* Other heads (`alexnet1d`: max-pool, adaptive average pooling to 6 steps, three linears)
  export without a map (`cam_kind` is None).

The exported graph (`ExportGraph`) takes standardised (B, 12, 1000) and returns a dict:
``logits`` (B, 5), ``probs`` (B, 5) and, with a map, ``cam_mi`` and ``cam_top`` (B, 1000): the
maps of the MI class and of the highest-scoring class (first arg-max of the logits), computed
on the T steps of the feature map and linearly interpolated to the input length (as
``F.interpolate(..., "linear", align_corners=False)``; `interpolation_matrix`).
The head and the map run in float even in int8 models (`FLOAT_MODULES` are left
unquantized): they cost < 0.1 % of the MACs and keep the probabilities' resolution. AlexNet's
head holds most of its weights, so only its last linear layer and the sigmoid stay in float.

`reference_gradcam` is the textbook autograd Grad-CAM the fused maps are tested against.

>>> import torch
>>> from detak.models.cnn.registry import build_model
>>> g = export_graph(build_model("edge"))
>>> out = g(torch.zeros(2, 12, 1000))
>>> sorted(out), tuple(out["cam_top"].shape)
(['cam_mi', 'cam_top', 'logits', 'probs'], (2, 1000))
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MI_INDEX", "OUTPUTS", "CAM_OUTPUTS", "cam_kind", "fold_batchnorm", "FeatureBody",
           "interpolation_matrix", "MATMUL_UPSAMPLE_MAX_STEPS",
           "GapCamHead", "ConcatPoolCamHead", "PlainHead", "ExportGraph", "export_graph",
           "reference_gradcam", "CAM_HEADS", "FLOAT_MODULES", "LogitsOut"]

MI_INDEX = 1  # NORM, MI, STTC, CD, HYP
OUTPUTS: tuple[str, ...] = ("logits", "probs")
CAM_OUTPUTS: tuple[str, ...] = ("cam_mi", "cam_top")


def cam_kind(model: nn.Module) -> str | None:
    """``"gap"`` (GAP + Linear head), ``"concat_pool"`` (`ConcatPoolHead`) or None (no fused
    Grad-CAM possible: AlexNet-1D's head).

    >>> from detak.models.cnn.registry import build_model
    >>> [cam_kind(build_model(n)) for n in ("edge", "resnet1d", "alexnet1d")]
    ['gap', 'concat_pool', None]
    """
    from detak.models.cnn.heads import ConcatPoolHead

    head = getattr(model, "head", None)
    if isinstance(head, nn.Linear) and isinstance(getattr(model, "pool", None),
                                                  nn.AdaptiveAvgPool1d):
        return "gap" if model.pool.output_size in (1, (1,)) else None
    if isinstance(head, ConcatPoolHead):
        return "concat_pool"
    return None


class FeatureBody(nn.Module):
    """``model.features`` as a module of its own (the part of the graph that is quantized)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.features(x)


# Feature maps up to this many steps are upsampled with one MatMul by a constant (T, 1000)
# interpolation matrix (edge: T = 63, +252 KB of float constants); longer ones with a resize.
MATMUL_UPSAMPLE_MAX_STEPS = 128


def interpolation_matrix(n_steps: int, n_samples: int) -> torch.Tensor:
    """(T, n) matrix M with ``maps @ M`` = ``F.interpolate(maps, n, "linear",
    align_corners=False)``: the interpolation applied to the identity.

    >>> m = interpolation_matrix(4, 10)
    >>> x = torch.rand(1, 2, 4)
    >>> bool(torch.allclose(x @ m, F.interpolate(x, size=10, mode="linear")))
    True
    """
    eye = torch.eye(n_steps)[None]
    return F.interpolate(eye, size=n_samples, mode="linear", align_corners=False)[0]


def _upsampler(n_steps: int, n_samples: int) -> torch.Tensor:
    if n_steps == n_samples or n_steps > MATMUL_UPSAMPLE_MAX_STEPS:
        return torch.zeros(0)
    return interpolation_matrix(n_steps, n_samples)


def _map_rows(logits: torch.Tensor) -> torch.Tensor:
    """(B, 2) int64: the classes whose maps are output, ``MI_INDEX`` and the first arg-max of
    the logits (the top class)."""
    top = logits.argmax(dim=1, keepdim=True)  # (B, 1)
    return top * torch.tensor([0, 1]) + torch.tensor([MI_INDEX, 0])


def _upsampled_outputs(logits: torch.Tensor, sel: torch.Tensor, interp: torch.Tensor,
                       n_samples: int) -> dict:
    """The outputs from the logits and the (B, 2, T) maps of `_map_rows`' classes, upsampled
    (linear, ``align_corners=False``): by a MatMul with the constant interpolation matrix
    ``interp`` for short maps, else a 4-D bilinear resize with a height of 1 (the same numbers
    as a 1-D linear interpolation, in static-shape operators)."""
    if interp.numel():
        sel = torch.matmul(sel, interp)
    elif sel.shape[-1] != n_samples:
        sel = F.interpolate(sel[:, :, None, :], size=(1, n_samples), mode="bilinear",
                            align_corners=False)[:, :, 0]
    return {"logits": logits, "probs": torch.sigmoid(logits), "cam_mi": sel[:, 0],
            "cam_top": sel[:, 1]}


def _cam_outputs(logits: torch.Tensor, cams: torch.Tensor, class_ids: torch.Tensor,
                 interp: torch.Tensor, n_samples: int) -> dict:
    """Select the MI map and the top class's map from all classes' maps ``cams`` (B, C, T) at
    the feature map's resolution, then upsample the two (`_upsampled_outputs`).

    The selection is one MatMul by a (B, 2, C) one-hot matrix whose rows pick `_map_rows`:
    at batch 1 onnxruntime pays about a microsecond per node, and a ReduceSum over the class
    axis costs several, so this is cheaper than Mul + ReduceSum + Slice + Concat (the same
    numbers: one term of each sum is non-zero). Selecting before upsampling and the MatMul keep
    the map's cost to ~10 % of the int8 edge model's time (onnxruntime; ~25 % with a 1-D resize
    of all five maps; ``benchmarks/edge_int8_speed.py``). The GAP head selects earlier still,
    among its weight rows (`GapCamHead`)."""
    select = (class_ids[None, None, :] == _map_rows(logits)[:, :, None]).to(cams.dtype)
    return _upsampled_outputs(logits, torch.matmul(select, cams), interp, n_samples)


class GapCamHead(nn.Module):
    """Logits and class activation maps from a GAP + Linear head's weights."""

    def __init__(self, linear: nn.Linear, n_steps: int, n_samples: int = 1000) -> None:
        super().__init__()
        self.register_buffer("weight", linear.weight.detach().clone().float())
        self.register_buffer("bias", linear.bias.detach().clone().float())
        # alpha = w / T, with T (the feature map's length) fixed by the input length
        self.register_buffer("cam_weight", self.weight / float(n_steps))
        self.register_buffer("class_ids", torch.arange(self.weight.shape[0]))
        self.register_buffer("interp", _upsampler(n_steps, n_samples))
        self.n_samples = int(n_samples)

    def forward(self, feats: torch.Tensor) -> dict:
        logits = torch.matmul(feats.mean(dim=-1), self.weight.t()) + self.bias
        # the map is linear in the weights: gather the two classes' rows (B, 2, C) first, so
        # only two maps are computed and no one-hot selection is needed (fewer graph nodes)
        maps = torch.relu(torch.matmul(self.cam_weight[_map_rows(logits)], feats))
        return _upsampled_outputs(logits, maps, self.interp, self.n_samples)


def _bn_affine(bn: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias.detach() - bn.running_mean * scale


class ConcatPoolCamHead(nn.Module):
    """`ConcatPoolHead` (eval mode) with its Grad-CAM weights computed in closed form."""

    def __init__(self, head: nn.Module, n_steps: int, n_samples: int = 1000) -> None:
        super().__init__()
        bn1, _, lin1, _, bn2, _, lin2 = head.mlp
        s1, t1 = _bn_affine(bn1)
        s2, t2 = _bn_affine(bn2)
        w1 = lin1.weight.detach() * s1[None, :]  # BN1 folded into the first linear
        b1 = lin1.bias.detach() + lin1.weight.detach() @ t1
        w2 = lin2.weight.detach() * s2[None, :]  # BN2 folded into the second linear
        b2 = lin2.bias.detach() + lin2.weight.detach() @ t2
        for name, v in (("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2)):
            self.register_buffer(name, v.clone().float())
        c = w1.shape[1] // 2
        # alpha = (g_max + g_mean) / T = gate-weighted W2' @ (W1'_max + W1'_mean) / T
        self.register_buffer("w1_cam", ((w1[:, :c] + w1[:, c:]) / float(n_steps)).float())
        self.register_buffer("class_ids", torch.arange(w2.shape[0]))
        self.register_buffer("interp", _upsampler(n_steps, n_samples))
        self.n_samples = int(n_samples)

    def forward(self, feats: torch.Tensor) -> dict:
        pooled = torch.cat([feats.amax(dim=-1), feats.mean(dim=-1)], dim=1)
        h = torch.matmul(pooled, self.w1.t()) + self.b1
        logits = torch.matmul(torch.relu(h), self.w2.t()) + self.b2
        gate = (h > 0).to(feats.dtype)  # (B, H)
        alpha = torch.matmul(self.w2[None, :, :] * gate[:, None, :], self.w1_cam)  # (B, 5, C)
        cams = torch.relu(torch.matmul(alpha, feats))
        return _cam_outputs(logits, cams, self.class_ids, self.interp, self.n_samples)


class LogitsOut(nn.Module):
    """The last linear layer of a head, with the sigmoid: kept in float in int8 models."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.linear = linear

    def forward(self, z: torch.Tensor) -> dict:
        logits = self.linear(z)
        return {"logits": logits, "probs": torch.sigmoid(logits)}


class PlainHead(nn.Module):
    """A head without a fused map (AlexNet-1D): its layers up to the last linear are quantized
    in int8 models (they hold most of AlexNet's weights); the last linear and the sigmoid
    (``out``, a `LogitsOut`) stay in float."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        layers = list(model.head.children()) if isinstance(model.head, nn.Sequential) else []
        if layers and isinstance(layers[-1], nn.Linear):
            self.body: nn.Module = nn.Sequential(*layers[:-1])
            self.out = LogitsOut(layers[-1])
        else:  # an unknown head: keep all of it in float
            self.body = nn.Identity()
            self.out = _WholeHeadOut(model.head)

    def forward(self, feats: torch.Tensor) -> dict:
        return self.out(self.body(feats))


class _WholeHeadOut(nn.Module):
    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, feats: torch.Tensor) -> dict:
        logits = self.head(feats)
        return {"logits": logits, "probs": torch.sigmoid(logits)}


class _GapHead(nn.Module):
    """A GAP + Linear head exported without maps."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.register_buffer("weight", linear.weight.detach().clone().float())
        self.register_buffer("bias", linear.bias.detach().clone().float())

    def forward(self, feats: torch.Tensor) -> dict:
        logits = torch.matmul(feats.mean(dim=-1), self.weight.t()) + self.bias
        return {"logits": logits, "probs": torch.sigmoid(logits)}


# modules kept in float in int8 models (their ONNX node names are under `float_scopes`)
FLOAT_MODULES: tuple[type, ...] = (GapCamHead, ConcatPoolCamHead, _GapHead, LogitsOut,
                                   _WholeHeadOut)
CAM_HEADS = FLOAT_MODULES  # the name used before AlexNet's head was quantized


class ExportGraph(nn.Module):
    """``body`` (the convolutional features) then ``head`` (logits, probabilities, maps)."""

    def __init__(self, body: nn.Module, head: nn.Module, has_cam: bool) -> None:
        super().__init__()
        self.body = body
        self.head = head
        self.has_cam = has_cam

    @property
    def output_names(self) -> tuple[str, ...]:
        return OUTPUTS + (CAM_OUTPUTS if self.has_cam else ())

    @property
    def float_scopes(self) -> tuple[str, ...]:
        """ONNX node-name prefixes of the parts that stay in float in int8 models."""
        if isinstance(self.head, PlainHead):
            return ("/head/out/",)
        return ("/head/",)

    def forward(self, x: torch.Tensor) -> dict:
        return self.head(self.body(x))


def fold_batchnorm(module: nn.Module, example: torch.Tensor | None = None) -> nn.Module:
    """A copy of ``module`` (eval mode) in which every ``Conv1d`` whose only consumer is a
    ``BatchNorm1d`` carries the batch-norm (`torch.nn.utils.fusion.fuse_conv_bn_eval`) and the
    batch-norm becomes an ``Identity``. Pairs are found by tracing the module with torch.fx;
    batch-norms after anything else (InceptionTime's after a concatenation) stay.

    >>> from detak.models.cnn.registry import build_model
    >>> folded = fold_batchnorm(FeatureBody(build_model("edge")))
    >>> sum(isinstance(m, nn.BatchNorm1d) for m in folded.modules())
    0
    """
    import torch.fx
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    out = copy.deepcopy(module).eval()
    graph = torch.fx.symbolic_trace(out).graph
    named = dict(out.named_modules())
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(named.get(node.target), nn.BatchNorm1d):
            continue
        src = node.args[0]
        if (isinstance(src, torch.fx.Node) and src.op == "call_module"
                and isinstance(named.get(src.target), nn.Conv1d) and len(src.users) == 1):
            pairs.append((src.target, node.target))
    for conv_name, bn_name in pairs:
        fused = fuse_conv_bn_eval(named[conv_name], named[bn_name])
        for name, new in ((conv_name, fused), (bn_name, nn.Identity())):
            parent_name, _, attr = name.rpartition(".")
            setattr(out.get_submodule(parent_name) if parent_name else out, attr, new)
    return out


def export_graph(model: nn.Module, cam: bool = True, n_samples: int = 1000) -> ExportGraph:
    """The graph to export for ``model``: batch-norms folded into the convolutions, the head
    with the fused Grad-CAM when the architecture allows it (and ``cam``), eval mode."""
    model = copy.deepcopy(model).eval()
    kind = cam_kind(model) if cam else None
    body = fold_batchnorm(FeatureBody(model))
    if kind is not None:
        with torch.no_grad():  # the feature map's length for this input length
            n_steps = int(model.features(torch.zeros(1, 12, n_samples)).shape[-1])
    if kind == "gap":
        head: nn.Module = GapCamHead(model.head, n_steps, n_samples)
    elif kind == "concat_pool":
        head = ConcatPoolCamHead(model.head, n_steps, n_samples)
    elif cam_kind(model) == "gap":  # cam=False on a GAP model: the pooling is not in .head
        head = _GapHead(model.head)
    else:
        head = PlainHead(model)
    return ExportGraph(body, head, has_cam=kind is not None).eval()


def reference_gradcam(model: nn.Module, x: torch.Tensor | np.ndarray,
                      classes: int | np.ndarray | torch.Tensor,
                      n_samples: int | None = None) -> np.ndarray:
    """Textbook Grad-CAM with autograd at ``model.features`` (the last conv map): the model's
    own ``forward`` runs on a feature tensor that requires grad, ``alpha`` is the time-mean of
    the gradient of logit ``classes`` (one class, or one per record), the map is
    ``ReLU(sum_k alpha_k A_k)`` linearly interpolated to ``n_samples`` (default: the input
    length). Returns (B, n_samples) float32.

    >>> from detak.models.cnn.registry import build_model
    >>> reference_gradcam(build_model("edge"), torch.randn(2, 12, 1000), 1).shape
    (2, 1000)
    """
    model = model.eval()
    x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    n = int(n_samples or x.shape[-1])
    feats = model.features(x).detach().requires_grad_(True)
    model.features = lambda _x: feats  # the instance attribute shadows the method
    try:
        with torch.enable_grad():
            logits = model(x)
            cls = torch.as_tensor(classes).long().reshape(-1).expand(len(x))
            target = logits.gather(1, cls[:, None]).sum()
            (grad,) = torch.autograd.grad(target, feats)
    finally:
        del model.features
    alpha = grad.mean(dim=-1, keepdim=True)
    cam = torch.relu((alpha * feats.detach()).sum(dim=1, keepdim=True))
    if cam.shape[-1] != n:
        cam = F.interpolate(cam, size=n, mode="linear", align_corners=False)
    return cam[:, 0].numpy().astype(np.float32)

"""Build the CNNs by name and count their parameters and multiply-accumulates.

>>> m = build_model("resnet1d")
>>> count_parameters(m), MODEL_NAMES
(473349, ('alexnet1d', 'resnet1d', 'inceptiontime', 'edge'))
>>> count_macs(build_model("edge")) <= 30_000_000
True
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

INPUT_SHAPE: tuple[int, int] = (12, 1000)  # leads × samples (10 s at 100 Hz)
N_CLASSES = 5

# S1's parameter counts (the edge model has no published size: its limits are in `EDGE_LIMITS`)
S1_PARAMETERS: dict[str, int] = {"alexnet1d": 3_414_661, "resnet1d": 473_349,
                                 "inceptiontime": 507_653}
EDGE_LIMITS: dict[str, int] = {"parameters": 150_000, "macs": 30_000_000}


def _alexnet1d(n_classes: int = N_CLASSES) -> nn.Module:
    from detak.models.cnn.alexnet1d import AlexNet1d

    return AlexNet1d(n_classes=n_classes)


def _resnet1d(n_classes: int = N_CLASSES) -> nn.Module:
    from detak.models.cnn.resnet1d import ResNet1d

    return ResNet1d(n_classes=n_classes)


def _inceptiontime(n_classes: int = N_CLASSES) -> nn.Module:
    from detak.models.cnn.inceptiontime import InceptionTime

    return InceptionTime(n_classes=n_classes)


def _edge(n_classes: int = N_CLASSES) -> nn.Module:
    from detak.models.cnn.edge import EdgeNet

    return EdgeNet(n_classes=n_classes)


_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "alexnet1d": _alexnet1d, "resnet1d": _resnet1d, "inceptiontime": _inceptiontime,
    "edge": _edge,
}
MODEL_NAMES: tuple[str, ...] = tuple(_BUILDERS)


class UnknownModelError(ValueError):
    """A model name that is not one of `MODEL_NAMES`."""


def build_model(name: str, n_classes: int = N_CLASSES) -> nn.Module:
    """A freshly initialised model (input (B, 12, 1000), output (B, ``n_classes``) logits; 5
    superclasses by default, another label set's size with ``detak train --labels``).

    >>> build_model("edge")(torch.zeros(1, 12, 1000)).shape
    torch.Size([1, 5])
    >>> build_model("edge", n_classes=10)(torch.zeros(1, 12, 1000)).shape
    torch.Size([1, 10])
    >>> build_model("vgg")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    detak.models.cnn.registry.UnknownModelError: unknown CNN 'vgg'; known: alexnet1d, ...
    """
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise UnknownModelError(f"unknown CNN {name!r}; known: {', '.join(MODEL_NAMES)}") from None
    return builder(n_classes=int(n_classes))


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (batch-norm scale and shift included; running stats are buffers).

    >>> count_parameters(nn.Linear(3, 2))
    8
    """
    return int(sum(p.numel() for p in model.parameters()
                   if p.requires_grad or not trainable_only))


def count_macs(model: nn.Module, input_shape: tuple[int, ...] = (1, *INPUT_SHAPE)) -> int:
    """Multiply-accumulates of one forward pass per record, counted by forward hooks on every
    ``Conv1d`` (output elements × input channels per group × kernel size) and ``Linear``
    (output elements × input features). Batch-norm (folded into the convs at export),
    activations, pooling and additions are not counted.

    >>> count_macs(nn.Conv1d(2, 4, 3, padding=1), (1, 2, 10))  # 4 × 10 outputs × 2 × 3
    240
    >>> count_macs(nn.Linear(3, 2), (5, 3))  # per record: 2 × 3
    6
    """
    total = 0

    def conv_hook(mod: nn.Conv1d, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() * (mod.in_channels // mod.groups) * mod.kernel_size[0]

    def linear_hook(mod: nn.Linear, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() * mod.in_features

    handles = []
    for mod in model.modules():
        if isinstance(mod, nn.Conv1d):
            handles.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, nn.Linear):
            handles.append(mod.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(input_shape))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return int(total // input_shape[0])

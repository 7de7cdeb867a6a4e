"""Knowledge distillation for ``detak train --teacher`` (issue 18, item 1): the teachers' cached
logits, the distillation loss, and the kiosk-condition augmentation (``--augment field``).

**Soft targets.** The teachers (shipped torch models, e.g. ``resnet1d,inceptiontime``) are run
once, in fp32, on every *full 10-s* training record with their own saved standardizer — one
soft target per record, as the kiosk would score it. The student then sees its random crop
(and the augmentations) of that record against the record's soft target: the cheap, common
choice (per-crop targets would need the teachers in every step). The logits are cached in
``$DETAK_TEACHER_CACHE`` or ``cache_dir()/teacher_logits``, one file per teacher and record
set, keyed by the SHA-256 of the teacher's weights file and of the records (ids, fold
checksums, preprocessing key): a changed teacher or other records is a cache miss, so a
student epoch costs what an edge epoch costs.

**Loss** (multilabel, so per-class *binary* distillation with tempered sigmoids)::

    L = (1 - alpha) * BCE(sigmoid(s), y) + alpha * T^2 * BCE(sigmoid(s / T), q_T)
    q_T = mean over teachers of sigmoid(z_teacher / T)

averaged over classes and records. ``alpha = 0`` is the plain label loss; the T² factor keeps
the soft term's gradient on the same scale as T changes (Hinton et al. 2015): the gradient of
the soft term with respect to ``s`` is ``alpha * T * (sigmoid(s / T) - q_T)``.

**Field augmentation** (`field_augment`), per training record, on the filtered signal before
the crop, each condition drawn independently (probabilities in `FIELD`): EMG-like noise bursts
and baseline wander from `detak.signal.perturb` (added as the filtered difference — the CNN
input chain is linear, so filter(x + d) = filter(x) + filter(d)), an amplitude scale, and one
lead zero-filled as the kiosk does on lead-off. Random shifts are the recipe's random crop.
Mains hum is not drawn: at the model's 100 Hz input the kiosk's resampling (anti-alias
filter) and 40 Hz low-pass have removed 50/60 Hz already — it cannot reach the model.

>>> import torch
>>> s = torch.zeros(2, 5); y = torch.ones(2, 5); z = torch.zeros(1, 2, 5)
>>> round(float(kd_loss(s, y, soft_targets(z, 2.0), alpha=0.0, temperature=2.0)), 4)
0.6931
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

TEACHER_CACHE_ENV = "DETAK_TEACHER_CACHE"
AUGMENTS = ("none", "field")

# per record: probability of each field condition and its range
FIELD: dict[str, Any] = {
    "noise_bursts": {"p": 0.3, "relative_amplitude": (0.1, 0.6), "duration_s": (0.5, 2.0)},
    "baseline_wander": {"p": 0.3, "amplitude_mv": (0.1, 1.0), "freq_hz": (0.1, 0.5)},
    "amplitude_scale": {"p": 0.5, "factor": (0.8, 1.25)},
    "lead_off": {"p": 0.1},
}


class DistilError(ValueError):
    """Distillation cannot start as asked (unknown teacher, missing weights...)."""


# ------------------------------------------------------------------------------ loss
def soft_targets(teacher_logits: Any, temperature: float) -> Any:
    """Mean over teachers of ``sigmoid(z / T)``: (n_teachers, N, C) logits → (N, C) targets.

    >>> import torch
    >>> z = torch.tensor([[[2.0]], [[-2.0]]])
    >>> round(float(soft_targets(z, 1.0)[0, 0]), 6)
    0.5
    """
    import torch

    if temperature <= 0:
        raise DistilError(f"temperature must be > 0, got {temperature}")
    return torch.sigmoid(teacher_logits / temperature).mean(dim=0)


def kd_loss(student_logits: Any, labels: Any, targets: Any, *, alpha: float,
            temperature: float) -> Any:
    """Per-class binary distillation loss (module docstring): label BCE weighted ``1 - alpha``
    plus ``alpha * T^2`` times the BCE of the tempered student sigmoid against ``targets``
    (`soft_targets`). Mean over records and classes.

    >>> import torch
    >>> s = torch.tensor([[0.0]]); y = torch.tensor([[1.0]]); q = torch.tensor([[1.0]])
    >>> round(float(kd_loss(s, y, q, alpha=1.0, temperature=1.0)), 4)
    0.6931
    """
    import torch.nn.functional as F

    if not 0.0 <= alpha <= 1.0:
        raise DistilError(f"alpha must be in [0, 1], got {alpha}")
    hard = F.binary_cross_entropy_with_logits(student_logits, labels)
    if alpha == 0.0:
        return hard
    soft = F.binary_cross_entropy_with_logits(student_logits / temperature, targets)
    return (1.0 - alpha) * hard + alpha * temperature ** 2 * soft


# ------------------------------------------------------------------------------ teachers
@dataclasses.dataclass
class Teacher:
    """A teacher: its name, the SHA-256 of its weights file, and standardised input → logits."""

    name: str
    weights_sha256: str
    logits: Callable[[np.ndarray], np.ndarray]
    standardize: Callable[[np.ndarray], np.ndarray]


def load_teacher(name: str) -> Teacher:
    """A shipped CNN (or a model folder) as a fp32 torch teacher.

    >>> load_teacher("vgg")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    detak.models.distil.DistilError: teacher 'vgg': no shipped model or folder of that name...
    """
    from detak.models.model_card import read_card, sha256_file
    from detak.models.shipped import STANDARDIZER_FILE, shipped_model_dir
    from detak.models.trained import load_torch_module, torch_predictor, torch_weights_file
    from detak.signal.filters import Standardizer

    folder = Path(name) if Path(name).is_dir() else shipped_model_dir(name)
    if folder is None or not (folder / "card.json").is_file():
        raise DistilError(f"teacher {name!r}: no shipped model or folder of that name "
                          "(e.g. resnet1d, inceptiontime, alexnet1d, edge)")
    card = read_card(folder / "card.json")
    path = torch_weights_file(folder, card)
    if path is None:
        raise DistilError(f"teacher {name!r}: its torch weights file is missing")
    module = load_torch_module(folder, card)
    std = Standardizer.load(folder / STANDARDIZER_FILE)
    return Teacher(name=Path(name).name, weights_sha256=sha256_file(path),
                   logits=torch_predictor(module, logits=True), standardize=std.transform)


def teacher_cache_dir() -> Path:
    """``$DETAK_TEACHER_CACHE`` or ``cache_dir()/teacher_logits``."""
    env = os.environ.get(TEACHER_CACHE_ENV)
    if env:
        return Path(env)
    from detak.data.paths import cache_dir

    return cache_dir() / "teacher_logits"


def records_key(ids: np.ndarray, checksums: dict[int, str], preprocessing: str) -> str:
    """SHA-256 (hex) of the record ids, the folds' data checksums and the preprocessing key.

    >>> a = records_key(np.arange(3), {1: "x"}, "p"); a == records_key(np.arange(3), {1: "x"}, "p")
    True
    >>> a == records_key(np.arange(4), {1: "x"}, "p")
    False
    """
    h = hashlib.sha256(np.ascontiguousarray(ids, dtype="<i8").tobytes())
    h.update(repr(sorted(checksums.items())).encode())
    h.update(preprocessing.encode())
    return h.hexdigest()


def teacher_logits_path(teacher_sha: str, key: str, root: Path | None = None) -> Path:
    """Cache file of one teacher's logits on one record set.

    >>> teacher_logits_path("ab" * 32, "cd" * 32, Path("/c")).as_posix()
    '/c/teacher_abababababababab_records_cdcdcdcdcdcdcdcd.npz'
    """
    return (root or teacher_cache_dir()) / f"teacher_{teacher_sha[:16]}_records_{key[:16]}.npz"


def cached_teacher_logits(teacher: Teacher, x: np.ndarray, ids: np.ndarray, key: str, *,
                          root: Path | None = None, chunk: int = 256) -> tuple[np.ndarray, bool]:
    """``(logits (N, C) float32, from_cache)`` of ``teacher`` on the filtered, unstandardised
    records ``x`` (N, 12, 1000); computed once and stored (`teacher_logits_path`)."""
    path = teacher_logits_path(teacher.weights_sha256, key, root)
    if path.is_file():
        with np.load(path) as d:
            if np.array_equal(d["ids"], ids) and str(d["teacher_sha256"]) == \
                    teacher.weights_sha256:
                return d["logits"].astype(np.float32), True
    z = np.concatenate([teacher.logits(teacher.standardize(np.asarray(x[s:s + chunk])))
                        for s in range(0, len(x), chunk)]).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, ids=np.asarray(ids, np.int64), logits=z,
             teacher_sha256=np.array(teacher.weights_sha256), teacher=np.array(teacher.name))
    os.replace(tmp, path)
    return z, False


def ensemble_logits(teachers: Sequence[Teacher], x: np.ndarray, ids: np.ndarray, key: str,
                    root: Path | None = None) -> np.ndarray:
    """(n_teachers, N, C) logits of every teacher (cached)."""
    return np.stack([cached_teacher_logits(t, x, ids, key, root=root)[0] for t in teachers])


# ------------------------------------------------------------------------------ augmentation
def _lowfreq(shape: tuple[int, ...], fs: float, rng: np.random.Generator) -> np.ndarray:
    from detak.signal.perturb import baseline_wander

    cfg = FIELD["baseline_wander"]
    return baseline_wander(np.zeros(shape, np.float32), fs,
                           freq_hz=float(rng.uniform(*cfg["freq_hz"])),
                           amplitude_mv=float(rng.uniform(*cfg["amplitude_mv"])), seed=rng)


def field_augment(x: np.ndarray, fs: float, rng: np.random.Generator, *, mean: float = 0.0,
                  std: float = 1.0) -> np.ndarray:
    """Kiosk field conditions on a batch of *standardised* filtered records (B, 12, L):
    returns a new float32 array of the same shape (``mean``/``std``: the standardizer, to
    work in millivolts). Reproducible from ``rng``.

    >>> x = np.random.default_rng(0).normal(size=(4, 12, 1000)).astype(np.float32)
    >>> a = field_augment(x, 100.0, np.random.default_rng(1))
    >>> b = field_augment(x, 100.0, np.random.default_rng(1))
    >>> a.shape, a.dtype, bool(np.array_equal(a, b))
    ((4, 12, 1000), dtype('float32'), True)
    """
    from detak.models.cnn_data import preprocess_array
    from detak.signal.perturb import noise_bursts

    arr = np.asarray(x, dtype=np.float32)
    mv = arr * np.float32(std) + np.float32(mean)
    delta = np.zeros_like(mv)
    n_len = mv.shape[-1]
    out = mv.copy()
    for i in range(len(mv)):
        nb = FIELD["noise_bursts"]
        if rng.random() < nb["p"]:
            dur = min(float(rng.uniform(*nb["duration_s"])), 0.9 * n_len / fs)
            delta[i] += noise_bursts(mv[i], fs, n_bursts=1, duration_s=dur,
                                     relative_amplitude=float(rng.uniform(
                                         *nb["relative_amplitude"])), seed=rng) - mv[i]
        if rng.random() < FIELD["baseline_wander"]["p"]:
            delta[i] += _lowfreq(mv[i].shape, fs, rng)
    touched = np.flatnonzero(np.abs(delta).reshape(len(delta), -1).max(axis=1) > 0)
    if len(touched):
        # the CNN input chain is linear: filter(x + d) = filter(x) + filter(d)
        out[touched] += preprocess_array(delta[touched], fs)
    for i in range(len(out)):
        if rng.random() < FIELD["amplitude_scale"]["p"]:
            out[i] *= np.float32(rng.uniform(*FIELD["amplitude_scale"]["factor"]))
        if rng.random() < FIELD["lead_off"]["p"]:
            out[i, int(rng.integers(0, out.shape[1]))] = 0.0  # zero-filled, as the kiosk does
    return ((out - np.float32(mean)) / np.float32(std)).astype(np.float32)

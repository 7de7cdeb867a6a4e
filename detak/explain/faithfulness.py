"""Faithfulness of explanations: insertion / deletion curves (S1's definition) with two
perturbation baselines, and the model-parameter randomisation sanity check.

**Curves.** The input is cut into cells of one lead × 40 ms (4 samples at 100 Hz: 12 × 250 =
3000 cells) and each cell scored by the sum of its attribution. *Deletion* replaces cells by
the baseline in order of decreasing score (most positive evidence first; ties in random,
seeded order) and records the class probability (sigmoid of the logit) after each of
``steps`` equal steps (0 %, 5 %, … 100 % of the cells); *insertion* starts from the baseline
and restores cells from the record in the same order. The AUC is the trapezoid area under the
probability over the removed/restored fraction (0-1): lower is better for deletion, higher for
insertion (S1). Cells rather than single samples because one sample at 100 Hz carries no wave,
and because the ECG-valid baseline replaces pieces of waves.

**Baselines.**

* ``zero`` — the classic one: the removed cells become 0 in model units, i.e. the training
  mean (a flat line at ~0 mV after baseline removal). The perturbed input is not an ECG: a
  deleted QRS leaves a step to zero and a hole.
* ``normal_beats`` — ECG-valid: the removed cells become the *same cells of a normal ECG with
  the record's own rhythm*: a population median beat of each lead from NORM-only training
  records (`normal_template`) placed at each of the record's own beats (fiducials from the
  Foundation's delineation), `normal_beats_baseline`. Deleting evidence then means "this lead
  at this moment looks like a healthy heart's", which answers S1's complaint that the
  perturbed inputs are not valid ECGs: rhythm, wave timing and amplitudes stay physiological,
  and a fully deleted record is a normal ECG at the same heart rate. (A record's *own* median
  beat was rejected: MI evidence — Q waves, ST shifts — is in every beat, so it would survive
  in the baseline; a linear baseline interpolation was rejected: it leaves flat leads, not
  ECGs.) Where no beat was found the baseline falls back to ``zero`` (reported).

**Randomisation sanity check** (Adebayo et al. 2018): the top of the network — the classifier
head and the last block of the feature extractor (`top_layers`) — is re-initialised
(`randomized_copy`) and the explanation computed again; `rank_correlation` is Spearman's ρ
between the |cell scores| of the two explanations, per record. An explanation that does not
change (ρ near 1) does not depend on what the model learnt.

>>> import numpy as np
>>> fr = np.linspace(0, 1, 5)
>>> float(curve_auc(fr, np.array([1.0, 0.5, 0.5, 0.0, 0.0])))
0.375
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["CELL_SAMPLES", "BASELINES", "Curves", "cell_scores", "perturbation_order",
           "perturbation_curves", "curve_auc", "normal_template", "normal_beats_baseline",
           "top_layers", "randomized_copy", "rank_correlation", "class_probability"]

CELL_SAMPLES = 4          # 40 ms at 100 Hz
BASELINES: tuple[str, ...] = ("zero", "normal_beats")
TEMPLATE_PRE_S = 0.30     # normal-beat template: 300 ms before the fiducial …
TEMPLATE_POST_S = 0.60    # … to 600 ms after it
BEAT_SPLIT = 0.6          # a sample belongs to beat i up to 60 % of the RR interval after it


@dataclasses.dataclass
class Curves:
    """Probabilities after each step: ``deletion`` and ``insertion`` (B, steps + 1) at the
    removed/restored ``fractions`` (steps + 1,)."""

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray

    def aucs(self) -> tuple[np.ndarray, np.ndarray]:
        """(deletion AUC, insertion AUC) per record."""
        return curve_auc(self.fractions, self.deletion), curve_auc(self.fractions,
                                                                   self.insertion)


def curve_auc(fractions: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Trapezoid area under ``values`` (..., steps + 1) over ``fractions``."""
    v = np.asarray(values, dtype=np.float64)
    f = np.asarray(fractions, dtype=np.float64)
    return ((v[..., 1:] + v[..., :-1]) / 2 * np.diff(f)).sum(axis=-1)


def cell_scores(attr: np.ndarray, cell: int = CELL_SAMPLES) -> np.ndarray:
    """Sum of attribution per lead × ``cell`` samples: (B, leads, samples) → (B, leads,
    samples // cell) (a tail shorter than a cell is dropped).

    >>> cell_scores(np.arange(8.0).reshape(1, 1, 8), 4)
    array([[[ 6., 22.]]])
    """
    a = np.asarray(attr, dtype=np.float64)
    n = a.shape[-1] // cell
    return a[..., : n * cell].reshape(*a.shape[:-1], n, cell).sum(axis=-1)


def perturbation_order(scores: np.ndarray, seed: int = 0) -> np.ndarray:
    """Cell indices (B, n_cells) of flattened (leads × cells) scores, highest first; ties in
    a random order (seeded), so that flat maps are not read left to right.

    >>> perturbation_order(np.array([[[0.0, 2.0, 1.0]]]))
    array([[1, 2, 0]])
    """
    s = np.asarray(scores, dtype=np.float64).reshape(len(scores), -1)
    rng = np.random.default_rng(seed)
    tie = rng.random(s.shape)
    return np.stack([np.lexsort((tie[i], -s[i])) for i in range(len(s))])


def class_probability(model: Any, cls: int, batch_size: int = 256
                      ) -> Callable[[np.ndarray], np.ndarray]:
    """A function (N, leads, samples) standardised → probability of class ``cls`` (N,)."""
    import torch

    def run(x: np.ndarray) -> np.ndarray:
        out = np.empty(len(x), dtype=np.float64)
        model.eval()
        with torch.inference_mode():
            for s in range(0, len(x), batch_size):
                xb = torch.from_numpy(np.ascontiguousarray(x[s:s + batch_size], np.float32))
                out[s:s + batch_size] = torch.sigmoid(model(xb)[:, cls]).double().numpy()
        return out

    return run


def perturbation_curves(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                        attr: np.ndarray, baseline: np.ndarray, steps: int = 20,
                        cell: int = CELL_SAMPLES, seed: int = 0) -> Curves:
    """Deletion and insertion curves (see the module doc) for records ``x`` (B, leads, n),
    their attributions and baselines of the same shape; ``predict`` maps inputs to the
    explained class's probability."""
    x = np.asarray(x, dtype=np.float32)
    base = np.broadcast_to(np.asarray(baseline, dtype=np.float32), x.shape)
    if np.shape(attr) != x.shape:
        raise ValueError(f"attribution shape {np.shape(attr)} != input shape {x.shape}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    b, leads, n = x.shape
    n_cells_t = n // cell
    order = perturbation_order(cell_scores(attr, cell), seed)
    n_cells = order.shape[1]
    counts = np.round(np.linspace(0, n_cells, steps + 1)).astype(int)
    dele = np.empty((b, steps + 1))
    ins = np.empty((b, steps + 1))
    for i in range(b):
        rank = np.empty(n_cells, dtype=int)
        rank[order[i]] = np.arange(n_cells)
        cell_rank = rank.reshape(leads, n_cells_t)
        sample_rank = np.full((leads, n), n_cells, dtype=int)  # the tail is never perturbed
        sample_rank[:, : n_cells_t * cell] = np.repeat(cell_rank, cell, axis=1)
        masks = sample_rank[None] < counts[:, None, None]         # (steps+1, leads, n)
        deleted = np.where(masks, base[i][None], x[i][None])
        inserted = np.where(masks, x[i][None], base[i][None])
        p = predict(np.concatenate([deleted, inserted]).astype(np.float32))
        dele[i], ins[i] = p[: steps + 1], p[steps + 1:]
    return Curves(counts / n_cells, dele, ins)


# --- the ECG-valid baseline ----------------------------------------------------------------

def normal_template(x_mv: np.ndarray, beats: Sequence[Sequence[float]], fs: float = 100.0
                    ) -> np.ndarray:
    """Per-lead median beat (leads, pre + post samples) in mV of records ``x_mv`` (N, leads,
    samples; e.g. NORM-only training records) with their beat fiducials ``beats`` (seconds,
    one list per record), from `TEMPLATE_PRE_S` before to `TEMPLATE_POST_S` after each
    fiducial (beats too close to the record's ends are skipped).

    >>> x = np.zeros((1, 1, 400)); x[0, 0, [100, 200, 300]] = 1.0
    >>> t = normal_template(x, [[1.0, 2.0, 3.0]])
    >>> t.shape, float(t[0, 30]), float(t[0, 31])
    ((1, 90), 1.0, 0.0)
    """
    pre, post = int(round(TEMPLATE_PRE_S * fs)), int(round(TEMPLATE_POST_S * fs))
    epochs = []
    for rec, fids in zip(x_mv, beats, strict=True):
        rec = np.asarray(rec, dtype=np.float64)
        for f in fids:
            c = int(round(float(f) * fs))
            if c - pre >= 0 and c + post <= rec.shape[-1]:
                epochs.append(rec[:, c - pre: c + post])
    if not epochs:
        raise ValueError("normal_template: no complete beat in the records given")
    return np.median(np.stack(epochs), axis=0).astype(np.float32)


def normal_beats_baseline(template: np.ndarray, beat_times_s: Sequence[float], n_samples: int,
                          fs: float = 100.0) -> np.ndarray | None:
    """(leads, n_samples) mV: ``template`` (from `normal_template`) placed at each fiducial of
    ``beat_times_s``; each sample belongs to the beat before it up to `BEAT_SPLIT` of the RR
    interval, to the next beat after that; template phases outside its window are 0 mV
    (isoelectric, as after baseline removal). None when no beat is given.

    >>> tmpl = np.zeros((1, 90)); tmpl[0, 30] = 1.0
    >>> b = normal_beats_baseline(tmpl, [1.0, 2.0], 300)
    >>> np.flatnonzero(b[0]).tolist()
    [100, 200]
    """
    fids = np.sort(np.asarray([round(float(f) * fs) for f in beat_times_s], dtype=int))
    if fids.size == 0:
        return None
    pre = int(round(TEMPLATE_PRE_S * fs))
    t = np.arange(n_samples)
    if fids.size == 1:
        owner = np.zeros(n_samples, dtype=int)
    else:
        splits = fids[:-1] + BEAT_SPLIT * np.diff(fids)
        owner = np.searchsorted(splits, t, side="right")
    phase = t - fids[owner] + pre
    ok = (phase >= 0) & (phase < template.shape[1])
    out = np.zeros((template.shape[0], n_samples), dtype=np.float32)
    out[:, ok] = template[:, phase[ok]]
    return out


# --- randomisation ------------------------------------------------------------------------

def top_layers(model: Any) -> list[Any]:
    """The modules re-initialised by the randomisation check: the classifier ``head`` and the
    last block of the feature extractor (edge / ResNet: the last residual block; InceptionTime:
    the last inception module and its shortcut; AlexNet-1D: the last conv and its BN)."""
    from torch import nn

    from detak.models.cnn.alexnet1d import AlexNet1d
    from detak.models.cnn.inceptiontime import InceptionTime

    mods: list[nn.Module] = [model.head]
    if isinstance(model, InceptionTime):
        mods.append(model.modules_[-1])
        last = str(len(model.modules_) - 1)
        if last in model.shortcuts:
            mods.append(model.shortcuts[last])
    elif isinstance(model, AlexNet1d):
        convs = [i for i, m in enumerate(model.body) if isinstance(m, nn.Conv1d)]
        mods += [model.body[convs[-1]], model.body[convs[-1] + 1]]
    elif hasattr(model, "blocks"):
        mods.append(model.blocks[-1])
    else:
        raise ValueError(f"top_layers: unknown architecture {type(model).__name__}")
    return mods


def randomized_copy(model: Any, seed: int = 0) -> Any:
    """A copy of ``model`` whose `top_layers` are re-initialised (their ``reset_parameters``,
    torch's default initialisation, seeded; batch-norm running statistics reset too)."""
    import torch

    out = copy.deepcopy(model).eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for top in top_layers(out):
            for m in top.modules():
                if hasattr(m, "reset_parameters"):
                    m.reset_parameters()
                if hasattr(m, "reset_running_stats"):
                    m.reset_running_stats()
    return out


def rank_correlation(a: np.ndarray, b: np.ndarray, cell: int = CELL_SAMPLES) -> np.ndarray:
    """Spearman's ρ per record between |cell scores| of two attributions (B, leads, n). Where
    one map is constant (an all-zero Grad-CAM after ReLU) and the other not, they share no
    ranking: ρ = 0; where both are constant, they agree: ρ = 1.

    >>> a = np.random.default_rng(0).normal(size=(1, 2, 40))
    >>> float(rank_correlation(a, 2 * a)[0]), float(rank_correlation(a, -a)[0])
    (1.0, 1.0)
    >>> float(rank_correlation(a, 0 * a)[0])
    0.0
    """
    from scipy.stats import spearmanr

    sa = np.abs(cell_scores(a, cell)).reshape(len(a), -1)
    sb = np.abs(cell_scores(b, cell)).reshape(len(b), -1)
    out = np.empty(len(sa))
    for i in range(len(sa)):
        flat_a, flat_b = np.ptp(sa[i]) == 0, np.ptp(sb[i]) == 0
        if flat_a or flat_b:
            out[i] = 1.0 if flat_a and flat_b else 0.0
        else:
            out[i] = float(spearmanr(sa[i], sb[i]).statistic)
    return out

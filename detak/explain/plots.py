"""Attribution plots: a 12-lead ECG in paper layout with the attribution as a colour overlay,
insertion / deletion curves, lead relevance bars. matplotlib (Agg) is imported inside the
functions; PNG or SVG by the file suffix.

The ECG is drawn at 25 mm/s and 10 mm/mV on a 1 mm / 5 mm grid in the usual 3 × 4 layout
(2.5 s per lead) with a 10-s lead-II strip below; each trace is coloured sample by sample by
its attribution: a diverging map centred on 0 (red = evidence for the class, blue = against)
for signed methods (LRP, IG), a sequential one for Grad-CAM. The colour scale is symmetric
and clipped at the 99th percentile of |attribution| over the whole record, printed in the
subtitle.

>>> import numpy as np, tempfile, pathlib
>>> x = np.zeros((12, 1000)); a = np.random.default_rng(0).normal(size=(12, 1000))
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> [p.suffix for p in plot_attribution_ecg(x, a, 100.0, d / "r.png", signed=True,
...                                          formats=("png", "svg"))]
['.png', '.svg']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detak.data.leads import STANDARD_LEADS

__all__ = ["plot_attribution_ecg", "plot_curves", "plot_lead_relevance"]

MM_PER_S = 25.0
MM_PER_MV = 10.0
_MM = 1 / 25.4
_LAYOUT = (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6"))
_ROW_MM = 30.0
_MARGIN_MM = 10.0
_GRID_MINOR = "#f2d4d4"
_GRID_MAJOR = "#e0a3a3"


def _grid(ax: Any, w: float, h: float) -> None:
    """The report's ECG-paper grid, lighter so that the attribution colours stand out."""
    from detak.report.paper import draw_mm_grid

    draw_mm_grid(ax, w, h, minor=_GRID_MINOR, major=_GRID_MAJOR, minor_lw=0.2, major_lw=0.4)


def plot_attribution_ecg(x_mv: np.ndarray, attr: np.ndarray, fs: float, path: str | Path,
                         signed: bool = True, leads: Sequence[str] = STANDARD_LEADS,
                         title: str = "", subtitle: str = "",
                         formats: Sequence[str] | None = None) -> list[Path]:
    """Draw ``x_mv`` (12, n) coloured by ``attr`` (12, n) and save it to ``path`` (and to the
    same stem with each suffix in ``formats``, e.g. ``("png", "svg")``). Returns the files."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize

    x = np.asarray(x_mv, dtype=np.float64)
    a = np.asarray(attr, dtype=np.float64)
    if x.shape != a.shape:
        raise ValueError(f"signal shape {x.shape} != attribution shape {a.shape}")
    if len(leads) != x.shape[0]:
        raise ValueError(f"{len(leads)} lead names for {x.shape[0]} leads")
    row_of = {lead: i for i, lead in enumerate(leads)}
    missing = [lead for row in _LAYOUT for lead in row if lead not in row_of]
    if missing:
        raise ValueError(f"the paper layout needs the 12 standard leads; missing "
                         f"{', '.join(missing)}")
    scale = float(np.percentile(np.abs(a), 99)) or float(np.abs(a).max()) or 1.0
    if signed:
        cmap, norm = plt.get_cmap("RdBu_r"), Normalize(-scale, scale)
    else:
        cmap, norm = plt.get_cmap("YlOrRd"), Normalize(0.0, scale)
    dur = x.shape[1] / fs
    panels = [(lead, 2.5 * c, 2.5 * (c + 1), r) for r, row in enumerate(_LAYOUT)
              for c, lead in enumerate(row) if 2.5 * c < dur]
    panels.append(("II", 0.0, min(10.0, dur), 3))
    n_rows = 4
    grid_w, grid_h = min(10.0, dur) * MM_PER_S, n_rows * _ROW_MM
    header, cbar = 18.0, 18.0
    w_mm, h_mm = grid_w + 2 * _MARGIN_MM, grid_h + header + cbar + _MARGIN_MM
    fig = plt.figure(figsize=(w_mm * _MM, h_mm * _MM), dpi=150)
    ax = fig.add_axes((_MARGIN_MM / w_mm, (cbar + _MARGIN_MM / 2) / h_mm, grid_w / w_mm,
                       grid_h / h_mm))
    _grid(ax, grid_w, grid_h)
    for lead, t0, t1, row in panels:
        r = row_of[lead]
        i0, i1 = int(round(t0 * fs)), min(x.shape[1], int(round(t1 * fs)))
        seg, att = x[r, i0:i1], a[r, i0:i1]
        if seg.size < 2:
            continue
        base = grid_h - (row + 0.5) * _ROW_MM
        t_mm = (np.arange(i0, i1) / fs) * MM_PER_S
        y_mm = np.clip(base + (seg - np.median(seg)) * MM_PER_MV, base - _ROW_MM, base + _ROW_MM)
        pts = np.stack([t_mm, y_mm], axis=1)
        segs = np.stack([pts[:-1], pts[1:]], axis=1)
        lc = LineCollection(segs, cmap=cmap, norm=norm, linewidths=1.1, zorder=2)
        lc.set_array((att[:-1] + att[1:]) / 2)
        ax.add_collection(lc)
        ax.plot(t_mm, y_mm, color="black", lw=0.25, zorder=3)
        ax.text(t0 * MM_PER_S + 1.0, base + 0.38 * _ROW_MM, lead, fontsize=7,
                fontweight="bold", va="top", zorder=4)
    ax.set_xlim(0, grid_w)
    ax.set_ylim(0, grid_h)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.text(_MARGIN_MM / w_mm, 1 - 6 / h_mm, title or "attribution", fontsize=10,
             fontweight="bold")
    info = (f"{fs:g} Hz · 25 mm/s · 10 mm/mV · colour: attribution, "
            f"{'signed, ' if signed else ''}scale ±{scale:.3g} (99th pct of |attr|)")
    fig.text(_MARGIN_MM / w_mm, 1 - 12 / h_mm, info + (f" · {subtitle}" if subtitle else ""),
             fontsize=6.5)
    cax = fig.add_axes((_MARGIN_MM / w_mm + 0.3, 10 / h_mm, 0.4, 3 / h_mm))
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    cb = fig.colorbar(sm, cax=cax, orientation="horizontal")
    cb.ax.tick_params(labelsize=6)
    cb.set_label("against ← attribution → for the class" if signed else
                 "attribution (evidence for the class)", fontsize=6)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = [out] if not formats else [out.with_suffix("." + f.lstrip(".")) for f in formats]
    for p in paths:
        fig.savefig(p)
    plt.close(fig)
    return paths


def plot_curves(fractions: np.ndarray, curves: Mapping[str, np.ndarray], path: str | Path,
                title: str = "", kind: str = "deletion") -> Path:
    """Mean probability curves (one line per method, legend with the mean AUC) against the
    fraction of cells removed (``kind="deletion"``) or restored (``"insertion"``)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from detak.explain.faithfulness import curve_auc

    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=150)
    for name, c in curves.items():
        c = np.asarray(c, dtype=np.float64)
        mean = c.mean(axis=0) if c.ndim == 2 else c
        auc = float(np.mean(curve_auc(fractions, c)))
        ax.plot(fractions, mean, lw=1.2, label=f"{name} (AUC {auc:.3f})",
                ls="--" if name == "random" else "-")
    verb = "removed" if kind == "deletion" else "restored"
    ax.set_xlabel(f"fraction of lead × 40 ms cells {verb}")
    ax.set_ylabel("probability of the class")
    ax.set_ylim(0, 1)
    ax.set_xlim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title(title or kind, fontsize=9)
    ax.legend(fontsize=6, loc="upper right" if kind == "deletion" else "lower right")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_lead_relevance(scores: Mapping[str, Mapping[str, float]], path: str | Path,
                        title: str = "", leads: Sequence[str] = STANDARD_LEADS) -> Path:
    """Grouped bars: per lead, the mean lead relevance score of each method (``scores``:
    method → lead → score); a dotted line at 1/12 (uniform use)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    names = list(scores)
    fig, ax = plt.subplots(figsize=(7.5, 3.6), dpi=150)
    width = 0.8 / max(1, len(names))
    pos = np.arange(len(leads))
    for k, name in enumerate(names):
        vals = [scores[name].get(lead, np.nan) for lead in leads]
        ax.bar(pos + (k - (len(names) - 1) / 2) * width, vals, width, label=name)
    ax.axhline(1 / len(leads), color="black", lw=0.8, ls=":", label="uniform (1/12)")
    ax.set_xticks(pos)
    ax.set_xticklabels(list(leads))
    ax.set_ylabel("lead relevance score")
    ax.set_title(title or "lead relevance", fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out

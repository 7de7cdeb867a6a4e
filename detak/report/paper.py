"""ECG-paper plots: 25 mm/s, 10 mm/mV, 1 mm / 5 mm grid, lead labels, measured intervals.

A 12-lead recording is drawn in the usual 3 × 4 layout (2.5 s per lead) with a 10-s lead-II
rhythm strip below; other recordings get one full-width strip per lead. The figure is drawn at
true scale, so a print at 100 % gives real millimetres.

>>> import numpy as np, tempfile, pathlib
>>> from detak.data.recording import Recording
>>> rec = Recording(np.zeros((1, 1000)), 100.0, ["II"], name="flat")
>>> out = plot_ecg_paper(rec, pathlib.Path(tempfile.mkdtemp()) / "flat.png")
>>> out.suffix, out.stat().st_size > 1000
('.png', True)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from detak.data.recording import Recording

MM_PER_S = 25.0
MM_PER_MV = 10.0
_MM = 1 / 25.4  # inches per millimetre
_LAYOUT_12 = (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6"))
_ROW_MM = 30.0
_MARGIN_MM = 10.0
_PULSE_MM = 7.0
_GRID_MINOR = "#f6c6c6"
_GRID_MAJOR = "#e58f8f"

_LABELS = (("hr_bpm", "HR", "bpm", 0), ("rr_ms", "RR", "ms", 0), ("pr_ms", "PR", "ms", 0),
           ("qrs_ms", "QRS", "ms", 0), ("qt_ms", "QT", "ms", 0),
           ("qtc_bazett_ms", "QTc(B)", "ms", 0), ("qtc_fridericia_ms", "QTc(F)", "ms", 0),
           ("st_ms", "ST", "ms", 0), ("rs_ratio", "R/S", "", 2))


def draw_mm_grid(ax: Any, width_mm: float, height_mm: float, *, minor: str = _GRID_MINOR,
                 major: str = _GRID_MAJOR, minor_lw: float = 0.25, major_lw: float = 0.5
                 ) -> None:
    """ECG-paper grid on axes whose units are millimetres: a line every 1 mm, every fifth one
    (5 mm = 0.2 s or 0.5 mV) heavier, behind the traces."""
    for x in np.arange(0, width_mm + 0.01, 1.0):
        is_major = abs(x / 5 - round(x / 5)) < 1e-6
        ax.axvline(x, color=major if is_major else minor, lw=major_lw if is_major else minor_lw,
                   zorder=0)
    for y in np.arange(0, height_mm + 0.01, 1.0):
        is_major = abs(y / 5 - round(y / 5)) < 1e-6
        ax.axhline(y, color=major if is_major else minor, lw=major_lw if is_major else minor_lw,
                   zorder=0)


def format_intervals(values: Mapping[str, Any]) -> str:
    """One line of measured values for a plot title; unmeasured values show as '—'.

    >>> line = format_intervals({"hr_bpm": 61.4, "pr_ms": None, "rs_ratio": 0.456})
    >>> line.split("   ")[:3], line.split("   ")[-1]
    (['HR 61 bpm', 'RR — ms', 'PR — ms'], 'R/S 0.46')
    """
    parts = []
    for key, label, unit, digits in _LABELS:
        v = values.get(key)
        text = "—" if v is None or (isinstance(v, float) and not np.isfinite(v)) else (
            f"{v:.{digits}f}")
        parts.append(f"{label} {text}{(' ' + unit) if unit else ''}")
    return "   ".join(parts)


def _panels(rec: Recording) -> list[tuple[str, float, float, int]]:
    """(lead, t0 s, t1 s, row) per panel."""
    std = all(rec.has_lead(lead) for row in _LAYOUT_12 for lead in row)
    if std and rec.duration_s >= 9.99:
        panels = [(lead, 2.5 * c, 2.5 * (c + 1), r)
                  for r, row in enumerate(_LAYOUT_12) for c, lead in enumerate(row)]
        panels.append(("II", 0.0, 10.0, 3))
        return panels
    span = min(rec.duration_s, 10.0)
    return [(lead, 0.0, span, r) for r, lead in enumerate(rec.leads)]


def _mark_beat(ax: Any, rec: Recording, lead: str, row_baseline_mm: float, t0: float, t1: float,
               intervals: Mapping[str, Any]) -> None:
    """Draw where PR, QRS and QT were measured on one beat of the strip (``fiducials``)."""
    fid = intervals.get("fiducials") or {}
    beats = [b for b in fid.get("beats_s", []) if t0 + 0.6 < b < t1 - 0.8]
    bounds = (fid.get("boundaries_ms") or {}).get(lead) or {}
    if not beats or not bounds:
        return
    beat = beats[len(beats) // 2]

    def x_of(key: str) -> float | None:
        v = bounds.get(key)
        return None if v is None else _PULSE_MM + (beat + v / 1000.0) * MM_PER_S

    spans = (("pr_ms", "PR", "p_on", "qrs_on", 0), ("qrs_ms", "QRS", "qrs_on", "qrs_off", 1),
             ("qt_ms", "QT", "qrs_on", "t_off", 2))
    for key, label, a, b, level in spans:
        xa, xb, value = x_of(a), x_of(b), intervals.get(key)
        if xa is None or xb is None or value is None:
            continue
        y = row_baseline_mm - 6.0 - 3.2 * level
        ax.annotate("", xy=(xa, y), xytext=(xb, y), zorder=4,
                    arrowprops={"arrowstyle": "|-|", "color": "#1f4e9c", "lw": 0.6,
                                "shrinkA": 0, "shrinkB": 0, "mutation_scale": 2})
        ax.text(xb + 0.8, y, f"{label} {value:.0f}", fontsize=5, color="#1f4e9c", va="center",
                zorder=4)
    for key in ("p_on", "qrs_on", "qrs_off", "t_off"):
        x = x_of(key)
        if x is not None:
            ax.plot([x, x], [row_baseline_mm - 13.5, row_baseline_mm + 9], color="#1f4e9c",
                    lw=0.3, ls=(0, (2, 2)), zorder=1)


def plot_ecg_paper(rec: Recording, path: str | Path, intervals: Mapping[str, Any] | None = None,
                   title: str | None = None, subtitle: str | None = None) -> Path:
    """Draw ``rec`` on ECG paper and save it (PNG or SVG by the suffix of ``path``).

    ``intervals`` is the overall dict of `Intervals.to_dict()` (or any mapping with the same
    keys); it is printed under the title. If it carries ``fiducials`` (as
    `detak.signal.analysis.analyse_recording` gives), one beat of the bottom strip is marked
    with where PR, QRS and QT were measured.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    panels = _panels(rec)
    n_rows = max(p[3] for p in panels) + 1
    width_s = max(p[2] for p in panels)
    header_mm = 22.0
    grid_w, grid_h = _PULSE_MM + width_s * MM_PER_S, n_rows * _ROW_MM
    w_mm = grid_w + 2 * _MARGIN_MM
    h_mm = n_rows * _ROW_MM + header_mm + _MARGIN_MM
    fig = plt.figure(figsize=(w_mm * _MM, h_mm * _MM), dpi=150)
    ax = fig.add_axes((_MARGIN_MM / w_mm, _MARGIN_MM / h_mm,
                       grid_w / w_mm, grid_h / h_mm))
    draw_mm_grid(ax, grid_w, grid_h)
    for lead, t0, t1, row in panels:
        x = rec.lead(lead).astype(np.float64)
        i0, i1 = int(round(t0 * rec.fs)), min(rec.n_samples, int(round(t1 * rec.fs)))
        seg = x[i0:i1]
        if seg.size == 0:
            continue
        finite = seg[np.isfinite(seg)]
        centre = float(np.median(finite)) if finite.size else 0.0
        baseline_mm = grid_h - (row + 0.5) * _ROW_MM
        t_mm = _PULSE_MM + (np.arange(i0, i1) / rec.fs) * MM_PER_S
        y_mm = baseline_mm + (seg - centre) * MM_PER_MV
        y_mm = np.clip(y_mm, baseline_mm - _ROW_MM, baseline_mm + _ROW_MM)
        ax.plot(t_mm, y_mm, color="black", lw=0.6, zorder=2)
        ax.text(_PULSE_MM + t0 * MM_PER_S + 1.0, baseline_mm + 0.38 * _ROW_MM, lead, fontsize=7,
                fontweight="bold", va="top", zorder=3)
        if intervals is not None and row == n_rows - 1 and lead == panels[-1][0]:
            _mark_beat(ax, rec, lead, baseline_mm, t0, t1, intervals)
    for row in range(n_rows):  # 1 mV calibration pulse before each row: 5 mm wide, 10 mm tall
        base = grid_h - (row + 0.5) * _ROW_MM
        ax.plot([0, 1, 1, 6, 6, 7], [base, base, base + MM_PER_MV, base + MM_PER_MV, base, base],
                color="black", lw=0.8, zorder=3)
    ax.set_xlim(0, grid_w)
    ax.set_ylim(0, grid_h)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    head = title or rec.name or "ECG"
    fig.text(_MARGIN_MM / w_mm, 1 - 6 / h_mm, head, fontsize=10, fontweight="bold")
    info = f"{rec.fs:g} Hz · {rec.n_leads} lead(s) · {rec.duration_s:.1f} s · 25 mm/s · 10 mm/mV"
    fig.text(_MARGIN_MM / w_mm, 1 - 11 / h_mm, info + (f" · {subtitle}" if subtitle else ""),
             fontsize=7)
    if intervals is not None:
        fig.text(_MARGIN_MM / w_mm, 1 - 16 / h_mm, format_intervals(intervals), fontsize=7,
                 family="monospace")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out

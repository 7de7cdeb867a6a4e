"""Small inline SVG drawings for the kiosk app: the 12-lead ECG with the MI CAM as a colour
band under each lead, and a resident's HR / QTc trend.

>>> from detak.data.recording import Recording
>>> import numpy as np
>>> rec = Recording(np.zeros((1, 500), np.float32), 100.0, ["II"])
>>> svg = ecg_with_cam(rec, {"fs": 100.0, "window_starts_s": [0.0], "mi": [[0.0] * 500]})
>>> svg.startswith("<svg") and "II" in svg
True
>>> trend_svg([("2026-01-01", 70.0), ("2026-02-01", 80.0)]).count("<circle")
2
>>> trend_svg([("2026-01-01", 70.0)])
''
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from detak.data.recording import Recording

ORDER = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


def _cam_colour(v: float) -> str:
    """White (0) → yellow → red (1)."""
    v = min(1.0, max(0.0, float(v)))
    if v < 0.5:
        g, b = 255, int(255 * (1 - 2 * v))
    else:
        g, b = int(255 * (2 - 2 * v)), 0
    return f"rgb(255,{g},{b})"


def _cam_series(cam: dict[str, Any] | None, duration: float, bins: int) -> list[float] | None:
    if not cam or not cam.get("mi"):
        return None
    fs = float(cam.get("fs") or 100.0)
    acc, cnt = np.zeros(bins), np.zeros(bins)
    for start, row in zip(cam.get("window_starts_s") or [0.0], cam["mi"], strict=False):
        row = np.asarray(row, float)
        t = start + np.arange(len(row)) / fs
        idx = np.clip((t / duration * bins).astype(int), 0, bins - 1)
        np.add.at(acc, idx, row)
        np.add.at(cnt, idx, 1)
    out = np.where(cnt > 0, acc / np.maximum(cnt, 1), 0.0)
    top = float(out.max()) if out.size else 0.0
    return list(out / top) if top > 0 else list(out)


def ecg_with_cam(rec: Recording, cam: dict[str, Any] | None, *, width: int = 760,
                 row_h: int = 46, band_h: int = 8, label: str = "") -> str:
    """The leads of ``rec`` one under the other (standard order), each with the CAM band."""
    leads = [ld for ld in ORDER if ld in rec.leads] or list(rec.leads)
    left, dur = 40, max(rec.duration_s, 1e-3)
    plot_w = width - left - 4
    bins = 200
    series = _cam_series(cam, dur, bins)
    h = len(leads) * (row_h + band_h + 4) + 4
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {h}" '
             f'width="100%" role="img" aria-label="{label}" class="ecg">']
    step = max(1, int(rec.n_samples / (plot_w * 1.5)))
    for i, lead in enumerate(leads):
        y0 = 4 + i * (row_h + band_h + 4)
        x = np.asarray(rec.signal[list(rec.leads).index(lead)], float)[::step]
        x = np.nan_to_num(x - np.nanmedian(x) if np.isfinite(x).any() else x)
        ys = np.clip(y0 + row_h / 2 - x * (row_h / 2.0), y0, y0 + row_h)  # row_h/2 px per mV
        xs = left + np.arange(len(x)) * plot_w / max(1, len(x) - 1)
        pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs, ys, strict=True))
        parts.append(f'<text x="2" y="{y0 + row_h / 2 + 6}" class="lead">{lead}</text>')
        parts.append(f'<polyline points="{pts}" fill="none" stroke="#111" stroke-width="1"/>')
        if series is not None:
            parts.append(f'<rect x="{left}" y="{y0 + row_h + 1}" width="{plot_w}" '
                         f'height="{band_h}" fill="none" stroke="#bbb" stroke-width="0.5"/>')
            bw = plot_w / bins
            for j, v in enumerate(series):
                parts.append(f'<rect x="{left + j * bw:.1f}" y="{y0 + row_h + 1}" '
                             f'width="{bw + 0.3:.1f}" height="{band_h}" '
                             f'fill="{_cam_colour(v)}"/>')
    parts.append("</svg>")
    return "".join(parts)


def trend_svg(points: Sequence[tuple[str, float | None]], *, width: int = 300, height: int = 80,
              unit: str = "") -> str:
    """A small line of ``(label, value)`` points, oldest first (None values skipped); empty
    with fewer than two values."""
    vals = [(lab, float(v)) for lab, v in points if v is not None and math.isfinite(float(v))]
    if len(vals) < 2:
        return ""          # a trend needs two screenings
    lo, hi = min(v for _, v in vals), max(v for _, v in vals)
    span = (hi - lo) or 1.0
    n = len(vals)
    pad_x, top, bottom = 24, 22, 8      # room for the value labels above the points
    xy = [(pad_x + (width - 2 * pad_x) * i / (n - 1),
           height - bottom - (height - top - bottom) * (v - lo) / span)
          for i, (_, v) in enumerate(vals)]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" class="trend">']
    pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    parts.append(f'<polyline points="{pts}" fill="none" stroke="#1d4ed8" stroke-width="2"/>')
    for (x, y), (_, v) in zip(xy, vals, strict=True):
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#1d4ed8"/>')
        parts.append(f'<text x="{x:.1f}" y="{y - 7:.1f}" text-anchor="middle" '
                     f'font-size="14">{v:.0f}</text>')
    parts.append("</svg>")
    return "".join(parts)

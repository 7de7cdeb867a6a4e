"""The PDF report of one screening: one landscape A4 page a doctor reads and signs.

Drawn with matplotlib's PDF backend (a base dependency), TrueType fonts embedded (DejaVu Sans,
bundled with matplotlib; it covers Bahasa Indonesia), at TRUE SCALE: the page is 297 × 210 mm
and every axes is placed in millimetres, so the ECG grid's small squares are 1 mm on paper
(25 mm/s, 10 mm/mV) when printed at 100 %. Page content:

* header: facility, resident (name, resident number, age and sex when known), date and time in
  the locale's format, device, nurse; the urgency banner (colour, level, reasons);
* the ECG: 12 leads in the 3 × 4 layout (2.5 s each) plus a 10-s lead II rhythm strip, or one
  10-s strip per lead for 1- to 3-lead recordings; under each strip the MI Grad-CAM as a colour
  band with its legend (12-lead screenings);
* intervals with the clinical rule set's normal ranges, values outside them marked; the
  rhythm findings (issue 17: name and level in the report's language, urgency colour, the
  classifier's probability, reasons, "for the doctor" where rules and classifier disagree);
  the interval rule labels (s3, clinical) and reasons; NB label and probability; MI probability with
  the model's operating point (or why MI was not screened); quality verdict; versions;
* the disclaimer in both languages and a signature line for the reviewing doctor.

A rejected recording gets its reasons and what to do next, and no measurements.

>>> from detak.data.samples import load_sample
>>> from detak.kiosk.screening import screen
>>> rec = load_sample("ludb-1").select(["II"])
>>> pdf = render_report(screen(rec, lang="en").to_dict(), rec, lang="en",
...                     resident={"name": "Siti Rahayu", "resident_number": "A-17"})
>>> pdf[:5], len(pdf) > 10_000
(b'%PDF-', True)
"""

from __future__ import annotations

import datetime as dt
import io
import math
import textwrap
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from detak.data.recording import Recording
from detak.kiosk.i18n import LANGUAGES, N_, check_language, number, translator
from detak.kiosk.interval_text import reason_text
from detak.kiosk.quality_text import quality_texts
from detak.kiosk.ranges import normal_ranges, range_text
from detak.report.paper import MM_PER_MV, MM_PER_S, _panels, draw_mm_grid

PAGE_MM = (297.0, 210.0)            # A4 landscape
_PT_PER_MM = 72.0 / 25.4
_X0 = 20.0                          # left edge of the ECG grid (mm)
_PULSE_MM = 7.0                     # 1 mV calibration pulse before each row
_ROW_MM = 24.0                      # height of one ECG row
_GRID_TOP = 34.0                    # top of the ECG grid (mm from the page top)
_CAM_MM = 2.2                       # height of the CAM band under each strip
_CAM_CMAP = "YlOrRd"
_URGENCY_COLOURS = {"refer today": ("#b3001b", "white"),
                    "routine review": ("#f2a900", "black"),
                    "no finding": ("#2e7d32", "white")}

NOT_SCREENED = N_("not screened: record again")
DISCLAIMER = N_("Screening result, not a diagnosis — to be reviewed by a doctor.")
_INTERVAL_ROWS = (("hr_bpm", N_("Heart rate"), "bpm", 0), ("rr_ms", "RR", "ms", 0),
                  ("pr_ms", "PR", "ms", 0), ("qrs_ms", "QRS", "ms", 0), ("qt_ms", "QT", "ms", 0),
                  ("qtc_bazett_ms", "QTc (Bazett)", "ms", 0),
                  ("qtc_fridericia_ms", "QTc (Fridericia)", "ms", 0), ("st_ms", "ST", "ms", 0))
_SEX = {"F": N_("female"), "M": N_("male")}
_VERDICT = {"ok": N_("good"), "warn": N_("acceptable"), "reject": N_("rejected")}
_WHAT_NEXT = N_("What to do: check that every electrode sticks firmly to clean, dry skin, ask "
                "the resident to lie still and relax, then record again. No measurement was "
                "made from this recording.")


# ------------------------------------------------------------------------------ values


def _finite(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _fixed(value: float, lang: str, digits: int = 2) -> str:
    """``value`` with exactly ``digits`` decimals in the locale's format ("0,40")."""
    from babel.numbers import format_decimal

    return format_decimal(round(float(value), digits), format="#,##0." + "0" * digits,
                          locale=lang)


def _when(created_at: str, lang: str) -> str:
    """The screening time in the kiosk's local time zone, in the locale's format."""
    from babel.dates import format_date, format_time

    t = dt.datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    local = t.astimezone()
    off = local.utcoffset() or dt.timedelta(0)
    hours, rest = divmod(int(off.total_seconds()) // 60, 60)
    tz = f"UTC{'+' if off >= dt.timedelta(0) else '-'}{abs(hours):02d}:{rest:02d}"
    return (f"{format_date(local.date(), 'long', locale=lang)}, "
            f"{format_time(local.time(), 'short', locale=lang)} ({tz})")


def _age(birth_date: Any, on: str) -> int | None:
    try:
        born = dt.date.fromisoformat(str(birth_date)[:10])
        day = dt.datetime.fromisoformat(on.replace("Z", "+00:00")).date()
    except (TypeError, ValueError):
        return None
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def _cam_by_time(mi: Mapping[str, Any] | None, duration_s: float) -> np.ndarray | None:
    """The MI Grad-CAM on the recording's time axis (windows averaged where they overlap),
    scaled to 0–1 by its maximum; None when there is none."""
    cam = (mi or {}).get("cam") or {}
    maps, starts, fs = cam.get("mi"), cam.get("window_starts_s"), _finite(cam.get("fs"))
    if not maps or not starts or not fs:
        return None
    n = int(round(max(duration_s, 0.0) * fs))
    acc, cnt = np.zeros(n), np.zeros(n)
    for row, s0 in zip(maps, starts, strict=False):
        row = np.asarray(row, dtype=float)
        i0 = int(round(float(s0) * fs))
        i1 = min(n, i0 + row.size)
        if i1 > i0:
            acc[i0:i1] += np.nan_to_num(row[: i1 - i0])
            cnt[i0:i1] += 1
    out = np.divide(acc, cnt, out=np.zeros(n), where=cnt > 0)
    top = out.max(initial=0.0)
    return out / top if top > 0 else out


# ------------------------------------------------------------------------------ layout


class _Page:
    """Text on the page in millimetres from the top-left corner."""

    def __init__(self, fig: Any) -> None:
        self.fig = fig
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, PAGE_MM[0])
        ax.set_ylim(PAGE_MM[1], 0)
        ax.axis("off")
        self.ax = ax

    def text(self, x: float, y: float, s: str, size: float = 7.0, **kw: Any) -> None:
        self.ax.text(x, y, s, fontsize=size, va=kw.pop("va", "top"), **kw)

    def wrapped(self, x: float, y: float, s: str, width_mm: float, size: float = 7.0,
                line_mm: float | None = None, max_lines: int = 99, **kw: Any) -> float:
        """Write ``s`` wrapped to ``width_mm``; returns the y under it."""
        lines = self.lines(s, width_mm, size, bold=kw.get("fontweight") == "bold")
        em = 0.225 if kw.get("fontweight") == "bold" else 0.185   # mm per character per pt
        chars = max(10, int(width_mm / (em * size)))
        if len(lines) > max_lines:
            lines = lines[:max_lines]
            lines[-1] = lines[-1][: max(0, chars - 1)] + "…"
        step = line_mm or size * 0.48
        for i, line in enumerate(lines):
            self.text(x, y + i * step, line, size, **kw)
        return y + len(lines) * step

    @staticmethod
    def lines(s: str, width_mm: float, size: float, bold: bool = False) -> list[str]:
        """``s`` wrapped to ``width_mm`` at ``size`` pt, as `wrapped` writes it."""
        em = 0.225 if bold else 0.185                              # mm per character per pt
        return textwrap.wrap(s, max(10, int(width_mm / (em * size)))) or [""]

    def fitted(self, x: float, y: float, s: str, width_mm: float, size: float,
               **kw: Any) -> None:
        """One line of text, its font shrunk (to 5.5 pt at least, then cut) to fit
        ``width_mm`` — a long facility or resident name never runs into the banner."""
        em = 0.23 if kw.get("fontweight") == "bold" else 0.21  # mm per character per pt
        while size > 5.5 and len(s) * em * size > width_mm:
            size -= 0.5
        chars = int(width_mm / (em * size))
        self.text(x, y, s if len(s) <= chars else s[: chars - 1] + "…", size, **kw)

    def rect(self, x: float, y: float, w: float, h: float, **kw: Any) -> None:
        from matplotlib.patches import Rectangle

        self.ax.add_patch(Rectangle((x, y), w, h, **kw))

    def hline(self, x0: float, x1: float, y: float, **kw: Any) -> None:
        self.ax.plot([x0, x1], [y, y], **{"color": "black", "lw": 0.5, **kw})

    def axes_mm(self, x: float, y: float, w: float, h: float) -> Any:
        """Axes whose data units are millimetres, placed at (x, y) from the top-left."""
        W, H = PAGE_MM
        ax = self.fig.add_axes((x / W, 1 - (y + h) / H, w / W, h / H))
        ax.set_xlim(0, w)
        ax.set_ylim(0, h)
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        return ax


def _draw_ecg(page: _Page, rec: Recording, cam: np.ndarray | None, cam_fs: float | None,
              rejected: bool, _: Callable[[str], str], lang: str) -> float:
    """The ECG grid at true scale; returns the y (mm) under it."""
    panels = _panels(rec)
    n_rows = max(p[3] for p in panels) + 1
    width_s = max(p[2] for p in panels)
    grid_w, grid_h = _PULSE_MM + max(width_s, 2.5) * MM_PER_S, n_rows * _ROW_MM
    ax = page.axes_mm(_X0, _GRID_TOP, grid_w, grid_h)
    draw_mm_grid(ax, grid_w, grid_h, minor_lw=0.2, major_lw=0.45)
    trace = "#7a7a7a" if rejected else "black"
    for lead, t0, t1, row in panels:
        i0, i1 = int(round(t0 * rec.fs)), min(rec.n_samples, int(round(t1 * rec.fs)))
        seg = rec.lead(lead).astype(np.float64)[i0:i1]
        if seg.size == 0:
            continue
        finite = seg[np.isfinite(seg)]
        centre = float(np.median(finite)) if finite.size else 0.0
        row_bottom = grid_h - (row + 1) * _ROW_MM
        base = row_bottom + _CAM_MM + 0.42 * (_ROW_MM - _CAM_MM)
        x_mm = _PULSE_MM + (np.arange(i0, i1) / rec.fs) * MM_PER_S
        # big waves run into the neighbouring rows, as on paper; a rejected recording's
        # (noise, mostly) stays in its own row so each lead's problem can be seen
        lo, hi = ((row_bottom + 0.2, row_bottom + _ROW_MM - 0.2) if rejected
                  else (0.2, grid_h - 0.2))
        y_mm = np.clip(base + (seg - centre) * MM_PER_MV, lo, hi)
        ax.plot(x_mm, y_mm, color=trace, lw=0.5, zorder=3, solid_joinstyle="round")
        ax.text(_PULSE_MM + t0 * MM_PER_S + 1.0, row_bottom + _ROW_MM - 1.0, lead, fontsize=7,
                fontweight="bold", va="top", zorder=4,
                bbox={"fc": "white", "ec": "none", "pad": 0.4, "alpha": 0.8})
        if t0 > 0:  # a tick where one lead's segment ends and the next begins
            xs = _PULSE_MM + t0 * MM_PER_S
            ax.plot([xs, xs], [base - 2.5, base + 2.5], color=trace, lw=0.6, zorder=3)
        if cam is not None and cam_fs:
            c0, c1 = int(round(t0 * cam_fs)), min(cam.size, int(round(t1 * cam_fs)))
            if c1 > c0:
                ax.imshow(cam[c0:c1][None, :], cmap=_CAM_CMAP, vmin=0, vmax=1, aspect="auto",
                          interpolation="nearest", zorder=2,
                          extent=(_PULSE_MM + t0 * MM_PER_S, _PULSE_MM + t1 * MM_PER_S,
                                  row_bottom + 0.1, row_bottom + _CAM_MM))
    for row in range(n_rows):  # 1 mV calibration pulse: 5 mm wide, 10 mm tall
        base = grid_h - (row + 1) * _ROW_MM + _CAM_MM + 0.42 * (_ROW_MM - _CAM_MM)
        ax.plot([0, 1, 1, 6, 6, 7], [base, base, base + MM_PER_MV, base + MM_PER_MV, base, base],
                color=trace, lw=0.7, zorder=3)
    ax.set_xlim(0, grid_w)
    ax.set_ylim(0, grid_h)
    y = _GRID_TOP + grid_h + 1.2
    scale = _("25 mm/s · 10 mm/mV · {fs} Hz · {n} lead(s) · grid 1 mm").format(
        fs=number(rec.fs, lang, 0), n=rec.n_leads)
    page.text(_X0, y, scale, 6.5, color="#444444")
    if rejected:
        page.text(_X0 + 80, y, _("Rejected recording: not for interpretation."), 6.5,
                  color="#b3001b", fontweight="bold")
    if cam is not None:
        _cam_legend(page, _X0 + grid_w - 95, y, _)
    return y + 3.5


def _cam_legend(page: _Page, x: float, y: float, _: Callable[[str], str]) -> None:
    ax = page.axes_mm(x + 55, y - 0.2, 40, 2.4)
    ax.imshow(np.linspace(0, 1, 64)[None, :], cmap=_CAM_CMAP, aspect="auto",
              extent=(0, 40, 0, 2.4))
    ax.set_xlim(0, 40)
    page.text(x + 54, y, _("colour band under each lead: MI relevance (Grad-CAM)"), 6.2,
              ha="right", color="#444444")
    page.text(x + 55, y + 2.6, _("low"), 5.5, color="#444444")
    page.text(x + 95, y + 2.6, _("high"), 5.5, ha="right", color="#444444")


def _header(page: _Page, s: Mapping[str, Any], lang: str, _: Callable[[str], str], *,
            facility: str | None, nurse: str | None, resident: Mapping[str, Any] | None,
            device: str | None) -> None:
    page.text(_X0, 8, _("ECG screening report"), 13, fontweight="bold")
    page.fitted(_X0 + 75, 8.8, facility or _("Facility: —"), 100, 9)
    res = dict(resident or {})
    name = res.get("name") or "—"
    number_ = res.get("resident_number") or s.get("resident_id") or "—"
    parts = [_("Resident: {name}").format(name=name),
             _("Resident number: {number}").format(number=number_)]
    age = _age(res.get("birth_date"), s["created_at"]) if res.get("birth_date") else None
    if age is not None:
        parts.append(_("{n} years").format(n=age))
    sex = res.get("sex") or (s.get("rhythm") or {}).get("sex")
    if sex in _SEX:
        parts.append(_(_SEX[sex]))
    page.fitted(_X0, 15.5, "   ·   ".join(parts), 172, 8.5, fontweight="bold")
    dev = device or _device_text(s)
    line2 = [_("Date: {when}").format(when=_when(s["created_at"], lang)),   # the device last:
             _("Nurse: {nurse}").format(nurse=nurse or "—"),              # a long one is cut
             _("Device: {device}").format(device=dev)]
    page.fitted(_X0, 20.5, "   ·   ".join(line2), 172, 7.5)
    rec = s.get("recording") or {}
    line3 = [_("Screening: {id}").format(id=s.get("id", "—")),
             _("Source: {source}").format(source=s.get("source", "—")),
             _("{d} s recording").format(d=number(rec.get("duration_s") or 0, lang, 1))]
    page.fitted(_X0, 25, "   ·   ".join(line3), 172, 6.5, color="#444444")
    _urgency_banner(page, s, _)


def _device_text(s: Mapping[str, Any]) -> str:
    d = s.get("device") or {}
    if isinstance(d, Mapping):
        text = " ".join(str(d[k]) for k in ("name", "model", "id", "url") if d.get(k))
    else:
        text = str(d)
    return text or "—"


def _urgency_banner(page: _Page, s: Mapping[str, Any], _: Callable[[str], str]) -> None:
    from detak.kiosk.urgency import LEVEL_TEXT

    u = s.get("urgency") or {}
    level = u.get("level") or "no finding"
    bg, fg = _URGENCY_COLOURS.get(level, ("#555555", "white"))
    title = _(LEVEL_TEXT[level]) if level in LEVEL_TEXT else (u.get("level_text") or level)
    if (s.get("quality") or {}).get("verdict") == "reject":
        # never a green "no finding" for a recording nobody could read
        bg, fg, title = "#555555", "white", _(NOT_SCREENED)
    x, y, w, h = 196.0, 6.0, 81.0, _GRID_TOP - 7.5   # ends 1.5 mm above the grid
    page.rect(x, y, w, h, fc=bg, ec="none")
    page.text(x + 2.5, y + 2.0, _("Urgency"), 7, color=fg)
    page.text(x + 2.5, y + 5.2, title.upper(), 12.5 if len(title) <= 20 else 9.5, color=fg,
              fontweight="bold")
    reasons = ["• " + r for r in (u.get("reasons") or [])]
    size, shown = _banner_fit(page, reasons, w - 5, h - 13.0)
    yy = y + 11.5
    for reason in reasons[:shown]:                 # each reason whole, never cut with "…"
        yy = page.wrapped(x + 2.5, yy, reason, w - 5, size, color=fg)
    if shown < len(reasons):
        page.text(x + 2.5, yy, _("… and {n} more").format(n=len(reasons) - shown), size,
                  color=fg)


_BANNER_SIZES = (6.3, 5.9, 5.5, 5.1)   # pt: the banner's reasons shrink to fit, to 5.1 at least


def _banner_fit(page: _Page, reasons: list[str], width_mm: float,
                height_mm: float) -> tuple[float, int]:
    """The largest font size at which every reason fits whole in ``height_mm``, and how many
    reasons are shown: all of them if they fit at some size, else as many whole ones as fit at
    the smallest size with a line left for "… and N more"."""
    for size in _BANNER_SIZES:
        n = sum(len(page.lines(r, width_mm, size)) for r in reasons)
        if n * size * 0.48 <= height_mm:
            return size, len(reasons)
    size = _BANNER_SIZES[-1]
    room = int(height_mm // (size * 0.48)) - 1           # a line for "… and N more"
    shown, used = 0, 0
    for r in reasons:
        used += len(page.lines(r, width_mm, size))
        if used > room:
            break
        shown += 1
    return size, shown


def _intervals_table(page: _Page, s: Mapping[str, Any], lang: str, _: Callable[[str], str],
                     x: float, y: float) -> None:
    vals = s.get("intervals") or {}
    ranges = normal_ranges((s.get("rhythm") or {}).get("sex"))  # the limits the labels used
    page.text(x, y, _("Intervals"), 9, fontweight="bold")
    y += 5
    cols = (x, x + 36, x + 58)
    for cx, head in zip(cols, (_("Measure"), _("Value"), _("Normal range")), strict=True):
        page.text(cx, y, head, 6.5, color="#444444")
    y += 3.0
    page.hline(x, x + 88, y - 0.2, lw=0.4)
    y += 0.6
    for key, label, unit, digits in _INTERVAL_ROWS:
        v = _finite(vals.get(key))
        rng = ranges.get(key)
        out = v is not None and rng is not None and not (rng[0] <= v <= rng[1])
        mark = ""
        if out:
            mark = " ▲" if v > rng[1] else " ▼"
        text = "—" if v is None else f"{number(v, lang, digits)} {unit}{mark}"
        page.text(cols[0], y, _(label) if key == "hr_bpm" else label, 7.2)
        page.text(cols[1], y, text, 7.2, color="#b3001b" if out else "black",
                  fontweight="bold" if out else "normal")
        page.text(cols[2], y, f"{range_text(*rng, lang)} {unit}" if rng else "—", 7.2)
        y += 3.6
    page.text(x, y + 0.3, _("▲ above / ▼ below the normal range (clinical rule set; QT, ST: "
                            "S3)"), 5.8, color="#444444")
    shown = {key: label for key, label, _unit, _d in _INTERVAL_ROWS}
    y += 3.0
    for key, why in (vals.get("reasons") or {}).items():  # why a value in the table is "—"
        if key in shown and _finite(vals.get(key)) is None:
            why = reason_text(str(why), lang)        # the chain's English, translated
            y = page.wrapped(x, y, f"{_(shown[key]) if key == 'hr_bpm' else shown[key]}: {why}",
                             88, 5.6, color="#444444", max_lines=2)


_FINDINGS_BOTTOM = 183.0   # mm: the versions line is at 186 mm
_RHYTHM_ROWS = 4           # rhythm findings shown at most (the rest: "… and N more")


def _rhythm_findings(page: _Page, s: Mapping[str, Any], lang: str, _: Callable[[str], str],
                     x: float, y: float, w: float) -> float:
    """The rhythm findings (issue 17): a mark in the urgency colour (grey: the classifier's
    alone), the name, the level, the classifier's probability, the reasons in ``lang``, and
    "for the doctor" where rules and classifier disagree. Nothing for an old screening."""
    from detak.kiosk.rhythm_text import finding_rows

    rhythm = s.get("rhythm") or {}
    rows = finding_rows(rhythm, lang)
    if not rows and "interval_findings" not in rhythm:
        return y          # screened before rhythm findings existed
    page.text(x, y, _("Rhythm"), 9, fontweight="bold")
    y += 4.6
    if not rows:
        return page.wrapped(x, y, _("No rhythm finding: the rhythm could not be classified "
                                    "from this recording. The doctor sees the ECG."), w, 6.8,
                            max_lines=2) + 1.0
    for i, row in enumerate(rows):
        if i == _RHYTHM_ROWS or y > _FINDINGS_BOTTOM - 12:
            page.text(x, y, _("… and {n} more").format(n=len(rows) - i), 6.2)
            return y + 3.2
        colour = ("#777777" if row["source"] == "classifier"
                  else _URGENCY_COLOURS.get(row["level"], ("#2e7d32", ""))[0])
        page.rect(x, y - 0.2, 1.6, 3.4, fc=colour, ec="none")
        head = row["name"]
        if row["level"] != "no finding":
            head += f" — {_(row['level'])}"
        if row["probability_text"]:
            head += f" · {row['probability_text']}"
        y = page.wrapped(x + 2.8, y, head, w - 2.8, 7.3, fontweight="bold", max_lines=2)
        if row["reasons"]:
            y = page.wrapped(x + 2.8, y + 0.2, " ".join(row["reasons"]), w - 2.8, 6.1,
                             max_lines=3 if len(rows) <= 2 else 2, color="#333333")
        if row["note"]:
            y = page.wrapped(x + 2.8, y + 0.2, "⚑ " + row["note"], w - 2.8, 6.1,
                             max_lines=2, color="#5b21b6", fontweight="bold")
        y += 1.0
    return y


def _findings(page: _Page, s: Mapping[str, Any], lang: str, _: Callable[[str], str],
              x: float, y: float, w: float) -> float:
    rhythm = s.get("rhythm") or {}
    y = _rhythm_findings(page, s, lang, _, x, y, w)
    page.text(x, y, _("Interval rules"), 8, fontweight="bold")
    y += 4.0
    labels = [f"S3: {rhythm.get('s3_label_text') or rhythm.get('s3_label') or '—'}",
              _("clinical: {label}").format(label=rhythm.get("clinical_label_text") or "—")]
    y = page.wrapped(x, y, "   ·   ".join(labels), w, 7.0, fontweight="bold")
    for reason in (rhythm.get("reasons") or [])[:3]:
        if y > _FINDINGS_BOTTOM - 6:
            break
        y = page.wrapped(x, y + 0.3, "• " + reason, w, 6.2, max_lines=2)
    nb = s.get("nb") or {}
    if nb.get("label") and y <= _FINDINGS_BOTTOM - 3:
        y = page.wrapped(x, y + 0.8, _("NB model: {label} (probability {p})").format(
            label=nb.get("label_text") or nb["label"], p=_fixed(nb.get("probability") or 0,
                                                                lang)), w, 7.0)
    return y


def _mi_section(page: _Page, s: Mapping[str, Any], lang: str, _: Callable[[str], str],
                x: float, y: float, w: float) -> float:
    """The MI probability against the model's operating point (or why MI was not screened)."""
    page.text(x, y, _("Myocardial infarction (MI)"), 9, fontweight="bold")
    y += 5
    mi = s.get("mi")
    if mi and _finite(mi.get("probability")) is not None:
        p = float(mi["probability"])
        th = ((mi.get("thresholds") or {}).get("MI") or {})
        op = _finite(th.get("operating"))
        line = _("MI probability {p}").format(p=_fixed(p, lang))
        page.text(x, y, line, 8.5, fontweight="bold",
                  color="#b3001b" if op is not None and p >= op else "black")
        y += 4.2
        if str(mi.get("calibration") or "").startswith("calibrated"):
            y = page.wrapped(x, y, _("calibrated on PTB-XL fold 9: of 100 ECGs with this "
                                     "probability, about that many showed MI"), w, 6.2,
                             color="#444444")
        if op is not None:
            msg = (_("at or above the model's operating point {t}") if p >= op
                   else _("below the model's operating point {t}"))
            y = page.wrapped(x, y, msg.format(t=_fixed(op, lang)), w, 6.8)
        refer = _finite(th.get("refer"))
        if refer is not None:
            y = page.wrapped(x, y, _("refer today at {t} or above").format(
                t=_fixed(refer, lang)), w, 6.8)
        if mi.get("cam"):
            y = page.wrapped(x, y + 0.3, _("The coloured band under the ECG shows where the "
                                           "model looked for MI (Grad-CAM)."), w, 6.2,
                             color="#444444")
    else:
        y = page.wrapped(x, y, s.get("mi_reason") or _("MI screening was not run."), w, 7.2,
                         fontweight="bold")
    return y


def _side(page: _Page, s: Mapping[str, Any], lang: str, _: Callable[[str], str], x: float,
          y: float, w: float) -> None:
    """Right column: the MI finding (not for a rejected recording), then recording quality."""
    if (s.get("quality") or {}).get("verdict") != "reject":
        y = _mi_section(page, s, lang, _, x, y, w) + 3.0
    q = s.get("quality") or {}
    verdict = q.get("verdict") or "—"
    page.text(x, y, _("Recording quality"), 9, fontweight="bold")
    y += 5
    page.text(x, y, _(_VERDICT[verdict]) if verdict in _VERDICT else verdict, 8,
              fontweight="bold")
    y += 3.8
    if verdict != "reject":  # a rejected recording's reasons fill the body
        reasons = quality_texts(q, lang)[1]
        for reason in reasons[:3]:
            y = page.wrapped(x, y, "• " + reason, w, 6.2, max_lines=2)
        if len(reasons) > 3:
            page.text(x, y, _("… and {n} more").format(n=len(reasons) - 3), 6.2)
            y += 3


def _versions_line(page: _Page, s: Mapping[str, Any], _: Callable[[str], str]) -> None:
    """One small line above the footer: detak, model, bundle and NB versions."""
    v = s.get("versions") or {}
    mi = s.get("mi") or {}
    rows = [("detak", v.get("detak")), (_("model"), v.get("model")),
            (_("bundle"), v.get("bundle") or mi.get("bundle") or _("shipped (no bundle)")),
            (_("NB model"), v.get("nb"))]
    text = _("Versions") + ": " + "   ·   ".join(f"{n} {val or '—'}" for n, val in rows)
    page.fitted(_X0, 186.2, text, PAGE_MM[0] - 2 * _X0, 6.0, color="#444444")


def _rejected_body(page: _Page, s: Mapping[str, Any], lang: str, _: Callable[[str], str],
                   y: float) -> None:
    """What to do (plain words), then the quality check's reasons (technical), in ``lang``."""
    page.text(_X0, y, _("The recording was rejected by the quality check"), 10,
              fontweight="bold", color="#b3001b")
    y += 5.5
    plain, reasons = quality_texts(s.get("quality") or {}, lang)
    for line in plain[:3]:
        y = page.wrapped(_X0, y, "• " + line, 175, 7.8, max_lines=2, fontweight="bold")
    y += 1
    shown = 0
    for reason in reasons:
        if y > 164.0:       # leave room for what to do above the versions line (186 mm)
            break
        y = page.wrapped(_X0, y, "• " + reason, 175, 6.8, max_lines=1, color="#444444")
        shown += 1
    if len(reasons) > shown:
        y = page.wrapped(_X0, y, _("… and {n} more").format(n=len(reasons) - shown), 175, 6.8)
    y += 2
    page.wrapped(_X0, y, _(_WHAT_NEXT), 175, 8, fontweight="bold")


def _footer(page: _Page, s: Mapping[str, Any], lang: str, _: Callable[[str], str],
            review: Mapping[str, Any] | None = None) -> None:
    y = 192.0
    page.hline(_X0, PAGE_MM[0] - _X0, y - 1.5, lw=0.6)
    page.text(_X0, y, _(DISCLAIMER), 8.5, fontweight="bold")
    other = next(lg for lg in LANGUAGES if lg != lang)
    page.text(_X0, y + 4.2, translator(other)(DISCLAIMER), 7, style="italic", color="#444444")
    x = 170.0
    if review:  # the doctor's signed verdict, synced back from the clinic server
        from detak.kiosk.verdict_text import action_text, review_line

        page.fitted(x - 18, y, review_line(review, lang), PAGE_MM[0] - _X0 - x + 18, 8,
                    fontweight="bold", color="#1e5e2c")
        what = f"{review.get('label') or ''} · {_(action_text(review.get('action')))}"
        if int(review.get("version") or 1) > 1:
            what += " · " + _("correction, version {n}").format(n=review.get("version"))
        page.fitted(x - 18, y + 4.2, what, PAGE_MM[0] - _X0 - x + 18, 7)
        if review.get("note"):
            page.fitted(x - 18, y + 8, str(review["note"]), PAGE_MM[0] - _X0 - x + 18, 6.5,
                        style="italic", color="#444444")
        return
    page.text(x, y, _("Reviewed by dr."), 7.5)
    page.hline(x + 24, PAGE_MM[0] - _X0, y + 3.2, lw=0.5)
    page.text(x, y + 6.5, _("Date"), 7.5)
    page.hline(x + 24, x + 60, y + 9.7, lw=0.5)
    page.text(x + 63, y + 6.5, _("Signature"), 7.5)
    page.hline(x + 80, PAGE_MM[0] - _X0, y + 9.7, lw=0.5)


# ------------------------------------------------------------------------------ entry


_RC = {"pdf.fonttype": 42, "font.family": "DejaVu Sans", "axes.unicode_minus": False}


def render_report(screening: Mapping[str, Any], recording: Recording, *, lang: str = "id",
                  facility: str | None = None, nurse: str | None = None,
                  resident: Mapping[str, Any] | None = None,
                  device: str | None = None, review: Mapping[str, Any] | None = None) -> bytes:
    """The screening's report as the bytes of a one-page landscape A4 PDF (see the module
    docstring). ``screening`` is `Screening.to_dict()` (as stored); its rule reasons are in
    the language it was screened in, the page's own words and the quality reasons in
    ``lang``. ``resident``: ``name``, ``resident_number``, ``birth_date`` (YYYY-MM-DD), ``sex``
    (F/M), any of them absent. ``facility``, ``nurse``: the header's names; default: those
    stored with the screening. ``review``: the doctor's newest verdict as the kiosk stored it
    (``doctor``, ``reviewed_at``, ``label``, ``action``, ``note``, ``version``): the footer says
    "reviewed by dr. X on DATE" in place of the blank signature lines."""
    import matplotlib

    _ = translator(check_language(lang))
    with matplotlib.rc_context(_RC):
        fig = _report_figure(screening, recording, lang=lang, facility=facility, nurse=nurse,
                             resident=resident, device=device, review=review)
        buf = io.BytesIO()
        fig.savefig(buf, format="pdf", metadata={
            "Title": _("ECG screening report"), "Creator": "detak",
            "Subject": str(screening.get("id", ""))})
    return buf.getvalue()


def render_report_png(screening: Mapping[str, Any], recording: Recording, *,
                      lang: str = "id", dpi: float = 100.0, facility: str | None = None,
                      nurse: str | None = None, resident: Mapping[str, Any] | None = None,
                      device: str | None = None) -> bytes:
    """The same page as `render_report` (the same figure code) as PNG bytes at ``dpi``: the
    preview the kiosk shows (Chromium in kiosk mode may draw an embedded PDF black).

    >>> from detak.data.samples import load_sample
    >>> from detak.kiosk.screening import screen
    >>> rec = load_sample("ludb-1").select(["II"])
    >>> png = render_report_png(screen(rec, lang="id").to_dict(), rec, dpi=40)
    >>> png[1:4]
    b'PNG'
    """
    import matplotlib

    check_language(lang)
    with matplotlib.rc_context(_RC):
        fig = _report_figure(screening, recording, lang=lang, facility=facility, nurse=nurse,
                             resident=resident, device=device)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


def _report_figure(screening: Mapping[str, Any], recording: Recording, *, lang: str,
                   facility: str | None, nurse: str | None,
                   resident: Mapping[str, Any] | None, device: str | None,
                   review: Mapping[str, Any] | None = None) -> Any:
    """The report page as a matplotlib Figure (called inside the report's rc_context)."""
    from matplotlib.figure import Figure

    _ = translator(lang)
    s = dict(screening)
    rejected = (s.get("quality") or {}).get("verdict") == "reject"
    fig = Figure(figsize=(PAGE_MM[0] / 25.4, PAGE_MM[1] / 25.4))
    page = _Page(fig)
    _header(page, s, lang, _, facility=facility or s.get("facility"),
            nurse=nurse or s.get("nurse"), resident=resident, device=device)
    cam = None if rejected else _cam_by_time(s.get("mi"), recording.duration_s)
    cam_fs = _finite(((s.get("mi") or {}).get("cam") or {}).get("fs"))
    y = _draw_ecg(page, recording, cam, cam_fs, rejected, _, lang)
    body_y = y + 1.5
    if rejected:
        _rejected_body(page, s, lang, _, body_y)
    else:
        _intervals_table(page, s, lang, _, _X0, body_y)
        _findings(page, s, lang, _, 116.0, body_y, 86.0)
    _side(page, s, lang, _, 208.0 if not rejected else 212.0, body_y,
          69.0 if not rejected else 65.0)
    _versions_line(page, s, _)
    _footer(page, s, lang, _, review)
    return fig


__all__ = ["PAGE_MM", "normal_ranges", "range_text", "render_report", "render_report_png"]

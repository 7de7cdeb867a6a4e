import numpy as np
import pytest

from detak.data.recording import Recording
from detak.report.paper import format_intervals, plot_ecg_paper

DPI = 150
PX_PER_MM = DPI / 25.4


def _dark_pixels(path):
    import matplotlib.image as mpimg

    img = mpimg.imread(path)[..., :3]
    return img.max(axis=2) < 0.35  # black trace and text; the pink grid is light


def test_single_lead_is_drawn_at_25_mm_per_s_and_10_mm_per_mv(tmp_path):
    fs = 250.0
    x = np.zeros(int(10 * fs), dtype=np.float32)
    x[int(4 * fs):int(5 * fs)] = 1.0  # a 1-s, 1-mV step
    rec = Recording(x, fs, ["II"], name="step")
    path = plot_ecg_paper(rec, tmp_path / "step.png")
    dark = _dark_pixels(path)
    rows, cols = np.nonzero(dark)
    # Below the 22-mm header and 30 mm right of the grid's left edge, the trace is the only
    # dark thing.
    x0 = int((10 + 7 + 30) * PX_PER_MM)
    y0 = int(22 * PX_PER_MM)
    keep = (cols > x0) & (rows > y0)
    rows, cols = rows[keep], cols[keep]
    levels = np.unique(rows)
    baseline = np.bincount(rows).argmax()
    top = levels.min()
    assert (baseline - top) / PX_PER_MM == pytest.approx(10.0, abs=0.5)
    top_cols = np.unique(cols[rows <= top + 1])
    assert (top_cols.max() - top_cols.min()) / PX_PER_MM == pytest.approx(25.0, abs=0.7)


def test_twelve_lead_layout_and_svg(tmp_path):
    from detak.data.samples import load_sample

    rec = load_sample("ptbxl-00257")
    png = plot_ecg_paper(rec, tmp_path / "r.png", intervals={"hr_bpm": 70.0})
    svg = plot_ecg_paper(rec, tmp_path / "r.svg")
    import matplotlib.image as mpimg

    h, w = mpimg.imread(png).shape[:2]
    # 10 s at 25 mm/s + 7 mm calibration pulse + 2 × 10 mm margins
    assert w / PX_PER_MM == pytest.approx(250 + 7 + 20, abs=1.5)
    text = svg.read_text()
    for lead in ("aVR", "V6"):
        assert f">{lead}<" in text or lead in text


def test_format_intervals_shows_missing_values_as_dash():
    line = format_intervals({"hr_bpm": 72.4, "qt_ms": float("nan")})
    assert "HR 72 bpm" in line and "QT — ms" in line


def test_measured_intervals_are_marked_on_one_beat_of_the_rhythm_strip(tmp_path):
    from detak.data.samples import load_sample
    from detak.signal.analysis import analyse_recording

    rec = load_sample("ludb-2")
    result = analyse_recording(rec)
    marked = plot_ecg_paper(rec, tmp_path / "m.svg", intervals=result).read_text()
    plain = plot_ecg_paper(rec, tmp_path / "p.svg",
                           intervals={k: v for k, v in result.items() if k != "fiducials"}
                           ).read_text()
    for label in (f"QT {result['qt_ms']:.0f}", f"PR {result['pr_ms']:.0f}",
                  f"QRS {result['qrs_ms']:.0f}"):
        # once in the header line of both, once more beside the marked beat
        assert marked.count(label) == plain.count(label) + 1 == 2

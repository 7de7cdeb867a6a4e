"""Attribution plots: files written in both formats, named errors."""

from __future__ import annotations

import numpy as np
import pytest

from detak.explain.plots import plot_attribution_ecg, plot_curves, plot_lead_relevance
from tests.explain.cnn_helpers import fold9_small


def test_mismatched_shapes_and_missing_leads_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"signal shape \(12, 1000\) != attribution shape"):
        plot_attribution_ecg(np.zeros((12, 1000)), np.zeros((12, 900)), 100.0, tmp_path / "a.png")
    with pytest.raises(ValueError, match="missing V1"):
        leads = ["I", "II", "III", "aVR", "aVL", "aVF", "X", "V2", "V3", "V4", "V5", "V6"]
        plot_attribution_ecg(np.zeros((12, 1000)), np.zeros((12, 1000)), 100.0,
                             tmp_path / "a.png", leads=leads)


def test_real_record_overlay_png_and_svg(tmp_path):
    fa, _ = fold9_small(1)
    x = np.asarray(fa.x[0])
    attr = np.zeros_like(x)
    attr[6, 300:340] = 1.0      # V1 evidence
    attr[2, 500:540] = -1.0     # III counter-evidence
    out = plot_attribution_ecg(x, attr, 100.0, tmp_path / "rec.png", signed=True,
                               title="test record", formats=("png", "svg"))
    assert [p.name for p in out] == ["rec.png", "rec.svg"]
    assert out[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out[0].stat().st_size > 20_000
    svg = out[1].read_text()
    assert "<svg" in svg and "test record" in svg


def test_curve_and_bar_plots(tmp_path):
    fr = np.linspace(0, 1, 11)
    p = plot_curves(fr, {"gradcam": np.tile(1 - fr, (3, 1)), "random": np.tile(fr * 0 + 0.5,
                                                                               (3, 1))},
                    tmp_path / "c.svg", kind="deletion")
    assert "AUC 0.500" in p.read_text()
    q = plot_lead_relevance({"lrp": {"V1": 0.3, "V2": 0.2}}, tmp_path / "b.png")
    assert q.stat().st_size > 5_000

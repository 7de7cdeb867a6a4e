"""benchmarks/arm64_equality.py: the comparison flags a difference over 1e-3 and a CAM that
moved, and refuses tables of different records (the emulated runs themselves are the
benchmark, not a test)."""

import numpy as np
import pandas as pd
import pytest
from arm64_equality import TOLERANCE, compare, side_env, table


def _table(mi):
    n = len(mi)
    return pd.DataFrame({"record": range(1, n + 1), "NORM": [0.5] * n, "MI": mi,
                         "STTC": [0.0] * n, "CD": [0.0] * n, "HYP": [0.0] * n})


def _cams(peaks):
    m = np.zeros((len(peaks), 1000), dtype="float32")
    m[np.arange(len(peaks)), peaks] = 1.0
    return {"cam_mi": m, "cam_top": m, "top_class": np.array(["MI"] * len(peaks))}


def test_a_difference_over_the_tolerance_and_a_moved_cam_are_reported():
    x86 = _table([0.1, 0.2, 0.3])
    arm = _table([0.1, 0.2 + 2 * TOLERANCE, 0.3 + TOLERANCE / 2])
    r = compare(x86, arm, _cams([10, 20, 30]), _cams([10, 20, 31]))
    assert r["over_1e-3"] == 1 and r["worst_record"] == "2"
    assert r["max_dp"] == pytest.approx(2 * TOLERANCE)
    assert r["max_dcam"] == 1.0 and r["cam_peak_agree"] == pytest.approx(2 / 3)
    row = table([{**r, "runtime": "onnx", "cpu": "cortex-a72", "arm_s": 1.0, "x86_s": 1.0}])
    assert "| onnx | cortex-a72 | 3 | 2.0e-03 | 1 |" in row


def test_different_records_are_refused():
    a, b = _table([0.1, 0.2]), _table([0.1, 0.2])
    b.loc[1, "record"] = 99
    with pytest.raises(ValueError, match="different records"):
        compare(a, b, _cams([1, 2]), _cams([1, 2]))


def test_the_emulated_cpu_model_reaches_qemu(monkeypatch):
    monkeypatch.setenv("QEMU_CPU", "max")
    assert side_env("cortex-a72")["QEMU_CPU"] == "cortex-a72"
    assert "QEMU_CPU" not in side_env()


def test_interval_results_that_differ_are_found():
    from arm64_equality import compare_json

    x86 = [{"source": "ludb://1", "hr_bpm": 71.2, "quality": {"verdict": "accept",
                                                               "reasons": []},
            "per_lead": {"II": {"qt_ms": float("nan")}}}]
    same = compare_json(x86, [dict(x86[0])])
    assert same["differ"] == 0 and same["values"] == 4  # NaN == NaN; [] has no leaves
    arm = [{**x86[0], "hr_bpm": 71.3, "quality": {"verdict": "reject", "reasons": []}}]
    r = compare_json(x86, arm)
    assert r["differ"] == 2 and r["text_differ"] == 1
    assert r["max_abs"] == pytest.approx(0.1)
    with pytest.raises(ValueError):
        compare_json(x86, [])

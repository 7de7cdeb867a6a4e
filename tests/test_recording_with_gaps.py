"""End to end (issue 13, item 2): a recording `detak record` made over a link that dropped
frames is analysed by `detak quality`, `intervals` and `predict`, with the gaps named."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from detak.cli import main
from detak.data.wfdb_io import read_wfdb


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rec")
    assert main(["record", "emu://ptbxl/1?speed=0&drop=0.01&seed=5", "--seconds", "10",
                 "--out", str(out), "--name", "dropped"]) == 0
    return out / "dropped.hea"


def test_the_recording_has_flagged_gaps(recorded: Path) -> None:
    gaps = read_wfdb(recorded).meta["gaps"]
    assert len(gaps) >= 1 and all(g[2] == "lost" for g in gaps)


def test_quality_names_the_gaps(recorded: Path, capsys) -> None:
    gaps = read_wfdb(recorded).meta["gaps"]
    rc = main(["quality", str(recorded)])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["verdict"] == "warn" and "error" not in out
    assert out["gaps"]["count"] == len(gaps)
    assert out["gaps"]["spans_s"] == [[a / 100, b / 100] for a, b, _ in gaps]
    assert out["reasons"][0].startswith(f"gaps: {len(gaps)} gap")


def test_intervals_measure_what_was_received(recorded: Path, capsys) -> None:
    rc = main(["intervals", str(recorded)])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and "error" not in out
    assert out["quality"]["gaps"]["count"] >= 1
    assert 40 < out["hr_bpm"] < 120 and out["qrs_ms"] is not None
    spans = out["quality"]["gaps"]["spans_s"]
    for t in out["fiducials"]["beats_s"]:
        assert all(t + 0.6 <= a or t - 0.35 >= b for a, b in spans)


def test_predict_fills_small_gaps_and_says_so(recorded: Path, tmp_path: Path, capsys) -> None:
    csv = tmp_path / "p.csv"
    rc = main(["predict", str(recorded), "--model", "edge", "--runtime", "onnx",
               "--precision", "int8", "--out", str(csv), "--jobs", "1"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "warning: dropped:" in err and "filled (linear fill)" in err
    table = pd.read_csv(csv)
    assert len(table) == 1 and table.iloc[0, 1:].between(0, 1).all()

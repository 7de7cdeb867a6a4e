"""Tests for detak.device.cli: detak record / record --recover / devices / replay."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from detak.data.ludb import load_ludb
from detak.data.ptbxl import open_ptbxl
from detak.data.wfdb_io import read_wfdb
from detak.device.cli import main
from detak.device.events import SampleBlock, StreamInfo
from detak.device.recorder import Recorder


def _last_line(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out.strip().splitlines()[-1]


# --- bad input first ---------------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "message"), [
    (["record", "--seconds", "5"], "give URL and --seconds N"),
    (["record", "emu://ptbxl/1"], "give URL and --seconds N"),
    (["record", "emu://ptbxl/1", "--recover", "x"], "either URL or --recover DIR"),
    (["record", "emu://ptbxl/1?speeed=2", "--seconds", "1"], "unknown parameter 'speeed'"),
    (["record", "serial:///dev/nope-9", "--seconds", "1"], "cannot open serial port"),
    (["record", "emu://ptbxl/1", "--seconds", "0"], "must be > 0 seconds"),
])
def test_record_argument_errors_are_explained(argv, message, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=message):
        main([*argv, "--out", str(tmp_path)])


def test_recover_without_parts_says_so(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no recording parts"):
        main(["record", "--recover", str(tmp_path)])


# --- record ------------------------------------------------------------------------------------


def test_record_writes_wfdb_in_millivolts_and_prints_its_path_last(tmp_path, capsys) -> None:
    assert main(["record", "emu://ludb/1?speed=20", "--seconds", "4", "--out", str(tmp_path),
                 "--name", "ludb1"]) == 0
    path = Path(_last_line(capsys))
    assert path == tmp_path / "ludb1.hea"
    rec = read_wfdb(path)
    src = load_ludb(1).recording
    assert rec.signal.shape == (12, 2000) and rec.fs == 500.0
    assert np.abs(rec.signal - src.signal[:, :2000]).max() <= 0.0005 + 1e-6   # LSB 1 µV
    assert rec.device_id == "detak-emu:ludb-1" and rec.calibration == "device-info"
    assert rec.meta["device"]["lsb_nv"] == 1000.0 and rec.meta["gaps"] == []
    assert not (tmp_path / "ludb1.parts").exists()                # journal removed when done
    log = json.loads((tmp_path / "ludb1.emulator.json").read_text())
    assert log["lost_spans"] == []


def test_recover_rebuilds_the_record_a_crash_left(tmp_path, capsys) -> None:
    src = open_ptbxl().record(1)
    counts = np.rint(src.signal.astype(np.float64) * 1000).astype(np.int32)
    info = StreamInfo(100.0, tuple(src.leads), 1000.0, model="emu", serial="x")
    r = Recorder(info, tmp_path / "crashed.parts", limit=1000, chunk_seconds=2.0,
                 name="crashed")
    for i in range(0, 650, 10):
        r.add(SampleBlock(counts[:, i:i + 10], i))
    # the process dies here; chunks 0-199 .. 400-599 are on disk
    assert main(["record", "--recover", str(tmp_path)]) == 0
    rec = read_wfdb(_last_line(capsys))
    assert rec.n_samples == 600 and rec.meta["recovered"] is True
    assert np.array_equal(np.rint(rec.signal * 1000), counts[:, :600])


def test_capture_then_replay_the_capture(tmp_path, capsys) -> None:
    cap = tmp_path / "raw.bin"
    main(["record", "emu://ptbxl/1?speed=0&drop=0.05&seed=3", "--seconds", "10", "--out",
          str(tmp_path), "--name", "r", "--capture", str(cap)])
    recorded = read_wfdb(_last_line(capsys))
    n_gaps = len(recorded.meta["gaps"])
    assert n_gaps > 0 and cap.stat().st_size > 10000
    assert main(["replay", f"file://{cap}"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith("detak-emu ptbxl-1 firmware emu-1: 12 channels")
    assert out[-1].startswith("t  10.0 s") and f"gaps {n_gaps} " in out[-1]


# --- devices -----------------------------------------------------------------------------------


def test_devices_json_without_ble(capsys) -> None:
    assert main(["devices", "--no-ble", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert set(found) == {"serial", "ble", "ble_error"} and found["ble"] == []
    assert all(p["url"] == f"serial://{p['device']}" for p in found["serial"])


def test_devices_scan_returns_quickly_whatever_the_bluetooth_situation(capsys) -> None:
    t0 = time.monotonic()
    assert main(["devices", "--timeout", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "serial ports:" in out and "BLE ECG devices:" in out
    assert time.monotonic() - t0 < 5

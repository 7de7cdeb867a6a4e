"""Tests for detak.device.cli: detak record / record --recover / devices / replay."""

from __future__ import annotations

import json
import re
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


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str], message: str,
             code: int = 1) -> None:
    """The command exits ``code`` with one stderr line ``detak record: error: ...message...``."""
    assert main(argv) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert re.search(f"^detak [a-z]+: error: .*{message}", err.strip().splitlines()[-1])


# --- bad input first ---------------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "message", "code"), [
    (["record", "--seconds", "5"], "give URL and --seconds N", 2),
    (["record", "emu://ptbxl/1"], "give URL and --seconds N", 2),
    (["record", "emu://ptbxl/1", "--recover", "x"], "either URL or --recover DIR", 2),
    (["record", "emu://ptbxl/1?speeed=2", "--seconds", "1"], "unknown parameter 'speeed'", 1),
    (["record", "serial:///dev/nope-9", "--seconds", "1"], "cannot open serial port", 1),
    (["record", "emu://ptbxl/1", "--seconds", "0"], "must be > 0 seconds", 1),
])
def test_record_argument_errors_are_explained(argv, message, code, tmp_path, capsys) -> None:
    _refused(capsys, [*argv, "--out", str(tmp_path)], message, code)


def test_recover_without_parts_says_so(tmp_path: Path, capsys) -> None:
    _refused(capsys, ["record", "--recover", str(tmp_path)], "no recording parts")


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


def _cyton_profile(tmp_path: Path) -> Path:
    """An 8-channel profile for the emulated Cyton: gains undoing the URL's gain=0.92, the
    8-lead map, the 12 leads derived, and a 2000-ppm clock error that must be resampled."""
    from detak.calibration.leads import EIGHT_LEAD_MAP
    from detak.calibration.profile import ChannelCalibration, DeviceProfile

    profile = DeviceProfile(model="OpenBCI Cyton", lead_map=dict(EIGHT_LEAD_MAP),
                            derive="12-lead", drift_ppm=2000.0, resample_above_ppm=1000.0,
                            channels={ch: ChannelCalibration(gain=1 / 0.92)
                                      for ch in EIGHT_LEAD_MAP}, name="cy8")
    return profile.save(tmp_path / "profiles" / "cy8.toml")


def test_recover_applies_the_whole_profile_like_a_normal_recording(tmp_path, capsys) -> None:
    from detak.calibration.profile import load_profile
    from detak.device.record import record

    url = "emu://ludb/6?speed=0&format=cyton&gain=0.92"
    profile = _cyton_profile(tmp_path)
    assert main(["record", url, "--seconds", "4", "--out", str(tmp_path), "--name", "full",
                 "--profile", str(profile)]) == 0
    full = read_wfdb(_last_line(capsys))

    class Crash(Exception):
        pass

    def crash_after_2_5_s(rec: Recorder, event: object) -> None:
        if rec.end >= 625:
            raise Crash

    with pytest.raises(Crash):     # the process "dies": the journal has chunks 0 .. 499
        record(url, 4.0, tmp_path / "crashed", name="crash", calibration=load_profile(profile),
               on_event=crash_after_2_5_s)
    assert main(["record", "--recover", str(tmp_path / "crashed")]) == 0
    rec = read_wfdb(_last_line(capsys))
    assert rec.meta["recovered"] is True
    assert rec.calibration == full.calibration == "profile:cy8"
    assert rec.meta["profile_applied"] == full.meta["profile_applied"] == "profile:cy8"
    assert rec.leads == full.leads and len(rec.leads) == 12            # lead map + derivation
    assert rec.meta["sample_rate"]["resampled"] is True                # clock corrected
    assert rec.meta["sample_rate"]["true_fs"] == full.meta["sample_rate"]["true_fs"]
    assert rec.n_samples == 499                                        # 500 at 250.5 Hz
    # the same samples as the normal recording (the spline's end differs over a few samples)
    assert np.abs(rec.signal[:, :480] - full.signal[:, :480]).max() <= 0.0015


def _save_emu_profile(directory: Path, fname: str, gain: float = 2.0) -> Path:
    from detak.calibration.profile import ChannelCalibration, DeviceProfile

    src = load_ludb(1).recording
    profile = DeviceProfile(model="detak-emu", channels={lead: ChannelCalibration(gain=gain)
                                                         for lead in src.leads})
    return profile.save(directory / fname)


@pytest.mark.parametrize("fname", ["detak-emu-ludb-1.toml", "detak-emu.toml"])
def test_record_applies_the_saved_profile_of_the_connected_device(tmp_path, capsys, monkeypatch,
                                                                  fname) -> None:
    monkeypatch.setenv("DETAK_PROFILES", str(tmp_path / "profiles"))
    saved = _save_emu_profile(tmp_path / "profiles", fname)
    _save_emu_profile(tmp_path / "profiles", "detak-emu-ludb-2.toml", gain=3.0)   # not this one
    assert main(["record", "emu://ludb/1?speed=0", "--seconds", "1", "--out", str(tmp_path),
                 "--name", "auto"]) == 0
    out = capsys.readouterr()
    rec = read_wfdb(out.out.strip().splitlines()[-1])
    assert f"calibration profile {saved}" in out.err and "--no-profile" in out.err
    assert rec.calibration == f"profile:{saved.stem}"
    src = load_ludb(1).recording
    assert np.abs(rec.signal - 2.0 * src.signal[:, :500]).max() <= 0.0015


def test_no_profile_records_raw_even_with_a_saved_profile(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("DETAK_PROFILES", str(tmp_path / "profiles"))
    _save_emu_profile(tmp_path / "profiles", "detak-emu-ludb-1.toml")
    assert main(["record", "emu://ludb/1?speed=0", "--seconds", "1", "--out", str(tmp_path),
                 "--no-profile"]) == 0
    out = capsys.readouterr()
    assert read_wfdb(out.out.strip().splitlines()[-1]).calibration == "device-info"
    assert "profile" not in out.err


def test_without_a_saved_profile_record_is_raw_and_silent(tmp_path, capsys) -> None:
    assert main(["record", "emu://ludb/1?speed=0", "--seconds", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert read_wfdb(out.out.strip().splitlines()[-1]).calibration == "device-info"
    assert out.err == ""


def test_a_broken_saved_profile_is_named_with_the_way_out(tmp_path, monkeypatch,
                                                          capsys) -> None:
    monkeypatch.setenv("DETAK_PROFILES", str(tmp_path))
    (tmp_path / "detak-emu-ludb-1.toml").write_text("[leads]\nderive = 'twelve'\n")
    _refused(capsys, ["record", "emu://ludb/1?speed=0", "--seconds", "1", "--out",
                      str(tmp_path)], r"detak-emu-ludb-1.toml.*derive.*--no-profile")
    assert not list(tmp_path.glob("*.hea"))


def test_profile_and_no_profile_together_are_refused(tmp_path, capsys) -> None:
    _refused(capsys, ["record", "emu://ludb/1?speed=0", "--seconds", "1", "--out",
                      str(tmp_path), "--profile", "x.toml", "--no-profile"],
             "--profile or --no-profile, not both", 2)


def test_recover_writes_the_heart_rates_beside_the_record(tmp_path, capsys) -> None:
    import csv

    from detak.device.events import HeartRate

    src = open_ptbxl().record(1)
    counts = np.rint(src.signal.astype(np.float64) * 1000).astype(np.int32)
    info = StreamInfo(100.0, tuple(src.leads), 1000.0, model="emu", serial="x")
    r = Recorder(info, tmp_path / "hr.parts", limit=1000, chunk_seconds=2.0, name="hr")
    for i in range(0, 450, 10):
        if i % 100 == 0:
            r.add(HeartRate(60 + i // 100, None, None, (1000.0 - i / 10,), 2.0 + i / 100))
        r.add(SampleBlock(counts[:, i:i + 10], i))
    # the process dies: chunks 0 .. 399 and the events before the last chunk boundary survive
    # (the heart rate at sample 400 was journaled after it, never made durable)
    assert main(["record", "--recover", str(tmp_path)]) == 0
    hea = Path(_last_line(capsys))
    rec = read_wfdb(hea)
    assert rec.meta["device_heart_rate"]["file"] == "hr.hr.csv"
    with open(tmp_path / "hr.hr.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["sample"], r["host_time_s"], r["hr_bpm"], r["rr_ms"]) for r in rows] == [
        ("0", "2.0", "60", "1000.0"), ("100", "3.0", "61", "990.0"),
        ("200", "4.0", "62", "980.0"), ("300", "5.0", "63", "970.0")]
    assert rec.meta["device_heart_rate"]["measurements"] == 4


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

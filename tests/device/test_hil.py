"""Hardware-in-the-loop: device -> transport -> driver -> recorder -> calibration -> Recording.

Runs the full path through ``detak record`` against the virtual device on a real
pseudo-terminal (and over TCP and the fake BLE link), and against real hardware when
``DETAK_HIL_DEVICE`` names it (``serial:///dev/ttyACM0`` or a ``ble://`` URL). ``pytest -m hil``
selects these; ``make test`` runs them with everything else.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from detak.data.ludb import load_ludb
from detak.data.ptbxl import open_ptbxl
from detak.data.wfdb_io import read_wfdb
from detak.device.cli import main

pytestmark = pytest.mark.hil

LSB_MV = 0.001                          # the emulator's default LSB: 1000 nV


@pytest.fixture(scope="module")
def ptb1():
    return open_ptbxl().record(1)


def _record(capsys, url: str, seconds: float, out: Path, name: str = "r"):
    assert main(["record", url, "--seconds", str(seconds), "--out", str(out),
                 "--name", name]) == 0
    path = Path(capsys.readouterr().out.strip().splitlines()[-1])
    log = out / f"{name}.emulator.json"
    return read_wfdb(path), (json.loads(log.read_text()) if log.exists() else None)


def _nan_spans(signal: np.ndarray) -> list[list[int]]:
    m = np.isnan(signal).all(axis=0).astype(np.int8)
    idx = np.flatnonzero(np.diff(np.concatenate([[0], m, [0]])))
    return [[int(a), int(b)] for a, b in zip(idx[::2], idx[1::2], strict=True)]


def test_clean_recording_equals_ptbxl_record_1_within_one_lsb(tmp_path, capsys, ptb1) -> None:
    rec, log = _record(capsys, "emu://ptbxl/1?speed=20", 10, tmp_path)
    assert rec.signal.shape == (12, 1000) and rec.fs == 100.0 and rec.leads == ptb1.leads
    assert np.abs(rec.signal - ptb1.signal).max() <= LSB_MV + 1e-6
    assert rec.meta["gaps"] == [] and log["faults"] == []


def test_gaps_are_exactly_the_dropped_and_corrupted_frames(tmp_path, capsys, ptb1) -> None:
    rec, log = _record(capsys, "emu://ptbxl/1?speed=20&drop=0.01&corrupt=0.001", 10, tmp_path)
    kinds = {f["kind"] for f in log["faults"]}
    assert kinds == {"drop", "corrupt"}
    # the recording's gaps, its NaN spans and the emulator's log all agree, sample for sample:
    # corruption cost the corrupted frames and nothing else
    assert [g[:2] for g in rec.meta["gaps"]] == log["lost_spans"]
    assert _nan_spans(rec.signal) == log["lost_spans"]
    ok = ~np.isnan(rec.signal).all(axis=0)
    assert np.abs(rec.signal[:, ok] - ptb1.signal[:, ok]).max() <= LSB_MV + 1e-6
    n_corrupt = sum(f["kind"] == "corrupt" for f in log["faults"])
    stats = rec.meta["link_stats"]
    assert stats["crc_errors"] + stats["cobs_errors"] + stats["short_frames"] >= n_corrupt


def test_recording_resumes_after_a_disconnect(tmp_path, capsys, ptb1) -> None:
    rec, log = _record(capsys, "emu://ptbxl/1?speed=10&disconnect=3:1", 10, tmp_path)
    (fault,) = [f for f in log["faults"] if f["kind"] == "disconnect"]
    span = [fault["first_sample"], fault["first_sample"] + fault["n_samples"]]
    assert rec.meta["gaps"] == [[*span, "link"]]
    assert rec.meta["link"] == {"lost": 1, "restored": 1}
    assert span[1] < 1000                                           # it came back...
    # the emulator numbers the frames it could not send (as a UART device that cannot tell
    # the link is down): the sequence jump across the reconnect is not counted as lost packets
    assert rec.meta["link_stats"]["lost_packets"] == 0
    after = slice(span[1], 1000)
    assert np.abs(rec.signal[:, after] - ptb1.signal[:, after]).max() <= LSB_MV + 1e-6


@pytest.mark.parametrize("repeat", ["fresh", "bytes"])
def test_a_lost_start_ack_is_repeated_and_the_recording_is_whole(tmp_path, capsys, ptb1,
                                                                 repeat) -> None:
    # the ACK of START is lost; the host resends START; the device repeats its answer with a
    # fresh sequence number (v1.1) or as its identical old bytes (a v1.0 device)
    url = f"emu://ptbxl/1?speed=20&lose_answer=START&repeat={repeat}"
    rec, log = _record(capsys, url, 10, tmp_path)
    stats = rec.meta["link_stats"]
    assert (stats["lost_packets"], stats["retries"]) == (1, 1)
    assert stats["repeated_packets"] == (1 if repeat == "bytes" else 0)
    assert [f["kind"] for f in log["faults"]] == ["lost_answer"]
    assert rec.meta["gaps"] == [] and rec.signal.shape == (12, 1000)
    assert np.abs(rec.signal - ptb1.signal).max() <= LSB_MV + 1e-6


@pytest.mark.parametrize("link", ["tcp", "ble"])
def test_lead_off_and_pulse_reach_the_record_over_other_links(tmp_path, capsys, link) -> None:
    url = f"emu://ludb/2?speed=20&link={link}&leadoff=2:1.5:V3&pulse=6:2"
    rec, log = _record(capsys, url, 10, tmp_path)
    src = load_ludb(2).recording
    (off,) = [f for f in log["faults"] if f["kind"] == "leadoff"]
    assert rec.meta["lead_off"] == {"V3": [[off["first_sample"],
                                            off["first_sample"] + off["n_samples"]]]}
    assert rec.meta["cal_pulse"] == [[3000, 4000]]
    assert np.allclose(rec.signal[:, 3000:3250], 1.0) and np.allclose(rec.signal[:, 3250:3500], 0)
    clean = np.ones(5000, bool)
    clean[1000:1750] = False
    clean[3000:4000] = False
    assert np.abs(rec.signal[:, clean] - src.signal[:, clean]).max() <= LSB_MV / 2 + 1e-6


def test_real_hardware_when_configured(tmp_path, capsys) -> None:
    url = os.environ.get("DETAK_HIL_DEVICE")
    if not url:
        pytest.skip("DETAK_HIL_DEVICE is not set (e.g. serial:///dev/ttyACM0)")
    rec, _ = _record(capsys, url, 5, tmp_path, name="hw")
    assert rec.n_samples == round(5 * rec.fs) and rec.n_leads >= 1
    assert np.isfinite(rec.signal).mean() > 0.95, rec.meta["gaps"]
    assert rec.meta["device"]["model"] and rec.meta["calibration"]["lsb_nv"]


def test_record_sends_stop_and_the_next_session_restarts_a_stream_left_running(
        tmp_path, capsys, ptb1) -> None:
    import serial

    from detak.firmware_bridge.emulator import VirtualDevice
    from detak.firmware_bridge.messages import GetInfo, MsgType, Start, encode_message
    from detak.firmware_bridge.serve import PtyLink

    dev = VirtualDevice.from_url("emu://ptbxl/1?speed=20&loop=1")
    link = PtyLink(dev)
    path = link.start()
    try:
        rec, _ = _record(capsys, f"serial://{path}", 2, tmp_path / "a")
        assert not dev.streaming and dev._last_command[1] == MsgType.STOP   # STOP at the end
        # a host process that starts the stream and dies without STOP
        with serial.Serial(path, timeout=0.2) as port:
            port.write(encode_message(GetInfo(), 0) + encode_message(Start(), 1))
            port.read(4096)
        deadline = time.monotonic() + 5
        while dev.next_sample < 300 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert dev.streaming and dev.next_sample >= 300
        rec, _ = _record(capsys, f"serial://{path}", 5, tmp_path / "b")
    finally:
        link.stop()
    assert rec.meta["gaps"] == [] and rec.signal.shape == (12, 500)      # from sample 0
    assert np.abs(rec.signal - ptb1.signal[:, :500]).max() <= LSB_MV + 1e-6
    assert rec.meta["link_stats"]["stale_stream_messages"] > 0

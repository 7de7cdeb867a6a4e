"""The 1 mV pulse procedure (detak/device/pulse.py) against the emulator's ``pulse=`` and
its injected miscalibration (``gain=``, ``offset=``): the measured profile must undo it, and a
recording through that profile must equal the source record."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from detak.calibration.profile import load_profile
from detak.data.ludb import load_ludb
from detak.data.ptbxl import open_ptbxl
from detak.device.pulse import CalibrationError, calibrate
from detak.device.record import arecord

# --- bad input first ---------------------------------------------------------------------------


def test_a_device_without_a_pulse_command_asks_for_an_external_calibrator() -> None:
    with pytest.raises(CalibrationError, match="no calibration-pulse command.*--external-pulse"):
        asyncio.run(calibrate("emu://ludb/1?speed=0&format=cyton", 1.0))


def test_an_external_pulse_that_is_not_there_is_reported() -> None:
    with pytest.raises(CalibrationError,
                       match="no usable 1 mV pulse on CH1: .*; CH2: not a clean square"):
        asyncio.run(calibrate("emu://ludb/1?speed=0&format=cyton", 1.0, external=True))


def test_a_lead_map_that_cannot_give_12_leads_is_refused() -> None:
    with pytest.raises(CalibrationError, match="deriving the 12 leads needs channels mapped to I"):
        asyncio.run(calibrate("emu://ludb/1?speed=0&format=cyton&pulse=1", 1.0, external=True,
                              derive="12-lead"))


def test_a_stream_that_ends_before_enough_pulse_is_named_at_once() -> None:
    # a 10-s record with the pulse on throughout, asked for 20 s of pulse: the device ends its
    # stream at sample 1000; the procedure must say so, not wait for its timeout
    t0 = time.monotonic()
    with pytest.raises(CalibrationError, match=r"ended its stream \(end_of_source\) after 1000 "
                                               r"samples, with 950 of the 2000 pulse samples"):
        asyncio.run(calibrate("emu://ptbxl/1?speed=0&pulse=1", 20.0, external=True))
    assert time.monotonic() - t0 < 15.0


# --- behaviour ---------------------------------------------------------------------------------


@pytest.mark.parametrize("pulse", ["&pulse=1", ""])      # pulse from the start, or by command
def test_the_measured_profile_undoes_the_injected_gain_and_offset(tmp_path, pulse) -> None:
    # loop=1: at speed 0 the 10-s record can be sent whole before the pulse command lands
    url = f"emu://ptbxl/1?speed=0&loop=1&gain=1.07&offset=-25{pulse}"
    r = asyncio.run(calibrate(url, 2.0))
    assert set(r.profile.channels) == set(r.info.channels)
    for ch in r.profile.channels.values():
        assert ch.gain == pytest.approx(1 / 1.07, rel=0.5 / 1070)    # 1 mV = round(1070) counts
        assert ch.offset == -25.0
    assert r.drift is None and "speed 0" in r.rate_note
    path = r.profile.save(tmp_path / "emu.toml")
    profile = load_profile(path)
    # now record the same miscalibrated device (pulse off) through the profile
    hea = asyncio.run(arecord("emu://ptbxl/1?speed=0&gain=1.07&offset=-25", 10.0, tmp_path,
                              name="cal", calibration=profile))
    from detak.data.wfdb_io import read_wfdb

    rec = read_wfdb(hea)
    src = open_ptbxl().record(1)
    assert rec.calibration == "profile:emu"
    assert np.abs(rec.signal - src.signal).max() <= 0.001 + 1e-6      # within 1 LSB (1 µV)
    raw = asyncio.run(arecord("emu://ptbxl/1?speed=0&gain=1.07&offset=-25", 10.0, tmp_path,
                              name="raw"))
    assert np.abs(read_wfdb(raw).signal - src.signal).max() > 0.1     # uncalibrated: far off


def test_an_8_channel_device_calibrated_with_an_external_pulse_gives_12_leads(tmp_path) -> None:
    r = asyncio.run(calibrate("emu://ludb/6?speed=0&format=cyton&pulse=1&gain=0.92", 1.0,
                              external=True, lead_map={f"CH{i + 1}": lead for i, lead in
                                                       enumerate(("I", "II", "V1", "V2", "V3",
                                                                  "V4", "V5", "V6"))},
                              derive="12-lead"))
    assert r.profile.method == "external 1 mV pulse"
    assert all(c.gain == pytest.approx(1 / 0.92, rel=1e-4) for c in r.profile.channels.values())
    from detak.data.wfdb_io import read_wfdb
    from detak.signal.filters import resample

    hea = asyncio.run(arecord("emu://ludb/6?speed=0&format=cyton&gain=0.92", 4.0, tmp_path,
                              name="cy", calibration=r.profile))
    rec = read_wfdb(hea)                # arecord applied the profile (lead map, 12 leads)
    assert r.profile.apply(rec) is rec  # and a profile is applied once only
    src = load_ludb(6).recording
    assert rec.leads == src.leads and rec.fs == 250.0
    want = resample(src.signal, src.fs, 250.0)[:, :1000]
    measured = [rec.leads.index(x) for x in ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")]
    # the measured leads: within WFDB's 1 µV (after the 0.92 gain and 24x-finer LSB)
    assert np.abs(rec.signal[measured] - want[measured]).max() <= 0.001
    i, ii = want[0].astype(np.float64), want[1].astype(np.float64)
    assert np.abs(rec.lead("aVF") - (ii - i / 2)).max() <= 0.002

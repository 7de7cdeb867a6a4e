"""Device calibration profiles (detak/calibration/profile.py): TOML in and out, the Recorder's
``scale_for`` hook, and `apply` (lead map, derived leads, sample-rate correction)."""

from __future__ import annotations

import numpy as np
import pytest

from detak.calibration.profile import (
    ChannelCalibration,
    DeviceProfile,
    ProfileError,
    find_profile,
    load_profile,
    profile_filename,
)
from detak.data.ptbxl import open_ptbxl
from detak.device.events import SampleBlock, StreamInfo
from detak.device.recorder import Recorder

INFO = StreamInfo(fs=250.0, channels=tuple(f"CH{i}" for i in range(1, 9)), lsb_nv=22.35,
                  model="OpenBCI Cyton", serial="", driver="cyton")


def _profile(**kw) -> DeviceProfile:
    base = dict(model="OpenBCI Cyton", driver="cyton", name="cy", nominal_hz=250.0,
                channels={c: ChannelCalibration(gain=1.0 + i / 100, offset=i, lsb_nv=22.35)
                          for i, c in enumerate(INFO.channels)})
    base.update(kw)
    return DeviceProfile(**base)


# --- bad input first ---------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "message"), [
    ("[device\nmodel = 1", "cal.toml: calibration profile cal: not valid TOML"),
    ("[channels.CH1]\ngain = 'big'", r"channels.CH1.gain must be a number, got 'big'"),
    ("[channels.CH1]\ngain = 0.0", "channel CH1: gain 0.0 must be > 0"),
    ("[channels.CH1]\ngian = 1.0", r"\[channels.CH1\] has unknown key\(s\) gian"),
    ("[leads]\nderive = 'yes'", "leads.derive = 'yes'; use none or 12-lead"),
    ("[sample_rate]\ndrift_ppm = 200000.0", "drift_ppm 200000.0 is not a clock error"),
    ("[cable]\nx = 1", r"unknown table\(s\) cable"),
    ("[leads.map]\nCH1 = 5", r"\[leads.map\] must map channel names to lead names"),
])
def test_bad_profile_files_name_the_file_and_the_field(tmp_path, text, message) -> None:
    path = tmp_path / "cal.toml"
    path.write_text(text)
    with pytest.raises(ProfileError, match=message) as err:
        load_profile(path)
    assert str(err.value).startswith(f"{path}: calibration profile cal")


def test_a_missing_profile_file_is_named(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="calibration profile .*nope.toml does not exist"):
        load_profile(tmp_path / "nope.toml")


@pytest.mark.parametrize(("change", "message"), [
    ({"model": "Polar H10"}, "is for model 'Polar H10'; the device is 'OpenBCI Cyton'"),
    ({"nominal_hz": 500.0}, "is for a sample rate of 500 Hz; the device declares 250 Hz"),
    ({"channels": {"CH1": ChannelCalibration()}}, r"has no gain for channel\(s\) CH2, CH3"),
    ({"channels": {"EXG9": ChannelCalibration()}}, r"channel\(s\) EXG9 not on the device"),
    ({"lead_map": {"CH9": "V1"}}, r"leads.map names channel\(s\) CH9 not on the device"),
])
def test_a_profile_for_another_device_is_refused_by_the_recorder(change, message) -> None:
    with pytest.raises(ProfileError, match=message):
        Recorder(INFO, calibration=_profile(**change))


def test_a_serial_mismatch_is_refused() -> None:
    info = StreamInfo(fs=250.0, channels=INFO.channels, lsb_nv=22.35, model="OpenBCI Cyton",
                      serial="B")
    with pytest.raises(ProfileError, match="is for serial 'A'; the device is 'B'"):
        _profile(serial="A").scale_for(info)


# --- behaviour ---------------------------------------------------------------------------------


def test_toml_round_trip_keeps_every_field(tmp_path) -> None:
    p = _profile(lead_map={"CH1": "I", "CH2": "II", "CH3": ""}, derive="12-lead",
                 drift_ppm=-1234.5, resample_above_ppm=300.0, lsb_nv=22.0, method="1 mV pulse",
                 created="2025-01-02T03:04:05+00:00",
                 notes={"url": 'emu://x?a="b"', "drift": {"ppm": -1234.5}})
    path = p.save(tmp_path / "sub" / "cy.toml")
    q = load_profile(path)
    assert q.to_dict() == p.to_dict() and q.name == "cy"
    assert not (tmp_path / "sub" / "cy.toml.tmp").exists()


def test_scale_for_turns_counts_into_millivolts_per_channel() -> None:
    p = _profile()
    rec = Recorder(INFO, calibration=p, limit=3)
    counts = np.array([[i, i + 1000, i - 1000] for i in range(8)], np.int32) * 1
    rec.add(SampleBlock(counts, 0))
    out = rec.finish()
    gain = np.array([1.0 + i / 100 for i in range(8)])
    expected = (counts - np.arange(8)[:, None]) * 22.35e-6 * gain[:, None]
    assert np.allclose(out.signal, expected, atol=1e-7)
    assert out.calibration == "profile:cy" and out.meta["calibration"]["gain"][7] == 1.07


def test_a_profile_without_channel_tables_uses_the_declared_lsb_or_its_own() -> None:
    s = DeviceProfile(model="OpenBCI Cyton").scale_for(INFO)
    assert s.lsb_nv.tolist() == [22.35] * 8 and s.gain.tolist() == [1.0] * 8
    s = DeviceProfile(lsb_nv=100.0).scale_for(INFO)
    assert s.lsb_nv.tolist() == [100.0] * 8


def test_apply_maps_8_channels_to_the_12_standard_leads_of_a_real_record() -> None:
    src = open_ptbxl().record(7)
    order = ["V6", "I", "II", "V2", "V3", "V4", "V5", "V1"]       # the ADS1298 EVM's order
    from detak.data.recording import Recording

    dev = Recording(src.select(order).signal, 100.0, [f"CH{i}" for i in range(1, 9)])
    p = DeviceProfile(lead_map={f"CH{i + 1}": lead for i, lead in enumerate(order)},
                      derive="12-lead", name="evm")
    out = p.apply(dev)
    assert out.leads == src.leads and out.calibration == "profile:evm"
    assert out.meta["derived_leads"] == ["III", "aVR", "aVL", "aVF"]
    # PTB-XL's recorded limb leads agree with the derived ones within its integer rounding
    assert np.abs(out.signal - src.signal).max() <= 0.0015 + 1e-6
    assert out.meta["sample_rate"]["resampled"] is False


def test_find_profile_prefers_model_and_serial(tmp_path) -> None:
    info = StreamInfo(fs=130.0, channels=("ECG",), lsb_nv=1000.0, model="Polar H10",
                      serial="9A1B")
    assert find_profile(info, tmp_path) is None
    DeviceProfile(model="Polar H10", lead_map={"ECG": "V5"}).save(
        tmp_path / profile_filename("Polar H10"))
    assert find_profile(info, tmp_path).lead_map == {"ECG": "V5"}
    DeviceProfile(model="Polar H10", serial="9A1B", lead_map={"ECG": "CM5"}).save(
        tmp_path / profile_filename("Polar H10", "9A1B"))
    assert find_profile(info, tmp_path).lead_map == {"ECG": "CM5"}

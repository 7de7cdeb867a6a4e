"""The emulator's impersonations (detak/firmware_bridge/personalities.py): ``format=cyton`` and
``format=csv`` in ``emu://`` URLs, the bytes they send, the commands they obey, and a link loss
survived by the Cyton driver over a real pty."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detak.data.recording import Recording
from detak.data.wfdb_io import read_wfdb
from detak.device.record import record
from detak.device.urls import make_transport_and_driver
from detak.firmware_bridge.emu_config import parse_emu_url
from detak.firmware_bridge.emulator import VirtualDevice
from detak.firmware_bridge.personalities import CYTON_LSB_NV, cyton_packets

# --- bad input first ---------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "message"), [
    ("emu://ludb/1?format=cyton&link=ble", "format=cyton is a serial format; use link=pty or "
                                           "link=tcp"),
    ("emu://ludb/1?format=cyton&lsb_nv=50", "format=cyton fixes the LSB"),
    ("emu://ludb/1?format=csv&disconnect=2", "format=csv cannot resume after disconnect="),
    ("emu://ludb/1?format=ads1298", "format='ads1298'; use int16 or int24 .* or cyton or csv"),
])
def test_impossible_impersonations_are_refused(url, message) -> None:
    with pytest.raises(ValueError, match=message):
        parse_emu_url(url)


def test_cyton_packets_need_8_channels() -> None:
    with pytest.raises(ValueError, match="carries 8 channels, got 3"):
        cyton_packets(0, np.zeros((3, 1), np.int32))


# --- behaviour ---------------------------------------------------------------------------------


def test_emu_urls_pick_the_impersonated_devices_driver() -> None:
    _, d = make_transport_and_driver("emu://ludb/1?format=cyton")
    assert d.name == "cyton"
    _, d = make_transport_and_driver("emu://ptbxl/1?format=csv&fs=500&lsb_nv=250")
    assert (d.name, d.fs, d.lsb_nv) == ("csv", 500.0, 250.0)
    _, d = make_transport_and_driver("emu://ludb/1")
    assert d.name == "bridge"


def test_cyton_packets_follow_the_documented_layout() -> None:
    # ../shared/docs/devices/03-openbci-cyton.md "33-byte packet"
    values = np.array([[1], [-1], [0x7FFFFF], [-0x800000], [256], [-256], [0], [65536]])
    p = cyton_packets(511, values)
    assert len(p) == 33 and p[0] == 0xA0 and p[1] == 511 % 256 and p[32] == 0xC0
    assert p[2:26] == bytes.fromhex("000001 ffffff 7fffff 800000 000100 ffff00 000000 010000"
                                    .replace(" ", ""))
    assert p[26:32] == bytes(6)


def test_the_emulated_cyton_obeys_v_b_and_s() -> None:
    rec = Recording(np.zeros((2, 100)), 250.0, ["I", "II"])
    dev = VirtualDevice(rec, parse_emu_url("emu://file/x?format=cyton&speed=0&block=5"))
    assert dev.poll(0.0) == b"" and not dev.streaming              # silent until asked
    dev.receive(b"v", 0.0)
    assert dev.poll(0.0).endswith(b"$$$")
    dev.receive(b"b", 0.0)
    out = dev.poll(0.0)
    assert len(out) == 100 * 33 and out[1::33][:3] == bytes([0, 1, 2])
    dev.receive(b"s", 0.0)
    assert not dev.streaming and dev.poll(0.0) == b""
    assert dev.recording.leads == ("I", "II", "pad3", "pad4", "pad5", "pad6", "pad7", "pad8")
    assert dev.config.lsb_nv == CYTON_LSB_NV


def test_the_emulated_csv_device_streams_a_header_then_lines() -> None:
    rec = Recording(np.array([[0.0, 0.001, -0.002], [1.0, 2.0, 3.0]]), 100.0, ["I", "II"])
    dev = VirtualDevice(rec, parse_emu_url("emu://file/x?format=csv&speed=0&offset=7"))
    assert dev.poll(0.0) == b"I,II\n7,1007\n8,2007\n5,3007\n"


def test_the_cyton_driver_survives_a_link_loss_over_a_real_pty(tmp_path) -> None:
    """Real time (about 3 s): the counter wraps twice while the link is down for 0.5 s."""
    path = record("emu://ludb/1?speed=1&format=cyton&disconnect=0.4:0.5", 1.6, tmp_path,
                  name="cyd")
    rec = read_wfdb(path)
    log = json.loads((tmp_path / "cyd.emulator.json").read_text())
    (fault,) = [f for f in log["faults"] if f["kind"] == "disconnect"]
    a, b = fault["first_sample"], fault["first_sample"] + fault["n_samples"]
    assert b - a > 100 and rec.meta["gaps"] == [[a, b, "link"]]
    assert rec.meta["link"] == {"lost": 1, "restored": 1}
    assert np.isfinite(rec.signal[:, b:]).all() and rec.n_samples == 400

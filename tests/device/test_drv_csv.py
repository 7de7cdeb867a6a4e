"""The CSV-lines driver (detak/device/drivers_csv.py): Arduino-style text samples, fs and LSB
from the URL; and over a real pty against the emulator's CSV impersonation."""

from __future__ import annotations

import numpy as np
import pytest

from detak.data.ludb import load_ludb
from detak.data.wfdb_io import read_wfdb
from detak.device.drivers_csv import CsvLinesDriver
from detak.device.events import SampleBlock, StreamInfo
from detak.device.record import record
from detak.device.urls import make_transport_and_driver


def _counts(events: list) -> list[list[int]]:
    blocks = [e for e in events if isinstance(e, SampleBlock)]
    return np.concatenate([b.counts for b in blocks], axis=1).tolist() if blocks else []


# --- bad input first ---------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "message"), [
    ("serial:///dev/ttyACM0?driver=csv&lsb_nv=3222", r"give fs= \(samples per second\)"),
    ("serial:///dev/ttyACM0?driver=csv&fs=250", r"give lsb_nv= \(nanovolts per count\)"),
    ("serial:///dev/ttyACM0?driver=csv&fs=fast&lsb_nv=1", "fs='fast' is not a number"),
    ("serial:///dev/ttyACM0?driver=csv&fs=250&lsb_nv=-1", "lsb_nv='-1' must be > 0"),
    ("serial:///dev/ttyACM0?driver=csv&fs=250&lsb_nv=1&offset=1.5", "offset='1.5' must be"),
    ("serial:///dev/ttyACM0?driver=csv&fs=250&lsb_nv=1&rate=3", "unknown parameter.*rate"),
])
def test_urls_without_what_the_stream_cannot_say_are_refused(url, message) -> None:
    with pytest.raises(ValueError, match=message):
        make_transport_and_driver(url)


def test_lines_that_do_not_parse_are_counted_and_skipped() -> None:
    drv = CsvLinesDriver(fs=100, lsb_nv=1000)
    events = drv.feed(b"partial\n10,20\n1.5,2\n30\nx,y\n40,50\n")
    assert _counts(events) == [[10, 40], [20, 50]]
    st = drv.stats()
    assert st["bad_lines"] == 3 and st["header_lines"] == 1     # 1.5,2 / 30 / x,y
    assert drv.feed(b"9" * 5000) == [] and drv.stats()["bad_lines"] == 4
    assert "longer than 4096" in drv.last_error


# --- behaviour ---------------------------------------------------------------------------------


def test_one_value_per_line_with_offset_and_partial_lines_across_chunks() -> None:
    _, drv = make_transport_and_driver(
        "serial:///dev/ttyACM0?driver=csv&fs=250&lsb_nv=3222&offset=512&channels=II")
    events = drv.feed(b"1\n512\n60") + drv.feed(b"0\r\n-3\n")   # first line: maybe partial
    info = [e for e in events if isinstance(e, StreamInfo)][0]
    assert (info.fs, info.lsb_nv, info.channels) == (250.0, 3222.0, ("II",))
    assert _counts(events) == [[0, 88, -515]]


def test_header_and_serial_plotter_labels_name_the_channels() -> None:
    drv = CsvLinesDriver(fs=100, lsb_nv=1000)
    drv.feed(b"I\tII\tV1\n1 2 3\n")
    assert drv.info.channels == ("I", "II", "V1")
    drv = CsvLinesDriver(fs=100, lsb_nv=1000)
    events = drv.feed(b"junk\nECG:100,HR:-2\nECG:101,HR:-3\n")
    assert drv.info.channels == ("ECG", "HR") and _counts(events) == [[100, 101], [-2, -3]]
    drv = CsvLinesDriver(fs=100, lsb_nv=1000)
    drv.feed(b"\n5;6\n")
    assert drv.info.channels == ("CH1", "CH2")


def test_recording_from_the_emulated_csv_device_equals_the_source(tmp_path) -> None:
    path = record("emu://ludb/4?speed=0&format=csv&lsb_nv=500", 3.0, tmp_path, name="csv")
    rec = read_wfdb(path)
    src = load_ludb(4).recording
    assert rec.leads == src.leads and rec.fs == 500.0 and rec.n_samples == 1500
    assert rec.meta["gaps"] == [] and rec.meta["device"]["lsb_nv"] == 500.0
    # half an LSB (0.25 µV) from quantising, half a µV from the WFDB file's resolution
    assert np.abs(rec.signal - src.signal[:, :1500]).max() <= 0.25e-3 + 0.5e-3 + 1e-6

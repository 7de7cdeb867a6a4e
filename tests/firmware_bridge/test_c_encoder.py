"""The reference C encoder (detak/firmware_bridge/c/) compiled with gcc, byte for byte against
the Python implementation, on real PTB-XL and LUDB samples."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import detak.firmware_bridge
from detak.data.ludb import load_ludb
from detak.data.ptbxl import open_ptbxl
from detak.firmware_bridge.framing import FrameDecoder, cobs_encode
from detak.firmware_bridge.messages import (
    INT16,
    INT24,
    Ack,
    Battery,
    CalState,
    DeviceInfo,
    Error,
    LeadOff,
    Nack,
    Samples,
    StreamEnd,
    decode_packet,
    encode_message,
)

C_DIR = Path(detak.firmware_bridge.__file__).parent / "c"


@pytest.fixture(scope="module")
def db_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = shutil.which("gcc")
    assert gcc, "gcc is needed for the C reference encoder test (CI has it)"
    exe = tmp_path_factory.mktemp("c") / "db_demo"
    subprocess.run([gcc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2",
                    "-o", str(exe), str(C_DIR / "detak_bridge.c"), str(C_DIR / "db_demo.c")],
                   check=True, capture_output=True, text=True)
    return exe


def _run(exe: Path, args: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run([str(exe), *args], input=stdin, capture_output=True, timeout=60)


def _python_stream(rate_mhz: int, lsb_nv: float, fmt: int, block: int, channels: list[str],
                   electrodes: list[str], values: np.ndarray) -> bytes:
    """What db_demo promises to emit, built with the Python encoder."""
    n = values.shape[0]
    msgs = [DeviceInfo(rate_mhz, lsb_nv, 24, fmt, tuple(channels), tuple(electrodes),
                       "detak-ref", "c-1.0", "REF-0001"), Ack(0, 0x80)]
    for first in range(0, n, block):
        ts = first * 10**9 // rate_mhz % 2**32
        msgs.append(Samples(first, ts, fmt, values[first:first + block].T.astype(np.int32)))
    msgs += [LeadOff(250, 0x5), CalState(500, True), Battery(87, 3912, True, False),
             Error(2, 42, "fifo overrun"), Nack(1, 0x81, 5, "already streaming"),
             StreamEnd(n, 0)]
    return b"".join(encode_message(m, seq) for seq, m in enumerate(msgs))


def test_encoder_refuses_values_outside_the_sample_format(db_demo: Path) -> None:
    values = np.array([[40000]], dtype="<i4")
    proc = _run(db_demo, ["500000", "1000", "2", "1", "II"], values.tobytes())
    assert proc.returncode == 2
    assert b"encoder refused" in proc.stderr


def test_crc_check_value(db_demo: Path) -> None:
    assert _run(db_demo, ["--crc", "123456789"]).stdout.strip() == b"0x29B1"


def test_cobs_matches_python_on_edge_cases_and_random_data(db_demo: Path) -> None:
    rng = np.random.default_rng(11)
    cases = [b"\x00", b"\x00\x00", bytes(range(1, 255)), bytes(range(1, 256)),
             bytes(range(2, 256)) + b"\x00", b"\x11" * 508, b"\x11" * 509]
    for n in (1, 300, 2000):
        data = rng.integers(0, 256, n, dtype=np.uint8)
        data[rng.random(n) < 0.2] = 0
        cases.append(data.tobytes())
    for raw in cases:
        assert _run(db_demo, ["--cobs"], raw).stdout == cobs_encode(raw), raw[:8]


def test_ludb_record_in_int24_is_byte_identical_and_decodes_to_the_input(db_demo: Path) -> None:
    rec = load_ludb(1).recording
    values = np.rint(rec.signal[:, :1000].T.astype(np.float64) * 1000).astype("<i4")  # µV
    channels = list(rec.leads)
    electrodes = ["RA", "LA", "LL", "RL", "V1", "V2", "V3", "V4", "V5", "V6"]
    args = ["500000", "1000", "3", "10", *channels, "/", *electrodes]
    proc = _run(db_demo, args, values.tobytes())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == _python_stream(500000, 1000.0, INT24, 10, channels, electrodes, values)
    msgs = [decode_packet(p)[1] for p in FrameDecoder().feed(proc.stdout)]
    blocks = [m for m in msgs if isinstance(m, Samples)]
    assert np.array_equal(np.concatenate([b.counts for b in blocks], axis=1), values.T)
    assert msgs[0].channels == tuple(channels) and msgs[0].fs == 500.0


def test_ptbxl_record_in_int16_with_an_odd_block_and_fractional_lsb(db_demo: Path) -> None:
    rec = open_ptbxl().record(1)
    values = np.rint(rec.signal.T.astype(np.float64) * 1000).astype("<i4")
    channels = list(rec.leads)
    proc = _run(db_demo, ["100000", "47.68", "2", "7", *channels], values.tobytes())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == _python_stream(100000, 47.68, INT16, 7, channels, [], values)
    info = decode_packet(FrameDecoder().feed(proc.stdout)[0])[1]
    assert info.lsb_nv == pytest.approx(47.68, rel=1e-7) and info.electrodes == ()

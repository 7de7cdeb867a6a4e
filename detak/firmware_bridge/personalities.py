r"""Third-party wire formats the `VirtualDevice` can impersonate (``emu://...?format=cyton|csv``).

The emulator normally speaks the detak bridge protocol. With a *personality* it replays the same
record, with the same pacing and the same faults (``drop``, ``corrupt``, ``gain``, ``offset``,
``noise``, ``pulse``, ``drift_ppm``...), in another device's bytes, so the serial drivers run
against a real pty exactly as against the hardware:

``cyton``  OpenBCI Cyton (../shared/docs/devices/03-openbci-cyton.md): 33-byte packets, 8
           channels of int24 big-endian at 250 Hz, counts of 4.5 V / 24 / (2**23 - 1); answers
           ``v`` with a banner ending in ``$$$``, starts on ``b``, stops on ``s``. The record is
           resampled to 250 Hz; its 8 channels are I, II, V1-V6 when the record has them (an
           8-channel front-end: the other 4 limb leads are derived), else its first 8 channels,
           zero-padded. ``lsb_nv`` cannot be set (the Cyton's LSB follows from its gain).
``csv``    one text line of integers per sample, comma-separated, after a header line of lead
           names; streams as soon as the link is up (no commands). ``lsb_nv`` sets the counts'
           scale as usual; the host needs ``fs`` and ``lsb_nv``, which `emu_driver` passes on.

Device events with no place in these formats (lead-off reports, the pulse state, the end of the
stream) are simply not sent — as with the real devices. The faults still act on the samples.

>>> import numpy as np
>>> from detak.data.recording import Recording
>>> from detak.firmware_bridge.emu_config import parse_emu_url
>>> from detak.firmware_bridge.emulator import VirtualDevice
>>> rec = Recording(np.array([[0.0, 0.5, -0.25]]), fs=100.0, leads=["II"])
>>> dev = VirtualDevice(rec, parse_emu_url("emu://file/x?format=csv&speed=0"))
>>> dev.poll(now=0.0).decode()
'II\n0\n500\n-250\n'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from detak.data.recording import Recording

if TYPE_CHECKING:
    from detak.device.drivers import Driver
    from detak.firmware_bridge.emu_config import EmulatorConfig
    from detak.firmware_bridge.emulator import VirtualDevice

WIRES = ("bridge", "cyton", "csv")
CYTON_FS = 250.0
CYTON_GAIN = 24
CYTON_LSB_NV = 4.5e9 / CYTON_GAIN / (2**23 - 1)
CYTON_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
CYTON_BANNER = (b"OpenBCI V3 8-16 channel\nOn Board ADS1299 Device ID: 0x3E\n"
                b"LIS3DH Device ID: 0x33\nFirmware: v3.1.2\n$$$")


class Personality:
    """How a `VirtualDevice` speaks a foreign format (see the module docstring)."""

    name = ""
    driver = ""

    def prepare(self, cfg: EmulatorConfig, recording: Recording) -> Recording:
        """Adapt the record (channels, rate) and the config to the device before quantising."""
        cfg.sample_format = "int24"
        return recording

    def receive(self, dev: VirtualDevice, data: bytes, now: float) -> None:
        """Bytes from the host."""

    def before_poll(self, dev: VirtualDevice, now: float) -> None:
        """Called at each poll (devices that stream without being asked start here)."""

    def encode(self, dev: VirtualDevice, first: int, values: np.ndarray) -> bytes:
        raise NotImplementedError


class CytonPersonality(Personality):
    name = driver = "cyton"

    def prepare(self, cfg: EmulatorConfig, recording: Recording) -> Recording:
        from detak.signal.filters import resample

        super().prepare(cfg, recording)
        cfg.lsb_nv = CYTON_LSB_NV
        leads = list(recording.leads)
        if all(lead in leads for lead in CYTON_LEADS):
            rows = [leads.index(lead) for lead in CYTON_LEADS]
        else:
            rows = list(range(min(8, len(leads))))
        sig = recording.signal[rows]
        names = [leads[r] for r in rows]
        if len(rows) < 8:
            sig = np.vstack([sig, np.zeros((8 - len(rows), sig.shape[1]), np.float32)])
            names += [f"pad{i}" for i in range(len(rows) + 1, 9)]
        if recording.fs != CYTON_FS:
            sig = resample(sig, recording.fs, CYTON_FS)
        return Recording(sig, CYTON_FS, names, name=recording.name,
                         meta={"impersonates": "cyton", "source_fs": recording.fs})

    def receive(self, dev: VirtualDevice, data: bytes, now: float) -> None:
        dev.subscribed = True
        for byte in data:
            cmd = bytes([byte])
            if cmd == b"v":
                dev.streaming = False
                dev._out += CYTON_BANNER
            elif cmd == b"b":
                if not dev.streaming:
                    dev._start(now)
            elif cmd == b"s":
                dev.streaming = False

    def encode(self, dev: VirtualDevice, first: int, values: np.ndarray) -> bytes:
        return cyton_packets(first, values)


class CsvPersonality(Personality):
    name = driver = "csv"

    def __init__(self) -> None:
        self.started = False

    def before_poll(self, dev: VirtualDevice, now: float) -> None:
        if not self.started:
            self.started = True
            dev._out += (",".join(dev.recording.leads) + "\n").encode()
            dev._start(now)
        dev.subscribed = True

    def encode(self, dev: VirtualDevice, first: int, values: np.ndarray) -> bytes:
        return "".join(",".join(map(str, col)) + "\n" for col in values.T.tolist()).encode()


def cyton_packets(first: int, values: np.ndarray) -> bytes:
    """33-byte Cyton packets for samples ``first``... (``values``: int (8, n) counts).

    >>> cyton_packets(255, np.arange(8).reshape(8, 1)).hex()[:12]
    'a0ff00000000'
    """
    v = np.asarray(values, dtype=np.int64)
    if v.shape[0] != 8:
        raise ValueError(f"a Cyton packet carries 8 channels, got {v.shape[0]}")
    n = v.shape[1]
    u = (v & 0xFFFFFF).T                                     # (n, 8) two's complement, 24 bit
    body = np.stack([(u >> 16) & 0xFF, (u >> 8) & 0xFF, u & 0xFF], axis=-1).astype(np.uint8)
    out = np.zeros((n, 33), np.uint8)
    out[:, 0] = 0xA0
    out[:, 1] = (np.arange(first, first + n) % 256).astype(np.uint8)
    out[:, 2:26] = body.reshape(n, 24)
    out[:, 32] = 0xC0                                        # aux = accelerometer, here 0
    return out.tobytes()


def make_personality(cfg: EmulatorConfig) -> Personality | None:
    """The personality an emulator config asks for (None: the bridge protocol)."""
    if cfg.wire == "cyton":
        return CytonPersonality()
    if cfg.wire == "csv":
        return CsvPersonality()
    return None


def _source_fs(cfg: EmulatorConfig) -> float:
    if cfg.source == "ptbxl":
        return float(cfg.fs)
    if cfg.source == "ludb":
        return 500.0
    return float(cfg.load().fs)


def emu_driver(cfg: EmulatorConfig) -> Driver:
    """The host driver for an emulator config: the bridge, or the impersonated device's.

    >>> from detak.firmware_bridge.emu_config import parse_emu_url
    >>> d = emu_driver(parse_emu_url("emu://ludb/1?format=csv&lsb_nv=500"))
    >>> d.name, d.fs, d.lsb_nv
    ('csv', 500.0, 500.0)
    """
    from detak.device.drivers import get_driver

    if cfg.wire == "csv":
        return get_driver("csv", fs=_source_fs(cfg), lsb_nv=cfg.lsb_nv)
    if cfg.wire == "cyton":
        return get_driver("cyton")
    return get_driver("bridge")

r"""OpenBCI Cyton over its USB dongle (serial, 115200 8N1): 33-byte packets, 8 channels, 250 Hz.

From ../shared/docs/devices/03-openbci-cyton.md ("33-byte packet", "Scaling"): byte 0 is
``0xA0``, byte 1 the sample number (u8, wraps), bytes 2-25 eight channels of signed 24-bit
BIG-endian values, bytes 26-31 aux data, byte 32 the footer ``0xC0``-``0xCF``. Resync rule: find
``0xA0`` and require a footer 32 bytes later (out of sync, also the next packet's ``0xA0``).
One count is ``4.5 V / gain / (2**23 - 1)`` (gain 24 by default: 0.02235 µV).

Commands are single ASCII characters: ``v`` soft reset (the board answers with text ending in
``$$$``), ``b`` start streaming, ``s`` stop. `start` sends ``s``, ``v``, waits for ``$$$`` and
sends ``b``; `resume` (after a reconnect) sends ``b`` only.

Sample numbers give gaps: the first packet is sample 0, a jump of k in the counter leaves k - 1
samples missing. The counter wraps every 256 samples (about 1 s), so after a longer silence
(a lost radio link) the number of wraps m in a jump of 256 m + k is taken from time — but from
each packet's estimated *send* time, not from when the host happened to read it
(`detak.device.wraps`): a packet was sent no later than the time of any later read minus the
packets received after it up to that read, divided by fs. So a host stall (an fsync, a busy
consumer), whose backlog arrives contiguous in one or several quick reads, never counts a wrap,
while a real silence, after which packets arrive in real time, still does. Packets after a jump
that may have wrapped are held back until the stream is real time again (0.2 s of host time).

>>> packet = bytes([0xA0, 7]) + bytes.fromhex("000001" "ffffff" + "000000" * 6) + bytes(6) + b"\xc0"
>>> drv = CytonDriver()
>>> blk = [e for e in drv.feed(packet + packet[:1]) if type(e).__name__ == "SampleBlock"][0]
>>> blk.counts[:2, 0].tolist(), blk.first_sample
([1, -1], 0)
>>> round(drv.stream_info().lsb_nv, 3)             # nV per count at gain 24
22.352
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import numpy as np

from detak.device.drivers import DeviceCommandError, Driver, Link, register_driver
from detak.device.events import Event, Reply, SampleBlock, StreamInfo
from detak.device.wraps import WrappingCounter

HEADER = 0xA0
PACKET = 33
N_CHANNELS = 8
FS_HZ = 250.0
GAINS = (1, 2, 4, 6, 8, 12, 24)
CMD_RESET, CMD_START, CMD_STOP = b"v", b"b", b"s"


def cyton_lsb_nv(gain: int = 24) -> float:
    """Nanovolts per count at a PGA ``gain``: 4.5 V / gain / (2**23 - 1)."""
    if gain not in GAINS:
        raise ValueError(f"Cyton gain {gain} invalid; the ADS1299 PGA has {GAINS}")
    return 4.5e9 / gain / (2**23 - 1)


def decode_cyton_packet(packet: bytes) -> tuple[int, np.ndarray, int, bytes]:
    r"""``(sample number, int32 counts (8,), footer, aux bytes)`` of one 33-byte packet.

    >>> decode_cyton_packet(bytes([0xA0, 255]) + b"\x80\x00\x00" * 8 + bytes(6) + b"\xc1")[:1]
    (255,)
    """
    if len(packet) != PACKET or packet[0] != HEADER or packet[32] & 0xF0 != 0xC0:
        raise ValueError(f"not a Cyton packet: {bytes(packet[:4]).hex()}... "
                         f"({len(packet)} bytes)")
    raw = np.frombuffer(packet[2:26], dtype=np.uint8).reshape(N_CHANNELS, 3).astype(np.int32)
    v = (raw[:, 0] << 16) | (raw[:, 1] << 8) | raw[:, 2]
    v = np.where(v >= 1 << 23, v - (1 << 24), v).astype(np.int32)
    return packet[1], v, packet[32], bytes(packet[26:32])


@register_driver
class CytonDriver(Driver):
    """OpenBCI Cyton (8 channels); see the module docstring.

    Options (also as URL parameters): ``gain`` (PGA gain the board is set to, default 24),
    ``fs`` (default 250), ``leads`` (eight comma-separated channel names, default CH1..CH8).
    """

    name = "cyton"
    url_options = ("gain", "fs", "leads")
    reset_timeout = 5.0

    def __init__(self, gain: int | str = 24, fs: float | str = FS_HZ,
                 leads: str | tuple[str, ...] | None = None, **options: Any) -> None:
        super().__init__(**options)
        try:
            self.gain = int(gain)
            self.fs = float(fs)
        except ValueError:
            raise ValueError(f"cyton driver: gain={gain!r} and fs={fs!r} must be numbers"
                             ) from None
        self.lsb_nv = cyton_lsb_nv(self.gain)
        if not self.fs > 0:
            raise ValueError(f"cyton driver: fs={fs!r} must be > 0")
        names = (tuple(x.strip() for x in leads.split(",")) if isinstance(leads, str)
                 else tuple(leads or (f"CH{i}" for i in range(1, N_CHANNELS + 1))))
        if len(names) != N_CHANNELS or not all(names):
            raise ValueError(f"cyton driver: leads={leads!r} must name {N_CHANNELS} channels")
        self.leads = names
        self.firmware = ""
        self._buf = bytearray()
        self._text = bytearray()
        self._synced = False
        self._counter: WrappingCounter[np.ndarray] = WrappingCounter(256, self.fs)
        self._counts = {"bytes": 0, "packets": 0, "skipped_bytes": 0}

    def stream_info(self) -> StreamInfo:
        return StreamInfo(fs=self.fs, channels=self.leads, lsb_nv=self.lsb_nv,
                          model="OpenBCI Cyton", firmware=self.firmware, adc_bits=24,
                          electrodes=self.leads, driver=self.name,
                          extra={"pga_gain": self.gain})

    # --- decoding ----------------------------------------------------------------------------

    def feed(self, data: bytes, channel: str | None = None,
             host_time: float = 0.0) -> list[Event]:
        self._counts["bytes"] += len(data)
        buf = self._buf
        buf += data
        events: list[Event] = []
        packets: list[tuple[int, np.ndarray]] = []         # (sample number, values)
        while buf:
            if buf[0] != HEADER:
                i = buf.find(bytes([HEADER]))
                cut = len(buf) if i < 0 else i
                self._skip(buf[:cut], events)
                del buf[:cut]
                continue
            need = PACKET if self._synced else PACKET + 1
            if len(buf) < need:
                break
            if buf[32] & 0xF0 == 0xC0 and (self._synced or buf[PACKET] == HEADER):
                num, values, _footer, _aux = decode_cyton_packet(bytes(buf[:PACKET]))
                del buf[:PACKET]
                self._synced = True
                self._counts["packets"] += 1
                packets.append((num, values))
                continue
            self._skip(buf[:1], events)
            del buf[:1]
        events += self._blocks(self._counter.feed(packets, host_time), host_time)
        return events

    def _skip(self, chunk: bytes | bytearray, events: list[Event]) -> None:
        """Bytes that are not a packet: text from the board (its ``$$$`` prompt) or noise."""
        if not chunk:
            return
        self._synced = False
        self._counts["skipped_bytes"] += len(chunk)
        self._text += chunk
        if b"$$$" in self._text:
            text = self._text.split(b"$$$")[0].decode("ascii", "replace")
            m = re.search(r"Firmware:\s*(v[\w.]+)", text)
            if m:
                self.firmware = m.group(1)
            events.append(Reply(0, ord("v"), True, 0, text.strip()))
            self._text.clear()
        del self._text[:-4096]

    def _blocks(self, packets: list[tuple[int, np.ndarray]], host_time: float) -> list[Event]:
        out: list[Event] = []
        run: list[np.ndarray] = []
        first = 0
        for index, values in packets:
            if run and index != first + len(run):
                out.append(SampleBlock(np.stack(run, axis=1), first, None, host_time))
                run = []
            if not run:
                first = index
            run.append(values)
        if run:
            out.append(SampleBlock(np.stack(run, axis=1), first, None, host_time))
        return out

    def stats(self) -> dict[str, int]:
        return {**self._counts, "lost_packets": self._counter.lost,
                "duplicate_packets": self._counter.duplicates}

    # --- commands ----------------------------------------------------------------------------

    async def start(self, link: Link) -> StreamInfo:
        if link.interactive:
            await link.send(CMD_STOP)
            fut = link.expect(lambda e: isinstance(e, Reply) and e.command == ord("v"))
            await link.send(CMD_RESET)
            try:
                await asyncio.wait_for(fut, self.reset_timeout)
            except TimeoutError:
                raise DeviceCommandError(
                    f"cyton: no '$$$' prompt within {self.reset_timeout:g} s after the soft "
                    "reset 'v' (is this an OpenBCI Cyton dongle, and is the board on?)"
                ) from None
            self._counter.reset()
            await link.send(CMD_START)
        self.info = self.stream_info()
        return self.info

    async def resume(self, link: Link) -> StreamInfo:
        await link.send(CMD_START)
        self.info = self.stream_info()
        return self.info

    async def stop(self, link: Link) -> None:
        if link.interactive:
            await link.send(CMD_STOP)

"""``emu://`` URLs: which record the virtual device replays and which faults it injects.

``emu://ptbxl/ID``, ``emu://ludb/N`` or ``emu://file/PATH`` (PATH as written after ``file/``;
``emu://file//abs/rec.hea`` is absolute, ``emu://file/rel/rec.hea`` relative to the working
directory), followed by query parameters:

=========== ====================================================================================
speed       replay speed: 1 real time (default), 20 = twenty times faster, 0 = as fast as
            the link takes it
block       samples per SAMPLES frame (default: sample rate / 50, i.e. a frame every 20 ms)
format      int16 or int24 (default int16 for PTB-XL, int24 otherwise); or cyton / csv: impersonate
            an OpenBCI Cyton or a CSV-lines serial device instead of speaking the bridge
            protocol (see `detak.firmware_bridge.personalities`; pty or tcp links only)
lsb_nv      nanovolts per count (default 1000, i.e. 1 µV)
gain        device gain error applied before quantisation (default 1; part of calibration tests)
offset      device offset in counts added to every sample (default 0)
corrupt     probability per wire byte of a SAMPLES frame of being flipped (default 0)
drop        probability per SAMPLES frame of not being sent (default 0)
disconnect  T[:DOWN]: the link drops at T s of record time for DOWN s (default 1)
leadoff     T[:DUR[:ELECTRODE]]: electrode (default LA) off from T s for DUR s (default 1)
noise       T[:DUR[:MV]]: Gaussian noise burst of MV mV RMS (default 0.3) for DUR s (default 1)
pulse       1 (the 1 mV calibration pulse from the start to the end) or T[:DUR]
drift_ppm   the device clock runs this many ppm fast (negative: slow) against the host's
seed        random seed of the corrupt/drop/noise draws (default 0)
lose_answer COMMAND[:N]: the link loses the device's whole answer to the first N (default 1)
            commands of that type (GET_INFO, START, STOP, SET_CAL_PULSE, GET_BATTERY); the lost
            packets use their sequence numbers, so the host sees them lost and resends
repeat      how the device answers a repeated command (same seq and type): fresh (default, the
            protocol's rule since v1.1: the same messages with new sequence numbers) or bytes
            (the identical bytes of the first answer, old sequence numbers: a v1.0 reading)
loop        1: start the record again at its end instead of ending the stream
link        pty (default), tcp or ble (in-process fake BLE peripheral speaking over NUS)
fs          PTB-XL only: 100 (default) or 500 (needs the PhysioNet records500 files)
=========== ====================================================================================

Several faults of one kind: repeat the key or separate by commas (``leadoff=1,4:2:V2``).

>>> cfg = parse_emu_url("emu://ptbxl/1?speed=20&drop=0.01&leadoff=2:0.5:V2")
>>> cfg.source, cfg.target, cfg.speed, cfg.drop, cfg.leadoffs
('ptbxl', '1', 20.0, 0.01, [(2.0, 0.5, 'V2')])
>>> parse_emu_url("emu://ptbxl/1?sped=20")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: emu:// URL 'emu://ptbxl/1?sped=20': unknown parameter 'sped' (known: block, ...)
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from detak.data.recording import Recording

SOURCES = ("ptbxl", "ludb", "file")
LINKS = ("pty", "tcp", "ble")
_KNOWN = ("block", "corrupt", "disconnect", "drift_ppm", "drop", "format", "fs", "gain", "leadoff",
          "link", "loop", "lose_answer", "lsb_nv", "noise", "offset", "pulse", "repeat", "seed",
          "speed")
COMMANDS = ("GET_INFO", "START", "STOP", "SET_CAL_PULSE", "GET_BATTERY")
REPEATS = ("fresh", "bytes")


@dataclass
class EmulatorConfig:
    """Everything an ``emu://`` URL says (times in seconds of record time)."""

    source: str = "ptbxl"
    target: str = "1"
    speed: float = 1.0
    block: int | None = None
    sample_format: str | None = None
    lsb_nv: float = 1000.0
    gain: float = 1.0
    offset: int = 0
    corrupt: float = 0.0
    drop: float = 0.0
    disconnects: list[tuple[float, float]] = field(default_factory=list)
    leadoffs: list[tuple[float, float, str]] = field(default_factory=list)
    noises: list[tuple[float, float, float]] = field(default_factory=list)
    pulses: list[tuple[float, float]] = field(default_factory=list)
    drift_ppm: float = 0.0
    lose_answers: dict[str, int] = field(default_factory=dict)
    repeat: str = "fresh"
    seed: int = 0
    loop: bool = False
    link: str = "pty"
    fs: int = 100
    url: str = ""
    wire: str = "bridge"          # bridge, or an impersonated format (cyton, csv)

    def load(self) -> Recording:
        """The record to replay, in millivolts."""
        return load_source(self.source, self.target, fs=self.fs)


def load_source(source: str, target: str, fs: int = 100) -> Recording:
    """Load the record an ``emu://`` URL names.

    >>> load_source("ludb", "1").name
    'ludb:1'
    """
    if source == "ptbxl":
        from detak.data.ptbxl import UnknownRecordError

        try:
            return _ptbxl().record(_int(target, "PTB-XL ecg_id"), fs=fs)
        except UnknownRecordError as err:
            raise ValueError(f"emu://ptbxl/{target}: {err}") from None
    if source == "ludb":
        from detak.data.ludb import load_ludb

        return load_ludb(_int(target, "LUDB record number")).recording
    if source == "file":
        from detak.data.io import read_recording

        path = Path(target).expanduser()
        if not path.exists() and not Path(f"{path}.hea").exists():
            raise FileNotFoundError(f"emu://file/: record file {path} does not exist")
        return read_recording(path)
    raise ValueError(f"emu:// source {source!r} unknown; use one of {', '.join(SOURCES)}")


@functools.lru_cache(maxsize=1)
def _ptbxl():  # noqa: ANN202 - PtbXl; parsing the database CSV takes a second: do it once
    from detak.data.ptbxl import open_ptbxl

    return open_ptbxl()


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"emu:// {what} must be an integer, got {text!r}") from None


def _float(key: str, text: str, url: str, lo: float = -math.inf, hi: float = math.inf) -> float:
    try:
        x = float(text)
    except ValueError:
        raise ValueError(f"emu:// URL {url!r}: {key}={text!r} is not a number") from None
    if not (lo <= x <= hi) or math.isnan(x):
        raise ValueError(f"emu:// URL {url!r}: {key}={text!r} must be in [{lo:g}, {hi:g}]")
    return x


def _spec(key: str, text: str, url: str, defaults: tuple, kinds: tuple) -> tuple:
    parts = text.split(":")
    if len(parts) > len(defaults):
        raise ValueError(f"emu:// URL {url!r}: {key}={text!r} has more than {len(defaults)} "
                         f"':'-separated fields")
    out = []
    for i, default in enumerate(defaults):
        if i < len(parts) and parts[i] != "":
            if kinds[i] is str:
                out.append(parts[i])
            else:
                out.append(_float(f"{key} field {i + 1}", parts[i], url, 0.0))
        elif default is None:
            raise ValueError(f"emu:// URL {url!r}: {key} needs a start time in seconds")
        else:
            out.append(default)
    return tuple(out)


def parse_emu_url(url: str) -> EmulatorConfig:
    """Parse an ``emu://`` URL; `ValueError` names the offending part.

    >>> parse_emu_url("emu://file//data/rec.hea?pulse=1").target
    '/data/rec.hea'
    >>> parse_emu_url("emu://ludb/3?disconnect=4&noise=1:2:0.5").disconnects
    [(4.0, 1.0)]
    """
    parts = urlsplit(url)
    if parts.scheme != "emu":
        raise ValueError(f"not an emu:// URL: {url!r}")
    source = parts.netloc
    if source not in SOURCES:
        raise ValueError(f"emu:// URL {url!r}: source {source!r} unknown; use "
                         f"emu://ptbxl/ID, emu://ludb/N or emu://file/PATH")
    target = parts.path[1:] if parts.path.startswith("/") else parts.path
    if not target:
        raise ValueError(f"emu:// URL {url!r} names no record (emu://{source}/...)")
    cfg = EmulatorConfig(source=source, target=target, url=url)
    seen = set()
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in _KNOWN:
            raise ValueError(f"emu:// URL {url!r}: unknown parameter {key!r} "
                             f"(known: {', '.join(_KNOWN)})")
        seen.add(key)
        for item in value.split(","):
            _apply(cfg, key, item.strip(), url)
    if cfg.wire != "bridge":
        _check_impersonation(cfg, seen, url)
    return cfg


def _check_impersonation(cfg: EmulatorConfig, seen: set[str], url: str) -> None:
    """Options that the impersonated format cannot carry are errors, not silently ignored."""
    if cfg.link == "ble":
        raise ValueError(f"emu:// URL {url!r}: format={cfg.wire} is a serial format; use "
                         "link=pty or link=tcp")
    if cfg.wire == "cyton" and "lsb_nv" in seen:
        raise ValueError(f"emu:// URL {url!r}: format=cyton fixes the LSB (4.5 V / 24 / "
                         "(2**23 - 1)); use gain= to inject a gain error instead of lsb_nv=")
    if cfg.wire == "csv" and cfg.disconnects:
        raise ValueError(f"emu:// URL {url!r}: format=csv cannot resume after disconnect= "
                         "(the CSV stream has no commands and no sample counter)")


def _apply(cfg: EmulatorConfig, key: str, v: str, url: str) -> None:
    if key == "speed":
        cfg.speed = _float(key, v, url, 0.0, 10000.0)
    elif key == "block":
        cfg.block = int(_float(key, v, url, 1, 255))
    elif key == "format":
        if v in ("cyton", "csv"):
            cfg.wire = v
        elif v in ("int16", "int24"):
            cfg.sample_format = v
        else:
            raise ValueError(f"emu:// URL {url!r}: format={v!r}; use int16 or int24 (the "
                             "bridge's sample format), or cyton or csv (impersonation)")
    elif key == "lsb_nv":
        cfg.lsb_nv = _float(key, v, url, 1e-3, 1e9)
    elif key == "gain":
        cfg.gain = _float(key, v, url, 1e-3, 1e3)
    elif key == "offset":
        cfg.offset = int(_float(key, v, url, -(2**23), 2**23))
    elif key in ("corrupt", "drop"):
        setattr(cfg, key, _float(key, v, url, 0.0, 1.0))
    elif key == "disconnect":
        cfg.disconnects.append(_spec(key, v, url, (None, 1.0), (float, float)))
    elif key == "leadoff":
        cfg.leadoffs.append(_spec(key, v, url, (None, 1.0, "LA"), (float, float, str)))
    elif key == "noise":
        cfg.noises.append(_spec(key, v, url, (None, 1.0, 0.3), (float, float, float)))
    elif key == "pulse":
        if v == "1":
            cfg.pulses.append((0.0, math.inf))
        elif v != "0":
            cfg.pulses.append(_spec(key, v, url, (None, math.inf), (float, float)))
    elif key == "lose_answer":
        name, n = _spec(key, v, url, (None, 1.0), (str, float))
        if name.upper() not in COMMANDS:
            raise ValueError(f"emu:// URL {url!r}: lose_answer={name!r}; use one of "
                             f"{', '.join(COMMANDS)}")
        cfg.lose_answers[name.upper()] = cfg.lose_answers.get(name.upper(), 0) + int(n)
    elif key == "repeat":
        if v not in REPEATS:
            raise ValueError(f"emu:// URL {url!r}: repeat={v!r}; use {' or '.join(REPEATS)}")
        cfg.repeat = v
    elif key == "drift_ppm":
        cfg.drift_ppm = _float(key, v, url, -1e5, 1e5)
    elif key == "seed":
        cfg.seed = int(_float(key, v, url, 0, 2**32 - 1))
    elif key == "loop":
        cfg.loop = v not in ("0", "", "false", "no")
    elif key == "link":
        if v not in LINKS:
            raise ValueError(f"emu:// URL {url!r}: link={v!r}; use {', '.join(LINKS)}")
        cfg.link = v
    elif key == "fs":
        cfg.fs = int(_float(key, v, url, 1, 10000))

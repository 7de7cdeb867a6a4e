'''Per-device calibration profiles in TOML: gain, offset, LSB, lead map, sample-rate correction.

A `DeviceProfile` is what the `Recorder` calls a calibration (it has ``scale_for(info)``):
``mV = (counts - offset) * lsb_nv * 1e-6 * gain`` per channel, so everything after the
recorder sees millivolts only. `DeviceProfile.apply` then finishes a recording: device channel
names -> leads (``[leads.map]``), the limb leads derived from I and II (``derive = "12-lead"``),
and the clock error corrected by resampling when it is above ``resample_above_ppm``.

File layout (``detak calibrate`` writes it; people may edit it)::

    [device]
    model = "detak-emu"          # must match the device's model ("" = any)
    serial = "ptbxl-1"           # must match the device's serial ("" = any)
    driver = "bridge"

    [calibration]
    method = "1 mV pulse"
    created = "2025-01-02T03:04:05+00:00"
    lsb_nv = 1000.0              # optional: overrides the LSB the device declares

    [sample_rate]
    nominal_hz = 500.0           # optional: the device must declare this rate
    drift_ppm = 0.0              # the device really samples at nominal * (1 + drift_ppm / 1e6)
    resample_above_ppm = 1000.0

    [leads]
    derive = "none"              # or "12-lead"
    [leads.map]                  # device channel -> lead ("" drops the channel)
    CH1 = "I"

    [channels.CH1]               # one table per device channel (none: gain 1, offset 0)
    gain = 0.9523809523809523
    offset = 30.0                # counts that mean 0 mV
    lsb_nv = 1000.0              # optional per-channel LSB

>>> from types import SimpleNamespace as Stream          # a device's StreamInfo, in short
>>> p = DeviceProfile(model="m", channels={"I": ChannelCalibration(gain=0.5, offset=10)},
...                   name="demo")
>>> info = Stream(fs=500.0, channels=("I",), lsb_nv=1000.0, model="m", serial="",
...               device_id="m")
>>> s = p.scale_for(info)
>>> float(s.to_mv(np.array([[1010]], np.int32))[0, 0]), s.name
(0.5, 'profile:demo')
>>> DeviceProfile.from_toml(p.to_toml()).channels["I"].gain
0.5
'''

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from detak.calibration.counts import ChannelScale, StreamSpec
from detak.data.recording import Recording

DERIVE = ("none", "12-lead")
PROFILES_ENV = "DETAK_PROFILES"


class ProfileError(ValueError):
    """A profile file is malformed, or does not fit the device it is used with."""


@dataclass
class ChannelCalibration:
    """One channel: multiply by ``gain`` after subtracting ``offset`` counts; optional LSB."""

    gain: float = 1.0
    offset: float = 0.0
    lsb_nv: float | None = None


@dataclass
class DeviceProfile:
    """A device's calibration (see the module docstring)."""

    model: str = ""
    serial: str = ""
    driver: str = ""
    channels: dict[str, ChannelCalibration] = field(default_factory=dict)
    lsb_nv: float | None = None
    nominal_hz: float | None = None
    drift_ppm: float = 0.0
    resample_above_ppm: float = 1000.0
    lead_map: dict[str, str] = field(default_factory=dict)
    derive: str = "none"
    method: str = ""
    created: str = ""
    notes: dict[str, Any] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self) -> None:
        where = f"calibration profile {self.name or self.model or '?'}"
        if self.derive not in DERIVE:
            raise ProfileError(f"{where}: leads.derive = {self.derive!r}; use "
                               f"{' or '.join(DERIVE)}")
        for ch, c in self.channels.items():
            if not (math.isfinite(c.gain) and c.gain > 0):
                raise ProfileError(f"{where}: channel {ch}: gain {c.gain} must be > 0")
            if not math.isfinite(c.offset):
                raise ProfileError(f"{where}: channel {ch}: offset {c.offset} is not a number")
            if c.lsb_nv is not None and not (math.isfinite(c.lsb_nv) and c.lsb_nv > 0):
                raise ProfileError(f"{where}: channel {ch}: lsb_nv {c.lsb_nv} must be > 0")
        if self.lsb_nv is not None and not (math.isfinite(self.lsb_nv) and self.lsb_nv > 0):
            raise ProfileError(f"{where}: calibration.lsb_nv {self.lsb_nv} must be > 0")
        if not (math.isfinite(self.drift_ppm) and abs(self.drift_ppm) < 1e5):
            raise ProfileError(f"{where}: sample_rate.drift_ppm {self.drift_ppm} is not a "
                               "clock error (|ppm| < 100000)")
        if not self.resample_above_ppm >= 0:
            raise ProfileError(f"{where}: sample_rate.resample_above_ppm must be >= 0")

    # --- the Recorder's hook ------------------------------------------------------------------

    def check_device(self, info: StreamSpec) -> None:
        """`ProfileError` naming the field when ``info`` is not the device this profile is for."""
        where = f"calibration profile {self.name or self.model or '?'}"
        if self.model and info.model and self.model != info.model:
            raise ProfileError(f"{where} is for model {self.model!r}; the device is "
                               f"{info.model!r}")
        if self.serial and info.serial and self.serial != info.serial:
            raise ProfileError(f"{where} is for serial {self.serial!r}; the device is "
                               f"{info.serial!r}")
        if self.nominal_hz is not None and abs(self.nominal_hz - info.fs) > 1e-6:
            raise ProfileError(f"{where} is for a sample rate of {self.nominal_hz:g} Hz; the "
                               f"device declares {info.fs:g} Hz")
        unknown = [c for c in self.channels if c not in info.channels]
        if unknown:
            raise ProfileError(f"{where}: channel(s) {', '.join(unknown)} not on the device "
                               f"(it has {', '.join(info.channels)})")
        if self.channels:
            missing = [c for c in info.channels if c not in self.channels]
            if missing:
                raise ProfileError(f"{where} has no gain for channel(s) {', '.join(missing)}")
        bad_map = [c for c in self.lead_map if c not in info.channels]
        if bad_map:
            raise ProfileError(f"{where}: leads.map names channel(s) {', '.join(bad_map)} not "
                               f"on the device (it has {', '.join(info.channels)})")

    def scale_for(self, info: StreamSpec) -> ChannelScale:
        """Per-channel LSB, gain and offset for ``info``'s channels (the `Recorder` hook)."""
        self.check_device(info)
        lsb, gain, offset = [], [], []
        for ch in info.channels:
            c = self.channels.get(ch, ChannelCalibration())
            lsb.append(c.lsb_nv or self.lsb_nv or info.lsb_nv)
            gain.append(c.gain)
            offset.append(c.offset)
        if not all(x > 0 and math.isfinite(x) for x in lsb):
            raise ProfileError(f"device {info.device_id or '?'} declares LSB {info.lsb_nv} nV "
                               "and the profile sets none")
        return ChannelScale(np.array(lsb, float), np.array(gain, float), np.array(offset, float),
                            f"profile:{self.name or self.model or 'unnamed'}")

    # --- after the recorder -------------------------------------------------------------------

    def apply(self, rec: Recording) -> Recording:
        """Lead map, derived leads and sample-rate correction on a recording in mV. Applied
        once: a recording this profile already went through (``meta["profile_applied"]``
        says so, e.g. one written by ``detak record --profile``) is returned unchanged."""
        from detak.calibration.leads import apply_lead_map, derive_standard_leads
        from detak.calibration.rate import correct_sample_rate

        if rec.meta.get("profile_applied") == self._tag():
            return rec
        out = apply_lead_map(rec, self.lead_map)
        if self.derive == "12-lead":
            out = derive_standard_leads(out)
        out = correct_sample_rate(out, self.drift_ppm, self.resample_above_ppm)
        return out.replace(calibration=self._tag(),
                           meta={**out.meta, "profile_applied": self._tag()})

    def _tag(self) -> str:
        return f"profile:{self.name or self.model or 'unnamed'}"

    # --- in a recording's journal ---------------------------------------------------------------

    def to_journal(self) -> dict[str, Any]:
        """What a recording's journal (``session.json``) keeps of this profile, so that a
        recording rebuilt after a crash gets exactly the treatment a finished one gets.

        >>> p = DeviceProfile(model="m", derive="12-lead", lead_map={"CH1": "I"}, name="x")
        >>> q = DeviceProfile.from_journal(p.to_journal())
        >>> (q.name, q.derive, q.lead_map) == ("x", "12-lead", {"CH1": "I"})
        True
        """
        return {"name": self.name, "profile": self.to_dict()}

    @classmethod
    def from_journal(cls, d: dict[str, Any]) -> DeviceProfile:
        """Inverse of `to_journal` (`ProfileError` naming the problem if it is malformed)."""
        if not isinstance(d, dict) or not isinstance(d.get("profile"), dict):
            raise ProfileError(f"a recording journal's profile entry must be "
                               f"{{'name': ..., 'profile': {{...}}}}, got {d!r:.80}")
        return cls.from_dict(d["profile"], name=str(d.get("name", "")))

    # --- TOML ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        cal: dict[str, Any] = {"method": self.method, "created": self.created}
        if self.lsb_nv is not None:
            cal["lsb_nv"] = self.lsb_nv
        if self.notes:
            cal["notes"] = self.notes
        rate: dict[str, Any] = {"drift_ppm": self.drift_ppm,
                                "resample_above_ppm": self.resample_above_ppm}
        if self.nominal_hz is not None:
            rate["nominal_hz"] = self.nominal_hz
        channels = {}
        for ch, c in self.channels.items():
            d: dict[str, Any] = {"gain": c.gain, "offset": c.offset}
            if c.lsb_nv is not None:
                d["lsb_nv"] = c.lsb_nv
            channels[ch] = d
        return {"device": {"model": self.model, "serial": self.serial, "driver": self.driver},
                "calibration": cal, "sample_rate": rate,
                "leads": {"derive": self.derive, "map": dict(self.lead_map)},
                "channels": channels}

    @classmethod
    def from_dict(cls, d: dict[str, Any], name: str = "") -> DeviceProfile:
        where = f"calibration profile {name or '?'}"
        known = {"device", "calibration", "sample_rate", "leads", "channels"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ProfileError(f"{where}: unknown table(s) {', '.join(unknown)} (known: "
                               f"{', '.join(sorted(known))})")
        dev, cal = _table(d, "device", where), _table(d, "calibration", where)
        rate, leads = _table(d, "sample_rate", where), _table(d, "leads", where)
        chans = _table(d, "channels", where)
        channels = {}
        for ch, c in chans.items():
            if not isinstance(c, dict):
                raise ProfileError(f"{where}: [channels.{ch}] must be a table")
            extra = sorted(set(c) - {"gain", "offset", "lsb_nv"})
            if extra:
                raise ProfileError(f"{where}: [channels.{ch}] has unknown key(s) "
                                   f"{', '.join(extra)} (known: gain, offset, lsb_nv)")
            channels[str(ch)] = ChannelCalibration(
                gain=_num(c.get("gain", 1.0), f"{where}: channels.{ch}.gain"),
                offset=_num(c.get("offset", 0.0), f"{where}: channels.{ch}.offset"),
                lsb_nv=None if "lsb_nv" not in c else _num(c["lsb_nv"],
                                                           f"{where}: channels.{ch}.lsb_nv"))
        lead_map = leads.get("map", {})
        if not isinstance(lead_map, dict) or not all(isinstance(v, str)
                                                     for v in lead_map.values()):
            raise ProfileError(f"{where}: [leads.map] must map channel names to lead names")
        return cls(
            model=str(dev.get("model", "")), serial=str(dev.get("serial", "")),
            driver=str(dev.get("driver", "")), channels=channels,
            lsb_nv=None if "lsb_nv" not in cal else _num(cal["lsb_nv"], f"{where}: lsb_nv"),
            nominal_hz=(None if "nominal_hz" not in rate
                        else _num(rate["nominal_hz"], f"{where}: sample_rate.nominal_hz")),
            drift_ppm=_num(rate.get("drift_ppm", 0.0), f"{where}: sample_rate.drift_ppm"),
            resample_above_ppm=_num(rate.get("resample_above_ppm", 1000.0),
                                    f"{where}: sample_rate.resample_above_ppm"),
            lead_map={str(k): v for k, v in lead_map.items()},
            derive=str(leads.get("derive", "none")), method=str(cal.get("method", "")),
            created=str(cal.get("created", "")), notes=dict(cal.get("notes", {})), name=name)

    def to_toml(self) -> str:
        header = ("# detak device calibration profile (issue 6). Counts -> mV: "
                  "(counts - offset) * lsb_nv * 1e-6 * gain\n")
        return header + dumps_toml(self.to_dict())

    @classmethod
    def from_toml(cls, text: str, name: str = "") -> DeviceProfile:
        try:
            d = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ProfileError(f"calibration profile {name or '?'}: not valid TOML: {exc}"
                               ) from None
        return cls.from_dict(d, name)

    def save(self, path: str | Path) -> Path:
        """Write the TOML file (atomically: a crash leaves the old one)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(self.to_toml())
        os.replace(tmp, p)
        return p


def load_profile(path: str | Path) -> DeviceProfile:
    """Read a profile file; errors name the file and the field."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"calibration profile {p} does not exist")
    try:
        return DeviceProfile.from_toml(p.read_text(), name=p.stem)
    except ProfileError as exc:
        raise ProfileError(f"{p}: {exc}") from None


def _table(d: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    t = d.get(key, {})
    if not isinstance(t, dict):
        raise ProfileError(f"{where}: [{key}] must be a table")
    return t


def _num(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ProfileError(f"{what} must be a number, got {v!r}")
    return float(v)


# --- where profiles live -------------------------------------------------------------------------


def profiles_dir() -> Path:
    """``$DETAK_PROFILES``, else ``$XDG_CONFIG_HOME/detak/profiles`` (``~/.config/...``)."""
    env = os.environ.get(PROFILES_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "detak" / "profiles"


def profile_filename(model: str, serial: str = "") -> str:
    """``model-serial.toml`` with anything unsafe replaced.

    >>> profile_filename("Polar H10", "9A1B:2C")
    'Polar-H10-9A1B-2C.toml'
    """
    raw = "-".join(x for x in (model, serial) if x) or "device"
    return re.sub(r"[^-\w.]+", "-", raw).strip("-") + ".toml"


def find_profile_path(info: StreamSpec, directory: str | Path | None = None) -> Path | None:
    """Where this device's saved profile is: ``model-serial.toml``, else ``model.toml``, in
    ``directory`` (default `profiles_dir`); None if neither exists.

    >>> import tempfile
    >>> from types import SimpleNamespace as Stream          # a device's StreamInfo, in short
    >>> info = Stream(fs=500.0, channels=("I",), lsb_nv=1000.0, model="m", serial="7")
    >>> with tempfile.TemporaryDirectory() as d:
    ...     missing = find_profile_path(info, d)
    ...     _ = DeviceProfile(model="m").save(Path(d) / "m.toml")
    ...     found = find_profile_path(info, d).name
    >>> missing, found
    (None, 'm.toml')
    """
    d = Path(directory) if directory is not None else profiles_dir()
    for fname in (profile_filename(info.model, info.serial), profile_filename(info.model)):
        if (d / fname).is_file():
            return d / fname
    return None


def find_profile(info: StreamSpec, directory: str | Path | None = None) -> DeviceProfile | None:
    """The saved profile for this device (see `find_profile_path`), if any."""
    path = find_profile_path(info, directory)
    return None if path is None else load_profile(path)


# --- a small TOML writer (tomllib only reads) ----------------------------------------------------

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE.match(k) else _string(k)


def _string(s: str) -> str:
    out = s.replace("\\", "\\\\").replace('"', '\\"')
    out = "".join(c if c >= " " and c != "\x7f" else f"\\u{ord(c):04x}" for c in out)
    return f'"{out}"'


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"TOML cannot hold {v}")
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def dumps_toml(d: dict[str, Any], prefix: str = "") -> str:
    """TOML text for nested dicts of str/int/float/bool/lists (enough for profiles).

    >>> import tomllib
    >>> d = {"a": {"x": 1.5, "b": {"V1": "I", "odd key": True}}}
    >>> tomllib.loads(dumps_toml(d)) == d
    True
    """
    lines = []
    plain = {k: v for k, v in d.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in d.items() if isinstance(v, dict)}
    if prefix and (plain or not tables):
        lines.append(f"[{prefix}]")
    for k, v in plain.items():
        lines.append(f"{_key(k)} = {_value(v)}")
    text = "\n".join(lines) + ("\n" if lines else "")
    for k, v in tables.items():
        sub = f"{prefix}.{_key(k)}" if prefix else _key(k)
        text += ("\n" if text else "") + dumps_toml(v, sub)
    return text

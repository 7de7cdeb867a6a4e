"""``detak calibrate URL``: the 1 mV pulse procedure, writing the device's TOML profile.

`add_calibrate_command(sub)` adds the sub-command to the ``detak`` parser (heavy imports happen
inside the command). It prints one line per channel (measured pulse, gain, offset), the
sample-rate check, and the profile's path as its last line.

>>> import argparse
>>> p = argparse.ArgumentParser(); sub = p.add_subparsers(dest="command")
>>> add_calibrate_command(sub)
>>> a = p.parse_args(["calibrate", "emu://ptbxl/1?gain=1.1", "--lead-map", "8-lead"])
>>> a.url, a.seconds, a.lead_map, a.external_pulse
('emu://ptbxl/1?gain=1.1', 4.0, '8-lead', False)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def add_calibrate_command(sub: Any) -> None:
    """Add ``calibrate`` to an argparse sub-parser collection."""
    p = sub.add_parser(
        "calibrate", help="measure a device's gain per channel from its 1 mV pulse and write "
        "its calibration profile (TOML)",
        description="Connect to URL, switch the device's 1 mV calibration pulse on, measure "
        "each channel's gain and zero level from the square wave, check the sample rate "
        "against the host clock (live devices paced in real time), and write the profile "
        "(default: $DETAK_PROFILES or ~/.config/detak/profiles/MODEL-SERIAL.toml). The last "
        "line printed is the profile's path. Devices without a pulse command: connect a 1 mV "
        "calibrator and pass --external-pulse.")
    p.add_argument("url", metavar="URL")
    p.add_argument("--seconds", type=float, default=4.0,
                   help="seconds of pulse to measure (default 4)")
    p.add_argument("--settle", type=float, default=0.5,
                   help="seconds to skip after the pulse comes on (default 0.5)")
    p.add_argument("--out", default=None, help="profile file to write")
    p.add_argument("--external-pulse", action="store_true",
                   help="the pulse comes from an external calibrator (no device command)")
    p.add_argument("--pulse-mv", type=float, default=1.0,
                   help="height of the pulse in mV (default 1)")
    p.add_argument("--lead-map", default=None, metavar="MAP",
                   help="device channel -> lead: CH1=I,CH2=II,... or a named map "
                   "(8-lead, ads1298-evm)")
    p.add_argument("--derive", choices=["none", "12-lead"], default="none",
                   help="derive III, aVR, aVL, aVF from I and II when recording")
    p.add_argument("--resample-above-ppm", type=float, default=1000.0,
                   help="resample recordings whose clock is off by more (default 1000 ppm)")
    p.add_argument("--no-rate", action="store_true", help="skip the sample-rate check")
    p.set_defaults(func=_cmd_calibrate)


def _cmd_calibrate(args: argparse.Namespace) -> int:
    import asyncio

    from detak.calibration.leads import parse_lead_map
    from detak.calibration.profile import profile_filename, profiles_dir
    from detak.device.pulse import calibrate

    # CalibrationError, ProfileError, DeviceCommandError, a bad URL: named by detak.errors
    lead_map = parse_lead_map(args.lead_map) if args.lead_map else None
    result = asyncio.run(calibrate(
        args.url, args.seconds, settle=args.settle, external=args.external_pulse,
        pulse_mv=args.pulse_mv, measure_rate=not args.no_rate, lead_map=lead_map,
        derive=args.derive, resample_above_ppm=args.resample_above_ppm))
    profile = result.profile
    print(f"{profile.model or '?'} {profile.serial}: {len(result.pulses)} channels at "
          f"{result.info.fs:g} Hz, {result.samples} pulse samples each")
    print(f"  {'channel':<8} {'pulse mV':>9} {'gain':>9} {'offset':>9} {'noise':>7}")
    for m in result.pulses:
        print(f"  {m.channel:<8} {m.measured_mv:>9.4f} {m.gain:>9.5f} {m.low:>9.1f} "
              f"{m.noise_counts:>7.2f}")
    print(f"sample rate: {result.rate_note}")
    out = Path(args.out) if args.out else profiles_dir() / profile_filename(profile.model,
                                                                             profile.serial)
    profile.name = out.stem
    print(profile.save(out))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m detak.device.calibrate_cli URL ...``; errors as in ``detak``."""
    from detak.errors import run_command

    parser = argparse.ArgumentParser(prog="detak")
    sub = parser.add_subparsers(dest="command", required=True)
    add_calibrate_command(sub)
    args = parser.parse_args(["calibrate", *(sys.argv[1:] if argv is None else argv)])
    return run_command("calibrate", lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())

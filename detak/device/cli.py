"""``detak record``, ``detak devices`` and ``detak replay`` (issue 6).

`add_device_commands(sub)` adds the three sub-commands to the ``detak`` parser; ``python -m
detak.device.cli ...`` runs them on their own. Heavy imports happen inside the commands.

>>> import argparse
>>> p = argparse.ArgumentParser(); sub = p.add_subparsers(dest="command")
>>> add_device_commands(sub)
>>> a = p.parse_args(["record", "emu://ptbxl/1?speed=20", "--seconds", "10", "--out", "d"])
>>> a.url, a.seconds, a.out
('emu://ptbxl/1?speed=20', 10.0, 'd')
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

URL_HELP = ("serial:///dev/ttyUSB0?baud=115200, socket://HOST:PORT, file://CAPTURE, "
            "emu://ptbxl/ID?speed=20&drop=0.01..., emu://ludb/N, emu://file/PATH, "
            "ble://ADDRESS?profile=bridge")


def add_device_commands(sub: Any) -> None:
    """Add ``record``, ``devices`` and ``replay`` to an argparse sub-parser collection."""
    p = sub.add_parser(
        "record", help="record N seconds of ECG from a device into a WFDB record (mV)",
        description="Record SECONDS of ECG (samples / sample rate, whatever the emulator's "
        "speed) from URL into OUT/NAME.hea/.dat, in millivolts, with the device, calibration "
        "and gaps in the header. Lost frames become NaN gaps; a lost link is reconnected. "
        "Samples are journaled in OUT/NAME.parts/ while recording; after a crash, "
        "`detak record --recover OUT` rebuilds the record. Without --profile, the profile "
        "`detak calibrate` saved for the connected device ($DETAK_PROFILES or "
        "~/.config/detak/profiles/MODEL-SERIAL.toml, else MODEL.toml) is applied and named on "
        "stderr; --no-profile records raw. The last line printed is the "
        f"record's header path. URL: {URL_HELP}.")
    p.add_argument("url", nargs="?", metavar="URL")
    p.add_argument("--seconds", type=float, default=None, help="seconds of ECG to record")
    p.add_argument("--out", default=".", help="folder for the record (default: .)")
    p.add_argument("--name", default=None,
                   help="record name (default MODEL-SERIAL-YYYYmmddTHHMMSS)")
    p.add_argument("--recover", metavar="DIR", default=None,
                   help="rebuild records from the *.parts folders a crash left in DIR")
    p.add_argument("--chunk-seconds", type=float, default=1.0,
                   help="journal chunk length: at most this much is lost in a crash")
    p.add_argument("--keep-parts", action="store_true", help="keep the journal folder")
    p.add_argument("--profile", default=None, metavar="PROFILE.toml",
                   help="calibration profile (from `detak calibrate`): gains, offsets, lead map, "
                   "lead derivation and clock correction applied to the recording (default: "
                   "the device's saved profile, if there is one)")
    p.add_argument("--no-profile", action="store_true",
                   help="record raw (the LSB the device declares), even if a profile is saved")
    p.add_argument("--capture", default=None, metavar="FILE",
                   help="also save the raw received bytes (replay with file://FILE)")
    p.set_defaults(func=_cmd_record)

    p = sub.add_parser(
        "devices", help="list serial ports and BLE ECG devices in range, with their profile",
        description="List serial ports (any can carry the detak bridge: serial://PORT) and "
        "BLE devices whose advertisement matches a known profile (ble://ADDRESS?profile=P). "
        "The BLE scan gives up after --timeout seconds and reports why when Bluetooth is "
        "unavailable.")
    p.add_argument("--timeout", type=float, default=4.0, help="BLE scan time (default 4 s)")
    p.add_argument("--no-ble", action="store_true", help="skip the BLE scan")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_devices)

    p = sub.add_parser(
        "replay", help="live view of a device stream in the terminal: rate, quality, gaps",
        description="Connect to URL, start the stream and show what arrives: signal time, "
        f"sample rate, frames, gaps, bad frames, leads off, signal quality. URL: {URL_HELP}.")
    p.add_argument("url", metavar="URL")
    p.add_argument("--seconds", type=float, default=None,
                   help="stop after this much signal (default: until the stream ends / Ctrl-C)")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between updates")
    p.set_defaults(func=_cmd_replay)


def _cmd_record(args: argparse.Namespace) -> int:
    from detak.device.record import record, recover
    from detak.errors import UsageError

    if args.recover:
        if args.url:
            raise UsageError("give either URL or --recover DIR, not both")
        paths = recover(args.recover)  # PartsError, FileNotFoundError: named by detak.errors
        for path in paths:
            print(path)
        return 0
    if not args.url or args.seconds is None:
        raise UsageError("give URL and --seconds N (or --recover DIR)")
    if args.profile and args.no_profile:
        raise UsageError("give --profile or --no-profile, not both")
    calibration = None
    if args.profile:
        from detak.calibration.profile import ProfileError, load_profile

        try:
            calibration = load_profile(args.profile)
        except (ProfileError, OSError) as err:
            raise ProfileError(f"profile {args.profile}: {err}") from err
    # a bad URL, a lost device, a full disk: named errors, reported by detak.errors
    path = record(args.url, args.seconds, args.out, name=args.name,
                  chunk_seconds=args.chunk_seconds, keep_parts=args.keep_parts,
                  capture=args.capture, calibration=calibration,
                  saved_profile=not args.no_profile)
    from detak.data.wfdb_io import read_wfdb

    rec = read_wfdb(path)
    stats = rec.meta.get("link_stats", {})
    bad = sum(stats.get(k, 0) for k in ("crc_errors", "cobs_errors", "short_frames",
                                         "oversize_frames"))
    print(f"recorded {rec.duration_s:g} s, {rec.n_leads} leads at {rec.fs:g} Hz from "
          f"{args.url}: {len(rec.meta.get('gaps', []))} gaps "
          f"({rec.meta.get('gap_samples', 0) / rec.fs:g} s), {bad} bad frames, "
          f"{rec.meta.get('link', {}).get('lost', 0)} link losses"
          + (f"; {hr['measurements']} device heart rates in {hr['file']}"
             if (hr := rec.meta.get("device_heart_rate")) else ""))
    print(path)
    return 0


def _cmd_devices(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from detak.device.discovery import list_devices

    found = asyncio.run(list_devices(ble=not args.no_ble, timeout=args.timeout))
    if args.json:
        print(json.dumps(found, indent=1))
        return 0
    print("serial ports:")
    for port in found["serial"] or [{"device": "(none)", "description": ""}]:
        print(f"  {port['device']:<24} {port.get('description', '')}")
    if args.no_ble:
        return 0
    print("BLE ECG devices:")
    if found["ble_error"]:
        print(f"  ({found['ble_error']})")
    elif not found["ble"]:
        print("  (none in range)")
    for dev in found["ble"]:
        print(f"  {dev['address']:<20} {dev['name']:<22} rssi {dev['rssi']}  "
              f"profile {', '.join(dev['profiles'])}  -> {dev['url']}")
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    import asyncio

    from detak.device.live import replay

    try:  # a bad URL or a lost device: named errors, reported by detak.errors
        return asyncio.run(replay(args.url, seconds=args.seconds, interval=args.interval))
    except KeyboardInterrupt:
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="detak", description="detak device commands")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_device_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m detak.device.cli record|devices|replay ...``; errors as in ``detak``."""
    from detak.errors import run_command

    args = build_parser().parse_args(argv)
    return run_command(args.command, lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())

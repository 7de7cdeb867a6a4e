"""The ``detak`` command: one sub-command per user task.

>>> from detak.cli import build_parser
>>> build_parser().parse_args(["intervals", "ludb://1", "--json"]).sources
['ludb://1']
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="detak",
        description="ECG screening on the edge: read, check, measure and report ECG recordings.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "intervals",
        help="measure RR/PR/QRS/QT/QTc/ST/R-S/heart rate of ECG recordings",
        description="Measure intervals. SOURCE: a WFDB record (rec or rec.hea), a .csv, an .edf, "
        "ptbxl://ECG_ID, ptbxl://foldK or ludb://N. One source prints one JSON object; several "
        "print JSON Lines, each with \"source\".",
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument("--json", action="store_true", help="print JSON (the default and only format)")
    p.add_argument("--jobs", "-j", type=int, default=0,
                   help="worker processes (default: all cores)")
    p.add_argument("--notch", type=float, default=None, metavar="HZ",
                   help="remove mains interference at HZ (50 in Indonesia, 60 in the Americas)")
    p.set_defaults(func=_cmd_intervals)

    p = sub.add_parser(
        "demo",
        help="run the main job on the bundled sample records and write a report folder",
        description="Bundled sample records → validation → signal chain → quality → intervals → "
        "report (JSON per record, 12-lead PNG in ECG-paper style). The last line printed is the "
        "report folder.",
    )
    p.add_argument("--out", default=None, help="report folder (default: ./reports/demo-TIMESTAMP)")
    p.set_defaults(func=_cmd_demo)
    return parser


def _cmd_intervals(args: argparse.Namespace) -> int:
    from detak.signal.intervals_cli import run_intervals_command

    return run_intervals_command(args.sources, jobs=args.jobs, notch_hz=args.notch)


def _cmd_demo(args: argparse.Namespace) -> int:
    from detak.report.demo import run_demo

    out = run_demo(args.out)
    print(out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``detak`` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

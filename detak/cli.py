"""The ``detak`` command: one sub-command per user task.

>>> from detak.cli import build_parser
>>> build_parser().parse_args(["intervals", "ludb://1", "--json"]).sources
['ludb://1']
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from detak.device.calibrate_cli import add_calibrate_command
from detak.device.cli import add_device_commands
from detak.errors import EXIT_RULE, EXIT_RULE_SHORT, UsageError
from detak.explain.cli import add_explain_commands
from detak.export.cli import add_export_commands
from detak.export.predict_cli import add_inference_commands
from detak.kiosk.demo import add_demo_command
from detak.kiosk.kiosk_cli import add_kiosk_command
from detak.kiosk.report_cli import add_report_command
from detak.kiosk.screen_cli import add_screen_command
from detak.kiosk.store_cli import add_store_commands
from detak.models.cnn_cli import add_cnn_commands
from detak.server.cli import add_server_command
from detak.sync.cli import add_sync_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="detak",
        description="ECG screening on the edge: read, check, measure and report ECG recordings.",
        epilog=EXIT_RULE,
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error instead of its one-line message")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "intervals",
        help="measure RR/PR/QRS/QT/QTc/ST/R-S/heart rate of ECG recordings",
        description="Measure intervals. SOURCE: a WFDB record (rec or rec.hea), a .csv, an .edf, "
        "ptbxl://ECG_ID, ptbxl://foldK or ludb://N. One source prints one JSON object; several "
        "print JSON Lines, each with \"source\"; an unreadable source prints {\"error\": ...}, a "
        "rejected recording null values with the quality reasons. Flagged gaps (from detak "
        "record): RR from beats whose QRS is gap-free and intervals that cross no gap, "
        "PR/QRS/QT from beats whose window (-0.35..+0.6 s) is gap-free; the quality object "
        "names the gaps. " + EXIT_RULE_SHORT,
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument("--json", action="store_true", help="print JSON (the default and only format)")
    p.add_argument("--jobs", "-j", type=int, default=0,
                   help="worker processes (default: all cores)")
    p.add_argument("--notch", type=float, default=None, metavar="HZ",
                   help="remove mains interference at HZ (50 in Indonesia, 60 in the Americas)")
    p.set_defaults(func=_cmd_intervals)

    p = sub.add_parser(
        "rhythm",
        help="rhythm findings (AF, flutter, AV block, pauses, ectopy ...) with urgency and reasons",
        description="Find the rhythm of ECG recordings with the clinical rule set's rhythm rules "
        "(and the rhythm classifier when one is installed). SOURCE as in `detak intervals`. "
        "Prints per source {\"source\", \"record\", \"rhythm\": {\"findings\": [{\"code\", "
        "\"source\", \"probability\", \"urgency\", \"reasons\"}, ...], \"lead\"}, "
        "\"features\", \"units\", \"reasons\", \"quality\"}; JSON Lines for several. code: "
        "a PTB-XL statement (SR, SBRAD, STACH, SARRH, AFIB, AFLT, SVTAC, BIGU, TRIGU, PACE, "
        "1AVB, 2AVB, 3AVB, PVC, PRC(S)) or PAUSE / IRREG_UNCLASSIFIED (cannot classify: the "
        "reasons say why). urgency: refer today / routine review / no finding. Reasons in "
        "English and Bahasa Indonesia. An unreadable source or a missing lead prints "
        "{\"error\": ...}. Example: detak rhythm ptbxl://fold9 --lead II > fold9_II.jsonl. "
        + EXIT_RULE_SHORT,
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument("--lead", default=None, metavar="NAME",
                   help="analyse this one lead only (a single-lead device's view, e.g. II or I)")
    p.add_argument("--json", action="store_true", help="print JSON (the default and only format)")
    p.add_argument("--jobs", "-j", type=int, default=0,
                   help="worker processes (default: all cores)")
    p.set_defaults(func=_cmd_rhythm)

    p = sub.add_parser(
        "rules",
        help="label rhythm risk from intervals with a readable rule set (s3, clinical)",
        description="Label each INPUT with a rule set. INPUT is a SOURCE (as in `detak "
        "intervals`) or a CSV of interval rows with the `detak intervals` keys (rr_ms, pr_ms, "
        "qrs_ms, qt_ms, qtc_bazett_ms, st_ms, rs_ratio, hr_bpm, optional sex). Prints a JSON "
        "list, one object per row/source: {\"label\": ..., \"reasons\": [...]}, reasons in "
        "English and Bahasa Indonesia. " + EXIT_RULE_SHORT,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("--ruleset", default="s3",
                   help="s3 (the study's table), clinical (AHA/ACCF/HRS 2009, ACC/AHA/HRS "
                   "2018), or a path to your own TOML rule file (default s3)")
    p.add_argument("--number-format", default="auto",
                   choices=["auto", "point", "comma", "dot-thousands"],
                   help="how numbers are written in CSV inputs (S3's files: dot-thousands)")
    p.add_argument("--json", action="store_true", help="print JSON (the default and only format)")
    p.set_defaults(func=_cmd_rules)

    p = sub.add_parser(
        "tabular",
        help="train or cross-validate tabular models (nb, knn, dt, rf, lr)",
        description="Tabular models on heart-failure records (S2), PTB-XL intervals (S3) or a "
        "CSV of cases with a schema (S4). `evaluate` prints cross-validated metrics as JSON "
        "(auc_mean, auc_sd, accuracy_mean, f1_mean, ...); `train` also fits on all rows and "
        "saves the model with its JSON model card.",
    )
    p.add_argument("action", choices=["train", "evaluate"])
    p.add_argument("--dataset", required=True,
                   help="heart-failure, ptbxl-intervals, or a CSV of cases")
    p.add_argument("--model", required=True, choices=["nb", "knn", "dt", "rf", "lr"])
    p.add_argument("--cv", type=int, default=5, help="stratified folds (default 5)")
    p.add_argument("--k", type=int, default=None, help="neighbours for knn (default 5)")
    p.add_argument("--with-time", action="store_true",
                   help="heart-failure: keep `time` (follow-up time leaks the outcome)")
    p.add_argument("--schema", default=None,
                   help="schema for a CSV dataset: s4_echo, ecg_intervals (default) or a path")
    p.add_argument("--name", default=None, help="train: model name (default DATASET-MODEL)")
    p.add_argument("--out", default=None, help="train: folder for the model files")
    p.add_argument("--json", action="store_true", help="print JSON (the default and only format)")
    p.set_defaults(func=_cmd_tabular)

    p = sub.add_parser(
        "classify",
        help="classify one record with a saved tabular model (label, probabilities, neighbours)",
        description="SOURCE is an ECG source (its intervals are measured), a JSON object or "
        "CSV of feature rows. MODEL is a name from `detak tabular train` or a path. "
        + EXIT_RULE_SHORT,
    )
    p.add_argument("source", metavar="SOURCE")
    p.add_argument("--model", required=True, metavar="NAME")
    p.add_argument("--k", type=int, default=None, help="neighbours to list for knn")
    p.add_argument("--json", action="store_true", help="print JSON (the default and only format)")
    p.set_defaults(func=_cmd_classify)

    p = sub.add_parser(
        "quality",
        help="check recordings: validation errors, flat/saturated leads, noise; ok/warn/reject",
        description="Validate recordings and assess their signal quality. Prints one JSON "
        "object per record (JSON Lines for several) with the verdict ok / warn / reject and the "
        "reasons. Flagged gaps (from detak record) are the first reason and a \"gaps\" object "
        "(count, total_s, spans_s); rejected when they cover > 20 % or no gap-free stretch "
        "lasts 1.7 s. " + EXIT_RULE_SHORT,
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument("--json", action="store_true", help="print JSON (the default and only format)")
    p.set_defaults(func=_cmd_quality)

    p = sub.add_parser(
        "plot",
        help="draw recordings on ECG paper (25 mm/s, 10 mm/mV) as PNG or SVG",
        description="Draw each record on ECG paper, filtered 0.5–40 Hz (--raw to skip), with "
        "its measured intervals. OUT is a file (one record) or a folder. A rejected recording is "
        "drawn unfiltered and named on stderr. " + EXIT_RULE_SHORT,
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument("--out", required=True, help="output .png/.svg file, or a folder")
    p.add_argument("--raw", action="store_true", help="draw the unfiltered signal")
    p.add_argument("--format", choices=["png", "svg"], default="png",
                   help="file type when OUT is a folder (default png)")
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser(
        "convert",
        help="convert a recording between WFDB, CSV and EDF input and WFDB/CSV output",
        description="Read SOURCE (any source string) and write it to OUT: a WFDB record when "
        "OUT ends in .hea or has no suffix, a CSV when it ends in .csv. " + EXIT_RULE_SHORT,
    )
    p.add_argument("source", metavar="SOURCE")
    p.add_argument("out", metavar="OUT")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser(
        "data",
        help="show which datasets detak finds under DETAK_DATA and what they hold",
        description="Print a JSON summary of the datasets under DETAK_DATA (default "
        "../shared/data): PTB-XL record and superclass counts, folds with signals, LUDB, "
        "heart-failure records.",
    )
    p.set_defaults(func=_cmd_data)

    add_demo_command(sub)          # demo (the kiosk pipeline on bundled records)
    add_cnn_commands(sub)          # train
    add_inference_commands(sub)    # evaluate, predict, models
    add_export_commands(sub)       # export, bundle
    add_explain_commands(sub)
    add_device_commands(sub)
    add_calibrate_command(sub)
    add_screen_command(sub)        # screen (the kiosk's pipeline)
    add_report_command(sub)        # report (the screening's PDF, re-rendered from the store)
    add_store_commands(sub)
    add_kiosk_command(sub)         # kiosk (the nurse's app)
    add_sync_command(sub)          # sync, sync enroll (kiosk -> clinic server)
    add_server_command(sub)        # server (the clinic server and its admin commands)
    return parser


def _cmd_intervals(args: argparse.Namespace) -> int:
    from detak.signal.intervals_cli import run_intervals_command

    return run_intervals_command(args.sources, jobs=args.jobs, notch_hz=args.notch)


def _cmd_rhythm(args: argparse.Namespace) -> int:
    from detak.models.rhythm_cli import run_rhythm_command

    return run_rhythm_command(args.sources, lead=args.lead, jobs=args.jobs)


def _single_record(source: str):  # noqa: ANN202 - (SourceRecord, Recording)
    from detak.data.sources import expand_source

    items = expand_source(source)
    if len(items) != 1:
        raise UsageError(f"{source!r} names {len(items)} records; give one record")
    return items[0], items[0].load()


def _cmd_rules(args: argparse.Namespace) -> int:
    from detak.models.rules_cli import run_rules_command

    return run_rules_command(args.inputs, args.ruleset, number_format=args.number_format)


def _cmd_tabular(args: argparse.Namespace) -> int:
    from detak.models import tabular_cli

    opts = {"with_time": args.with_time, "schema": args.schema, "k": args.k}
    if args.action == "evaluate":
        tabular_cli.tabular_evaluate(args.dataset, args.model, args.cv, **opts)
        return 0
    return tabular_cli.tabular_train(args.dataset, args.model, args.cv, args.out,
                                     name=args.name, **opts)


def _cmd_classify(args: argparse.Namespace) -> int:
    import json

    from detak.models.tabular_cli import classify

    print(json.dumps(classify(args.source, args.model, k=args.k), indent=1, default=str))
    return 0


def _cmd_quality(args: argparse.Namespace) -> int:
    import json

    from detak.data.validation import RecordingError, validate_recording
    from detak.errors import error_line, report_rejected
    from detak.signal.intervals_cli import _error_text, _json_safe, expand_each
    from detak.signal.quality import assess_quality

    status, items = 0, expand_each(args.sources)
    for item in items:
        out: dict = {"source": item.source, "record": item.record}
        failed = item.key if item.kind == "error" else None
        if failed is None:
            try:
                rec = item.load()
            except Exception as err:  # noqa: BLE001 - reported per source, the others go on
                failed = _error_text(err)
        if failed is None:
            try:
                validate_recording(rec, allow_flagged_gaps=True)  # gaps: named by quality
                out.update(assess_quality(rec).to_dict())
            except RecordingError as err:  # read, but not fit to analyse: rejected
                out.update({"verdict": "reject", "reasons": [str(err)], "error": str(err)})
        if failed is not None:
            out.update({"verdict": "reject", "reasons": [failed], "error": failed})
            print(error_line("quality", failed, item.record), file=sys.stderr)
            status = 1
        elif out.get("verdict") == "reject":
            status = report_rejected("quality", item.record, out.get("reasons") or [])
        print(json.dumps(_json_safe(out), indent=2 if len(items) == 1 else None,
                         ensure_ascii=False), flush=True)
    return status


def _cmd_plot(args: argparse.Namespace) -> int:
    from pathlib import Path

    from detak.errors import error_line, report_rejected
    from detak.report.paper import plot_ecg_paper
    from detak.signal.analysis import analyse_recording
    from detak.signal.filters import clean
    from detak.signal.intervals_cli import _error_text, expand_each

    items = expand_each(args.sources)
    out = Path(args.out)
    as_file = len(items) == 1 and out.suffix.lower() in {".png", ".svg"}
    status = 0
    for item in items:
        if item.kind == "error":
            print(error_line("plot", item.key, item.record), file=sys.stderr)
            status = 1
            continue
        try:
            rec = item.load()
            result = analyse_recording(rec)
            verdict = result["quality"]["verdict"]
            shown = rec if args.raw or verdict == "reject" else clean(rec)
            name = item.record.replace(":", "-").replace("/", "_").strip("_")
            path = out if as_file else out / f"{Path(name).name}.{args.format}"
            plot_ecg_paper(shown, path, intervals=result, title=item.record,
                           subtitle=f"quality: {verdict}" + ("" if args.raw else
                                                             "; filtered 0.5–40 Hz"))
        except Exception as err:  # noqa: BLE001 - reported per source, the others go on
            print(error_line("plot", _error_text(err), item.record), file=sys.stderr)
            status = 1
            continue
        print(path)
        if verdict == "reject":  # drawn unfiltered so it can be looked at, but not analysed
            status = report_rejected("plot", item.record, result["quality"]["reasons"])
    return status


def _cmd_convert(args: argparse.Namespace) -> int:
    from detak.data.io import write_recording

    _, rec = _single_record(args.source)
    print(write_recording(rec, args.out))
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    import json

    from detak.data.paths import data_root

    root = data_root()
    summary: dict = {"DETAK_DATA": str(root)}
    try:
        from detak.data.ptbxl import describe, open_ptbxl

        summary["ptbxl"] = describe(open_ptbxl())
    except (OSError, ValueError) as err:
        summary["ptbxl"] = {"error": str(err)}
    try:
        from detak.data.ludb import ludb_ids, ludb_root

        summary["ludb"] = {"root": str(ludb_root()), "records": len(ludb_ids())}
    except (OSError, ValueError) as err:
        summary["ludb"] = {"error": str(err)}
    try:
        from detak.data.heart_failure import load_heart_failure

        hf = load_heart_failure()
        summary["heart_failure"] = {"patients": len(hf), "columns": len(hf.columns)}
    except (OSError, ValueError) as err:
        summary["heart_failure"] = {"error": str(err)}
    print(json.dumps(summary, indent=2))
    return 0


def _command_name(args: argparse.Namespace) -> str:
    words = [args.command]
    for attr in ("models_command", "bundle_command", "store_command", "sync_command",
                 "server_command"):
        if isinstance(getattr(args, attr, None), str):
            words.append(getattr(args, attr))
    return " ".join(words)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``detak`` console script; returns the exit status.

    Named errors (`detak.errors`) become one line ``detak COMMAND: error: MESSAGE`` on stderr;
    ``--debug`` lets them raise with their traceback.

    >>> main(["convert", "nosuch://1", "out.csv"])
    1
    """
    from detak.errors import run_command
    from detak.sync.cli import protect_enroll_code

    argv = protect_enroll_code(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(argv)
    return run_command(_command_name(args), lambda: args.func(args), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())

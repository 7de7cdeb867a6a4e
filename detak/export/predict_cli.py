"""The inference sub-commands of ``detak`` (issue 4): ``evaluate``, ``predict`` and
``models list|info``. Command names and flags are a contract other tools call. They run a
trained model through the runtime choice and bundle resolution of `detak.export.predict`, so
they live in `detak.export`, above `detak.models`.

Torch is imported only by the commands that run a network on it; ``detak models list`` reads
files.

>>> import argparse
>>> p = argparse.ArgumentParser(); sub = p.add_subparsers(dest="command")
>>> add_inference_commands(sub)
>>> a = p.parse_args(["predict", "ptbxl://fold9", "--model", "edge", "--out", "p.csv"])
>>> a.sources, a.runtime, a.precision
(['ptbxl://fold9'], 'auto', None)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from detak.errors import EXIT_RULE_SHORT
from detak.export.catalog import model_info

__all__ = ["add_inference_commands", "evaluate_sources", "model_info"]


_RUNTIME_HELP = ("auto (default): the best this install can run for the model — the int8 ONNX "
                 "model (with the fused Grad-CAM) where one is exported, else int8 TFLite, "
                 "else the torch weights (host: pip install \"detak[host]\"); or torch, onnx, "
                 "tflite explicitly. The one that ran is printed on stderr")
_PRECISION_HELP = ("fp32 or int8 (default: int8 for auto, which falls back to torch fp32; "
                   "fp32 for an explicit runtime)")


def add_inference_commands(sub: Any) -> None:
    """Add ``evaluate``, ``predict`` and ``models`` to argparse sub-parsers."""
    p = sub.add_parser(
        "evaluate", help="metrics of a trained CNN on PTB-XL (S1 Table 6 and benchmark)",
        description="Predict SOURCE (PTB-XL: ptbxl://foldK or ptbxl://ID) with MODEL and print "
        "S1's Table 6 metrics (accuracy, precision, recall, F1 over all label slots at 0.5; "
        "ROC AUC) and the benchmark's (macro AUC with a 95 %% bootstrap interval, per-class "
        "AUC, MI AUC, Fmax) for it, beside the training metrics recorded in the model card. "
        "Scored on the raw (uncalibrated) model outputs, as the card's metrics.")
    p.add_argument("--model", required=True, metavar="NAME|PATH")
    p.add_argument("--source", nargs="+", default=["ptbxl://fold9"], metavar="SOURCE")
    p.add_argument("--runtime", choices=["auto", "torch", "onnx", "tflite"], default="auto",
                   help=_RUNTIME_HELP + " (torch: the figures of the model card)")
    p.add_argument("--precision", choices=["fp32", "int8"], default=None, help=_PRECISION_HELP)
    p.add_argument("--recompute-train", action="store_true",
                   help="predict the training folds again instead of reading the card")
    p.add_argument("--boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--json", action="store_true", help="print JSON (default: a short table)")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser(
        "predict", help="superclass probabilities (NORM, MI, STTC, CD, HYP) for ECG records",
        description="SOURCE: a WFDB record, a folder of WFDB records, ptbxl://ID or "
        "ptbxl://foldK. Records at any rate >= 100 Hz are resampled to 100 Hz; missing leads "
        "are an error naming the record. Writes a CSV with the header record,NORM,MI,STTC,CD,"
        "HYP, one row per record (record = ecg_id for PTB-XL, the record name otherwise). "
        "The probabilities are calibrated when the model card holds a calibration (the "
        "shipped models: fitted on PTB-XL fold 9; stderr says which). "
        "A record with flagged gaps (detak record) runs on its longest gap-free stretch if it "
        "holds 10 s, else on the 10-s window with the least gap filled by linear interpolation "
        "(a warning on stderr); more than 0.5 s to fill is refused. " + EXIT_RULE_SHORT)
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument("--model", required=True, metavar="NAME|PATH")
    p.add_argument("--runtime", choices=["auto", "torch", "onnx", "tflite"], default="auto",
                   help=_RUNTIME_HELP)
    p.add_argument("--precision", choices=["fp32", "int8"], default=None, help=_PRECISION_HELP)
    p.add_argument("--out", required=True, metavar="FILE.csv")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--jobs", "-j", type=int, default=0,
                   help="worker processes and threads (default: all cores)")
    p.add_argument("--cam", metavar="MAPS.npz", default=None,
                   help="also write the fused Grad-CAM maps of every 10-s window (MI class and "
                        "top class, 1000 samples each, with the record names) from an exported "
                        "model that has them (--runtime onnx|tflite; e.g. edge)")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("models", help="list the shipped CNN models, or describe one",
                       description="`models list` lists the shipped models and the installed "
                       "bundles (name, runtime, precision, path, bytes, sha256, source, "
                       "active, runnable_here: whether this install has the runtime); "
                       "`models info NAME` prints parameters, multiply-accumulates "
                       "and input shape.")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    q = msub.add_parser("list", help="list the shipped models and installed bundles")
    q.add_argument("--json", action="store_true", help="print JSON (default: a table)")
    q.set_defaults(func=_cmd_models_list)
    q = msub.add_parser("info", help="parameters, MACs and input shape of a model")
    q.add_argument("name", metavar="NAME|PATH")
    q.add_argument("--json", action="store_true", help="print JSON (default: text)")
    q.set_defaults(func=_cmd_models_info)


def _print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=1, default=str)
    sys.stdout.write("\n")


def evaluate_sources(model: str, sources: list[str], *, n_boot: int = 1000,
                     recompute_train: bool = False, runtime: str = "torch",
                     precision: str | None = "fp32") -> dict[str, Any]:
    """The ``evaluate`` result: metrics of ``model`` on PTB-XL ``sources`` and on training.

    >>> evaluate_sources("edge", ["ludb://1"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: evaluate needs labelled PTB-XL sources (ptbxl://foldK, ptbxl://ID); got 'ludb://1'
    """
    for s in sources:
        if not s.strip().lower().startswith("ptbxl://"):
            raise ValueError("evaluate needs labelled PTB-XL sources (ptbxl://foldK, "
                             f"ptbxl://ID); got {s!r}")
    from detak.data.sources import _ptbxl
    from detak.export.predict import load_model, predict_sources
    from detak.models.cnn_data import CLASSES, TRAIN_FOLDS
    from detak.models.cnn_metrics import MetricsError, benchmark_metrics

    # the raw sigmoid outputs, as the card's metrics and S1's Table 6 (AUC is the same either
    # way; the 0.5-threshold figures are not)
    loaded = load_model(model, runtime=runtime, precision=precision, calibrated=False)
    table = predict_sources(sources, loaded)
    ids = table["record"].astype(int).to_numpy()
    ptb = _ptbxl()
    y = ptb.labels(ids, allow_unlabelled=True)
    keep = y.sum(axis=1) > 0
    probs = table.loc[keep, list(CLASSES)].to_numpy()
    try:
        metrics = benchmark_metrics(y[keep], probs, n_boot=n_boot)
    except MetricsError as err:  # e.g. one record: no AUC; name the sources
        raise MetricsError(f"{' '.join(sources)}: {err}") from err
    result: dict[str, Any] = {
        "model": loaded.name, "folder": str(loaded.folder), "sources": sources,
        "runtime": loaded.runtime, "precision": loaded.precision,
        "probabilities": loaded.probabilities, "records": int(len(ids)),
        "unlabelled_left_out": int((~keep).sum()),
        "eval": metrics,
    }
    if recompute_train:
        t = predict_sources([f"ptbxl://fold{k}" for k in TRAIN_FOLDS], loaded)
        tid = t["record"].astype(int).to_numpy()
        ty = ptb.labels(tid, allow_unlabelled=True)
        tk = ty.sum(axis=1) > 0
        result["train"] = benchmark_metrics(ty[tk], t.loc[tk, list(CLASSES)].to_numpy(),
                                            n_boot=200)
        result["train_source"] = "recomputed (folds 1-8)"
    else:
        result["train"] = loaded.card.get("metrics", {}).get("train")
        result["train_source"] = "model card (computed by the training script)"
    result["card_fold9_macro_auc"] = (loaded.card.get("metrics", {}).get("fold9") or {}).get(
        "macro_auc")
    return result


def _fmt_metrics(title: str, m: dict[str, Any] | None) -> list[str]:
    if not m or "macro_auc" not in m:
        return [f"{title}: (none)"]
    t6 = m["table6"]
    lo, hi = m["macro_auc_ci"]
    pcs = " ".join(f"{k} {v:.3f}" for k, v in m["per_class_auc"].items())
    return [f"{title} (n={m['n']}): macro AUC {m['macro_auc']:.4f} [{lo:.4f}, {hi:.4f}], "
            f"MI AUC {m['mi_auc']:.4f}, Fmax {m['fmax']:.4f}",
            f"  per class: {pcs}",
            f"  S1 Table 6 @0.5: accuracy {t6['accuracy']:.4f} precision {t6['precision']:.4f} "
            f"recall {t6['recall']:.4f} F1 {t6['f1']:.4f} ROC AUC {t6['roc_auc']:.4f}"]


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from detak.data.sources import SourceError
    from detak.errors import report
    from detak.export.predict import ModelNotFoundError, RuntimeNotAvailableError
    from detak.models.cnn_metrics import MetricsError

    try:
        result = evaluate_sources(args.model, args.source, n_boot=args.boot,
                                  recompute_train=args.recompute_train, runtime=args.runtime,
                                  precision=args.precision)
    except (ModelNotFoundError, RuntimeNotAvailableError) as err:   # usage: 2
        return report("evaluate", err)
    except (MetricsError, SourceError, OSError, ValueError) as err:  # not scored: 1
        return report("evaluate", err, " ".join(args.source))
    if args.json:
        _print_json(result)
        return 0
    lines = [f"model {result['model']} ({result['folder']}), {result['runtime']} "
             f"{result['precision']}"]
    lines += _fmt_metrics(" ".join(args.source), result["eval"])
    lines += _fmt_metrics(f"train [{result['train_source']}]", result["train"])
    print("\n".join(lines))
    return 0


def ran_with(loaded: Any) -> str:
    """Which runtime ran, for the user: ``edge with runtime onnx int8 (edge.int8.onnx)``."""
    from detak.models.trained import torch_weights_file

    path = getattr(loaded.module, "path", None)
    if path is None and loaded.runtime == "torch":
        path = torch_weights_file(loaded.folder, loaded.card)
    where = f" ({Path(path).name})" if path is not None else ""
    return f"{loaded.name} with runtime {loaded.runtime} {loaded.precision}{where}"


def _cmd_predict(args: argparse.Namespace) -> int:
    import os

    from detak.data.numbers import NumberFormatError
    from detak.data.recording import MissingLeadError
    from detak.data.sources import SourceError
    from detak.data.validation import RecordingError
    from detak.errors import report
    from detak.export.predict import (
        CamCollector,
        ModelNotFoundError,
        RuntimeNotAvailableError,
        load_model,
        predict_sources,
        write_predictions,
    )
    from detak.models.cnn_data import InputError

    jobs = int(args.jobs or os.cpu_count() or 1)
    try:                                 # the model first: a usage error (exit 2)
        loaded = load_model(args.model, args.runtime, args.precision, args.batch_size,
                            threads=jobs)
    except (ModelNotFoundError, RuntimeNotAvailableError) as err:
        return report("predict", err)
    cams = CamCollector() if args.cam else None
    failed: list[tuple[str, BaseException]] = []
    try:
        table = predict_sources(args.sources, loaded, batch_size=args.batch_size, jobs=jobs,
                                cams=cams, failed=failed)
    except RuntimeNotAvailableError as err:       # --cam on a model without maps (exit 2)
        return report("predict", err)
    except (MissingLeadError, InputError, SourceError, RecordingError, NumberFormatError,
            OSError) as err:                      # a source rejected (exit 1)
        return report("predict", err)
    for name, err in failed:                      # each named; the others were predicted
        report("predict", err, name)
    if not len(table):
        return 1
    path = write_predictions(table, args.out)
    print(f"{len(table)} records → {path} ({ran_with(loaded)}; probabilities "
          f"{loaded.probabilities})", file=sys.stderr)
    if cams is not None:
        maps = cams.save(args.cam)
        print(f"{cams.n_windows} Grad-CAM windows → {maps}", file=sys.stderr)
    return 1 if failed else 0


def _cmd_models_list(args: argparse.Namespace) -> int:
    from detak.export.catalog import list_models

    models = list_models()
    if args.json:
        _print_json(models)
        return 0
    if not models:
        print("no shipped models (train with `detak train --model NAME`)")
    else:
        print(f"  {'name':<14} {'runtime':<7} {'prec':<5} {'here':<4} {'location':<12} "
              f"{'bytes':>10}    {'sha256':<16}  path")
    for m in models:
        used = "*" if m["active"] else " "
        here = "yes" if m["runnable_here"] else "no"
        size = f"{m['bytes']:>10} B" if m["bytes"] is not None else f"{'-':>12}"
        print(f"{used} {m['name']:<14} {m['runtime']:<7} {m['precision']:<5} {here:<4} "
              f"{m['location']:<12} {size}  {(m['sha256'] or '-')[:16]:<16}  "
              f"{m['path'] or 'torch checkpoint: host only, not in the wheel ($DETAK_WEIGHTS)'}")
    if models:
        print("* = what `--model NAME` loads (an installed bundle before the shipped model); "
              "here = this install has the runtime (torch: pip install \"detak[host]\"); "
              "location: package, host-weights (torch checkpoints, outside the wheel), "
              "bundle, folder")
    return 0


def _cmd_models_info(args: argparse.Namespace) -> int:
    from detak.errors import report
    from detak.export.available import HostExtraMissingError
    from detak.export.predict import ModelNotFoundError

    try:
        info = model_info(args.name)
    except (HostExtraMissingError, ModelNotFoundError) as err:   # usage: 2
        return report("models info", err)
    if args.json:
        _print_json(info)
        return 0
    print(f"{info['name']} ({info['class']}): {info['parameters']:,} parameters, "
          f"{info['macs']:,} multiply-accumulates per record, input {tuple(info['input_shape'])}"
          f" (12 leads × 10 s at 100 Hz), output {info['output']}")
    for f in info.get("files", []):
        print(f"  {f['runtime']:<7} {f['precision']:<5} {f['location']:<13} "
              f"{f['path'] or 'torch checkpoint: host only, not in the wheel ($DETAK_WEIGHTS)'}")
    return 0

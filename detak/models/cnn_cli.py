"""The CNN sub-commands of ``detak`` (issue 4): ``train``, ``evaluate``, ``predict`` and
``models info|list``. Command names and flags are a contract other tools call.

Torch is imported only by the commands that run a network; ``detak models list`` reads files.

>>> import argparse
>>> p = argparse.ArgumentParser(); sub = p.add_subparsers(dest="command")
>>> add_cnn_commands(sub)
>>> a = p.parse_args(["predict", "ptbxl://fold9", "--model", "edge", "--out", "p.csv"])
>>> a.sources, a.runtime, a.precision
(['ptbxl://fold9'], 'torch', 'fp32')
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

MODEL_CHOICES = ("alexnet1d", "resnet1d", "inceptiontime", "edge")


def add_cnn_commands(sub: Any) -> None:
    """Add ``train``, ``evaluate``, ``predict`` and ``models`` to argparse sub-parsers, and
    ``export`` and ``bundle`` (`detak.export.cli.add_export_commands`)."""
    p = sub.add_parser(
        "train", help="train a 12-lead CNN on PTB-XL (folds 1-8 train, fold 9 validation)",
        description="Train MODEL on PTB-XL at 100 Hz with S1's preprocessing. Recipe s1 "
        "(default for alexnet1d, resnet1d, inceptiontime): AdamW lr 1e-3, weight decay 0.01, "
        "batch 32, <= 50 epochs, early stop after 5 epochs without a lower validation loss. "
        "Recipe edge (default for edge): one-cycle lr 3e-3, batch 64, 30 epochs, random crop "
        "and amplitude augmentation. A checkpoint is written every epoch; --resume continues. "
        "OUT gets MODEL.pt, standardizer.json and card.json.")
    p.add_argument("--model", required=True, choices=MODEL_CHOICES)
    p.add_argument("--recipe", choices=["s1", "edge"], default=None,
                   help="training recipe (default: edge for the edge model, s1 otherwise)")
    p.add_argument("--epochs", type=int, default=None, help="maximum epochs (recipe default)")
    p.add_argument("--batch-size", type=int, default=None, help="batch size (recipe default)")
    p.add_argument("--lr", type=float, default=None, help="(peak) learning rate")
    p.add_argument("--weight-decay", type=float, default=None, help="AdamW weight decay")
    p.add_argument("--patience", type=int, default=None,
                   help="early-stopping patience in epochs (0: off; recipe default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--out", default=None,
                   help="output folder (default: cache_dir()/cnn/MODEL, found by NAME later)")
    p.add_argument("--max-records", type=int, default=None,
                   help="smoke run: only the first N training records")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    p.add_argument("--compute", choices=("fp32", "bf16"), default="fp32",
                   help="precision of the training forward passes: bf16 = torch.autocast "
                        "bfloat16 (weights, optimizer and validation stay fp32; several times "
                        "faster on CPUs with AVX512-BF16/AMX)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "evaluate", help="metrics of a trained CNN on PTB-XL (S1 Table 6 and benchmark)",
        description="Predict SOURCE (PTB-XL: ptbxl://foldK or ptbxl://ID) with MODEL and print "
        "S1's Table 6 metrics (accuracy, precision, recall, F1 over all label slots at 0.5; "
        "ROC AUC) and the benchmark's (macro AUC with a 95 %% bootstrap interval, per-class "
        "AUC, MI AUC, Fmax) for it, beside the training metrics recorded in the model card.")
    p.add_argument("--model", required=True, metavar="NAME|PATH")
    p.add_argument("--source", nargs="+", default=["ptbxl://fold9"], metavar="SOURCE")
    p.add_argument("--runtime", choices=["torch", "onnx", "tflite"], default="torch",
                   help="run the torch weights or an exported model (detak export)")
    p.add_argument("--precision", choices=["fp32", "int8"], default="fp32")
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
        "A record with flagged gaps (detak record) runs on its longest gap-free stretch if it "
        "holds 10 s, else on the 10-s window with the least gap filled by linear interpolation "
        "(a warning on stderr); more than 0.5 s to fill is refused.")
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument("--model", required=True, metavar="NAME|PATH")
    p.add_argument("--runtime", choices=["torch", "onnx", "tflite"], default="torch")
    p.add_argument("--precision", choices=["fp32", "int8"], default="fp32")
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
                       "active); `models info NAME` prints parameters, multiply-accumulates "
                       "and input shape.")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    q = msub.add_parser("list", help="list the shipped models and installed bundles")
    q.add_argument("--json", action="store_true", help="print JSON (default: a table)")
    q.set_defaults(func=_cmd_models_list)
    q = msub.add_parser("info", help="parameters, MACs and input shape of a model")
    q.add_argument("name", metavar="NAME|PATH")
    q.add_argument("--json", action="store_true", help="print JSON (default: text)")
    q.set_defaults(func=_cmd_models_info)

    from detak.export.cli import add_export_commands  # export and bundle (issue 5)

    add_export_commands(sub)


def _print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=1, default=str)
    sys.stdout.write("\n")


def _cmd_train(args: argparse.Namespace) -> int:
    from detak.models.predict import default_models_dir
    from detak.models.training import VAL_FOLD, train_cnn

    out = Path(args.out) if args.out else default_models_dir() / args.model
    card = train_cnn(args.model, out_dir=out, epochs=args.epochs, batch_size=args.batch_size,
                     lr=args.lr, weight_decay=args.weight_decay, patience=args.patience,
                     seed=args.seed, resume=args.resume, recipe=args.recipe,
                     max_records=args.max_records, threads=args.threads,
                     compute=args.compute)
    m = card["metrics"].get(f"fold{VAL_FOLD}", {})
    _print_json({"model": args.model, "out": str(out), "epochs_run":
                 card["training"]["epochs_run"], "best_epoch": card["training"]["best_epoch"],
                 f"fold{VAL_FOLD}_macro_auc": m.get("macro_auc"),
                 f"fold{VAL_FOLD}_mi_auc": m.get("mi_auc")})
    return 0


def evaluate_sources(model: str, sources: list[str], *, n_boot: int = 1000,
                     recompute_train: bool = False, runtime: str = "torch",
                     precision: str = "fp32") -> dict[str, Any]:
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
    from detak.models.cnn_data import CLASSES, TRAIN_FOLDS
    from detak.models.cnn_metrics import MetricsError, benchmark_metrics
    from detak.models.predict import load_model, predict_sources

    loaded = load_model(model, runtime=runtime, precision=precision)
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
        "runtime": runtime, "precision": precision,
        "records": int(len(ids)), "unlabelled_left_out": int((~keep).sum()),
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
    result = evaluate_sources(args.model, args.source, n_boot=args.boot,
                              recompute_train=args.recompute_train, runtime=args.runtime,
                              precision=args.precision)
    if args.json:
        _print_json(result)
        return 0
    lines = [f"model {result['model']} ({result['folder']}), {result['runtime']} "
             f"{result['precision']}"]
    lines += _fmt_metrics(" ".join(args.source), result["eval"])
    lines += _fmt_metrics(f"train [{result['train_source']}]", result["train"])
    print("\n".join(lines))
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from detak.data.recording import MissingLeadError
    from detak.data.sources import SourceError
    from detak.models.cnn_data import InputError
    from detak.models.predict import (
        CamCollector,
        ModelNotFoundError,
        RuntimeNotAvailableError,
        predict_sources,
        write_predictions,
    )

    cams = CamCollector() if args.cam else None
    try:
        table = predict_sources(args.sources, args.model, runtime=args.runtime,
                                precision=args.precision, batch_size=args.batch_size,
                                jobs=args.jobs or None, cams=cams)
    except (MissingLeadError, InputError, SourceError, ModelNotFoundError,
            RuntimeNotAvailableError, OSError) as err:
        from detak.errors import report  # exit 2 for a model/runtime, 1 for a source

        return report("predict", err)
    path = write_predictions(table, args.out)
    print(f"{len(table)} records → {path}", file=sys.stderr)
    if cams is not None:
        maps = cams.save(args.cam)
        print(f"{cams.n_windows} Grad-CAM windows → {maps}", file=sys.stderr)
    return 0


def _cmd_models_list(args: argparse.Namespace) -> int:
    from detak.models.shipped import list_models

    models = list_models()
    if args.json:
        _print_json(models)
        return 0
    if not models:
        print("no shipped models (train with `detak train --model NAME`)")
    for m in models:
        used = "*" if m["active"] else " "
        print(f"{used} {m['name']:<14} {m['runtime']:<7} {m['precision']:<5} {m['source']:<7} "
              f"{m['bytes']:>10} B  {m['sha256'][:16]}  {m['path']}")
    if models:
        print("* = what `--model NAME` loads (an installed bundle before the shipped model)")
    return 0


def model_info(name: str) -> dict[str, Any]:
    """Parameters, MACs and input shape of an architecture NAME or a trained model folder.

    >>> info = model_info("edge")
    >>> info["input_shape"], info["parameters"] <= 150_000, info["macs"] <= 30_000_000
    ([1, 12, 1000], True, True)
    """
    from detak.models.cnn.registry import (
        INPUT_SHAPE,
        MODEL_NAMES,
        build_model,
        count_macs,
        count_parameters,
    )

    card = None
    arch = name
    if name not in MODEL_NAMES:
        from detak.models.model_card import read_card
        from detak.models.predict import resolve_model_dir
        from detak.models.shipped import CARD_FILE

        folder = resolve_model_dir(name)
        card = read_card(folder / CARD_FILE)
        arch = card["architecture"]["name"]
    model = build_model(arch)
    out: dict[str, Any] = {"name": name, "architecture": arch, "class": type(model).__name__,
                           "input_shape": [1, *INPUT_SHAPE], "output": "5 logits (NORM, MI, "
                           "STTC, CD, HYP)", "parameters": count_parameters(model),
                           "macs": count_macs(model)}
    if card is not None:
        out["card"] = {k: card.get(k) for k in ("weights", "command")}
        out["card"]["fold9_macro_auc"] = (card.get("metrics", {}).get("fold9") or {}).get(
            "macro_auc")
    return out


def _cmd_models_info(args: argparse.Namespace) -> int:
    info = model_info(args.name)
    if args.json:
        _print_json(info)
        return 0
    print(f"{info['name']} ({info['class']}): {info['parameters']:,} parameters, "
          f"{info['macs']:,} multiply-accumulates per record, input {tuple(info['input_shape'])}"
          f" (12 leads × 10 s at 100 Hz), output {info['output']}")
    return 0

"""The CNN training sub-command of ``detak`` (issue 4): ``train``. Command names and flags are
a contract other tools call. The commands that run a trained model (``evaluate``, ``predict``,
``models list|info``) are inference, above models: `detak.export.predict_cli`.

Torch is imported only when training runs.

>>> import argparse
>>> p = argparse.ArgumentParser(); sub = p.add_subparsers(dest="command")
>>> add_cnn_commands(sub)
>>> a = p.parse_args(["train", "--model", "edge", "--epochs", "2"])
>>> a.model, a.epochs, a.compute, a.labels, a.lead
('edge', 2, 'fp32', 'superclass', None)
>>> a = p.parse_args(["train", "--model", "edge", "--teacher", "resnet1d,inceptiontime",
...                   "--augment", "field"])
>>> a.teacher, a.distil_alpha, a.temperature, a.augment
('resnet1d,inceptiontime', 0.5, 2.0, 'field')
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

MODEL_CHOICES = ("alexnet1d", "resnet1d", "inceptiontime", "edge")


def add_cnn_commands(sub: Any) -> None:
    """Add ``train`` to argparse sub-parsers."""
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
    p.add_argument("--labels", default="superclass", metavar="SET",
                   help="label set: superclass (default; NORM MI STTC CD HYP, the shipped "
                        "models) or rhythm (SR AFIB AFLT STACH SBRAD SARRH SVTAC BIGU PACE "
                        "1AVB from PTB-XL's rhythm statements, any likelihood; records with "
                        "none dropped)")
    p.add_argument("--lead", default=None, metavar="NAME[,NAME]",
                   help="train on these leads only (e.g. II): the input keeps 12 channels and "
                        "the other leads are zero")
    p.add_argument("--compute", choices=("fp32", "bf16"), default="fp32",
                   help="precision of the training forward passes: bf16 = torch.autocast "
                        "bfloat16 (weights, optimizer and validation stay fp32; several times "
                        "faster on CPUs with AVX512-BF16/AMX)")
    d = p.add_argument_group(
        "distillation and field augmentation (issue 18)",
        "--teacher resnet1d,inceptiontime: soft targets = the mean of the teachers' tempered "
        "sigmoids on each full 10-s training record (computed once, cached by the teachers' "
        "weights hash in $DETAK_TEACHER_CACHE or the cache dir); loss per class = "
        "(1-alpha)*BCE(label) + alpha*T^2*BCE(sigmoid(student/T), soft target). "
        "--augment field adds the kiosk's conditions (noise bursts, baseline wander, amplitude "
        "scale, a lead zero-filled; random shifts are the crop).")
    d.add_argument("--teacher", default=None, metavar="NAMES",
                   help="comma-separated teacher models (shipped names or model folders)")
    d.add_argument("--distil-alpha", type=float, default=0.5,
                   help="weight of the soft (teacher) term, 0..1 (default 0.5)")
    d.add_argument("--temperature", type=float, default=2.0,
                   help="distillation temperature T (default 2)")
    d.add_argument("--augment", choices=("none", "field"), default="none",
                   help="training augmentation beyond the recipe's crop and scale")
    f = p.add_argument_group(
        "fine-tuning on the clinic's confirmed screenings",
        "--finetune CHECKPOINT --extra DIR: start from CHECKPOINT (a model folder or the shipped "
        "'edge') and train on PTB-XL folds 1-8 plus the screenings of DIR (detak server "
        "export-labels) whose residents are not held out; evaluated on fold 9 and on the "
        "held-out residents' screenings; exit 3 when the fold-9 macro AUC drops by more than "
        "0.003. Defaults here: 2 epochs, lr 3e-4 constant, batch 64.")
    f.add_argument("--finetune", default=None, metavar="CHECKPOINT",
                   help="the model to start from (folder with card.json, or a shipped name)")
    f.add_argument("--extra", default=None, metavar="DIR",
                   help="labelled screenings (labels.csv + records/)")
    f.add_argument("--extra-weight", type=int, default=10,
                   help="times each extra screening is seen per epoch (default 10)")
    f.add_argument("--holdout", type=float, default=0.3,
                   help="share of residents held out for evaluation (default 0.3)")
    p.set_defaults(func=_cmd_train)


def _print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=1, default=str)
    sys.stdout.write("\n")


def _cmd_finetune(args: argparse.Namespace, out: Path) -> int:
    from detak.errors import UsageError
    from detak.models.extra_labels import ExtraLabelsError
    from detak.models.finetune import FinetuneError, finetune_cnn

    if not args.extra:
        raise UsageError("--finetune needs --extra DIR (detak server export-labels)")
    try:
        card = finetune_cnn(args.model, args.finetune, args.extra, out_dir=out,
                            epochs=args.epochs or 2, lr=args.lr or 3e-4,
                            batch_size=args.batch_size or 64, extra_weight=args.extra_weight,
                            holdout=args.holdout, seed=args.seed,
                            max_records=args.max_records, threads=args.threads,
                            weight_decay=args.weight_decay if args.weight_decay is not None
                            else 0.01)
    except (FinetuneError, ExtraLabelsError) as err:
        raise UsageError(str(err)) from None
    ft = card["finetune"]
    _print_json({"model": args.model, "out": str(out), "best_epoch": ft["best_epoch"],
                 "fold9_macro_auc_before": ft["fold9_before"].get("macro_auc"),
                 "fold9_macro_auc_after": ft["fold9_after"].get("macro_auc"),
                 "fold9_macro_auc_delta": ft["fold9_macro_auc_delta"],
                 "held_out_records": ft["split"]["held_out_records"],
                 "held_out_macro_auc_before": ft["held_out_before"].get("macro_auc"),
                 "held_out_macro_auc_after": ft["held_out_after"].get("macro_auc"),
                 "accepted": ft["accepted"]})
    return 0 if ft["accepted"] else 3


def _cmd_train(args: argparse.Namespace) -> int:
    from detak.models.trained import default_models_dir
    from detak.models.training import VAL_FOLD, train_cnn

    out = Path(args.out) if args.out else default_models_dir() / args.model
    if args.finetune:
        return _cmd_finetune(args, out)
    if args.extra:
        from detak.errors import UsageError

        raise UsageError("--extra DIR is for fine-tuning: give --finetune CHECKPOINT too")
    card = train_cnn(args.model, out_dir=out, epochs=args.epochs, batch_size=args.batch_size,
                     lr=args.lr, weight_decay=args.weight_decay, patience=args.patience,
                     seed=args.seed, resume=args.resume, recipe=args.recipe,
                     max_records=args.max_records, threads=args.threads,
                     compute=args.compute,
                     teachers=[t for t in (args.teacher or "").split(",") if t.strip()],
                     distil_alpha=args.distil_alpha, temperature=args.temperature,
                     augment=args.augment, labels=args.labels,
                     leads=[x.strip() for x in args.lead.split(",") if x.strip()]
                     if args.lead else None)
    m = card["metrics"].get(f"fold{VAL_FOLD}", {})
    _print_json({"model": args.model, "out": str(out), "epochs_run":
                 card["training"]["epochs_run"], "best_epoch": card["training"]["best_epoch"],
                 f"fold{VAL_FOLD}_macro_auc": m.get("macro_auc"),
                 f"fold{VAL_FOLD}_mi_auc": m.get("mi_auc")})
    return 0

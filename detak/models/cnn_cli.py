"""The CNN training sub-command of ``detak`` (issue 4): ``train``. Command names and flags are
a contract other tools call. The commands that run a trained model (``evaluate``, ``predict``,
``models list|info``) are inference, above models: `detak.export.predict_cli`.

Torch is imported only when training runs.

>>> import argparse
>>> p = argparse.ArgumentParser(); sub = p.add_subparsers(dest="command")
>>> add_cnn_commands(sub)
>>> a = p.parse_args(["train", "--model", "edge", "--epochs", "2"])
>>> a.model, a.epochs, a.compute
('edge', 2, 'fp32')
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
    p.add_argument("--compute", choices=("fp32", "bf16"), default="fp32",
                   help="precision of the training forward passes: bf16 = torch.autocast "
                        "bfloat16 (weights, optimizer and validation stay fp32; several times "
                        "faster on CPUs with AVX512-BF16/AMX)")
    p.set_defaults(func=_cmd_train)


def _print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=1, default=str)
    sys.stdout.write("\n")


def _cmd_train(args: argparse.Namespace) -> int:
    from detak.models.trained import default_models_dir
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

"""Fine-tuning a trained CNN on PTB-XL plus the clinic's confirmed screenings
(``detak train --model edge --finetune CHECKPOINT --extra DIR``; issue 16).

Start: the weights and the standardizer of ``CHECKPOINT`` (a model folder with ``card.json``,
or a model name: the shipped ``edge``, whose torch weights come from the host weights folder).
The standardizer is kept as it is (the kiosk's input scaling does not move). Data: PTB-XL strat
folds 1–8 (as ``detak train``) plus the labelled screenings of ``DIR``
(`detak.models.extra_labels`, written by ``detak server export-labels``) whose residents are
not held out; the confirmed screenings of about ``holdout`` of the residents (whole residents,
`detak.models.extra_labels.split_groups`) are never trained on. Each training extra record is
repeated ``extra_weight`` times per epoch (a few hundred screenings beside 17 084 PTB-XL
records would otherwise not move the weights). Training: AdamW at a constant, small learning
rate with the edge recipe's augmentation (random 9-s crop, amplitude ×U(0.9, 1.1)); after each
epoch the fold-9 validation loss; the weights with the lowest one are kept — the checkpoint's
own (epoch 0) included, so fine-tuning never returns something worse on fold 9 by that measure.

Evaluation, before and after, through the saved file as ``detak train`` does: fold 9 (PTB-XL's
validation fold, as before; ``exclude_val_ids`` leaves out PTB-XL records that were also made
into training screenings, as the benchmark's are) and the held-out confirmed screenings. The
result is *accepted* when the fold-9 macro AUC drops by at most ``max_auc_drop`` (0.003);
``detak train`` exits 3 otherwise (the files are written, marked rejected in the card).

``OUT`` gets ``NAME.pt``, ``standardizer.json`` and ``card.json`` in ``detak train``'s layout,
so ``detak export onnx --source OUT`` and ``detak bundle create`` take it as they take a trained
model. The card's ``finetune`` section records the checkpoint, the extra data, the split, the
epochs and both evaluations; its ``operating_points`` are dropped (recompute them with
``tools/mi_operating_point.py`` before shipping).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import json
import shutil
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from detak.models.cnn_data import CLASSES, TRAIN_FOLDS, VAL_FOLD, split_arrays
from detak.models.extra_labels import load_extra, split_groups
from detak.models.shipped import CARD_FILE, STANDARDIZER_FILE, shipped_model_dir

MAX_AUC_DROP = 0.003


class FinetuneError(RuntimeError):
    """Fine-tuning cannot start as asked (the message says why)."""


def resolve_checkpoint(checkpoint: str | Path) -> Path:
    """A model folder (with ``card.json``) for a path or a shipped model's name.

    >>> resolve_checkpoint("edge").name
    'edge'
    >>> resolve_checkpoint("no-such-model")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    detak.models.finetune.FinetuneError: --finetune no-such-model: ...
    """
    path = Path(checkpoint)
    if (path / CARD_FILE).is_file():
        return path
    shipped = shipped_model_dir(str(checkpoint)) if "/" not in str(checkpoint) else None
    if shipped is not None:
        return shipped
    raise FinetuneError(f"--finetune {checkpoint}: not a model folder with {CARD_FILE} nor a "
                        "shipped model name")


def _metrics(y: np.ndarray, probs: np.ndarray, n_boot: int) -> dict[str, Any]:
    from detak.models.cnn_metrics import MetricsError, benchmark_metrics, roc_auc

    try:
        return benchmark_metrics(y, probs, n_boot=n_boot, seed=0)
    except MetricsError as err:  # a small held-out set may miss a class: what can be said
        out: dict[str, Any] = {"n": int(len(y)), "macro_auc": None, "note": str(err)}
        if len(y):
            p = np.clip(probs, 1e-7, 1 - 1e-7)
            out["bce"] = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
            out["accuracy_at_0.5"] = float(np.mean((p >= 0.5) == (y > 0)))
            aucs = {}
            for j, c in enumerate(CLASSES):
                try:
                    aucs[c] = roc_auc(y[:, j], probs[:, j])
                except MetricsError:
                    continue
            out["per_class_auc"] = aucs
            out["macro_auc_defined_classes"] = (float(np.mean(list(aucs.values())))
                                                if aucs else None)
        return out


def finetune_cnn(name: str, checkpoint: str | Path, extra: str | Path, *, out_dir: str | Path,
                 epochs: int = 2, lr: float = 3e-4, batch_size: int = 64,
                 extra_weight: int = 10, holdout: float = 0.3, seed: int = 0,
                 max_records: int | None = None, threads: int | None = None,
                 weight_decay: float = 0.01, n_boot: int = 1000,
                 max_auc_drop: float = MAX_AUC_DROP,
                 exclude_val_ids: Iterable[int] = (), progress: bool = True) -> dict[str, Any]:
    """Fine-tune (see the module docstring); returns the new card (``card["finetune"]``
    holds ``accepted``, ``fold9`` before/after and ``held_out`` before/after)."""
    import torch

    from detak.models.cnn.registry import count_parameters
    from detak.models.model_card import library_versions, write_card
    from detak.models.trained import load_torch_module, torch_predictor
    from detak.models.training import (
        RECIPES,
        _atomic_torch_save,
        _augment,
        _batches,
        _evaluate_loss,
        _progress,
        _standardize_inplace,
    )
    from detak.signal.filters import Standardizer

    src = resolve_checkpoint(checkpoint)
    card0 = json.loads((src / CARD_FILE).read_text(encoding="utf-8"))
    if card0["architecture"]["name"] != name:
        raise FinetuneError(f"--finetune {src}: a {card0['architecture']['name']} model, not "
                            f"{name}")
    if epochs < 1 or batch_size < 2 or extra_weight < 1:
        raise FinetuneError("epochs ≥ 1, batch size ≥ 2 and extra weight ≥ 1 are needed")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(int(threads))
    module = load_torch_module(src, card0)
    std = Standardizer.load(src / STANDARDIZER_FILE)

    t_data = time.perf_counter()
    extras = load_extra(extra)
    if len(extras) == 0:
        raise FinetuneError(f"--extra {extra}: no labelled screening with a diagnostic "
                            "superclass (NORM, MI, STTC, CD, HYP)")
    train_idx, held_idx = split_groups(extras.groups, holdout, seed)
    ex_train, ex_held = extras.take(train_idx), extras.take(held_idx)
    ptb_train = split_arrays(TRAIN_FOLDS, max_records=max_records)
    val = split_arrays([VAL_FOLD], max_records=None if max_records is None
                       else max(32, max_records // 4))
    drop = set(int(i) for i in exclude_val_ids)
    keep = np.array([int(i) not in drop for i in val.ids], bool)
    val_x, val_y = std.transform(np.asarray(val.x)[keep]), val.y[keep]
    x_train = np.concatenate([np.asarray(ptb_train.x)]
                             + [ex_train.x] * extra_weight).astype(np.float32)
    y_train = np.concatenate([ptb_train.y] + [ex_train.y] * extra_weight).astype(np.float32)
    _standardize_inplace(x_train, std.mean[0], std.std[0])  # in place: ~0.8 GB at full scale
    held_x = std.transform(ex_held.x).astype(np.float32) if len(ex_held) else ex_held.x
    data_seconds = time.perf_counter() - t_data

    def evaluate(m: Any) -> tuple[dict, dict]:
        predict = torch_predictor(m.eval())
        return (_metrics(val_y, predict(val_x), n_boot),
                _metrics(ex_held.y, predict(held_x), 0 if len(ex_held) < 20 else n_boot)
                if len(ex_held) else {"n": 0})

    before_val, before_held = evaluate(module)
    loss0, _ = _evaluate_loss(module, val_x, val_y, _Identity())

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    recipe = dataclasses.replace(RECIPES["edge"], epochs=epochs, batch_size=batch_size, lr=lr,
                                 weight_decay=weight_decay, schedule="constant")
    optimizer = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    yt = torch.from_numpy(y_train)
    history = [{"epoch": 0, "val_loss": loss0, "val_macro_auc": before_val.get("macro_auc")}]
    best = {"loss": loss0, "epoch": 0, "state": copy.deepcopy(module.state_dict())}
    steps = len(_batches(len(x_train), batch_size, np.arange(len(x_train))))
    bar = _progress(epochs * steps, 0, progress)
    t_train = time.perf_counter()
    try:
        for epoch in range(1, epochs + 1):
            module.train()
            total, count = 0.0, 0
            for idx in _batches(len(x_train), batch_size,
                                torch.randperm(len(x_train), generator=gen)):
                idx_np = np.sort(idx.numpy())
                xb = _augment(torch.from_numpy(x_train[idx_np]), recipe, gen)
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(module(xb).float(), yt[idx_np])
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(idx_np)
                count += len(idx_np)
                bar.update(1)
            val_loss, _ = _evaluate_loss(module, val_x, val_y, _Identity())
            history.append({"epoch": epoch, "train_loss": total / max(count, 1),
                            "val_loss": val_loss})
            if val_loss < best["loss"]:
                best = {"loss": val_loss, "epoch": epoch,
                        "state": copy.deepcopy(module.state_dict())}
            bar.write(f"{name} fine-tune epoch {epoch}/{epochs}: train loss "
                      f"{total / max(count, 1):.4f}, fold-{VAL_FOLD} loss {val_loss:.4f}"
                      + (" (best)" if best["epoch"] == epoch else ""), file=sys.stderr)
    finally:
        bar.close()
    train_seconds = time.perf_counter() - t_train

    module.load_state_dict(best["state"])
    weights_path = out / f"{name}.pt"
    _atomic_torch_save({k: v for k, v in module.state_dict().items()}, weights_path)
    if (src / STANDARDIZER_FILE).resolve() != (out / STANDARDIZER_FILE).resolve():
        shutil.copyfile(src / STANDARDIZER_FILE, out / STANDARDIZER_FILE)
    card = {k: v for k, v in card0.items() if k != "operating_points"}
    card["weights"] = {"file": weights_path.name, "precision": "fp32",
                       "bytes": weights_path.stat().st_size}
    # evaluated through the saved file, as `detak train` does
    after_val, after_held = evaluate(load_torch_module(out, card))
    delta = (None if before_val.get("macro_auc") is None or after_val.get("macro_auc") is None
             else after_val["macro_auc"] - before_val["macro_auc"])
    accepted = delta is not None and delta >= -max_auc_drop
    card["finetune"] = {
        "checkpoint": str(src), "checkpoint_created": card0.get("created"),
        "extra": str(extra), "extra_records": len(extras),
        "split": {"by": "resident (labels.csv group)", "holdout": holdout, "seed": seed,
                  "train_records": len(ex_train), "held_out_records": len(ex_held),
                  "held_out_groups": sorted(set(ex_held.groups))},
        "ptbxl_train_records": len(ptb_train), "ptbxl_train_folds": sorted(set(ptb_train.folds)),
        "extra_weight": extra_weight, "epochs": epochs, "lr": lr, "batch_size": batch_size,
        "weight_decay": weight_decay, "augmentation": "random 9-s crop, amplitude U(0.9, 1.1)",
        "selection": f"lowest fold-{VAL_FOLD} loss, the checkpoint's own weights (epoch 0) "
                     "included", "best_epoch": best["epoch"], "history": history,
        "fold9_excluded_ids": sorted(drop & set(int(i) for i in val.ids)),
        "fold9_before": before_val, "fold9_after": after_val, "fold9_macro_auc_delta": delta,
        "held_out_before": before_held, "held_out_after": after_held,
        "max_auc_drop": max_auc_drop, "accepted": accepted,
        "training_seconds": round(train_seconds, 1), "data_seconds": round(data_seconds, 1),
        "threads": torch.get_num_threads(), "parameters": count_parameters(module),
    }
    card["metrics"] = {f"fold{VAL_FOLD}": after_val}
    card["command"] = (f"detak train --model {name} --finetune {checkpoint} --extra {extra} "
                       f"--epochs {epochs} --lr {lr:g} --batch-size {batch_size} "
                       f"--extra-weight {extra_weight} --holdout {holdout:g} --seed {seed} "
                       f"--out {out}" + (f" --max-records {max_records}" if max_records else "")
                       + (f" --threads {threads}" if threads else ""))
    card["torch"] = torch.__version__
    card["versions"] = library_versions()
    card["created"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    write_card(card, out / CARD_FILE)
    if not accepted:
        print(f"detak train: fold-{VAL_FOLD} macro AUC changed by {delta}: more than the "
              f"allowed -{max_auc_drop}; the model in {out} is marked rejected",
              file=sys.stderr)
    return card


class _Identity:
    """A standardizer that leaves standardised inputs as they are."""

    def transform(self, x: np.ndarray) -> np.ndarray:
        return x

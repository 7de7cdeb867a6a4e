"""Training of the 12-lead CNNs on PTB-XL (``detak train``; issue 4).

Split: strat folds 1–8 train, fold 9 validation (early stopping and checkpoint selection); fold
10 is never read. Inputs: `detak.models.cnn_data` (S1's filters at 100 Hz, z-normalised with the
training folds' mean and SD). Loss: BCE with logits over the 5 superclasses. Seeds fixed
(``seed``): weights, shuffling, dropout and augmentation are reproducible.

Recipes (chosen with ``recipe``; default ``edge`` for the edge model, ``s1`` for the others):

* ``s1`` — S1's: AdamW (lr 1e-3, weight decay 0.01), batch 32, at most 50 epochs, constant
  learning rate, early stopping after 5 epochs without a lower validation loss, the
  lowest-validation-loss weights kept.
* ``edge`` — for the kiosk model: AdamW (weight decay 0.01), batch 64, 30 epochs with a
  one-cycle learning rate (peak 3e-3, 30 % warm-up, cosine annealing), no early stopping (the
  schedule fixes the length), the lowest-validation-loss weights kept; augmentation per
  training record: a random 9-s crop (a random time shift; the GAP head reads any length) and
  an amplitude scale drawn from U(0.9, 1.1). Validation and prediction use the full 10 s.

Compute precision (``compute``): ``fp32`` (default) or ``bf16`` — the training steps' forward
pass runs under ``torch.autocast("cpu", dtype=torch.bfloat16)``, so convolutions and linear
layers compute in bfloat16 while the weights, the AdamW state, the loss, the gradients applied
and every validation pass stay fp32 (mixed precision, as on a GPU). On a CPU with AVX512-BF16 or
AMX it makes S1's larger models trainable on two cores (the fp32/bf16 step-time ratio per
model is what ``make bench-bf16`` prints, docs/results/bf16_speed.md: 2.1× for resnet1d and 1.1×
for inceptiontime on one thread of this AVX512-BF16 machine); on a CPU without bf16 instructions
it is slower, and ``train_cnn`` says so.

Every epoch writes ``checkpoint.pt`` in ``out_dir`` atomically (model, optimizer, scheduler,
RNG states, epoch, history, best weights), so ``resume=True`` continues exactly where a run
stopped — the same weights as an uninterrupted run. At the end ``out_dir`` gets ``NAME.pt``
(the best weights; fp16 for models over 1 M parameters, fp32 otherwise), ``standardizer.json``
and ``card.json`` (architecture, parameters, MACs, data checksums and split, recipe, epochs run,
best epoch, fold-9 and training metrics computed from the saved file, seed, time, and the
command that reproduces it).

    detak train --model edge --out runs/edge          # or: python -m detak.models.training edge
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detak.models.cnn_data import (
    MODEL_FS,
    N_SAMPLES,
    PREPROCESSING,
    TRAIN_FOLDS,
    VAL_FOLD,
    FoldArrays,
    fit_standardizer,
    keep_leads,
    preprocessing_key,
    split_arrays,
)
from detak.models.label_sets import (
    DEFAULT_LABELS,
    FOCUS_INDEX,
    LabelSet,
    UnknownLabelSetError,
    label_set,
)
from detak.models.shipped import CARD_FILE, STANDARDIZER_FILE

CARD_FORMAT = "detak-cnn-card/1"
CHECKPOINT_FILE = "checkpoint.pt"
FP16_ABOVE_PARAMETERS = 1_000_000


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Training hyper-parameters; see the module docstring for the two recipes."""

    name: str
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    patience: int | None  # None: no early stopping
    schedule: str  # "constant" | "onecycle"
    crop: int | None = None  # training crop length (samples), None: full record
    scale: float = 0.0  # amplitude scale drawn from U(1 - scale, 1 + scale)


RECIPES: dict[str, Recipe] = {
    "s1": Recipe("s1", epochs=50, batch_size=32, lr=1e-3, weight_decay=0.01, patience=5,
                 schedule="constant"),
    "edge": Recipe("edge", epochs=30, batch_size=64, lr=3e-3, weight_decay=0.01, patience=None,
                   schedule="onecycle", crop=900, scale=0.1),
}


class TrainingError(RuntimeError):
    """Training cannot start or resume as asked (the message says why)."""


def default_recipe(name: str) -> str:
    """``edge`` for the edge model, ``s1`` for S1's architectures.

    >>> default_recipe("edge"), default_recipe("resnet1d")
    ('edge', 's1')
    """
    return "edge" if name == "edge" else "s1"


def _atomic_torch_save(obj: Any, path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _standardize_inplace(x: np.ndarray, mean: float, std: float) -> None:
    for s in range(0, len(x), 512):
        x[s:s + 512] -= np.float32(mean)
        x[s:s + 512] /= np.float32(std)


def _batches(n: int, batch_size: int, perm: Any) -> list[Any]:
    out = [perm[s:s + batch_size] for s in range(0, n, batch_size)]
    return [b for b in out if len(b) > 1]  # batch-norm needs two records per batch


def _augment(xb: Any, recipe: Recipe, gen: Any) -> Any:
    import torch

    if recipe.crop and recipe.crop < xb.shape[-1]:
        starts = torch.randint(0, xb.shape[-1] - recipe.crop + 1, (xb.shape[0],), generator=gen)
        idx = starts[:, None] + torch.arange(recipe.crop)[None, :]
        xb = torch.gather(xb, 2, idx[:, None, :].expand(-1, xb.shape[1], -1))
    if recipe.scale:
        factor = 1.0 + (torch.rand(xb.shape[0], 1, 1, generator=gen) * 2 - 1) * recipe.scale
        xb = xb * factor
    return xb


def _evaluate_loss(model: Any, x: np.ndarray, y: np.ndarray, std: Any,
                   batch_size: int = 256) -> tuple[float, np.ndarray]:
    """Mean BCE and probabilities on (unstandardised) ``x``."""
    import torch

    model.eval()
    total, probs = 0.0, np.empty(y.shape, dtype=np.float32)
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="sum")
    with torch.inference_mode():
        for s in range(0, len(x), batch_size):
            xb = torch.from_numpy(std.transform(x[s:s + batch_size]))
            yb = torch.from_numpy(y[s:s + batch_size].astype(np.float32))
            logits = model(xb)
            total += float(loss_fn(logits, yb))
            probs[s:s + batch_size] = torch.sigmoid(logits).numpy()
    return total / y.size, probs


COMPUTE = ("fp32", "bf16")


def _config(name: str, recipe: Recipe, seed: int, max_records: int | None,
            compute: str = "fp32", distil: dict[str, Any] | None = None,
            labels: str = DEFAULT_LABELS, leads: Sequence[str] | None = None) -> dict[str, Any]:
    config = {"model": name, "recipe": dataclasses.asdict(recipe), "seed": seed,
              "max_records": max_records, "train_folds": list(TRAIN_FOLDS),
              "val_fold": VAL_FOLD, "preprocessing": preprocessing_key()}
    if compute != "fp32":             # fp32 checkpoints written before the option still resume
        config["compute"] = compute
    if distil:                        # likewise: checkpoints without distillation still resume
        config["distil"] = distil
    if labels != DEFAULT_LABELS:      # likewise for the label set and a lead subset
        config["labels"] = labels
    if leads:
        config["leads"] = list(leads)
    return config


def _bf16_supported() -> bool:
    import torch

    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return bool(check()) if check is not None else False
    except RuntimeError:
        return False


def _command(name: str, recipe: Recipe, seed: int, out_dir: Path, max_records: int | None,
             threads: int | None, compute: str = "fp32",
             distil: dict[str, Any] | None = None, labels: str = DEFAULT_LABELS,
             leads: Sequence[str] | None = None) -> str:
    parts = ["detak", "train", "--model", name, "--recipe", recipe.name,
             "--epochs", str(recipe.epochs), "--batch-size", str(recipe.batch_size),
             "--lr", f"{recipe.lr:g}", "--weight-decay", f"{recipe.weight_decay:g}",
             "--patience", str(recipe.patience if recipe.patience is not None else 0),
             "--seed", str(seed), "--out", str(out_dir)]
    if max_records:
        parts += ["--max-records", str(max_records)]
    if threads:
        parts += ["--threads", str(threads)]
    if compute != "fp32":
        parts += ["--compute", compute]
    if distil and distil.get("teachers"):
        parts += ["--teacher", ",".join(t["name"] for t in distil["teachers"]),
                  "--distil-alpha", f"{distil['alpha']:g}",
                  "--temperature", f"{distil['temperature']:g}"]
    if distil and distil.get("augment", "none") != "none":
        parts += ["--augment", distil["augment"]]
    if labels != DEFAULT_LABELS:
        parts += ["--labels", labels]
    if leads:
        parts += ["--lead", ",".join(leads)]
    return " ".join(parts)


def _data_description(ptb: Any, train: FoldArrays, val: FoldArrays,
                      targets: LabelSet | None = None) -> dict[str, Any]:
    from detak.models.model_card import sha256_file

    targets = targets or label_set(DEFAULT_LABELS)
    classes = targets.classes
    db = ptb.root / "ptbxl_database.csv"
    return {
        "dataset": "PTB-XL v1.0.3, 100 Hz",
        "root": str(ptb.root),
        "database_csv_sha256": sha256_file(db) if db.is_file() else None,
        "labels": targets.description,
        "label_set": targets.name,
        "classes": list(classes),
        **({"label_groups": {c: list(v) for c, v in targets.groups.items()}}
           if targets.groups else {}),
        "split": {"train_folds": sorted(set(train.folds)), "validation_fold": VAL_FOLD,
                  "test_fold": "10 (never read in training)"},
        "records": {"train": len(train), "validation": len(val)},
        "label_counts": {"train": dict(zip(classes, train.y.sum(axis=0).tolist(), strict=True)),
                         "validation": dict(zip(classes, val.y.sum(axis=0).tolist(),
                                                strict=True))},
        "fold_checksums": {f"fold{k}": v for k, v in sorted({**train.checksums,
                                                             **val.checksums}.items())},
        "fold_checksum_definition": "SHA-256 of the fold's ecg_ids (int64 LE), shape and raw "
                                    "int16 µV samples",
    }


def _progress(total: int, initial: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="batch", dynamic_ncols=True,
                mininterval=2.0, disable=not enabled, file=sys.stderr)


def train_cnn(name: str, *, out_dir: str | Path, epochs: int | None = None,
              batch_size: int | None = None, lr: float | None = None,
              weight_decay: float | None = None, patience: int | None = None, seed: int = 0,
              resume: bool = False, recipe: str | None = None, max_records: int | None = None,
              threads: int | None = None, progress: bool = True, eval_train: bool = True,
              n_boot: int = 1000, compute: str = "fp32",
              teachers: Sequence[str] = (), distil_alpha: float = 0.5,
              temperature: float = 2.0, augment: str = "none",
              labels: str = DEFAULT_LABELS, leads: Sequence[str] | None = None
              ) -> dict[str, Any]:
    """Train CNN ``name`` (`detak.models.cnn.registry.MODEL_NAMES`) and write the model files
    into ``out_dir``; returns the model card (a dict).

    Unset hyper-parameters come from the recipe (``s1``: epochs 50, batch 32, lr 1e-3, weight
    decay 0.01, patience 5); ``patience=0`` switches early stopping off. ``max_records`` keeps
    the first N training records (and N/4, at least 32, validation records) for smoke runs.
    ``resume=True`` continues from ``out_dir/checkpoint.pt`` (same settings required).
    ``compute="bf16"`` runs the training forward passes in bfloat16 (module docstring).
    ``teachers`` (shipped model names or folders) switch on distillation with
    `detak.models.distil.kd_loss` (``distil_alpha``, ``temperature``); ``augment="field"``
    adds the kiosk-condition augmentation (`detak.models.distil.field_augment`).
    ``labels`` picks the target (`detak.models.label_sets`: ``superclass``, ``rhythm``);
    ``leads`` (e.g. ``["II"]``) trains a model that sees only those leads: the 12-channel
    input keeps its shape and the other leads are zero (`detak.models.cnn_data.keep_leads`),
    in training, selection, the standardiser and the card.

    >>> train_cnn("vgg", out_dir="/tmp/x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    detak.models.cnn.registry.UnknownModelError: unknown CNN 'vgg'; known: alexnet1d, ...
    """
    import torch

    from detak.data.ptbxl import open_ptbxl
    from detak.models.cnn.registry import build_model, count_macs, count_parameters

    try:
        lset = label_set(labels)
    except UnknownLabelSetError as err:
        raise TrainingError(str(err)) from None
    classes = lset.classes
    leads = list(leads) if leads else None
    if leads:
        try:
            keep_leads(np.zeros((1, 12, 1), np.float32), leads)
        except ValueError as err:
            raise TrainingError(str(err)) from None
    model = build_model(name, n_classes=len(classes))  # UnknownModelError before any data
    recipe_name = recipe or default_recipe(name)
    if recipe_name not in RECIPES:
        raise TrainingError(f"unknown recipe {recipe_name!r}; use one of {', '.join(RECIPES)}")
    base = RECIPES[recipe_name]
    rec = dataclasses.replace(
        base,
        epochs=int(epochs if epochs is not None else base.epochs),
        batch_size=int(batch_size if batch_size is not None else base.batch_size),
        lr=float(lr if lr is not None else base.lr),
        weight_decay=float(weight_decay if weight_decay is not None else base.weight_decay),
        patience=(base.patience if patience is None else (None if patience <= 0 else patience)))
    if compute not in COMPUTE:
        raise TrainingError(f"unknown compute precision {compute!r}; use one of "
                            f"{', '.join(COMPUTE)}")
    if compute == "bf16" and not _bf16_supported():
        print("detak train: this CPU has no native bfloat16 support; --compute bf16 will be "
              "slower than fp32", file=sys.stderr)
    if rec.epochs < 1 or rec.batch_size < 2:
        raise TrainingError(f"epochs must be ≥ 1 and batch size ≥ 2 (got {rec.epochs}, "
                            f"{rec.batch_size})")
    from detak.models.distil import AUGMENTS, DistilError, load_teacher

    if augment not in AUGMENTS:
        raise TrainingError(f"unknown augmentation {augment!r}; use one of {', '.join(AUGMENTS)}")
    if teachers and not (0.0 <= distil_alpha <= 1.0 and temperature > 0):
        raise TrainingError(f"--distil-alpha must be in [0, 1] and --temperature > 0 (got "
                            f"{distil_alpha}, {temperature})")
    try:
        teacher_models = [load_teacher(t) for t in teachers]
    except DistilError as err:
        raise TrainingError(str(err)) from None
    distil: dict[str, Any] | None = None
    if teacher_models or augment != "none":
        distil = {"augment": augment}
        if teacher_models:
            distil.update(alpha=float(distil_alpha), temperature=float(temperature),
                          teachers=[{"name": t.name, "weights_sha256": t.weights_sha256}
                                    for t in teacher_models])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(int(threads))
    config = _config(name, rec, seed, max_records, compute, distil, labels, leads)
    ckpt_path = out / CHECKPOINT_FILE
    ckpt = None
    if resume:
        if not ckpt_path.is_file():
            raise TrainingError(f"--resume: no checkpoint {ckpt_path} to resume from")
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        for key in [*config, *(k for k in ckpt["config"] if k not in config)]:
            was, now = ckpt["config"].get(key), config.get(key)
            if was != now:
                raise TrainingError(
                    f"--resume: {ckpt_path} was written with {key}={was!r}, not {now!r}; "
                    "resume with the same settings or start a new --out folder")

    # ---------------------------------------------------------------- data
    ptb = open_ptbxl()
    t_data = time.perf_counter()
    train = split_arrays(TRAIN_FOLDS, max_records=max_records, ptb=ptb, labels=labels)
    val = split_arrays([VAL_FOLD], ptb=ptb, labels=labels,
                       max_records=None if max_records is None else max(32, max_records // 4))
    keep_leads(train.x, leads)
    keep_leads(val.x, leads)
    teacher_z = None
    teacher_seconds = 0.0
    if teacher_models:  # on the filtered full records, before the in-place standardisation
        from detak.models.distil import ensemble_logits, records_key

        t_teach = time.perf_counter()
        teacher_z = torch.from_numpy(ensemble_logits(
            teacher_models, train.x, train.ids,
            records_key(train.ids, train.checksums, preprocessing_key())))
        teacher_seconds = time.perf_counter() - t_teach
    std = fit_standardizer(train.x)
    _standardize_inplace(train.x, std.mean[0], std.std[0])
    data_seconds = time.perf_counter() - t_data
    y_train = torch.from_numpy(train.y.astype(np.float32))

    # ---------------------------------------------------------------- model and optimizer
    torch.manual_seed(seed)
    model = build_model(name, n_classes=len(classes))
    n_params, macs = count_parameters(model), count_macs(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=rec.lr, weight_decay=rec.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    steps_per_epoch = len(_batches(len(train), rec.batch_size, np.arange(len(train))))
    scheduler = None
    if rec.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=rec.lr, epochs=rec.epochs, steps_per_epoch=steps_per_epoch,
            pct_start=0.3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    targets = None
    if teacher_z is not None:
        from detak.models.distil import kd_loss, soft_targets

        targets = soft_targets(teacher_z, float(temperature))
    state: dict[str, Any] = {"epoch": 0, "history": [], "best_val_loss": float("inf"),
                             "best_epoch": 0, "best_state": None, "bad_epochs": 0,
                             "stopped_early": False, "train_seconds": 0.0}
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(ckpt["scheduler"])
        torch.set_rng_state(ckpt["torch_rng"])
        gen.set_state(ckpt["generator"])
        state.update(ckpt["state"])

    # ---------------------------------------------------------------- epochs
    bar = _progress(rec.epochs * steps_per_epoch, state["epoch"] * steps_per_epoch, progress)
    try:
        while state["epoch"] < rec.epochs and not state["stopped_early"]:
            t0 = time.perf_counter()
            model.train()
            perm = torch.randperm(len(train), generator=gen)
            total, count = 0.0, 0
            for idx in _batches(len(train), rec.batch_size, perm):
                idx_np = np.sort(idx.numpy())
                if augment == "field":
                    from detak.models.distil import field_augment

                    rng = np.random.default_rng(int(torch.randint(
                        0, 2**31 - 1, (1,), generator=gen)))
                    xb = torch.from_numpy(field_augment(train.x[idx_np], MODEL_FS, rng,
                                                        mean=std.mean[0], std=std.std[0]))
                else:
                    xb = torch.from_numpy(train.x[idx_np])
                xb = _augment(xb, rec, gen)
                yb = y_train[idx_np]
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=compute == "bf16"):
                    logits = model(xb)
                if targets is not None:
                    loss = kd_loss(logits.float(), yb, targets[idx_np], alpha=float(distil_alpha),
                                   temperature=float(temperature))
                else:
                    loss = loss_fn(logits.float(), yb)
                loss.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                total += float(loss.detach()) * len(idx_np)
                count += len(idx_np)
                bar.update(1)
                bar.set_postfix(epoch=state["epoch"] + 1, loss=f"{total / count:.4f}",
                                refresh=False)
            val_loss, val_probs = _evaluate_loss(model, val.x, val.y, std)
            from detak.models.cnn_metrics import MetricsError, macro_auc, roc_auc

            try:
                val_auc = macro_auc(val.y, val_probs)
                val_mi = roc_auc(val.y[:, FOCUS_INDEX], val_probs[:, FOCUS_INDEX])
            except MetricsError:  # tiny smoke-run validation sets may miss a class
                val_auc = val_mi = float("nan")
            seconds = time.perf_counter() - t0
            state["epoch"] += 1
            state["train_seconds"] += seconds
            state["history"].append({
                "epoch": state["epoch"], "train_loss": total / max(count, 1),
                "val_loss": val_loss, "val_macro_auc": val_auc,
                f"val_{lset.focus.lower()}_auc": val_mi,
                "lr": optimizer.param_groups[0]["lr"], "seconds": seconds})
            if val_loss < state["best_val_loss"]:
                state.update(best_val_loss=val_loss, best_epoch=state["epoch"], bad_epochs=0,
                             best_state=copy.deepcopy(model.state_dict()))
            else:
                state["bad_epochs"] += 1
                if rec.patience is not None and state["bad_epochs"] >= rec.patience:
                    state["stopped_early"] = True
            _atomic_torch_save({
                "config": config, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "torch_rng": torch.get_rng_state(), "generator": gen.get_state(),
                "state": state}, ckpt_path)
            bar.write(f"{name} epoch {state['epoch']}/{rec.epochs}: train loss "
                      f"{total / max(count, 1):.4f}, val loss {val_loss:.4f}, val macro AUC "
                      f"{val_auc:.4f}, {lset.focus} AUC {val_mi:.4f}, {seconds:.0f} s"
                      + (" (best)" if state["best_epoch"] == state["epoch"] else ""))
    finally:
        bar.close()

    # ---------------------------------------------------------------- outputs
    model.load_state_dict(state["best_state"])
    precision = "fp16" if n_params > FP16_ABOVE_PARAMETERS else "fp32"
    weights = {k: (v.half() if precision == "fp16" and v.is_floating_point() else v)
               for k, v in model.state_dict().items()}
    weights_path = out / f"{name}.pt"
    _atomic_torch_save(weights, weights_path)
    std.save(out / STANDARDIZER_FILE)
    history = state["history"]
    card = {
        "format": CARD_FORMAT,
        "name": name,
        "architecture": {"name": name, "class": type(model).__name__,
                         "module": type(model).__module__,
                         "input_shape": [12, N_SAMPLES], "fs": MODEL_FS,
                         "leads": "I II III aVR aVL aVF V1 V2 V3 V4 V5 V6",
                         **({"input_leads": leads, "input_note": (
                             "12-channel input with every lead but " + ", ".join(leads) +
                             " set to zero before standardisation "
                             "(detak.models.cnn_data.keep_leads)")} if leads else {}),
                         "label_set": lset.name,
                         "outputs": list(classes), "output": "logits (sigmoid → probability)",
                         "parameters": n_params, "macs": macs},
        "weights": {"file": weights_path.name, "precision": precision,
                    "bytes": weights_path.stat().st_size},
        "standardizer": {"file": STANDARDIZER_FILE, "mean": std.mean[0], "std": std.std[0],
                         "fitted_on": f"training folds {sorted(set(train.folds))}"},
        "preprocessing": {"description": PREPROCESSING, "key": preprocessing_key()},
        "data": _data_description(ptb, train, val, lset),
        "training": {
            "recipe": dataclasses.asdict(rec),
            "loss": ("distillation (see distillation)" if teacher_models
                     else "BCEWithLogits"), "optimizer": "AdamW",
            "seed": seed, "max_records": max_records, "compute": compute,
            "compute_note": ("forward passes of the training steps under torch.autocast "
                             "bfloat16; weights, optimizer, loss and validation fp32"
                             if compute == "bf16" else "fp32 throughout"),
            "epochs_run": state["epoch"],
            "best_epoch": state["best_epoch"], "best_val_loss": state["best_val_loss"],
            "stopped_early": state["stopped_early"], "selection": "lowest validation loss",
            "training_seconds": round(state["train_seconds"], 1),
            "seconds_per_epoch": round(state["train_seconds"] / max(len(history), 1), 1),
            "distillation": (dict(distil, loss=(
                "(1-alpha)*BCE(s, y) + alpha*T^2*BCE(sigmoid(s/T), mean_k sigmoid(z_k/T)) per "
                "class; teacher logits per record on the full 10 s (cached), student on its "
                "crop") if teacher_models else None, teacher_seconds=round(teacher_seconds, 1))
                if distil else None),
            "data_seconds": round(data_seconds, 1), "threads": torch.get_num_threads(),
            "history": history,
        },
        "command": _command(name, rec, seed, out, max_records, threads, compute, distil, labels,
                            leads),
        "torch": torch.__version__,
    }
    from detak.models.model_card import library_versions, write_card

    card["versions"] = library_versions()
    card["created"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    write_card(card, out / CARD_FILE)

    # metrics from the saved file, through the prediction path
    from detak.models.cnn_metrics import MetricsError, benchmark_metrics
    from detak.models.trained import load_torch_module, torch_predictor
    from detak.signal.filters import Standardizer

    # the saved weights and standardizer, read back as `detak predict --runtime torch` reads them
    predict = torch_predictor(load_torch_module(out, card))
    standardizer = Standardizer.load(out / STANDARDIZER_FILE)
    metrics: dict[str, Any] = {}
    val_probs = predict(standardizer.transform(val.x))
    try:
        metrics[f"fold{VAL_FOLD}"] = benchmark_metrics(val.y, val_probs, n_boot=n_boot, seed=0,
                                                       classes=classes)
    except MetricsError as err:
        metrics[f"fold{VAL_FOLD}"] = {"error": str(err), "n": len(val)}
    if eval_train:
        train_probs = predict(train.x)  # already standardised in place
        try:
            metrics["train"] = benchmark_metrics(train.y, train_probs, n_boot=200, seed=0,
                                                 classes=classes)
        except MetricsError as err:
            metrics["train"] = {"error": str(err), "n": len(train)}
    card["metrics"] = metrics
    write_card(card, out / CARD_FILE)
    return card


def main(argv: list[str] | None = None) -> int:
    """``python -m detak.models.training NAME [OUT]``: train with the default recipe."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m detak.models.training NAME [OUT_DIR]", file=sys.stderr)
        return 2
    from detak.models.trained import default_models_dir

    out = args[1] if len(args) > 1 else default_models_dir() / args[0]
    card = train_cnn(args[0], out_dir=out, resume=(Path(out) / CHECKPOINT_FILE).is_file())
    print(card["metrics"].get(f"fold{VAL_FOLD}", {}).get("macro_auc"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

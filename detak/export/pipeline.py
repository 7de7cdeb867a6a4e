"""``detak export onnx|tflite``: a trained model → fp32 and int8 files + the export card (host).

For a model folder (``card.json``, ``standardizer.json``, ``NAME.pt`` as `detak train` writes
it) `export_model` writes into the output folder (default: the model's own folder):

* ``NAME.fp32.onnx`` and ``NAME.int8.onnx`` (``kind="onnx"``), or ``NAME.fp32.tflite`` and
  ``NAME.int8.tflite`` (``kind="tflite"``), with the fused Grad-CAM outputs where the head
  allows (`detak.export.cam`);
* ``export.json``, the export card (created or updated per kind): file sizes and SHA-256, the
  calibration set (`detak.export.representative`), fold-9 macro and MI AUC of the torch
  fp32 model and of every exported file, the largest |probability difference| against torch,
  Grad-CAM agreement (fp32 export vs autograd Grad-CAM, int8 vs fp32, Pearson r per MI-positive
  record), and for ONNX the three calibration methods' AUCs and the one chosen.

int8 selection (ONNX): MinMax, Entropy and Percentile calibration are each quantized and scored
on fold 9 (macro AUC; ties go to the earlier method in that order); the best becomes
``NAME.int8.onnx``. Fold 10 is never read.

    detak export onnx --model edge        # NAME resolves like `detak predict`: an installed
                                          # bundle, then the shipped folder (rewritten in
                                          # place), then cache_dir()/cnn/edge
    detak export tflite --source runs/edge --out detak/models/weights/edge
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from detak.export.compare import auc_summary, cam_agreement
from detak.export.runtime import NO_CAM_NOTE, load_runtime, model_filename
from detak.models.model_card import sha256_file
from detak.models.shipped import EXPORT_CARD_FILE

__all__ = ["EXPORT_CARD", "EXPORT_CARD_FORMAT", "KINDS", "export_model", "read_export_card"]

EXPORT_CARD = EXPORT_CARD_FILE
EXPORT_CARD_FORMAT = "detak-export-card/1"
KINDS: tuple[str, ...] = ("onnx", "tflite")
PARITY_RECORDS = 100  # records on which fp32 exports are compared with torch
MI = 1


def read_export_card(folder: str | Path) -> dict[str, Any]:
    """The export card of a model folder ({} if there is none yet).

    >>> read_export_card("/nonexistent")
    {}
    """
    p = Path(folder) / EXPORT_CARD
    if not p.is_file():
        return {}
    return json.loads(p.read_text(encoding="utf-8"))


def _write_json_atomic(obj: Any, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=1, default=str)
        fh.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _torch_outputs(graph: Any, x: np.ndarray, batch: int = 128) -> dict[str, np.ndarray]:
    import torch

    parts: dict[str, list[np.ndarray]] = {}
    with torch.inference_mode():
        for s in range(0, len(x), batch):
            out = graph(torch.from_numpy(np.ascontiguousarray(x[s:s + batch])))
            for k, v in out.items():
                parts.setdefault(k, []).append(v.numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def _file_entry(path: Path) -> dict[str, Any]:
    return {"file": path.name, "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def _evaluate_file(path: Path, x: np.ndarray, y: np.ndarray, threads: int,
                   ref: dict[str, np.ndarray], ref_name: str,
                   cam_ref: dict[str, np.ndarray] | None, mi_pos: np.ndarray,
                   classes: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Scores of one exported file on the evaluation records against reference outputs."""
    rt = load_runtime(path, threads=threads)
    t0 = time.perf_counter()
    pred = rt.run(x)
    seconds = time.perf_counter() - t0
    entry: dict[str, Any] = {**_file_entry(path), "backend": rt.backend, "cam": rt.has_cam}
    entry.update(auc_summary(y, pred.probs, classes))
    n = min(PARITY_RECORDS, len(x))
    entry[f"max_abs_prob_diff_vs_{ref_name}"] = float(np.abs(pred.probs[:n] -
                                                             ref["probs"][:n]).max())
    entry["eval_seconds"] = round(seconds, 3)
    if rt.has_cam and cam_ref is not None:
        entry["cam_mi_vs_" + ref_name] = cam_agreement(pred.cam_mi, cam_ref["cam_mi"], mi_pos)
        entry["cam_top_vs_" + ref_name] = cam_agreement(pred.cam_top, cam_ref["cam_top"], mi_pos)
    entry["_pred"] = pred
    return entry


def _strip(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if not k.startswith("_")}


def _eval_data(fold: int, records: int | None, std: Any, labels: str = "superclass",
               leads: list[str] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from detak.models.cnn_data import fold_arrays, keep_leads

    fa = fold_arrays(fold, labels=labels)
    idx = np.flatnonzero(fa.labelled)
    if records is not None:
        idx = idx[:int(records)]
    x = std.transform(keep_leads(np.array(fa.x[idx]), leads)).astype(np.float32)
    return fa.ids[idx], x, fa.y[idx]


def export_model(model: str | Path | None = None, kind: str = "onnx", *,
                 source: str | Path | None = None, out: str | Path | None = None,
                 calibration_size: int | None = None, seed: int = 0, eval_fold: int = 9,
                 eval_records: int | None = None, threads: int = 1,
                 activation_type: str = "uint8", cam: bool = True,
                 progress: Any = None) -> dict[str, Any]:
    """Export a trained model (``model``: NAME or folder; or ``source``: its folder) as
    ``kind`` (onnx / tflite) fp32 and int8 into ``out`` (default: the model's folder); returns
    the export card (also written to ``out/export.json``).

    ``eval_records`` limits the fold-9 records scored (the first N labelled ones; smoke runs and
    tests); ``calibration_size`` defaults to `detak.export.representative.DEFAULT_SIZE`.

    >>> export_model("edge", kind="coreml")
    Traceback (most recent call last):
    ...
    ValueError: unknown export kind 'coreml'; use one of onnx, tflite
    """
    if kind not in KINDS:
        raise ValueError(f"unknown export kind {kind!r}; use one of {', '.join(KINDS)}")
    if model is None and source is None:
        raise ValueError("give the model to export: a NAME or its folder (source)")
    import torch

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        return _export(model, kind, source=source, out=out, calibration_size=calibration_size,
                       seed=seed, eval_fold=eval_fold, eval_records=eval_records,
                       threads=threads, activation_type=activation_type, cam=cam,
                       progress=progress)
    finally:
        torch.set_num_threads(previous_threads)


def _export(model: str | Path | None, kind: str, *, source: str | Path | None,
            out: str | Path | None, calibration_size: int | None, seed: int, eval_fold: int,
            eval_records: int | None, threads: int, activation_type: str, cam: bool,
            progress: Any) -> dict[str, Any]:
    from detak.export.cam import MI_INDEX, cam_kind, export_graph, reference_gradcam
    from detak.export.predict import load_torch_module, resolve_model_dir
    from detak.export.representative import (
        DEFAULT_SIZE,
        describe,
        representative_set,
    )
    from detak.models.cnn.registry import count_macs
    from detak.models.model_card import read_card
    from detak.models.shipped import CARD_FILE, STANDARDIZER_FILE
    from detak.models.trained import torch_weights_file
    from detak.signal.filters import Standardizer

    say = progress or (lambda _msg: None)
    folder = resolve_model_dir(source if source is not None else model)
    card = read_card(folder / CARD_FILE)
    stem = Path(card["weights"]["file"]).stem
    # a model trained on another label set or on a lead subset (detak train --labels / --lead)
    # is calibrated and scored on the same targets and leads
    labels = card["architecture"].get("label_set", "superclass")
    leads = card["architecture"].get("input_leads")
    classes = tuple(card["architecture"].get("outputs") or ())
    out_dir = Path(out) if out is not None else folder
    out_dir.mkdir(parents=True, exist_ok=True)
    if out_dir.resolve() != folder.resolve():
        for name in (CARD_FILE, STANDARDIZER_FILE):
            shutil.copy2(folder / name, out_dir / name)
    std = Standardizer.load(folder / STANDARDIZER_FILE)
    module = load_torch_module(folder, card)
    kind_of_cam = cam_kind(module) if cam else None
    graph = export_graph(module, cam=cam)
    size = int(calibration_size or DEFAULT_SIZE)

    say(f"calibration set: {size} training records (seed {seed})")
    calib = representative_set(size, seed)
    from detak.models.cnn_data import keep_leads

    calib_x = std.transform(keep_leads(calib.x, leads)).astype(np.float32)
    say(f"fold {eval_fold}: reading and standardising")
    ids, x, y = _eval_data(eval_fold, eval_records, std, labels, leads)
    mi_pos = y[:, MI_INDEX] == 1
    say(f"torch fp32 on {len(x)} records")
    ref = _torch_outputs(graph, x)
    torch_entry = {"weights": card["weights"]["file"],
                   "weights_sha256": sha256_file(torch_weights_file(folder, card)),
                   **auc_summary(y, ref["probs"], classes or None)}
    if graph.has_cam:
        sel = np.flatnonzero(mi_pos)[:64]
        auto = {"cam_mi": reference_gradcam(module, x[sel], MI_INDEX),
                "cam_top": reference_gradcam(module, x[sel], ref["logits"][sel].argmax(1))}
        torch_entry["fused_cam_vs_autograd"] = {
            k: cam_agreement(ref[k][sel], auto[k]) for k in ("cam_mi", "cam_top")}

    files: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="detak-export-") as tmp:
        tmpd = Path(tmp)
        fp32_path = out_dir / model_filename(stem, kind, "fp32")
        int8_path = out_dir / model_filename(stem, kind, "int8")
        say(f"{kind} fp32 → {fp32_path}")
        if kind == "onnx":
            from detak.export.onnx_export import CALIBRATION_METHODS, export_onnx, quantize_onnx

            export_onnx(module, tmpd / fp32_path.name, cam=cam)
        else:
            from detak.export.tflite_export import export_tflite, export_tflite_int8

            export_tflite(module, tmpd / fp32_path.name, cam=cam)
        fp32 = _evaluate_file(tmpd / fp32_path.name, x, y, threads, ref, "torch", ref, mi_pos,
                              classes or None)
        fp32_cams = ({"cam_mi": fp32["_pred"].cam_mi, "cam_top": fp32["_pred"].cam_top}
                     if graph.has_cam else None)
        fp32_ref = {"probs": fp32["_pred"].probs}
        files["fp32"] = _strip(fp32)
        if kind == "onnx":
            methods: dict[str, Any] = {}
            for method in CALIBRATION_METHODS:
                say(f"onnx int8, {method} calibration")
                q = tmpd / f"{stem}.int8.{method}.onnx"
                t0 = time.perf_counter()
                quantize_onnx(tmpd / fp32_path.name, q, calib_x, method=method,
                              activation_type=activation_type)
                e = _evaluate_file(q, x, y, threads, fp32_ref, "fp32", fp32_cams, mi_pos,
                                   classes or None)
                e["quantize_seconds"] = round(time.perf_counter() - t0, 2)
                methods[method] = e
            chosen = max(CALIBRATION_METHODS, key=lambda m: (methods[m]["macro_auc"],
                                                             -CALIBRATION_METHODS.index(m)))
            shutil.copyfile(tmpd / f"{stem}.int8.{chosen}.onnx", tmpd / int8_path.name)
            summary_keys = ("macro_auc", "mi_auc", "max_abs_prob_diff_vs_fp32", "cam_mi_vs_fp32",
                            "quantize_seconds")
            int8 = {**_strip(methods[chosen]), **_file_entry(tmpd / int8_path.name),
                    "calibration_method": chosen,
                    "calibration_methods": {m: {k: methods[m][k] for k in summary_keys
                                                if k in methods[m]}
                                            for m in CALIBRATION_METHODS},
                    "selection": f"highest fold-{eval_fold} macro AUC (ties: the earlier of "
                                 f"{', '.join(CALIBRATION_METHODS)})",
                    "scheme": f"QDQ, per-channel symmetric int8 weights, {activation_type} "
                              "activations, head and maps in float"}
        else:
            say("tflite int8 (PT2E)")
            t0 = time.perf_counter()
            try:
                export_tflite_int8(module, tmpd / int8_path.name, calib_x, cam=cam)
            except ValueError as err:  # the converter refuses some graphs (see the card)
                int8 = {"error": f"litert-torch could not convert the int8 model: {err}"}
                say(int8["error"].splitlines()[0][:300])
            else:
                e = _evaluate_file(tmpd / int8_path.name, x, y, threads, fp32_ref, "fp32",
                                   fp32_cams, mi_pos, classes or None)
                e["quantize_seconds"] = round(time.perf_counter() - t0, 2)
                int8 = {**_strip(e),
                        "calibration_method": "histogram (litert-torch PT2E default)",
                        "scheme": "PT2E, per-channel symmetric int8 weights, int8 activations "
                                  "(int8 input tensor), head and maps in float"}
        if "macro_auc" in int8:
            int8["macro_auc_change_vs_fp32"] = round(
                int8["macro_auc"] - files["fp32"]["macro_auc"], 6)
        files["int8"] = int8
        for p in (fp32_path, int8_path):
            if (tmpd / p.name).is_file():
                shutil.move(str(tmpd / p.name), p)

    export_card = read_export_card(out_dir)
    from importlib.metadata import PackageNotFoundError, version

    from detak.models.model_card import library_versions

    versions = library_versions()
    dists = ("torch", "onnx", "onnxruntime") if kind == "onnx" else (
        "torch", "litert-torch", "ai-edge-litert")
    for dist in dists:
        with contextlib.suppress(PackageNotFoundError):
            versions[dist] = version(dist)
    export_card.update({
        "format": EXPORT_CARD_FORMAT, "name": card.get("name", stem), "stem": stem,
        "architecture": card["architecture"]["name"], "macs": count_macs(module),
        "cam": {"kind": kind_of_cam, "outputs": list(graph.output_names),
                "definition": "Grad-CAM at the last conv map computed in the forward pass; "
                              "ReLU; linear interpolation to 1000 samples",
                "note": None if graph.has_cam else NO_CAM_NOTE},
    })
    export_card.setdefault("exports", {})[kind] = {
        **files,
        "torch_fp32": torch_entry,
        "calibration": describe(calib.ids, size, seed),
        "evaluation": {"fold": int(eval_fold), "records": int(len(x)), "label_set": labels,
                       **({"input_leads": leads} if leads else {}),
                       "first_last_ecg_id": [int(ids[0]), int(ids[-1])],
                       "mi_positive": int(mi_pos.sum()),
                       "parity_records": min(PARITY_RECORDS, len(x)),
                       "cam_records": "MI-positive records (maps compared record by record)"},
        "source_folder": str(folder),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "versions": versions,
        "command": (f"detak export {kind} --source {folder} --out {out_dir} "
                    f"--calibration-size {size} --seed {seed} --threads {threads}"
                    + (f" --eval-records {eval_records}" if eval_records else "")),
    }
    _write_json_atomic(export_card, out_dir / EXPORT_CARD)
    return export_card

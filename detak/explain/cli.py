"""``detak explain``: explain a CNN's prediction on any ECG source (host; torch imported only
when the command runs).

    detak explain SOURCE [SOURCE ...] --model NAME
                  --method gradcam|gradcam_lead|lrp[:COMPOSITE]|ig|shap|random --class MI --out DIR

For each record (and each 10-s window of longer records) it writes to DIR
``RECORD[.wK].METHOD.png`` and ``.svg`` (the 12-lead ECG in paper layout coloured by the
attribution) and ``.json``: record, model, method (with its label), class, probability and
logit, the attribution (12 × 1000, model input at 100 Hz, in logit units), lead scores, the
three most relevant leads and the lead utilisation (leads carrying 80 % of |relevance|). One
JSON line per written record is printed.

>>> import argparse
>>> p = argparse.ArgumentParser(); sub = p.add_subparsers(dest="command")
>>> add_explain_commands(sub)
>>> a = p.parse_args(["explain", "ptbxl://9", "--model", "edge", "--method", "lrp:s1",
...                   "--out", "x"])
>>> a.sources, a.method, a.cls
(['ptbxl://9'], 'lrp:s1', 'MI')
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_explain_commands", "run_explain"]


def add_explain_commands(sub: Any) -> None:
    """Add ``explain`` to argparse sub-parsers."""
    from detak.errors import EXIT_RULE_SHORT

    p = sub.add_parser(
        "explain", help="explain a CNN prediction: Grad-CAM, LRP or Integrated Gradients",
        description="Attribute a 12-lead CNN's class score to the input of each SOURCE (a WFDB "
        "record, a folder, a .csv/.edf, ptbxl://ID, ludb://N). Writes RECORD.METHOD.png/.svg "
        "(12-lead ECG coloured by the attribution) and .json (attribution, lead scores) to OUT; "
        "prints one JSON line per record. Methods: gradcam (time only), gradcam_lead "
        "(Grad-CAM split across leads by |input x gradient|, a derived view), "
        "lrp[:COMPOSITE] (composites: s1 (default: S1's rule table, z^B on the input), "
        "epsilon, epsilon_plus_flat, epsilon_gamma_box, epsilon_alpha2_beta1, "
        "epsilon_alpha2_beta1_flat, s1_flat, s1_wsquare; z^B composites (s1, "
        "epsilon_gamma_box) read the PTB-XL training folds once for the per-lead bounds; "
        "the *_flat ones spread relevance evenly over the leads), "
        "ig (Integrated Gradients), shap (expected gradients, shap.GradientExplainer, "
        "against --background records of the PTB-XL training folds), random. "
        + EXIT_RULE_SHORT)
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument("--model", required=True, metavar="NAME|PATH")
    p.add_argument("--method", default="gradcam",
                   help="gradcam, gradcam_lead, lrp[:COMPOSITE], ig, shap or random "
                        "(default gradcam)")
    p.add_argument("--class", dest="cls", default="MI",
                   help="class to explain: NORM, MI, STTC, CD or HYP (default MI)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--ig-steps", type=int, default=32, help="Integrated Gradients steps")
    p.add_argument("--background", type=int, default=64, metavar="N",
                   help="shap: training records in the background sample (default 64)")
    p.add_argument("--shap-samples", type=int, default=64, metavar="N",
                   help="shap: expected-gradient samples per record (default 64)")
    p.add_argument("--no-plot", action="store_true", help="write the JSON only")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.set_defaults(func=run_explain)


def _record_name(item: Any) -> str:
    if item.kind == "ptbxl":
        return str(int(item.key))
    if item.kind == "file":
        return Path(item.record).name
    return str(item.record)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def _method_info(method: str) -> tuple[str, str, bool, bool, str]:
    """(kind, label, signed, lead-resolved, note) of a ``--method`` value."""
    from detak.explain.methods import (
        SIGNED,
        lead_resolved,
        method_label,
        method_note,
        parse_method,
    )

    kind, _ = parse_method(method)
    return (kind, method_label(method), kind in SIGNED, lead_resolved(method),
            method_note(method))


def _explain_one(loaded: Any, item: Any, method: str, cls: str, out: Path, ig_steps: int,
                 plot: bool, bounds: Any, background: Any = None,
                 shap_samples: int = 64) -> list[dict[str, Any]]:
    import numpy as np
    import torch

    from detak.data.leads import STANDARD_LEADS
    from detak.explain.gradcam import PER_LEAD_LABEL, class_index
    from detak.explain.lead_relevance import lead_scores, lead_utilisation
    from detak.explain.methods import attribute
    from detak.explain.plots import plot_attribution_ecg
    from detak.models.cnn_data import MODEL_FS, preprocess_recording

    rec = item.load()
    std = loaded.standardizer
    windows = preprocess_recording(rec, std)
    c = class_index(cls)
    kind, label, signed, resolved, note = _method_info(method)
    attr = attribute(loaded.module, windows, c, method, bounds=bounds, ig_steps=ig_steps,
                     background=background, shap_samples=shap_samples)
    with torch.no_grad():
        logits = loaded.module(torch.from_numpy(windows)).numpy()
    mean = np.asarray(std.mean, np.float32).reshape(-1, 1)
    sd = np.asarray(std.std, np.float32).reshape(-1, 1)
    rows = []
    name = _record_name(item)
    n_samples = windows.shape[-1]
    starts = list(range(0, int(round(rec.duration_s * MODEL_FS)) - n_samples + 1, n_samples))
    total = int(round(rec.duration_s * MODEL_FS))
    if starts and starts[-1] + n_samples < total:
        starts.append(total - n_samples)
    for w in range(len(windows)):
        stem = _slug(name) + (f".w{w + 1}" if len(windows) > 1 else "") + "." + _slug(label)
        scores = lead_scores(attr[w])[0]
        finite = bool(np.isfinite(scores).all())
        prob = float(1.0 / (1.0 + np.exp(-logits[w, c])))
        doc: dict[str, Any] = {
            "record": name, "source": item.record if hasattr(item, "record") else name,
            "model": loaded.name, "method": label, "method_note": note,
            "lead_resolved": resolved,
            "class": cls.upper() if isinstance(cls, str) else cls, "probability": prob,
            "logit": float(logits[w, c]), "signed": signed,
            "fs": MODEL_FS, "leads": list(STANDARD_LEADS),
            "window": w + 1, "n_windows": len(windows),
            "window_start_s": (starts[w] / MODEL_FS) if w < len(starts) else None,
            "units": "logit (attribution of the class's logit)",
            "lead_scores": ({lead: float(v) for lead, v in zip(STANDARD_LEADS, scores,
                                                                strict=True)}
                            if finite else None),
            "top3": ([STANDARD_LEADS[i] for i in np.argsort(-scores)[:3]] if finite else None),
            "lead_utilisation": lead_utilisation(scores) if finite else None,
            "attribution": np.round(attr[w].astype(np.float64), 7).tolist(),
        }
        files = []
        if plot:
            x_mv = windows[w] * sd + mean
            title = (f"{name} · {loaded.name} · {label} · {doc['class']} p = {prob:.2f}")
            files = [str(p) for p in plot_attribution_ecg(
                x_mv, attr[w], MODEL_FS, out / f"{stem}.png", signed=signed,
                title=title, subtitle=PER_LEAD_LABEL if kind == "gradcam_lead" else "",
                formats=("png", "svg"))]
        jpath = out / f"{stem}.json"
        jpath.write_text(json.dumps(doc))
        rows.append({"record": name, "window": w + 1, "probability": round(prob, 4),
                     "top3": doc["top3"], "lead_utilisation": doc["lead_utilisation"],
                     "json": str(jpath), "plots": files})
    return rows


def run_explain(args: argparse.Namespace) -> int:
    """Run ``detak explain`` (see the module doc). Exit status: 0 when every record was
    explained, 1 when a source failed (named on stderr; the others go on), 2 for a usage error
    (unknown method or class, a model that is not found)."""
    from detak.export.available import require_torch

    # without torch: one named line, exit 2 (HostExtraMissingError, through detak.errors)
    require_torch("detak explain", "on a kiosk, `detak predict --cam MAPS.npz` writes the "
                  "fused Grad-CAM maps of the exported model")
    from detak.data.sources import SourceError, expand_source
    from detak.errors import error_line, report
    from detak.explain.gradcam import class_index
    from detak.explain.methods import parse_method

    try:
        kind, comp = parse_method(args.method)
        class_index(args.cls)
        if kind == "shap" and (args.background < 1 or args.shap_samples < 1):
            raise ValueError(f"shap needs --background >= 1 and --shap-samples >= 1, got "
                             f"{args.background} and {args.shap_samples}")
    except ValueError as err:
        print(error_line("explain", err), file=sys.stderr)
        return 2
    import torch

    from detak.explain.lrp import NEEDS_BOUNDS, zbox_bounds
    from detak.export.predict import ModelNotFoundError, load_model
    from detak.models.cnn_data import InputError, ModelLeadsError

    torch.set_num_threads(max(1, int(args.threads)))
    try:
        loaded = load_model(args.model, runtime="torch")
    except (ModelNotFoundError, FileNotFoundError) as err:
        print(error_line("explain", err), file=sys.stderr)
        return 2
    bounds = None
    if kind == "lrp" and comp in NEEDS_BOUNDS:
        try:
            bounds = zbox_bounds(loaded.standardizer)
        except (FileNotFoundError, ValueError) as err:
            print(f"detak explain: error: the z^B bounds of lrp:{comp} come from the PTB-XL "
                  f"training folds, which could not be read ({err}); use another composite",
                  file=sys.stderr)
            return 2
    background = None
    if kind == "shap":
        from detak.explain.shap_cnn import training_background

        try:
            background = training_background(loaded.standardizer, n=args.background)
        except (OSError, ValueError) as err:
            print(f"detak explain: error: shap's background records come from the PTB-XL "
                  f"training folds, which could not be read ({err}); use another method",
                  file=sys.stderr)
            return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    status = 0
    for source in args.sources:
        try:
            items = expand_source(source)
        except (SourceError, OSError) as err:
            status = report("explain", err, source)
            continue
        for item in items:
            try:
                rows = _explain_one(loaded, item, args.method, args.cls, out, args.ig_steps,
                                    not args.no_plot, bounds, background, args.shap_samples)
            except (InputError, ModelLeadsError, OSError, ValueError) as err:
                status = report("explain", err, item.record)
                continue
            for row in rows:
                print(json.dumps(row))
    return status

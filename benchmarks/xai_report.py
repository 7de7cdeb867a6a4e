"""S1's explanation analysis, computed (issue 7): Grad-CAM, LRP composites, Integrated
Gradients and a random baseline for every trained 12-lead CNN on PTB-XL fold 9, into
``docs/results/xai/``.

For each model found (``--models``; a NAME — shipped, else trained into
``cache_dir()/cnn/NAME`` — missing ones are skipped with a message):

1. **Records.** Fold 9 (the validation fold: fold 10 is not in the shared copy) is too slow in
   full on 2 shared cores for the larger models, so by default a stratified subset is used:
   ``--n-pos`` MI-positive records and ``--n-neg`` MI-negative records, each a seeded random
   sample of its stratum (``--full``: every labelled record). The same records for every
   model.
2. **Threshold.** The MI threshold that maximises F1 on all labelled fold-9 records; it splits
   the subset into true/false positives/negatives.
3. **Attributions** of the MI logit for every method (``--methods``, those of
   `detak.explain.methods`) and record. ``shap`` (expected gradients; against
   ``--shap-background`` records of the training folds, ``--shap-samples`` per record) is the
   optional SHAP of item 6: in the default list, MI only (no other classes: it costs about as
   much as ``ig``, see the run times in the README).
4. **Faithfulness** on the MI-positive records: deletion and insertion AUCs (cells of one lead
   × 40 ms, ``--steps`` steps) with the ``zero`` and the ECG-valid ``normal_beats`` baseline
   (`detak.explain.faithfulness`; the normal beat is the median beat of ``--template-records``
   NORM-only records of training fold 1).
5. **Randomisation**: Spearman ρ of |cell scores| before and after re-initialising the top
   layers, on the MI-positive records.
6. **Lead relevance** (S1's score) and lead utilisation, for MI on MI-positive records, and for
   every other class on the subset's records positive for it.
7. **Wave segments**: positive/negative attribution per P, PQ, QRS, QRS onset, J point ± 40 ms,
   ST, T, TP for TP/FP/FN/TN records, from the Foundation's delineation of each record.
8. **LRP conservation** on the trained models: sum of input relevance / logit.

Everything computed is cached under ``cache_dir()/explain/report`` (keyed by the weights, the
records, the settings and the explanation code), so an interrupted run resumes; ``--fresh``
recomputes. Torch runs on one thread (``--threads``).

Run: ``.venv/bin/python benchmarks/xai_report.py [--models edge resnet1d ...] [--n-pos 250]
[--n-neg 250] [--full] [--out docs/results/xai]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _provenance import provenance_line
from readme_tables import wrap

LIBRARIES = ("torch", "zennit", "shap", "captum")

DEFAULT_MODELS = ("alexnet1d", "resnet1d", "inceptiontime", "edge")
DEFAULT_METHODS = ("gradcam", "gradcam_lead", "lrp:epsilon", "lrp:epsilon_plus_flat",
                   "lrp:epsilon_gamma_box", "lrp:epsilon_alpha2_beta1", "lrp:s1", "ig",
                   "shap", "random")
MI_ONLY_METHODS = ("shap",)  # no lead relevance of the other classes (cost)
EXAMPLE_METHODS = ("gradcam", "gradcam_lead", "lrp:s1", "lrp:epsilon_plus_flat", "ig")
S1_MOST = ("V1", "V2", "V5", "V6")
S1_LEAST = ("III", "aVR", "V3", "V4")
MI = 1
SEGMENT_COLUMNS = ("P", "PQ", "QRS", "QRS_onset", "J_point", "ST", "T", "TP")
GROUPS = ("TP", "FP", "FN", "TN")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- selection, threshold, cache ----------------------------------------------------------

def select_records(y: np.ndarray, n_pos: int | None, n_neg: int | None, seed: int = 0
                   ) -> np.ndarray:
    """Indices (sorted) of ``n_pos`` MI-positive and ``n_neg`` MI-negative rows of ``y``
    (N, 5), each a seeded random sample of its stratum; None = all of the stratum."""
    rng = np.random.default_rng(seed)
    pos = np.flatnonzero(y[:, MI] == 1)
    neg = np.flatnonzero(y[:, MI] == 0)
    if n_pos is not None and n_pos < len(pos):
        pos = rng.choice(pos, n_pos, replace=False)
    if n_neg is not None and n_neg < len(neg):
        neg = rng.choice(neg, n_neg, replace=False)
    return np.sort(np.concatenate([pos, neg]))


def f1_threshold(p: np.ndarray, y: np.ndarray) -> float:
    """The probability threshold with the highest F1 (ties: the lowest threshold)."""
    order = np.argsort(-p, kind="stable")
    ys = y[order].astype(float)
    tp = np.cumsum(ys)
    fp = np.cumsum(1 - ys)
    f1 = 2 * tp / (tp + fp + ys.sum())
    k = int(np.argmax(f1))
    return float(p[order][k])


class Cache:
    """``.npy`` / ``.json`` files in one folder, one per computed unit; beside each computed
    array, ``KEY.seconds`` holds how long it took (`recorded_seconds`), so a re-run that reads
    the cache can still say what the computation costs. Writes go through a per-process
    temporary file, so two report processes can share a folder."""

    def __init__(self, folder: Path, fresh: bool = False) -> None:
        self.folder = folder
        self.fresh = fresh
        self.used: list[str] = []
        folder.mkdir(parents=True, exist_ok=True)

    def recorded_seconds(self, key: str) -> float | None:
        p = self._path(key, "seconds")
        try:
            return float(p.read_text())
        except (OSError, ValueError):
            return None

    def _path(self, key: str, ext: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
        return self.folder / f"{safe}.{ext}"

    def array(self, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        self.used.append(key)
        p = self._path(key, "npy")
        if p.is_file() and not self.fresh:
            return np.load(p)
        t0 = time.time()
        a = np.asarray(compute())
        seconds = time.time() - t0
        tmp = p.with_name(f"{p.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, a)
        tmp.replace(p)
        t = self._path(key, "seconds")
        tmp_t = t.with_name(f"{t.name}.{os.getpid()}.tmp")
        tmp_t.write_text(f"{seconds:.3f}")
        tmp_t.replace(t)
        return a

    def obj(self, key: str, compute: Callable[[], Any]) -> Any:
        p = self._path(key, "json")
        if p.is_file() and not self.fresh:
            return json.loads(p.read_text())
        v = compute()
        tmp = p.with_name(f"{p.stem}.{os.getpid()}.tmp.json")
        tmp.write_text(json.dumps(v))
        tmp.replace(p)
        return v


def _code_hash() -> str:
    import detak.explain as pkg

    h = hashlib.sha256()
    for f in sorted(Path(pkg.__file__).parent.glob("*.py")):
        if f.name not in ("tabular.py", "cli.py", "plots.py"):
            h.update(f.read_bytes())
    return h.hexdigest()[:10]


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


# --- shared data ---------------------------------------------------------------------------

def load_data(args: argparse.Namespace) -> dict[str, Any]:
    """Fold-9 arrays, the selected records, their delineation and the normal-beat template."""
    from detak.data.leads import STANDARD_LEADS
    from detak.explain.faithfulness import normal_template
    from detak.explain.segments import delineate_fold
    from detak.models.cnn_data import fold_arrays

    leads = list(STANDARD_LEADS)
    fa = fold_arrays(9)
    lab = np.flatnonzero(fa.labelled)
    y_all = fa.y[lab]
    x_all = fa.x  # memory-mapped
    sel = select_records(y_all, None if args.full else args.n_pos,
                         None if args.full else args.n_neg, args.seed)
    rows = lab[sel]
    ids = fa.ids[rows]
    x_mv = np.asarray(x_all[rows])
    t0 = time.time()
    beats = delineate_fold(x_mv, ids, 100.0, leads, cache_key=f"fold09_{fa.checksums[9][:16]}",
                           progress=args.progress)
    log(f"delineation of {len(ids)} fold-9 records: {time.time() - t0:.0f} s (cached after)")
    # the normal-beat template: NORM-only records of training fold 1
    f1 = fold_arrays(1)
    norm_only = np.flatnonzero((f1.y[:, 0] == 1) & (f1.y.sum(axis=1) == 1))
    rng = np.random.default_rng(args.seed)
    pick = np.sort(rng.choice(norm_only, min(args.template_records, len(norm_only)),
                              replace=False))
    t0 = time.time()
    tb = delineate_fold(np.asarray(f1.x[pick]), f1.ids[pick], 100.0, leads,
                        cache_key=f"fold01_{f1.checksums[1][:16]}", progress=args.progress)
    template = normal_template(np.asarray(f1.x[pick]),
                               [tb[int(i)]["beat_times_s"] for i in f1.ids[pick]])
    log(f"normal-beat template from {len(pick)} NORM records of fold 1: "
        f"{time.time() - t0:.0f} s")
    return {"n_labelled": int(len(lab)), "n_labelled_pos": int((y_all[:, MI] == 1).sum()),
            "fa": fa, "labelled_rows": lab, "y_all": y_all, "rows": rows, "ids": ids,
            "x_mv": x_mv, "y": fa.y[rows], "beats": beats, "template": template,
            "template_ids": f1.ids[pick], "leads": leads}


# --- one model -----------------------------------------------------------------------------

def run_model(name: str, data: dict[str, Any], args: argparse.Namespace, cache_root: Path,
              previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every unit of one model (see the module docstring). ``previous``: this model's entry of
    an earlier ``xai.json`` with the same settings, whose compute times stand in for cached
    units computed before times were recorded."""
    import torch

    from detak.explain.faithfulness import (
        class_probability,
        curve_auc,
        normal_beats_baseline,
        perturbation_curves,
        randomized_copy,
        rank_correlation,
    )
    from detak.explain.lead_relevance import lead_scores, summarize_leads
    from detak.explain.lrp import NEEDS_BOUNDS, zbox_bounds
    from detak.explain.methods import attribute, needs_background, parse_method
    from detak.explain.segments import (
        SEGMENT_NAMES,
        aggregate_segments,
        segment_attribution,
        segment_labels,
        window_masks,
    )
    from detak.export.predict import load_model
    from detak.models.cnn_data import CLASSES
    from detak.models.trained import torch_weights_file

    t_model = time.time()
    loaded = load_model(name, threads=args.threads, calibrated=False)  # raw, as measured
    torch.set_num_threads(args.threads)
    model, std = loaded.module, loaded.standardizer
    weights = torch_weights_file(loaded.folder, loaded.card)
    key = hashlib.sha256(
        f"{_file_hash(weights)}|{data['ids'].tobytes().hex()}|{args.steps}|{args.ig_steps}|"
        f"{_code_hash()}|{args.template_records}|{args.seed}".encode()).hexdigest()[:12]
    cache = Cache(cache_root / f"{Path(name).name}-{key}", args.fresh)
    log(f"[{name}] cache {cache.folder}")

    # threshold on all labelled fold-9 records
    x_all = data["fa"].x
    lab = data["labelled_rows"]

    def fold_probs() -> np.ndarray:
        out = np.empty((len(lab), 5), np.float32)
        for s in range(0, len(lab), 256):
            out[s:s + 256] = loaded.predict(std.transform(np.asarray(x_all[lab[s:s + 256]])))
        return out

    p_all = cache.array("fold9_probs", fold_probs)
    thr = f1_threshold(p_all[:, MI], data["y_all"][:, MI])
    x = std.transform(data["x_mv"])
    y = data["y"]
    with torch.no_grad():
        logits = torch.cat([model(torch.from_numpy(x[s:s + 256]))
                            for s in range(0, len(x), 256)]).numpy()
    prob = 1 / (1 + np.exp(-logits[:, MI]))
    pred = prob >= thr
    truth = y[:, MI] == 1
    group = np.where(truth & pred, "TP", np.where(~truth & pred, "FP",
                                                    np.where(truth & ~pred, "FN", "TN")))
    pos = np.flatnonzero(truth)
    needs = any(parse_method(m)[1] in NEEDS_BOUNDS for m in args.methods)
    bounds = zbox_bounds(std) if needs else None
    background = None
    if any(needs_background(m) for m in args.methods):
        from detak.explain.shap_cnn import training_background

        background = training_background(std, n=args.shap_background, seed=args.seed)

    def explain(net: Any, xx: np.ndarray, cls: int, method: str, bb: Any) -> np.ndarray:
        return attribute(net, xx, cls, method, bounds=bb, ig_steps=args.ig_steps,
                         seed=args.seed,
                         background=background, shap_samples=args.shap_samples)

    def unit(method: str) -> str:  # cache name; shap's carries its settings
        return (f"shap_{args.shap_background}_{args.shap_samples}"
                if needs_background(method) else method)

    # baselines (model units)
    zero = np.zeros_like(x)
    normal = np.empty_like(x)
    fallback = 0
    mean0 = std.transform(np.zeros((1, 12, 1), np.float32))[0]
    for i, rid in enumerate(data["ids"]):
        b = normal_beats_baseline(data["template"], data["beats"][int(rid)]["beat_times_s"],
                                  x.shape[-1])
        if b is None:
            fallback += 1
            normal[i] = mean0
        else:
            normal[i] = std.transform(b[None])[0]
    baselines = {"zero": zero, "normal_beats": normal}
    predict = class_probability(model, MI)
    p_base = {k: float(np.mean(predict(v[pos]))) for k, v in baselines.items()}

    # segment labels per record (model-independent, 100 Hz)
    seg_labels = [segment_labels(data["beats"][int(r)]["beat_times_s"],
                                 data["beats"][int(r)]["beat_boundaries"], data["leads"],
                                 x.shape[-1], 100.0) for r in data["ids"]]
    seg_windows = [window_masks(data["beats"][int(r)]["beat_times_s"],
                                data["beats"][int(r)]["beat_boundaries"], data["leads"],
                                x.shape[-1], 100.0) for r in data["ids"]]

    result: dict[str, Any] = {
        "model": name, "folder": str(loaded.folder), "weights_sha256_12": _file_hash(weights),
        "mi_threshold_f1_fold9": thr, "n_records": int(len(x)), "n_mi_pos": int(len(pos)),
        "groups": {g: int((group == g).sum()) for g in GROUPS},
        "p_mi_of_baseline_mean": p_base, "p_mi_mean_pos": float(prob[pos].mean()),
        "normal_baseline_fallbacks": fallback, "methods": {},
    }
    timings: dict[str, float] = {}
    compute: dict[str, float | None] = {}
    compute_source: dict[str, str] = {}
    prev_compute = {}
    if previous and previous.get("weights_sha256_12") == result["weights_sha256_12"]:
        prev_s = previous.get("seconds", {})
        prev_compute = prev_s.get("compute_by_method") or prev_s.get("by_method") or {}
    for method in args.methods:
        kind, comp = parse_method(method)
        first_unit = len(cache.used)
        b = bounds if kind == "lrp" and comp in NEEDS_BOUNDS else None
        t0 = time.time()
        attr = cache.array(f"attr_{unit(method)}",
                           lambda m=method, bb=b: explain(model, x, MI, m, bb))
        res: dict[str, Any] = {"kind": kind}
        # lead relevance (MI, MI-positive records)
        res["leads_mi"] = summarize_leads(lead_scores(attr[pos]))
        # conservation (LRP)
        if kind == "lrp":
            ratio = attr[pos].sum(axis=(1, 2)) / logits[pos, MI]
            res["conservation_ratio"] = {"median": float(np.median(ratio)),
                                         "q25": float(np.percentile(ratio, 25)),
                                         "q75": float(np.percentile(ratio, 75))}
        # faithfulness
        res["faithfulness"] = {}
        for bname, base in baselines.items():
            def curves(bs=base, a=attr) -> np.ndarray:
                c = perturbation_curves(predict, x[pos], a[pos], bs[pos], steps=args.steps,
                                        seed=args.seed)
                return np.stack([c.deletion, c.insertion])
            cv = cache.array(f"curves_{unit(method)}_{bname}", curves)
            fr = np.linspace(0, 1, args.steps + 1)
            d_auc, i_auc = curve_auc(fr, cv[0]), curve_auc(fr, cv[1])
            res["faithfulness"][bname] = {
                "deletion_auc": float(d_auc.mean()), "deletion_auc_sd": float(d_auc.std()),
                "insertion_auc": float(i_auc.mean()), "insertion_auc_sd": float(i_auc.std()),
                "deletion_curve": cv[0].mean(axis=0).round(5).tolist(),
                "insertion_curve": cv[1].mean(axis=0).round(5).tolist()}
        # randomisation
        if kind != "random":
            def rnd(a=attr, m=method, bb=b) -> np.ndarray:
                rm = randomized_copy(model, seed=args.seed + 1)
                ar = explain(rm, x[pos], MI, m, bb)
                return rank_correlation(a[pos], ar)
            rho = cache.array(f"random_rho_{unit(method)}", rnd)
            res["randomisation_rho"] = {"mean": float(np.mean(rho)),
                                        "median": float(np.median(rho))}
        # segments by outcome group
        per_rec = [segment_attribution(attr[i], seg_labels[i], seg_windows[i])
                   for i in range(len(x))]
        res["segments"] = {g: aggregate_segments([per_rec[i] for i in np.flatnonzero(group == g)])
                           for g in GROUPS if (group == g).any()}
        res["unassigned_share"] = float(np.mean([(lbl == len(SEGMENT_NAMES) - 1).mean()
                                                 for lbl in seg_labels]))
        # other classes (lead relevance on the subset's records positive for the class)
        res["leads_by_class"] = {"MI": {k: res["leads_mi"][k] for k in
                                        ("top3", "utilisation", "n")}}
        if (kind != "random" and not _no_leads(method) and not args.mi_only
                and method not in MI_ONLY_METHODS):
            for c, cname in enumerate(CLASSES):
                if c == MI:
                    continue
                rows = np.flatnonzero(y[:, c] == 1)
                if len(rows) < 5:
                    continue
                ac = cache.array(f"attr_{unit(method)}_{cname}",
                                 lambda r=rows, cc=c, m=method, bb=b: explain(
                                     model, x[r], cc, m, bb))
                res["leads_by_class"][cname] = summarize_leads(lead_scores(ac))
        timings[method] = time.time() - t0
        recorded = [cache.recorded_seconds(k) for k in cache.used[first_unit:]]
        if all(r is not None for r in recorded):
            compute[method], compute_source[method] = float(sum(recorded)), "recorded"
        elif prev_compute.get(method) is not None:
            compute[method] = float(prev_compute[method])
            compute_source[method] = "earlier run's xai.json"
        else:
            compute[method], compute_source[method] = None, "unknown"
        result["methods"][method] = res
        f = res["faithfulness"]
        log(f"[{name}] {method}: deletion {f['zero']['deletion_auc']:.3f}/"
            f"{f['normal_beats']['deletion_auc']:.3f} insertion {f['zero']['insertion_auc']:.3f}/"
            f"{f['normal_beats']['insertion_auc']:.3f} rho "
            f"{res.get('randomisation_rho', {}).get('mean', float('nan')):.2f} top3 "
            f"{res['leads_mi']['top3']} ({timings[method]:.0f} s)")
    known = [v for v in compute.values() if v is not None]
    result["seconds"] = {"total": time.time() - t_model, "by_method": timings,
                         "compute_by_method": compute, "compute_source": compute_source,
                         "compute_total": (float(sum(known)) if len(known) == len(compute)
                                           else None)}
    result["_examples"] = _examples(Path(name).name, model, x, data, prob, group, args, bounds)
    return result


def _examples(name: str, model: Any, x: np.ndarray, data: dict[str, Any], prob: np.ndarray,
              group: np.ndarray, args: argparse.Namespace, bounds: Any) -> list[str]:
    """12-lead overlays of the true-positive record with the median MI probability."""
    from detak.explain.lrp import NEEDS_BOUNDS
    from detak.explain.methods import SIGNED, attribute, parse_method
    from detak.explain.plots import plot_attribution_ecg

    tp = np.flatnonzero(group == "TP")
    if not len(tp):
        return []
    i = int(tp[np.argsort(prob[tp])[len(tp) // 2]])
    rid = int(data["ids"][i])
    files = []
    for method in [m for m in EXAMPLE_METHODS if m in args.methods]:
        kind, comp = parse_method(method)
        a = attribute(model, x[i:i + 1], MI, method,
                      bounds=bounds if comp in NEEDS_BOUNDS else None, ig_steps=args.ig_steps)
        slug = method.replace(":", "_")
        out = plot_attribution_ecg(
            data["x_mv"][i], a[0], 100.0, Path(args.out) / f"example_{name}_{slug}.png",
            signed=kind in SIGNED, title=f"PTB-XL {rid} · {name} · {method} · MI p = "
            f"{prob[i]:.2f} (true positive)", formats=("png", "svg"))
        files += [p.name for p in out]
    return files


# --- outputs -------------------------------------------------------------------------------

def _fmt(v: Any, nd: int = 3) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "—"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def _no_leads(method: str) -> str | None:
    """Why a method has no lead information (None if it has)."""
    from detak.explain.methods import lead_resolved, parse_method

    kind, _ = parse_method(method)
    if kind == "random" or lead_resolved(method):
        return None
    return "— (time only)" if kind == "gradcam" else "— (flat rule: uniform)"


def headline_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, r in results.items():
        for method, m in r["methods"].items():
            f = m["faithfulness"]
            rows.append([name, method, _fmt(f["zero"]["deletion_auc"]),
                         _fmt(f["normal_beats"]["deletion_auc"]),
                         _fmt(f["zero"]["insertion_auc"]),
                         _fmt(f["normal_beats"]["insertion_auc"]),
                         _fmt(m.get("randomisation_rho", {}).get("mean"), 2),
                         *((_no_leads(method), "—") if _no_leads(method) else
                           (" ".join(m["leads_mi"]["top3"]), str(m["leads_mi"]["utilisation"])))])
    return rows


HEADLINE_HEADER = ["model", "method", "deletion AUC (zero) ↓", "deletion AUC (normal beats) ↓",
                   "insertion AUC (zero) ↑", "insertion AUC (normal beats) ↑",
                   "randomisation ρ ↓", "top-3 leads (MI)", "leads for 80 %"]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def findings(results: dict[str, Any]) -> list[str]:
    """Data-driven one-liners: best methods per baseline, which do not beat random, what the
    baselines mean to the model, randomisation, segments."""
    out = []
    for name, r in results.items():
        ms = {k: v for k, v in r["methods"].items() if v["kind"] != "random"}
        rnd = r["methods"].get("random")
        for b in ("zero", "normal_beats"):
            if not ms:
                break
            d = {k: v["faithfulness"][b]["deletion_auc"] for k, v in ms.items()}
            i = {k: v["faithfulness"][b]["insertion_auc"] for k, v in ms.items()}
            best_d, best_i = min(d, key=d.get), max(i, key=i.get)
            line = (f"{name}, baseline `{b}`: lowest deletion AUC {best_d} ({d[best_d]:.3f}), "
                    f"highest insertion AUC {best_i} ({i[best_i]:.3f})")
            if rnd:
                rd = rnd["faithfulness"][b]["deletion_auc"]
                ri = rnd["faithfulness"][b]["insertion_auc"]
                worse = sorted(k for k in ms if d[k] >= rd or i[k] <= ri)
                line += (f"; random: {rd:.3f} / {ri:.3f}; not better than random on both: "
                         + (", ".join(worse) if worse else "none"))
            out.append(line + ".")
        pb = r["p_mi_of_baseline_mean"]
        out.append(f"{name}: p(MI) of the all-zero (flat) input is {pb['zero']:.3f} against "
                   f"{pb['normal_beats']:.3f} for the normal-beats baseline (mean over the "
                   f"MI-positive records, whose own mean is {r['p_mi_mean_pos']:.3f}): for this "
                   "model a flat line is not an absence of MI evidence, a normal ECG is.")
        rho = {k: v["randomisation_rho"]["mean"] for k, v in ms.items()
               if "randomisation_rho" in v}
        if rho:
            out.append(f"{name}: randomisation ρ " + ", ".join(f"{k} {v:.2f}" for k, v in
                                                           sorted(rho.items(), key=lambda t: t[1]))
                       + " (every method changes when the top layers are re-initialised; "
                       "ρ ≥ 0.5 means half the ranking survives, largely the QRS complexes' "
                       "large inputs).")
        tops = {}
        for k, v in ms.items():
            seg = v["segments"].get("TP")
            if seg:
                t = {n: seg[n]["top"] for n in ("P", "PQ", "QRS", "ST", "T", "TP") if n in seg}
                best = max(t, key=lambda n: t[n] if np.isfinite(t[n]) else -1)
                tops[k] = f"{best} {t[best]:.0%}"
        if tops:
            out.append(f"{name}, true positives, densest segment most often: "
                       + "; ".join(f"{k}: {v}" for k, v in tops.items()) + ".")
    return out


def s1_comparison(results: dict[str, Any]) -> tuple[list[list[str]], list[str]]:
    """Per model × method: the mean score of S1's most and least relevant leads, how many of
    our top-4 / bottom-4 leads are S1's, V1's rank; and one sentence per model."""
    rows, notes = [], []
    util: dict[str, float] = {}
    v1: dict[str, float] = {}
    for name, r in results.items():
        agree_top, agree_bottom, n = 0, 0, 0
        per_record, v1_share = [], []
        for method, m in r["methods"].items():
            if m["kind"] == "random" or _no_leads(method):
                continue   # random: no signal; gradcam, flat: uniform over leads by construction
            per_record.append(m["leads_mi"]["utilisation_per_record"])
            v1_share.append(m["leads_mi"]["mean"]["V1"])
            mean = m["leads_mi"]["mean"]
            rank = m["leads_mi"]["rank"]
            top4, bottom4 = set(rank[:4]), set(rank[-4:])
            most = sum(mean[k] for k in S1_MOST)
            least = sum(mean[k] for k in S1_LEAST)
            rows.append([name, method, f"{most:.3f}", f"{least:.3f}",
                         f"{len(top4 & set(S1_MOST))}/4", f"{len(bottom4 & set(S1_LEAST))}/4",
                         f"{rank.index('V1') + 1}", " ".join(rank[:4]), " ".join(rank[-4:])])
            agree_top += len(top4 & set(S1_MOST))
            agree_bottom += len(bottom4 & set(S1_LEAST))
            n += 1
        if n:
            notes.append(f"{name}: over {n} lead-resolved methods, {agree_top}/{4 * n} of our "
                         f"top-4 leads are among S1's most relevant (V1, V2, V5, V6) and "
                         f"{agree_bottom}/{4 * n} of our bottom-4 among S1's least relevant "
                         f"(III, aVR, V3, V4); chance is 4/3 of 4 each (1/3 of slots).")
            util[name] = float(np.mean(per_record))
            v1[name] = float(np.mean(v1_share))
    if v1:
        order = sorted(v1, key=lambda k: -v1[k])
        notes.append("V1's share of |relevance| (mean over the lead-resolved methods; uniform "
                     "1/12 = 0.083): " + ", ".join(f"{k} {v1[k]:.3f}" for k in order)
                     + f"; largest: {order[0]} (S1: AlexNet-1D leans on V1).")
    if util:
        order = sorted(util, key=lambda k: -util[k])
        notes.append("lead utilisation (leads carrying 80 % of |relevance|, per MI-positive "
                     "record, mean over the lead-resolved methods): "
                     + ", ".join(f"{k} {util[k]:.1f}" for k in order)
                     + f"; most leads: {order[0]} (S1: InceptionTime uses the most leads).")
    return rows, notes


def write_outputs(results: dict[str, Any], data: dict[str, Any], args: argparse.Namespace,
                  skipped: dict[str, str], seconds: float, command: str) -> Path:
    from detak.explain.plots import plot_curves, plot_lead_relevance

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fr = np.linspace(0, 1, args.steps + 1)
    figures: list[str] = []
    for name, r in results.items():
        figures += r.pop("_examples", [])
        for bname in ("zero", "normal_beats"):
            for kind in ("deletion", "insertion"):
                curves = {m: np.asarray(v["faithfulness"][bname][f"{kind}_curve"])[None]
                          for m, v in r["methods"].items()}
                p = plot_curves(fr, curves, out / f"curves_{name}_{kind}_{bname}.png",
                                title=f"{name}: {kind}, baseline {bname} "
                                f"({r['n_mi_pos']} MI-positive fold-9 records)", kind=kind)
                figures.append(p.name)
        scores = {m: v["leads_mi"]["mean"] for m, v in r["methods"].items()
                  if v["kind"] != "random" and not _no_leads(m)}
        p = plot_lead_relevance(scores, out / f"lead_relevance_{name}_MI.png",
                                title=f"{name}: lead relevance for MI ({r['n_mi_pos']} "
                                "MI-positive fold-9 records)")
        figures.append(p.name)
    per_model = [r["seconds"].get("compute_total") for r in results.values()]
    doc = {"command": command, "seconds": seconds, "skipped": skipped,
           "compute_seconds": (float(sum(per_model)) if per_model and
                               all(v is not None for v in per_model) else None),
           "records": {"fold": 9, "full": bool(args.full), "n": int(len(data["ids"])),
                       "n_pos": int((data["y"][:, MI] == 1).sum()),
                       "n_neg": int((data["y"][:, MI] == 0).sum()), "seed": args.seed,
                       "ecg_ids": [int(i) for i in data["ids"]]},
           "settings": {"methods": list(args.methods), "steps": args.steps,
                        "ig_steps": args.ig_steps, "template_records": args.template_records,
                        "shap_background": args.shap_background,
                        "shap_samples": args.shap_samples,
                        "cell_ms": 40, "threads": args.threads},
           "models": results, "figures": sorted(figures)}
    (out / "xai.json").write_text(json.dumps(doc, indent=1))
    (out / "README.md").write_text(_readme(doc, results, skipped, data, args))
    return out


def _readme(doc: dict[str, Any], results: dict[str, Any], skipped: dict[str, str],
            data: dict[str, Any], args: argparse.Namespace) -> str:
    rec = doc["records"]
    lines = [
        "# Explanations of the 12-lead CNNs on PTB-XL fold 9 (issue 7, S1's analysis)",
        "",
        "Generated by `benchmarks/xai_report.py`; do not edit by hand. Command:",
        "",
        f"    {doc['command']}",
        "",
        provenance_line(command=doc["command"], libraries=LIBRARIES),
        "",
        f"Run time: this invocation {doc['seconds'] / 60:.1f} min (cached units are not "
        "recomputed); computing every unit: "
        + (f"{doc['compute_seconds'] / 60:.1f} min" if doc.get("compute_seconds") is not None
           else "unknown (some units predate the time records)")
        + f" on {args.threads} torch thread{'s' if args.threads > 1 else ''} of a shared 2-core "
        "machine (per model below; the per-method times are in `xai.json`).",
        "",
        ("Records: every labelled fold-9 record" if rec["full"] else
         f"Records: a stratified subset of fold 9 (the validation fold; fold 10 is not in the "
         f"shared copy): {rec['n_pos']} MI-positive and {rec['n_neg']} MI-negative records, "
         f"each a random sample (seed {rec['seed']}) of its stratum; the ecg_ids are in "
         "`xai.json`.") + f" (Fold 9 has {data['n_labelled']} labelled records, "
        f"{data['n_labelled_pos']} of them MI-positive.)",
        "",
        "Models: " + (", ".join(results) or "none") + "." + (
            " Skipped: " + "; ".join(f"{k} ({v})" for k, v in skipped.items()) + "."
            if skipped else ""),
        "",
        "## Headline",
        "",
        "Faithfulness on the MI-positive records (probability of MI as lead × 40 ms cells are "
        "removed / restored in order of attribution; 0-1 area, " + f"{args.steps} steps). "
        "Baselines: `zero` = the training mean (flat line); `normal beats` = the same cells of "
        "a normal ECG with the record's own rhythm (a population NORM median beat placed at the "
        "record's beats: the perturbed input stays an ECG). Randomisation ρ: Spearman of "
        "|cell attribution| before / after re-initialising the head and the last conv block "
        "(low = the explanation depends on the learnt weights). Lead columns: S1's lead "
        "relevance for MI (Σ|R| per lead / Σ|R|), averaged over the MI-positive records; "
        "`leads for 80 %` = lead utilisation. `gradcam` has no lead axis (spread evenly); "
        "`gradcam_lead` is Grad-CAM split across leads by |input × gradient| (a derived view)."
        + (f" `shap`: expected gradients (shap.GradientExplainer) against "
           f"{args.shap_background} training records (folds 1-8), {args.shap_samples} samples "
           "per record; its sums over the lead × 40 ms cells are the cells' SHAP values (MI "
           "only)." if "shap" in args.methods else ""),
        "",
        wrap("xai", _table(HEADLINE_HEADER, headline_rows(results))),
        "",
    ]
    for name, r in results.items():
        lines += [f"Model `{name}`: MI threshold (max F1 on fold 9) "
                  f"{r['mi_threshold_f1_fold9']:.3f}; subset groups {r['groups']}; "
                  "mean p(MI) of the MI-positive records "
                  f"{r['p_mi_mean_pos']:.3f}, of their zero baseline "
                  f"{r['p_mi_of_baseline_mean']['zero']:.3f}, of their normal-beats baseline "
                  f"{r['p_mi_of_baseline_mean']['normal_beats']:.3f} (records without beats, "
                  f"zero fallback: {r['normal_baseline_fallbacks']}); compute "
                  + (f"{r['seconds']['compute_total'] / 60:.1f} min"
                     if r["seconds"].get("compute_total") is not None else "time unknown")
                  + ".", ""]
    lines += ["## Findings (computed)", ""] + [f"- {f}" for f in findings(results)] + [""]
    # S1 comparison
    rows, notes = s1_comparison(results)
    lines += ["## Comparison with S1's lead findings", "",
              "S1: V1, V2, V5, V6 most relevant; III, aVR, V3, V4 least; AlexNet-1D leaning on "
              "V1. Below, for each lead-resolved method: the summed mean score of S1's four most "
              "and four least relevant leads (uniform use: 0.333 each), how many of our four "
              "most / least relevant leads are S1's, and V1's rank.", "",
              _table(["model", "method", "Σ score V1 V2 V5 V6", "Σ score III aVR V3 V4",
                      "our top-4 ∩ S1 most", "our bottom-4 ∩ S1 least", "V1 rank",
                      "our top-4", "our bottom-4"], rows), ""]
    lines += [f"- {n}" for n in notes] + [""]
    # lead relevance tables
    from detak.data.leads import STANDARD_LEADS

    lines += ["## Lead relevance for MI (mean over MI-positive records)", ""]
    lr_rows = []
    for name, r in results.items():
        for method, m in r["methods"].items():
            lr_rows.append([name, method] + [f"{m['leads_mi']['mean'][k]:.3f}"
                                             for k in STANDARD_LEADS]
                           + [_fmt(m["leads_mi"]["utilisation_per_record"], 1)])
    lines += [_table(["model", "method", *STANDARD_LEADS, "leads for 80 % (per record)"],
                     lr_rows), ""]
    lines += ["## Lead relevance by class (records of the subset positive for the class)", ""]
    cls_rows = []
    for name, r in results.items():
        for method, m in r["methods"].items():
            if m["kind"] == "random" or _no_leads(method):
                continue  # no lead information
            for cname, s in m["leads_by_class"].items():
                cls_rows.append([name, method, cname, str(s["n"]), " ".join(s["top3"]),
                                 str(s["utilisation"])])
    lines += [_table(["model", "method", "class", "records", "top-3 leads", "leads for 80 %"],
                     cls_rows), ""]
    # segments
    lines += ["## Wave segments (S1's Tables 8-10, automated)", "",
              "Per outcome group (MI threshold above): each segment's share of the record's "
              "positive attribution divided by its share of the lead-samples (density; 1 = as "
              "much as its duration predicts), mean over records; `top` = the segment most often "
              "the densest. QRS onset = first 40 ms of the QRS, J point = QRS offset ± 40 ms "
              "(both overlap the partition). Delineation: `detak.signal.intervals` per beat and "
              "lead; samples without a segment (record ends, missing boundaries) are left out.",
              ""]
    seg_rows = []
    for name, r in results.items():
        for method, m in r["methods"].items():
            for g in GROUPS:
                s = m["segments"].get(g)
                if not s:
                    continue
                tops = {k: v.get("top", float("nan")) for k, v in s.items()
                        if k in ("P", "PQ", "QRS", "ST", "T", "TP")}
                top = max(tops, key=lambda k: -1 if not np.isfinite(tops[k]) else tops[k])
                seg_rows.append([name, method, g, str(int(s["_records"]["n"]))]
                                + [_fmt(s.get(k, {}).get("density"), 2) for k in SEGMENT_COLUMNS]
                                + [f"{top} ({tops[top]:.0%})"])
    lines += [_table(["model", "method", "group", "records", *SEGMENT_COLUMNS, "top"],
                     seg_rows), ""]
    # conservation
    cons = [[name, method, _fmt(m["conservation_ratio"]["median"], 2),
             f"{m['conservation_ratio']['q25']:.2f} – {m['conservation_ratio']['q75']:.2f}"]
            for name, r in results.items() for method, m in r["methods"].items()
            if "conservation_ratio" in m]
    if cons:
        lines += ["## LRP conservation on the trained models", "",
                  "Σ input relevance / MI logit on the MI-positive records. Exact (1.000) only "
                  "for bias-free networks and the ε/0 rules (tested in "
                  "`tests/explain/test_lrp.py`); here biases (and the merged batch-norm "
                  "shifts) absorb or inject relevance, and z+, γ, αβ and ε = 0.25 are not "
                  "conservative by design.", "",
                  _table(["model", "composite", "median", "IQR"], cons), ""]
    lines += ["## Figures", ""] + [f"- `{f}`" for f in doc["figures"]] + [""]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    p.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS))
    p.add_argument("--n-pos", type=int, default=250, help="MI-positive records (default 250)")
    p.add_argument("--n-neg", type=int, default=250, help="MI-negative records (default 250)")
    p.add_argument("--full", action="store_true", help="every labelled fold-9 record")
    p.add_argument("--steps", type=int, default=20, help="insertion/deletion steps")
    p.add_argument("--ig-steps", type=int, default=32)
    p.add_argument("--shap-background", type=int, default=64,
                   help="shap: training records in the background sample")
    p.add_argument("--shap-samples", type=int, default=32,
                   help="shap: expected-gradient samples per record (ig's cost at ig-steps)")
    p.add_argument("--template-records", type=int, default=200,
                   help="NORM-only fold-1 records for the normal-beat template")
    p.add_argument("--mi-only", action="store_true",
                   help="skip the lead relevance of the other classes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="docs/results/xai")
    p.add_argument("--cache", default=None, help="cache folder (default cache_dir()/explain/"
                   "report)")
    p.add_argument("--fresh", action="store_true", help="recompute cached units")
    p.add_argument("--progress", action="store_true")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from detak.data.paths import cache_dir
    from detak.explain.methods import method_label
    from detak.export.predict import ModelNotFoundError, resolve_model_dir

    torch.set_num_threads(args.threads)
    args.methods = [method_label(m) for m in args.methods]
    t_start = time.time()
    available, skipped = [], {}
    for name in args.models:
        try:
            resolve_model_dir(name)
            available.append(name)
        except ModelNotFoundError as err:
            skipped[name] = "no trained model found"
            log(f"skipping {name}: {err}")
    if not available:
        log("no model to explain: train one with `detak train --model NAME`")
        return 2
    data = load_data(args)
    cache_root = Path(args.cache) if args.cache else cache_dir() / "explain" / "report"
    previous: dict[str, Any] = {}
    prev_file = Path(args.out) / "xai.json"
    if prev_file.is_file() and not args.fresh:
        try:
            prev = json.loads(prev_file.read_text())
            same = (prev.get("records", {}).get("ecg_ids") == [int(i) for i in data["ids"]]
                    and all(prev.get("settings", {}).get(k) == getattr(args, k)
                            for k in ("steps", "ig_steps", "template_records")))
            previous = prev.get("models", {}) if same else {}
        except (OSError, ValueError):
            previous = {}
    results = {}
    for name in available:
        results[Path(name).name] = run_model(name, data, args, cache_root,
                                             previous.get(Path(name).name))
    argv_list = list(argv) if argv is not None else sys.argv[1:]
    command = " ".join([".venv/bin/python benchmarks/xai_report.py", *argv_list])
    out = write_outputs(results, data, args, skipped, time.time() - t_start, command)
    print(_table(HEADLINE_HEADER, headline_rows(results)))
    print(f"\nwritten: {out}/README.md, xai.json and figures ({(time.time() - t_start) / 60:.1f}"
          " min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Field robustness of the MI model (issue 18, item 4): fold-9 macro and MI AUC under the
`detak.signal.perturb` conditions at two severities, with one lead missing (each of the 12),
with the three limb-electrode reversals, and through the kiosk's 500 Hz input path.

Data: PTB-XL strat fold 9, the 2146 labelled records (fold 10 never read), raw 100 Hz signals
in mV. Model: the int8 edge model as the kiosk loads it (`detak.export.predict.load_model`
with ``runtime="auto", precision="int8"``, `detak.kiosk.screening`); ``--models`` adds others
(the teachers ``resnet1d``, ``inceptiontime`` run on torch, host only). AUC is computed on the
raw logits (calibration is one monotone map per class: it changes no AUC).

Input path: each condition perturbs the raw mV signal, then the kiosk's preprocessing runs
(`detak.models.cnn_data.preprocess_recording`: resample to 100 Hz when needed, S1's baseline
removal and 40 Hz low-pass, the model's standardizer); at 100 Hz it is applied to the whole
fold at once (`preprocess_array`, equal to it row by row). Conditions (seeded per record):

* noise bursts (`noise_bursts`, EMG-like 20-150 Hz, capped at 45 Hz at 100 Hz): mild one 1-s
  burst at 0.5 × each lead's QRS amplitude, strong two 1-s bursts at 1 ×;
* baseline wander (`baseline_wander`, 0.3 Hz): mild 0.5 mV peak (1 mV peak-to-peak, the quality
  gate's warning level), strong 1.5 mV peak (3 mV, its rejection level);
* mains hum (`mains_hum`, 50 Hz): added at 500 Hz (the 100 Hz records upsampled; 50 Hz does not
  exist at 100 Hz) and taken through the kiosk's 500 → 100 Hz path: mild 0.1 mV, strong 0.5 mV;
* pacing spikes (`pacing_spikes`, 1.5 ms, 40 ms before each beat's steepest slope): added at
  500 Hz like the hum and taken through the kiosk's resampling: mild 1 mV, strong 3 mV (the
  kiosk's MI input path does not remove spikes; a non-paced ECG with spikes, so this measures
  the artefact, not paced rhythm);
* poor leads (`poor_lead` "noisy": in-band 3-30 Hz noise at half the QRS amplitude): mild one
  random lead, strong three;
* amplitude (not a `perturb` function: a gain on every lead, as a mis-set device gain): × 0.5
  and × 2;
* one lead missing: each lead in turn set to 0 mV (a flat lead). NB: the kiosk itself does not
  feed such a lead to the model — its quality gate rejects a flat lead and `mi_screen` then
  says "MI screening needs all 12 leads usable"; the rows show what the model would do if it
  ran, i.e. what the gate protects against;
* limb-electrode reversals (`swap_limb_electrodes`): LA/RA, LA/LL, RA/LL, with the share of
  records the reversal check (`detak.signal.lead_reversal`, here on its own slope-detected
  beats) flags, and the AUC of the records it lets through unflagged;
* 500 Hz input: PTB-XL's 500 Hz originals are not in this data copy
  (/work/shared/data/README.md), so the 100 Hz records are upsampled to 500 Hz
  (`filters.resample`) and go through the kiosk's own 500 → 100 Hz resampling: this measures
  the kiosk's resampling path, not new 500 Hz information.

Noise: 1000 patient resamples (seed 0) of the difference condition − clean (paired: the same
resampled records in both), 95 % percentile interval; a drop is "real" when the interval
excludes 0. Target: a macro AUC drop ≤ 0.01 under mild noise bursts and mild wander
(PASS/FAIL on the point estimate and on the interval's upper end).

Run: ``.venv/bin/python benchmarks/mi_robustness.py [--models edge resnet1d inceptiontime]
[--only NAME ...] [--max-records N] [--no-results]`` (edge alone: about 15 minutes on one
core, the README's table; perturbed logits are cached beside the clean ones,
`detak.export.fold_logits.logits_cache_dir`). With other models or ``--only`` the results go
to ``docs/results/mi_robustness_<models>.md`` (no README block): the torch teachers take
1.5-2.5 minutes per condition on one core, so they run on `TEACHER_CONDITIONS` only (noise,
wander, hum and pacing at 500 Hz, the reversals, 500 Hz input). ``edge-v1`` is the edge model
shipped before the distilled one (``training_state/edge-v1``, int8): with ``--models edge
edge-v1 resnet1d inceptiontime`` the results file holds every model's table.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _provenance import provenance_line
from mi_subgroups import _aucs
from readme_tables import RESULTS, write_results

LIBRARIES = ("onnxruntime",)
RESULTS_FILE = RESULTS / "mi_robustness.md"
FOLD = 9
N_BOOT = 1000
SEED = 0
KIOSK_FS = 500.0
TARGET_DROP = 0.01
TARGET_CONDITIONS = ("noise bursts, mild", "baseline wander, mild")
CACHE_VERSION = "1"
#: the conditions the torch teachers run on (a name containing one of these): 1.5-2.5 minutes a
#: condition on one core each, so not the poor-lead, gain and one-lead rows; the int8 edge
#: models run every condition
TEACHER_CONDITIONS = ("noise bursts", "baseline wander", "reversed", "500 Hz")
INT8_MODELS = ("edge", "edge-v1")


def runs_condition(model: str, condition: str) -> bool:
    """Whether ``model`` is measured under ``condition`` (the teachers: `TEACHER_CONDITIONS`).

    >>> runs_condition("edge", "amplitude × 2 (gain)"), runs_condition("resnet1d", "LA/RA reversed")
    (True, True)
    >>> runs_condition("inceptiontime", "poor lead, mild (1 lead)")
    False
    """
    return model in INT8_MODELS or any(t in condition for t in TEACHER_CONDITIONS)


# ------------------------------------------------------------------------------ conditions

def _per_record(fn: Callable[[np.ndarray, int], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    def run(x: np.ndarray) -> np.ndarray:
        return np.stack([fn(x[i], i) for i in range(len(x))]).astype(np.float32)
    return run


def _fiducials(x: np.ndarray) -> np.ndarray:
    from detak.signal.lead_reversal import _fiducials as fid

    return fid(x, 100.0)


def conditions() -> dict[str, tuple[str, Callable[[np.ndarray], np.ndarray], float]]:
    """{name: (group, perturbation of (N, 12, 1000) mV at 100 Hz, fs of the output)}."""
    from detak.data.leads import STANDARD_LEADS
    from detak.signal import filters
    from detak.signal import perturb as pt

    names = list(STANDARD_LEADS)
    fs = 100.0

    def poor(n_leads: int) -> Callable[[np.ndarray, int], np.ndarray]:
        def f(r: np.ndarray, i: int) -> np.ndarray:
            rng = np.random.default_rng([SEED, i, n_leads])
            y = r.copy()
            for lead in rng.choice(12, size=n_leads, replace=False):
                y[lead] = pt.poor_lead(r[lead], fs, "noisy", seed=rng)
            return y
        return f

    def spikes(mv: float) -> Callable[[np.ndarray], np.ndarray]:
        def f(x: np.ndarray) -> np.ndarray:
            up = filters.resample(x, fs, KIOSK_FS)
            out = []
            for i in range(len(up)):
                onsets = (_fiducials(x[i]) - 4) * 5     # ~40 ms before the steepest slope
                out.append(pt.pacing_spikes(up[i], KIOSK_FS, onsets[onsets > 10],
                                            amplitude_mv=mv, seed=[SEED, i]))
            return np.stack(out).astype(np.float32)
        return f

    def hum(mv: float) -> Callable[[np.ndarray], np.ndarray]:
        def f(x: np.ndarray) -> np.ndarray:
            up = filters.resample(x, fs, KIOSK_FS)
            return np.stack([pt.mains_hum(up[i], KIOSK_FS, 50.0, mv, seed=[SEED, i])
                             for i in range(len(up))]).astype(np.float32)
        return f

    out: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray], float]] = {
        "noise bursts, mild": ("noise", _per_record(lambda r, i: pt.noise_bursts(
            r, fs, n_bursts=1, relative_amplitude=0.5, seed=[SEED, i])), fs),
        "noise bursts, strong": ("noise", _per_record(lambda r, i: pt.noise_bursts(
            r, fs, n_bursts=2, relative_amplitude=1.0, seed=[SEED, i])), fs),
        "baseline wander, mild": ("noise", _per_record(lambda r, i: pt.baseline_wander(
            r, fs, amplitude_mv=0.5, seed=[SEED, i])), fs),
        "baseline wander, strong": ("noise", _per_record(lambda r, i: pt.baseline_wander(
            r, fs, amplitude_mv=1.5, seed=[SEED, i])), fs),
        "mains hum 50 Hz, mild (0.1 mV, at 500 Hz)": ("noise", hum(0.1), KIOSK_FS),
        "mains hum 50 Hz, strong (0.5 mV, at 500 Hz)": ("noise", hum(0.5), KIOSK_FS),
        "pacing spikes, mild (1 mV, at 500 Hz)": ("noise", spikes(1.0), KIOSK_FS),
        "pacing spikes, strong (3 mV, at 500 Hz)": ("noise", spikes(3.0), KIOSK_FS),
        "poor lead, mild (1 lead)": ("noise", _per_record(poor(1)), fs),
        "poor lead, strong (3 leads)": ("noise", _per_record(poor(3)), fs),
        "amplitude × 0.5 (gain)": ("noise", lambda x: (0.5 * x).astype(np.float32), fs),
        "amplitude × 2 (gain)": ("noise", lambda x: (2.0 * x).astype(np.float32), fs),
        "500 Hz input (upsampled, kiosk resampling)": (
            "rate", lambda x: filters.resample(x, fs, KIOSK_FS).astype(np.float32), KIOSK_FS),
    }
    for k, lead in enumerate(names):
        def zero(x: np.ndarray, k: int = k) -> np.ndarray:
            y = np.array(x, dtype=np.float32, copy=True)
            y[:, k] = 0.0
            return y
        out[f"lead {lead} missing (0 mV)"] = ("lead", zero, fs)
    for swap in pt.LIMB_SWAPS:
        out[f"{swap} reversed"] = ("reversal", lambda x, s=swap: np.stack(
            [pt.swap_limb_electrodes(r, names, s) for r in x]).astype(np.float32), fs)
    return out


def kiosk_input(x_mv: np.ndarray, fs: float, standardizer: Any) -> np.ndarray:
    """(N, 12, 1000) model input of (N, 12, n) mV at ``fs``: the kiosk's preprocessing
    (`preprocess_recording` per record off 100 Hz; `preprocess_array` at 100 Hz)."""
    from detak.data.leads import STANDARD_LEADS
    from detak.data.recording import Recording
    from detak.models.cnn_data import preprocess_array, preprocess_recording

    if fs == 100.0:
        return standardizer.transform(preprocess_array(x_mv)).astype(np.float32)
    return np.concatenate([preprocess_recording(Recording(r, fs, list(STANDARD_LEADS)),
                                                standardizer) for r in x_mv])


# ------------------------------------------------------------------------------ metrics

def resamples(patients: np.ndarray, y: np.ndarray, seed: int = SEED) -> list[np.ndarray]:
    """N_BOOT patient resamples (record indices) in which every class has both labels."""
    from detak.models.bootstrap import patient_resamples

    def both_labels(idx: np.ndarray) -> bool:
        s = y[idx].sum(axis=0)
        return bool(np.all((s > 0) & (s < len(idx))))

    return list(patient_resamples(patients, N_BOOT, seed, valid=both_labels))


def paired_diff(y: np.ndarray, z0: np.ndarray, z1: np.ndarray, mi: int,
                boots: list[np.ndarray], base: np.ndarray | None = None) -> np.ndarray:
    """(N_BOOT, 2) macro and MI AUC of ``z1`` minus ``z0`` on the same resamples; ``base``:
    ``z0``'s (N_BOOT, 2) AUCs on them when already computed (the clean model's, once)."""
    if base is None:
        base = np.asarray([_aucs(y[b], z0[b], mi) for b in boots])
    return np.asarray([_aucs(y[b], z1[b], mi) for b in boots]) - base


# ------------------------------------------------------------------------------ running

def _cache_path(loaded: Any, name: str, n: int) -> Any:
    from detak.export.fold_logits import logits_cache_dir, model_file
    from detak.models.model_card import sha256_file

    key = hashlib.sha256(f"{CACHE_VERSION}|{name}|{n}|{SEED}".encode()).hexdigest()[:16]
    sha = sha256_file(model_file(loaded))[:16]
    return logits_cache_dir() / "robustness" / (f"fold{FOLD:02d}_{loaded.runtime}-"
                                                f"{loaded.precision}_{sha}_{key}.npy")


def reversal_flags(name: str, n: int, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """Per record, whether the reversal check flags condition ``name`` (``compute()``: a
    bool array), cached beside the logits and keyed by the check's source code."""
    from detak.export.fold_logits import logits_cache_dir
    from detak.models.model_card import sha256_file
    from detak.signal import lead_reversal

    code = sha256_file(Path(lead_reversal.__file__))[:16]
    key = hashlib.sha256(f"{CACHE_VERSION}|{name}|{n}|{code}".encode()).hexdigest()[:16]
    path = logits_cache_dir() / "robustness" / f"fold{FOLD:02d}_reversal-check_{key}.npy"
    if path.is_file():
        return np.load(path)
    flags = np.asarray(compute(), dtype=bool)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, flags)
    return flags


def _logits(loaded: Any, x: np.ndarray, chunk: int = 256) -> np.ndarray:
    return np.concatenate([loaded.logits(x[s:s + chunk]) for s in range(0, len(x), chunk)])


def load(name: str) -> Any:
    """The model ``name`` as measured: ``edge`` (the shipped, distilled model) and ``edge-v1``
    (the one shipped before it, `teacher_ensemble.PREVIOUS_EDGE`) as int8 graphs the way the
    kiosk loads them, any other (the teachers) as torch fp32."""
    from teacher_ensemble import MODEL_SPECS, PREVIOUS_EDGE

    from detak.export.predict import load_model

    if name in ("edge", PREVIOUS_EDGE):
        return load_model(MODEL_SPECS[name], runtime="auto", precision="int8", threads=1)
    return load_model(name, runtime="torch", precision="fp32", threads=1)


def run(argv: list[str] | None = None) -> dict[str, Any]:
    """Compute, print and (unless --no-results) write the tables; returns the AUCs and paired
    drops per condition and model for benchmarks/mi_model.py."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["edge"],
                    help="edge (int8, kiosk runtime), edge-v1 (the previous edge model, int8) "
                         "and/or torch models, e.g. resnet1d inceptiontime")
    ap.add_argument("--max-records", type=int, default=None, help="first N records (smoke)")
    ap.add_argument("--only", nargs="*", default=None, help="condition names to run (smoke)")
    ap.add_argument("--no-results", action="store_true", help="print only")
    args = ap.parse_args(argv)
    from detak.data.ptbxl import open_ptbxl
    from detak.models.cnn_data import CLASSES
    from detak.signal.lead_reversal import check_limb_reversal

    t0 = time.time()
    libs = LIBRARIES + (("torch",) if set(args.models) - set(INT8_MODELS) else ())
    prov = provenance_line(libraries=libs)
    ptb = open_ptbxl()
    ids, raw = ptb.load_fold(FOLD)
    y_all = ptb.labels(ids, allow_unlabelled=True)
    keep = np.flatnonzero(y_all.sum(axis=1) > 0)
    if args.max_records:
        keep = keep[: args.max_records]
    ids, y = ids[keep], y_all[keep].astype(int)
    x = raw[keep].astype(np.float32) / np.float32(1000.0)
    patients = ptb.metadata.loc[ids]["patient_id"].to_numpy(np.int64)
    mi = list(CLASSES).index("MI")
    boots = resamples(patients, y)
    conds = conditions()
    if args.only:
        conds = {k: v for k, v in conds.items() if any(o in k for o in args.only)}
    models = {m: load(m) for m in args.models}
    from detak.export.fold_logits import fold_logits

    # clean logits: the cached fold logits (the same preprocessing at 100 Hz, `fold_arrays`)
    clean = {m: fold_logits(lm, FOLD)["logits"][keep].astype(np.float32)
             for m, lm in models.items()}
    base = {m: _aucs(y, z, mi) for m, z in clean.items()}
    base_boot = {m: np.asarray([_aucs(y[b], clean[m][b], mi) for b in boots]) for m in models}
    results: dict[str, dict[str, Any]] = {}
    flags: dict[str, tuple[np.ndarray, str]] = {}
    for cname, (group, fn, fs) in conds.items():
        tc = time.time()
        xp = None
        for m, lm in models.items():
            if not runs_condition(m, cname):
                continue
            path = _cache_path(lm, cname, len(ids))
            if path.is_file():
                z = np.load(path)
            else:
                if xp is None:
                    xp = fn(x)
                z = _logits(lm, kiosk_input(xp, fs, lm.standardizer)).astype(np.float32)
                path.parent.mkdir(parents=True, exist_ok=True)
                np.save(path, z)
            d = paired_diff(y, clean[m], z, mi, boots, base_boot[m])
            results.setdefault(cname, {})[m] = (_aucs(y, z, mi), d, group)
        if group == "reversal":
            def check(xp: np.ndarray | None = xp, fn: Any = fn, fs: float = fs) -> np.ndarray:
                xs = (fn(x) if xp is None else xp) if fs == 100.0 else x
                return np.array([check_limb_reversal(r, 100.0, _std_leads()).suspected
                                 is not None for r in xs])

            flags[cname] = (reversal_flags(cname, len(ids), check), cname.split()[0])
        print(f"{cname}: {time.time() - tc:.0f} s", file=sys.stderr)
    none_flags = reversal_flags("as recorded", len(ids), lambda: np.array(
        [check_limb_reversal(r, 100.0, _std_leads()).suspected is not None for r in x]))

    # ------------------------------------------------------------------ tables
    text_blocks = []
    readme_rows = []
    for m in models:
        b0 = base[m]
        ci0 = np.quantile(base_boot[m], [0.025, 0.975], axis=0)
        rows = [f"**{m}** ({models[m].precision} on {models[m].runtime}): clean macro AUC "
                f"{b0[0]:.4f} [{ci0[0, 0]:.4f}, {ci0[1, 0]:.4f}], MI AUC {b0[1]:.4f} "
                f"[{ci0[0, 1]:.4f}, {ci0[1, 1]:.4f}] ({len(ids)} records, "
                f"{len(np.unique(patients))} patients).", "",
                "| condition | macro AUC | drop [95 % CI] | MI AUC | drop [95 % CI] | real? |",
                "|---|---|---|---|---|---|"]
        for cname, per in results.items():
            if m not in per:
                continue
            (mac, mia), d, _g = per[m]
            lo, hi = np.quantile(d, [0.025, 0.975], axis=0)
            drop = (b0[0] - mac, b0[1] - mia)
            real = []
            if hi[0] < 0:
                real.append("macro")
            if hi[1] < 0:
                real.append("MI")
            rows.append(f"| {cname} | {mac:.4f} | {drop[0]:+.4f} [{-hi[0]:+.4f}, "
                        f"{-lo[0]:+.4f}] | {mia:.4f} | {drop[1]:+.4f} [{-hi[1]:+.4f}, "
                        f"{-lo[1]:+.4f}] | {', '.join(real) or 'no'} |")
            if m == "edge" and _g != "lead":
                readme_rows.append(f"| {cname} | {mac:.3f} | {drop[0]:+.3f} "
                                   f"[{-hi[0]:+.3f}, {-lo[0]:+.3f}] | {mia:.3f} | "
                                   f"{drop[1]:+.3f} [{-hi[1]:+.3f}, {-lo[1]:+.3f}] |")
        verdicts = []
        for cname in TARGET_CONDITIONS:
            if cname not in results:
                continue
            if m not in results[cname]:
                continue
            (mac, _), d, _g = results[cname][m]
            drop = b0[0] - mac
            upper = -np.quantile(d[:, 0], 0.025)
            verdicts.append(f"{cname}: macro drop {drop:+.4f} (95 % upper {upper:+.4f}) → "
                            f"{'PASS' if drop <= TARGET_DROP else 'FAIL'} on the estimate, "
                            f"{'PASS' if upper <= TARGET_DROP else 'FAIL'} on the interval")
        leads = [(c, results[c][m]) for c in results
                 if m in results[c] and results[c][m][2] == "lead"]
        if leads:
            worst = max(leads, key=lambda t: b0[0] - t[1][0][0])
            verdicts.append(f"One lead missing: worst {worst[0]} (macro drop "
                            f"{b0[0] - worst[1][0][0]:+.4f}, MI drop "
                            f"{b0[1] - worst[1][0][1]:+.4f}); the kiosk's gate rejects a flat "
                            "lead and does not run the model (see above).")
        text_blocks += rows + ["", f"Target (macro AUC drop ≤ {TARGET_DROP} under mild noise "
                               "and wander):", *[f"- {v}" for v in verdicts], ""]
    rev_lines = ["| reversal | flagged by the reversal check | edge MI AUC, all | edge MI AUC, "
                 "records not flagged | edge macro AUC, not flagged |", "|---|---|---|---|---|"]
    if "edge" in models:
        for cname, (flag, sw) in flags.items():
            (mac, mia), _d, _g = results[cname]["edge"]
            z = np.load(_cache_path(models["edge"], cname, len(ids)))
            ok = ~flag
            sub = (_aucs(y[ok], z[ok], mi) if ok.sum() > 20 and 0 < y[ok, mi].sum() < ok.sum()
                   else (float("nan"), float("nan")))
            rev_lines.append(f"| {sw} | {flag.mean():.3f} ({int(flag.sum())}/{len(flag)}) | "
                             f"{mia:.4f} | {sub[1]:.4f} ({int(ok.sum())} records) | "
                             f"{sub[0]:.4f} |")
    rev_lines.append(f"| none (as recorded) | {np.mean(none_flags):.3f} "
                     f"({int(np.sum(none_flags))}/{len(x)}) | — | — | — |")
    head = (f"PTB-XL fold 9 ({len(ids)} labelled records), input perturbed then taken through "
            "the kiosk's preprocessing; drop = clean − perturbed AUC; 95 % interval: 1000 "
            "patient resamples of the paired difference; real = the interval excludes 0.")
    readme = [head.replace("; real = the interval excludes 0", "; a drop is real when its "
                           "interval excludes 0"), "",
              "| condition (edge int8, kiosk runtime) | macro AUC | drop [95 % CI] | MI AUC | "
              "drop [95 % CI] |", "|---|---|---|---|---|", *readme_rows]
    readme_lead = []
    if "edge" in models:
        b0 = base["edge"]
        lead_d = [(c.split()[1], b0[0] - results[c]["edge"][0][0],
                   b0[1] - results[c]["edge"][0][1]) for c in results
                  if results[c]["edge"][2] == "lead"]
        if lead_d:
            readme_lead = ["", "One lead at 0 mV (what the model would do; the kiosk's gate "
                           "rejects a flat lead and does not run it), macro / MI AUC drop: "
                           + "; ".join(f"{ld} {a:+.3f} / {b:+.3f}" for ld, a, b in lead_d)
                           + "."]
        readme += [*readme_lead, "",
                   f"Clean: macro {b0[0]:.3f}, MI {b0[1]:.3f}. Limb reversals and the "
                   "reversal check (on its own beats):", "", *rev_lines, "",
                   *[t for t in text_blocks if t.startswith("- ")][:2]]
    run_line = f"_Run time {time.time() - t0:.0f} s._"
    full = "\n".join([head, "", *text_blocks, "Limb reversals:", "", *rev_lines, "",
                      run_line, "", prov])
    print(full)
    out = {"base": base, "results": results, "records": len(ids),
           "runs_as": {m: f"{lm.precision} on {lm.runtime}" for m, lm in models.items()}}
    if not args.no_results:
        if "edge" not in args.models or args.only or args.max_records:   # partial: own file
            name = "_".join(m for m in args.models if m != "edge") or "partial"
            path = write_results(RESULTS / f"mi_robustness_{name}.md",
                                 f"Field robustness, {', '.join(args.models)} (PTB-XL fold 9)",
                                 prov, full, {})
            print(f"\nwritten: {path}")
            return out
        path = write_results(RESULTS_FILE, "Field robustness of the MI model (PTB-XL fold 9)",
                             prov, full, {"mi_robustness": "\n".join([*readme, "", prov])})
        print(f"\nwritten: {path}")
    return out


def main(argv: list[str] | None = None) -> int:
    run(argv)
    return 0


def _std_leads() -> list[str]:
    from detak.data.leads import STANDARD_LEADS

    return list(STANDARD_LEADS)


if __name__ == "__main__":
    sys.exit(main())

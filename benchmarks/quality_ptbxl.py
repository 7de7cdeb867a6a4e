"""Signal-quality check (detak.signal.quality) against PTB-XL's noise annotations, plus the LUDB
measurements behind its thresholds.

PTB-XL part (default fold 9, the validation fold; ``--fold`` for others, several allowed):
  1. verdicts of records with no noise annotation vs records with each annotation type
     (baseline_drift, static_noise, burst_noise, electrodes_problems);
  2. per-lead flags vs the leads the annotations name (electrodes_problems listed one by one);
  3. which checks fire on annotation-clean records;
  4. the clean-lead percentiles the thresholds are set from, and how well each measure
     separates annotated leads from clean ones (ROC AUC);
  5. neurokit2's zhao2018 and templatematch on the clean records.
The annotations are a proxy, not a ground truth of usability: technicians noted what they saw,
many noted problems are mild, and some strong wander went unnoted.

LUDB part (``--no-ludb`` to skip): the clean-lead maxima of the clipping and powerline measures
(500 Hz), and an EMG-like noise sweep on lead II (at 500 Hz and decimated to 100 Hz) giving the
in-band noise measure against neurokit2's R-peak F1 (vs the cardiologists' QRS annotations).

    python benchmarks/quality_ptbxl.py                 # fold 9 + LUDB, ~5 min on 2 cores
    python benchmarks/quality_ptbxl.py --fold 1 --fold 2 --jobs 4 --no-ludb
    python benchmarks/quality_ptbxl.py --limit 200     # quick look
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import warnings
from collections import Counter
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
from _provenance import provenance, provenance_line

from detak.data.leads import STANDARD_LEADS
from detak.data.ludb import load_ludb
from detak.data.ptbxl import open_ptbxl
from detak.data.recording import Recording
from detak.signal.filters import lowpass
from detak.signal.quality import DEFAULT_THRESHOLDS, assess_quality

ANNOTATIONS = ("baseline_drift", "static_noise", "burst_noise", "electrodes_problems")
# which check should answer which annotation (a reason containing this text)
MATCHING_CHECK = {"baseline_drift": "baseline wander", "static_noise": "noise",
                  "burst_noise": "noise", "electrodes_problems": ""}

# ---------------------------------------------------------------------------- annotations

_UP = [name.upper() for name in STANDARD_LEADS]
_L = r"(?:AV[RLF]|ALF|V[1-6]|III|II|I)"
_RANGE = re.compile(rf"(?<![A-Z])({_L})\s*-+\s*(V?[1-6]|{_L})(?![A-Z])")
_ONE = re.compile(rf"(?<![A-Z])({_L})(?![A-Z])")


def annotated_leads(text: object) -> set[str] | None:
    """Leads a PTB-XL annotation names: None if the field is empty, all 12 for "alles"/"alle"/
    "noisy recording", ranges in standard order ("I-AVF", "v1-6"), "ALF" read as aVF; an empty
    set when no lead can be read (e.g. "mittel", "stark", "Elektroden vertauscht")."""
    if not isinstance(text, str) or not text.strip(" ,"):
        return None
    t = re.sub(r"V\s+([1-6])", r"V\1", text.upper().replace("?", "").replace(".", ","))
    if re.search(r"\bALLE?S?\b|NOISY RECORDING", t):
        return set(STANDARD_LEADS)
    out: set[str] = set()
    for a, b in _RANGE.findall(t):
        a, b = ("AVF" if a == "ALF" else a), ("AVF" if b == "ALF" else b)
        if a.startswith("V") and b.isdigit():
            b = "V" + b
        lo, hi = sorted((_UP.index(a), _UP.index(b)))
        out |= set(STANDARD_LEADS[lo: hi + 1])
    rest = re.sub(r"(V[1-6])(?=V[1-6])", r"\1 ", _RANGE.sub(" ", t))
    for a in _ONE.findall(rest):
        out.add(STANDARD_LEADS[_UP.index("AVF" if a == "ALF" else a)])
    return out


# ---------------------------------------------------------------------------- PTB-XL run

_FOLD: dict[str, np.ndarray] = {}


def _assess(i: int) -> list[dict]:
    ecg_id = int(_FOLD["ids"][i])
    rec = Recording(_FOLD["x"][i].astype(np.float32) / 1000.0, 100.0, STANDARD_LEADS,
                    name=f"ptbxl:{ecg_id}")
    rep = assess_quality(rec)
    return [{"ecg_id": ecg_id, "lead": lead, "lead_verdict": lq.verdict,
             "rec_verdict": rep.verdict, "reference": rep.reference_lead, "n_beats": rep.n_beats,
             "reasons": " | ".join(lq.reasons), "rec_reasons": " | ".join(rep.reasons),
             **lq.metrics} for lead, lq in rep.per_lead.items()]


def run_fold(fold: int, limit: int | None, jobs: int) -> tuple[pd.DataFrame, float]:
    ids, x = open_ptbxl().load_fold(fold)
    n = len(ids) if limit is None else min(limit, len(ids))
    _FOLD.update(ids=np.asarray(ids[:n]), x=np.asarray(x[:n]))
    t0 = time.perf_counter()
    if jobs > 1:
        with get_context("fork").Pool(jobs) as pool:
            rows = [r for rr in pool.imap(_assess, range(n), chunksize=16) for r in rr]
    else:
        rows = [r for i in range(n) for r in _assess(i)]
    per_rec = (time.perf_counter() - t0) * jobs / max(n, 1)
    out = pd.DataFrame(rows)
    out["fold"] = fold
    return out, per_rec


def label(df: pd.DataFrame) -> pd.DataFrame:
    """Add, per row (lead), the annotation flags: <ann>_rec (record has it) and <ann> (it
    names this lead, or names no lead)."""
    meta = open_ptbxl().metadata
    for ann in ANNOTATIONS:
        named = {e: annotated_leads(meta.at[e, ann]) for e in df["ecg_id"].unique()}
        df[ann + "_rec"] = df["ecg_id"].map(lambda e, nm=named: nm[e] is not None)
        df[ann] = [named[e] is not None and (lead in named[e] or not named[e])
                   for e, lead in zip(df["ecg_id"], df["lead"], strict=True)]
        df[ann + "_text"] = df["ecg_id"].map(lambda e, a=ann: meta.at[e, a])
    df["clean"] = ~df[[a + "_rec" for a in ANNOTATIONS]].any(axis=1)
    return df


def _pct(s: pd.Series) -> str:
    return f"{100 * s.mean():5.1f} %" if len(s) else "    -"


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """ROC AUC of a score (higher = positive), ties counted half."""
    pos, neg = np.asarray(pos, float), np.asarray(neg, float)
    pos, neg = pos[np.isfinite(pos)], neg[np.isfinite(neg)]
    if not len(pos) or not len(neg):
        return float("nan")
    allv = np.concatenate([pos, neg])
    ranks = pd.Series(allv).rank().to_numpy()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def report_ptbxl(df: pd.DataFrame, per_rec: float, folds: list[int]) -> dict:
    out: dict = {"folds": folds, "seconds_per_record_one_core": round(per_rec, 3)}
    recs = df.groupby("ecg_id").first()
    print(f"\n=== PTB-XL fold(s) {folds}: {len(recs)} records, {len(df)} leads; "
          f"{per_rec:.2f} s per record on one core ===")
    print("Proxy only: the annotations are technicians' notes, not a ground truth of usability.\n")

    print("1. Recording verdicts by annotation")
    print(f"{'group':<30}{'records':>8}{'ok':>10}{'warn':>10}{'reject':>10}")
    groups = {"no noise annotation": recs["clean"]}
    groups |= {ann: recs[ann + "_rec"] for ann in ANNOTATIONS}
    groups["any annotation"] = ~recs["clean"]
    out["verdicts"] = {}
    for name, mask in groups.items():
        v = recs.loc[mask, "rec_verdict"]
        row = {k: float((v == k).mean()) if len(v) else float("nan")
               for k in ("ok", "warn", "reject")}
        out["verdicts"][name] = {"n": int(mask.sum()), **row}
        print(f"{name:<30}{int(mask.sum()):>8}" + "".join(
            f"{100 * row[k]:>9.1f}%" for k in ("ok", "warn", "reject")))

    print("\n2. Per-lead flags vs the leads the annotations name")
    print(f"{'leads':<44}{'n':>7}{'flagged':>10}{'by matching check':>20}")
    clean = df[df["clean"]]
    out["per_lead"] = {}
    rows = [("leads of records with no annotation", clean, "")]
    for ann in ANNOTATIONS:
        rows.append((f"leads named by {ann}", df[df[ann]], MATCHING_CHECK[ann]))
        rows.append((f"other leads of {ann} records", df[df[ann + "_rec"] & ~df[ann]],
                     MATCHING_CHECK[ann]))
    for name, part, check in rows:
        flagged = part["lead_verdict"] != "ok"
        matching = part["reasons"].str.contains(check) & flagged if check else flagged
        out["per_lead"][name] = {"n": len(part), "flagged": float(flagged.mean()) if len(part)
                                 else None, "matching": float(matching.mean()) if len(part)
                                 else None}
        print(f"{name:<44}{len(part):>7}{_pct(flagged):>10}{_pct(matching):>20}")
    ep = df[df["electrodes_problems_rec"]]
    if len(ep):
        print("\n   electrodes_problems records, one by one:")
        for e, g in ep.groupby("ecg_id"):
            named = sorted(annotated_leads(g["electrodes_problems_text"].iloc[0]) or [],
                           key=STANDARD_LEADS.index)
            flagged = g.loc[g["lead_verdict"] != "ok", "lead"].tolist()
            print(f"   {e:>6} {g['electrodes_problems_text'].iloc[0]!r:<28} named {named} "
                  f"-> record {g['rec_verdict'].iloc[0]}, flagged leads {flagged}")

    print("\n3. Checks firing on leads of records with no annotation (count of leads)")
    fired: Counter = Counter()
    for text in clean["reasons"]:
        for r in filter(None, text.split(" | ")):
            fired[r.split(": ", 1)[1].split(" (")[0]] += 1
    out["clean_checks"] = dict(fired.most_common())
    for k, v in fired.most_common():
        print(f"   {v:>5}  {k}")

    print("\n4. Clean-lead percentiles (records with no annotation)")
    cols = ["ptp_mv", "qrs_amplitude_mv", "flat_fraction", "clipped_runs", "clipped_fraction",
            "wander_mv", "noise_mv", "noise_ratio", "template_corr"]
    q = clean[cols].astype(float).quantile([0.0, 0.001, 0.01, 0.5, 0.99, 0.999, 1.0])
    out["clean_percentiles"] = {c: {str(k): round(float(v), 4) for k, v in q[c].items()}
                                for c in cols}
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(q.round(4).to_string())
    th = DEFAULT_THRESHOLDS
    print(f"   thresholds: flat < {th.flat_ptp_mv} mV, wander > {th.wander_warn_mv}/"
          f"{th.wander_reject_mv} mV, noise > {th.noise_warn_mv}/{th.noise_reject_mv} mV, "
          f"noise ratio > {th.noise_ratio_warn}, template corr < {th.template_corr_warn}")
    print("   separation of annotated leads from clean leads (ROC AUC):")
    out["auc"] = {}
    for ann, metric in (("baseline_drift", "wander_mv"), ("static_noise", "noise_mv"),
                        ("burst_noise", "noise_mv"), ("static_noise", "template_corr")):
        sign = -1.0 if metric == "template_corr" else 1.0
        auc = _auc(sign * df.loc[df[ann], metric].astype(float),
                   sign * clean[metric].astype(float))
        out["auc"][f"{metric}~{ann}"] = round(auc, 3)
        print(f"   {metric:<18} vs {ann:<16} {auc:.3f}")

    print("\n5. neurokit2 on records with no annotation")
    ref = clean[clean["lead"] == clean["reference"]]
    zhao = ref["nk_zhao2018"].fillna("not run").value_counts(normalize=True)
    out["zhao2018_reference_lead"] = {k: round(float(v), 4) for k, v in zhao.items()}
    print("   zhao2018 on the reference lead: " + ", ".join(
        f"{k} {100 * v:.1f} %" for k, v in zhao.items()))
    tc = clean["template_corr"].astype(float)
    low = 100 * (tc < th.template_corr_warn).mean()
    print(f"   templatematch, all leads: median {tc.median():.3f}, 1st percentile "
          f"{tc.quantile(0.01):.3f}; below {th.template_corr_warn}: {low:.2f} %")
    return out


# ---------------------------------------------------------------------------- LUDB

def _emg(n: int, fs: float, rms: float, rng: np.random.Generator) -> np.ndarray:
    from scipy import signal as sps

    sos = sps.butter(4, [10.0, min(150.0, 0.45 * fs)], btype="band", fs=fs, output="sos")
    e = sps.sosfiltfilt(sos, rng.normal(size=n))
    return e / e.std() * rms


def _f1(detected: np.ndarray, reference: np.ndarray, tol: float) -> float:
    """R-peak F1 within the annotated span (LUDB leaves first/last beats unannotated)."""
    ref = np.asarray(reference)
    det = np.asarray(detected)
    det = det[(det >= ref.min() - tol) & (det <= ref.max() + tol)]
    used: set[int] = set()
    tp = 0
    for r in ref:
        if det.size:
            j = int(np.argmin(np.abs(det - r)))
            if abs(det[j] - r) <= tol and j not in used:
                used.add(j)
                tp += 1
    return 2 * tp / (len(ref) + len(det))


def report_ludb(step: int) -> dict:
    out: dict = {}
    print("\n=== LUDB (500 Hz, 200 records) ===")
    rows, sweep = [], []
    levels = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
    rng = np.random.default_rng(0)
    for n in range(1, 201):
        r = load_ludb(n)
        rep = assess_quality(r.recording, neurokit=False)    # neurokit2 not needed here
        rows += [{"record": n, **lq.metrics, "verdict": lq.verdict}
                 for lq in rep.per_lead.values()]
        if (n - 1) % step:
            continue
        ref = np.asarray([w.peak for w in r.waves_of("II", "QRS")])
        if ref.size < 3:
            continue
        lead_ii = r.recording.select(["II"])
        for rate in (500, 100):
            base = lead_ii if rate == 500 else lead_ii.replace(
                signal=lowpass(lead_ii.signal, 500.0, 45.0)[:, ::5], fs=100.0)
            for level in levels:
                sig = base.signal + (_emg(base.n_samples, rate, level, rng)[None, :] if level
                                     else 0.0)
                q = assess_quality(base.replace(signal=sig.astype(np.float32)))
                m = q.per_lead["II"].metrics
                peaks = _beats_of(base.replace(signal=sig.astype(np.float32)))
                sweep.append({"rate": rate, "added_rms_mv": level, "noise_mv": m.get("noise_mv"),
                              "verdict": q.per_lead["II"].verdict,
                              "f1": _f1(peaks, ref * rate // 500, 0.05 * rate)})
    leads = pd.DataFrame(rows)
    print("Clean-lead maxima (all 2,400 leads): " + ", ".join(
        f"{c} {leads[c].astype(float).max():.4f}" for c in
        ("clipped_runs", "clipped_fraction", "mains_50hz_mv", "mains_60hz_mv", "flat_fraction")))
    print(f"   smallest lead p-p {leads['ptp_mv'].min():.3f} mV; lead verdicts "
          + ", ".join(f"{k} {v}" for k, v in leads["verdict"].value_counts().items()))
    out["clean_max"] = {c: float(leads[c].astype(float).max()) for c in
                        ("clipped_runs", "clipped_fraction", "mains_50hz_mv", "mains_60hz_mv",
                         "flat_fraction", "noise_mv", "wander_mv")}
    s = pd.DataFrame(sweep)
    print(f"\nEMG-like noise (10-150 Hz Gaussian) added to lead II of every {step}th record "
          f"({s.groupby(['rate', 'added_rms_mv']).size().iloc[0]} records)")
    print(f"{'rate':>5}{'added RMS':>11}{'noise_mv':>10}{'R-peak F1':>11}{'F1<0.95':>9}"
          f"{'warn':>7}{'reject':>8}")
    out["emg_sweep"] = []
    for (rate, level), g in s.groupby(["rate", "added_rms_mv"]):
        row = {"rate": int(rate), "added_rms_mv": level,
               "noise_mv_median": float(g["noise_mv"].median()),
               "f1_median": float(g["f1"].median()), "f1_below_095": float((g["f1"] < 0.95).mean()),
               "warn": float((g["verdict"] == "warn").mean()),
               "reject": float((g["verdict"] == "reject").mean())}
        out["emg_sweep"].append(row)
        print(f"{rate:>5}{level:>11.2f}{row['noise_mv_median']:>10.3f}{row['f1_median']:>11.3f}"
              f"{100 * row['f1_below_095']:>8.0f}%{100 * row['warn']:>6.0f}%"
              f"{100 * row['reject']:>7.0f}%")
    s["band"] = pd.cut(s["noise_mv"], [0, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 1.0])
    print("\nR-peak F1 by measured noise (both rates pooled)")
    out["f1_by_noise"] = {}
    for band, g in s.groupby("band", observed=True):
        out["f1_by_noise"][str(band)] = {"n": len(g), "f1_median": float(g["f1"].median()),
                                         "f1_below_095": float((g["f1"] < 0.95).mean())}
        print(f"   noise {str(band):<14} n={len(g):>4}  median F1 {g['f1'].median():.3f}  "
              f"F1<0.95 {100 * (g['f1'] < 0.95).mean():.0f} %")
    return out


def _beats_of(rec: Recording) -> np.ndarray:
    """The R peaks the quality check would use (neurokit2 on the 0.5-40 Hz lead)."""
    from detak.signal.quality import _detect_beats, _Views

    return _detect_beats(_Views.of(rec.signal.astype(np.float64), rec.fs).z[0], rec.fs)


# ---------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fold", type=int, action="append",
                    help="PTB-XL strat fold (repeatable; default 9)")
    ap.add_argument("--limit", type=int, help="only the first N records of each fold")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--no-ludb", action="store_true", help="skip the LUDB part")
    ap.add_argument("--ludb-step", type=int, default=5,
                    help="noise sweep on every Nth LUDB record (default 5: 40 records)")
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    folds = args.fold or [9]
    warnings.filterwarnings("ignore")
    parts, times = [], []
    for fold in folds:
        df, per_rec = run_fold(fold, args.limit, args.jobs)
        parts.append(df)
        times.append(per_rec)
    result = {"ptbxl": report_ptbxl(label(pd.concat(parts, ignore_index=True)),
                                    float(np.mean(times)), folds)}
    if not args.no_ludb:
        result["ludb"] = report_ludb(args.ludb_step)
    result["provenance"] = provenance(libraries=("neurokit2", "pandas"))
    print("\n" + provenance_line(result["provenance"]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())

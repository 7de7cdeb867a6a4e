"""Interval-measurement accuracy on LUDB vs the cardiologists' annotations (markdown output).

    .venv/bin/python benchmarks/intervals_ludb.py [--records all|odd|even] [--jobs 2]
                                                   [--dump results.json] [--no-results]

A run on all records (no ``--set``, no ``--template-only``) also writes
``docs/results/intervals_ludb.md`` (with the versions of detak, neurokit2, numpy and scipy);
``make readme`` copies its table into the README, ``make check-readme`` fails when they differ.

For every record: ``detak.signal.intervals.measure_intervals`` on the 12-lead record, and, in
the same run, the naive neurokit2 baseline (``nk.ecg_process`` then
``nk.ecg_delineate(method="dwt")`` on lead II, medians over beats).

Boundaries (P on, P off, QRS on, QRS off, T off): every annotated boundary of every annotated
lead is matched to the nearest detected boundary of the same kind in the same lead within
``TOL_MS``; sensitivity = matched / annotated, error = detected − annotated (ms), mean ± SD.
detak's per-beat boundaries are ``Intervals.beat_boundaries`` (template offset refined per beat);
``--template-only`` scores fiducial + template offset instead, for comparison.

Intervals (PR = QRS on − P on, QRS = QRS off − QRS on, QT = T off − QRS on): the reference for a
lead is the median over that lead's annotated beats; the "overall" reference is the median over
annotated leads of those per-lead references (detak's overall value is compared to it).
Error = |detak per-record value − reference|; MAE columns are medians over records. Coverage =
share of records with the wave annotated (in that lead / any lead) for which a value came back.

Anti-overfitting: every parameter of detak's interval code was tuned on ODD-numbered records
only; EVEN-numbered records are held out and reported separately.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from multiprocessing import Pool
from statistics import median
from typing import Any

import numpy as np
from _provenance import REPO, provenance_line
from readme_tables import write_results

RESULTS_FILE = REPO / "docs" / "results" / "intervals_ludb.md"
LIBRARIES = ("neurokit2",)
TOL_MS = 150.0
PER_BEAT = True   # evaluate per-beat boundaries (False: fiducial + template offset, for comparison)
FS = 500.0
BOUNDARIES = ("p_on", "p_off", "qrs_on", "qrs_off", "t_off")
INTERVALS = ("pr", "qrs", "qt")
# Martinez et al. 2004 (wavelet delineator) on QTDB, mean ± SD ms
MARTINEZ = {"qrs_on": (4.5, 7.7), "qrs_off": (0.8, 10.9), "t_off": (-1.6, 18.1),
            "p_on": (2.0, 14.8), "p_off": (1.9, 12.8)}
# CSE working party tolerances for the SD of the error (2·SD_CSE), ms
CSE_TOL = {"p_on": 10.2, "p_off": 12.7, "qrs_on": 6.5, "qrs_off": 11.6, "t_off": 30.6}
TARGETS = {"pr": 10.0, "qrs": 10.0, "qt": 20.0}
TARGET_COVERAGE = 0.90


# ---------------------------------------------------------------------- references -----
def _ann_boundaries(waves: list[Any]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {k: [] for k in BOUNDARIES}
    for w in waves:
        if w.kind == "P":
            if w.onset is not None:
                out["p_on"].append(w.onset)
            if w.offset is not None:
                out["p_off"].append(w.offset)
        elif w.kind == "QRS":
            if w.onset is not None:
                out["qrs_on"].append(w.onset)
            if w.offset is not None:
                out["qrs_off"].append(w.offset)
        elif w.kind == "T" and w.offset is not None:
            out["t_off"].append(w.offset)
    return out


def reference_intervals(waves: list[Any]) -> dict[str, float | None]:
    """Median over annotated beats of PR, QRS, QT (ms) for one lead's annotation."""
    qrs = sorted((w for w in waves if w.kind == "QRS"), key=lambda w: w.peak)
    ps = sorted((w for w in waves if w.kind == "P"), key=lambda w: w.peak)
    ts = sorted((w for w in waves if w.kind == "T"), key=lambda w: w.peak)
    pr, qd, qt = [], [], []
    for i, q in enumerate(qrs):
        prev_peak = qrs[i - 1].peak if i > 0 else -10**9
        next_peak = qrs[i + 1].peak if i + 1 < len(qrs) else 10**9
        if q.onset is not None and q.offset is not None:
            qd.append((q.offset - q.onset) / FS * 1000)
        if q.onset is None:
            continue
        p = [w for w in ps if prev_peak < w.peak < q.peak and w.onset is not None]
        if p and (q.onset - p[-1].onset) / FS * 1000 < 600:
            pr.append((q.onset - p[-1].onset) / FS * 1000)
        t = [w for w in ts if q.peak < w.peak < next_peak and w.offset is not None]
        if t:
            qt.append((t[0].offset - q.onset) / FS * 1000)
    return {"pr": median(pr) if pr else None, "qrs": median(qd) if qd else None,
            "qt": median(qt) if qt else None}


def _match(ann: list[int], det: np.ndarray) -> list[float]:
    """Errors (ms) detected − annotated for annotated boundaries matched within TOL_MS."""
    errs = []
    det = det[np.isfinite(det)]
    if det.size == 0:
        return [float("nan")] * len(ann)
    for a in ann:
        d = det - a
        k = int(np.argmin(np.abs(d)))
        e = d[k] / FS * 1000
        errs.append(float(e) if abs(e) <= TOL_MS else float("nan"))
    return errs


# ------------------------------------------------------------------------ methods -----
def _baseline(x: np.ndarray) -> tuple[dict[str, float | None], dict[str, np.ndarray]]:
    """Naive neurokit2: ecg_process, ecg_delineate(dwt), medians over beats (lead II)."""
    import neurokit2 as nk

    empty = {k: np.zeros(0) for k in BOUNDARIES}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            signals, info = nk.ecg_process(x, sampling_rate=int(FS))
            _, waves = nk.ecg_delineate(signals["ECG_Clean"], info["ECG_R_Peaks"],
                                        sampling_rate=int(FS), method="dwt")
    except Exception:
        return {k: None for k in INTERVALS}, empty

    def arr(key: str) -> np.ndarray:
        return np.asarray(waves.get(key, []), dtype=float)

    p_on, r_on, r_off = arr("ECG_P_Onsets"), arr("ECG_R_Onsets"), arr("ECG_R_Offsets")
    t_off = arr("ECG_T_Offsets")
    n = min(len(p_on), len(r_on), len(r_off), len(t_off))

    def med(v: np.ndarray) -> float | None:
        v = v[np.isfinite(v)]
        return float(np.median(v)) / FS * 1000 if v.size else None

    vals = {"pr": med(r_on[:n] - p_on[:n]), "qrs": med(r_off[:n] - r_on[:n]),
            "qt": med(t_off[:n] - r_on[:n])}
    bounds = {"p_on": p_on, "p_off": arr("ECG_P_Offsets"), "qrs_on": r_on, "qrs_off": r_off,
              "t_off": t_off}
    return vals, bounds


def _warm_up() -> None:
    """Import neurokit2 and friends once per worker so runtimes measure the work, not imports."""
    import neurokit2  # noqa: F401

    from detak.data.recording import Recording
    from detak.signal.intervals import measure_intervals

    measure_intervals(Recording(np.zeros((1, 5000), dtype=np.float32), 500.0, ["II"]))


def evaluate_record(n: int) -> dict[str, Any]:
    """All numbers of one record (picklable dict)."""
    from detak.data.ludb import load_ludb
    from detak.signal.intervals import measure_intervals

    lr = load_ludb(n)
    rec = lr.recording
    t0 = time.perf_counter()
    iv = measure_intervals(rec)
    runtime = time.perf_counter() - t0
    d = iv.to_dict()
    fid = np.asarray(iv.beat_times_s) * FS
    out: dict[str, Any] = {"record": n, "runtime_s": runtime, "rhythm": rec.meta.get("rhythm"),
                           "ref": {}, "detak_lead": {}, "detak_overall": {},
                           "bound_err": {}, "base_err": {}, "base": {}}
    key = {"pr": "pr_ms", "qrs": "qrs_ms", "qt": "qt_ms"}
    for k in INTERVALS:
        out["detak_overall"][k] = d[key[k]]
    for lead, waves in lr.waves.items():
        out["ref"][lead] = reference_intervals(waves)
        pl = d["per_lead"].get(lead, {})
        out["detak_lead"][lead] = {k: pl.get(key[k]) for k in INTERVALS}
        ann = _ann_boundaries(waves)
        b = iv.boundaries.get(lead, {})
        bb = iv.beat_boundaries.get(lead, {}) if PER_BEAT else {}
        errs = {}
        for k in BOUNDARIES:
            if k in bb:
                off_b = np.array([np.nan if v is None else v for v in bb[k]], dtype=float)
                det = fid + off_b * FS / 1000 if fid.size else np.zeros(0)
            else:
                off = b.get(k)
                det = fid + off * FS / 1000 if off is not None and fid.size else np.zeros(0)
            errs[k] = _match(ann[k], det)
        out["bound_err"][lead] = errs
    bvals, bb = _baseline(rec.lead("II").astype(np.float64))
    out["base"] = bvals
    annii = _ann_boundaries(lr.waves["II"])
    out["base_err"] = {k: _match(annii[k], bb[k]) for k in BOUNDARIES}
    return out


# ------------------------------------------------------------------------ report ------
def _fmt(v: float | None, nd: int = 1) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{v:.{nd}f}"


def _bound_rows(results: list[dict[str, Any]], which: str, lead: str | None) -> dict[str, Any]:
    rows = {}
    for k in BOUNDARIES:
        errs: list[float] = []
        for r in results:
            if which == "base":
                errs += r["base_err"][k]
            else:
                for ld, e in r["bound_err"].items():
                    if lead is None or ld == lead:
                        errs += e[k]
        a = np.asarray(errs, dtype=float)
        m = a[np.isfinite(a)]
        rows[k] = (a.size, m.size / a.size if a.size else float("nan"),
                   float(m.mean()) if m.size else float("nan"),
                   float(m.std()) if m.size else float("nan"))
    return rows


def _interval_stats(results: list[dict[str, Any]], which: str) -> dict[str, tuple]:
    stats = {}
    for k in INTERVALS:
        errs, n_ref, n_val, n_false = [], 0, 0, 0
        for r in results:
            if which == "overall":
                refs = [v[k] for v in r["ref"].values() if v[k] is not None]
                ref = median(refs) if refs else None
                val = r["detak_overall"][k]
            elif which == "base":
                ref, val = r["ref"]["II"][k], r["base"][k]
            else:
                ref, val = r["ref"]["II"][k], r["detak_lead"]["II"][k]
            if ref is None:
                n_false += val is not None
                continue
            n_ref += 1
            if val is not None:
                n_val += 1
                errs.append(abs(val - ref))
        stats[k] = (float(np.median(errs)) if errs else float("nan"),
                    float(np.percentile(errs, 90)) if errs else float("nan"),
                    n_val / n_ref if n_ref else float("nan"), n_ref, n_false)
    return stats


def report(results: list[dict[str, Any]], title: str) -> list[str]:
    """One set of records: heading, interval and boundary tables, runtime line."""
    return [f"### {title} ({len(results)} records)", "", *tables(results), *runtime(results)]


def runtime(results: list[dict[str, Any]]) -> list[str]:
    rt = np.asarray([r["runtime_s"] for r in results])
    return [f"detak runtime per 10-s 12-lead record (500 Hz): median {np.median(rt)*1000:.0f}"
            f" ms, 95th percentile {np.percentile(rt, 95)*1000:.0f} ms, max {rt.max()*1000:.0f}"
            " ms (one core).", ""]


def tables(results: list[dict[str, Any]], only: str | None = None) -> list[str]:
    """The interval and boundary tables; ``only``: just the rows of this method label."""
    lines = ["**Intervals** (|error| of the per-record value vs the annotation: median and "
              "90th percentile over records; coverage = records with a value / records with "
              "the wave annotated; 'extra' = values returned where the wave is not annotated)",
              "",
              "| interval | method | median abs err (ms) | P90 (ms) | coverage | n annotated "
              "| extra | target | status |",
              "|---|---|---|---|---|---|---|---|---|"]
    sets = [("neurokit2 naive, lead II", "base"), ("detak, lead II", "lead"),
            ("detak, overall vs median of leads", "overall")]
    sets = [s for s in sets if only in (None, s[0])]
    all_stats = {which: _interval_stats(results, which) for _, which in sets}
    for k in INTERVALS:
        for label, which in sets:
            mae, p90, cov, nref, nfalse = all_stats[which][k]
            status, tgt = "", ""
            if which == "lead":
                tgt = f"≤ {TARGETS[k]:g} ms, ≥ {TARGET_COVERAGE:.0%}"
                ok = mae <= TARGETS[k] and cov >= TARGET_COVERAGE
                status = "PASS" if ok else "FAIL"
            lines.append(f"| {k.upper()} | {label} | {_fmt(mae)} | {_fmt(p90)} | {cov:.1%} | "
                         f"{nref} | {nfalse} | {tgt} | {status} |")
    lines += ["", "**Boundaries** (annotated boundaries matched within "
              f"±{TOL_MS:g} ms in the same lead; error = detected − annotated)", "",
              "| boundary | method | n annotated | sensitivity | mean ± SD (ms) | "
              "Martinez 2004 (QTDB) | CSE tol. (SD) | status |",
              "|---|---|---|---|---|---|---|---|"]
    bsets = [("neurokit2 naive, lead II", "base", "II"), ("detak, lead II", "detak", "II"),
             ("detak, all 12 leads", "detak", None)]
    bsets = [s for s in bsets if only in (None, s[0])]
    brows = {label: _bound_rows(results, which, lead) for label, which, lead in bsets}
    for k in BOUNDARIES:
        for label, _, _lead in bsets:
            n, sens, mean, sd = brows[label][k]
            mm = MARTINEZ.get(k)
            status = ""
            if label.startswith("detak"):
                status = "PASS" if sd <= CSE_TOL[k] else "FAIL"
            lines.append(f"| {k} | {label} | {n} | {sens:.1%} | {_fmt(mean)} ± {_fmt(sd)} | "
                         f"{mm[0]:+.1f} ± {mm[1]:.1f} | {CSE_TOL[k]:g} | {status} |")
    return lines + [""]


def _apply_overrides(items: list[str]) -> None:
    """Set module constants before the worker processes fork (tuning runs)."""
    from detak.signal import beats, delineation

    for item in items:
        name, value = item.split("=", 1)
        mod = delineation if hasattr(delineation, name.split(".")[0]) else beats
        if "." in name:
            dname, key = name.split(".", 1)
            getattr(mod, dname)[key] = float(value)
        else:
            setattr(mod, name, type(getattr(mod, name))(value))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", choices=["all", "odd", "even"], default="all")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--dump", help="write per-record results as JSON here")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="tuning: override a constant of detak.signal.delineation/beats "
                         "(e.g. QRS_FRAC=0.08, BIAS_MS.t_off=5); use with --records odd")
    ap.add_argument("--template-only", action="store_true",
                    help="score fiducial + template offset instead of the per-beat boundaries")
    ap.add_argument("--no-results", action="store_true",
                    help=f"do not write {RESULTS_FILE.relative_to(REPO)} (written by a default "
                         "run on all records)")
    args = ap.parse_args(argv)
    global PER_BEAT
    PER_BEAT = not args.template_only
    from tqdm import tqdm

    from detak.data.ludb import ludb_ids

    _apply_overrides(args.set)
    ids = ludb_ids()
    if args.records == "odd":
        ids = [i for i in ids if i % 2]
    elif args.records == "even":
        ids = [i for i in ids if i % 2 == 0]
    t0 = time.time()
    with Pool(args.jobs, initializer=_warm_up) as pool:
        results = list(tqdm(pool.imap_unordered(evaluate_record, ids), total=len(ids),
                            desc="LUDB records"))
    results.sort(key=lambda r: r["record"])
    if args.dump:
        with open(args.dump, "w") as fh:
            json.dump(results, fh)
    out = ["## Interval measurement on LUDB (detak vs neurokit2 out of the box)", "",
           "Parameters were tuned on odd-numbered records only; even-numbered records are "
           "held out. Targets (lead II): median |error| PR ≤ 10 ms, QRS ≤ 10 ms, QT ≤ 20 ms, "
           "value for ≥ 90 % of records with the wave; boundary SD within CSE tolerances.", ""]
    even = [r for r in results if r["record"] % 2 == 0]
    odd = [r for r in results if r["record"] % 2 == 1]
    if even:
        out += report(even, "Held-out: even-numbered records")
    if odd:
        out += report(odd, "Development: odd-numbered records")
    if args.records == "all":
        out += report(results, "All records")
    run_line = f"_Run time {time.time() - t0:.0f} s with {args.jobs} processes._"
    prov = provenance_line(libraries=LIBRARIES)
    out += [run_line, "", prov]
    print("\n".join(out))
    if args.records == "all" and not args.set and not args.template_only and not args.no_results:
        block = [*tables(results), *runtime(results), run_line, "",
                 "Held-out (even-numbered records, never used for tuning), lead II:", "",
                 *tables(even, only="detak, lead II"), prov]
        path = write_results(RESULTS_FILE, "Interval measurement on LUDB", prov, "\n".join(out),
                             {"intervals_ludb": "\n".join(block)})
        print(f"\nwritten: {path} (make readme copies its table into README.md)")


if __name__ == "__main__":
    main()

"""Why the rate and AV-block findings miss their targets: counts for the results of
`benchmarks/rhythm_ptbxl.py` (SBRAD, STACH, 1AVB on 12 leads; issue 17's 0.90 / 0.90).

Every figure is computed from the scored rows: which rhythm the rules called the missed
records, the rate / PR of misses and false findings, the same rules re-run with one threshold
moved (`sweep`, the rest of the rule set unchanged), the report language of PTB-XL's records
at the bradycardia boundary, and on LUDB the rules' PR against the annotated P and QRS onsets.

>>> lang_of("sinusbradykardie lagetyp normal"), lang_of("sinus rhythm. normal ecg."), lang_of("")
('de', 'en', 'other')
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from statistics import median
from typing import Any

SINUS = ("SR", "SBRAD", "STACH", "SARRH")
_DE = re.compile(r"rhythmus|bradykardie|tachykardie|lagetyp")
_EN = re.compile(r"sinus rhythm|sinus brady|sinus tachy|normal ecg")


def lang_of(report: str) -> str:
    """Language of a PTB-XL report: "de", "en" or "other" (Swedish, empty, ...)."""
    t = (report or "").lower()
    return "de" if _DE.search(t) else "en" if _EN.search(t) else "other"


def _value(row: Any, key: str) -> float | None:
    v = row.features.get("values", row.features).get(key)
    return None if v is None else float(v)


def sweep(rows: Sequence[Any], code: str, key: str, limits: Sequence[float]
          ) -> list[tuple[float, float, float]]:
    """(limit, sensitivity, specificity) of ``code`` with the clinical rule set's threshold
    ``key`` moved to each limit (the rows' weights kept)."""
    from rhythm_ptbxl import counts

    from detak.models.rhythm_rules import rhythm_findings
    from detak.models.rules import load_ruleset

    rs = load_ruleset("clinical")
    out = []
    for lim in limits:
        mine = dataclasses.replace(rs, rhythm=dataclasses.replace(rs.rhythm, **{key: lim}))
        for r in rows:
            r.findings["_sweep"] = rhythm_findings(r.features, ruleset=mine)
        c = counts(rows, "_sweep", code)
        out.append((lim, c.sens, c.spec))
    for r in rows:
        r.findings.pop("_sweep", None)
    return out


def _folds(fs: str) -> str:
    return f"folds {fs}" if "-" in fs else f"fold {fs}"


def _sweep_text(res: Sequence[tuple[float, float, float]], unit: str) -> str:
    return ", ".join(f"{lim:g} {unit}: {s:.3f} / {p:.3f}" for lim, s, p in res)


def _classes(rows: Sequence[Any]) -> str:
    c = Counter(r.primary("rules") for r in rows)
    return ", ".join(f"{k} {n}" for k, n in c.most_common())


def _hist(values: Sequence[float], edges: Sequence[float], w: Sequence[float] | None = None
          ) -> str:
    w = w or [1.0] * len(values)
    parts = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        n = sum(wi for v, wi in zip(values, w, strict=True) if lo <= v < hi)
        parts.append(f"{lo:g}–{hi:g}: {n:.0f}")
    return ", ".join(parts)


def sbrad_lines(res: Mapping[str, Sequence[Any]], reports: Mapping[int, str] | None,
                thresholds: Any) -> list[str]:
    """The SBRAD paragraph: misses by class and rate, the limit moved, the report language."""
    lim = thresholds.brady_bpm
    out = []
    for fs, rows in res.items():
        pos = [r for r in rows if r.states("SBRAD")]
        miss = [r for r in pos if not r.found("rules", "SBRAD")]
        rate_miss = [_value(r, "ventricular_rate_bpm") for r in miss
                     if r.primary("rules") in SINUS]
        rate_miss = [x for x in rate_miss if x is not None]
        neg = [r for r in rows if not r.states("SBRAD") and r.found("rules", "SBRAD")]
        ref = Counter()
        for r in neg:
            ref[r.ref_class()] += r.weight
        out.append(
            f"{_folds(fs)}: {len(pos)} stated, {len(miss)} missed (rules: {_classes(miss)}); "
            f"the {len(rate_miss)} missed ones the rules call sinus have a rate of "
            f"{min(rate_miss, default=float('nan')):.1f}–{max(rate_miss, default=float('nan')):.1f}"
            f" bpm (≥ {lim:g}); false SBRAD {sum(r.weight for r in neg):.0f} (weighted; the "
            f"statements say {', '.join(f'{k} {n:.0f}' for k, n in ref.most_common())}); limit "
            f"moved (sens / spec): "
            f"{_sweep_text(sweep(rows, 'SBRAD', 'brady_bpm', (50, 55, 58, 60)), 'bpm')}.")
    rows = res.get("1-8") or next(iter(res.values()))
    if reports:
        edges = (0, 50, 55, 58, 60, 65)
        for lang, name in (("en", "English"), ("de", "German")):
            sel = [r for r in rows if r.primary("rules") in SINUS
                   and lang_of(reports.get(r.ecg_id, "")) == lang
                   and _value(r, "ventricular_rate_bpm") is not None]
            sb = [r for r in sel if r.states("SBRAD")]
            ot = [r for r in sel if not r.states("SBRAD")]
            out.append(
                f"{name} reports (folds 1-8, the rules call the rhythm sinus), by measured "
                "rate in bpm: stated SBRAD "
                + _hist([_value(r, "ventricular_rate_bpm") for r in sb], edges)
                + "; not stated SBRAD (weighted) "
                + _hist([_value(r, "ventricular_rate_bpm") for r in ot], edges,
                        [r.weight for r in ot]) + ".")
    return out


def stach_lines(res: Mapping[str, Sequence[Any]]) -> list[str]:
    """The STACH paragraph: misses by class and rule, those whose P wave failed the fixed-PR
    test at exactly its limit, the limit moved."""
    from detak.signal.delineation import P_JITTER_MS

    out = []
    for fs, rows in res.items():
        pos = [r for r in rows if r.states("STACH")]
        miss = [r for r in pos if not r.found("rules", "STACH")]
        rules = Counter(r.findings["rules"][0].get("rule") for r in miss)
        at = [r for r in miss if _value(r, "p_peak_jitter_ms") == P_JITTER_MS
              and r.features.get("values", r.features).get("p_wave_template") is False]
        out.append(
            f"{_folds(fs)}: {len(pos)} stated, {len(miss)} missed (rules: {_classes(miss)}; "
            f"by rule: {', '.join(f'{k} {n}' for k, n in rules.most_common())}; {len(at)} of "
            f"the misses have no P at a fixed PR because the P scatter is exactly the "
            f"{P_JITTER_MS:g}-ms limit, which the feature rejects); limit moved "
            "(sens / spec): "
            f"{_sweep_text(sweep(rows, 'STACH', 'tachy_bpm', (94, 97, 100, 103)), 'bpm')}.")
    return out


def first_degree_lines(res: Mapping[str, Sequence[Any]], thresholds: Any) -> list[str]:
    """The 1AVB paragraph: misses (not sinus, PR null, PR at or below the limit), false 1AVB by
    PR, the limit moved, and PTB-XL's "prolonged PR interval" (LPR) counted as the finding."""
    from rhythm_ptbxl import counts

    lim = thresholds.first_degree_pr_ms
    out = []
    for fs, rows in res.items():
        pos = [r for r in rows if r.states("1AVB")]
        miss = [r for r in pos if not r.found("rules", "1AVB")]
        not_sinus = [r for r in miss if r.primary("rules") not in SINUS]
        null = [r for r in miss if r.primary("rules") in SINUS
                and _value(r, "pr_median_ms") is None]
        short = len(miss) - len(not_sinus) - len(null)
        false = [r for r in rows if not r.states("1AVB") and r.found("rules", "1AVB")]
        pr = [_value(r, "pr_median_ms") for r in false]
        w = [r.weight for r in false]
        p_on_t = sum(r.weight for r, x in zip(false, pr, strict=True)
                     if x > 300 and (_value(r, "ventricular_rate_bpm") or 0) >= 100)
        lpr = sum(r.weight for r in false if "LPR" in r.statements)
        for r in rows:     # the same findings against 1AVB or LPR
            r.findings["_lpr"] = [f for f in r.findings["rules"] if f["code"] == "1AVB"]
        alt = Counter()
        for r in rows:
            t = "1AVB" in r.statements or "LPR" in r.statements
            alt["tp" if t and r.findings["_lpr"] else "fn" if t else
                "fp" if r.findings["_lpr"] else "tn"] += r.weight
            r.findings.pop("_lpr")
        a_sens = alt["tp"] / max(alt["tp"] + alt["fn"], 1e-9)
        a_spec = alt["tn"] / max(alt["tn"] + alt["fp"], 1e-9)
        c = counts(rows, "rules", "1AVB")
        out.append(
            f"{_folds(fs)}: {len(pos)} stated, {len(miss)} missed ({len(not_sinus)} not sinus by "
            f"the rules: {_classes(not_sinus) or '–'}; {len(null)} PR not measured; {short} PR "
            f"≤ {lim:g} ms); false 1AVB {sum(w):.0f} (weighted; PPV {c.ppv:.3f}), by PR: "
            + _hist(pr, (lim, 210, 220, 240, 300, 1000), w)
            + f" ms ({p_on_t:.0f} with PR > 300 ms at a rate ≥ 100 bpm: the wave taken for P "
            "is likely the previous T wave), "
            f"{lpr:.0f} of them stated LPR (\"prolonged PR interval\"); against 1AVB or "
            f"LPR: {a_sens:.3f} / {a_spec:.3f}; limit moved (sens / spec): "
            f"{_sweep_text(sweep(rows, '1AVB', 'first_degree_pr_ms', (200, 210, 220)), 'ms')}.")
    return out


def ludb_pr_line(rows: Sequence[Any], waves_of: Callable[[int], Any]) -> str:
    """The rules' PR (``pr_median_ms``, 12 leads, 500 Hz) against LUDB's annotation, in
    records the rules call sinus: the global PR (per beat, earliest annotated P onset to
    earliest QRS onset over the leads; the clinical definition) and the median over leads of
    each lead's PR. ``waves_of(n)`` returns the `LudbRecord` of record n."""
    from intervals_ludb import reference_intervals

    g_err, l_err, stated = [], [], []
    for r in rows:
        mine = _value(r, "pr_median_ms")
        if r.primary("rules") not in SINUS or mine is None:
            continue
        lr = waves_of(r.ecg_id)
        g = global_pr(lr)
        per = [reference_intervals(lr.waves[ld])["pr"] for ld in lr.waves]
        per = [p for p in per if p is not None]
        if g is not None:
            g_err.append(mine - g)
            if r.states("1AVB"):
                stated.append(g)
        if per:
            l_err.append(mine - median(per))
    if not g_err:
        return "LUDB PR: no record with both a measured and an annotated PR."

    def q(e: list[float], p: float) -> float:
        s = sorted(e)
        return s[min(len(s) - 1, int(p * len(s)))]

    return (f"PR of the rules (12 leads, 500 Hz) against LUDB's annotation in {len(g_err)} "
            f"sinus records: global PR error median {median(g_err):+.0f} ms (10th–90th "
            f"percentile {q(g_err, 0.1):+.0f} to {q(g_err, 0.9):+.0f} ms); against the median "
            f"of the leads' PR {median(l_err):+.0f} ms (the global PR, from the earliest onsets "
            "over the leads, is the longer): no bias to correct. LUDB's cardiologists stated "
            f"1AVB in {len(stated)} of them at an annotated global PR of "
            f"{min(stated, default=float('nan')):.0f}–{max(stated, default=float('nan')):.0f} ms.")


def ludb_rate_line(rows: Sequence[Any], waves_of: Callable[[int], Any]) -> str:
    """The rules' rate (``ventricular_rate_bpm``, 12 leads, 500 Hz) against the rate of LUDB's
    annotated QRS complexes in lead II (60000 / their median RR)."""
    err = []
    for r in rows:
        rate = _value(r, "ventricular_rate_bpm")
        peaks = sorted(w.peak for w in waves_of(r.ecg_id).waves_of("ii", "QRS"))
        if rate is None or len(peaks) < 3:
            continue
        rr = sorted((b - a) / 500.0 * 1000.0 for a, b in zip(peaks[:-1], peaks[1:], strict=True))
        err.append(rate - 60000.0 / median(rr))
    if not err:
        return "LUDB rate: no record with both a measured and an annotated rate."
    s = sorted(err)
    q = [s[min(len(s) - 1, int(p * len(s)))] for p in (0.05, 0.95)]
    return (f"Rate of the rules against LUDB's annotated QRS (lead II, median RR) in {len(err)} "
            f"records: error median {round(median(err), 1) + 0.0:+.1f} bpm, 5th–95th "
            f"percentile {q[0]:+.1f} to {q[1]:+.1f} bpm, {sum(abs(e) > 2 for e in err)} "
            "records off by more than 2 bpm.")


def global_pr(lr: Any) -> float | None:
    """Median over lead II's annotated beats of (earliest QRS onset over the leads, within 60
    samples of the beat) − (earliest P onset over the leads after the previous beat), in ms;
    None with fewer than 2 such beats."""
    fs = 500.0
    leads = list(lr.waves)
    base = sorted(lr.waves_of("ii", "QRS"), key=lambda w: w.peak)
    prs = []
    for i, q in enumerate(base):
        prev = base[i - 1].peak if i else -10**9
        q_on = [w.onset for ld in leads for w in lr.waves_of(ld, "QRS")
                if abs(w.peak - q.peak) < 60 and w.onset is not None]
        p_on = [w.onset for ld in leads for w in lr.waves_of(ld, "P")
                if prev < w.peak < q.peak and w.onset is not None]
        if q_on and p_on and (min(q_on) - min(p_on)) / fs * 1000 < 600:
            prs.append((min(q_on) - min(p_on)) / fs * 1000)
    return float(median(prs)) if len(prs) >= 2 else None

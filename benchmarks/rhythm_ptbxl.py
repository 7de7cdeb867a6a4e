"""Rhythm findings against PTB-XL's cardiologist statements: sensitivity, specificity, PPV and
F1 per finding, for 12 leads and for lead II / lead I alone, the elderly apart, with a
confusion matrix of rhythm classes and PASS/FAIL against issue 17's targets.

Reference: a statement counts when it is in the record's ``scp_codes`` whatever its likelihood
(0 included), as detak's PTB-XL loader reads them (`detak.data.ptbxl`: PTB-XL gives rhythm
statements such as SR and AFIB likelihood 0). A record without a finding of a code counts as
negative for it. Findings map to statements one to one, except ``PRC(S)`` (the rules' atrial
premature beats) which counts the statements PAC and PRC(S). PAUSE and IRREG_UNCLASSIFIED have
no PTB-XL statement: how often they fire is listed per reference class.

Data: fold 9 (all records) and folds 1-8 (the rules are not trained: a second, larger check),
at 100 Hz (the shared copy has no 500 Hz signals); never fold 10. With ``--cache DIR`` the
features are read from the shared feature cache (``DIR/<view>-100/fold<K>.jsonl``, complete
when ``fold<K>.done`` exists; a fold set the cache lacks is skipped unless
``--compute-missing``; its folds-1-8 files are a subsample: every record with a rhythm
statement other than SR or an AV block, plus a seeded draw of the SR-only records, which this
script weights back to their number in PTB-XL so specificity and PPV are those of folds 1-8;
records with no rhythm statement at all are not in it). Without a cache the features are
computed here (``--jobs``; ``--limit N`` a seeded sample of N records per fold set for a
quick run).

    python benchmarks/rhythm_ptbxl.py --cache /work/rhythm-cache --write
    python benchmarks/rhythm_ptbxl.py --folds 9 --views II --limit 200 --jobs 1
    python benchmarks/rhythm_ptbxl.py --cache /work/rhythm-cache --source both

``--source classifier|both`` also scores `detak.models.rhythm_classifier.predict_findings` when
that module is importable ("classifier not available" otherwise). ``--examples DIR`` draws the
fold-9 12-lead records where the AF rule fails most (AF missed with the lowest irregularity,
false AF with the highest) on ECG paper.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from _provenance import provenance_line
from readme_tables import REPO, RESULTS, write_results

RESULTS_FILE = RESULTS / "rhythm_ptbxl.md"
VIEWS = ("12lead", "II", "I")
FOLD_SETS = {"9": (9,), "1-8": tuple(range(1, 9))}
#: finding code -> the PTB-XL statements that make a record positive for it
REFERENCE: dict[str, tuple[str, ...]] = {
    "SR": ("SR",), "SBRAD": ("SBRAD",), "STACH": ("STACH",), "SARRH": ("SARRH",),
    "AFIB": ("AFIB",), "AFLT": ("AFLT",), "SVTAC": ("SVTAC",), "PSVT": ("PSVT",),
    "BIGU": ("BIGU",), "TRIGU": ("TRIGU",), "PACE": ("PACE",), "1AVB": ("1AVB",),
    "2AVB": ("2AVB",), "3AVB": ("3AVB",), "PVC": ("PVC",), "PRC(S)": ("PAC", "PRC(S)"),
}
RHYTHM_STATEMENTS = ("AFIB", "AFLT", "BIGU", "PACE", "PSVT", "SARRH", "SBRAD", "SR", "STACH",
                     "SVARR", "SVTAC", "TRIGU")
AV_BLOCKS = ("1AVB", "2AVB", "3AVB")
#: reference rhythm class of a record for the confusion matrix: the first of these it states
CLASS_ORDER = ("PACE", "AFIB", "AFLT", "SVTAC", "PSVT", "BIGU", "TRIGU", "SVARR", "STACH",
               "SBRAD", "SARRH", "SR")
PRED_CLASSES = ("SR", "SBRAD", "STACH", "SARRH", "AFIB", "AFLT", "SVTAC", "3AVB", "PACE",
                "BIGU", "TRIGU", "IRREG_UNCLASSIFIED")
ELDERLY_AGE = 65.0
#: issue 17's targets: (finding, view, fold set) -> (min sensitivity, min specificity)
TARGETS: dict[tuple[str, str, str], tuple[float, float]] = {
    ("AFIB", "12lead", "9"): (0.95, 0.97), ("AFIB", "II", "9"): (0.90, 0.95),
    ("SBRAD", "12lead", "9"): (0.90, 0.90), ("STACH", "12lead", "9"): (0.90, 0.90),
    ("1AVB", "12lead", "9"): (0.90, 0.90),
}
SEED = 20261207


@dataclass
class Row:
    """One record of one view: statements, age, findings by source."""

    ecg_id: int
    fold: int
    age: float | None
    statements: dict[str, float]
    features: dict[str, Any]
    weight: float = 1.0
    findings: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def states(self, code: str) -> bool:
        return any(s in self.statements for s in REFERENCE[code])

    def found(self, source: str, code: str) -> bool:
        return any(f["code"] == code for f in self.findings.get(source, []))

    def primary(self, source: str) -> str:
        fs = self.findings.get(source) or []
        return fs[0]["code"] if fs else "none"

    def ref_class(self) -> str:
        return next((c for c in CLASS_ORDER if c in self.statements), "none")


# --- reading / computing features ------------------------------------------------------

def _parse_folds(text: str) -> tuple[int, ...]:
    if text in FOLD_SETS:
        return FOLD_SETS[text]
    lo, _, hi = text.partition("-")
    folds = tuple(range(int(lo), int(hi or lo) + 1))
    if 10 in folds:
        raise SystemExit("fold 10 is never used (PTB-XL's test fold)")
    return folds


def read_cache(cache: Path, view: str, folds: Iterable[int]) -> list[dict[str, Any]] | None:
    """The cached rows of ``folds`` (None when a fold is not complete: no ``.done``)."""
    rows = []
    for k in folds:
        d = cache / f"{view}-100"
        if not (d / f"fold{k}.done").exists():
            return None
        with open(d / f"fold{k}.jsonl", encoding="utf-8") as fh:
            rows += [json.loads(line) for line in fh if line.strip()]
    return rows


def _compute_one(job: tuple[int, str]) -> dict[str, Any]:
    from detak.data.ptbxl import open_ptbxl
    from detak.signal.rhythm import rhythm_features

    warnings.simplefilter("ignore")
    ecg_id, view = job
    db = open_ptbxl()
    meta = db.metadata.loc[ecg_id]
    age = meta.get("age")
    out = {"ecg_id": ecg_id, "fold": int(meta["strat_fold"]),
           "age": None if age is None or not np.isfinite(age) else min(float(age), 90.0),
           "statements": dict(meta["scp_codes"]), "features": None, "error": None}
    try:
        rec = db.record(ecg_id)
        if view != "12lead":
            rec = rec.select([view])
        d = rhythm_features(rec).to_dict()
        d.pop("beats", None)
        out["features"] = d
    except Exception as err:  # noqa: BLE001 - a benchmark counts failures, it does not stop
        out["error"] = f"{type(err).__name__}: {err}"
    return out


def compute(view: str, folds: Sequence[int], limit: int | None, jobs: int
            ) -> list[dict[str, Any]]:
    """Features of every record of ``folds`` (or a seeded sample of ``limit``)."""
    from detak.data.ptbxl import open_ptbxl

    db = open_ptbxl()
    ids = np.concatenate([db.fold_ids(k) for k in folds])
    if limit is not None and limit < ids.size:
        ids = np.sort(np.random.default_rng(SEED).permutation(ids)[:limit])
    jobs_l = [(int(i), view) for i in ids]
    if jobs <= 1:
        return [_compute_one(j) for j in jobs_l]
    with get_context("fork").Pool(jobs) as pool:
        return pool.map(_compute_one, jobs_l, chunksize=8)


#: LUDB's rhythm column -> the finding codes (its "pacemaker" flag -> PACE)
LUDB_RHYTHM = {"Sinus rhythm": "SR", "Sinus bradycardia": "SBRAD", "Sinus tachycardia": "STACH",
               "Sinus arrhythmia": "SARRH", "Irregular sinus rhythm": "SARRH",
               "Atrial fibrillation": "AFIB", "Atrial flutter, typical": "AFLT"}


#: LUDB's conduction-abnormality column -> AV-block codes ("I degree av block", "Iii degree
#: av-block"; no second-degree block in LUDB)
LUDB_AV_BLOCK = {"1AVB": re.compile(r"(?<![iv])i degree av[- ]block"),
                 "3AVB": re.compile(r"(?<![iv])iii degree av[- ]block")}


def ludb_statements(meta: Mapping[str, Any]) -> dict[str, float]:
    """The finding codes LUDB states for one record: its rhythm column, its pacemaker flag
    (PACE) and its conduction abnormalities (1AVB, 3AVB).

    >>> ludb_statements({"rhythm": ["Sinus bradycardia"], "pacemaker": False,
    ...                  "diagnoses": ["Conduction abnormalities: I degree av block",
    ...                                "Conduction abnormalities: Iii degree av-block"]})
    {'SBRAD': 0.0, '1AVB': 0.0, '3AVB': 0.0}
    """
    st = {LUDB_RHYTHM[r]: 0.0 for r in meta.get("rhythm") or [] if r in LUDB_RHYTHM}
    if meta.get("pacemaker"):
        st["PACE"] = 0.0
    for code, pat in LUDB_AV_BLOCK.items():
        if any(pat.search(str(d).lower()) for d in meta.get("diagnoses") or []):
            st[code] = 0.0
    return st


def _ludb_one(n: int) -> dict[str, Any]:
    from detak.data.ludb import load_ludb
    from detak.signal.rhythm import rhythm_features

    warnings.simplefilter("ignore")
    lr = load_ludb(n)
    st = ludb_statements(lr.meta)
    out = {"ecg_id": n, "fold": 0, "age": lr.meta.get("age"), "statements": st,
           "features": None, "error": None}
    try:
        d = rhythm_features(lr.recording).to_dict()
        d.pop("beats", None)
        out["features"] = d
    except Exception as err:  # noqa: BLE001 - counted, not fatal
        out["error"] = f"{type(err).__name__}: {err}"
    return out


def ludb_rows(jobs: int) -> list[dict[str, Any]]:
    """Features of all LUDB records (12 leads, 500 Hz) with their rhythm column as
    statements: a second, independent reference."""
    from detak.data.ludb import ludb_ids

    ids = [int(i) for i in ludb_ids()]
    if jobs <= 1:
        return [_ludb_one(i) for i in ids]
    with get_context("fork").Pool(jobs) as pool:
        return pool.map(_ludb_one, ids, chunksize=4)


def sr_only(statements: Mapping[str, float]) -> bool:
    """Rhythm statements exactly {SR} and no AV block (the cache's subsampled stratum)."""
    rhythm = {s for s in statements if s in RHYTHM_STATEMENTS}
    return rhythm == {"SR"} and not any(s in statements for s in AV_BLOCKS)


def subsample_weight(rows: Sequence[dict[str, Any]], folds: Sequence[int]) -> float:
    """Weight of an SR-only row: SR-only records of ``folds`` in PTB-XL / those in ``rows``
    (1.0 when every record of the folds is there)."""
    from detak.data.ptbxl import open_ptbxl

    md = open_ptbxl().metadata
    md = md[md["strat_fold"].isin(list(folds))]
    if len(rows) >= len(md):
        return 1.0
    total = sum(sr_only(c) for c in md["scp_codes"])
    have = sum(sr_only(r["statements"]) for r in rows)
    return total / have if have else 1.0


def score(raw: Sequence[dict[str, Any]], view: str, sources: Sequence[str],
          w_sr: float = 1.0) -> tuple[list[Row], int]:
    """Rows with findings per source (SR-only rows weighted ``w_sr``); the number of records
    with an error."""
    from detak.models.rhythm_rules import rhythm_findings

    predict = None
    if "classifier" in sources:
        predict = _classifier()
    rows, errors = [], 0
    for r in raw:
        if r.get("error") or not r.get("features"):
            errors += 1
            continue
        row = Row(int(r["ecg_id"]), int(r["fold"]), r.get("age"), dict(r["statements"]),
                  r["features"], w_sr if sr_only(r["statements"]) else 1.0)
        row.findings["rules"] = rhythm_findings(r["features"])
        if predict is not None:
            row.findings["classifier"] = list(predict(r["features"], view=view))
        rows.append(row)
    return rows, errors


def _classifier():  # noqa: ANN202 - the predict_findings function or None
    try:
        from detak.models.rhythm_classifier import predict_findings
    except ImportError as err:
        print(f"classifier not available ({err})", file=sys.stderr)
        return None
    return predict_findings


# --- metrics -------------------------------------------------------------------------------

@dataclass
class Counts:
    tp: float = 0.0
    fp: float = 0.0
    fn: float = 0.0
    tn: float = 0.0
    n_pos: int = 0

    def add(self, truth: bool, pred: bool, w: float) -> None:
        if truth:
            self.n_pos += 1
            self.tp += w * pred
            self.fn += w * (not pred)
        else:
            self.fp += w * pred
            self.tn += w * (not pred)

    @property
    def sens(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")

    @property
    def spec(self) -> float:
        return self.tn / (self.tn + self.fp) if self.tn + self.fp else float("nan")

    @property
    def ppv(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")

    @property
    def f1(self) -> float:
        d = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / d if d else float("nan")


def counts(rows: Iterable[Row], source: str, code: str) -> Counts:
    """Weighted confusion counts of one finding.

    >>> r = [Row(1, 9, 70.0, {"AFIB": 0.0}, {}, findings={"rules": [{"code": "AFIB"}]}),
    ...      Row(2, 9, 70.0, {"SR": 0.0}, {}, findings={"rules": [{"code": "SR"}]})]
    >>> c = counts(r, "rules", "AFIB")
    >>> c.sens, c.spec, c.ppv, c.f1
    (1.0, 1.0, 1.0, 1.0)
    """
    c = Counts()
    for r in rows:
        c.add(r.states(code), r.found(source, code), r.weight)
    return c


def _f(x: float) -> str:
    return "–" if not np.isfinite(x) else f"{x:.3f}"


def verdict(c: Counts, target: tuple[float, float]) -> str:
    ok = (np.isfinite(c.sens) and np.isfinite(c.spec) and c.sens >= target[0]
          and c.spec >= target[1])
    return "PASS" if ok else "FAIL"


# --- tables --------------------------------------------------------------------------------

def finding_table(rows: Sequence[Row], source: str, subsampled: bool) -> list[str]:
    lines = ["| finding | statements | n stated | sensitivity | specificity | PPV | F1 | "
             "found (weighted) |", "|---|---|---|---|---|---|---|---|"]
    for code, refs in REFERENCE.items():
        c = counts(rows, source, code)
        if c.n_pos == 0 and c.tp + c.fp == 0:
            continue
        lines.append(f"| {code} | {'/'.join(refs)} | {c.n_pos} | {_f(c.sens)} | {_f(c.spec)} | "
                     f"{_f(c.ppv)} | {_f(c.f1)} | {c.tp + c.fp:.0f} |")
    extra = Counter()
    for r in rows:
        for f in r.findings.get(source, []):
            if f["code"] in ("PAUSE", "IRREG_UNCLASSIFIED"):
                extra[(f["code"], r.ref_class())] += 1
    if extra:
        lines.append("")
        lines.append("Findings without a PTB-XL statement (records, by reference rhythm): "
                     + "; ".join(f"{code} in {cls}: {n}" for (code, cls), n
                                 in sorted(extra.items())))
    if subsampled:
        lines.append("")
        lines.append("(folds 1-8: SR-only records subsampled and weighted back; "
                     "'n stated' counts records in the file, not weighted)")
    return lines


def confusion(rows: Sequence[Row], source: str) -> list[str]:
    cols = [*PRED_CLASSES, "other"]
    refs = [c for c in (*CLASS_ORDER, "none") if any(r.ref_class() == c for r in rows)]
    m: Counter = Counter()
    for r in rows:
        p = r.primary(source)
        m[(r.ref_class(), p if p in PRED_CLASSES else "other")] += 1
    head = "| reference ↓ / rules → | " + " | ".join(
        c.replace("IRREG_UNCLASSIFIED", "IRREG") for c in cols) + " | n |"
    lines = [head, "|" + "---|" * (len(cols) + 2)]
    for ref in refs:
        n = sum(m[(ref, c)] for c in cols)
        lines.append(f"| {ref} | " + " | ".join(str(m[(ref, c)] or "") for c in cols)
                     + f" | {n} |")
    return lines


def summary_table(results: Mapping[tuple[str, str, str], list[Row]], source: str
                  ) -> list[str]:
    """The README table: AF per view and fold set (all, >= 65), SBRAD/STACH/1AVB on 12 leads."""
    lines = ["| finding | leads | PTB-XL folds | subset | n stated | sensitivity | specificity "
             "| PPV | F1 | target (sens, spec) | |", "|" + "---|" * 11]

    def add(code: str, view: str, fs: str, subset: str, rows: list[Row]) -> None:
        c = counts(rows, source, code)
        tgt = TARGETS.get((code, view, fs)) if subset == "all" else None
        ppv = _f(c.ppv)
        lines.append(f"| {code} | {'12' if view == '12lead' else view} | {fs} | {subset} | "
                     f"{c.n_pos} | {_f(c.sens)} | {_f(c.spec)} | {ppv} | {_f(c.f1)} | "
                     + (f"≥ {tgt[0]:.2f}, ≥ {tgt[1]:.2f} | **{verdict(c, tgt)}** |" if tgt
                        else "| |"))

    for (view, fs, src), rows in results.items():
        if src != source:
            continue
        add("AFIB", view, fs, "all", rows)
        add("AFIB", view, fs, "age ≥ 65", [r for r in rows if (r.age or 0) >= ELDERLY_AGE])
    for code in ("SBRAD", "STACH", "1AVB"):
        for (view, fs, src), rows in results.items():
            if src == source and view == "12lead":
                add(code, view, fs, "all", rows)
    return lines


def af_failures(rows: Sequence[Row], source: str = "rules") -> list[str]:
    """AF misses by the rules' rhythm finding (and rule), false AF by the record's reference
    rhythm class and the AF rule that fired: the failure analysis of the AF finding, in
    records (weighted counts in brackets where the SR-only records are subsampled)."""
    miss: Counter = Counter()
    false: Counter = Counter()
    wm: Counter = Counter()
    wf: Counter = Counter()
    for r in rows:
        fs = r.findings.get(source) or []
        af = next((f for f in fs if f["code"] == "AFIB"), None)
        if r.states("AFIB") and af is None and fs:
            key = f"{fs[0]['code']} ({fs[0].get('rule', '')})"
            miss[key] += 1
            wm[key] += r.weight
        elif not r.states("AFIB") and af is not None:
            extra = "+".join(s for s in ("PVC", "PAC", "PRC(S)", "1AVB", "2AVB", "3AVB")
                             if s in r.statements)
            key = f"{r.ref_class()}{'+' + extra if extra else ''} (rule {af.get('rule', '')})"
            false[key] += 1
            wf[key] += r.weight

    def fmt(c: Counter, w: Counter) -> str:
        return "; ".join(f"{k}: {n}" + (f" [{w[k]:.0f}]" if abs(w[k] - n) > 0.5 else "")
                         for k, n in c.most_common())

    return [f"AF missed ({sum(miss.values())}), by the rules' rhythm finding (rule): "
            + (fmt(miss, wm) or "none") + ".", "",
            f"False AF ({sum(false.values())} records, {sum(wf.values()):.0f} weighted), by "
            "the reference rhythm (+ ectopy/AV-block statements) and the AF rule that fired: "
            + (fmt(false, wf) or "none") + ".", ""]


def why_section(results: Mapping[tuple[str, str, str], list[Row]], ludb: Sequence[Row]
                ) -> list[str]:
    """"Why it fails" for SBRAD, STACH and 1AVB (12 leads, rules), counted by
    `benchmarks/rhythm_why.py`; [] without 12-lead rules results."""
    import rhythm_why as why

    from detak.data.ptbxl import open_ptbxl
    from detak.models.rules import load_ruleset

    res = {fs: rows for (view, fs, src), rows in results.items()
           if view == "12lead" and src == "rules"}
    if not res:
        return []
    md = open_ptbxl().metadata
    reports = md["report"].to_dict() if "report" in md.columns else None
    t = load_ruleset("clinical").rhythm
    out = ["## Why SBRAD, STACH and 1AVB miss 0.90 / 0.90 (12 leads, rules)", "",
           f"**SBRAD** (named below {t.brady_bpm:g} bpm, routine review below "
           f"{t.brady_review_bpm:g} bpm):", "",
           *[f"- {x}" for x in why.sbrad_lines(res, reports, t)],
           "", f"**STACH** (above {t.tachy_bpm:g} bpm with P waves):", "",
           *[f"- {x}" for x in why.stach_lines(res)], "",
           f"**1AVB** (sinus rhythm and PR above {t.first_degree_pr_ms:g} ms):", "",
           *[f"- {x}" for x in why.first_degree_lines(res, t)], ""]
    if ludb:
        from detak.data.ludb import load_ludb

        out += [f"- LUDB: {why.ludb_rate_line(ludb, load_ludb)}",
                f"- LUDB: {why.ludb_pr_line(ludb, load_ludb)}", ""]
    return out


# --- examples ------------------------------------------------------------------------------

def plot_examples(rows: Sequence[Row], out: Path, n: int = 3) -> list[str]:
    """Draw the fold-9 records where the AF rule fails most; returns one line per plot."""
    from detak.data.ptbxl import open_ptbxl
    from detak.report.paper import plot_ecg_paper
    from detak.signal.filters import clean

    def irr(r: Row) -> float:
        v = r.features.get("values", r.features)
        x = v.get("petrenas_irregularity")
        return float(x if x is not None else v.get("rr_irregularity") or 0.0)

    missed = sorted((r for r in rows if r.states("AFIB") and not r.found("rules", "AFIB")),
                    key=irr)[:n]
    false = sorted((r for r in rows if not r.states("AFIB") and r.found("rules", "AFIB")),
                   key=irr, reverse=True)[:n]
    out.mkdir(parents=True, exist_ok=True)
    db = open_ptbxl()
    lines = []
    for kind, group in (("af_missed", missed), ("false_af", false)):
        for r in group:
            rec = clean(db.record(r.ecg_id))
            p = r.findings["rules"][0]
            stated = ", ".join(sorted(r.statements))
            path = out / f"{kind}_{r.ecg_id}.png"
            plot_ecg_paper(rec, path, title=f"PTB-XL {r.ecg_id} ({kind.replace('_', ' ')}): "
                           f"rules say {p['code']}; cardiologists: {stated}",
                           subtitle=" ".join(x["en"] for x in p["reasons"])[:170])
            _shrink(path)
            lines.append(f"- `{path.resolve().relative_to(REPO)}`: {kind}, rules "
                         f"{p['code']}, statements {stated}")
    return lines


def _shrink(path: Path) -> None:
    """Save a plot as a 32-colour PNG (ECG paper needs few colours; ~4x smaller)."""
    from PIL import Image

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=32)
    small.save(path, optimize=True)


# --- main ----------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, help="the shared feature cache (else computed here)")
    ap.add_argument("--folds", nargs="+", default=["9", "1-8"],
                    help="fold sets to evaluate: 9, 1-8, or K / K-L (never 10)")
    ap.add_argument("--views", nargs="+", default=list(VIEWS), choices=VIEWS)
    ap.add_argument("--compute-missing", action="store_true",
                    help="with --cache: compute the fold sets the cache lacks (else skipped)")
    ap.add_argument("--source", default="rules", choices=["rules", "classifier", "both"])
    ap.add_argument("--jobs", type=int, default=1, help="processes when computing features")
    ap.add_argument("--limit", type=int, help="a seeded sample of N records per fold set "
                    "(computing only)")
    ap.add_argument("--ludb", action="store_true",
                    help="also score all 200 LUDB records against LUDB's rhythm column")
    ap.add_argument("--write", action="store_true", help=f"write {RESULTS_FILE}")
    ap.add_argument("--examples", type=Path, help="plot AF failures (fold 9, 12 leads) here")
    args = ap.parse_args(argv)
    sources = ["rules", "classifier"] if args.source == "both" else [args.source]
    t0 = time.time()
    results: dict[tuple[str, str, str], list[Row]] = {}
    notes = []
    for view in args.views:
        for fs in args.folds:
            folds = _parse_folds(fs)
            raw = read_cache(args.cache, view, folds) if args.cache else None
            how = f"cache {args.cache}"
            w_sr = 1.0
            if raw is None:
                if args.cache and not args.compute_missing:
                    notes.append(f"{view} folds {fs}: not (completely) in the cache: skipped "
                                 "(--compute-missing computes it)")
                    continue
                if args.cache:
                    notes.append(f"{view} folds {fs}: not (completely) in the cache: computed")
                how = "computed"
                raw = compute(view, folds, args.limit, args.jobs)
            else:
                w_sr = subsample_weight(raw, folds)
                if w_sr != 1.0:
                    how += f", SR-only records weighted {w_sr:.2f}"
            for src in sources:
                rows, errors = score(raw, view, [src], w_sr)
                if src == "classifier" and not any(r.findings.get("classifier") is not None
                                                   for r in rows):
                    notes.append("classifier not available")
                    continue
                results[(view, fs, src)] = rows
                old = sum(r.age is not None and r.age >= ELDERLY_AGE for r in rows)
                notes.append(f"{view} folds {fs} ({how}): {len(rows)} records, {errors} "
                             f"errors, {old} aged ≥ 65")
    cmd = "python benchmarks/rhythm_ptbxl.py " + shlex.join(sys.argv[1:] if argv is None
                                                             else argv)
    prov = provenance_line(command=cmd.strip(), libraries=("numpy", "scipy", "neurokit2"))
    out: list[str] = []
    summary: list[str] = []
    for src in sources:
        if not any(k[2] == src for k in results):
            continue
        s = summary_table(results, src)
        summary += [f"Findings by **{src}** (PTB-XL statements at any likelihood; 100 Hz):",
                    "", *s, ""]
        for (view, fs, s2), rows in results.items():
            if s2 != src:
                continue
            sub = any(r.weight != 1.0 for r in rows)
            out += [f"### {src}: {view}, folds {fs}", "",
                    *finding_table(rows, src, sub), ""]
            if fs == "9":
                out += [f"Elderly (age ≥ {ELDERLY_AGE:g}):", "",
                        *finding_table([r for r in rows if (r.age or 0) >= ELDERLY_AGE], src,
                                       sub), ""]
            out += [f"AF failures ({src}, {view}, folds {fs}):", "", *af_failures(rows, src)]
            out += [f"Confusion of rhythm classes ({view}, folds {fs}; rows: the first of "
                    f"{', '.join(CLASS_ORDER)} the record states; columns: the rules' rhythm "
                    "finding):", "", *confusion(rows, src), ""]
    ludb_rows_scored: list[Row] = []
    if args.ludb:
        rows, errors = score(ludb_rows(args.jobs), "12lead", ["rules"])
        notes.append(f"LUDB: {len(rows)} records (12 leads, 500 Hz), {errors} errors")
        ludb = [f"### rules: LUDB (its rhythm column: {', '.join(sorted(LUDB_RHYTHM))}; "
                "pacemaker flag = PACE; conduction abnormalities I / III degree AV block = "
                "1AVB / 3AVB)", "", *finding_table(rows, "rules", False), "",
                "Confusion of rhythm classes (LUDB):", "", *confusion(rows, "rules"), ""]
        out += ludb
        line = "; ".join(
            f"{code} {c.n_pos} stated, sens {_f(c.sens)}, spec {_f(c.spec)}"
            for code in ("AFIB", "AFLT", "SBRAD", "STACH", "1AVB", "3AVB")
            for c in [counts(rows, "rules", code)] if c.n_pos)
        summary += [f"LUDB's rhythm and conduction columns (a second reference; 200 records, "
                    f"12 leads at 500 Hz), rules: {line}.", ""]
        ludb_rows_scored = rows
    out += why_section(results, ludb_rows_scored)
    ex_lines: list[str] = []
    if args.examples and ("12lead", "9", "rules") in results:
        ex_lines = plot_examples(results[("12lead", "9", "rules")], args.examples)
    run_line = f"_Run time {time.time() - t0:.0f} s._"
    full = "\n".join([*summary, *out, "Notes: " + "; ".join(notes), "",
                      *(["Plotted examples:", *ex_lines, ""] if ex_lines else []),
                      run_line, "", prov])
    print(full)
    if args.write:
        block = "\n".join([*summary, run_line, "", prov])
        path = write_results(RESULTS_FILE, "Rhythm findings against PTB-XL's statements",
                             prov, full, {"rhythm_ptbxl": block})
        print(f"\nwritten: {path} (make readme copies its table into README.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

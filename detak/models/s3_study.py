"""S3 reproduced on PTB-XL, and the check S3 could not make: its rule labels and its Naive Bayes
against cardiologists' statements.

Data: the PTB-XL interval table (`detak.signal.interval_table.ptbxl_interval_table`, one row per
record of folds 1–9, intervals measured by detak). Steps:

1. **Elderly subset** (S3's nursing-home residents were ≥ 60): ``age >= 60``; PTB-XL codes ages
   over 89 as 300, which is kept (``age`` 300 ≥ 60). Records the quality check rejected (or that
   failed to load) are excluded and counted. Each record is labelled with the ``s3`` and the
   ``clinical`` rule sets (`detak.models.rules`); a record without any measured value gets no
   label (counted, excluded).
2. **S3's pipeline** on the ``s3`` labels: mean imputation, StandardScaler, stratified 70/30
   split (``seed``), Gaussian NB (`detak.models.tabular.make_model("nb")`) on S3's eight
   features (`FEATURES`); per-class precision/recall/F1, confusion matrix and one-vs-rest ROC
   (PNGs). The NB learns a deterministic function of its own inputs (the labels are the rule
   table applied to the same features), so its accuracy measures how well NB re-learns the
   thresholds, not how well it finds arrhythmia.
3. **Against the cardiologists**: sensitivity and specificity (95 % Wilson intervals, counts) of
   each rule finding (`COMPARISONS`) and of the NB prediction against PTB-XL's SCP statements on
   the same records. A statement counts with any likelihood (PTB-XL's convention: rhythm and
   form statements carry likelihood 0). Records where the rule's parameter was not measured are
   left out of that row and counted (``not_measured``, and how many of them carry the statement).
   "Any arrhythmia statement" is `arrhythmia_codes`: every rhythm statement
   (``scp_statements.csv`` ``rhythm == 1``) except sinus rhythm ``SR``, every conduction
   statement (diagnostic class ``CD``), and the ectopy/conduction form statements ``PVC``,
   ``PAC``, ``LPR``. An irregular RR is measured here (`rr_irregularity_table`: detak's beat
   detector on the 100 Hz signal, median |ΔRR| / median RR ≥ `IRREGULAR_RR`), because the
   interval table keeps no beat times.

Re-run (writes ``s3_ptbxl.md``, ``s3_ptbxl.json`` and the PNGs)::

    .venv/bin/python -m detak.models.s3_study --out docs/results

>>> import pandas as pd
>>> t = pd.DataFrame({"age": [59, 60, 300], "quality": ["ok", "ok", "reject"]})
>>> sub, counts = elderly_subset(t)
>>> list(sub.index), counts["rejected"], counts["age_coded_over_89"]
([1], 1, 1)
>>> r = sens_spec([True, True, False, False], [True, False, False, False])
>>> r["tp"], r["fp"], r["sensitivity"], round(r["specificity"], 3)
(1, 1, 1.0, 0.667)
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from detak.models.tabular import SEED

ELDERLY_MIN_AGE = 60
AGE_CODED_OVER_89 = 300
# S3's features: RR, PR, QRS, QT, QTc, ST, R/S, BPM (QTc: Bazett, the usual "QTc").
FEATURES: tuple[str, ...] = ("rr_ms", "pr_ms", "qrs_ms", "qt_ms", "qtc_bazett_ms", "st_ms",
                             "rs_ratio", "hr_bpm")
S3_LABELS: tuple[str, ...] = ("Normal", "Abnormal", "Berpotensi Aritmia",
                              "Sangat Berpotensi Aritmia")
S3_POSITIVE: tuple[str, ...] = ("Berpotensi Aritmia", "Sangat Berpotensi Aritmia")
CLINICAL_POSITIVE: tuple[str, ...] = ("abnormal", "high risk")
S3_REPORTED = {"n": 102, "n_test": 30, "accuracy": 0.96, "correct": "29/30", "f1_macro": 0.97}
IRREGULAR_RR = 0.1  # as detak.signal.delineation.IRREGULAR_RR (AF > ~0.1, sinus < ~0.05)
ECTOPY_FORM_CODES: tuple[str, ...] = ("PVC", "PAC", "LPR")
TEST_SIZE = 0.3
COMMAND = ".venv/bin/python -m detak.models.s3_study --out docs/results"


class StudyError(ValueError):
    """The table cannot be used for the study (a missing column, too few rows of a class)."""


# ------------------------------------------------------------------------------ subset, labels


def elderly_subset(table: pd.DataFrame, min_age: int = ELDERLY_MIN_AGE
                   ) -> tuple[pd.DataFrame, dict[str, int]]:
    """Rows with ``age >= min_age`` (the 300 code for > 89 included) whose ``quality`` is not
    ``reject``; and the counts (``records``, ``elderly``, ``age_coded_over_89``, ``rejected``,
    ``kept``). Raises `StudyError` naming a missing column."""
    missing = [c for c in ("age", "quality") if c not in table.columns]
    if missing:
        raise StudyError(f"interval table lacks column(s) {', '.join(missing)}")
    age = pd.to_numeric(table["age"], errors="coerce")
    old = table[(age >= min_age).fillna(False).to_numpy(dtype=bool)]
    rejected = (old["quality"] == "reject").to_numpy(dtype=bool)
    counts = {"records": len(table), "elderly": len(old),
              "age_coded_over_89": int((pd.to_numeric(old["age"], errors="coerce")
                                        == AGE_CODED_OVER_89).sum()),
              "rejected": int(rejected.sum()), "kept": int((~rejected).sum())}
    return old[~rejected], counts


def _values(row: Mapping[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for k in ("rr_ms", "pr_ms", "qrs_ms", "qt_ms", "qtc_bazett_ms", "qtc_fridericia_ms",
              "st_ms", "rs_ratio", "hr_bpm"):
        v = row.get(k)
        out[k] = None if v is None or pd.isna(v) else float(v)
    return out


def label_records(table: pd.DataFrame, rulesets: Sequence[str] = ("s3", "clinical")
                  ) -> pd.DataFrame:
    """``table`` plus, per rule set NAME, ``NAME_label`` (None if nothing was measured) and
    ``NAME_findings`` (dict input key → finding code of the band the value fell in).

    >>> t = pd.DataFrame({"pr_ms": [250.0, None], "hr_bpm": [70.0, None], "sex": ["F", "M"]})
    >>> out = label_records(t)
    >>> list(out["s3_label"]), out["clinical_findings"].iloc[0]["pr_ms"]
    (['Sangat Berpotensi Aritmia', None], 'first_degree_av_block')
    """
    from detak.models.rules import NoMeasurementsError, load_ruleset

    out = table.copy()
    sexes = table["sex"] if "sex" in table.columns else pd.Series(None, index=table.index)
    for name in rulesets:
        rs = load_ruleset(name)
        labels: list[str | None] = []
        findings: list[dict[str, str]] = []
        for (_, row), sex in zip(table.iterrows(), sexes, strict=True):
            try:
                r = rs.label(_values(row), sex=None if pd.isna(sex) else sex)
            except NoMeasurementsError:
                labels.append(None)
                findings.append({})
                continue
            labels.append(r.label)
            findings.append({x.parameter: x.finding for x in [*r.reasons, *r.within_limits]})
        # object dtype: pandas ≥ 3 would turn a list of str/None into its string dtype, whose
        # missing value is NaN, not the None documented above
        out[f"{name}_label"] = pd.Series(labels, index=out.index, dtype=object)
        out[f"{name}_findings"] = findings
    return out


# ------------------------------------------------------------------------------ statistics


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float, float]:
    """Proportion ``k/n`` with its Wilson score interval (95 % by default); NaNs when n = 0.

    >>> [round(v, 4) for v in wilson(8, 10)]
    [0.8, 0.4902, 0.9433]
    """
    if n <= 0:
        return (math.nan, math.nan, math.nan)
    if not 0 <= k <= n:
        raise ValueError(f"wilson: need 0 <= k <= n, got k={k}, n={n}")
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (p, max(0.0, centre - half), min(1.0, centre + half))


def sens_spec(predicted: Iterable[bool], reference: Iterable[bool]) -> dict[str, Any]:
    """Counts (``tp fp fn tn n``), sensitivity, specificity and PPV, each with a 95 % Wilson
    interval (``*_ci`` = [low, high]); NaN where the denominator is 0."""
    p = np.asarray(list(predicted), dtype=bool)
    r = np.asarray(list(reference), dtype=bool)
    if p.shape != r.shape:
        raise ValueError(f"sens_spec: {p.size} predictions but {r.size} reference values")
    tp, fp = int((p & r).sum()), int((p & ~r).sum())
    fn, tn = int((~p & r).sum()), int((~p & ~r).sum())
    out: dict[str, Any] = {"n": int(p.size), "tp": tp, "fp": fp, "fn": fn, "tn": tn}
    for name, k, n in (("sensitivity", tp, tp + fn), ("specificity", tn, tn + fp),
                       ("ppv", tp, tp + fp)):
        est, lo, hi = wilson(k, n)
        out[name], out[f"{name}_ci"] = est, [lo, hi]
    return out


# ------------------------------------------------------------------------------ references


def has_any(scp_codes: pd.Series, codes: Iterable[str]) -> np.ndarray:
    """True where a record's ``scp_codes`` dict holds any of ``codes`` (any likelihood)."""
    wanted = set(codes)
    return np.array([bool(wanted & set(d or {})) for d in scp_codes], dtype=bool)


def arrhythmia_codes(statements: pd.DataFrame | None = None) -> list[str]:
    """The "any arrhythmia statement" set: rhythm statements except ``SR``, conduction
    statements (diagnostic class ``CD``) and `ECTOPY_FORM_CODES`, from ``scp_statements.csv``
    (default: the PTB-XL copy in ``data_root()``).

    >>> codes = arrhythmia_codes()
    >>> {"AFIB", "1AVB", "CLBBB", "PVC"} <= set(codes), "SR" in codes, "IMI" in codes
    (True, False, False)
    """
    if statements is None:
        from detak.data.sources import _ptbxl

        statements = _ptbxl().statements
    rhythm = statements.index[statements["rhythm"].fillna(0) == 1]
    conduction = statements.index[statements["diagnostic_class"] == "CD"]
    codes = {str(c) for c in rhythm if c != "SR"} | {str(c) for c in conduction}
    codes |= {c for c in ECTOPY_FORM_CODES if c in statements.index}
    return sorted(codes)


@dataclass(frozen=True)
class Comparison:
    """One row of the agreement table: the rule set's finding(s) on one input key taken as a
    positive test, against records carrying any of ``reference`` codes."""

    name: str
    ruleset: str
    key: str
    positive: tuple[str, ...]
    reference: tuple[str, ...]
    note: str = ""


COMPARISONS: tuple[Comparison, ...] = (
    Comparison("PR > 200 ms (s3 PR 'Sangat')", "s3", "pr_ms", ("pr_long",), ("1AVB",)),
    Comparison("PR > 200 ms (clinical first_degree_av_block)", "clinical", "pr_ms",
               ("first_degree_av_block",), ("1AVB",), "same threshold as s3's PR > 200"),
    Comparison("QRS >= 120 ms (clinical wide_qrs)", "clinical", "qrs_ms", ("wide_qrs",),
               ("CLBBB", "CRBBB", "IVCD")),
    Comparison("QRS > 120 ms (s3 QRS 'Sangat')", "s3", "qrs_ms", ("qrs_wide",),
               ("CLBBB", "CRBBB", "IVCD")),
    Comparison("QRS 110-119 ms (clinical incomplete_conduction_delay)", "clinical", "qrs_ms",
               ("incomplete_conduction_delay",), ("IRBBB",)),
    Comparison("QRS >= 110 ms (clinical, either finding)", "clinical", "qrs_ms",
               ("incomplete_conduction_delay", "wide_qrs"),
               ("CLBBB", "CRBBB", "IRBBB", "IVCD")),
    Comparison("QRS > 100 ms (s3 QRS 'Berpotensi' or 'Sangat')", "s3", "qrs_ms",
               ("qrs_prolonged", "qrs_wide"), ("CLBBB", "CRBBB", "IRBBB", "IVCD")),
    Comparison("HR < 50 bpm (clinical bradycardia)", "clinical", "hr_bpm", ("bradycardia",),
               ("SBRAD",), "PTB-XL's SBRAD is sinus rate < 60"),
    Comparison("BPM < 60 (s3 BPM 'Abnormal')", "s3", "hr_bpm", ("hr_slow",), ("SBRAD",)),
    Comparison("HR > 100 bpm (clinical tachycardia)", "clinical", "hr_bpm", ("tachycardia",),
               ("STACH",)),
    Comparison("BPM > 100 (s3 BPM 'Berpotensi' or 'Sangat')", "s3", "hr_bpm",
               ("hr_fast", "hr_very_fast"), ("STACH",)),
    Comparison("BPM > 110 (s3 BPM 'Sangat')", "s3", "hr_bpm", ("hr_very_fast",), ("STACH",)),
    Comparison("QTc >= 450 M / 460 F ms (clinical prolonged_qtc or high_risk_qtc)", "clinical",
               "qtc_bazett_ms", ("prolonged_qtc", "high_risk_qtc"), ("LNGQT",)),
    Comparison("QTc >= 500 ms (clinical high_risk_qtc)", "clinical", "qtc_bazett_ms",
               ("high_risk_qtc",), ("LNGQT",)),
    Comparison("QT > 440 ms (s3 QT 'Berpotensi' or 'Sangat')", "s3", "qt_ms",
               ("qt_prolonged", "qt_long"), ("LNGQT",)),
)


def _rule_rows(lab: pd.DataFrame, comparisons: Sequence[Comparison]) -> list[dict[str, Any]]:
    rows = []
    for c in comparisons:
        ref = has_any(lab["scp_codes"], c.reference)
        finding = lab[f"{c.ruleset}_findings"].map(lambda d, k=c.key: (d or {}).get(k))
        measured = finding.notna().to_numpy()
        pred = finding.isin(c.positive).to_numpy()
        rows.append({"test": c.name, "ruleset": c.ruleset, "reference": list(c.reference),
                     **sens_spec(pred[measured], ref[measured]),
                     "not_measured": int((~measured).sum()),
                     "not_measured_with_reference": int((~measured & ref).sum()),
                     "note": c.note})
    return rows


def _flag_row(name: str, pred: np.ndarray, ref: np.ndarray, measured: np.ndarray,
              reference: Sequence[str], ruleset: str, note: str = "") -> dict[str, Any]:
    return {"test": name, "ruleset": ruleset, "reference": list(reference),
            **sens_spec(pred[measured], ref[measured]),
            "not_measured": int((~measured).sum()),
            "not_measured_with_reference": int((~measured & ref).sum()), "note": note}


def agreement_table(lab: pd.DataFrame, arrhythmia: Sequence[str],
                    comparisons: Sequence[Comparison] = COMPARISONS) -> list[dict[str, Any]]:
    """Sensitivity/specificity rows: each of ``comparisons``; AF from ``rr_irregularity`` (if
    the column exists) and the "PR not measurable" proxy; and each rule set's record label
    (s3: Berpotensi/Sangat; clinical: abnormal/high risk) against ``arrhythmia`` codes.
    ``lab`` is `label_records` output with ``scp_codes``."""
    rows = _rule_rows(lab, comparisons)
    afib = has_any(lab["scp_codes"], ("AFIB",))
    if "rr_irregularity" in lab.columns:
        irr = pd.to_numeric(lab["rr_irregularity"], errors="coerce").to_numpy(dtype=float)
        rows.append(_flag_row(f"RR irregularity >= {IRREGULAR_RR} (median abs(dRR) / median RR)",
                              irr >= IRREGULAR_RR, afib, np.isfinite(irr), ["AFIB"], "detak",
                              "no rule set has an RR-irregularity rule yet; measured here"))
    hr_measured = lab["hr_bpm"].notna().to_numpy()
    rows.append(_flag_row("PR not measurable (no P wave found) - proxy for AF",
                          lab["pr_ms"].isna().to_numpy(), afib, hr_measured, ["AFIB"], "detak",
                          "proxy only: records whose rate was measured; PR null = positive"))
    anyarr = has_any(lab["scp_codes"], arrhythmia)
    for name, positive in (("s3", S3_POSITIVE), ("clinical", CLINICAL_POSITIVE)):
        col = lab[f"{name}_label"]
        rows.append(_flag_row(f"{name} record label in {{{', '.join(positive)}}}",
                              col.isin(positive).to_numpy(), anyarr, col.notna().to_numpy(),
                              ["any arrhythmia statement"], name))
    return rows


# ------------------------------------------------------------------------------ RR irregularity


def _rr_version() -> str:
    """Hash of the code that decides the RR irregularity: beats.py, filters.py, the
    `rr_irregularity` function and `_irregularity_of`."""
    import inspect

    from detak.signal import beats, filters
    from detak.signal.intervals import rr_irregularity

    h = hashlib.sha256(b"rr-irregularity/1")
    for mod in (beats, filters):
        h.update(Path(mod.__file__).read_bytes())
    h.update(inspect.getsource(rr_irregularity).encode())
    h.update(inspect.getsource(_irregularity_of).encode())
    return h.hexdigest()[:12]


def _irregularity_of(signal_uv: np.ndarray, fs: float) -> float:
    from detak.signal import filters
    from detak.signal.beats import detect_beats
    from detak.signal.intervals import rr_irregularity

    x = np.asarray(signal_uv, dtype=np.float64) / 1000.0
    x = np.asarray(filters.lowpass(filters.remove_baseline(x, fs), fs, 40.0), dtype=np.float64)
    b = detect_beats(x, fs)
    if b.samples.size < 5:
        return math.nan
    return rr_irregularity(b.samples)


def rr_irregularity_table(ids: Iterable[int], cache: bool = True,
                          progress: bool = False) -> pd.Series:
    """RR irregularity (median |successive RR difference| / median RR; NaN with < 5 beats) of
    PTB-XL records ``ids``, from detak's multi-lead beat detector on the 100 Hz signals (no
    resampling; ~0.04 s a record). Cached in ``cache_dir()/intervals`` by ids and code."""
    from detak.data.paths import cache_dir, save_pickle_atomic
    from detak.data.sources import _ptbxl

    ids = sorted(int(i) for i in ids)
    key = hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()[:12]
    path = cache_dir() / "intervals" / f"ptbxl_rr_irregularity_{key}-{_rr_version()}.pkl"
    if cache and path.is_file():
        return pd.read_pickle(path)
    ptb = _ptbxl()
    folds = ptb.metadata.loc[ids, "strat_fold"]
    values: dict[int, float] = {}
    done = 0
    for fold in sorted(folds.unique()):
        want = set(folds.index[folds == fold])
        fold_ids, sig = ptb.load_fold(int(fold))
        for j, i in enumerate(fold_ids):
            if int(i) in want:
                values[int(i)] = _irregularity_of(sig[j], 100.0)
                done += 1
                if progress and done % 500 == 0:
                    print(f"RR irregularity: {done}/{len(ids)}", file=sys.stderr)
    s = pd.Series([values[i] for i in ids], index=pd.Index(ids, name="ecg_id"),
                  name="rr_irregularity")
    if cache:
        save_pickle_atomic(path, s)
    return s


# ------------------------------------------------------------------------------ NB pipeline


def nb_pipeline(lab: pd.DataFrame, seed: int = SEED, test_size: float = TEST_SIZE
                ) -> dict[str, Any]:
    """S3's pipeline on ``lab`` (rows with an ``s3_label``): impute (mean) → StandardScaler →
    GaussianNB, stratified ``1 - test_size``/``test_size`` split. Returns accuracy, macro F1,
    ``per_class`` precision/recall/F1/support, ``confusion`` (rows true, columns predicted, in
    ``classes`` order), one-vs-rest ``roc`` per class (fpr, tpr, auc) and ``test_ids`` /
    ``test_pred`` (for the check against statements)."""
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
        roc_auc_score,
        roc_curve,
    )
    from sklearn.model_selection import train_test_split

    from detak.models.tabular import make_model

    data = lab[lab["s3_label"].notna()]
    y = data["s3_label"].astype(str).to_numpy()
    classes, counts = np.unique(y, return_counts=True)
    small = [f"{c!r} ({n})" for c, n in zip(classes, counts, strict=True) if n < 2]
    if len(classes) < 2 or small:
        raise StudyError("stratified split needs >= 2 classes with >= 2 rows each; got "
                         + (", ".join(small) if small else f"only {list(classes)}"))
    X = data[list(FEATURES)].to_numpy(dtype=float)
    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=test_size, stratify=y, random_state=seed)
    pipe = make_model("nb", seed=seed).fit(X[tr], y[tr])
    classes = [c for c in S3_LABELS if c in pipe.classes_]
    order = [list(pipe.classes_).index(c) for c in classes]
    proba = pipe.predict_proba(X[te])[:, order]
    pred = np.asarray(classes)[np.argmax(proba, axis=1)]
    yte = y[te]
    p, r, f, s = precision_recall_fscore_support(yte, pred, labels=classes, zero_division=0)
    per_class = {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                     "support": int(s[i])} for i, c in enumerate(classes)}
    roc = {}
    for i, c in enumerate(classes):
        truth = yte == c
        if truth.all() or not truth.any():
            continue
        fpr, tpr, _ = roc_curve(truth, proba[:, i])
        roc[c] = {"fpr": fpr.tolist(), "tpr": tpr.tolist(),
                  "auc": float(roc_auc_score(truth, proba[:, i]))}
    return {"n": len(y), "n_train": len(tr), "n_test": len(te), "seed": seed,
            "test_size": test_size, "features": list(FEATURES), "classes": classes,
            "accuracy": float(accuracy_score(yte, pred)),
            "f1_macro": float(f1_score(yte, pred, labels=classes, average="macro",
                                       zero_division=0)),
            "per_class": per_class,
            "confusion": confusion_matrix(yte, pred, labels=classes).tolist(),
            "roc": roc, "roc_auc_macro": float(np.mean([v["auc"] for v in roc.values()]))
            if roc else math.nan,
            "test_ids": [int(i) for i in data.index[te]], "test_pred": pred.tolist()}


def nb_agreement(lab: pd.DataFrame, nb: Mapping[str, Any], arrhythmia: Sequence[str]
                 ) -> list[dict[str, Any]]:
    """On the NB's test records: NB prediction Berpotensi/Sangat, and (same records) the s3 and
    clinical rule labels, against any arrhythmia statement."""
    test = lab.loc[nb["test_ids"]]
    ref = has_any(test["scp_codes"], arrhythmia)
    everyone = np.ones(len(test), dtype=bool)
    pred = np.isin(np.asarray(nb["test_pred"]), S3_POSITIVE)
    rows = [_flag_row("NB prediction in {Berpotensi Aritmia, Sangat Berpotensi Aritmia}", pred,
                      ref, everyone, ["any arrhythmia statement"], "nb (test 30 %)")]
    for name, positive in (("s3", S3_POSITIVE), ("clinical", CLINICAL_POSITIVE)):
        rows.append(_flag_row(f"{name} record label in {{{', '.join(positive)}}}",
                              test[f"{name}_label"].isin(positive).to_numpy(), ref, everyone,
                              ["any arrhythmia statement"], f"{name} (same test records)"))
    return rows


# ------------------------------------------------------------------------------ plots


def plot_confusion(nb: Mapping[str, Any], path: Path | str) -> Path:
    """The NB's test-split confusion matrix as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(nb["confusion"])
    names = [c.replace(" Berpotensi", "\nBerpotensi").replace("Berpotensi Aritmia",
                                                              "Berpotensi\nAritmia")
             for c in nb["classes"]]
    fig, ax = plt.subplots(figsize=(6, 5.2), dpi=120)
    ax.imshow(cm, cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xticks(range(len(names)), names, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set(xlabel="predicted (Gaussian NB)", ylabel="s3 rule label",
           title=f"S3 pipeline on PTB-XL elderly, test {nb['n_test']} records")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_roc(nb: Mapping[str, Any], path: Path | str) -> Path:
    """One-vs-rest ROC curves of the NB per class as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
    for c, v in nb["roc"].items():
        ax.plot(v["fpr"], v["tpr"], label=f"{c} (AUC {v['auc']:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set(xlabel="false-positive rate", ylabel="true-positive rate", xlim=(0, 1), ylim=(0, 1),
           title="Gaussian NB vs s3 labels, one-vs-rest")
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


# ------------------------------------------------------------------------------ study


def load_table(folds: Sequence[int] | None = None, limit: int | None = None,
               progress: bool | None = None) -> pd.DataFrame:
    """The PTB-XL interval table (cached; the first full build takes ~20–30 min on 2 cores)."""
    from detak.signal.interval_table import ptbxl_interval_table

    return ptbxl_interval_table(folds=folds, limit=limit, progress=progress)


def study_dataset(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series, dict[str, int]]:
    """Elderly, not rejected, s3-labelled rows: (X with `FEATURES`, y = s3 label, counts)."""
    sub, counts = elderly_subset(table)
    lab = label_records(sub, ("s3",))
    keep = lab["s3_label"].notna()
    counts["unlabelled"] = int((~keep).sum())
    lab = lab[keep]
    return lab[list(FEATURES)].astype(float), lab["s3_label"].astype(str), counts


def run_study(table: pd.DataFrame | None = None, out_dir: Path | str | None = None, *,
              folds: Sequence[int] | None = None, limit: int | None = None, seed: int = SEED,
              rr: bool = True, arrhythmia: Sequence[str] | None = None,
              command: str = COMMAND) -> dict[str, Any]:
    """The whole study; with ``out_dir`` writes ``s3_ptbxl.md``, ``s3_ptbxl.json``,
    ``s3_confusion.png`` and ``s3_roc.png``. ``table`` defaults to `load_table(folds, limit)`;
    ``rr`` measures RR irregularity (PTB-XL records only); ``arrhythmia`` defaults to
    `arrhythmia_codes`."""
    if table is None:
        table = load_table(folds, limit)
    need = [c for c in (*FEATURES, "age", "quality", "sex", "scp_codes") if c not in table.columns]
    if need:
        raise StudyError(f"interval table lacks column(s) {', '.join(need)}")
    sub, counts = elderly_subset(table)
    lab = label_records(sub)
    unl = lab["s3_label"].isna()
    counts["unlabelled"] = int(unl.sum())
    lab = lab[~unl]
    counts["labelled"] = len(lab)
    if rr:  # cached by the elderly ids (before the quality filter), so it can be built early
        age = pd.to_numeric(table["age"], errors="coerce")
        irr = rr_irregularity_table(table.index[(age >= ELDERLY_MIN_AGE).fillna(False)
                                                .to_numpy(dtype=bool)], progress=True)
        lab = lab.join(irr)
    arrhythmia = list(arrhythmia) if arrhythmia is not None else arrhythmia_codes()
    nb = nb_pipeline(lab, seed=seed)
    folds_present = sorted(int(f) for f in table["strat_fold"].unique()) \
        if "strat_fold" in table.columns else []
    res: dict[str, Any] = {
        "meta": {"data": "PTB-XL v1.0.3, interval table measured by detak "
                         "(detak.signal.interval_table)",
                 "folds": folds_present, "date": _dt.date.today().isoformat(),
                 "command": command, "seed": seed, "counts": counts,
                 "statements": "SCP statements with any likelihood (PTB-XL convention)",
                 "arrhythmia_codes": arrhythmia, "irregular_rr": IRREGULAR_RR if rr else None},
        "labels": {"s3": {k: int(v) for k, v in lab["s3_label"].value_counts().items()},
                   "clinical": {k: int(v) for k, v in
                                lab["clinical_label"].value_counts().items()}},
        "nb": nb, "s3_reported": S3_REPORTED,
        "agreement": agreement_table(lab, arrhythmia),
        "nb_agreement": nb_agreement(lab, nb, arrhythmia),
    }
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "s3_ptbxl.json").write_text(json.dumps(_json_safe(_for_file(res)), indent=1)
                                           + "\n")
        plot_confusion(nb, out / "s3_confusion.png")
        plot_roc(nb, out / "s3_roc.png")
        (out / "s3_ptbxl.md").write_text(markdown_report(res) + "\n")
    return res


def _for_file(res: Mapping[str, Any]) -> dict[str, Any]:
    """``res`` without the per-record test predictions, ROC points rounded to 4 decimals."""
    nb = {k: v for k, v in res["nb"].items() if k not in ("test_ids", "test_pred")}
    nb["roc"] = {c: {"fpr": [round(x, 4) for x in v["fpr"]],
                     "tpr": [round(x, 4) for x in v["tpr"]], "auc": v["auc"]}
                 for c, v in nb["roc"].items()}
    return {**res, "nb": nb}


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float):
        return None if not math.isfinite(obj) else obj
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return _json_safe(obj.item())
    return obj


def _pct(est: float, ci: Sequence[float]) -> str:
    if est is None or not math.isfinite(est):
        return "–"
    return f"{100 * est:.1f} % ({100 * ci[0]:.1f}–{100 * ci[1]:.1f})"


def _agreement_md(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = ["| test | reference (any likelihood) | n | TP | FP | FN | TN | sensitivity (95 % CI)"
             " | specificity (95 % CI) | PPV (95 % CI) | not measured (with reference) | note |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ref = ", ".join(r["reference"])
        lines.append(f"| {r['test']} | {ref} | {r['n']} | {r['tp']} | {r['fp']} | {r['fn']} | "
                     f"{r['tn']} | {_pct(r['sensitivity'], r['sensitivity_ci'])} | "
                     f"{_pct(r['specificity'], r['specificity_ci'])} | "
                     f"{_pct(r['ppv'], r['ppv_ci'])} | {r['not_measured']} "
                     f"({r['not_measured_with_reference']}) | {r.get('note', '')} |")
    return lines


def markdown_report(res: Mapping[str, Any]) -> str:
    """The report (subset counts, label distributions, NB results, agreement tables)."""
    m, nb, c = res["meta"], res["nb"], res["meta"]["counts"]
    folds = m["folds"]
    if not folds:
        fold_text = "given table"
    elif len(folds) == 1:
        fold_text = f"fold {folds[0]}"
    elif folds == list(range(folds[0], folds[-1] + 1)):
        fold_text = f"folds {folds[0]}–{folds[-1]}"
    else:
        fold_text = f"folds {', '.join(map(str, folds))}"
    L = ["# S3 on PTB-XL: rule labels, Naive Bayes, and the cardiologists' statements", "",
         f"Data: {m['data']}, {fold_text}; {c['records']} records, of which {c['elderly']} "
         f"elderly (age ≥ 60, including {c['age_coded_over_89']} coded 300 = over 89); "
         f"{c['rejected']} rejected by the quality check and excluded; {c['unlabelled']} "
         f"without any measured value (no label); **{c['labelled']} elderly records labelled**."
         f" Date: {m['date']}. Seed {m['seed']}.", "",
         f"Command: `{m['command']}`", "",
         "## Label distributions (elderly, labelled)", "",
         "| rule set | label | records | share |", "|---|---|---|---|"]
    for rs in ("s3", "clinical"):
        dist = res["labels"][rs]
        total = sum(dist.values())
        for k, v in dist.items():
            L.append(f"| {rs} | {k} | {v} | {100 * v / total:.1f} % |")
    L += ["", "## S3's pipeline: mean imputation, StandardScaler, stratified 70/30, Gaussian NB",
          "", f"Features: {', '.join(nb['features'])}. Train {nb['n_train']}, test "
          f"{nb['n_test']} records. Target: the s3 rule label.", "",
          "| | ours (PTB-XL elderly) | S3 reported (102 residents, test 30) |", "|---|---|---|",
          f"| accuracy | {nb['accuracy']:.3f} | {S3_REPORTED['accuracy']:.2f} "
          f"({S3_REPORTED['correct']}) |",
          f"| macro F1 | {nb['f1_macro']:.3f} | {S3_REPORTED['f1_macro']:.2f} |",
          f"| macro one-vs-rest ROC AUC | {nb['roc_auc_macro']:.3f} | (curve only) |", "",
          "| class (test split) | precision | recall | F1 | support | ROC AUC (one-vs-rest) |",
          "|---|---|---|---|---|---|"]
    for k, v in nb["per_class"].items():
        auc = nb["roc"].get(k, {}).get("auc", math.nan)
        L.append(f"| {k} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | "
                 f"{v['support']} | {auc:.3f} |")
    L += ["", "Confusion matrix (rows = s3 label, columns = NB prediction, order "
          f"{', '.join(nb['classes'])}): `{nb['confusion']}`; `s3_confusion.png`, ROC "
          "`s3_roc.png`.", "",
          "**Circularity.** The target is the s3 rule table applied to the very features the NB "
          "is given, so the NB is re-learning fixed thresholds (a deterministic function of its "
          "input). Its accuracy says how well a Gaussian model with independent features can "
          "imitate a max-of-thresholds rule; it says nothing about arrhythmia. Only the "
          "comparison with the cardiologists below does.", "",
          "## Against the cardiologists' SCP statements (what S3 could not do)", "",
          "Same elderly records. SCP statements count with any likelihood (PTB-XL's convention: "
          "rhythm and form statements carry likelihood 0). "
          "A row uses the records where its parameter was measured; the last column gives how "
          "many were not measured and, in brackets, how many of those carry the statement. "
          "95 % Wilson intervals.", ""]
    L += _agreement_md(res["agreement"])
    L += ["", "\"Any arrhythmia statement\": " + ", ".join(m["arrhythmia_codes"])
          + " (rhythm statements except SR, conduction statements of class CD, and the form "
          "statements PVC, PAC, LPR).", "",
          "### The NB prediction (test split) and the rule labels on the same test records", ""]
    L += _agreement_md(res["nb_agreement"])
    return "\n".join(L)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m detak.models.s3_study [--out DIR] [--folds ...] [--limit N] [--no-rr]``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=None, help="folder for s3_ptbxl.md/.json and the PNGs")
    ap.add_argument("--folds", type=int, nargs="*", default=None,
                    help="strat folds (default: every fold with signals, 1-9 here)")
    ap.add_argument("--limit", type=int, default=None, help="first N records of each fold")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--no-rr", action="store_true", help="skip the RR-irregularity measure")
    args = ap.parse_args(argv)
    cmd = ".venv/bin/python -m detak.models.s3_study " + " ".join(
        sys.argv[1:] if argv is None else argv)
    res = run_study(out_dir=args.out, folds=args.folds, limit=args.limit, seed=args.seed,
                    rr=not args.no_rr, command=cmd.strip())
    print(markdown_report(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

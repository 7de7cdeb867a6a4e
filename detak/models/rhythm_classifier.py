"""The learned rhythm classifier beside the rhythm rules (issue 17, item 3): gradient-boosted
trees over the beat-level rhythm features (`detak.signal.rhythm`) and the intervals.

One model per view (``12lead``, ``II``, ``I``: the single-lead devices' views), each a set of
one-vs-rest scikit-learn `HistGradientBoostingClassifier` s, one per rhythm class (a record can
be SR and 1AVB at once), trained on PTB-XL folds 1-8 (the shared feature cache's subsample) with
the number of trees and the tree size selected on fold 9 (`tools/train_rhythm_clf.py`; fold 10
is never read). Classes with too few training records are grouped or left to the rules; the
card (``NAME.json``) lists which and why, and the per-class fold-9 figures.

Kiosk-safe: numpy and scikit-learn (joblib), never torch. Files: ``detak/models/
tabular_weights/rhythm-<view>/rhythm-<view>.joblib`` and its ``.json`` card, stored the way
`detak.models.tabular` stores the kiosk's NB model: a joblib dict (format, features, classes)
whose ``objects`` entry is one standard pickle, loaded only after its SHA-256 matches the one
the card records (a pickle runs code when loaded: the check makes sure the file is the one the
card describes; load only files you trust).

Input: the rhythm features as `RhythmFeatures.to_dict()` (or just its ``"values"``, or a line
of the feature cache, which carries ``"features"`` and ``"intervals"``), plus the intervals
(``detak intervals`` values: ``pr_ms``, ``qrs_ms``, ...) when they are at hand. A missing key or
a None/NaN value is a missing feature (the trees route missing values as learnt; the model was
trained with and without the intervals, so a caller that has none loses little). Input that is
not a mapping, or has none of the model's features, or a value that is not a number, raises
`RhythmClassifierError`.

Output (`predict_findings`): the rhythm-findings contract, ``{"code", "source": "classifier",
"probability", "urgency", "reasons": [{"en", "id"}], "text", "threshold", "codes"}`` for each
class whose probability reaches the card's threshold (every class with ``all_classes=True``);
the reasons name this record's top features (the features whose replacement by the training
median lowers the probability most). ``[]`` when the view's model is not shipped, and when the
record has no RR series (``mean_rr_ms`` null: rejected by the quality check, too short, fewer
than 5 beats — the rule findings and the features' null reasons say why).

>>> from detak.data.samples import load_sample
>>> from detak.signal.rhythm import rhythm_features
>>> feats = rhythm_features(load_sample("ludb-1")).to_dict()     # sinus bradycardia, 46 bpm
>>> found = predict_findings(feats, view="12lead")
>>> all(f["source"] == "classifier" and 0 <= f["probability"] <= 1 for f in found)
True
>>> predict_findings(feats, view="no-such-view")
[]
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detak.models.rhythm_rules import NAMES, NO_FINDING, REFER_TODAY, ROUTINE_REVIEW

__all__ = ["FEATURES", "RhythmClassifierError", "RhythmModel", "feature_vector", "load_model",
           "model_path", "predict_findings", "predict_proba", "save_model"]

FILE_FORMAT = "detak-rhythm-clf/1"
VIEWS: tuple[str, ...] = ("12lead", "II", "I")
WEIGHTS_DIR = Path(__file__).resolve().parent / "tabular_weights"

# Rhythm feature values used (detak.signal.rhythm.UNITS, minus the per-record label), then the
# interval values. ectopy_pattern is encoded: bigeminy 2, trigeminy 3, none 0.
RHYTHM_KEYS: tuple[str, ...] = (
    "n_beats", "mean_rr_ms", "ventricular_rate_bpm", "longest_rr_ms", "pause_2s_count",
    "pause_3s_count", "pvc_count", "pac_count", "paced_count", "pvc_per_10s", "pac_per_10s",
    "ectopy_pattern", "rr_irregularity", "nrmssd", "cosen", "prr_rel", "petrenas_irregularity",
    "p_wave_template", "p_present_fraction", "p_peak_jitter_ms", "pr_median_ms", "pr_range_ms",
    "pr_trend_ms_per_beat", "fwave_peak_hz", "fwave_band_ratio", "fwave_rms_uv", "tq_seconds",
    "pacing_spikes")
INTERVAL_KEYS: tuple[str, ...] = ("pr_ms", "qrs_ms", "qt_ms", "qtc_bazett_ms", "hr_bpm")
FEATURES: tuple[str, ...] = RHYTHM_KEYS + tuple(f"iv_{k}" for k in INTERVAL_KEYS)
ECTOPY_CODES = {"bigeminy": 2.0, "trigeminy": 3.0}

# Plain names of the features for the reasons (en, id).
FEATURE_NAMES: dict[str, tuple[str, str]] = {
    "n_beats": ("number of beats", "jumlah denyut"),
    "mean_rr_ms": ("mean RR interval", "rata-rata interval RR"),
    "ventricular_rate_bpm": ("ventricular rate", "laju ventrikel"),
    "longest_rr_ms": ("longest RR interval", "interval RR terpanjang"),
    "pause_2s_count": ("pauses > 2 s", "jeda > 2 detik"),
    "pause_3s_count": ("pauses > 3 s", "jeda > 3 detik"),
    "pvc_count": ("ventricular premature beats", "denyut prematur ventrikel"),
    "pac_count": ("atrial premature beats", "denyut prematur atrium"),
    "paced_count": ("paced beats", "denyut pacu"),
    "pvc_per_10s": ("ventricular premature beats per 10 s",
                    "denyut prematur ventrikel per 10 detik"),
    "pac_per_10s": ("atrial premature beats per 10 s", "denyut prematur atrium per 10 detik"),
    "ectopy_pattern": ("bigeminy/trigeminy pattern", "pola bigemini/trigemini"),
    "rr_irregularity": ("RR irregularity", "ketidakteraturan RR"),
    "nrmssd": ("normalised RMSSD of RR", "RMSSD RR ternormalisasi"),
    "cosen": ("coefficient of sample entropy of RR", "koefisien entropi sampel RR"),
    "prr_rel": ("share of successive RR differing > 8 %", "porsi RR berurutan berbeda > 8 %"),
    "petrenas_irregularity": ("8-beat RR irregularity", "ketidakteraturan RR 8 denyut"),
    "p_wave_template": ("P wave in the median beat", "gelombang P pada denyut median"),
    "p_present_fraction": ("share of beats with a P wave", "porsi denyut dengan gelombang P"),
    "p_peak_jitter_ms": ("P-wave timing jitter", "variasi waktu gelombang P"),
    "pr_median_ms": ("median PR interval", "median interval PR"),
    "pr_range_ms": ("range of PR across beats", "rentang PR antar denyut"),
    "pr_trend_ms_per_beat": ("PR trend per beat", "tren PR per denyut"),
    "fwave_peak_hz": ("atrial-activity peak frequency", "frekuensi puncak aktivitas atrium"),
    "fwave_band_ratio": ("share of 4-9 Hz atrial activity", "porsi aktivitas atrium 4-9 Hz"),
    "fwave_rms_uv": ("atrial-activity amplitude", "amplitudo aktivitas atrium"),
    "tq_seconds": ("T-Q time analysed", "waktu T-Q yang dianalisis"),
    "pacing_spikes": ("pacing spikes", "lonjakan pacu"),
    "iv_pr_ms": ("PR interval", "interval PR"),
    "iv_qrs_ms": ("QRS duration", "durasi QRS"),
    "iv_qt_ms": ("QT interval", "interval QT"),
    "iv_qtc_bazett_ms": ("QTc (Bazett)", "QTc (Bazett)"),
    "iv_hr_bpm": ("heart rate", "laju jantung"),
}
UNIT_SUFFIX = {"_ms": " ms", "_bpm": " bpm", "_hz": " Hz", "_uv": " µV", "_seconds": " s"}

# Short names of the classes (en, id): the rules' names, which follow the glossary
CLASS_TEXT: dict[str, tuple[str, str]] = {c: (n["en"], n["id"]) for c, n in NAMES.items()}

# Urgency of a classifier finding: the levels of the rhythm-findings contract, the same rule
# the issue gives the rule findings (AF or flutter with a ventricular rate > 110 bpm, refer
# today; heart rate < 40 or > 150 bpm, refer today, as detak.kiosk.urgency's hr_low/hr_high).
AF_REFER_BPM = 110.0
HR_LOW_BPM = 40.0
HR_HIGH_BPM = 150.0
# the kiosk's urgency level names, as the rules give them
NONE = NO_FINDING

BASE_URGENCY: dict[str, str] = {
    "SR": NONE, "SARRH": NONE, "AFIB": ROUTINE_REVIEW, "AFLT": ROUTINE_REVIEW,
    "STACH": ROUTINE_REVIEW, "SBRAD": ROUTINE_REVIEW, "SVTAC": ROUTINE_REVIEW,
    "BIGU": ROUTINE_REVIEW, "PACE": ROUTINE_REVIEW, "1AVB": ROUTINE_REVIEW,
    "2AVB": REFER_TODAY, "3AVB": REFER_TODAY,
}


class RhythmClassifierError(ValueError):
    """The classifier cannot read this input or this model file."""


class RhythmModel:
    """One view's fitted one-vs-rest models (``estimators``: class -> binary classifier), the
    feature order, the training medians (for the reasons) and the card."""

    def __init__(self, estimators: Mapping[str, Any], features: Sequence[str],
                 medians: Mapping[str, float], card: Mapping[str, Any]) -> None:
        self.estimators = dict(estimators)
        self.features = list(features)
        self.medians = dict(medians)
        self.card = dict(card)

    @property
    def classes(self) -> list[str]:
        return list(self.estimators)

    def threshold(self, cls: str) -> float:
        return float((self.card.get("thresholds") or {}).get(cls, 0.5))

    def proba_matrix(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """P(class) for each row of ``X`` (rows x features, NaN = missing)."""
        X = np.asarray(X, dtype=float).reshape(-1, len(self.features))
        return {c: est.predict_proba(X)[:, 1] for c, est in self.estimators.items()}


def feature_vector(features: Any, intervals: Mapping[str, Any] | None = None,
                   names: Sequence[str] = FEATURES) -> np.ndarray:
    """The model's input row (float, NaN where missing) from rhythm features and intervals.

    ``features``: ``RhythmFeatures.to_dict()``, its ``"values"`` dict, or a feature-cache line
    (``{"features": ..., "intervals": ...}``); ``intervals`` overrides the line's.

    >>> v = feature_vector({"values": {"nrmssd": 0.2, "ectopy_pattern": "bigeminy"}},
    ...                    {"pr_ms": None, "qrs_ms": 96})
    >>> float(v[FEATURES.index("nrmssd")]), float(v[FEATURES.index("ectopy_pattern")])
    (0.2, 2.0)
    >>> float(v[FEATURES.index("iv_qrs_ms")]), math.isnan(v[FEATURES.index("iv_pr_ms")])
    (96.0, True)
    >>> feature_vector({"values": {"nrmssd": "high"}})
    Traceback (most recent call last):
    ...
    detak.models.rhythm_classifier.RhythmClassifierError: feature 'nrmssd' is 'high', not a number
    """
    if not isinstance(features, Mapping):
        raise RhythmClassifierError(f"rhythm features must be a mapping "
                                    f"(RhythmFeatures.to_dict()), not {type(features).__name__}")
    if "features" in features and isinstance(features.get("features"), Mapping):
        if intervals is None and isinstance(features.get("intervals"), Mapping):
            intervals = features["intervals"]
        features = features["features"]
    values = features.get("values", features)
    if not isinstance(values, Mapping):
        raise RhythmClassifierError("rhythm features' 'values' must be a mapping")
    if intervals is not None and not isinstance(intervals, Mapping):
        raise RhythmClassifierError(f"intervals must be a mapping, not "
                                    f"{type(intervals).__name__}")
    ivs = intervals or {}
    if not any(k in values for k in RHYTHM_KEYS):
        raise RhythmClassifierError("none of the rhythm features the classifier needs is "
                                    f"present (expected keys such as {', '.join(RHYTHM_KEYS[:4])})")
    out = np.full(len(names), np.nan)
    for j, name in enumerate(names):
        raw = ivs.get(name[3:]) if name.startswith("iv_") else values.get(name)
        out[j] = _number(name, raw)
    return out


def _number(name: str, raw: Any) -> float:
    if raw is None:
        return math.nan
    if name == "ectopy_pattern":
        return ECTOPY_CODES.get(str(raw), 0.0) if isinstance(raw, str) else _number("", raw)
    if isinstance(raw, (bool, np.bool_)):
        return float(raw)
    if isinstance(raw, (int, float, np.integer, np.floating)):
        v = float(raw)
        return v if math.isfinite(v) else math.nan
    raise RhythmClassifierError(f"feature {name!r} is {raw!r}, not a number")


def model_path(view: str, weights_dir: Path | str | None = None) -> Path:
    """``<weights>/rhythm-<view>/rhythm-<view>.joblib`` (may not exist)."""
    folder = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    return folder / f"rhythm-{view}" / f"rhythm-{view}.joblib"


def save_model(model: RhythmModel, path: Path | str) -> Path:
    """Write ``path`` (``NAME.joblib``) and its ``NAME.json`` card with the file's SHA-256."""
    import pickle

    import joblib

    from detak.models.model_card import sha256_file, write_card

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    objects = {"estimators": model.estimators, "medians": model.medians}
    joblib.dump({"format": FILE_FORMAT, "features": model.features, "classes": model.classes,
                 "objects": pickle.dumps(objects, protocol=pickle.HIGHEST_PROTOCOL)},
                path, compress=3)
    model.card["model_file"] = {"name": path.name, "sha256": sha256_file(path)}
    write_card(model.card, path.with_suffix(".json"))
    return path


def load_model(path: Path | str) -> RhythmModel:
    """Load a model written by `save_model`; its SHA-256 must match the card's."""
    import pickle

    import joblib

    from detak.models.model_card import read_card, sha256_file

    path = Path(path)
    card_path = path.with_suffix(".json")
    if not path.is_file() or not card_path.is_file():
        raise RhythmClassifierError(f"{path}: model or card {card_path.name} missing")
    card = read_card(card_path)
    want = (card.get("model_file") or {}).get("sha256")
    if not want or sha256_file(path) != want:
        raise RhythmClassifierError(f"{path}: SHA-256 does not match its card; not loading it")
    payload = joblib.load(path)
    if not isinstance(payload, dict) or payload.get("format") != FILE_FORMAT:
        raise RhythmClassifierError(f"{path}: not a {FILE_FORMAT} file")
    objects = pickle.loads(payload["objects"])
    return RhythmModel(objects["estimators"], payload["features"], objects["medians"], card)


@functools.lru_cache(maxsize=8)
def _shipped(view: str) -> RhythmModel | None:
    p = model_path(view)
    return load_model(p) if p.is_file() else None


def predict_proba(features: Any, *, view: str, intervals: Mapping[str, Any] | None = None,
                  model: RhythmModel | None = None) -> dict[str, float]:
    """P(class) for one record; ``{}`` when the view's model is not shipped."""
    m = model if model is not None else (_shipped(view) if view in VIEWS else None)
    if m is None:
        return {}
    x = feature_vector(features, intervals, m.features)
    with _one_thread():
        return {c: float(p[0]) for c, p in m.proba_matrix(x[None, :]).items()}


def _id_num(v: float) -> str:
    return f"{v:.2f}".replace(".", ",")


def _fmt(name: str, v: float, lang: str = "en") -> str:
    """A feature value with its unit; Indonesian uses the decimal comma."""
    if math.isnan(v):
        return "not measured" if lang == "en" else "tidak terukur"
    unit = next((u for suf, u in UNIT_SUFFIX.items() if name.endswith(suf)), "")
    text = f"{v:.0f}{unit}" if unit and abs(v) >= 10 else f"{v:.3g}{unit}"
    return text if lang == "en" else text.replace(".", ",")


def _top_features(m: RhythmModel, cls: str, x: np.ndarray, p: float,
                  k: int = 3) -> list[tuple[str, float]]:
    """Features whose replacement by the training median lowers P(cls) most (occlusion)."""
    rows = np.repeat(x[None, :], len(m.features), axis=0)
    for j, name in enumerate(m.features):
        rows[j, j] = m.medians.get(name, np.nan)
    drop = p - m.estimators[cls].predict_proba(rows)[:, 1]
    order = [j for j in np.argsort(-drop) if drop[j] > 0.005][:k]
    return [(m.features[j], float(drop[j])) for j in order]


def urgency(code: str, values: Mapping[str, Any]) -> str:
    """Urgency of a classifier finding (module constants; rate from the features).

    >>> urgency("AFIB", {"ventricular_rate_bpm": 124.0}), urgency("AFIB", {})
    ('refer today', 'routine review')
    """
    rate = values.get("ventricular_rate_bpm")
    rate = float(rate) if isinstance(rate, (int, float)) and math.isfinite(rate) else None
    level = BASE_URGENCY.get(code, ROUTINE_REVIEW)
    if rate is not None and (rate < HR_LOW_BPM or rate > HR_HIGH_BPM
                             or (code in ("AFIB", "AFLT") and rate > AF_REFER_BPM)):
        level = REFER_TODAY
    return level


def _one_thread() -> Any:
    """OpenMP limited to one thread: scoring one record, the trees' threads only cost (on a
    busy 2-core machine 2.7 s instead of 39 ms for `predict_findings`)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="openmp")


def predict_findings(features: Any, *, view: str, intervals: Mapping[str, Any] | None = None,
                     all_classes: bool = False,
                     model: RhythmModel | None = None) -> list[dict[str, Any]]:
    """The classifier's rhythm findings for one record (see the module docstring); ``[]`` when
    the view has no shipped model. Raises `RhythmClassifierError` for unreadable input."""
    with _one_thread():
        return _findings(features, view=view, intervals=intervals, all_classes=all_classes,
                         model=model)


def _findings(features: Any, *, view: str, intervals: Mapping[str, Any] | None,
              all_classes: bool, model: RhythmModel | None) -> list[dict[str, Any]]:
    m = model if model is not None else (_shipped(view) if view in VIEWS else None)
    if m is None:
        return []
    x = feature_vector(features, intervals, m.features)
    if "mean_rr_ms" in m.features and math.isnan(x[m.features.index("mean_rr_ms")]):
        return []           # no RR series (rejected, too short, < 5 beats): nothing to classify
    probs = {c: float(p[0]) for c, p in m.proba_matrix(x[None, :]).items()}
    src = features.get("features", features) if isinstance(features, Mapping) else {}
    values = src.get("values", src) if isinstance(src, Mapping) else {}
    groups = m.card.get("groups") or {}
    out = []
    for cls in sorted(probs, key=lambda c: -probs[c]):
        p, thr = probs[cls], m.threshold(cls)
        if p < thr and not all_classes:
            continue
        en_name, id_name = CLASS_TEXT.get(cls, (cls, cls))
        head = {"en": f"Classifier ({view}): {en_name}, probability {p:.2f} "
                      f"(shown from {thr:.2f}).",
                "id": f"Pengklasifikasi ({view}): {id_name}, probabilitas {_id_num(p)} "
                      f"(ditampilkan mulai {_id_num(thr)})."}
        reasons = [head]
        top = _top_features(m, cls, x, p) if p >= thr else []
        if top:
            items = [(n, FEATURE_NAMES.get(n, (n, n)), x[m.features.index(n)]) for n, _ in top]
            reasons.append({
                "en": "Weighed most: " + "; ".join(f"{en} {_fmt(n, v)}"
                                                   for n, (en, _), v in items) + ".",
                "id": "Paling berpengaruh: " + "; ".join(f"{id_} {_fmt(n, v, 'id')}"
                                                         for n, (_, id_), v in items) + "."})
        out.append({"code": cls, "source": "classifier", "probability": round(p, 4),
                    "urgency": urgency(cls, values) if p >= thr else NONE,
                    "reasons": reasons, "text": {"en": en_name, "id": id_name},
                    "threshold": thr, "codes": list(groups.get(cls, [cls])), "view": view,
                    "top_features": [n for n, _ in top]})
    return out

"""The one screening pipeline: a `Recording` in, a `Screening` out. Used by ``detak screen``,
the kiosk app and the demo; never duplicated.

Steps (each a public function of a lower layer; nothing here measures or classifies itself):

1. validation, quality and intervals: `detak.signal.analysis.analyse_recording` (flagged gaps
   allowed, as ``detak quality`` does). A recording the quality check rejects stops here: its
   reasons, every interval null, no labels, no model, urgency "no finding" with "record again".
2. rule labels: the ``s3`` and ``clinical`` rule sets (`detak.models.rules`) on the intervals,
   with the resident's sex when known; reasons in the chosen language. Rhythm findings:
   `detak.models.rhythm_rules.rhythm_block` with the quality check's beat train
   (`rhythm_record`).
3. NB: the shipped Gaussian NB (`NB_MODEL`, S3's model re-trained on PTB-XL intervals by
   ``tools/train_kiosk_nb.py``): its label and the probability of that label.
4. MI and the other superclasses, for recordings with the 12 standard leads or the 8
   independent ones (I, II, V1–V6; the limb leads are derived, `detak.calibration.leads`): the
   int8 model of ``model`` (an installed bundle first, else the shipped one) through the kiosk
   runtime (onnxruntime, never torch; `detak.export.predict.load_model`) with its fused
   Grad-CAM maps. Other recordings get every measurement defined for them and
   ``mi_reason`` says plainly that MI screening needs 12 leads.
5. urgency: `detak.kiosk.urgency.assess_urgency` (the rhythm findings of the rules included).

>>> from detak.data.samples import load_sample
>>> s = screen(load_sample("ptbxl-00286"), lang="en", source="sample://ptbxl-00286")
>>> s.quality["verdict"], s.rhythm["clinical_label"], s.mi["model"], len(s.mi["cam"]["mi"][0])
('ok', 'abnormal', 'edge', 1000)
>>> one = load_sample("ludb-1").select(["II"])
>>> s1 = screen(one, lang="en")
>>> s1.mi is None, s1.mi_reason.startswith("MI screening needs 12 leads")
(True, True)
>>> s1.intervals["hr_bpm"] > 0, s1.rhythm["clinical_label"] is not None
(True, True)
"""

from __future__ import annotations

import json
import time
from functools import cache
from pathlib import Path
from typing import Any

from detak.data.recording import Recording
from detak.kiosk.i18n import N_, check_language, translator
from detak.kiosk.rhythm_read import interval_findings, rhythm_findings
from detak.kiosk.types import Screening
from detak.kiosk.urgency import assess_urgency, finite
from detak.signal.analysis import INTERVAL_KEYS

NB_NAME = "s3-nb"
NB_MODEL = (Path(__file__).resolve().parents[1] / "models" / "tabular_weights" / NB_NAME
            / f"{NB_NAME}.joblib")
RULESETS: tuple[str, ...] = ("s3", "clinical")
MI_LEADS_8: tuple[str, ...] = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
# The stages `screen` times when given ``timings``: "record" is building the JSON record
# (NaN -> null, urgency, versions, the `Screening`).
STAGES: tuple[str, ...] = ("validation", "quality", "intervals", "rules_nb", "rhythm",
                           "cnn_cam", "record")
CAM_DIGITS = 4  # significant digits kept of each Grad-CAM value (raw maps can be ~1e-3)

MSG_NEEDS_12 = N_("MI screening needs 12 leads: this recording has {n} ({leads}).")
MSG_MI_NOT_RUN = N_("MI screening was not run: {why}")
MSG_LEADS_UNUSABLE = N_("MI screening needs all 12 leads usable: {leads} unusable ({why}). "
                        "Check the electrodes and record again.")
MSG_REJECTED = N_("Not screened: the quality check rejected the recording.")
MSG_NO_LABEL = N_("No rule label: no interval could be measured.")
MSG_NB_MISSING = N_("The NB model is not installed ({path}).")


class ScreeningInputError(ValueError):
    """`screen` was given something that is not a `Recording` (or an unknown option)."""


# ------------------------------------------------------------------------------- rules


def rule_labels(values: dict[str, Any], sex: str | None, lang: str) -> dict[str, Any]:
    """``s3`` and ``clinical`` labels of the interval ``values`` with reasons in ``lang``.

    ``interval_findings``: one structured finding per reason (rule set, finding, parameter,
    value, unit, label, text); ``findings`` is left for the rhythm findings (`rhythm_record`).

    >>> r = rule_labels({"hr_bpm": 45.0, "pr_ms": 150.0}, None, "id")
    >>> r["clinical_label"], r["clinical_label_text"], r["interval_findings"][0]["finding"]
    ('abnormal', 'abnormal', 'bradycardia')
    """
    from detak.models.rules import InvalidValueError, NoMeasurementsError, load_ruleset

    _ = translator(lang)
    out: dict[str, Any] = {"reasons": [], "interval_findings": [], "summary": {},
                           "missing": {}, "sex": sex}
    for name in ("clinical", "s3"):  # clinical first: its reasons are the nurse's first read
        rs = load_ruleset(name)
        try:
            res = rs.label(values, sex=sex)
        except (NoMeasurementsError, InvalidValueError) as err:
            out[f"{name}_label"] = out[f"{name}_label_text"] = None
            out["summary"][name] = _(MSG_NO_LABEL) if isinstance(
                err, NoMeasurementsError) else str(err)
            continue
        out[f"{name}_label"] = res.label
        out[f"{name}_label_text"] = res.label_text[lang]
        out["summary"][name] = res.summary[lang]
        out["missing"][name] = list(res.missing)
        for r in res.reasons:
            out["reasons"].append(r.message[lang])
            out["interval_findings"].append({"ruleset": name, "finding": r.finding,
                                    "parameter": r.parameter, "value": r.value,
                                    "unit": r.unit, "label": r.category,
                                    "text": r.finding_text[lang],
                                    "sex_assumed": r.sex_assumed})
    return {k: out[k] for k in ("s3_label", "s3_label_text", "clinical_label",
                                "clinical_label_text", "reasons", "interval_findings",
                                "summary", "missing", "sex")}


# ------------------------------------------------------------------------------ rhythm


def rhythm_record(rec: Recording, lang: str, beats: Any = None,
                  intervals: dict[str, Any] | None = None) -> dict[str, Any]:
    """The screening's rhythm findings and the rhythm feature values behind them:
    `detak.models.rhythm_rules.rhythm_block` on ``rec`` (every lead), given ``beats`` (the
    quality check's beat train, so the beats are not detected twice) and ``intervals`` (the
    screening's interval values, which the rhythm classifier reads beside the features).

    Keys: ``findings`` (rules findings, then the classifier's when one is shipped: code,
    source, probability, urgency, reasons in both languages), ``features`` (every feature value
    of `detak.signal.rhythm.RhythmFeatures`, without the per-beat list), ``feature_units``,
    ``feature_reasons`` (why a feature is null) and ``lead``. A recording with flagged gaps
    (lost packets) is read on its longest gap-free stretch, ``window_s`` [start, stop] s,
    with its beats found again there: never across a gap, where a filled gap could read as a
    pause or an irregular RR. A recording the features cannot be computed on
    (`detak.signal.rhythm.RhythmError`) gets no findings and the reason in
    ``feature_reasons["all"]``.
    """
    from detak.data.gaps import clean_runs, gap_spans
    from detak.models.rhythm_rules import rhythm_block
    from detak.signal.rhythm import RhythmError

    extra: dict[str, Any] = {}
    spans = gap_spans(rec) if rec.meta.get("gaps") else []
    if spans:
        a, b = max(clean_runs(spans, rec.n_samples), key=lambda r: (r[1] - r[0], -r[0]),
                   default=(0, 0))
        rec = rec.replace(signal=rec.signal[:, a:b], meta={**rec.meta, "gaps": []})
        beats = None       # the quality check's beats index the whole recording
        extra["window_s"] = [round(a / rec.fs, 2), round(b / rec.fs, 2)]
    try:
        block = rhythm_block(rec, lang=lang, beats=beats, intervals=intervals)
    except RhythmError as err:
        return {"findings": [], "features": {}, "feature_units": {},
                "feature_reasons": {"all": str(err)}, "lead": None, **extra}
    return {"findings": list(block.get("findings") or []),
            "features": dict(block.get("features") or {}),
            "feature_units": dict(block.get("units") or {}),
            "feature_reasons": dict(block.get("reasons") or {}),
            "lead": block.get("lead"), **extra,
            **({"classifier_error": block["classifier_error"]}
               if block.get("classifier_error") else {})}


# ---------------------------------------------------------------------------------- NB


@cache
def _nb(path: str) -> Any:
    from detak.models.tabular import load_model

    return load_model(path)


def nb_label(values: dict[str, Any], lang: str, path: str | Path = NB_MODEL) -> dict[str, Any]:
    """The shipped NB's label for the interval ``values``, the probability of that label, and
    all class probabilities; ``label`` None with a ``reason`` when the model is not installed.

    >>> nb_label({"hr_bpm": 50.0}, "en", "/nonexistent/nb.joblib")["reason"]
    'The NB model is not installed (/nonexistent/nb.joblib).'
    """
    from detak.models.rules import load_ruleset

    p = Path(path)
    if not p.is_file():
        return {"label": None, "probability": None, "model": NB_NAME,
                "reason": translator(lang)(MSG_NB_MISSING).format(path=str(p))}
    tm = _nb(str(p))
    pred = tm.predict({f: finite(values.get(f)) for f in tm.features})
    label = str(pred["label"])
    texts = {lb.name: lb for lb in load_ruleset("s3").labels}
    text = getattr(texts.get(label), lang, label)
    return {"label": label, "label_text": text,
            "probability": round(float(pred["probabilities"][label]), 4),
            "probabilities": {k: round(float(v), 4) for k, v in pred["probabilities"].items()},
            "imputed": list(pred["imputed"]), "model": tm.name,
            "model_sha256": (tm.card.get("model_file") or {}).get("sha256")}


# ---------------------------------------------------------------------------------- MI


def mi_recording(rec: Recording, lang: str) -> tuple[Recording | None, str | None]:
    """``rec`` with the 12 standard leads (limb leads derived from I and II when only the 8
    independent leads were recorded), or None and the reason in ``lang``.

    >>> from detak.data.samples import load_sample
    >>> rec = load_sample("ludb-1")
    >>> mi_recording(rec.select(["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]), "en")[0].n_leads
    12
    >>> mi_recording(rec.select(["I", "II", "III"]), "id")[1]
    'Skrining infark miokard membutuhkan 12 sadapan: rekaman ini memiliki 3 (I, II, III).'
    """
    from detak.calibration.leads import STANDARD_LEADS, derive_standard_leads

    if all(rec.has_lead(lead) for lead in STANDARD_LEADS):
        return rec, None
    if all(rec.has_lead(lead) for lead in MI_LEADS_8):
        return derive_standard_leads(rec), None
    return None, translator(lang)(MSG_NEEDS_12).format(n=rec.n_leads,
                                                       leads=", ".join(rec.leads))


def load_screening_model(model: str = "edge") -> Any:
    """The int8 model ``model`` for the kiosk runtime: the active installed bundle of that name
    first, else the shipped model (`detak.export.predict.resolve_model_dir`, asked on every
    call, so a bundle installed while the app runs is used from the next screening on); each
    model folder is loaded once per process. Never torch: ``runtime="auto"`` with
    ``precision="int8"`` takes only the exported ONNX / TFLite files. Raises the model errors
    of `detak.export.predict` (usage errors of ``detak screen``).

    >>> load_screening_model("edge").precision
    'int8'
    """
    from detak.export.predict import resolve_model_dir

    return _load_folder(str(resolve_model_dir(model)))


@cache
def _load_folder(folder: str) -> Any:
    from detak.export.predict import load_model

    return load_model(folder, runtime="auto", precision="int8", threads=1)


def _bundle_of(folder: Path) -> dict[str, Any] | None:
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return None
    data = json.loads(manifest.read_text(encoding="utf-8"))
    from detak.models.model_card import sha256_file

    return {"name": data.get("bundle"), "version": data.get("version"),
            "digest": sha256_file(manifest)[:16]}


def _digits(row: Any) -> list[float]:
    return [float(f"{float(v):.{CAM_DIGITS}g}") for v in row]


def _thresholds(card: dict[str, Any]) -> dict[str, dict[str, float]]:
    classes = ((card.get("operating_points") or {}).get("classes") or {})
    return {c: {k: float(v["threshold"]) for k, v in pts.items() if "threshold" in v}
            for c, pts in classes.items()}


def unusable_leads(per_lead: dict[str, Any]) -> list[str]:
    """Standard leads the quality check rejected one by one (flat, lead off, noise), in order.

    >>> unusable_leads({"V3": {"verdict": "reject"}, "I": {"verdict": "warn"}, "X": {}})
    ['V3']
    """
    from detak.calibration.leads import STANDARD_LEADS

    return [lead for lead in STANDARD_LEADS
            if (per_lead.get(lead) or {}).get("verdict") == "reject"]


def mi_screen(rec: Recording, model: str, lang: str,
              per_lead: dict[str, Any] | None = None) -> tuple[dict[str, Any] | None, str | None]:
    """Superclass probabilities and fused Grad-CAM maps of a 12-lead ``rec`` (see
    `mi_recording`), or None and why not (in ``lang``). ``per_lead``: the quality check's
    per-lead results; a lead it rejected (an electrode off) stops the model, whose input would
    be a flat or noisy lead it never saw in training."""
    from detak.data.gaps import GapError, model_window
    from detak.data.validation import RecordingError
    from detak.models.cnn_data import (
        CLASSES,
        MODEL_FS,
        N_SAMPLES,
        InputError,
        preprocess_recording,
    )

    _ = translator(lang)
    twelve, why = mi_recording(rec, lang)
    if twelve is None:
        return None, why
    notes: list[str] = []
    offset_s = 0.0      # where the model's input starts in the recording (gaps cut out)
    try:
        if twelve.meta.get("gaps"):
            twelve, note = model_window(twelve, N_SAMPLES / MODEL_FS)
            if note:
                notes.append(note)
                offset_s = float((twelve.meta.get("window_s") or [0.0])[0])
        loaded = load_screening_model(model)
        windows = preprocess_recording(twelve, loaded.standardizer)
    except (InputError, GapError, RecordingError) as err:
        return None, _(MSG_MI_NOT_RUN).format(why=str(err))
    bad = unusable_leads(per_lead or {})
    if bad:
        from detak.kiosk.quality_text import quality_texts

        first = (quality_texts((per_lead or {})[bad[0]], lang)[1] or ["rejected"])[0]
        return None, _(MSG_LEADS_UNUSABLE).format(leads=", ".join(bad), why=first)
    engine = loaded.module
    out = loaded.run(windows)           # probabilities calibrated by the card (one place)
    probs = out.probs.mean(axis=0)
    n = int(round(twelve.duration_s * MODEL_FS))
    starts = list(range(0, n - N_SAMPLES + 1, N_SAMPLES))
    if len(starts) < len(windows):
        starts.append(n - N_SAMPLES)
    cam = None
    if getattr(engine, "has_cam", False):
        cam = {"fs": float(MODEL_FS), "samples": N_SAMPLES,
               "window_starts_s": [round(offset_s + s / MODEL_FS, 2)
                                   for s in starts[:len(windows)]],
               "mi": [_digits(row) for row in out.cam_mi],
               "top": [_digits(row) for row in out.cam_top],
               "top_class": [CLASSES[int(i)] for i in out.top_class]}
    prob = {c: round(float(p), 4) for c, p in zip(CLASSES, probs, strict=True)}
    return {"probability": prob["MI"], "model": loaded.name, "runtime": loaded.runtime,
            "precision": loaded.precision, "model_file": Path(engine.path).name,
            "bundle": _bundle_of(loaded.folder), "probabilities": prob,
            "calibration": loaded.probabilities,
            "thresholds": _thresholds(loaded.card), "windows": len(windows),
            "derived_leads": list(twelve.meta.get("derived_leads") or []),
            "notes": notes, "cam": cam}, None


# ----------------------------------------------------------------------------- pipeline


def quality_record(q: dict[str, Any], lang: str) -> dict[str, Any]:
    """The screening's ``quality``: ``verdict``; ``reasons``, plain sentences in ``lang`` with
    what to do; ``details``, one technical line per reason in ``lang``; ``issues``, the
    reasons as codes with parameters (`detak.signal.quality.REASON_CODES`); ``gaps``.

    >>> flat = {"code": "flat_line", "level": "reject", "lead": "V3", "ptp_mv": 0.0,
    ...         "limit_mv": 0.02}
    >>> quality_record({"verdict": "reject", "reasons": ["V3: flat"], "issues": [flat]}, "en")
    ... # doctest: +NORMALIZE_WHITESPACE +ELLIPSIS
    {'verdict': 'reject',
     'reasons': ['Electrode V3 is loose — press it back onto the skin and record again.'],
     'details': ['V3: flat line (peak-to-peak 0 mV, below 0.02 mV)'], 'issues': [{...}]}
    """
    from detak.kiosk.quality_text import quality_texts

    verdict = q.get("verdict", "reject")
    plain, detail = quality_texts(q, lang)
    out: dict[str, Any] = {"verdict": verdict,
                           "reasons": plain if verdict != "ok" else [],
                           "details": detail, "issues": [dict(i) for i in q.get("issues") or []]}
    if q.get("gaps"):
        out["gaps"] = q["gaps"]
    return out


def _versions(mi: dict[str, Any] | None, nb: dict[str, Any] | None, model: str) -> dict:
    import detak
    from detak.export.bundle import rule_set_versions

    return {"detak": detak.__version__,
            "model": (f"{mi['model']} {mi['precision']} {mi['runtime']} ({mi['model_file']})"
                      if mi else model),
            "bundle": (mi or {}).get("bundle"),
            "nb": f"{nb.get('model')} sha256:{(nb.get('model_sha256') or '')[:16]}" if nb
            else None,
            "rulesets": rule_set_versions()}


def _name(value: str | None) -> str | None:
    """A header name as one line of text, None when empty."""
    text = " ".join(str(value or "").split())
    return text or None


def screen(recording: Recording, *, lang: str = "id", model: str = "edge",
           resident_id: str | None = None, device: dict[str, Any] | None = None,
           source: str | None = None, sex: str | None = None,
           facility: str | None = None, nurse: str | None = None,
           nb_model: str | Path = NB_MODEL,
           timings: dict[str, float] | None = None) -> Screening:
    """Screen one recording (see the module docstring); never raises for the recording's
    content (a bad recording is a rejected screening), only for bad arguments
    (`ScreeningInputError`, `detak.kiosk.i18n.LanguageError`) or a model that cannot be loaded.

    ``sex`` ('M'/'F') picks sex-specific QTc limits; default: the recording's metadata.
    ``device``: what recorded it (URL, model, serial), stored as given. ``facility``,
    ``nurse``: names for the report's header, stored with the screening.
    ``timings``: when a dict, filled with the seconds of each stage (`STAGES`; a rejected
    recording stops after ``quality``), for ``benchmarks/kiosk.py``; the result is the same.
    """
    lang = check_language(lang)
    if not isinstance(recording, Recording):
        raise ScreeningInputError(f"screen() needs a Recording, got {type(recording).__name__}")
    from detak.models.rules import parse_sex
    from detak.signal.analysis import analyse_recording
    from detak.signal.intervals_cli import _json_safe

    _ = translator(lang)
    rec = recording
    keep: dict[str, Any] = {}   # the quality check's beat train, for the rhythm findings
    analysis = analyse_recording(rec, timings=timings, keep=keep)
    lap = time.perf_counter()
    analysis = _json_safe(analysis)  # NaN -> null: the record is plain JSON
    q = analysis.get("quality") or {}
    quality = quality_record(q, lang)
    recording_info = {"name": rec.name, "fs": finite(rec.fs), "leads": list(rec.leads),
                      "duration_s": analysis.get("duration_s"),
                      "gaps": list(rec.meta.get("gaps") or [])}
    intervals = {k: analysis.get(k) for k in INTERVAL_KEYS}
    intervals["reasons"] = dict(analysis.get("reasons") or {})
    dev = dict(device or {})
    if rec.device_id and "id" not in dev:
        dev["id"] = rec.device_id
    common = {"source": source or rec.name or "recording", "lang": lang,
              "resident_id": resident_id, "recording": recording_info, "quality": quality,
              "intervals": intervals, "device": dev or None, "calibration": rec.calibration,
              "facility": _name(facility), "nurse": _name(nurse)}
    if quality["verdict"] == "reject":
        from detak.kiosk.quality_text import main_reason

        why = main_reason(quality["issues"], lang)
        urgency = assess_urgency(quality="reject", quality_reasons=[why] if why
                                 else quality["details"], lang=lang)
        return Screening.new(**common, mi_reason=_(MSG_REJECTED), urgency=urgency.to_dict(),
                             versions=_versions(None, None, model))
    sex_code = parse_sex(sex if sex is not None else rec.meta.get("sex"), strict=sex is not None)
    values = {k: finite(intervals[k]) for k in INTERVAL_KEYS}
    now = time.perf_counter()
    if timings is not None:
        timings["record"], lap = now - lap, now
    rhythm = rule_labels(values, sex_code, lang)
    nb = nb_label(values, lang, nb_model)
    now = time.perf_counter()
    if timings is not None:
        timings["rules_nb"], lap = now - lap, now
    rhythm.update(rhythm_record(rec, lang, keep.get("beats"), intervals))
    now = time.perf_counter()
    if timings is not None:
        timings["rhythm"], lap = now - lap, now
    mi, mi_reason = mi_screen(rec, model, lang, q.get("per_lead") or {})
    now = time.perf_counter()
    if timings is not None:
        timings["cnn_cam"], lap = now - lap, now
    clinical_rows = [f for f in interval_findings(rhythm) if f["ruleset"] == "clinical"]
    urgency = assess_urgency(quality=quality["verdict"], intervals=values,
                             clinical_findings=[(f["finding"], f["label"])
                                                for f in clinical_rows],
                             clinical_texts={f["finding"]: f["text"] for f in clinical_rows},
                             rhythm=rhythm_findings(rhythm), mi=mi,
                             notes=[mi_reason] if mi_reason else [], lang=lang)
    out = Screening.new(**common, fiducials=analysis.get("fiducials") or {}, rhythm=rhythm,
                        nb=nb, mi=mi, mi_reason=mi_reason, urgency=urgency.to_dict(),
                        versions=_versions(mi, nb, model))
    if timings is not None:
        timings["record"] += time.perf_counter() - lap
    return out

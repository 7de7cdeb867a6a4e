"""Rule labellers: ECG intervals → a label a nurse can read, with its reasons in English and
Bahasa Indonesia.

A rule set is a user-editable TOML file (``detak/models/rulesets/*.toml``; copy one, edit it,
load it by path). Two ship with detak:

* ``s3`` — study S3's Table 3 (labels ``Normal``, ``Abnormal``, ``Berpotensi Aritmia``,
  ``Sangat Berpotensi Aritmia``). The printed table overlaps and has gaps; ``s3.toml`` resolves
  them by one policy, written out at the top of the file (P1–P9): ranges closed on their written
  upper end and continued upward to the next column (BPM 100.5 and 110.5 → the next column, BPM
  111 → Sangat); a shared end point goes to the column it closes (ST 120 → Normal); a nested
  range wins inside its parent (PR 190–200 → Berpotensi); identical ranges → the least severe
  column (RR 600–1000 → Normal, R/S > 1 → Abnormal); RR > 1000 → Abnormal (like BPM < 60);
  R/S "= 1" means |R/S − 1| ≤ 0.05; the record label is the most severe parameter label in the
  order Normal < Abnormal < Berpotensi Aritmia < Sangat Berpotensi Aritmia.
* ``clinical`` — adult limits from the AHA/ACCF/HRS 2007/2009 ECG recommendations and the 2018
  ACC/AHA/HRS bradycardia guideline (sources cited in ``clinical.toml``): finding codes
  ``bradycardia``, ``tachycardia``, ``short_pr``, ``first_degree_av_block``,
  ``incomplete_conduction_delay``, ``wide_qrs``, ``short_qtc``, ``prolonged_qtc`` (sex-specific;
  men's limit when sex is unknown, said in the reason), ``high_risk_qtc``; labels ``normal`` <
  ``borderline`` < ``abnormal`` < ``high risk``. QTc is Bazett's unless the file says
  ``key = "qtc_fridericia_ms"``.

The engine is the same for both. Every parameter of a rule set reads one input key (the
`detak intervals` keys ``rr_ms pr_ms qrs_ms qt_ms qtc_bazett_ms qtc_fridericia_ms st_ms rs_ratio
hr_bpm``) and owns *bands*: intervals such as ``"[120, 190)"`` that cover every value exactly
once (checked when the file is loaded, so an edit cannot create a gap or an overlap), each with
a label, a finding code and texts. A band may have one range per sex (``{ M = "...", F =
"..." }``). The record label is the most severe band label over the measured parameters
(severity = order of ``[[labels]]``, least severe first; the first label is "within limits").

Missing values (None/NaN) are listed in ``RuleResult.missing`` and in the summary, never
treated as normal; the label comes from the measured parameters. With no measured parameter at
all, `RuleSet.label` raises `NoMeasurementsError` instead of returning a label. Negative or
infinite values raise `InvalidValueError`; a malformed rule file raises `RuleSetError` naming
the file and the key.

>>> rs = load_ruleset("s3")
>>> r = rs.label({"pr_ms": 252, "hr_bpm": 83, "qrs_ms": 90, "st_ms": None})
>>> r.label, r.missing
('Sangat Berpotensi Aritmia', ['rr_ms', 'qt_ms', 'st_ms', 'rs_ratio'])
>>> r.reasons[0].message["en"]
'PR 252 ms (PR > 200 ms): long PR (slowed atrioventricular conduction) → Sangat Berpotensi \
Aritmia (high potential for arrhythmia)'
>>> r.reasons[0].message["id"]
'PR 252 ms (PR > 200 ms): PR panjang (konduksi atrioventrikular melambat) → Sangat Berpotensi \
Aritmia'
"""

from __future__ import annotations

import math
import numbers
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from detak.models.rhythm_thresholds import RhythmRulesError, RhythmThresholds, parse_rhythm
from detak.signal.analysis import INTERVAL_KEYS

RULESET_DIR = Path(__file__).parent / "rulesets"
LANGUAGES: tuple[str, ...] = ("en", "id")
SCHEMA_VERSION = 1

_SEXES = ("M", "F")
_SEX_ALIASES = {
    "m": "M", "male": "M", "man": "M", "men": "M", "l": "M", "laki-laki": "M", "pria": "M",
    "f": "F", "female": "F", "woman": "F", "women": "F", "p": "F", "perempuan": "F",
    "wanita": "F", "w": "F",
}
_SEX_TEXT = {"en": {"M": "men", "F": "women"}, "id": {"M": "laki-laki", "F": "perempuan"}}
_TOP_KEYS = {"schema", "name", "title", "source", "sex_unknown", "labels", "parameters",
             "rhythm"}
_LABEL_KEYS = {"name", "en", "id"}
_PARAM_KEYS = {"key", "name", "unit", "bands"}
_BAND_KEYS = {"range", "label", "finding", "table", "en", "id"}
_RANGE = re.compile(r"\s*([\[(])\s*([^,\s]+)\s*,\s*([^\])\s]+)\s*([\])])\s*")


class RuleSetError(ValueError):
    """A rule file cannot be used: TOML syntax, a missing or unknown key, a bad range, bands
    that leave a gap or overlap. ``source`` is the file, ``key`` the dotted key path
    (``parameters.pr.bands[2].range``)."""

    def __init__(self, message: str, *, source: str = "", key: str = "") -> None:
        self.source, self.key = source, key
        where = ", ".join(p for p in (source, key) if p)
        super().__init__(f"{where}: {message}" if where else message)


class NoMeasurementsError(ValueError):
    """None of the rule set's parameters has a value: detak will not label the record.

    ``missing`` lists the input keys without a value."""

    def __init__(self, ruleset: str, missing: list[str]) -> None:
        self.ruleset, self.missing = ruleset, missing
        super().__init__(f"rule set {ruleset!r}: no measured value to label (missing: "
                         f"{', '.join(missing)}); the record is not labelled")


class InvalidValueError(ValueError):
    """An input value is not a usable measurement (text, negative, infinite, unknown sex).

    ``parameter`` is the input key (or ``"sex"``), ``value`` the value given."""

    def __init__(self, parameter: str, value: Any, problem: str) -> None:
        self.parameter, self.value, self.problem = parameter, value, problem
        super().__init__(f"{parameter}: {problem} (got {value!r})")


def _fmt(x: float, lang: str = "en") -> str:
    """Short text of a number; Bahasa Indonesia writes a decimal comma.

    >>> _fmt(100.5), _fmt(100.5, "id"), _fmt(252.0), _fmt(float("inf"))
    ('100.5', '100,5', '252', 'inf')
    """
    text = f"{x:.6g}"
    return text.replace(".", ",") if lang == "id" else text


@dataclass(frozen=True)
class Range:
    """An interval of the real line; ``lower``/``upper`` may be ∓inf (then open)."""

    lower: float
    upper: float
    lower_closed: bool
    upper_closed: bool

    @classmethod
    def parse(cls, text: str) -> Range:
        """``"[120, 190)"``, ``"(-inf, 600)"``, ``"(200, inf)"``; ``[``/``]`` include the end.

        >>> Range.parse("[190, 200]").contains(200.0), Range.parse("(200, inf)").contains(200.0)
        (True, False)
        """
        m = _RANGE.fullmatch(text) if isinstance(text, str) else None
        if not m:
            raise ValueError(f"{text!r} is not a range like \"[120, 190)\" or \"(200, inf)\"")
        try:
            lo, hi = float(m.group(2)), float(m.group(3))
        except ValueError:
            raise ValueError(f"{text!r}: the ends must be numbers or -inf/inf") from None
        if math.isnan(lo) or math.isnan(hi):
            raise ValueError(f"{text!r}: the ends must be numbers or -inf/inf")
        r = cls(lo, hi, m.group(1) == "[", m.group(4) == "]")
        if (math.isinf(lo) and r.lower_closed) or (math.isinf(hi) and r.upper_closed):
            raise ValueError(f"{text!r}: an infinite end must be open: '(' or ')'")
        if lo > hi or (lo == hi and not (r.lower_closed and r.upper_closed)):
            raise ValueError(f"{text!r} is empty (lower end above upper end)")
        return r

    def contains(self, x: float) -> bool:
        above = x >= self.lower if self.lower_closed else x > self.lower
        below = x <= self.upper if self.upper_closed else x < self.upper
        return above and below

    @property
    def text(self) -> str:
        return (f"{'[' if self.lower_closed else '('}{_fmt(self.lower)}, {_fmt(self.upper)}"
                f"{']' if self.upper_closed else ')'}")

    def condition(self, name: str, unit: str, lang: str = "en") -> str:
        """The range as a comparison a nurse reads: ``PR > 200 ms``, ``120 ≤ PR < 190 ms``."""
        u = f" {unit}" if unit else ""
        lo, hi = _fmt(self.lower, lang), _fmt(self.upper, lang)
        le_lo = "≤" if self.lower_closed else "<"
        le_hi = "≤" if self.upper_closed else "<"
        if math.isinf(self.lower) and math.isinf(self.upper):
            return f"{name}: any value"
        if math.isinf(self.lower):
            return f"{name} {le_hi} {hi}{u}"
        if math.isinf(self.upper):
            return f"{name} {'≥' if self.lower_closed else '>'} {lo}{u}"
        return f"{lo} {le_lo} {name} {le_hi} {hi}{u}"

    def to_dict(self) -> dict[str, Any]:
        return {"lower": None if math.isinf(self.lower) else self.lower,
                "upper": None if math.isinf(self.upper) else self.upper,
                "lower_inclusive": self.lower_closed, "upper_inclusive": self.upper_closed,
                "text": self.text}


@dataclass(frozen=True)
class Label:
    """A record/parameter label and its display texts."""

    name: str
    en: str
    id: str
    severity: int


@dataclass(frozen=True)
class Band:
    """One row of a parameter: where it applies (per sex or for all), its label and texts."""

    ranges: Mapping[str, Range]     # {"*": r} or {"M": r, "F": r}
    label: str
    finding: str
    en: str
    id: str
    table: str = ""

    @property
    def sex_specific(self) -> bool:
        return "*" not in self.ranges

    def range_for(self, sex: str) -> Range:
        return self.ranges.get("*") or self.ranges[sex]


@dataclass(frozen=True)
class Parameter:
    """A measured quantity (input ``key``), its display ``name``/``unit`` and its bands."""

    id: str
    key: str
    name: str
    unit: str
    bands: tuple[Band, ...]


@dataclass(frozen=True)
class Reason:
    """Why one parameter got its label: value, the band (range) it fell in, texts."""

    parameter: str
    name: str
    value: float
    unit: str
    category: str
    finding: str
    range: Range
    severity: int
    message: Mapping[str, str]
    finding_text: Mapping[str, str] = field(default_factory=dict)
    sex: str | None = None          # sex whose limits were used (sex-specific bands only)
    sex_assumed: bool = False       # True when sex was unknown and the default was used
    table: str = ""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "parameter": self.parameter, "name": self.name, "value": self.value,
            "unit": self.unit, "category": self.category, "finding": self.finding,
            "range": self.range.to_dict(), "finding_text": dict(self.finding_text),
            "message": dict(self.message)}
        if self.sex is not None:
            d["limits_for_sex"] = self.sex
            d["sex_assumed"] = self.sex_assumed
        if self.table:
            d["table"] = self.table
        return d


@dataclass(frozen=True)
class RuleResult:
    """A record's label with its reasons.

    ``reasons``: parameters outside their within-limits band, most severe first;
    ``within_limits``: the other measured parameters (so a normal label is explained too);
    ``missing``: input keys without a value; ``summary``: one sentence per language.
    """

    ruleset: str
    label: str
    label_text: Mapping[str, str]
    reasons: list[Reason]
    within_limits: list[Reason]
    missing: list[str]
    sex: str | None
    summary: Mapping[str, str]

    @property
    def complete(self) -> bool:
        """True when every parameter of the rule set had a value."""
        return not self.missing

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``label``, ``reasons``, ``missing``, ``within_limits``, ``summary`` ...

        >>> import json
        >>> d = load_ruleset("clinical").label({"hr_bpm": 45.0}).to_dict()
        >>> d["label"], [r["finding"] for r in d["reasons"]], len(json.dumps(d)) > 0
        ('abnormal', ['bradycardia'], True)
        """
        return {"ruleset": self.ruleset, "label": self.label,
                "label_text": dict(self.label_text),
                "reasons": [r.to_dict() for r in self.reasons],
                "missing": list(self.missing), "complete": self.complete,
                "within_limits": [r.to_dict() for r in self.within_limits],
                "sex": self.sex, "summary": dict(self.summary)}


def parse_sex(value: Any, *, strict: bool = True) -> str | None:
    """``'M'``, ``'F'`` or None (unknown) from the spellings records use (``male``, ``F``,
    Indonesian ``L``/``P``...). Unknown spellings raise `InvalidValueError` when ``strict``.

    >>> parse_sex("female"), parse_sex(" m "), parse_sex(""), parse_sex(None)
    ('F', 'M', None, None)
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    if text.lower() in {"", "nan", "na", "n/a", "none", "null", "unknown", "u", "<na>"}:
        return None
    sex = _SEX_ALIASES.get(text.lower())
    if sex is None and strict:
        raise InvalidValueError("sex", value, "sex must be 'M' or 'F' (or empty if unknown)")
    return sex


def _value(raw: Any, key: str) -> float | None:
    if raw is None or type(raw).__name__ in {"NAType", "NaTType"}:
        return None
    if isinstance(raw, bool) or not isinstance(raw, numbers.Real):
        raise InvalidValueError(key, raw, "expected a number or None")
    x = float(raw)
    if math.isnan(x):
        return None
    if math.isinf(x):
        raise InvalidValueError(key, raw, "a measurement cannot be infinite")
    if x < 0:
        raise InvalidValueError(key, raw, "a duration, rate or amplitude ratio cannot be "
                                          "negative")
    return x


@dataclass(frozen=True)
class RuleSet:
    """Rules loaded from one TOML file; `label` applies them to one record's intervals."""

    name: str
    title: str
    labels: tuple[Label, ...]
    parameters: tuple[Parameter, ...]
    sex_unknown: str | None = None
    source: str = ""
    path: str = ""
    #: thresholds of the rhythm findings (`detak.models.rhythm_rules`), from the optional
    #: ``[rhythm]`` section; None when the file has none (s3)
    rhythm: RhythmThresholds | None = None
    _by_name: Mapping[str, Label] = field(default_factory=dict, repr=False, compare=False)

    @property
    def keys(self) -> list[str]:
        """Input keys the rule set reads, in file order."""
        return [p.key for p in self.parameters]

    @property
    def label_names(self) -> list[str]:
        """Label strings, least severe first."""
        return [lb.name for lb in self.labels]

    def _reason(self, p: Parameter, x: float, sex: str | None) -> Reason:
        use_sex = sex or self.sex_unknown or "M"
        band = next(b for b in p.bands if b.range_for(use_sex).contains(x))
        rng = band.range_for(use_sex)
        lab = self._by_name[band.label]
        msg = {}
        for lang in LANGUAGES:
            cond = rng.condition(p.name, p.unit, lang)
            if band.sex_specific:
                who = _SEX_TEXT[lang][use_sex]
                if lang == "en":
                    cond += f", limit for {who}" + ("; sex unknown" if sex is None else "")
                else:
                    cond += f", batas untuk {who}" + (
                        "; jenis kelamin tidak diketahui" if sex is None else "")
            u = f" {p.unit}" if p.unit else ""
            finding = band.en if lang == "en" else band.id
            msg[lang] = (f"{p.name} {_fmt(x, lang)}{u} ({cond}): {finding} → "
                         f"{lab.en if lang == 'en' else lab.id}")
        return Reason(parameter=p.key, name=p.name, value=x, unit=p.unit, category=band.label,
                      finding=band.finding, range=rng, severity=lab.severity, message=msg,
                      finding_text={"en": band.en, "id": band.id},
                      sex=use_sex if band.sex_specific else None,
                      sex_assumed=band.sex_specific and sex is None, table=band.table)

    def label(self, values: Mapping[str, Any], sex: str | None = None) -> RuleResult:
        """Label one record from its interval values (extra keys are ignored).

        ``sex`` ('M'/'F'; default ``values["sex"]`` if present) selects sex-specific limits.
        Raises `NoMeasurementsError` if no parameter has a value, `InvalidValueError` for a
        negative, infinite or non-numeric value.

        >>> rs = load_ruleset("clinical")
        >>> rs.label({"qtc_bazett_ms": 455.0}, sex="F").label
        'normal'
        >>> r = rs.label({"qtc_bazett_ms": 455.0})
        >>> r.label, r.reasons[0].finding, r.reasons[0].sex_assumed
        ('abnormal', 'prolonged_qtc', True)
        """
        if sex is None and "sex" in values:
            sex = values["sex"]
        sex = parse_sex(sex)
        evaluated: list[tuple[int, Reason]] = []
        missing: list[str] = []
        for i, p in enumerate(self.parameters):
            x = _value(values.get(p.key), p.key)
            if x is None:
                missing.append(p.key)
            else:
                evaluated.append((i, self._reason(p, x, sex)))
        if not evaluated:
            raise NoMeasurementsError(self.name, missing)
        worst = max(r.severity for _, r in evaluated)
        label = self.labels[worst]
        fired = [r for _, r in sorted(evaluated, key=lambda ir: (-ir[1].severity, ir[0]))
                 if r.severity > 0]
        normal = [r for _, r in evaluated if r.severity == 0]
        names = {p.key: p.name for p in self.parameters}
        summary = {}
        for lang in LANGUAGES:
            en = lang == "en"
            text = label.en if en else label.id
            if fired:
                parts = [f"{r.name} {_fmt(r.value, lang)}{' ' + r.unit if r.unit else ''}: "
                         f"{r.finding_text[lang]}" for r in fired]
                text += ": " + "; ".join(parts)
            else:
                text += (": all measured values within limits" if en
                         else ": semua nilai yang terukur dalam batas normal")
            if missing:
                text += (". Not measured: " if en else ". Tidak terukur: ") + ", ".join(
                    names[k] for k in missing)
            summary[lang] = text + "."
        return RuleResult(ruleset=self.name, label=label.name,
                          label_text={"en": label.en, "id": label.id}, reasons=fired,
                          within_limits=normal, missing=missing, sex=sex, summary=summary)


# ----------------------------------------------------------------------------- loading


def _err(msg: str, source: str, key: str) -> RuleSetError:
    return RuleSetError(msg, source=source, key=key)


def _check_keys(table: Any, allowed: set[str], required: set[str], source: str,
                key: str) -> None:
    if not isinstance(table, dict):
        raise _err(f"expected a table, got {type(table).__name__}", source, key)
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise _err(f"unknown key(s) {', '.join(map(repr, unknown))}; allowed: "
                   f"{', '.join(sorted(allowed))}", source, key)
    absent = sorted(required - set(table))
    if absent:
        where = f"{key}.{absent[0]}" if key else absent[0]
        raise _err("required key missing", source, where)


def _text(table: dict, name: str, source: str, key: str, *, allow_empty: bool = False) -> str:
    v = table.get(name, "")
    if not isinstance(v, str) or (not allow_empty and not v.strip()):
        raise _err(f"must be a non-empty text, got {v!r}", source, f"{key}.{name}")
    return v.strip()


def _parse_band(raw: Any, source: str, key: str, labels: Mapping[str, Label]) -> Band:
    _check_keys(raw, _BAND_KEYS, {"range", "label", "finding", "en", "id"}, source, key)
    rng_raw = raw["range"]
    ranges: dict[str, Range] = {}
    try:
        if isinstance(rng_raw, str):
            ranges["*"] = Range.parse(rng_raw)
        elif isinstance(rng_raw, dict):
            if set(rng_raw) != set(_SEXES):
                raise ValueError(f"a per-sex range needs exactly the keys M and F, got "
                                 f"{sorted(rng_raw)}")
            for s in _SEXES:
                ranges[s] = Range.parse(rng_raw[s])
        else:
            raise ValueError(f"expected a range text or a table {{ M = ..., F = ... }}, got "
                             f"{rng_raw!r}")
    except ValueError as e:
        raise _err(str(e), source, f"{key}.range") from None
    label = _text(raw, "label", source, key)
    if label not in labels:
        raise _err(f"unknown label {label!r}; the [[labels]] are "
                   f"{', '.join(map(repr, labels))}", source, f"{key}.label")
    return Band(ranges=ranges, label=label, finding=_text(raw, "finding", source, key),
                en=_text(raw, "en", source, key), id=_text(raw, "id", source, key),
                table=_text(raw, "table", source, key, allow_empty=True))


def _check_partition(bands: tuple[Band, ...], sex: str, source: str, key: str) -> None:
    """Every real value must fall in exactly one band."""
    rs = sorted(((b.range_for(sex), b) for b in bands),
                key=lambda rb: (rb[0].lower, not rb[0].lower_closed))
    who = f" (sex {sex})" if sex != "*" else ""
    first, last = rs[0][0], max((r for r, _ in rs), key=lambda r: (r.upper, r.upper_closed))
    if not math.isinf(first.lower):
        raise _err(f"bands{who} leave values below {_fmt(first.lower)} uncovered: the lowest "
                   f"band is {first.text}; start one at -inf", source, key)
    if not math.isinf(last.upper):
        raise _err(f"bands{who} leave values above {_fmt(last.upper)} uncovered: the highest "
                   f"band is {last.text}; end one at inf", source, key)
    for (a, _), (b, _) in zip(rs, rs[1:], strict=False):
        if a.upper < b.lower or (a.upper == b.lower and not a.upper_closed
                                 and not b.lower_closed):
            gap = (f"({_fmt(a.upper)}, {_fmt(b.lower)})" if a.upper < b.lower
                   else f"the value {_fmt(a.upper)}")
            raise _err(f"bands{who} {a.text} and {b.text} leave a gap: {gap} falls in no band",
                       source, key)
        if a.upper > b.lower or (a.upper == b.lower and a.upper_closed and b.lower_closed):
            raise _err(f"bands{who} {a.text} and {b.text} overlap: a value would get two "
                       f"labels", source, key)


def parse_ruleset(data: Mapping[str, Any], source: str = "") -> RuleSet:
    """Build a `RuleSet` from parsed TOML (``source`` names the file in errors).

    >>> rs = parse_ruleset({"schema": 1, "name": "hr", "labels": [
    ...     {"name": "ok", "en": "ok", "id": "baik"}, {"name": "slow", "en": "slow",
    ...     "id": "lambat"}], "parameters": {"hr": {"key": "hr_bpm", "name": "HR", "bands": [
    ...     {"range": "(-inf, 50)", "label": "slow", "finding": "brady", "en": "slow",
    ...      "id": "lambat"},
    ...     {"range": "[50, inf)", "label": "ok", "finding": "hr_ok", "en": "ok", "id": "baik"}
    ... ]}}})
    >>> rs.label({"hr_bpm": 42}).label
    'slow'
    """
    data = dict(data)
    _check_keys(data, _TOP_KEYS, {"schema", "name", "labels", "parameters"}, source, "")
    if data["schema"] != SCHEMA_VERSION:
        raise _err(f"schema {data['schema']!r} is not supported (this detak reads schema "
                   f"{SCHEMA_VERSION})", source, "schema")
    name = _text(data, "name", source, "")
    raw_labels = data["labels"]
    if not isinstance(raw_labels, list) or not raw_labels:
        raise _err("needs at least one [[labels]] entry, least severe first", source, "labels")
    labels: dict[str, Label] = {}
    for i, lb in enumerate(raw_labels):
        k = f"labels[{i}]"
        _check_keys(lb, _LABEL_KEYS, _LABEL_KEYS, source, k)
        lname = _text(lb, "name", source, k)
        if lname in labels:
            raise _err(f"label {lname!r} is defined twice", source, f"{k}.name")
        labels[lname] = Label(lname, _text(lb, "en", source, k), _text(lb, "id", source, k), i)
    raw_params = data["parameters"]
    if not isinstance(raw_params, dict) or not raw_params:
        raise _err("needs at least one [parameters.NAME] table", source, "parameters")
    params: list[Parameter] = []
    seen_keys: dict[str, str] = {}
    any_sex = False
    for pid, raw in raw_params.items():
        k = f"parameters.{pid}"
        _check_keys(raw, _PARAM_KEYS, {"key", "name", "bands"}, source, k)
        ikey = _text(raw, "key", source, k)
        if ikey not in INTERVAL_KEYS:
            raise _err(f"{ikey!r} is not an interval key; use one of "
                       f"{', '.join(INTERVAL_KEYS)}", source, f"{k}.key")
        if ikey in seen_keys:
            raise _err(f"{ikey!r} is already read by parameters.{seen_keys[ikey]}", source,
                       f"{k}.key")
        seen_keys[ikey] = pid
        unit = raw.get("unit", "")
        if not isinstance(unit, str):
            raise _err(f"must be a text, got {unit!r}", source, f"{k}.unit")
        raw_bands = raw["bands"]
        if not isinstance(raw_bands, list) or not raw_bands:
            raise _err("needs at least one [[...bands]] entry", source, f"{k}.bands")
        bands = tuple(_parse_band(b, source, f"{k}.bands[{j}]", labels)
                      for j, b in enumerate(raw_bands))
        findings = [b.finding for b in bands]
        dup = next((f for f in findings if findings.count(f) > 1), None)
        if dup:
            raise _err(f"finding {dup!r} is used by two bands", source, f"{k}.bands")
        sex_specific = any(b.sex_specific for b in bands)
        any_sex = any_sex or sex_specific
        for s in (_SEXES if sex_specific else ("*",)):
            _check_partition(bands, s, source, f"{k}.bands")
        params.append(Parameter(pid, ikey, _text(raw, "name", source, k), unit.strip(), bands))
    sex_unknown = data.get("sex_unknown")
    if sex_unknown is not None and sex_unknown not in _SEXES:
        raise _err(f"must be 'M' or 'F', got {sex_unknown!r}", source, "sex_unknown")
    if any_sex and sex_unknown is None:
        raise _err("a band has per-sex ranges: say whose limits apply when the sex is unknown "
                   "(sex_unknown = \"M\" or \"F\")", source, "sex_unknown")
    rhythm = None
    if "rhythm" in data:
        try:
            rhythm = parse_rhythm(data["rhythm"])
        except RhythmRulesError as e:
            raise _err(e.problem, source, e.key) from None
    return RuleSet(name=name, title=str(data.get("title", "")), labels=tuple(labels.values()),
                   parameters=tuple(params), sex_unknown=sex_unknown,
                   source=str(data.get("source", "")), path=source, rhythm=rhythm,
                   _by_name=labels)


def available_rulesets() -> list[str]:
    """Names of the rule sets shipped with detak.

    >>> available_rulesets()
    ['clinical', 's3']
    """
    return sorted(p.stem for p in RULESET_DIR.glob("*.toml"))


def load_ruleset_file(path: str | Path) -> RuleSet:
    """Load a rule set from a TOML file; `RuleSetError` names the file (and key or line).

    >>> load_ruleset_file(RULESET_DIR / "clinical.toml").keys
    ['hr_bpm', 'pr_ms', 'qrs_ms', 'qtc_bazett_ms']
    """
    p = Path(path)
    if not p.is_file():
        raise RuleSetError("rule file not found", source=str(p))
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise RuleSetError(f"not valid TOML: {e}", source=str(p)) from None
    return parse_ruleset(data, source=str(p))


@cache
def _builtin(name: str) -> RuleSet:
    return load_ruleset_file(RULESET_DIR / f"{name}.toml")


def load_ruleset(name_or_path: str | Path) -> RuleSet:
    """A shipped rule set by name (``"s3"``, ``"clinical"``) or any rule file by path.

    >>> rs = load_ruleset("s3")
    >>> rs.label_names
    ['Normal', 'Abnormal', 'Berpotensi Aritmia', 'Sangat Berpotensi Aritmia']
    >>> load_ruleset("nope")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    detak.models.rules.RuleSetError: unknown rule set 'nope': use one of clinical, s3, or ...
    """
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith(".toml") or "/" in text or "\\" in text:
        return load_ruleset_file(name_or_path)
    if text in available_rulesets():
        return _builtin(text)
    raise RuleSetError(f"unknown rule set {text!r}: use one of "
                       f"{', '.join(available_rulesets())}, or the path of a .toml rule file")

"""Read a screening's ``rhythm`` block in either of its two stored layouts.

Since issue 17, ``rhythm.findings`` holds the rhythm findings of `detak.models.rhythm_rules`
(and of the rhythm classifier when one is shipped): dicts with ``code`` (a PTB-XL statement:
AFIB, SR, 3AVB …, or PAUSE / IRREG_UNCLASSIFIED), ``source`` (``rules`` / ``classifier``),
``probability``, ``urgency`` and ``reasons`` (``{"en", "id"}``); the findings of the interval
rule sets (``s3``, ``clinical``) sit at ``rhythm.interval_findings``. Screenings stored before
(kiosk stores, clinic servers) have the interval findings at ``rhythm.findings``, each carrying
``ruleset``, and no rhythm findings. Every reader goes through `interval_findings` and
`rhythm_findings`, so both layouts render, sync and export.

>>> old = {"findings": [{"ruleset": "clinical", "finding": "bradycardia", "label": "abnormal"}]}
>>> [f["finding"] for f in interval_findings(old)], rhythm_findings(old)
(['bradycardia'], [])
>>> new = {"interval_findings": old["findings"],
...        "findings": [{"code": "AFIB", "source": "rules", "probability": None,
...                      "urgency": "refer_today", "reasons": []}]}
>>> [f["finding"] for f in interval_findings(new)], [f["code"] for f in rhythm_findings(new)]
(['bradycardia'], ['AFIB'])
>>> urgency_level(new["findings"][0]), urgency_level({"urgency": "none"})
('refer today', 'no finding')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: a finding's ``urgency`` as either spelling (the contract's ``refer_today`` or the kiosk's
#: level names) → the kiosk's level (`detak.kiosk.urgency` names)
_LEVELS = {"refer_today": "refer today", "refer today": "refer today",
           "routine_review": "routine review", "routine review": "routine review",
           "none": "no finding", "no finding": "no finding", "no_finding": "no finding"}


def _items(rhythm: Mapping[str, Any] | None, key: str) -> list[dict[str, Any]]:
    if not isinstance(rhythm, Mapping):
        return []
    items = rhythm.get(key)
    return [f for f in items if isinstance(f, Mapping)] if isinstance(items, list) else []


def _is_interval_finding(f: Mapping[str, Any]) -> bool:
    return "ruleset" in f


def interval_findings(rhythm: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The interval rule sets' findings (``ruleset``, ``finding``, ``parameter``, ``value``,
    ``unit``, ``label``, ``text``, ``sex_assumed``) of a screening's ``rhythm`` block, in the
    new layout (``interval_findings``) or the old one (``findings`` items with ``ruleset``).

    >>> interval_findings(None), interval_findings({"findings": "junk"})
    ([], [])
    """
    if isinstance(rhythm, Mapping) and "interval_findings" in rhythm:
        return _items(rhythm, "interval_findings")
    return [f for f in _items(rhythm, "findings") if _is_interval_finding(f)]


def rhythm_findings(rhythm: Mapping[str, Any] | None,
                    source: str | None = None) -> list[dict[str, Any]]:
    """The rhythm findings (issue 17: ``code``, ``source``, ``probability``, ``urgency``,
    ``reasons``) of a screening's ``rhythm`` block, in order; only those of ``source``
    (``rules`` / ``classifier``) when given. An old-layout block has none.

    >>> r = {"findings": [{"code": "SR", "source": "rules"},
    ...                   {"code": "SR", "source": "classifier", "probability": 0.9}]}
    >>> [f["source"] for f in rhythm_findings(r)], len(rhythm_findings(r, "classifier"))
    (['rules', 'classifier'], 1)
    """
    out = [f for f in _items(rhythm, "findings")
           if not _is_interval_finding(f) and isinstance(f.get("code"), str)]
    return [f for f in out if source is None or f.get("source") == source]


def urgency_level(finding: Mapping[str, Any]) -> str:
    """A rhythm finding's urgency as the kiosk's level name (``refer today``, ``routine
    review``, ``no finding``); an unknown or missing value is ``no finding``."""
    return _LEVELS.get(str(finding.get("urgency") or "none").strip().lower(), "no finding")


def reasons_in(finding: Mapping[str, Any], lang: str) -> list[str]:
    """A rhythm finding's reasons in ``lang`` (English when that language is missing).

    >>> reasons_in({"reasons": [{"en": "RR irregular", "id": "RR tidak teratur"}, "x"]}, "id")
    ['RR tidak teratur', 'x']
    """
    out = []
    for r in finding.get("reasons") or []:
        if isinstance(r, Mapping):
            text = r.get(lang) or r.get("en") or next(iter(r.values()), "")
            if text:
                out.append(str(text))
        elif r:
            out.append(str(r))
    return out

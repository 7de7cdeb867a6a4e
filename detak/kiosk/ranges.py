"""The normal ranges shown beside each measurement, on the PDF report and in the kiosk app: the
rule sets' own limits (those the labels used), so a page never marks a value the rules call
normal, or the other way round.
"""

from __future__ import annotations

import math
from functools import lru_cache

from detak.kiosk.i18n import number

_S3_RANGE_KEYS = ("qt_ms", "st_ms")  # normal ranges the clinical rule set does not give


def normal_ranges(sex: str | None = None) -> dict[str, tuple[float, float]]:
    """Normal range (lower, upper; ±inf when open) per interval key: the ``clinical`` rule
    set's, with the women's or men's limits (men's when ``sex`` is unknown, as the rule set
    does); QT and ST, which it does not judge, from the ``s3`` rule set (whose reasons the
    report shows for them).

    >>> r = normal_ranges("F")
    >>> r["hr_bpm"], r["qtc_bazett_ms"][1], normal_ranges()["qtc_bazett_ms"][1], r["st_ms"]
    ((50.0, 100.0), 460.0, 450.0, (80.0, 120.0))
    """
    return dict(_ranges(sex if sex in ("F", "M") else None))


@lru_cache(maxsize=3)
def _ranges(sex: str | None) -> tuple[tuple[str, tuple[float, float]], ...]:
    """`normal_ranges` read once per sex from the shipped rule sets (every result page and
    every report asks)."""
    from detak.models.rules import load_ruleset

    out: dict[str, tuple[float, float]] = {}
    for name, keys in (("clinical", None), ("s3", _S3_RANGE_KEYS)):
        rs = load_ruleset(name)
        use = sex if sex in ("F", "M") else (rs.sex_unknown or "M")
        normal = rs.labels[0].name
        for p in rs.parameters:
            band = next((b for b in p.bands if b.label == normal), None)
            if band is not None and p.key not in out and (keys is None or p.key in keys):
                r = band.range_for(use)
                out[p.key] = (r.lower, r.upper)
    return tuple(out.items())


def range_text(lo: float, hi: float, lang: str) -> str:
    """A normal range as shown on the report and in the app: ``50–100``, ``< 110``, ``> 80``.

    >>> range_text(float("-inf"), 110.0, "en"), range_text(1000.0, 1200.0, "id")
    ('< 110', '1.000–1.200')
    """
    if math.isinf(lo):
        return f"< {number(hi, lang, 0)}"
    if math.isinf(hi):
        return f"> {number(lo, lang, 0)}"
    return f"{number(lo, lang, 0)}–{number(hi, lang, 0)}"


__all__ = ["normal_ranges", "range_text"]

"""Parse numbers written in text files (CSV signals, S3's interval tables) without guessing.

Three number formats are understood, chosen by the ``number_format`` argument:

* ``"point"``: ``1234.5``, ``-0.25``, ``1e-3``. ``.`` is the decimal mark; no thousands
  separator; exponents allowed.
* ``"comma"``: ``1.234,5``, ``-0,25``, ``1234,5``, ``1.234`` (= 1234). ``,`` is the decimal mark
  and ``.`` groups thousands: the European / Indonesian spreadsheet locale (such files are
  usually ``;``-delimited).
* ``"dot-thousands"``: ``1.032`` (= 1032), ``876``, ``1.234.567``. Integers whose thousands are
  grouped with ``.`` and no decimal part: S3's interval CSV, where ``1.032`` means 1032 ms. A
  decimal comma is refused here (use ``"comma"``).
* ``"auto"``: decide once per file, from every field (below).

In ``"comma"`` and ``"dot-thousands"`` a ``.`` must be followed by exactly three digits and the
first group has one to three digits without a leading zero (``1.032``, ``12.500.000``); anything
else (``1.03``, ``0.500``) is an invalid token in those formats.

Empty fields and ``nan``, ``na``, ``n/a``, ``null``, ``none`` (any case) are missing values and
read as NaN; ``inf`` and any other text are invalid tokens.

The ambiguity, and how ``"auto"`` resolves it
----------------------------------------------
``1.032`` is 1.032 in ``"point"`` and 1032 in ``"comma"`` / ``"dot-thousands"``: the token
alone cannot tell. ``"auto"`` never decides per value. It sorts every field of the file into

* *point evidence*: a ``.`` that cannot be a thousands separator (``0.85``, ``12.5``,
  ``1234.567``, ``.5``, ``1e-3``);
* *dot-thousands evidence*: several dot groups (``1.234.567``) or a decimal comma
  (``12,5``, ``1.234,5``);
* *ambiguous*: one dot followed by exactly three digits (``1.032``, ``-12.500``);
* plain integers (``876``), which read the same in every format;

and then:

1. point evidence **and** dot-thousands evidence in one file → `AmbiguousNumberFormatError`
   (the file mixes conventions; pass ``number_format`` per column as a mapping);
2. any decimal comma → ``"comma"``; otherwise any dot-group evidence → ``"dot-thousands"``;
3. point evidence → ``"point"``, unless some column holds ambiguous values and no point
   evidence of its own (e.g. ``RR`` = ``1.032, 876`` next to ``R/S`` = ``0.85``): that column
   could be either, so `AmbiguousNumberFormatError`;
4. only integers and ambiguous values → `AmbiguousNumberFormatError` if there is at least one
   ambiguous value, otherwise ``"point"`` (integers read the same in every format).

The error names an example token with its line and column and the ``number_format`` values
that would read it each way. ``number_format`` may also be a mapping ``{column: format}``, with
an optional ``"*"`` entry for the other columns (which default to ``"auto"`` over those columns).

>>> parse_number("1.234,5", "comma"), parse_number("1.032", "dot-thousands")
(1234.5, 1032.0)
>>> detect_number_format({"II": ["0.125", "-0.5", "1.250"]})
'point'
>>> detect_number_format({"RR": ["1.032", "876"]})
Traceback (most recent call last):
...
detak.data.numbers.AmbiguousNumberFormatError: row 1, column 'RR': '1.032' reads as 1.032 with \
number_format='point' but 1032 with number_format='dot-thousands' (or 'comma'), and nothing \
else in the data decides; pass number_format='point' or 'dot-thousands'
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import numpy as np

NUMBER_FORMATS: tuple[str, ...] = ("point", "comma", "dot-thousands")
MISSING_TOKENS: frozenset[str] = frozenset({"", "nan", "na", "n/a", "null", "none"})

_POINT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_GROUPED = r"[1-9]\d{0,2}(?:\.\d{3})+"
_COMMA = re.compile(rf"[+-]?(?:(?:\d+|{_GROUPED})(?:,\d*)?|,\d+)")
_DOT_THOUSANDS = re.compile(rf"[+-]?(?:\d+|{_GROUPED})")
_INT = re.compile(r"[+-]?\d+")
_AMBIGUOUS = re.compile(r"[+-]?[1-9]\d{0,2}\.\d{3}")
_MULTI_GROUP = re.compile(r"[+-]?[1-9]\d{0,2}(?:\.\d{3}){2,}")

# Classes of a token for "auto".
_MISSING, _INTEGER, _AMBIG, _POINT_EV, _DOT_EV, _COMMA_EV, _INVALID = range(7)


class NumberFormatError(ValueError):
    """A number in a text file could not be read (base class)."""


class InvalidNumberError(NumberFormatError):
    """A token is not a number in the chosen format.

    Attributes: ``token``, ``column``, ``line`` (1-based file line, or row number when the
    values did not come from a file), ``source`` (file name or "").
    """

    def __init__(self, token: str, number_format: str, *, column: str = "",
                 line: int | None = None, source: str = "", row_word: str = "line") -> None:
        self.token, self.column, self.line, self.source = token, column, line, source
        self.number_format = number_format
        where = _where(source, line, column, row_word)
        hint = _hint(token, number_format)
        if number_format == "auto":
            what = "is not a number in any supported format (point, comma, dot-thousands)"
        else:
            what = f"for number_format={number_format!r}"
        super().__init__(f"{where}invalid number {token!r} {what}{hint}")


class AmbiguousNumberFormatError(NumberFormatError):
    """``number_format="auto"`` cannot tell how the file writes numbers; the message says which
    ``number_format`` to pass. Attributes: ``token``, ``column``, ``line``, ``source``."""

    def __init__(self, message: str, *, token: str = "", column: str = "",
                 line: int | None = None, source: str = "") -> None:
        self.token, self.column, self.line, self.source = token, column, line, source
        super().__init__(message)


def _where(source: str, line: int | None, column: str, row_word: str = "line") -> str:
    parts = []
    if source:
        parts.append(source)
    if line is not None:
        parts.append(f"{row_word} {line}")
    if column:
        parts.append(f"column {column!r}")
    return (", ".join(parts) + ": ") if parts else ""


def _hint(token: str, number_format: str) -> str:
    t = token.strip()
    if number_format == "dot-thousands" and "," in t and _COMMA.fullmatch(t):
        return " (a decimal comma: use number_format='comma')"
    if number_format == "point" and _COMMA.fullmatch(t):
        return " (looks like a comma-decimal or dot-grouped number: try number_format='comma')"
    if number_format in ("comma", "dot-thousands") and _POINT.fullmatch(t):
        return " (looks like a decimal-point number: try number_format='point')"
    return ""


def is_missing(token: str) -> bool:
    """True for an empty field or a missing-value word (``nan``, ``NA``, ``null``...).

    >>> is_missing(" NaN "), is_missing("0")
    (True, False)
    """
    return token.strip().lower() in MISSING_TOKENS


def parse_number(token: str, number_format: str) -> float:
    """One token in an explicit format (not ``"auto"``); missing values give NaN.

    Raises `InvalidNumberError` naming the token.

    >>> parse_number("-0,25", "comma"), parse_number("1.5e-3", "point"), parse_number("", "point")
    (-0.25, 0.0015, nan)
    """
    t = token.strip()
    if t.lower() in MISSING_TOKENS:
        return math.nan
    if number_format == "point":
        if _POINT.fullmatch(t):
            return float(t)
    elif number_format == "comma":
        if _COMMA.fullmatch(t):
            return float(t.replace(".", "").replace(",", "."))
    elif number_format == "dot-thousands":
        if _DOT_THOUSANDS.fullmatch(t):
            return float(t.replace(".", ""))
    else:
        raise ValueError(f"number_format must be one of {', '.join(NUMBER_FORMATS)} "
                         f"(or 'auto' for a whole file), got {number_format!r}")
    raise InvalidNumberError(token, number_format)


def _classify(token: str) -> int:
    t = token.strip()
    if t.lower() in MISSING_TOKENS:
        return _MISSING
    if _INT.fullmatch(t):
        return _INTEGER
    if _AMBIGUOUS.fullmatch(t):
        return _AMBIG
    if _POINT.fullmatch(t):
        return _POINT_EV
    if _MULTI_GROUP.fullmatch(t):
        return _DOT_EV
    if "," in t and _COMMA.fullmatch(t):
        return _COMMA_EV
    return _INVALID


def _line_of(i: int, line_numbers: Sequence[int] | None) -> tuple[int, str]:
    if line_numbers is None:
        return i + 1, "row"
    return int(line_numbers[i]), "line"


def detect_number_format(columns: Mapping[str, Sequence[str]], *, source: str = "",
                         line_numbers: Sequence[int] | None = None) -> str:
    """Decide ``"point"``, ``"comma"`` or ``"dot-thousands"`` for a whole file (rules above).

    ``columns`` maps a column name to its tokens; ``line_numbers[i]`` is the file line of row
    ``i`` (used in messages; rows are counted from 1 when omitted). Raises
    `AmbiguousNumberFormatError` or, for a token no format can read, `InvalidNumberError`.

    >>> detect_number_format({"RR": ["1.032", "876"], "HR": ["58,1", "68,5"]})
    'comma'
    >>> detect_number_format({"RR": ["1.032", "876"], "RS": ["0.85", "1.2"]})
    Traceback (most recent call last):
    ...
    detak.data.numbers.AmbiguousNumberFormatError: row 1, column 'RR': '1.032' reads as 1.032 \
with number_format='point' but 1032 with number_format='dot-thousands' (or 'comma'); other \
columns use decimal points (e.g. '0.85' at row 1, column 'RS') but this column has no value \
that decides; pass number_format='point', or a mapping such as {'RR': 'dot-thousands', '*': \
'point'}
    """
    first: dict[int, tuple[str, str, int]] = {}          # class -> (token, column, row index)
    ambiguous_only: list[tuple[str, str, int]] = []       # columns with ambiguous, no point ev.
    for column, tokens in columns.items():
        col_first_ambig: tuple[str, str, int] | None = None
        col_point = False
        for i, token in enumerate(tokens):
            cls = _classify(token)
            if cls == _INVALID:
                line, word = _line_of(i, line_numbers)
                raise InvalidNumberError(token, "auto", column=column, line=line,
                                         source=source, row_word=word)
            first.setdefault(cls, (token, column, i))
            if cls == _AMBIG and col_first_ambig is None:
                col_first_ambig = (token, column, i)
            elif cls == _POINT_EV:
                col_point = True
        if col_first_ambig is not None and not col_point:
            ambiguous_only.append(col_first_ambig)

    def at(entry: tuple[str, str, int]) -> str:
        token, column, i = entry
        line, word = _line_of(i, line_numbers)
        return f"{token!r} at {word} {line}, column {column!r}"

    def readings(entry: tuple[str, str, int]) -> str:
        token = entry[0].strip()
        return (f"{token!r} reads as {_fmt(parse_number(token, 'point'))} with "
                f"number_format='point' but {_fmt(parse_number(token, 'dot-thousands'))} with "
                f"number_format='dot-thousands' (or 'comma')")

    def err(message: str, entry: tuple[str, str, int]) -> AmbiguousNumberFormatError:
        token, column, i = entry
        line, word = _line_of(i, line_numbers)
        return AmbiguousNumberFormatError(
            _where(source, line, column, word) + message, token=token, column=column,
            line=line, source=source)

    point_ev = first.get(_POINT_EV)
    dot_ev = first.get(_COMMA_EV) or first.get(_DOT_EV)
    if point_ev and dot_ev:
        if point_ev[1] == dot_ev[1]:
            fix = "one column cannot be read in one format; correct the file"
        else:
            fix = (f"pass number_format as a mapping per column, e.g. "
                   f"{{{dot_ev[1]!r}: 'comma', '*': 'point'}}")
        raise err(f"the data mix decimal points ({at(point_ev)}) with dot-grouped or "
                  f"decimal-comma numbers ({at(dot_ev)}); {fix}", dot_ev)
    if _COMMA_EV in first:
        return "comma"
    if _DOT_EV in first:
        return "dot-thousands"
    if point_ev:
        if ambiguous_only:
            entry = ambiguous_only[0]
            raise err(f"{readings(entry)}; other columns use decimal points (e.g. "
                      f"{at(point_ev)}) but this column has no value that decides; pass "
                      f"number_format='point', or a mapping such as "
                      f"{{{entry[1]!r}: 'dot-thousands', '*': 'point'}}", entry)
        return "point"
    if _AMBIG in first:
        entry = first[_AMBIG]
        raise err(f"{readings(entry)}, and nothing else in the data decides; pass "
                  f"number_format='point' or 'dot-thousands'", entry)
    return "point"


def _fmt(x: float) -> str:
    return str(int(x)) if x == int(x) and abs(x) >= 1000 else repr(x)


def resolve_number_formats(columns: Mapping[str, Sequence[str]],
                           number_format: str | Mapping[str, str] = "auto", *,
                           source: str = "",
                           line_numbers: Sequence[int] | None = None) -> dict[str, str]:
    """The explicit format of every column: ``number_format`` as given, or decided by "auto".

    >>> resolve_number_formats({"RR": ["1.032"], "RS": ["0.85"]}, {"RR": "dot-thousands",
    ...                        "*": "auto"})
    {'RR': 'dot-thousands', 'RS': 'point'}
    """
    if isinstance(number_format, str):
        spec: Mapping[str, str] = {"*": number_format}
    else:
        spec = number_format
        unknown = [k for k in spec if k != "*" and k not in columns]
        if unknown:
            raise KeyError(f"{source + ': ' if source else ''}number_format names columns not "
                           f"in the data: {', '.join(map(repr, unknown))}; columns are "
                           f"{', '.join(map(repr, columns))}")
    for name, fmt in spec.items():
        if fmt != "auto" and fmt not in NUMBER_FORMATS:
            raise ValueError(f"number_format for {name!r} must be one of "
                             f"{', '.join(NUMBER_FORMATS)} or 'auto', got {fmt!r}")
    default = spec.get("*", "auto")
    formats = {c: spec.get(c, default) for c in columns}
    auto_cols = [c for c, f in formats.items() if f == "auto"]
    if auto_cols:
        decided = detect_number_format({c: columns[c] for c in auto_cols}, source=source,
                                       line_numbers=line_numbers)
        formats.update({c: decided for c in auto_cols})
    return formats


def parse_columns(columns: Mapping[str, Sequence[str]],
                  number_format: str | Mapping[str, str] = "auto", *, source: str = "",
                  line_numbers: Sequence[int] | None = None) -> dict[str, np.ndarray]:
    """Parse text columns to float64 arrays (missing → NaN), one format decision per file.

    ``number_format``: ``"point"``, ``"comma"``, ``"dot-thousands"``, ``"auto"``, or a mapping
    ``{column: format, "*": default}``. Raises `InvalidNumberError` (line, column, token) or
    `AmbiguousNumberFormatError`.

    >>> cols = parse_columns({"RR": ["1.032", "876", ""], "HR": ["58,1", "68,5", "70"]})
    >>> cols["RR"].tolist(), cols["HR"].tolist()
    ([1032.0, 876.0, nan], [58.1, 68.5, 70.0])
    """
    formats = resolve_number_formats(columns, number_format, source=source,
                                     line_numbers=line_numbers)
    out: dict[str, np.ndarray] = {}
    for column, tokens in columns.items():
        fmt = formats[column]
        values = np.empty(len(tokens), dtype=np.float64)
        for i, token in enumerate(tokens):
            try:
                values[i] = parse_number(token, fmt)
            except InvalidNumberError as exc:
                line, word = _line_of(i, line_numbers)
                raise InvalidNumberError(token, fmt, column=column, line=line, source=source,
                                         row_word=word) from exc
        out[column] = values
    return out


# Physical units of voltage, as millivolts per unit. Keys are lower-case.
_MV_PER_UNIT: dict[str, float] = {
    "mv": 1.0, "millivolt": 1.0, "millivolts": 1.0,
    "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "microvolt": 1e-3, "microvolts": 1e-3,
    "v": 1e3, "volt": 1e3, "volts": 1e3,
    "nv": 1e-6, "nanovolt": 1e-6, "nanovolts": 1e-6,
}


def millivolts_per_unit(unit: str) -> float | None:
    """How many millivolts one ``unit`` is (``"uV"`` → 0.001), or None for a non-voltage unit.

    >>> millivolts_per_unit("µV"), millivolts_per_unit("mV"), millivolts_per_unit("degC")
    (0.001, 1.0, None)
    """
    return _MV_PER_UNIT.get(unit.strip().lower())


VOLTAGE_UNITS: tuple[str, ...] = ("mV", "uV", "µV", "V", "nV")

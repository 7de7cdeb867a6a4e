"""Why an interval was not measured, in the kiosk's languages.

The signal chain (`detak.signal.intervals`, `detak.signal.delineation`) gives each null
interval a reason in English, with numbers ("no P wave (largest deflection 0.021 mV)").
`reason_text` keeps that sentence for English reports and gives every other language the
translated meaning of its kind (matched by how the sentence starts); a reason of a kind it
does not know becomes "not measured on this recording" rather than English on an Indonesian
page.

>>> reason_text("no P waves found (AF?): no P wave at a fixed PR before each QRS", "id")
'tidak ada gelombang P pada PR tetap sebelum setiap QRS (fibrilasi atrium?)'
>>> reason_text("T wave too flat (0.021 mV)", "en")
'T wave too flat (0.021 mV)'
>>> reason_text("something new", "id")
'tidak terukur pada rekaman ini'
"""

from __future__ import annotations

from detak.kiosk.i18n import N_, translator

#: how the chain's English reason starts → its meaning, translatable (first match wins)
KINDS: tuple[tuple[str, str], ...] = (
    ("no p waves found", N_("no P wave at a fixed PR before each QRS (atrial fibrillation?)")),
    ("heart rate too high to separate the p wave",
     N_("heart rate too high to separate the P wave")),
    ("heart rate too high to separate the t wave",
     N_("heart rate too high to separate the T wave")),
    ("p wave not separated", N_("the P wave merges with the preceding T wave")),
    ("no p wave", N_("no P wave found")),
    ("t wave too flat", N_("T wave too flat to measure")),
    ("no t wave", N_("no T wave found")),
    ("t wave does not return", N_("the end of the T wave cannot be found")),
    ("implausible value", N_("implausible value, not reported")),
    ("needs qt and rr", N_("needs both QT and RR")),
    ("fewer than 2 beats", N_("too few beats")),
    ("too few beats", N_("too few beats")),
    ("no rr", N_("too few beats")),
    ("no beat whose window", N_("no beat free of gaps in the recording")),
)
UNKNOWN = N_("not measured on this recording")


def reason_text(why: str, lang: str) -> str:
    """The reason ``why`` (the chain's English) for a report in ``lang``: unchanged in
    English, else the translation of its kind (`KINDS`), else `UNKNOWN` translated."""
    if lang == "en":
        return why
    low = why.strip().lower()
    for start, meaning in KINDS:
        if low.startswith(start):
            return translator(lang)(meaning)
    return translator(lang)(UNKNOWN)

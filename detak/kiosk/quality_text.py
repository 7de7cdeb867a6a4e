"""The quality check's reasons in the kiosk's languages, from their codes
(`detak.signal.quality.REASON_CODES`; ``QualityReport.issues``): `advice` gives a nurse plain
sentences with what to do ("Electrode V3 is loose — press it back onto the skin and record
again."), `details` one technical line per reason for the technician and the doctor, with the
measured values in the locale's number format. ``detak quality`` keeps its English ``reasons``.

A flat lead points at its electrode: a chest lead at its own (V1–V6), limb leads at the
electrode they share (II, III and aVF flat: LL), one limb lead at both of its electrodes.
When the device itself reported which electrodes came off, only those are named: the other
leads' trouble follows from them (RA off disturbs every lead but III).

>>> flat = {"code": "flat_line", "level": "reject", "lead": "V3", "ptp_mv": 0.0,
...         "limit_mv": 0.02}
>>> advice([flat], "id")
['Elektroda V3 longgar — tekan kembali ke kulit, lalu ulangi perekaman.']
>>> details([flat], "en")
['V3: flat line (peak-to-peak 0 mV, below 0.02 mV)']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from detak.kiosk.i18n import N_, number, translator

#: the technical line of each code (``{lead}`` and the issue's parameters filled in)
DETAIL: dict[str, str] = {
    "no_samples": N_("{lead}: no valid samples"),
    "missing_samples": N_("{lead}: {pct} % of the samples missing"),
    "flat_line": N_("{lead}: flat line (peak-to-peak {ptp_mv} mV, below {limit_mv} mV)"),
    "flat_part": N_("{lead}: flat for {flat_s} of {total_s} s"),
    "clipping": N_("{lead}: signal cut off at the device's limit ({runs} times, {pct} % of "
                   "the samples)"),
    "wander": N_("{lead}: baseline wander {mv} mV (limit {limit_mv} mV)"),
    "powerline": N_("{lead}: {hz} Hz mains interference {mv} mV (limit {limit_mv} mV)"),
    "noise": N_("{lead}: high-frequency noise {mv} mV (limit {limit_mv} mV)"),
    "noise_ratio": N_("{lead}: high-frequency noise {pct} % of the QRS amplitude"),
    "template_mismatch": N_("{lead}: beats unlike their average (correlation {corr}, "
                            "below {limit})"),
    "too_short": N_("Recording too short: {seconds} s (at least {limit_s} s)"),
    "no_beats": N_("No heartbeat found in any usable lead (between {min_bpm} and {max_bpm} "
                   "bpm)"),
    "lead_unusable": N_("Lead {lead}, needed for the measurements, is unusable"),
    "most_leads_unusable": N_("{n} of {total} leads unusable ({leads})"),
    "gaps": N_("Gaps in the recording: {count}, {total_s} s in total"),
    "lead_reversal": N_("Limb electrodes {a} and {b} look swapped (lead {inverted} points "
                        "against V6 and aVR is not inverted: aVR-V6 correlation "
                        "{corr_avr_v6}); dextrocardia looks the same"),
    "invalid": N_("The recording could not be read ({problem})"),
}

ELECTRODE_LOOSE = N_("Electrode {name} is loose — press it back onto the skin and record "
                     "again.")
CHECK_ELECTRODES = N_("No signal in lead {leads}: check electrodes {names} — press them back "
                      "onto the skin and record again.")
CHECK_LEAD = N_("No signal in lead {leads}: check its electrodes — press them back onto the "
                "skin and record again.")
MANY_FLAT = N_("No signal in leads {leads}: check that the cable is plugged into the device and "
               "that every electrode sticks to the skin, then record again.")
GENERIC = N_("Check the electrodes and the cable, then record again.")
#: a suspected limb-cable interchange (`detak.signal.lead_reversal`): which cables, and the
#: one heart that looks the same (dextrocardia), so a nurse who finds the cables right stops
SWAPPED = N_("The limb cables {a} and {b} look swapped: check that each cable is on its own "
             "limb (RA right arm, LA left arm, LL left leg), then record again. If they were "
             "right, tell the doctor: a heart on the right side (dextrocardia) looks the same.")
#: what the nurse does, per kind of problem, in the order shown (``{leads}``: where)
ADVICE: dict[str, str] = {
    "powerline": N_("Electrical interference in lead {leads}: press the electrodes firmly "
                    "onto the skin, keep the cable away from power cables and chargers, then "
                    "record again."),
    "clipping": N_("The signal in lead {leads} is too large for the device: check that the "
                   "electrodes stick well and sit in the right place, then record again."),
    "connection": N_("Part of the recording is missing (the connection dropped): keep the "
                     "device close and the cable still, then record again."),
    "noise": N_("The signal in lead {leads} is noisy: ask the resident to relax, rest the "
                "arms and lie still, then record again."),
    "wander": N_("The line in lead {leads} drifts: ask the resident to lie still and breathe "
                 "calmly, check that the electrodes stick firmly, then record again."),
    "template": N_("The beats in lead {leads} differ from each other: if the resident moved, "
                   "record again."),
    "too_short": N_("The recording is too short: record the full 10 seconds again."),
    "no_beats": N_("No heartbeat could be found: check every electrode and the cable, then "
                   "record again."),
    "invalid": N_("The recording could not be read: record again; if this happens again, "
                  "call the technician."),
}
_KIND = {"flat_line": "loose", "flat_part": "loose", "no_samples": "connection",
         "missing_samples": "connection", "gaps": "connection", "powerline": "powerline",
         "clipping": "clipping", "noise": "noise", "noise_ratio": "noise", "wander": "wander",
         "template_mismatch": "template", "too_short": "too_short", "no_beats": "no_beats",
         "invalid": "invalid", "lead_reversal": "reversal", "lead_unusable": None,
         "most_leads_unusable": None}
#: the electrodes each lead is measured between (limb leads) or from (chest leads)
LEAD_ELECTRODES: dict[str, tuple[str, ...]] = {
    "I": ("RA", "LA"), "II": ("RA", "LL"), "III": ("LA", "LL"), "aVR": ("RA",),
    "aVL": ("LA",), "aVF": ("LL",), **{f"V{i}": (f"V{i}",) for i in range(1, 7)}}
_DIGITS = {"pct": 1, "limit_pct": 0, "ptp_mv": 3, "limit_mv": 3, "mv": 3, "corr": 2,
           "limit": 2, "seconds": 2, "limit_s": 1, "total_s": 2, "hz": 0, "min_bpm": 0,
           "max_bpm": 0, "share_pct": 0, "longest_gap_free_s": 2, "corr_avr_v6": 2}


def _params(issue: Mapping[str, Any], lang: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in issue.items():
        if k in _DIGITS and isinstance(v, int | float) and not isinstance(v, bool):
            out[k] = number(v, lang, _DIGITS[k])
        else:
            out[k] = "" if v is None else v
    return out


def details(issues: Iterable[Mapping[str, Any]], lang: str) -> list[str]:
    """One technical line per issue in ``lang`` (an unknown code: its code and lead)."""
    _ = translator(lang)
    out = []
    for i in issues:
        msg = DETAIL.get(str(i.get("code")))
        if msg is None:
            out.append(f"{i.get('lead') or ''} {i.get('code')}".strip())
            continue
        try:
            out.append(_(msg).format(**_params(i, lang)))
        except (KeyError, IndexError):       # a parameter missing from an old record
            out.append(f"{i.get('lead') or ''} {i.get('code')}".strip())
    return out


def _loose(leads: Sequence[str], _: Any) -> list[str]:
    """Sentences for flat leads: each chest electrode; the limb electrode the limb leads
    share, else each limb lead with its two electrodes; leads of unknown placement."""
    chest = [ld for ld in leads if ld.startswith("V") and ld in LEAD_ELECTRODES]
    limb = [ld for ld in leads if ld in LEAD_ELECTRODES and ld not in chest]
    other = [ld for ld in leads if ld not in LEAD_ELECTRODES]
    out = []
    if limb:
        shared = set.intersection(*(set(LEAD_ELECTRODES[ld]) for ld in limb))
        if len(shared) == 1:
            out.append(_(ELECTRODE_LOOSE).format(name=shared.pop()))
        else:
            names = sorted({e for ld in limb for e in LEAD_ELECTRODES[ld]})
            out.append(_(CHECK_ELECTRODES).format(leads=", ".join(limb),
                                                  names=", ".join(names)))
    out += [_(ELECTRODE_LOOSE).format(name=LEAD_ELECTRODES[ld][0]) for ld in chest]
    if other:
        out.append(_(CHECK_LEAD).format(leads=", ".join(other)))
    if len(out) > 3:        # many electrodes at once: the cable, or all of them
        return [_(MANY_FLAT).format(leads=", ".join(leads))]
    return out


def advice(issues: Iterable[Mapping[str, Any]], lang: str,
           electrodes_off: Iterable[str] = ()) -> list[str]:
    """Plain sentences with what to do, one per kind of problem, most likely cause first.
    Only the worst level's issues count (a rejected recording: its rejections).
    ``electrodes_off``: the electrodes the device reported off while recording."""
    _ = translator(lang)
    items = [i for i in issues if i.get("code") in _KIND]
    worst = "reject" if any(i.get("level") == "reject" for i in items) else "warn"
    items = [i for i in items if i.get("level", "reject") == worst]
    by_kind: dict[str, list[str]] = {}
    for i in items:
        kind = _KIND[str(i["code"])]
        if kind is None:
            continue
        leads = by_kind.setdefault(kind, [])
        lead = i.get("lead")
        if lead and lead not in leads:
            leads.append(str(lead))
    off = sorted(set(electrodes_off or ()))
    if off:     # the device saw it: the other leads' trouble follows from it (RA off: all)
        return [_(ELECTRODE_LOOSE).format(name=e) for e in off]
    out = _loose(by_kind["loose"], _) if "loose" in by_kind else []
    out += [_(SWAPPED).format(a=i.get("a", "?"), b=i.get("b", "?")) for i in items
            if i.get("code") == "lead_reversal"]
    for kind, msg in ADVICE.items():
        if kind in by_kind:
            out.append(_(msg).format(leads=", ".join(by_kind[kind])))
    return out or [_(GENERIC)]


def main_reason(issues: Iterable[Mapping[str, Any]], lang: str) -> str | None:
    """The technical line of the first reason that is a cause (a rejection of a lead or of
    the recording, not the summary "lead II unusable" that follows from it), in ``lang``.

    >>> main_reason([{"code": "lead_unusable", "level": "reject", "lead": "II"},
    ...              {"code": "no_samples", "level": "reject", "lead": "II"}], "en")
    'II: no valid samples'
    """
    items = [i for i in issues if i.get("code") in DETAIL]
    causes = [i for i in items if i.get("level") == "reject"
              and i.get("code") not in ("lead_unusable", "most_leads_unusable")]
    first = (causes or items or [None])[0]
    return None if first is None else details([first], lang)[0]


def quality_texts(quality: Mapping[str, Any], lang: str,
                  electrodes_off: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """(advice, details) of a screening's or analysis' ``quality`` dict in ``lang``; a record
    made before the codes existed (no ``issues``) gives its stored reasons as details."""
    issues = quality.get("issues")
    if issues is None:
        stored = [str(r) for r in quality.get("reasons") or []]
        return advice([], lang, electrodes_off), stored
    return advice(issues, lang, electrodes_off), details(issues, lang)

"""Lead maps and derived leads: device channels -> the 12 standard leads.

Einthoven and Goldberger (../shared/docs/devices/04-ads1298-12-lead.md, "Channel map and
derived leads"): with I = LA - RA and II = LL - RA,
``III = II - I``, ``aVR = -(I + II) / 2``, ``aVL = I - II / 2``, ``aVF = II - I / 2``.
An 8-channel ADS1298-style front-end measures I, II and V1-V6 (V against the Wilson central
terminal); the other four limb leads are computed. Which ADC channel carries which lead is
board-specific: `ADS1298_EVM_LEAD_MAP` is TI's ADS1298R ECG-FE order (SBAU181B, Tables 2-3).

>>> import numpy as np
>>> from detak.data.recording import Recording
>>> rec = Recording(np.array([[1.0], [0.5]]), fs=500.0, leads=["CH2", "CH3"])
>>> out = derive_standard_leads(apply_lead_map(rec, {"CH2": "I", "CH3": "II"}))
>>> dict(zip(out.leads, out.signal[:, 0].tolist()))
{'I': 1.0, 'II': 0.5, 'III': -0.5, 'aVR': -0.75, 'aVL': 0.75, 'aVF': 0.0}
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from detak.data.leads import STANDARD_LEADS, normalize_lead_name
from detak.data.recording import MissingLeadError, Recording

#: TI ADS1298R ECG-FE: ADC channel -> lead (channel 1 = V6, 2 = I, 3 = II, 4-7 = V2-V5, 8 = V1)
ADS1298_EVM_LEAD_MAP: dict[str, str] = {
    "CH1": "V6", "CH2": "I", "CH3": "II", "CH4": "V2",
    "CH5": "V3", "CH6": "V4", "CH7": "V5", "CH8": "V1",
}
#: the usual order of an 8-lead front-end (and of the emulator's Cyton impersonation)
EIGHT_LEAD_MAP: dict[str, str] = {f"CH{i + 1}": lead for i, lead in
                                  enumerate(("I", "II", "V1", "V2", "V3", "V4", "V5", "V6"))}
NAMED_MAPS = {"ads1298-evm": ADS1298_EVM_LEAD_MAP, "8-lead": EIGHT_LEAD_MAP}
DERIVED = ("III", "aVR", "aVL", "aVF")


def limb_leads(lead_i: np.ndarray, lead_ii: np.ndarray) -> dict[str, np.ndarray]:
    """III, aVR, aVL, aVF from leads I and II (same shape, any units).

    >>> {k: float(v) for k, v in limb_leads(np.float32(1.0), np.float32(2.0)).items()}
    {'III': 1.0, 'aVR': -1.5, 'aVL': 0.0, 'aVF': 1.5}
    """
    i = np.asarray(lead_i, dtype=np.float64)
    ii = np.asarray(lead_ii, dtype=np.float64)
    return {"III": ii - i, "aVR": -(i + ii) / 2, "aVL": i - ii / 2, "aVF": ii - i / 2}


def parse_lead_map(text: str) -> dict[str, str]:
    """``"CH1=I,CH2=II"`` or a named map (``ads1298-evm``, ``8-lead``) as a dict.

    >>> parse_lead_map("CH1=I, CH2 = II")
    {'CH1': 'I', 'CH2': 'II'}
    >>> parse_lead_map("CH1")
    Traceback (most recent call last):
    ...
    ValueError: lead map item 'CH1' is not CHANNEL=LEAD (or use a named map: 8-lead, ads1298-evm)
    """
    if text.strip() in NAMED_MAPS:
        return dict(NAMED_MAPS[text.strip()])
    out: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        channel, sep, lead = item.partition("=")
        if not sep or not channel.strip():
            raise ValueError(f"lead map item {item.strip()!r} is not CHANNEL=LEAD (or use a "
                             f"named map: {', '.join(sorted(NAMED_MAPS))})")
        out[channel.strip()] = lead.strip()
    return out


def apply_lead_map(rec: Recording, lead_map: Mapping[str, str]) -> Recording:
    """Rename channels by ``lead_map`` (device channel -> lead; ``""`` drops the channel).

    Every mapped channel must exist, and no two channels may end up with the same name.
    """
    if not lead_map:
        return rec
    leads = list(rec.leads)
    missing = [c for c in lead_map if normalize_lead_name(c) not in leads]
    if missing:
        raise MissingLeadError(missing[0], leads, rec.name)
    keep, names = [], []
    for i, name in enumerate(leads):
        new = next((v for k, v in lead_map.items() if normalize_lead_name(k) == name), name)
        if new == "":
            continue
        keep.append(i)
        names.append(normalize_lead_name(new))
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{rec.name or 'recording'}: lead map gives several channels the "
                         f"name(s) {', '.join(dup)}")
    meta = {**rec.meta, "lead_map": dict(lead_map)}
    return rec.replace(signal=rec.signal[keep], leads=names, meta=meta)


def derive_standard_leads(rec: Recording) -> Recording:
    """Add the limb leads missing from ``rec`` (it needs I and II), in standard order.

    Recorded leads are never overwritten; standard leads come first in the usual order, any
    other channels after them. `MissingLeadError` names I or II when absent.
    """
    leads = list(rec.leads)
    for need in ("I", "II"):
        if need not in leads:
            raise MissingLeadError(need, leads, rec.name)
    derived = limb_leads(rec.signal[leads.index("I")], rec.signal[leads.index("II")])
    rows = {lead: rec.signal[i] for i, lead in enumerate(leads)}
    added = [k for k in DERIVED if k not in rows]
    for k in added:
        rows[k] = derived[k].astype(np.float32)
    order = [lead for lead in STANDARD_LEADS if lead in rows] + [
        lead for lead in leads if lead not in STANDARD_LEADS]
    meta = {**rec.meta, "derived_leads": added} if added else dict(rec.meta)
    return rec.replace(signal=np.stack([rows[k] for k in order]), leads=order, meta=meta)


def ads1298_to_12_lead(signal: np.ndarray, fs: float,
                       lead_map: Mapping[str, str] = ADS1298_EVM_LEAD_MAP,
                       name: str = "") -> Recording:
    """An 8-channel ADS1298 front-end's signal (channels CH1..CH8 in rows, mV) as 12 leads.

    >>> x = np.zeros((8, 10), np.float32); x[1] = 1.0           # CH2 = lead I on the EVM
    >>> rec = ads1298_to_12_lead(x, 500.0)
    >>> rec.leads[:6], float(rec.lead("aVL")[0]), float(rec.lead("III")[0])
    (('I', 'II', 'III', 'aVR', 'aVL', 'aVF'), 1.0, -1.0)
    """
    sig = np.asarray(signal)
    if sig.ndim != 2 or sig.shape[0] != 8:
        raise ValueError(f"{name or 'ADS1298 signal'}: expected 8 channels in rows, got shape "
                         f"{sig.shape}")
    rec = Recording(sig, fs, [f"CH{i}" for i in range(1, 9)], name=name)
    out = derive_standard_leads(apply_lead_map(rec, lead_map))
    if tuple(out.leads) != STANDARD_LEADS:
        raise ValueError(f"{name or 'ADS1298 signal'}: lead map {dict(lead_map)} does not give "
                         f"I, II and V1-V6 (got {', '.join(out.leads)})")
    return out

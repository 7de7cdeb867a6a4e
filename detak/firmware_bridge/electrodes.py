"""Which leads an electrode feeds: how a LEAD_OFF bit becomes per-lead flags.

Standard electrode names are RA, LA, LL, RL (right-leg drive / reference) and V1–V6. Limb leads
use two limb electrodes (I = LA−RA, II = LL−RA, III = LL−LA); the augmented leads and V1–V6 use
all three limb electrodes (Goldberger terminals and the Wilson central terminal), so a limb
electrode off spoils them too; RL off spoils every lead. Vn spoils only Vn. Any other electrode
name flags the channel of the same name if there is one, and otherwise every channel (we cannot
tell which it feeds, so nothing is trusted).

>>> leads_affected("V2", ["I", "II", "V1", "V2"])
('V2',)
>>> leads_affected("la", ["I", "II", "III", "aVR", "V1"])
('I', 'III', 'aVR', 'V1')
>>> leads_affected("CH3", ["CH1", "CH2", "CH3"])
('CH3',)
"""

from __future__ import annotations

from collections.abc import Sequence

from detak.data.leads import normalize_lead_name

STANDARD_ELECTRODES: tuple[str, ...] = (
    "RA", "LA", "LL", "RL", "V1", "V2", "V3", "V4", "V5", "V6",
)
_CHEST = ("V1", "V2", "V3", "V4", "V5", "V6")
_WCT = ("aVR", "aVL", "aVF", *_CHEST)
_FEEDS: dict[str, tuple[str, ...]] = {
    "RA": ("I", "II", *_WCT),
    "LA": ("I", "III", *_WCT),
    "LL": ("II", "III", *_WCT),
    **{v: (v,) for v in _CHEST},
}


def leads_affected(electrode: str, channels: Sequence[str]) -> tuple[str, ...]:
    """The channels (in their given order, normalised names) that ``electrode`` being off spoils.

    >>> leads_affected("RL", ["I", "V1"])
    ('I', 'V1')
    """
    names = [normalize_lead_name(c) for c in channels]
    key = electrode.strip().upper()
    if key == "RL":
        return tuple(names)
    feeds = _FEEDS.get(key)
    if feeds is None:
        wanted = normalize_lead_name(electrode)
        same = [n for n in names if n.upper() == wanted.upper()]
        return tuple(same) if same else tuple(names)
    return tuple(n for n in names if n in feeds)


def electrodes_for(channels: Sequence[str]) -> tuple[str, ...]:
    """The electrodes a front-end recording ``channels`` has: the standard set for standard
    leads, else one electrode per channel, named like the channel.

    >>> electrodes_for(["I", "II", "V1", "V2"])
    ('RA', 'LA', 'LL', 'RL', 'V1', 'V2')
    >>> electrodes_for(["CH1"])
    ('CH1',)
    """
    names = [normalize_lead_name(c) for c in channels]
    limb = {"I", "II", "III", "aVR", "aVL", "aVF"}
    if any(n in limb or n in _CHEST for n in names):
        chest = [v for v in _CHEST if v in names]
        other = [n for n in names if n not in limb and n not in _CHEST]
        return ("RA", "LA", "LL", "RL", *chest, *other)
    return tuple(names)

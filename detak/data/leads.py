"""Standard ECG lead names and normalisation of the spellings devices and files use.

>>> normalize_lead_name("AVR"), normalize_lead_name("v1"), normalize_lead_name("MLII")
('aVR', 'V1', 'MLII')
"""

from __future__ import annotations

STANDARD_LEADS: tuple[str, ...] = (
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
)

# Modified limb leads of Holter/monitor recordings (MIT-BIH style). They are kept under their
# own name, and `equivalent_standard_lead` maps them to the standard lead they approximate.
MODIFIED_LEADS: dict[str, str] = {"MLI": "I", "MLII": "II", "MLIII": "III"}

_ALIASES: dict[str, str] = {
    **{name.upper(): name for name in STANDARD_LEADS},
    "LEAD I": "I", "LEAD II": "II", "LEAD III": "III",
    "D1": "I", "D2": "II", "D3": "III", "DI": "I", "DII": "II", "DIII": "III",
    "-AVR": "-aVR",
    **{k: k for k in MODIFIED_LEADS},
    "ML2": "MLII", "ML1": "MLI", "ML3": "MLIII",
}


def normalize_lead_name(name: str) -> str:
    """Return the standard spelling of a lead name (``AVR``→``aVR``, ``v1``→``V1``).

    Unknown names are returned stripped but otherwise unchanged, so single-lead devices with
    their own channel names stay usable.

    >>> normalize_lead_name(" avf ")
    'aVF'
    >>> normalize_lead_name("ECG")
    'ECG'
    """
    key = " ".join(name.strip().upper().replace("_", " ").split())
    if key.startswith("LEAD ") and key not in _ALIASES:
        key = key[5:]
    return _ALIASES.get(key, name.strip())


def equivalent_standard_lead(name: str) -> str | None:
    """The standard lead a (possibly modified) lead stands for, or None.

    >>> [equivalent_standard_lead(name) for name in ("MLII", "V5", "X")]
    ['II', 'V5', None]
    """
    name = normalize_lead_name(name)
    if name in STANDARD_LEADS:
        return name
    return MODIFIED_LEADS.get(name)

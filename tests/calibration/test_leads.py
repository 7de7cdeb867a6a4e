"""Lead maps and derived leads (detak/calibration/leads.py), checked against real 12-lead
records: PTB-XL and LUDB recorded III, aVR, aVL and aVF alongside I and II."""

from __future__ import annotations

import numpy as np
import pytest

from detak.calibration.leads import (
    ADS1298_EVM_LEAD_MAP,
    ads1298_to_12_lead,
    apply_lead_map,
    derive_standard_leads,
    limb_leads,
    parse_lead_map,
)
from detak.data.ludb import load_ludb
from detak.data.ptbxl import open_ptbxl
from detak.data.recording import MissingLeadError, Recording

# --- bad input first ---------------------------------------------------------------------------


def test_deriving_without_lead_ii_names_it() -> None:
    rec = Recording(np.zeros((2, 5)), 500.0, ["I", "V1"], name="r1")
    with pytest.raises(MissingLeadError, match="lead 'II' not found in r1; available leads: I, V1"):
        derive_standard_leads(rec)


def test_lead_maps_naming_absent_or_duplicate_channels_are_refused() -> None:
    rec = Recording(np.zeros((2, 5)), 500.0, ["CH1", "CH2"], name="r2")
    with pytest.raises(MissingLeadError, match="'CH3' not found in r2"):
        apply_lead_map(rec, {"CH3": "I"})
    with pytest.raises(ValueError, match="several channels the name\\(s\\) II"):
        apply_lead_map(rec, {"CH1": "II", "CH2": "II"})
    with pytest.raises(ValueError, match="expected 8 channels in rows, got shape \\(12, 5\\)"):
        ads1298_to_12_lead(np.zeros((12, 5)), 500.0)
    with pytest.raises(ValueError, match="does not give I, II and V1-V6"):
        ads1298_to_12_lead(np.zeros((8, 5)), 500.0, {**ADS1298_EVM_LEAD_MAP, "CH8": "V7"})


# --- behaviour ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ecg_id", [1, 2, 500, 9000])
def test_derived_limb_leads_match_ptbxl_recorded_ones(ecg_id) -> None:
    rec = open_ptbxl().record(ecg_id)
    derived = limb_leads(rec.lead("I"), rec.lead("II"))
    for lead, x in derived.items():
        # PTB-XL stores integer µV: halves round away, so up to 1.5 µV apart; a record with
        # independently recorded limb leads would differ far more
        assert np.abs(x - rec.lead(lead)).max() <= 0.0015 + 1e-6, (ecg_id, lead)


def test_an_ads1298_evm_channel_order_becomes_the_12_standard_leads() -> None:
    src = load_ludb(7).recording
    evm = np.stack([src.lead(ADS1298_EVM_LEAD_MAP[f"CH{i}"]) for i in range(1, 9)])
    out = ads1298_to_12_lead(evm, src.fs, name="ludb7-evm")
    assert out.leads == src.leads and out.fs == src.fs
    for lead in ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6"):
        assert np.array_equal(out.lead(lead), src.lead(lead))
    # LUDB recorded its limb leads independently (they differ from Einthoven's sums by up to
    # 0.4 mV), so the derived ones are checked against the formulas, written out here
    i, ii = src.lead("I").astype(np.float64), src.lead("II").astype(np.float64)
    for lead, x in {"III": ii - i, "aVR": -(i + ii) / 2, "aVL": i - ii / 2,
                    "aVF": ii - i / 2}.items():
        assert np.abs(out.lead(lead) - x).max() < 1e-6


def test_named_maps_and_dropping_a_channel() -> None:
    assert parse_lead_map("ads1298-evm")["CH1"] == "V6"
    assert parse_lead_map("8-lead")["CH3"] == "V1"
    rec = Recording(np.arange(6.0).reshape(3, 2), 100.0, ["CH1", "CH2", "CH3"])
    out = apply_lead_map(rec, parse_lead_map("CH1=II,CH3="))
    assert out.leads == ("II", "CH2") and out.signal[1].tolist() == [2.0, 3.0]
    assert out.meta["lead_map"] == {"CH1": "II", "CH3": ""}

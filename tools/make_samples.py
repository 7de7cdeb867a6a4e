"""Rebuild the sample records bundled in ``detak/data/sample_records`` from ``DETAK_DATA``.

    .venv/bin/python tools/make_samples.py

PTB-XL records are written as WFDB (format 16, gain 1000/mV: the integers are the dataset's
microvolts, as in PhysioNet's ``records100``); LUDB records are copied byte for byte.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import wfdb

from detak.data.leads import STANDARD_LEADS
from detak.data.paths import data_root
from detak.data.ptbxl import open_ptbxl
from detak.data.samples import SAMPLES_DIR

PTBXL_CITE = ("Wagner et al., PTB-XL, a large publicly available electrocardiography dataset, "
              "Sci Data 7:154 (2020); PTB-XL v1.0.3, PhysioNet (2022), doi:10.13026/kfzx-aw45")
LUDB_CITE = ("Kalyakulina et al., LUDB: A New Open-Access Validation Tool for Electrocardiogram "
             "Delineation Algorithms, IEEE Access 8:186181 (2020)")

PTBXL = {215: "sinus rhythm, normal ECG", 257: "inferior myocardial infarction",
         600: "anterior myocardial infarction", 102: "first-degree AV block",
         286: "complete left bundle branch block", 7489: "atrial fibrillation"}
LUDB = {1: "sinus bradycardia, left ventricular hypertrophy", 2: "sinus rhythm",
        8: "atrial fibrillation"}


def main() -> None:
    SAMPLES_DIR.mkdir(parents=True, exist_ok=True)
    index: dict[str, dict] = {}
    ptb = open_ptbxl()
    meta = ptb.metadata
    for ecg_id, desc in PTBXL.items():
        fold = int(meta.loc[ecg_id, "strat_fold"])
        ids, arr = ptb.load_fold(fold)
        x = np.asarray(arr[int(np.searchsorted(ids, ecg_id))])
        name = f"ptbxl-{ecg_id:05d}"
        age = meta.loc[ecg_id, "age"]
        sex = meta.loc[ecg_id, "sex"]
        wfdb.wrsamp(name, fs=100, units=["mV"] * 12, sig_name=list(STANDARD_LEADS),
                    d_signal=x.T.astype(np.int16), fmt=["16"] * 12, adc_gain=[1000.0] * 12,
                    baseline=[0] * 12, write_dir=str(SAMPLES_DIR),
                    comments=[f"source: PTB-XL v1.0.3 ecg_id {ecg_id} (CC BY 4.0)",
                              f"age: {age:g}", f"sex: {sex}",
                              f"scp_codes: {meta.loc[ecg_id, 'scp_codes']}"])
        index[name] = {"dataset": "PTB-XL", "id": ecg_id, "description": desc,
                       "licence": "CC BY 4.0", "citation": PTBXL_CITE}
    ludb_dir = data_root() / "ludb" / "data"
    for n, desc in LUDB.items():
        name = f"ludb-{n}"
        for suffix in (".hea", ".dat"):
            shutil.copyfile(ludb_dir / f"{n}{suffix}", SAMPLES_DIR / f"{name}{suffix}")
        hea = (SAMPLES_DIR / f"{name}.hea").read_text()
        (SAMPLES_DIR / f"{name}.hea").write_text(
            hea.replace(f"{n}.dat", f"{name}.dat").replace(f"{n} 12", f"{name} 12", 1))
        index[name] = {"dataset": "LUDB", "id": n, "description": desc,
                       "licence": "ODC-By 1.0", "citation": LUDB_CITE}
    (SAMPLES_DIR / "index.json").write_text(json.dumps(index, indent=2) + "\n")
    print(f"wrote {len(index)} records to {SAMPLES_DIR}")


if __name__ == "__main__":
    main()

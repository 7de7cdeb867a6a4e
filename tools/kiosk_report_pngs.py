"""Render the kiosk's PDF report for the cases a reviewer should look at, in both languages,
and save each page as a 100-dpi PNG (poppler's pdftoppm; `make pdf-tools`) under
docs/results/kiosk-report/.

Cases: PTB-XL 184 (fold 9, labelled MI: ILMI + ASMI; never fold 10), 12 leads at 100 Hz; PTB-XL
4531 (fold <= 8, atrial fibrillation, likelihood 100), 12 leads: the rhythm findings; LUDB 1
lead II alone (single lead); LUDB 1 leads I, II, III (3-lead); PTB-XL 184 with Gaussian noise
of 1.5 mV SD added (seed 0), which the quality check rejects. The resident, nurse and facility
are invented; the sex shown is the record's (the limits the screening used).

    python tools/kiosk_report_pngs.py [--out docs/results/kiosk-report] [--keep-pdf]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from detak.data.ptbxl import open_ptbxl
from detak.data.samples import load_sample
from detak.kiosk.report_pdf import render_report
from detak.kiosk.screening import screen

RESIDENT = {"resident_number": "PW-0042", "birth_date": "1941-03-15"}
NAMES = {"M": "Bambang Suryono", "F": "Siti Rahayu"}  # invented; by the record's sex


def cases() -> dict[str, tuple[str, object]]:
    ptb = open_ptbxl()
    mi = ptb.record(184)
    noisy = mi.replace(signal=(mi.signal + np.random.default_rng(0).normal(
        0, 1.5, mi.signal.shape)).astype(np.float32))
    ludb = load_sample("ludb-1")
    return {"mi-12-lead": ("ptbxl://184", mi),
            "af-12-lead": ("ptbxl://4531", ptb.record(4531)), "single-lead": ("ludb://1 (II)",
                                                               ludb.select(["II"])),
            "three-lead": ("ludb://1 (I, II, III)", ludb.select(["I", "II", "III"])),
            "rejected": ("ptbxl://184 + noise", noisy)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/results/kiosk-report")
    ap.add_argument("--keep-pdf", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, (source, rec) in cases().items():
            for lang in ("id", "en"):
                s = screen(rec, lang=lang, source=source).to_dict()
                pdf = (out if args.keep_pdf else Path(tmp)) / f"{name}-{lang}.pdf"
                sex = (s.get("rhythm") or {}).get("sex") or "M"  # rejected: PTB-XL 184, M
                resident = {**RESIDENT, "name": NAMES[sex]}
                pdf.write_bytes(render_report(s, rec, lang=lang, resident=resident,
                                              facility="Panti Werdha Kasih Ibu, Yogyakarta",
                                              nurse="Dewi Lestari"))
                subprocess.run(["pdftoppm", "-r", "100", "-png", "-singlefile", str(pdf),
                                str(out / f"{name}-{lang}")], check=True)
                print(out / f"{name}-{lang}.png")


if __name__ == "__main__":
    main()

"""Limb-electrode reversal detection (issue 18, item 4): sensitivity and specificity of the
quality gate's ``lead_reversal`` warning on PTB-XL fold 9, reversals synthesised from the real
records.

Every fold-9 record (all 2183, labelled or not; fold 10 never read) goes through the kiosk's
quality gate (`detak.signal.quality.assess_quality`, the raw 100 Hz signal in mV) four times:
as recorded, and with the LA/RA, LA/LL and RA/LL cables swapped
(`detak.signal.perturb.swap_limb_electrodes`: each limb lead derived from the swapped electrode
potentials, chest leads unchanged). A record counts as flagged when the gate emits
``lead_reversal``; "named right" when it names the swap that was made. Specificity is on the
records as recorded (PTB-XL's own cabling; a few may really be reversed — the false alarms are
listed with PTB-XL's ``electrodes_problems`` and ``heart_axis`` columns so a reader can look).
Intervals: Wilson 95 %. The detector's levels were chosen on fold 1 (see
`detak.signal.lead_reversal`), not on fold 9.

Run: ``.venv/bin/python benchmarks/lead_reversal.py [--max-records N] [--no-results]``
(about 15 minutes on one core: 4 × 2183 quality checks).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

import numpy as np
from _provenance import provenance_line
from readme_tables import RESULTS, write_results

LIBRARIES = ("neurokit2",)
RESULTS_FILE = RESULTS / "lead_reversal.md"
FOLD = 9


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of k successes in n.

    >>> [round(v, 3) for v in wilson(9, 10)]
    [0.596, 0.982]
    """
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, float(c - h)), min(1.0, float(c + h))


def _fmt(k: int, n: int) -> str:
    lo, hi = wilson(k, n)
    return f"{k / n:.3f} [{lo:.3f}, {hi:.3f}] ({k}/{n})" if n else "—"


def _text(v: object) -> str:
    """A metadata cell as text, "—" when empty or NaN."""
    return "—" if v is None or (isinstance(v, float) and np.isnan(v)) or v == "" else str(v)


def run(max_records: int | None) -> dict:
    from detak.data.leads import STANDARD_LEADS
    from detak.data.ptbxl import open_ptbxl
    from detak.data.recording import Recording
    from detak.signal.perturb import LIMB_SWAPS, swap_limb_electrodes
    from detak.signal.quality import assess_quality

    ptb = open_ptbxl()
    ids, raw = ptb.load_fold(FOLD)
    if max_records:
        ids, raw = ids[:max_records], raw[:max_records]
    names = list(STANDARD_LEADS)
    calls: dict[str, list] = {k: [] for k in ("none", *LIMB_SWAPS)}
    cannot = Counter()
    rejected = Counter()
    for i in range(len(ids)):
        x = raw[i].astype(np.float32) / np.float32(1000.0)
        for kind in calls:
            y = x if kind == "none" else swap_limb_electrodes(x, names, kind)
            rep = assess_quality(Recording(y, 100.0, names, name=str(ids[i])))
            rev = [j for j in rep.issues if j["code"] == "lead_reversal"]
            calls[kind].append(rev[0]["electrodes"] if rev else None)
            if rep.rejected:
                rejected[kind] += 1
            elif not (rep.lead_reversal or {}).get("can_tell", False):
                cannot[kind] += 1
    return {"ids": ids, "calls": calls, "cannot": cannot, "rejected": rejected,
            "metadata": ptb.metadata.loc[ids]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-records", type=int, default=None, help="first N records (smoke)")
    ap.add_argument("--no-results", action="store_true", help="print only")
    args = ap.parse_args(argv)
    from detak.signal.perturb import LIMB_SWAPS

    t0 = time.time()
    prov = provenance_line(libraries=LIBRARIES)
    r = run(args.max_records)
    calls, n = r["calls"], len(r["ids"])
    rows = ["| cabling | records | flagged (any reversal) | named right | named another swap | "
            "gate rejected the recording | could not tell |",
            "|---|---|---|---|---|---|---|"]
    none = calls["none"]
    alarms = [c for c in none if c is not None]
    spec_k = n - len(alarms)
    rows.append(f"| as recorded (specificity: not flagged) | {n} | {len(alarms)} | — | — | "
                f"{r['rejected']['none']} | {r['cannot']['none']} |")
    summary = {}
    for kind in LIMB_SWAPS:
        got = calls[kind]
        flagged = sum(c is not None for c in got)
        right = sum(c == kind for c in got)
        summary[kind] = (right, flagged)
        rows.append(f"| {kind} swapped | {n} | {_fmt(flagged, n)} | {_fmt(right, n)} | "
                    f"{flagged - right} | {r['rejected'][kind]} | {r['cannot'][kind]} |")
    lines = [f"Specificity on fold 9 as recorded: {_fmt(spec_k, n)} "
             f"({len(alarms)} false alarms: "
             + ", ".join(f"{k} {v}" for k, v in sorted(Counter(alarms).items())) + ")."]
    for kind in ("LA/RA", "RA/LL"):
        right, flagged = summary[kind]
        lines.append(f"Sensitivity, {kind}: {_fmt(flagged, n)} flagged, {_fmt(right, n)} "
                     "with the right cables named.")
    lines.append("LA/LL is not detected by design (it maps a normal frontal axis onto a normal "
                 f"one): {summary['LA/LL'][1]} of {n} LA/LL-swapped records were flagged, as "
                 "some other swap.")
    md = r["metadata"]
    fa_rows = []
    for i, c in enumerate(none):
        if c is None:
            continue
        m = md.iloc[i]
        fa_rows.append(f"| {int(r['ids'][i])} | {c} | {_text(m['heart_axis'])} | "
                       f"{_text(m['electrodes_problems'])} | "
                       f"{', '.join(sorted(m['superclasses'])) or 'unlabelled'} |")
    head = ("Limb-electrode reversal warning of the quality gate on PTB-XL fold 9 (every "
            f"record, {n}), reversals synthesised from the real records "
            "(`swap_limb_electrodes`); 95 % Wilson intervals. Levels chosen on fold 1.")
    block = [head, "", *rows, "", *lines]
    fa_table = (["False alarms on the records as recorded (PTB-XL metadata):", "",
                 "| ecg_id | named | heart_axis | electrodes_problems | superclasses |",
                 "|---|---|---|---|---|", *fa_rows] if fa_rows else ["No false alarms."])
    run_line = f"_Run time {time.time() - t0:.0f} s._"
    text = "\n".join([*block, "", *fa_table, "", run_line, "", prov])
    print(text)
    if not args.no_results:
        path = write_results(RESULTS_FILE, "Limb-electrode reversal detection (PTB-XL fold 9)",
                             prov, text, {"lead_reversal": "\n".join([*block, "", prov])})
        print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Where the boundary-error SD comes from: between-record offsets vs within-record beat scatter.

    .venv/bin/python benchmarks/intervals_ludb.py --dump /tmp/ludb.json
    .venv/bin/python benchmarks/boundary_sd.py /tmp/ludb.json [--lead II] [--worst 10]

Reads the per-record dump of ``benchmarks/intervals_ludb.py`` (matched errors, detected −
annotated, ms) and splits each boundary's SD (all matched beats of one lead) into

* between: SD over beats of their record's mean error (a per-record offset),
* within: RMS of each error around its record's mean (beat-to-beat scatter),

so that SD² = between² + within². "between allowed" is the largest between-record part that
still fits the CSE tolerance given the within part (sqrt(tol² − within²); 0 when the within
part alone exceeds it): even a method with no per-record offset at all cannot beat ``within``.
Printed for all, odd and even records; ``--worst`` lists the records with the largest offsets
(|mean| × sqrt(n), their weight in the between part) with LUDB's rhythm and conduction notes.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from typing import Any

import numpy as np
from _provenance import REPO, provenance_line
from readme_tables import write_results

RESULTS_FILE = REPO / "docs" / "results" / "boundary_sd.md"
BOUNDARIES = ("p_on", "p_off", "qrs_on", "qrs_off", "t_off")
CSE_TOL = {"p_on": 10.2, "p_off": 12.7, "qrs_on": 6.5, "qrs_off": 11.6, "t_off": 30.6}
OUTLIER_MS = 40.0


def decompose(per_record: list[np.ndarray]) -> dict[str, float]:
    """Mean, SD and its between-record / within-record parts (ms) of pooled errors.

    >>> d = decompose([np.array([1.0, 3.0]), np.array([5.0, 7.0])])
    >>> d["sd"], d["between"], d["within"]
    (2.23606797749979, 2.0, 1.0)
    """
    per = [e[np.isfinite(e)] for e in per_record]
    per = [e for e in per if e.size]
    if not per:
        return {"n": 0, "mean": math.nan, "sd": math.nan, "between": math.nan,
                "within": math.nan, "n_outliers": 0, "sd_wo_outliers": math.nan}
    a = np.concatenate(per)
    means = np.concatenate([np.full(e.size, e.mean()) for e in per])
    big = np.abs(a) > OUTLIER_MS
    return {"n": int(a.size), "mean": float(a.mean()), "sd": float(a.std()),
            "between": float(means.std()),
            "within": float(np.sqrt(np.mean((a - means) ** 2))),
            "n_outliers": int(big.sum()),
            "sd_wo_outliers": float(a[~big].std()) if (~big).any() else math.nan}


def _errors(results: list[dict[str, Any]], lead: str, key: str) -> list[np.ndarray]:
    return [np.asarray(r["bound_err"].get(lead, {}).get(key, []), dtype=float) for r in results]


def table(results: list[dict[str, Any]], lead: str, title: str) -> list[str]:
    """Markdown table of the decomposition for one record subset."""
    return [f"### {title}, lead {lead} ({len(results)} records)", "", *rows(results, lead)]


def rows(results: list[dict[str, Any]], lead: str) -> list[str]:
    """The table itself (header and one row per boundary)."""
    lines = ["| boundary | n | mean | SD | between | within | CSE tol. | between allowed "
             f"| n > {OUTLIER_MS:g} ms | SD without them |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for k in BOUNDARIES:
        d = decompose(_errors(results, lead, k))
        tol = CSE_TOL[k]
        allowed = math.sqrt(max(0.0, tol**2 - d["within"] ** 2))
        lines.append(f"| {k} | {d['n']} | {d['mean']:+.1f} | {d['sd']:.1f} | {d['between']:.1f} "
                     f"| {d['within']:.1f} | {tol:g} | {allowed:.1f} | {d['n_outliers']} "
                     f"| {d['sd_wo_outliers']:.1f} |")
    return lines + [""]


def _ludb_notes() -> dict[int, str]:
    from detak.data.ludb import ludb_root

    out = {}
    with open(ludb_root() / "ludb.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            parts = [row.get("Rhythms", ""), row.get("Conduction abnormalities", ""),
                     row.get("Cardiac pacing", "")]
            out[int(row["ID"])] = "; ".join(p.replace("\n", ", ") for p in parts if p)
    return out


def worst(results: list[dict[str, Any]], lead: str, n_worst: int) -> list[str]:
    """Records with the largest per-record offsets, per boundary."""
    notes = _ludb_notes()
    lines = []
    for k in BOUNDARIES:
        rows = []
        for r in results:
            e = np.asarray(r["bound_err"].get(lead, {}).get(k, []), dtype=float)
            e = e[np.isfinite(e)]
            if e.size:
                rows.append((abs(e.mean()) * math.sqrt(e.size), r["record"], e))
        rows.sort(key=lambda t: -t[0])
        lines += [f"{k}: record, mean ± SD (n) — LUDB notes"]
        lines += [f"  {rec:4d} {e.mean():+6.1f} ± {e.std():4.1f} ({e.size:2d}) — "
                  f"{notes.get(rec, '')[:90]}" for _, rec, e in rows[:n_worst]]
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dump", help="JSON written by benchmarks/intervals_ludb.py --dump")
    ap.add_argument("--lead", default="II")
    ap.add_argument("--worst", type=int, default=0, help="list this many worst records")
    ap.add_argument("--no-results", action="store_true",
                    help="do not write docs/results/boundary_sd.md (written for lead II on a "
                         "dump of all 200 records)")
    args = ap.parse_args(argv)
    with open(args.dump) as fh:
        results = json.load(fh)
    out = table(results, args.lead, "All records")
    out += table([r for r in results if r["record"] % 2], args.lead, "Odd records")
    out += table([r for r in results if r["record"] % 2 == 0], args.lead, "Even records")
    if args.worst:
        out += worst(results, args.lead, args.worst)
    prov = provenance_line(libraries=("neurokit2",))
    out += ["", prov]
    print("\n".join(out))
    if args.lead == "II" and len(results) == 200 and not args.no_results:
        block = [*rows(results, "II"), "", prov + " On the dump of `benchmarks/intervals_ludb.py"
                 " --dump`, whose own run wrote docs/results/intervals_ludb.md."]
        path = write_results(RESULTS_FILE, "Boundary SD on LUDB: between and within records",
                             prov, "\n".join(out), {"boundary_sd": "\n".join(block)})
        print(f"\nwritten: {path} (make readme copies its table into README.md)")


if __name__ == "__main__":
    main()

"""Where the rhythm rules and the rhythm classifier disagree most on PTB-XL fold 9 (12 leads),
plotted on ECG paper for a human to look at (issue 17, item 4).

Both read the shared feature cache (``<cache>/12lead-100/fold9.jsonl``): the rules
(`detak.models.rhythm_rules.rhythm_findings`) and the shipped classifier
(`detak.models.rhythm_classifier`, its probabilities for every class, as
`benchmarks/rhythm_classifier.py` scores the cache). For each record and each class the
classifier knows (SR excepted: it is the mirror of the others), the two disagree when one finds
the class and the other does not (the classifier finds it at its card's threshold); the
strength of a disagreement is the classifier's probability when only the classifier finds the
class, and 1 − it when only the rules do. Records are ranked by their strongest disagreement,
at most ``--per-kind`` records per (class, direction), and the top ``--top`` are drawn with the
ECG-paper plotter of the reports (`detak.report.paper.plot_ecg_paper`).

The index (``index.md`` in the output folder) lists per record the PTB-XL statements, the rules'
findings, the classifier's top classes with their probabilities and one line of what the plot
shows, read from ``notes.json`` in the same folder (ecg_id → text, written by the person who
looked; a record without a note says so). Fold 10 is never read.

    python benchmarks/rhythm_disagreements.py --cache /work/rhythm-cache
    python benchmarks/rhythm_disagreements.py --top 8 --out docs/results/rhythm_disagreements
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _provenance import provenance_line
from readme_tables import REPO, RESULTS

OUT = RESULTS / "rhythm_disagreements"
CACHE = Path("/work/rhythm-cache")


@dataclass
class Disagreement:
    """One record's strongest disagreement."""

    ecg_id: int
    code: str              # the class they disagree on
    direction: str         # "classifier only" | "rules only"
    strength: float        # p (classifier only) or 1 - p (rules only)
    rules: list[str]       # the rules' finding codes
    probs: dict[str, float]
    statements: dict[str, float]


def disagreements(lines: Sequence[Mapping[str, Any]], probs: Mapping[str, Sequence[float]],
                  thresholds: Mapping[str, float], rule_codes: Sequence[list[str]]
                  ) -> list[Disagreement]:
    """The strongest disagreement of each record that has one, strongest first.

    >>> lines = [{"ecg_id": 1, "statements": {"AFIB": 0.0}}, {"ecg_id": 2, "statements": {}}]
    >>> d = disagreements(lines, {"AFIB": [0.97, 0.02], "SR": [0.01, 0.9]}, {"AFIB": 0.1,
    ...                   "SR": 0.4}, [["SR"], ["SR"]])
    >>> [(x.ecg_id, x.code, x.direction, x.strength) for x in d]
    [(1, 'AFIB', 'classifier only', 0.97)]
    """
    out = []
    for i, line in enumerate(lines):
        found = set(rule_codes[i])
        best: Disagreement | None = None
        p_i = {c: float(p[i]) for c, p in probs.items()}
        for c, p in p_i.items():
            if c == "SR":
                continue
            clf = p >= thresholds[c]
            if clf == (c in found):
                continue
            s = p if clf else 1.0 - p
            if best is None or s > best.strength:
                best = Disagreement(int(line["ecg_id"]), c,
                                    "classifier only" if clf else "rules only", round(s, 3),
                                    list(rule_codes[i]), p_i, dict(line["statements"]))
        if best is not None:
            out.append(best)
    return sorted(out, key=lambda d: (-d.strength, d.ecg_id))


def pick(ds: Sequence[Disagreement], top: int, per_kind: int) -> list[Disagreement]:
    """The ``top`` strongest, at most ``per_kind`` per (class, direction)."""
    seen: Counter = Counter()
    out = []
    for d in ds:
        if seen[(d.code, d.direction)] >= per_kind:
            continue
        seen[(d.code, d.direction)] += 1
        out.append(d)
        if len(out) == top:
            break
    return out


def _top(probs: Mapping[str, float], n: int = 3) -> str:
    return ", ".join(f"{c} {p:.2f}" for c, p in sorted(probs.items(), key=lambda x: -x[1])[:n])


def score_fold9(cache: Path) -> tuple[list[Disagreement], dict[str, Any]]:
    """All fold-9 disagreements and facts for the index (record count, model file)."""
    from detak.models import rhythm_clf_data as D
    from detak.models.rhythm_classifier import load_model, model_path
    from detak.models.rhythm_rules import rhythm_findings

    f9 = cache / "12lead-100" / "fold9.jsonl"
    if not (cache / "12lead-100" / "fold9.done").exists():
        raise SystemExit(f"fold-9 cache incomplete: {f9}")
    path = model_path("12lead")
    if not path.is_file():
        raise SystemExit(f"no 12-lead rhythm classifier shipped ({path})")
    model = load_model(path)
    lines = D.read_cache(f9)
    probs = model.proba_matrix(D.matrix(lines))
    codes = [[f["code"] for f in rhythm_findings(ln["features"])] for ln in lines]
    ds = disagreements(lines, probs, {c: model.threshold(c) for c in model.classes}, codes)
    facts = {"records": len(lines), "disagreeing": len(ds),
             "model": f"{path.parent.name}/{path.name}",
             "kinds": Counter((d.code, d.direction) for d in ds)}
    return ds, facts


def plot(ds: Sequence[Disagreement], out: Path) -> list[Path]:
    """Each record on ECG paper (``out/<ecg_id>.png``, 32 colours)."""
    from rhythm_ptbxl import _shrink

    from detak.data.ptbxl import open_ptbxl
    from detak.report.paper import plot_ecg_paper
    from detak.signal.filters import clean

    out.mkdir(parents=True, exist_ok=True)
    db = open_ptbxl()
    paths = []
    for d in ds:
        path = out / f"{d.ecg_id}.png"
        plot_ecg_paper(clean(db.record(d.ecg_id)), path,
                       title=f"PTB-XL {d.ecg_id}: rules {', '.join(d.rules)}; classifier "
                             f"{_top(d.probs)}",
                       subtitle=f"disagree on {d.code} ({d.direction}, strength "
                                f"{d.strength:.2f}); cardiologists: "
                                f"{', '.join(sorted(d.statements))}")
        _shrink(path)
        paths.append(path)
    return paths


def index(ds: Sequence[Disagreement], facts: Mapping[str, Any], notes: Mapping[str, str],
          prov: str) -> str:
    """The Markdown index of the plotted records."""
    kinds = ", ".join(f"{c} {d} {n}" for (c, d), n in facts["kinds"].most_common())
    lines = ["# Where the rhythm rules and the classifier disagree most (PTB-XL fold 9, "
             "12 leads)", "",
             f"{facts['disagreeing']} of {facts['records']} fold-9 records have a disagreement "
             f"on a class the classifier knows ({kinds}); classifier {facts['model']}. "
             "Strength: the classifier's probability when only it finds the class, 1 − it "
             "when only the rules do. The strongest are drawn below (a few per class and "
             "direction); the last column is what a person saw on the plot.", "",
             "| record | PTB-XL statements | rules | classifier (top 3) | disagree on | "
             "what the plot shows |", "|---|---|---|---|---|---|"]
    for d in ds:
        note = notes.get(str(d.ecg_id), "(not looked at yet)")
        lines.append(f"| [{d.ecg_id}]({d.ecg_id}.png) | {', '.join(sorted(d.statements))} | "
                     f"{', '.join(d.rules)} | {_top(d.probs)} | {d.code}: {d.direction} "
                     f"({d.strength:.2f}) | {note} |")
    return "\n".join([*lines, "", prov, ""])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--per-kind", type=int, default=2,
                    help="at most this many records per (class, direction)")
    ap.add_argument("--no-plots", action="store_true", help="list only, draw nothing")
    args = ap.parse_args(argv)
    ds, facts = score_fold9(args.cache)
    chosen = pick(ds, args.top, args.per_kind)
    cmd = "python benchmarks/rhythm_disagreements.py " + shlex.join(
        sys.argv[1:] if argv is None else argv)
    prov = provenance_line(command=cmd.strip(), libraries=("scikit-learn", "numpy"))
    notes_file = args.out / "notes.json"
    notes = json.loads(notes_file.read_text(encoding="utf-8")) if notes_file.is_file() else {}
    text = index(chosen, facts, notes, prov)
    print(text)
    if not args.no_plots:
        for p in plot(chosen, args.out):
            print(f"written: {p.resolve().relative_to(REPO)}")
        (args.out / "index.md").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

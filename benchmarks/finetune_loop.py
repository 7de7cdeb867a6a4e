"""The loop back to training at full scale (issue 16 item 6): fine-tune the shipped edge model
on PTB-XL folds 1–8 plus "confirmed screenings", and report fold-9 macro AUC before and after.

The confirmed screenings are PTB-XL fold-9 records (the last ``--screenings`` labelled ones),
written as WFDB in the layout ``detak server export-labels`` writes (labels.csv + records/,
`detak.server.export_labels`), two screenings per invented resident, the cardiologists'
superclasses standing for the doctors' verdicts. These records are left out of the fold-9
evaluation, before and after alike (they are trained on), so fold 9 is the same set on both
sides; the held-out residents' screenings (``--holdout``) are evaluated separately. Fold 10 is
never read.

Run: ``.venv/bin/python benchmarks/finetune_loop.py [--screenings 200] [--epochs 2]
[--threads 1] [--json OUT] [--markdown docs/results/finetune_loop.md]``. Exit status 1 when the
fold-9 macro AUC drops by more than 0.003. ``--max-records N`` makes a smoke run (not a
result).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(Path(__file__).resolve().parent)]

from _provenance import provenance, provenance_line  # noqa: E402


def write_screenings(out: Path, n: int) -> list[int]:
    """The last ``n`` labelled fold-9 records as a labels folder; returns their ecg_ids."""
    from detak.data.ptbxl import SUPERCLASSES, open_ptbxl
    from detak.data.wfdb_io import write_wfdb
    from detak.server.export_labels import COLUMNS, FORMAT, label_row

    ptb = open_ptbxl()
    ids = [int(i) for i in ptb.labelled_ids([9])[-n:]]
    labels = ptb.labels(ids)
    rows = []
    for k, (ecg_id, y) in enumerate(zip(ids, labels, strict=True)):
        folder = out / "records" / f"s{ecg_id}"
        folder.mkdir(parents=True, exist_ok=True)
        write_wfdb(ptb.record(ecg_id), folder / f"r{ecg_id}")
        codes = [c for c, v in zip(SUPERCLASSES, y, strict=True) if v]
        rows.append({"record": f"records/s{ecg_id}/r{ecg_id}.hea", "screening": f"s{ecg_id}",
                     "group": f"res-{k // 2}", "facility_id": 1, "signed_at": "", "version": 1,
                     "labels": " ".join(codes), **label_row(codes)})
    with open(out / "labels.csv", "w", newline="", encoding="utf-8") as f:
        f.write(f"# {FORMAT}\n")
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return ids


def _auc(m: dict) -> str:
    v = m.get("macro_auc")
    if v is None:
        v = m.get("macro_auc_defined_classes")
        return "n/a" if v is None else f"{v:.4f} (classes present only)"
    ci = m.get("macro_auc_ci")
    return f"{v:.4f}" + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "")


def markdown(result: dict) -> str:
    ft = result["finetune"]
    delta = ft["fold9_macro_auc_delta"]
    lines = [
        "# Fine-tuning the edge model on confirmed screenings (issue 16 item 6)", "",
        provenance_line(result["provenance"], libraries=("torch",)), "",
        f"Start: the shipped edge model. Data: PTB-XL folds 1–8 ({ft['ptbxl_train_records']} "
        f"records) + {ft['split']['train_records']} confirmed screenings (each seen "
        f"{ft['extra_weight']}× per epoch); held out by resident: "
        f"{ft['split']['held_out_records']} screenings of "
        f"{len(ft['split']['held_out_groups'])} residents. The screenings are the last "
        f"{result['screenings']} labelled PTB-XL fold-9 records (cardiologists' superclasses as "
        "the verdicts), left out of the fold-9 evaluation on both sides "
        f"(fold 9 here: {ft['fold9_before']['n']} records). {ft['epochs']} epochs, AdamW lr "
        f"{ft['lr']:g} constant, batch {ft['batch_size']}; kept: epoch {ft['best_epoch']} "
        f"({ft['selection']}); {ft['training_seconds']:.0f} s of training on "
        f"{ft['threads']} thread(s).", "",
        "| evaluation | before | after |", "|---|---|---|",
        f"| fold 9 macro AUC (95 % CI) | {_auc(ft['fold9_before'])} | "
        f"{_auc(ft['fold9_after'])} |",
        f"| fold 9 MI AUC | {ft['fold9_before'].get('mi_auc', float('nan')):.4f} | "
        f"{ft['fold9_after'].get('mi_auc', float('nan')):.4f} |",
        f"| held-out screenings macro AUC | {_auc(ft['held_out_before'])} | "
        f"{_auc(ft['held_out_after'])} |", "",
        f"Fold-9 macro AUC change: {delta:+.4f} (allowed: ≥ −{ft['max_auc_drop']}): "
        + ("**accepted**." if ft["accepted"] else "**rejected**."), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--screenings", type=int, default=200)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--extra-weight", type=int, default=10)
    ap.add_argument("--holdout", type=float, default=0.3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-records", type=int, default=None, help="smoke run only")
    ap.add_argument("--out", default=None, help="keep the fine-tuned model here")
    ap.add_argument("--json", default=None)
    ap.add_argument("--markdown", default=None)
    args = ap.parse_args(argv)
    from detak.models.finetune import finetune_cnn

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="detak-ft-") as d:
        labels = Path(d) / "labels"
        ids = write_screenings(labels, args.screenings)
        card = finetune_cnn("edge", "edge", labels, out_dir=args.out or Path(d) / "model",
                            epochs=args.epochs, lr=args.lr, extra_weight=args.extra_weight,
                            holdout=args.holdout, threads=args.threads,
                            max_records=args.max_records, exclude_val_ids=ids)
    ft = {k: v for k, v in card["finetune"].items() if k != "fold9_excluded_ids"}
    result = {"provenance": provenance(libraries=("torch",)), "screenings": args.screenings,
              "seconds": round(time.perf_counter() - t0, 1), "finetune": ft}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=str) + "\n")
    text = markdown(result)
    if args.markdown:
        Path(args.markdown).write_text(text)
    print(text)
    return 0 if ft["accepted"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""``detak server export-labels``: the doctors' signed verdicts with their WFDB records, as
labelled data ``detak train --finetune … --extra DIR`` reads.

Layout of ``OUT`` (the format `detak.models.extra_labels` reads; ``FORMAT``)::

    OUT/labels.csv                         one row per reviewed screening (newest verdict)
    OUT/records/<uuid>/<name>.hea, .dat    the recording, byte for byte as the kiosk wrote it

``labels.csv`` columns: ``record`` (the ``.hea`` path relative to OUT), ``screening`` (uuid),
``group`` (``res-<n>``, the resident — what held-out splits group by — or the screening uuid
when there is no resident), ``facility_id``, ``signed_at``, ``version``, ``labels`` (the
verdict's codes, space-separated), then one 0/1 column per PTB-XL diagnostic superclass
(``NORM MI STTC CD HYP``). No name, birth date or note leaves the server.

>>> label_row(["MI", "SR", "CD"])
{'NORM': 0, 'MI': 1, 'STTC': 0, 'CD': 1, 'HYP': 0}
"""

from __future__ import annotations

import csv
import shutil
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from detak.data.ptbxl import SUPERCLASSES
from detak.server.audit import audit
from detak.server.export_fhir import wfdb_names
from detak.server.filestore import LocalFileStore
from detak.server.models import Screening
from detak.server.verdict_read import signed_verdicts

FORMAT = "detak-labels/1"
COLUMNS = ("record", "screening", "group", "facility_id", "signed_at", "version", "labels",
           *SUPERCLASSES)


def label_row(labels: list[str]) -> dict[str, int]:
    """The multi-hot superclass columns of a verdict's label codes."""
    codes = {str(x).upper() for x in labels}
    return {c: int(c in codes) for c in SUPERCLASSES}


def export_labels(session: Session, store: LocalFileStore, out: str | Path,
                  since: datetime | None = None) -> int:
    """Write every screening with a signed verdict (signed on/after ``since``) under ``out``;
    returns the number of rows in ``labels.csv`` (rewritten whole each time)."""
    out = Path(out)
    (out / "records").mkdir(parents=True, exist_ok=True)
    verdicts = signed_verdicts(session, since)
    by_id = {v["screening_id"]: v for v in verdicts}
    rows = []
    if by_id:
        for scr in session.scalars(select(Screening).where(Screening.id.in_(by_id))
                                   .order_by(Screening.id)):
            v = by_id[scr.id]
            files = scr.files
            hea = store.path(files["hea"]["sha256"])
            # named as the header names them: WFDB opens the signal file by that name
            name, dat = wfdb_names(hea.read_bytes()[:65536], str(files["recording"]))
            folder = out / "records" / scr.uuid
            folder.mkdir(exist_ok=True)
            shutil.copyfile(hea, folder / f"{name}.hea")
            shutil.copyfile(store.path(files["dat"]["sha256"]), folder / dat)
            rows.append({"record": f"records/{scr.uuid}/{name}.hea", "screening": scr.uuid,
                         "group": f"res-{scr.resident_id}" if scr.resident_id else scr.uuid,
                         "facility_id": scr.facility_id, "signed_at": v["signed_at"],
                         "version": v["version"], "labels": " ".join(v["labels"]),
                         **label_row(v["labels"])})
            audit(session, "cli:export-labels", "screening.export_labels",
                  object_kind="screening", object_id=scr.id, facility_id=scr.facility_id)
    tmp = out / "labels.csv.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        f.write(f"# {FORMAT}\n")
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    tmp.replace(out / "labels.csv")
    return len(rows)

"""A batch item (docs/sync.md §6.1) from a pending screening of the kiosk store, with the
blobs (the recording's ``.hea`` and ``.dat``, the PDF report) it references.

>>> import tempfile, numpy as np
>>> from detak.data.recording import Recording
>>> from detak.kiosk.store import Store
>>> rec = Recording(np.zeros((2, 500)), 250.0, ["I", "II"])
>>> with Store.open(tempfile.mkdtemp() + "/s") as store:
...     rid = store.add_resident("Invented Person", "R-9")
...     _ = store.save_screening({"id": "ab" * 16, "created_at": "2026-12-07T08:00:00Z"},
...                              rec, resident_id=rid)
...     item, blobs = build_item(store.root, store.pending_sync_items()[0])
>>> item["resident"]["resident_number"], sorted(item["files"]), len(blobs)
('R-9', ['dat', 'hea', 'recording', 'report_pdf'], 2)
>>> item["content_sha256"] == content_sha256(item)
True
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from pathlib import Path
from typing import Any

from detak.kiosk import store_files as files
from detak.sync.errors import SyncError
from detak.sync.wire import content_sha256


class LocalFilesError(SyncError):
    """A screening's files in the kiosk store are missing or do not match their hashes."""


@dataclasses.dataclass(frozen=True)
class Blob:
    """One file to upload: its SHA-256 and where it is."""

    sha256: str
    path: Path
    size: int

    def read(self) -> bytes:
        data = self.path.read_bytes()
        if len(data) != self.size or hashlib.sha256(data).hexdigest() != self.sha256:
            raise LocalFilesError(f"{self.path.name}: changed since it was read")
        return data


def _blob(path: Path) -> Blob:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LocalFilesError(f"{path.parent.name}/{path.name}: {exc.strerror or exc}") from exc
    return Blob(hashlib.sha256(data).hexdigest(), path, len(data))


def json_safe(obj: Any) -> Any:
    """``obj`` with NaN and infinities as null (JSON has no such numbers; a screening stored
    with one still syncs, the same way every time).

    >>> json_safe({"a": [1.0, float("nan")], "b": float("inf")})
    {'a': [1.0, None], 'b': None}
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [json_safe(v) for v in obj]
    return obj


def build_item(root: Path, row: dict[str, Any]) -> tuple[dict[str, Any], list[Blob]]:
    """The item for ``row`` (one entry of `Store.pending_sync_items`) and its blobs. Raises
    `LocalFilesError` when a file is missing or damaged (it could never be sent whole)."""
    rec_sha, rep_sha = row["recording_sha256"], row["report_sha256"]
    problem = files.verify_recording(root, rec_sha)
    if problem is None and rep_sha:
        problem = files.verify_report(root, rep_sha)
    if problem is not None:
        raise LocalFilesError(problem)
    hea = _blob(root / files.RECORDINGS / f"{rec_sha}.hea")
    dat = _blob(root / files.RECORDINGS / f"{rec_sha}.dat")
    pdf = _blob(files.report_file(root, rep_sha)) if rep_sha else None
    blobs = [hea, dat] + ([pdf] if pdf else [])
    item: dict[str, Any] = {
        "uuid": row["id"],
        "created_at": row["created_at"],
        "resident": row["resident"],
        "screening": json_safe(row["screening"]),
        "files": {"recording": rec_sha,
                  "hea": {"sha256": hea.sha256, "size": hea.size},
                  "dat": {"sha256": dat.sha256, "size": dat.size},
                  "report_pdf": {"sha256": pdf.sha256, "size": pdf.size} if pdf else None},
    }
    item["content_sha256"] = content_sha256(item)
    return item, blobs

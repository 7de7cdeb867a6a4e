"""``detak demo``: the product end to end on embedded defaults.

The emulator (``emu://file/…``, the virtual device on a pty) plays a few records bundled in the
package (`detak.data.samples`) — a normal 12-lead, an inferior MI, a left bundle branch block,
and a first-degree AV block with the LA electrode off the whole time (injected through the
emulator URL, so the quality check rejects it) — through the one screening pipeline
(`detak.kiosk.screen_cli.run_screen_command`, what ``detak screen`` runs) into a fresh store
under the output folder. The folder then holds:

- ``store/``: the kiosk store (`detak store check --store OUT/store` says ok);
- ``NN-SAMPLE.pdf``: each screening's PDF report, copied from the store (its header names an
  invented facility and nurse, `DEMO_FACILITY` and `DEMO_NURSE`);
- ``index.json``: per screening its id, source, the sample's description, the quality verdict
  and reasons, the urgency level and reasons, the MI probability and the report's file name.

The last line printed is the folder.

>>> [d.sample for d in DEMO_RECORDINGS]
['ptbxl-00215', 'ptbxl-00257', 'ptbxl-00286', 'ptbxl-00102']
>>> demo_source(DEMO_RECORDINGS[3]).endswith("ptbxl-00102.hea?speed=0&leadoff=0:10:LA")
True
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import detak
from detak.errors import DetakError

STORE_DIR = "store"
#: the invented names the demo's report headers show
DEMO_FACILITY = "Panti Werdha Contoh"
DEMO_NURSE = "Perawat Contoh"


@dataclass(frozen=True)
class DemoRecording:
    """One demo screening: the bundled ``sample`` the emulator plays, the emulator ``faults``
    (URL query parameters) injected while it plays, and what the demo shows with it."""

    sample: str
    shows: str
    faults: str = ""


DEMO_RECORDINGS: tuple[DemoRecording, ...] = (
    DemoRecording("ptbxl-00215", "a normal 12-lead ECG"),
    DemoRecording("ptbxl-00257", "myocardial infarction (MI probability and CAM)"),
    DemoRecording("ptbxl-00286", "a conduction abnormality"),
    DemoRecording("ptbxl-00102", "a recording rejected for quality: the LA electrode is off",
                  faults="leadoff=0:10:LA"),
)


def add_demo_command(sub: Any) -> None:
    """Register ``detak demo`` on the sub-parsers ``sub`` of the ``detak`` parser."""
    from detak.kiosk.i18n import LANGUAGES

    p = sub.add_parser(
        "demo",
        help="run the product end to end on bundled records and write a report folder",
        description="The emulator plays bundled records (a normal 12-lead, an MI, a left "
        "bundle branch block, and one with an electrode off that the quality check rejects) "
        "through the kiosk's screening pipeline (what `detak screen` runs) into a fresh store "
        "under the folder; each screening's PDF report and an index.json (id, source, "
        "description, quality, urgency, MI probability, report) are written beside it. The "
        "last line printed is the folder.",
    )
    p.add_argument("--out", default=None, help="report folder (default: ./reports/demo-TIMESTAMP)")
    p.add_argument("--lang", choices=list(LANGUAGES), default="en",
                   help="language of the reports and reasons (default en; the kiosk's own "
                   "default is id)")
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    print(run_demo(args.out, lang=args.lang))
    return 0


def demo_source(d: DemoRecording, speed: float = 0) -> str:
    """The ``emu://file/…`` URL that plays ``d``'s bundled record (``speed`` 0: as fast as
    the link takes it) with its faults."""
    from detak.data.samples import sample_path

    path = Path(str(sample_path(d.sample)) + ".hea").resolve()
    query = f"speed={speed:g}" + (f"&{d.faults}" if d.faults else "")
    return f"emu://file/{path.as_posix()}?{query}"


def _default_out() -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path("reports") / f"demo-{stamp}"


class DemoError(DetakError):
    """A demo screening did not come out of the pipeline (the pipeline's message inside;
    ``detak demo`` prints it as one line and exits 1)."""


def run_demo(out: str | Path | None = None, recordings: Sequence[DemoRecording] | None = None,
             *, lang: str = "en", echo: bool = True, stream: TextIO | None = None) -> Path:
    """Screen the demo recordings into a fresh store under ``out``, write the reports and
    ``index.json`` there, and return the folder (absolute). Raises `DemoError` when a
    recording could not be screened and ``FileExistsError`` when ``out`` already holds a
    store (the demo's store is always fresh).

    >>> import json, tempfile
    >>> folder = run_demo(tempfile.mkdtemp(), DEMO_RECORDINGS[2:3], echo=False)
    >>> rows = json.loads((folder / "index.json").read_text())["screenings"]
    >>> [(r["sample"], r["urgency"]["level"]) for r in rows]
    [('ptbxl-00286', 'routine review')]
    """
    from detak.data.samples import sample_index
    from detak.kiosk.screen_cli import run_screen_command

    stream = stream or sys.stdout
    folder = (Path(out) if out else _default_out()).resolve()
    store_dir = folder / STORE_DIR
    if store_dir.exists():
        raise FileExistsError(f"{store_dir} already exists: the demo writes a fresh store; "
                              "choose another --out folder")
    folder.mkdir(parents=True, exist_ok=True)
    todo = list(recordings or DEMO_RECORDINGS)
    sources = [demo_source(d) for d in todo]
    buf, err = io.StringIO(), io.StringIO()
    run_screen_command(sources, store_dir, lang=lang, json_out=True, out=buf, err=err,
                       facility=DEMO_FACILITY, nurse=DEMO_NURSE)
    views = {v["source"]: v for v in map(json.loads, buf.getvalue().splitlines())}
    info = sample_index()
    rows: list[dict[str, Any]] = []
    for n, (d, source) in enumerate(zip(todo, sources, strict=True), start=1):
        view = views.get(source)
        if view is None or view.get("error"):
            raise DemoError(f"{d.sample}: {(view or {}).get('error') or err.getvalue().strip()}")
        row = _index_row(view, d, info[d.sample]["description"],
                         _copy_report(view, folder, f"{n:02d}-{d.sample}.pdf"))
        rows.append(row)
        if echo:
            print(_echo_line(row), file=stream, flush=True)
    index = {"detak_version": detak.__version__,
             "created": datetime.now(UTC).isoformat(timespec="seconds"),
             "lang": lang, "store": STORE_DIR, "screenings": rows}
    (folder / "index.json").write_text(json.dumps(index, indent=2, ensure_ascii=False) + "\n",
                                       encoding="utf-8")
    return folder


def _copy_report(view: dict[str, Any], folder: Path, name: str) -> str | None:
    """Copy the stored PDF report beside index.json; its file name (None without a report)."""
    src = view.get("report_pdf")
    if not src:
        return None
    shutil.copyfile(src, folder / name)
    return name


def _index_row(view: dict[str, Any], d: DemoRecording, description: str,
               report: str | None) -> dict[str, Any]:
    mi = view.get("mi") or {}
    urgency = view.get("urgency") or {}
    return {
        "id": view["id"],
        "sample": d.sample,
        "source": view["source"],
        "description": description,
        "shows": d.shows,
        "quality": {"verdict": view["quality"]["verdict"],
                    "reasons": list(view["quality"].get("reasons") or [])},
        "urgency": {"level": urgency.get("level"), "reasons": list(urgency.get("reasons") or [])},
        "mi_probability": mi.get("probability"),
        "mi_reason": None if mi else view.get("mi_reason"),
        "report": report,
    }


def _echo_line(row: dict[str, Any]) -> str:
    p = row["mi_probability"]
    mi = f"MI {p:.2f}" if p is not None else "MI -"
    rejected = row["quality"]["verdict"] == "reject"
    # a rejected recording was not screened: never "no finding" (as the app and the PDF say)
    level = "not screened" if rejected else (row["urgency"]["level"] or "-")
    line = (f"{row['sample']:<12} quality {row['quality']['verdict']:<6} "
            f"{level:<15} {mi:<8} {row['report'] or '(no report)'}")
    if rejected and row["quality"]["reasons"]:
        line += f"\n{'':<13}rejected: {'; '.join(row['quality']['reasons'][:2])}"
    return line

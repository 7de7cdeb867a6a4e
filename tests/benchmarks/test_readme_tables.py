"""The README's tables are what their benchmark scripts wrote last (issue 13, item 6).

Every figure table of the README sits in a ``<!-- table:NAME -->`` block; the block must equal
the block of that name in the results file its script wrote under ``docs/results/``. After a
benchmark run, ``make readme`` copies the new tables in; this test (and ``make check-readme``)
fails until then."""

from __future__ import annotations

import re

import pytest
import readme_tables
from readme_tables import README, RESULTS, ReadmeTableError, blocks, drift, sync, wrap

# README tables that are not a measurement.
NOT_FIGURES = {
    "| where | install | runs |",  # the install matrix
    "| exit | meaning |",  # the exit-status rule
}


def test_readme_tables_equal_their_results_files():
    problems = drift()
    assert not problems, "\n".join(problems) + "\n(run the benchmark, then `make readme`)"


def test_every_readme_table_is_in_a_block():
    text = README.read_text(encoding="utf-8")
    inside = "\n".join(blocks(text).values())
    loose = []
    for m in re.finditer(r"^(\|.*\|)\n\|[-| :]+\|$", text, re.MULTILINE):
        header = m.group(1)
        sections = re.findall(r"^## .*$", text[:m.start()], re.MULTILINE)
        section = sections[-1] if sections else ""
        if header in inside or header in NOT_FIGURES:
            continue
        loose.append(f"{section}: {header[:60]}")
    assert not loose, f"README tables outside a results block: {loose}"


def test_the_expected_blocks_exist():
    names = set(blocks(README.read_text(encoding="utf-8")))
    assert {"intervals_ludb", "boundary_sd", "cnn_ptbxl", "edge_inference", "xai",
            "bf16_speed", "gap_fill_auc", "hr_ludb", "hr_twolead"} <= names
    assert names <= set(readme_tables.result_blocks(RESULTS))


def _tree(tmp_path, readme_body: str, results_body: str | None):
    (tmp_path / "results").mkdir()
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{wrap('t', readme_body)}\n\ntext\n")
    if results_body is not None:
        (tmp_path / "results" / "t.md").write_text(f"# t\n\n{wrap('t', results_body)}\n")
    return readme, tmp_path / "results"


def test_a_drifted_row_is_reported_and_sync_fixes_it(tmp_path):
    readme, results = _tree(tmp_path, "| PR | nk | 55.0 | 102.5 |",
                            "| PR | nk | 61.0 | 103.0 |")
    (problem,) = drift(readme, results)
    assert "block 't' differs" in problem and "55.0" in problem and "61.0" in problem
    assert sync(readme, results) == ["t"]
    assert drift(readme, results) == []
    assert "| PR | nk | 61.0 | 103.0 |" in readme.read_text()
    assert readme.read_text().endswith("\n\ntext\n")


def test_a_block_without_results_is_reported(tmp_path):
    readme, results = _tree(tmp_path, "| a |", None)
    (problem,) = drift(readme, results)
    assert "no results file" in problem


def test_unclosed_or_repeated_blocks_are_errors():
    with pytest.raises(ReadmeTableError, match="opened"):
        blocks("<!-- table:a -->\n| x |\n")
    with pytest.raises(ReadmeTableError, match="twice"):
        blocks(wrap("a", "x") + "\n" + wrap("a", "y"))

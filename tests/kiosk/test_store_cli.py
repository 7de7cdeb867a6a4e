"""`detak store check --store DIR` (detak/kiosk/store_cli.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from detak.cli import main
from detak.data.samples import load_sample
from detak.kiosk import store_files as files
from detak.kiosk.store import DB_NAME, Store
from tests.kiosk.conftest import make_screening


def _run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, list[str], str]:
    code = main(["store", "check", *args])
    out = capsys.readouterr()
    return code, out.out.splitlines(), out.err


def test_ok_is_the_last_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with Store.open(tmp_path / "s") as store:
        store.save_screening(make_screening("a"), load_sample("ludb-2"), report_pdf=b"%PDF")
        store.save_screening(make_screening("b"), load_sample("ptbxl-00286"))
    code, lines, err = _run(capsys, "--store", str(tmp_path / "s"))
    assert (code, lines[-1], err) == (0, "ok: 2 screenings", "")


def test_problems_are_named_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with Store.open(tmp_path / "s") as store:
        store.save_screening(make_screening("a"), load_sample("ludb-2"))
    for p in (tmp_path / "s" / files.RECORDINGS).glob("*.dat"):
        p.write_bytes(p.read_bytes()[:100])
    (tmp_path / "s" / files.REPORTS / ".r.pdf.1.aa.tmp").write_bytes(b"half")
    code, lines, _ = _run(capsys, "--store", str(tmp_path / "s"), "--no-sweep")
    assert code == 1
    assert any("screening a: recording" in line and "SHA-256" in line for line in lines)
    assert any("half-written" in line for line in lines)
    assert not lines[-1].startswith("ok")
    code, lines, _ = _run(capsys, "--store", str(tmp_path / "s"))      # the sweep: temp gone
    assert code == 1 and not any("half-written" in line for line in lines)


def test_unusable_stores_are_one_line_errors(tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    code, lines, err = _run(capsys, "--store", str(tmp_path / "none"))
    assert code == 1 and err.startswith("detak store check: error: no store at")
    assert not (tmp_path / "none").exists()
    Store.open(tmp_path / "s").close()
    (tmp_path / "s" / DB_NAME).write_bytes(b"garbage" * 1000)
    code, lines, err = _run(capsys, "--store", str(tmp_path / "s"))
    assert code == 1 and "not a database" in err and len(err.splitlines()) == 1


def test_outbox_lists_pending_entries_with_attempts_and_errors_no_names(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import json

    with Store.open(tmp_path / "s") as store:
        rid = store.add_resident("Ibu Rahasia Contoh", "R-9")
        for sid in ("a", "b", "c"):
            store.save_screening(make_screening(sid, resident_id=rid), load_sample("ludb-2"))
        store.mark_failed("a", "server said 503:\n  busy")
        store.mark_failed("a", "connection refused")
        store.mark_sent("b")
    swept_before = sorted((tmp_path / "s").rglob("*"))
    assert main(["store", "outbox", "--store", str(tmp_path / "s")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "2 pending"
    row_a = next(line for line in lines if line.startswith("a "))
    assert " 2 " in row_a and row_a.endswith("connection refused")
    assert any(line.startswith("c ") and line.endswith("—") for line in lines)
    assert not any(line.startswith("b ") for line in lines)
    assert main(["store", "outbox", "--store", str(tmp_path / "s"), "--json",
                 "--limit", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["pending"] == 2 and [e["screening_id"] for e in data["entries"]] == ["a"]
    assert data["entries"][0]["attempts"] == 2
    assert data["entries"][0]["last_error"] == "connection refused"
    assert "Rahasia" not in json.dumps(data) and "R-9" not in json.dumps(data)
    assert sorted((tmp_path / "s").rglob("*")) == swept_before     # only read


def test_outbox_of_a_missing_store_is_exit_1(tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    assert main(["store", "outbox", "--store", str(tmp_path / "none")]) == 1
    assert capsys.readouterr().err.startswith("detak store outbox: error: no store at")
    assert not (tmp_path / "none").exists()

"""`check_after_kill`: is a kiosk store whole after a ``detak screen`` process was killed?

What issue 14 asks of a store after ``kill -9`` at any moment, each checked on its own:

1. the database as the killed process left it (before any sweep): ``PRAGMA integrity_check``
   says ``ok``; every screening row's recording (``.hea`` + ``.dat``) and PDF report are
   present and hash to the row's SHA-256 (no row points at a missing or partial file); every
   row has its outbox entry;
2. ``detak store check --store DIR`` (a separate process: it opens the store as the kiosk does,
   which sweeps, then verifies it) exits 0 with the last line ``ok: N screenings``, N the rows
   counted in 1;
3. after that sweep no temporary, unreferenced or unexpected file is left (every orphan a
   killed writer left is one the startup sweep cleans);
4. every screening whose JSON line the killed command printed (``detak screen`` prints it after
   the save returned) is in the store, with the report file the line named.

Nothing here trusts `Store.check`: the checks read the database with plain `sqlite3`.

>>> import tempfile
>>> from detak.kiosk.store import Store
>>> d = tempfile.mkdtemp() + "/s"; Store.open(d).close()
>>> check_after_kill(d, {}, store_check=None).problems
[]
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from detak.kiosk import store_files as files

DB_NAME = "detak.sqlite3"


@dataclass
class AfterKill:
    """What `check_after_kill` found: ``problems`` (empty: consistent), the screening rows,
    and how many temporary / unreferenced files the kill left for the sweep."""

    problems: list[str] = field(default_factory=list)
    rows: int = 0
    left_for_sweep: int = 0


def _rows_before_sweep(root: Path, out: AfterKill) -> set[str]:
    """Check 1 on the database and files exactly as the killed process left them."""
    db = root / DB_NAME
    if not db.is_file():
        return set()                      # killed before the store was created: nothing owed
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        integrity = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
        if integrity != ["ok"]:
            out.problems += [f"integrity_check: {r}" for r in integrity[:10]]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        if "screenings" not in tables:
            return set()                  # killed while the first migration ran
        rows = conn.execute("SELECT s.id, s.recording_sha256, s.report_sha256, "
                            "o.screening_id IS NOT NULL FROM screenings s LEFT JOIN outbox o "
                            "ON o.screening_id = s.id").fetchall()
    except sqlite3.DatabaseError as exc:
        out.problems.append(f"database unreadable: {exc}")
        return set()
    finally:
        conn.close()
    for sid, rec_sha, rep_sha, queued in rows:
        problem = files.verify_recording(root, rec_sha)
        if problem:
            out.problems.append(f"row {sid} points at a missing or partial file: {problem}")
        if not rep_sha:
            out.problems.append(f"row {sid} has no PDF report (detak screen writes one)")
        else:
            problem = files.verify_report(root, rep_sha)
            if problem:
                out.problems.append(f"row {sid} points at a missing or partial file: {problem}")
        if not queued:
            out.problems.append(f"row {sid} has no outbox entry")
    out.rows = len(rows)
    return {r[0] for r in rows}


def _leftovers(root: Path, referenced: set[str]) -> list[Path]:
    """Temporary, unreferenced and unexpected files under ``root``'s recordings and reports."""
    recs, reps, temps, odd = files.stored_files(root)
    orphans = [p for found in (recs, reps) for sha, paths in found.items()
               if sha not in referenced for p in paths]
    return [*temps, *orphans, *odd]


def _referenced(root: Path) -> set[str]:
    db = root / DB_NAME
    if not db.is_file():
        return set()
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        if "screenings" not in tables:
            return set()
        rows = conn.execute("SELECT recording_sha256, report_sha256 FROM screenings").fetchall()
    except sqlite3.DatabaseError:
        return set()                      # named by the integrity check already
    finally:
        conn.close()
    return {sha for row in rows for sha in row if sha}


def run_store_check(cmd: Sequence[str], root: Path) -> tuple[int, list[str]]:
    """Run ``detak store check --store root`` (``cmd``: how to start ``detak``); exit status
    and output lines."""
    proc = subprocess.run([*cmd, "store", "check", "--store", str(root)], capture_output=True,
                          text=True, timeout=300)
    return proc.returncode, (proc.stdout + proc.stderr).splitlines()


def check_after_kill(store_dir: str | Path, printed: Mapping[str, str | None], *,
                     store_check: Sequence[str] | None) -> AfterKill:
    """Checks 1-4 of the module docstring on the store at ``store_dir``; ``printed``: the
    screening id → report path of every JSON line the killed command printed (all of them,
    over every kill so far); ``store_check``: the command that starts ``detak`` (None: skip
    check 2 and sweep in this process instead)."""
    root = Path(store_dir)
    out = AfterKill()
    ids = _rows_before_sweep(root, out)
    before = _leftovers(root, _referenced(root)) if (root / files.TMP).is_dir() else []
    out.left_for_sweep = len(before)
    if store_check is not None:
        code, lines = run_store_check(store_check, root)
        want = f"ok: {out.rows} screenings"
        if code != 0 or not lines or lines[-1] != want:
            out.problems.append(f"`detak store check` exited {code}, last line "
                                f"{lines[-1] if lines else '(none)'!r}, expected {want!r}")
            out.problems += [f"store check: {line}" for line in lines[:-1][:10]]
    elif (root / DB_NAME).is_file():
        from detak.kiosk.store import Store
        from detak.kiosk.store_errors import StoreError

        try:
            Store.open(root).close()                 # the startup sweep
        except StoreError as exc:
            out.problems.append(f"the store does not open: {exc}")
    if (root / files.TMP).is_dir():
        out.problems += [f"left after the startup sweep: {p}"
                         for p in _leftovers(root, _referenced(root))]
    for sid, report in printed.items():
        if sid not in ids:
            out.problems.append(f"screening {sid}: its JSON line was printed, but the store "
                                "has no row for it")
        elif report and not _whole_report(Path(report)):
            out.problems.append(f"screening {sid}: the report it printed ({report}) is "
                                "missing or partial")
    return out


def _whole_report(path: Path) -> bool:
    """The printed report path exists and its content hashes to its name."""
    return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == path.stem


__all__ = ["AfterKill", "check_after_kill", "run_store_check"]

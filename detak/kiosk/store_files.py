"""The kiosk store's files: content-addressed WFDB recordings and PDF reports, a lock, a sweep.

Layout of a store folder (0700; every file 0600)::

    detak.sqlite3 (+ -wal, -shm)   the database (`detak.kiosk.store`)
    recordings/<sha>.hea, .dat     one WFDB record per distinct recording
    reports/<sha>.pdf              one file per distinct PDF report
    tmp/                           scratch folders of writers in flight
    .lock                          flock: writers share it, the sweep and the check take it alone

A recording's name ``<sha>`` is the SHA-256 of its header — written with the record name
``detak_store_record`` in place of the hash — followed by its signal file: the same recording
gives the same name, and is written once. A report's name is the SHA-256 of the PDF. Every file
is written to a unique temporary name, fsynced, renamed, and the folder fsynced (the ``.dat``
before the ``.hea``), all before the database row that points at it commits; a crash leaves
at most a temporary file or an unreferenced file, which `sweep` removes.

Concurrency: a writer holds the lock *shared* from its first file to its commit. The sweep
removes unreferenced files only while it holds the lock *exclusively* (no writer in flight); if
a writer keeps it busy, the sweep removes only temporary files older than `IN_FLIGHT_S`.

>>> import tempfile, numpy as np
>>> from pathlib import Path
>>> from detak.data.recording import Recording
>>> root = Path(tempfile.mkdtemp()); make_layout(root)
>>> rec = Recording(np.zeros((2, 500)), 250.0, ["I", "II"], name="demo")
>>> sha = write_recording_files(root, rec)
>>> sha == write_recording_files(root, rec), verify_recording(root, sha)
(True, None)
>>> read_recording_files(root, sha).name
'demo'
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from detak.data.recording import Recording
from detak.device.chunks import fsync_dir, write_atomic

RECORDINGS = "recordings"
REPORTS = "reports"
TMP = "tmp"
LOCK = ".lock"
PLACEHOLDER = "detak_store_record"
FILE_MODE = 0o600
DIR_MODE = 0o700
#: a temporary file younger than this may belong to a writer in flight (seconds)
IN_FLIGHT_S = 3600.0
#: how long the sweep and the check wait for writers to finish before they give up the lock
LOCK_WAIT_S = 5.0
_SHA = re.compile(r"[0-9a-f]{64}")


def make_layout(root: Path) -> None:
    """Create the sub-folders (0700) of a store folder that exists."""
    for sub in (RECORDINGS, REPORTS, TMP):
        path = root / sub
        path.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(path, DIR_MODE)


def _rename_record(header: str, old: str, new: str) -> str:
    """The header text with record name ``old`` → ``new`` (record line, signal file names)."""
    out = []
    for line in header.splitlines(keepends=True):
        if not line.startswith("#"):
            first, sep, rest = line.partition(" ")
            if first == old:
                line = new + sep + rest
            elif first == f"{old}.dat":
                line = f"{new}.dat" + sep + rest
        out.append(line)
    return "".join(out)


def recording_digest(header: bytes, signal: bytes) -> str:
    """SHA-256 (hex) of a WFDB record whose header names it `PLACEHOLDER`."""
    return hashlib.sha256(header + signal).hexdigest()


def write_recording_files(root: Path, rec: Recording) -> str:
    """Write ``rec`` as ``recordings/<sha>.hea/.dat`` (unless there already); returns sha.

    Raises `RecordingError` for a recording WFDB cannot hold (inf samples, no samples ...).
    """
    from detak.data.wfdb_io import write_wfdb

    scratch = Path(tempfile.mkdtemp(prefix=".wfdb-", suffix=".tmp", dir=root / TMP))
    try:
        write_wfdb(rec, scratch / PLACEHOLDER)
        header = (scratch / f"{PLACEHOLDER}.hea").read_bytes()
        signal = (scratch / f"{PLACEHOLDER}.dat").read_bytes()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    sha = recording_digest(header, signal)
    folder = root / RECORDINGS
    hea, dat = folder / f"{sha}.hea", folder / f"{sha}.dat"
    if hea.is_file() and dat.is_file():          # same content: written once
        return sha
    final = _rename_record(header.decode("utf-8"), PLACEHOLDER, sha).encode("utf-8")
    write_atomic(dat, signal, mode=FILE_MODE, unique_tmp=True)
    write_atomic(hea, final, mode=FILE_MODE, unique_tmp=True)   # .hea last: it completes it
    fsync_dir(folder)
    return sha


def read_recording_files(root: Path, sha: str) -> Recording:
    """The `Recording` stored as ``recordings/<sha>``."""
    from detak.data.wfdb_io import read_wfdb

    rec = read_wfdb(root / RECORDINGS / sha)
    return rec.replace(name="") if rec.name == sha else rec


def verify_recording(root: Path, sha: str) -> str | None:
    """None if ``recordings/<sha>`` is whole and hashes to ``sha``, else the problem."""
    hea, dat = root / RECORDINGS / f"{sha}.hea", root / RECORDINGS / f"{sha}.dat"
    missing = [p.name for p in (hea, dat) if not p.is_file()]
    if missing:
        return f"recording {sha[:12]}: file(s) missing: {', '.join(missing)}"
    try:
        header = _rename_record(hea.read_text("utf-8"), sha, PLACEHOLDER).encode("utf-8")
    except UnicodeDecodeError:
        return f"recording {sha[:12]}: header is not text"
    if recording_digest(header, dat.read_bytes()) != sha:
        return f"recording {sha[:12]}: content does not match its SHA-256 (damaged or partial)"
    return None


def write_report_file(root: Path, pdf: bytes) -> str:
    """Write ``pdf`` as ``reports/<sha>.pdf`` (unless there already); returns sha."""
    if not isinstance(pdf, bytes | bytearray | memoryview) or not bytes(pdf):
        raise ValueError("the PDF report must be non-empty bytes")
    data = bytes(pdf)
    sha = hashlib.sha256(data).hexdigest()
    path = report_file(root, sha)
    if not path.is_file():
        write_atomic(path, data, mode=FILE_MODE, unique_tmp=True)
        fsync_dir(path.parent)
    return sha


def report_file(root: Path, sha: str) -> Path:
    return root / REPORTS / f"{sha}.pdf"


def verify_report(root: Path, sha: str) -> str | None:
    """None if ``reports/<sha>.pdf`` is present and hashes to ``sha``, else the problem."""
    path = report_file(root, sha)
    if not path.is_file():
        return f"report {sha[:12]}: file missing"
    if hashlib.sha256(path.read_bytes()).hexdigest() != sha:
        return f"report {sha[:12]}: content does not match its SHA-256 (damaged or partial)"
    return None


def is_temporary(path: Path) -> bool:
    """A writer's temporary file or scratch folder (left behind if the writer was killed)."""
    return path.name.startswith(".") and path.name.endswith(".tmp")


def stored_files(root: Path) -> tuple[dict[str, list[Path]], dict[str, list[Path]], list[Path],
                                      list[Path]]:
    """``(recordings by sha, reports by sha, temporary files, unexpected files)``."""
    recs: dict[str, list[Path]] = {}
    reps: dict[str, list[Path]] = {}
    temps: list[Path] = [p for p in (root / TMP).iterdir()] if (root / TMP).is_dir() else []
    odd: list[Path] = []
    for sub, suffixes, into in ((RECORDINGS, (".hea", ".dat"), recs),
                                (REPORTS, (".pdf",), reps)):
        folder = root / sub
        if not folder.is_dir():
            continue
        for p in sorted(folder.iterdir()):
            if is_temporary(p):
                temps.append(p)
            elif p.suffix in suffixes and _SHA.fullmatch(p.stem):
                into.setdefault(p.stem, []).append(p)
            else:
                odd.append(p)
    return recs, reps, temps, odd


@contextlib.contextmanager
def store_lock(root: Path, exclusive: bool, wait_s: float | None = None) -> Iterator[bool]:
    """Hold the store's flock, shared or exclusive; yields whether it was obtained.

    ``wait_s=None`` waits as long as needed; otherwise gives up after ``wait_s`` seconds
    (yielding False). A killed process's lock is released by the kernel.
    """
    fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        op = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        if wait_s is None:
            fcntl.flock(fd, op)
            got = True
        else:
            deadline = time.monotonic() + wait_s
            while True:
                try:
                    fcntl.flock(fd, op | fcntl.LOCK_NB)
                    got = True
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        got = False
                        break
                    time.sleep(0.02)
        yield got
    finally:
        os.close(fd)                               # releases the lock


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def sweep(root: Path, referenced: Callable[[], tuple[set[str], set[str]]],
          wait_s: float = LOCK_WAIT_S) -> dict[str, int]:
    """Remove what killed writers left: temporary files, and files no row points at.

    ``referenced()`` returns the recording and report hashes the database points at; it is
    called under the exclusive lock. Returns counts (``temporary``, ``orphans``, ``locked``:
    1 if the exclusive lock was obtained).
    """
    counts = {"temporary": 0, "orphans": 0, "locked": 0}
    with store_lock(root, exclusive=True, wait_s=wait_s) as alone:
        recs, reps, temps, _ = stored_files(root)
        now = time.time()
        for path in temps:
            try:
                age = now - path.lstat().st_mtime
            except FileNotFoundError:
                continue
            if alone or age > IN_FLIGHT_S:
                _remove(path)
                counts["temporary"] += 1
        if alone:
            counts["locked"] = 1
            used_recs, used_reps = referenced()
            for found, used in ((recs, used_recs), (reps, used_reps)):
                for sha, paths in found.items():
                    if sha not in used:
                        for path in paths:
                            _remove(path)
                            counts["orphans"] += 1
        if counts["temporary"] or counts["orphans"]:
            for sub in (RECORDINGS, REPORTS, TMP):
                fsync_dir(root / sub)
    return counts

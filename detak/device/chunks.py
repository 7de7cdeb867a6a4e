"""The crash journal of a recording: append-only chunk files, an event log, a session file.

Layout of a parts folder (``<out>/<name>.parts/``)::

    session.json          written once, atomically: stream info, calibration, chunk size, URL
    chunks/<start>.i32    one file per chunk: int32 little-endian counts, channel-major
                          (channels x n), MISSING (-2**31) where no sample arrived; written to a
                          temporary name, fsynced, renamed: a chunk file is complete or absent
    events.jsonl          one JSON object per line: gaps, lead-off, pulse, link loss, device
                          errors, counters; fsynced together with each chunk

Everything received before the last chunk boundary survives a crash; `load_parts` reads it
back (a torn last line of the event log is ignored) for ``detak record --recover``.
Chunks that hold no sample at all (inside a long gap) are not written.

>>> import tempfile, numpy as np
>>> from pathlib import Path
>>> with tempfile.TemporaryDirectory() as d:
...     store = PartsStore(Path(d) / "r.parts", {"n_channels": 1})
...     store.write_chunk(0, np.array([[1, 2, 3]], dtype=np.int32))
...     store.add_event({"kind": "gap", "start": 3, "stop": 5})
...     store.write_chunk(5, np.array([[6]], dtype=np.int32))
...     store.close()
...     session, events, counts = load_parts(Path(d) / "r.parts")
>>> events, counts.tolist()
([{'kind': 'gap', 'start': 3, 'stop': 5}], [[1, 2, 3, -2147483648, -2147483648, 6]])
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

import numpy as np

from detak.device.ringbuffer import MISSING

PARTS_FORMAT = "detak-record-parts/1"
SESSION = "session.json"
EVENTS = "events.jsonl"
CHUNKS = "chunks"


class PartsError(ValueError):
    """A parts folder that cannot be used (exists already, or unreadable when recovering)."""


def fsync_dir(path: Path) -> None:
    """fsync a folder (makes renames and new names in it durable); errors are ignored."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o666, unique_tmp: bool = False,
                 sync_dir: bool = False) -> None:
    """Write ``data`` to ``path`` whole or not at all (temporary file, fsync, rename).

    ``mode``: permissions of the new file (less the umask). ``unique_tmp``: the temporary file
    is ``.<name>.<pid>.<random>.tmp`` instead of ``<name>.tmp``, so that several processes may
    write the same path at once (the kiosk store's content-addressed files). ``sync_dir``:
    also fsync the folder, so that the rename itself survives a power cut.
    """
    if unique_tmp:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    else:
        tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if sync_dir:
        fsync_dir(path.parent)


class PartsStore:
    """Journal of one recording, on disk (``directory``) or in memory (``directory=None``)."""

    def __init__(self, directory: Path | None, session: dict[str, Any]) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.session = {"format": PARTS_FORMAT, **session}
        self.n_channels = int(session["n_channels"])
        self.events: list[dict[str, Any]] = []
        self._chunks: dict[int, np.ndarray] = {}
        self._fh: Any = None
        self.chunks_written = 0
        if self.directory is not None:
            if (self.directory / SESSION).exists():
                raise PartsError(f"{self.directory} already holds a recording's parts; recover "
                                 f"it with `detak record --recover {self.directory.parent}` or "
                                 "remove it")
            (self.directory / CHUNKS).mkdir(parents=True, exist_ok=True)
            write_atomic(self.directory / SESSION,
                          json.dumps(self.session, indent=1).encode())
            self._fh = open(self.directory / EVENTS, "a", encoding="utf-8")  # noqa: SIM115
            fsync_dir(self.directory)

    def add_event(self, event: dict[str, Any]) -> None:
        """Append an event (on disk it becomes durable at the next chunk)."""
        self.events.append(event)
        if self._fh is not None:
            self._fh.write(json.dumps(event) + "\n")

    def write_chunk(self, start: int, counts: np.ndarray) -> None:
        """Store samples ``start ..`` (skipped if none is present); durable on return."""
        counts = np.ascontiguousarray(counts, dtype="<i4")
        if counts.shape[0] != self.n_channels:
            raise ValueError(f"chunk has {counts.shape[0]} channels, session has "
                             f"{self.n_channels}")
        if counts.size and not (counts == MISSING).all():
            if self.directory is None:
                self._chunks[int(start)] = counts.copy()
            else:
                write_atomic(self.directory / CHUNKS / f"{int(start):012d}.i32",
                              counts.tobytes())
            self.chunks_written += 1
        self.sync()

    def sync(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            assert self.directory is not None
            fsync_dir(self.directory / CHUNKS)

    def read(self, end: int | None = None) -> np.ndarray:
        """All stored samples ``0 .. end - 1`` (default: up to the last chunk's end)."""
        if self.directory is not None:
            return _read_chunks(self.directory, self.n_channels, end)
        return _assemble(self._chunks, self.n_channels, end)

    def close(self) -> None:
        if self._fh is not None:
            self.sync()
            self._fh.close()
            self._fh = None


def _assemble(chunks: dict[int, np.ndarray], n_channels: int, end: int | None) -> np.ndarray:
    last = max((s + c.shape[1] for s, c in chunks.items()), default=0)
    n = last if end is None else int(end)
    out = np.full((n_channels, n), MISSING, dtype=np.int32)
    for s, c in chunks.items():
        if s < n:
            out[:, s:min(n, s + c.shape[1])] = c[:, :max(0, n - s)]
    return out


def _read_chunks(directory: Path, n_channels: int, end: int | None) -> np.ndarray:
    chunks: dict[int, np.ndarray] = {}
    for f in sorted((directory / CHUNKS).glob("*.i32")):
        try:
            start = int(f.stem)
        except ValueError:
            continue
        raw = np.fromfile(f, dtype="<i4")
        if raw.size % n_channels:
            raise PartsError(f"{f}: {raw.size} values are not a whole number of "
                             f"{n_channels}-channel samples")
        chunks[start] = raw.reshape(n_channels, -1)
    return _assemble(chunks, n_channels, end)


def load_parts(directory: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]], np.ndarray]:
    """``(session, events, counts)`` of a parts folder (what a crash left behind)."""
    d = Path(directory)
    if not (d / SESSION).is_file():
        raise PartsError(f"{d} is not a recording's parts folder: {d / SESSION} missing")
    try:
        session = json.loads((d / SESSION).read_text())
    except json.JSONDecodeError as exc:
        raise PartsError(f"{d / SESSION} is not valid JSON: {exc}") from exc
    if session.get("format") != PARTS_FORMAT:
        raise PartsError(f"{d / SESSION}: format {session.get('format')!r}, expected "
                         f"{PARTS_FORMAT!r}")
    events: list[dict[str, Any]] = []
    if (d / EVENTS).is_file():
        for line in (d / EVENTS).read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                break                          # torn last line of a crash
    return session, events, _read_chunks(d, int(session["n_channels"]), None)

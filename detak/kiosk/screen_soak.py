"""kill -9 of a real ``detak screen`` process at random points, then the store checked.

`kill_screen_and_check` starts ``detak screen SOURCE... --store DIR --json`` (several sources,
so that a kill lands mid-run), SIGKILLs it at a seeded random moment and runs the checks of
`detak.kiosk.crash_check` (SQLite integrity, no row pointing at a missing or partial file,
``detak store check`` ok, nothing left after the startup sweep, every screening whose JSON line
was printed present). ``tests/kiosk/test_store_crash.py`` runs a few kills,
``benchmarks/store_soak.py`` 50 or more.

Where the kill landed: with ``observe=True`` the process is started as ``python -m
detak.kiosk.screen_soak observe screen ...``, which runs the same ``detak`` entry point
(`detak.cli.main`) after wrapping a few functions so that each writes a one-line phase mark to
stderr as it starts (`PHASES`: start-up, store open, acquire, pipeline, pdf, recording files,
report file, commit, saved). The marks change nothing else; the last one before the kill is
the phase the kill hit. A kill can be *aimed* at a phase: wait for its k-th mark, then a
uniform random delay of up to `AIM_SPAN_S` of that phase. With ``observe=False`` the plain
``detak`` console script runs and only the time is random.

>>> [p for p in PHASES][:3]
['start-up', 'store open', 'acquire']
>>> parse_line('{"id": "abc", "report_pdf": "/s/reports/x.pdf"}')
('abc', '/s/reports/x.pdf')
>>> parse_line('{"id": null, "error": "no such record"}') is None
True
"""

from __future__ import annotations

import functools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detak.kiosk.crash_check import check_after_kill

MARK = "@@detak-phase "
PHASES = ("start-up", "store open", "acquire", "pipeline", "pdf", "recording files",
          "report file", "commit", "saved")
#: after an aimed phase's mark, the kill comes within this many seconds (about its length)
AIM_SPAN_S = {"store open": 0.05, "acquire": 0.1, "pipeline": 0.3, "pdf": 0.7,
              "recording files": 0.02, "report file": 0.01, "commit": 0.004, "saved": 0.003}
FINISHED = "finished"          # the process exited on its own before the kill


# ----------------------------------------------------------------------- the observed process


def _mark(phase: str) -> None:
    os.write(2, f"{MARK}{phase}\n".encode())


def _marking(fn: Callable[..., Any], phase: str | None,
             after: str | None = None) -> Callable[..., Any]:
    @functools.wraps(fn)
    def inner(*args: Any, **kwargs: Any) -> Any:
        if phase:
            _mark(phase)
        out = fn(*args, **kwargs)
        if after:
            _mark(after)
        return out
    return inner


def install_phase_marks() -> None:
    """Wrap the functions ``detak screen`` calls so that each marks its phase on stderr."""
    from detak.kiosk import acquire, screen_cli, screening, store_files
    from detak.kiosk.store import Store

    acquire.acquire = _marking(acquire.acquire, "acquire")
    screening.screen = _marking(screening.screen, "pipeline")
    screen_cli.render_report = _marking(screen_cli.render_report, "pdf")
    store_files.write_recording_files = _marking(store_files.write_recording_files,
                                                 "recording files")
    store_files.write_report_file = _marking(store_files.write_report_file, "report file")
    Store.save_screening = _marking(Store.save_screening, None, after="saved")
    Store.open = classmethod(_marking(Store.open.__func__, "store open"))
    transaction = Store._transaction                 # noqa: SLF001

    @contextmanager
    def marked(self: Store) -> Any:
        _mark("commit")
        with transaction(self) as conn:
            yield conn

    Store._transaction = marked                      # noqa: SLF001


def observe_main(argv: Sequence[str]) -> int:
    """``detak`` with phase marks (``python -m detak.kiosk.screen_soak observe ARGS...``)."""
    _mark("start-up")
    install_phase_marks()
    from detak.cli import main

    return main(list(argv))


# ----------------------------------------------------------------------------- the killer


def detak_command(python: str = sys.executable) -> list[str]:
    """How to start the ``detak`` console script of this interpreter's environment."""
    script = Path(python).with_name("detak")
    return [str(script)] if script.is_file() else [python, "-m", "detak.cli"]


def parse_line(line: str) -> tuple[str, str | None] | None:
    """(id, report path) of a ``--json`` line that reports a saved screening, else None."""
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not obj.get("id"):
        return None
    return str(obj["id"]), obj.get("report_pdf")


@dataclass
class ScreenKill:
    """One kill: the sources, what it aimed at and what it hit, the screenings whose JSON line
    was printed before it, and the problems the checks found."""

    sources: list[str]
    aim: str
    delay_s: float
    phase: str
    printed: dict[str, str | None]
    lines: int
    problems: list[str] = field(default_factory=list)
    left_for_sweep: int = 0
    rows: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


class _Reader:
    """Collects complete lines from a pipe (a line cut by the kill was never printed)."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self.changed = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream: Any) -> None:
        for line in iter(stream.readline, ""):
            if line.endswith("\n"):
                self.lines.append(line.rstrip("\n"))
                self.changed.set()

    def join(self) -> None:
        self._thread.join(timeout=30)

    def marks(self) -> list[str]:
        return [x[len(MARK):] for x in self.lines if x.startswith(MARK)]


def _env() -> dict[str, str]:
    here = str(Path(__file__).resolve().parents[2])
    path = [here, *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}


def _wait_for(proc: subprocess.Popen, err: _Reader, phase: str, nth: int,
              timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if err.marks().count(phase) >= nth:
            return True
        if proc.poll() is not None:
            return False
        err.changed.wait(0.001)
        err.changed.clear()
    return False


def kill_screen_and_check(store_dir: str | Path, sources: Sequence[str], rng: random.Random,
                          *, aim: str = "random", nth: int | None = None,
                          random_span_s: float = 8.0,
                          observe: bool = True, printed_so_far: dict[str, str | None] | None
                          = None, python: str = sys.executable,
                          store_check: bool = True) -> ScreenKill:
    """Run ``detak screen SOURCES --store store_dir --json``, SIGKILL it, check the store.

    ``aim``: ``"random"`` (a uniform time in 0..``random_span_s`` s after the start) or a phase
    of `PHASES` (its k-th mark, k uniform over the sources, then a uniform delay up to its
    `AIM_SPAN_S`; needs ``observe``; ``nth`` fixes k). ``printed_so_far``: ids printed by
    earlier kills on the same store, checked again (and this kill's added to it).
    """
    if aim != "random" and (aim not in AIM_SPAN_S or not observe):
        raise ValueError(f"cannot aim at {aim!r} (phases: {', '.join(AIM_SPAN_S)}; needs "
                         "observe=True)")
    args = ["screen", *sources, "--store", str(store_dir), "--json"]
    cmd = ([python, "-m", "detak.kiosk.screen_soak", "observe", *args] if observe
           else [*detak_command(python), *args])
    plan_delay = rng.uniform(0.0, random_span_s)
    nth = nth or rng.randint(1, len(sources))
    spill = rng.uniform(0.0, AIM_SPAN_S.get(aim, 0.0))
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env())
    out, err = _Reader(proc.stdout), _Reader(proc.stderr)
    if aim == "random":
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=plan_delay)
    elif _wait_for(proc, err, aim, nth, timeout_s=120.0):
        time.sleep(spill)
    delay = time.monotonic() - start
    finished = proc.poll() is not None
    if not finished:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    out.join()
    err.join()
    printed = dict(filter(None, map(parse_line, out.lines)))
    marks = err.marks()
    phase = FINISHED if finished else (marks[-1] if marks else "start-up")
    result = ScreenKill(list(sources), aim, delay, phase, printed, len(out.lines))
    if finished and len(out.lines) != len(sources):
        result.problems.append(f"the command returned ({proc.returncode}) but printed "
                               f"{len(out.lines)} lines for {len(sources)} sources")
    owed = {**(printed_so_far or {}), **printed}
    found = check_after_kill(store_dir, owed,
                             store_check=detak_command(python) if store_check else None)
    result.problems += found.problems
    result.left_for_sweep, result.rows = found.left_for_sweep, found.rows
    if printed_so_far is not None:
        printed_so_far.update(printed)
    return result


def source_pool(ludb: int = 200) -> list[str]:
    """Sources for the soak: the bundled samples, LUDB records 1..``ludb`` and a few PTB-XL
    records (folds 1-9), read where ``detak intervals`` reads them."""
    from detak.data.samples import sample_names

    return ([f"sample://{n}" for n in sample_names()] + [f"ludb://{i}" for i in
            range(1, ludb + 1)] + [f"ptbxl://{i}" for i in (1, 2, 3, 5, 8, 10)])


def emulator_source(sample: str) -> str:
    """A device URL: the emulator plays a bundled sample (as fast as the pty takes it)."""
    from detak.data.samples import sample_path

    path = Path(str(sample_path(sample)) + ".hea").resolve()
    return f"emu://file/{path.as_posix()}?speed=0"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "observe":
        print("usage: python -m detak.kiosk.screen_soak observe screen SOURCE... --store DIR "
              "--json", file=sys.stderr)
        return 2
    return observe_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())

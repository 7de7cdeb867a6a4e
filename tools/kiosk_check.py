#!/usr/bin/env python3
"""Kiosk install check (issue 13): a fresh venv with ``pip install .`` (no extras, so no torch),
then the commands a kiosk runs, on good and bad inputs.

Each command must give its result (exit 0) or one line on stderr naming the file and the
problem (exit 1, or 2 for a usage error); never a traceback. Runs with the standard library
only, so the machine's ``python3`` (which must not have torch) can run it:

    python3 tools/kiosk_check.py                       # venv in .kiosk-venv, installed afresh
    python3 tools/kiosk_check.py --venv DIR --no-install   # check an existing kiosk venv

Checks marked ``[imports]`` need the default ``--runtime`` of ``detak predict`` to work without
torch (issue 13 item 1, lane ``imports``). Prints one line per check and the install time;
exit status 0 when every check passed, 1 otherwise.

>>> [c.name for c in checks(Path("/x"))][:2]
['help states the exit rule', 'models list']
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOOD = "sample://ptbxl-00286"  # bundled with the package (12 leads, 10 s, 500 Hz)
LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
IGNORED = shutil.ignore_patterns(".git", ".venv", ".kiosk-venv", "build", "dist", "*.egg-info",
                                 "__pycache__", ".pytest_cache", ".ruff_cache", "reports")


@dataclass
class Check:
    """One command and what it must do: exit ``code`` (a set), stdout/stderr patterns."""

    name: str
    argv: list[str]
    codes: set[int]
    last_line: str | None = None  # regex the last stderr line must match (errors)
    stdout: str | None = None  # regex stdout must match (results)
    files: list[str] = field(default_factory=list)  # files that must exist afterwards
    needs: str = ""  # the lane whose fix this check depends on


def write_bad_inputs(d: Path) -> dict[str, Path]:
    """Invented bad recordings (pure Python: the check needs no numpy)."""
    import math

    def csv(name: str, seconds: float, leads: list[str], text_cell: bool = False) -> Path:
        fs = 500
        rows = []
        for i in range(int(seconds * fs)):
            t = i / fs
            v = math.exp(-(((t % 0.8) - 0.3) ** 2) / 2e-4)
            rows.append(",".join(f"{v * (1 + k / 10):.4f}" for k in range(len(leads))))
        if text_cell:
            rows[5] = "abc" + rows[5][rows[5].index(","):]
        p = d / name
        p.write_text(f"# fs={fs}\n" + ",".join(leads) + "\n" + "\n".join(rows) + "\n")
        return p

    (d / "empty.csv").write_text("")
    hea = d / "no_dat.hea"  # a WFDB header whose signal file is not there
    hea.write_text("no_dat 1 500 5000\nno_dat.dat 16 1000/mV 16 0 0 0 0 II\n")
    return {"empty": d / "empty.csv", "text_cell": csv("text_cell.csv", 10, LEADS, True),
            "half_second": csv("half_second.csv", 0.5, LEADS), "no_dat": hea,
            "three_leads": csv("three_leads.csv", 10, ["I", "II", "V1"]),
            "missing": d / "does_not_exist.hea"}


def checks(tmp: Path) -> list[Check]:
    """The commands of the kiosk check (files go to ``tmp``)."""
    bad = {k: str(tmp / "bad" / v) for k, v in {
        "empty": "empty.csv", "text_cell": "text_cell.csv", "half_second": "half_second.csv",
        "no_dat": "no_dat.hea", "three_leads": "three_leads.csv",
        "missing": "does_not_exist.hea"}.items()}
    problem = {"empty": "empty", "text_cell": "'abc'", "half_second": r"0\.5|short",
               "no_dat": r"no_dat\.dat", "three_leads": "lead", "missing": "no such|not found"}
    good_csv = str(tmp / "good.csv")
    out = [
        Check("help states the exit rule", ["--help"], {0}, stdout=r"Exit status"),
        Check("models list", ["models", "list"], {0}, stdout=r"edge"),
        Check("models info without torch: a result or one line naming detak[host]",
              ["models", "info", "edge"], {0, 1, 2}, last_line=r"detak\[host\]|^$"),
        Check("explain without torch: one line naming detak[host]",
              ["explain", GOOD, "--model", "edge", "--out", str(tmp / "explain")], {1, 2},
              last_line=r"detak\[host\]"),
        Check("predict, default runtime", ["predict", GOOD, "--model", "edge", "--out",
                                           str(tmp / "p.csv")], {0},
              files=[str(tmp / "p.csv")], needs="imports"),
        Check("predict, int8 ONNX", ["predict", GOOD, "--model", "edge", "--runtime", "onnx",
                                     "--precision", "int8", "--out", str(tmp / "p8.csv")], {0},
              files=[str(tmp / "p8.csv")]),
        Check("convert to CSV", ["convert", GOOD, good_csv], {0}, files=[good_csv]),
        Check("intervals", ["intervals", good_csv], {0}, stdout=r'"hr_bpm": \d'),
        Check("quality", ["quality", good_csv], {0}, stdout=r'"verdict": "(ok|warn)"'),
        Check("plot", ["plot", good_csv, "--out", str(tmp / "good.png")], {0},
              files=[str(tmp / "good.png")]),
        Check("unknown source scheme", ["intervals", "nosuch://1"], {1},
              last_line=r"unknown source 'nosuch://1'"),
        Check("usage error", ["intervals"], {2}),
        Check("screen (issue 14): the whole pipeline, int8 CNN + CAM, saved in a store",
              ["screen", GOOD, "--store", str(tmp / "store"), "--json"], {0},
              stdout=r'"mi": \{"probability": \d.*"report_pdf": "/[^"]+\.pdf"'),
        Check("report, unknown screening ID", ["report", "nope", "--store", str(tmp / "store"),
                                               "--out", str(tmp / "r.pdf")], {1},
              last_line=r"^detak report: error: no screening 'nope'"),
        Check("report, no store there", ["report", "x", "--store", str(tmp / "no-store"),
                                         "--out", str(tmp / "r.pdf")], {1},
              last_line=r"^detak report: error: no store at .*no-store"),
        Check("screen, unknown language", ["screen", GOOD, "--store", str(tmp / "store"),
                                           "--lang", "fr"], {2}),
    ]
    for cmd, cases in {"intervals": ["empty", "text_cell", "half_second", "no_dat", "missing"],
                       "quality": ["empty", "text_cell", "half_second", "no_dat", "missing"],
                       "plot": ["empty", "text_cell", "half_second", "no_dat", "missing"],
                       "convert": ["empty", "text_cell", "no_dat", "missing"],
                       "predict": ["empty", "text_cell", "half_second", "three_leads",
                                   "missing"],
                       "screen": ["empty", "text_cell", "half_second", "no_dat",
                                  "missing"]}.items():
        for case in cases:
            src = bad[case]
            argv = {"plot": [cmd, src, "--out", str(tmp / f"{case}.png")],
                    "convert": [cmd, src, str(tmp / f"{case}.out.csv")],
                    "predict": [cmd, src, "--model", "edge", "--runtime", "onnx", "--precision",
                                "int8", "--out", str(tmp / f"{case}.p.csv")],
                    "screen": [cmd, src, "--store", str(tmp / "store")]}.get(cmd, [cmd, src])
            name = re.escape(Path(src).stem)
            out.append(Check(f"{cmd} on {case}", argv, {1},
                             last_line=rf"^detak {cmd}: .*{name}.*({problem[case]})|"
                                       rf"^detak {cmd}: .*({problem[case]}).*{name}"))
    return out


def run_check(detak: Path, check: Check, env: dict[str, str], cwd: Path) -> str | None:
    """None if ``check`` passed, else what went wrong."""
    proc = subprocess.run([str(detak), *check.argv], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=600)
    lines = proc.stderr.strip().splitlines()
    last = lines[-1] if lines else ""
    if "Traceback" in proc.stdout + proc.stderr:
        return f"traceback:\n{proc.stderr[-2000:]}"
    if proc.returncode not in check.codes:
        return f"exit {proc.returncode}, expected {sorted(check.codes)}; stderr: {last!r}"
    if proc.returncode != 0:
        if "unexpected" in last:
            return f"not a named error: {last!r}"
        if check.last_line and not re.search(check.last_line, last):
            return f"last stderr line {last!r} does not match {check.last_line!r}"
    elif check.stdout and not re.search(check.stdout, proc.stdout):
        return f"stdout does not match {check.stdout!r}: {proc.stdout[:300]!r}"
    missing = [f for f in check.files if proc.returncode == 0 and not Path(f).is_file()]
    return f"not written: {missing}" if missing else None


def install(venv: Path, python: str) -> float:
    """A fresh venv with ``pip install .`` of a copy of this tree; returns the seconds taken."""
    t0 = time.perf_counter()
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "detak"
        shutil.copytree(ROOT, src, ignore=IGNORED)
        pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                              "--disable-pip-version-check", str(src)],
                             capture_output=True, text=True)
        if pip.returncode != 0:
            raise RuntimeError(f"pip install . failed:\n{pip.stdout[-3000:]}{pip.stderr[-3000:]}")
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venv", default=str(ROOT / ".kiosk-venv"), help="kiosk venv folder")
    ap.add_argument("--no-install", action="store_true", help="check the venv as it is")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter for the venv (default: this one; must lack torch)")
    args = ap.parse_args(argv)
    venv = Path(args.venv).resolve()
    if not args.no_install:
        probe = subprocess.run([args.python, "-c", "import torch"], capture_output=True)
        if probe.returncode == 0:
            print(f"kiosk check: {args.python} has torch; use an interpreter without it",
                  file=sys.stderr)
            return 2
        print(f"kiosk install: {install(venv, args.python):.0f} s for a fresh venv with "
              f"`pip install .` ({venv})", flush=True)
    py = venv / "bin" / "python"
    if subprocess.run([str(py), "-c", "import torch"], capture_output=True).returncode == 0:
        print(f"kiosk check: {venv} has torch; a kiosk install must not", file=sys.stderr)
        return 1
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env["MPLBACKEND"] = "Agg"
    failed = 0
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "bad").mkdir()
        write_bad_inputs(tmp / "bad")
        for check in checks(tmp):
            why = run_check(venv / "bin" / "detak", check, env, tmp)
            tag = f" [{check.needs}]" if check.needs else ""
            print(f"{'ok  ' if why is None else 'FAIL'} {check.name}{tag}"
                  + ("" if why is None else f": {why}"), flush=True)
            failed += why is not None
    print(f"kiosk check: {failed} failed" if failed else "kiosk check: all passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

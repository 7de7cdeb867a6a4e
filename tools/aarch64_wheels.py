#!/usr/bin/env python3
"""aarch64 wheel check (issue 14 item 7a): does every kiosk dependency install on a Raspberry Pi?

The kiosk runs ``pip install detak`` on Raspberry Pi OS Bookworm: aarch64, CPython 3.11,
glibc 2.36, no compiler worth waiting for. So every dependency (the ``[project] dependencies``
of pyproject.toml, read from the file, plus any ``--planned`` names), and everything they pull
in, must exist as a binary wheel for that platform. The check asks pip exactly that::

    pip download --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 \\
        --platform manylinux_2_36_aarch64 ... --platform manylinux_2_17_aarch64 \\
        --platform manylinux2014_aarch64 --platform any -d CACHE -r requirements

with every manylinux tag from 2_17 up to 2_36 (glibc 2.36 runs any wheel built for an older
glibc; a bare ``manylinux2014_aarch64`` misses wheels such as ai-edge-litert 2.x, which are
tagged ``manylinux_2_28`` only, and makes the install look impossible). Downloaded wheels stay
in CACHE (default ``.venv/aarch64-wheels``), so a second run only asks the index.

Prints each dependency with the wheel it resolved to, then the wheels they pulled in; exits 1
naming every dependency with no aarch64 wheel (the resolver stops at the first, so after a
failure each requirement is tried alone with ``--no-deps``). Standard library only::

    python3 tools/aarch64_wheels.py --planned fastapi uvicorn     # = make aarch64-check

Known limit: pip evaluates environment markers (``; platform_machine == ...``) against the
machine it runs on, not the target; a dependency behind an aarch64-only marker is not seen.

>>> tags = platform_tags()
>>> tags[0], tags[-3:]
('manylinux_2_36_aarch64', ['manylinux_2_17_aarch64', 'manylinux2014_aarch64', 'any'])
>>> canonical("ai_edge_litert"), canonical("Argon2-CFFI")
('ai-edge-litert', 'argon2-cffi')
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCH = "aarch64"
GLIBC_MINOR = range(17, 37)  # Raspberry Pi OS Bookworm = Debian 12 = glibc 2.36
PYTHON_VERSION = "3.11"
ABI = "cp311"

Runner = Callable[[Sequence[str]], tuple[int, str]]
"""Runs a pip argument list; returns (exit status, stdout + stderr)."""

_WHEEL_LINE = re.compile(r"(?:Saved|File was already downloaded) (?P<path>\S+\.whl)")
_NO_MATCH = re.compile(r"No matching distribution found for (?P<req>\S+)")
_NAME = re.compile(r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)")


def platform_tags(arch: str = ARCH, glibc_minor: Sequence[int] = GLIBC_MINOR) -> list[str]:
    """Every ``--platform`` tag the Pi accepts: manylinux_2_N for N in ``glibc_minor`` (newest
    first), the legacy alias manylinux2014 (= 2_17) and ``any``."""
    tags = [f"manylinux_2_{n}_{arch}" for n in sorted(glibc_minor, reverse=True)]
    return [*tags, f"manylinux2014_{arch}", "any"]


def canonical(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(req: str) -> str:
    """The project name of a requirement string (``"numpy>=1.26"`` -> ``"numpy"``)."""
    m = _NAME.match(req)
    if not m:
        raise ValueError(f"not a requirement: {req!r}")
    return canonical(m["name"])


def wheel_name(filename: str) -> str:
    """The normalized project name of a wheel file name."""
    return canonical(Path(filename).name.split("-", 1)[0])


def project_dependencies(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The ``[project] dependencies`` of ``pyproject`` (the kiosk install, no extras)."""
    with open(pyproject, "rb") as f:
        return list(tomllib.load(f)["project"]["dependencies"])


def pip_args(requirements: Sequence[str], dest: Path, *, no_deps: bool = False,
             extra: Sequence[str] = ()) -> list[str]:
    """The ``pip download`` arguments that resolve ``requirements`` for the Pi."""
    args = ["download", "--disable-pip-version-check", "--only-binary=:all:",
            "--python-version", PYTHON_VERSION, "--implementation", "cp", "--abi", ABI]
    for tag in platform_tags():
        args += ["--platform", tag]
    args += ["-d", str(dest), *extra]
    if no_deps:
        args.append("--no-deps")
    return [*args, *requirements]


def run_pip(args: Sequence[str]) -> tuple[int, str]:
    """Run ``python -m pip ARGS`` with this interpreter; (status, combined output)."""
    p = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


@dataclass
class Result:
    """What the check found: ``wheels`` maps a project name to its wheel file name."""

    requirements: list[str]
    wheels: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # requirement -> pip's last line

    @property
    def ok(self) -> bool:
        return not self.missing

    def report(self) -> str:
        """One line per requirement, then the pulled-in wheels, then the verdict."""
        top = {requirement_name(r) for r in self.requirements}
        lines = []
        for r in self.requirements:
            n = requirement_name(r)
            got = self.wheels.get(n) or f"NO aarch64 WHEEL ({self.missing.get(r, 'not resolved')})"
            lines.append(f"  {r:<28} {got}")
        deps = sorted((n, w) for n, w in self.wheels.items() if n not in top)
        if deps:
            lines.append("pulled in:")
            lines += [f"  {n:<28} {w}" for n, w in deps]
        if self.ok:
            lines.append(f"aarch64 check: ok: {len(self.requirements)} requirements, "
                         f"{len(self.wheels)} wheels for cp311 manylinux_2_17..2_36 aarch64")
        else:
            lines.append("aarch64 check: FAILED: no aarch64 cp311 wheel for "
                         + ", ".join(self.missing))
        return "\n".join(lines)


def _wheels_in(output: str) -> dict[str, str]:
    return {wheel_name(m["path"]): Path(m["path"]).name for m in _WHEEL_LINE.finditer(output)}


def _last_error(output: str) -> str:
    errors = [ln.strip() for ln in output.splitlines() if ln.startswith("ERROR")]
    return errors[-1] if errors else (output.strip().splitlines() or ["pip failed"])[-1]


def check(requirements: Sequence[str], dest: Path, *, runner: Runner = run_pip,
          extra: Sequence[str] = ()) -> Result:
    """Resolve ``requirements`` for the Pi in one resolver pass; on failure try each alone.

    ``extra`` goes to pip as is (e.g. ``--no-index --find-links DIR`` for an offline run).
    """
    res = Result(list(requirements))
    status, out = runner(pip_args(requirements, dest, extra=extra))
    res.wheels.update(_wheels_in(out))
    if status == 0:
        return res
    # The resolver stops at the first failure, which may be a transitive dependency: name
    # every top-level requirement that fails on its own, and the one the resolver named.
    for r in requirements:
        if requirement_name(r) in res.wheels:
            continue
        s, o = runner(pip_args([r], dest, no_deps=True, extra=extra))
        res.wheels.update(_wheels_in(o))
        if s != 0:
            res.missing[r] = _last_error(o)
    m = _NO_MATCH.search(out)
    if m and not any(requirement_name(r) == requirement_name(m["req"]) for r in res.missing):
        res.missing[f"{m['req']} (pulled in)"] = _last_error(out)
    if not res.missing:  # every requirement resolves alone: the combination does not
        res.missing["(resolver)"] = _last_error(out)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pyproject", type=Path, default=ROOT / "pyproject.toml")
    ap.add_argument("--planned", nargs="*", default=[], metavar="REQ",
                    help="requirements not yet in pyproject.toml to check as well")
    ap.add_argument("--dest", type=Path, default=ROOT / ".venv" / "aarch64-wheels",
                    help="download cache (default .venv/aarch64-wheels)")
    ap.add_argument("--pip-arg", action="append", default=[], metavar="ARG",
                    help="extra argument for pip (repeatable), e.g. --pip-arg=--no-index")
    args = ap.parse_args(argv)
    declared = project_dependencies(args.pyproject)
    have = {requirement_name(r) for r in declared}
    planned = [r for r in args.planned if requirement_name(r) not in have]
    reqs = declared + planned
    args.dest.mkdir(parents=True, exist_ok=True)
    print(f"aarch64 check: {len(declared)} dependencies from {args.pyproject.name}"
          + (f" + planned {', '.join(planned)}" if planned else "")
          + f"; {len(platform_tags())} platform tags (manylinux_2_17..2_36_{ARCH}, "
          f"manylinux2014_{ARCH}, any); cache {args.dest}")
    t0 = time.monotonic()
    res = check(reqs, args.dest, extra=args.pip_arg)
    print(res.report())
    print(f"aarch64 check took {time.monotonic() - t0:.0f} s")
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())

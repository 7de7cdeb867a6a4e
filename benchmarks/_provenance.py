"""Where a benchmark's figures came from: the command, the date, detak's git commit and the
versions of the libraries it measured, as lines every benchmark prints and writes.

Versions are read from the installed package metadata (``importlib.metadata``), so asking
for torch's version does not import torch. A library that is not installed reads
"not installed".

>>> from _provenance import library_versions
>>> v = library_versions(("numpy", "no-such-library-xyz"))
>>> v["no-such-library-xyz"], "numpy" in v and "python" in v and "detak" in v
('not installed', True)
>>> provenance_line(command="python benchmarks/x.py", libraries=("numpy",)).startswith(
...     "_Produced by `python benchmarks/x.py` on ")
True
"""

from __future__ import annotations

import datetime as _dt
import platform
import shlex
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# Libraries nearly every benchmark depends on; scripts add what they measure beside them.
BASE_LIBRARIES: tuple[str, ...] = ("numpy", "scipy")


def library_versions(libraries: Sequence[str] = ()) -> dict[str, str]:
    """``{"python": ..., "detak": ..., name: version}`` for `BASE_LIBRARIES` + ``libraries``."""
    out = {"python": platform.python_version()}
    for name in ("detak", *BASE_LIBRARIES, *libraries):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit(repo: Path = REPO) -> str:
    """HEAD's short hash, with ``+uncommitted`` when tracked files under detak/ or
    benchmarks/ differ from it; "no git checkout" outside git."""
    def run(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                              check=True, timeout=30).stdout.strip()

    try:
        commit = run("rev-parse", "--short=12", "HEAD")
        dirty = run("status", "--porcelain", "--untracked-files=no", "--", "detak", "benchmarks")
    except (OSError, subprocess.SubprocessError):
        return "no git checkout"
    return commit + ("+uncommitted" if dirty else "")


def script_path(arg0: str, repo: Path = REPO) -> str:
    """The script as run from the repository root (``benchmarks/x.py``), whatever the working
    directory was when it ran; unchanged when it is not a file inside the repository.

    >>> script_path(str(REPO / "benchmarks" / "x.py"))
    'benchmarks/x.py'
    >>> script_path("-c")
    '-c'
    """
    path = Path(arg0)
    try:
        return path.resolve().relative_to(repo.resolve()).as_posix() if path.suffix else arg0
    except (OSError, ValueError):
        return arg0


def provenance(command: str | None = None, libraries: Sequence[str] = ()) -> dict[str, Any]:
    """The provenance as a dict (for JSON output)."""
    if command is None:
        argv = [script_path(sys.argv[0]), *sys.argv[1:]] if sys.argv else []
        command = " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *argv])
    return {"command": command,
            "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "git_commit": git_commit(), "versions": library_versions(libraries)}


def provenance_line(prov: dict[str, Any] | None = None, *, command: str | None = None,
                    libraries: Sequence[str] = ()) -> str:
    """One Markdown line: command, date, commit and library versions."""
    prov = prov or provenance(command, libraries)
    libs = ", ".join(f"{k} {v}" for k, v in prov["versions"].items())
    return (f"_Produced by `{prov['command']}` on {prov['date']} from detak commit "
            f"{prov['git_commit']}; {libs}._")

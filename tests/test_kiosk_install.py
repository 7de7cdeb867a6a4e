"""The kiosk install check (tools/kiosk_check.py) against a kiosk venv: `pip install .` without
extras, no torch. CI builds the venv afresh (`make kiosk-check`); here the check runs when
DETAK_KIOSK_VENV names such a venv (e.g. `make kiosk-venv`, then
DETAK_KIOSK_VENV=.kiosk-venv pytest tests/test_kiosk_install.py)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[1] / "tools" / "kiosk_check.py"
VENV = os.environ.get("DETAK_KIOSK_VENV")


@pytest.mark.skipif(not VENV, reason="DETAK_KIOSK_VENV is not set: no kiosk venv to check "
                    "(`make kiosk-check` builds one and runs the same check)")
def test_kiosk_venv_gives_results_or_named_errors():
    proc = subprocess.run([sys.executable, str(TOOL), "--venv", str(VENV), "--no-install"],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "kiosk check: all passed" in proc.stdout


def test_the_check_flags_a_traceback_and_a_wrong_exit(tmp_path):
    """The check itself can fail: a fake `detak` that prints a traceback, one that exits 0."""
    sys.path.insert(0, str(TOOL.parent))
    try:
        import kiosk_check as kc
    finally:
        sys.path.remove(str(TOOL.parent))
    fake = tmp_path / "detak"
    check = kc.Check("x", ["intervals", "a.csv"], {1}, last_line="a")
    env = dict(os.environ)
    fake.write_text("#!/bin/sh\necho 'Traceback (most recent call last):' >&2\nexit 1\n")
    fake.chmod(0o755)
    assert "traceback" in kc.run_check(fake, check, env, tmp_path)
    fake.write_text("#!/bin/sh\nexit 0\n")
    assert "exit 0" in kc.run_check(fake, check, env, tmp_path)
    fake.write_text("#!/bin/sh\necho 'detak intervals: error: a.csv: empty' >&2\nexit 1\n")
    assert kc.run_check(fake, check, env, tmp_path) is None

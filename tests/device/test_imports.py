"""Every module of detak.device, detak.firmware_bridge and detak.calibration imports on its own,
in a fresh interpreter (no import cycle hidden by whatever another test imported first)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import detak.calibration
import detak.device
import detak.firmware_bridge


def _modules() -> list[str]:
    names = []
    for pkg in (detak.device, detak.firmware_bridge, detak.calibration):
        names.append(pkg.__name__)
        names += [m.name for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")]
    return sorted(names)


def test_the_module_list_is_complete() -> None:
    mods = _modules()
    assert {"detak.device.drivers_hrs", "detak.device.drivers_openview",
            "detak.firmware_bridge.framing"} <= set(mods)


@pytest.mark.parametrize("module", _modules())
def test_module_imports_alone_in_a_fresh_interpreter(module: str) -> None:
    r = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, f"import {module} failed:\n{r.stderr[-2000:]}"

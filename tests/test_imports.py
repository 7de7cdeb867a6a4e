"""The kiosk never pays for torch: `import detak` and `detak intervals` leave it unimported."""

import subprocess
import sys

FORBIDDEN = ("torch", "torchvision", "zennit", "shap", "lime", "captum", "litert_torch")

_CHECK = """
import sys
{body}
bad = sorted({{m.split('.')[0] for m in sys.modules}} & set({forbidden!r}))
print("IMPORTED:" + ",".join(bad))
"""


def _run(body: str) -> str:
    code = _CHECK.format(body=body, forbidden=FORBIDDEN)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("IMPORTED:")][-1]
    return line.removeprefix("IMPORTED:")


def test_torch_is_installed_so_the_check_means_something():
    # The host extras are installed in the test venv; if torch were missing, the checks below
    # would pass vacuously.
    assert _run("import torch") == "torch"


def test_import_detak_does_not_import_torch():
    assert _run("import detak, detak.cli, detak.data, detak.signal, detak.report") == ""


def test_intervals_command_does_not_import_torch():
    body = ("from detak.cli import main\n"
            "assert main(['intervals', 'sample://ludb-1', '--json']) == 0")
    assert _run(body) == ""

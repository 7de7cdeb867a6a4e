"""benchmarks/_provenance.py: the command in a results file names the script as run from the
repository root, whatever directory it was started in (docs/results/mi_robustness.md once said
`python mi_robustness.py`)."""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
from _provenance import provenance  # noqa: E402


def test_a_script_started_inside_benchmarks_is_named_from_the_root(monkeypatch):
    monkeypatch.chdir(REPO / "benchmarks")
    monkeypatch.setattr(sys, "argv", ["mi_robustness.py", "--models", "edge"])
    cmd = provenance(libraries=())["command"]
    assert cmd.endswith(" benchmarks/mi_robustness.py --models edge"), cmd


def test_a_script_started_from_the_root_keeps_its_name(monkeypatch):
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(sys, "argv", [str(REPO / "benchmarks" / "kiosk.py")])
    assert provenance(libraries=())["command"].endswith(" benchmarks/kiosk.py")

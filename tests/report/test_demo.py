import json
import subprocess
import sys
from pathlib import Path

from detak.data.samples import sample_names


def test_demo_writes_json_and_png_per_sample_and_prints_the_folder_last(tmp_path):
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "detak.cli", "demo", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert Path(last) == out.resolve()
    index = json.loads((out / "index.json").read_text())
    assert [r["sample"] for r in index["records"]] == sample_names()
    for name in sample_names():
        rec = json.loads((out / f"{name}.json").read_text())
        assert rec["quality"]["verdict"] in {"ok", "warn", "reject"}
        assert (out / f"{name}.png").stat().st_size > 20_000
    # Sinus-rhythm samples get a heart rate; the AF sample gets no PR, with a reason.
    normal = json.loads((out / "ludb-2.json").read_text())
    assert 40 < normal["hr_bpm"] < 120
    af = json.loads((out / "ludb-8.json").read_text())
    assert af["pr_ms"] is None and af["reasons"]["pr_ms"]

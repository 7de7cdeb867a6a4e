"""detak.models.shipped: listing shipped models without torch (the kiosk's view)."""

import hashlib
import json
import subprocess
import sys

from detak.models.shipped import list_shipped, shipped_model_dir

FORBIDDEN = ("torch", "torchvision", "zennit", "captum")


def _imported_after(body: str) -> set[str]:
    code = (f"import sys\n{body}\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return set(eval(proc.stdout.strip().splitlines()[-1]))


def test_listing_and_cnn_modules_do_not_import_torch():
    assert _imported_after("import torch") == {"torch"}  # the check can see torch
    assert _imported_after("import detak.models.shipped, detak.export.predict, "
                           "detak.export.catalog, detak.models.cnn_cli, "
                           "detak.export.predict_cli, detak.models.trained, "
                           "detak.models.cnn_data, detak.models.cnn_metrics") == set()
    assert _imported_after("from detak.cli import main\n"
                           "assert main(['models', 'list', '--json']) == 0") == set()


def test_list_models_reports_files_sizes_and_hashes(tmp_path):
    folder = tmp_path / "edge"
    folder.mkdir()
    (folder / "card.json").write_text(json.dumps({"weights": {"precision": "fp32"}}))
    (folder / "edge.pt").write_bytes(b"weights!")
    (folder / "edge_int8.tflite").write_bytes(b"tfl")
    (folder / "standardizer.json").write_text("{}")
    (tmp_path / "no-card").mkdir()
    (tmp_path / "no-card" / "x.pt").write_bytes(b"?")
    rows = list_shipped(tmp_path)
    assert [(r["name"], r["runtime"], r["precision"]) for r in rows] == [
        ("edge", "torch", "fp32"), ("edge", "tflite", "int8")]
    assert rows[0]["bytes"] == 8
    assert rows[0]["sha256"] == hashlib.sha256(b"weights!").hexdigest()
    assert shipped_model_dir("edge", tmp_path) == folder
    assert shipped_model_dir("no-card", tmp_path) is None
    assert list_shipped(tmp_path / "missing") == []

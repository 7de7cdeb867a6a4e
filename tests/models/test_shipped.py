"""detak.models.shipped: listing shipped models without torch (the kiosk's view)."""

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from detak.models.shipped import list_shipped, shipped_model_dir, weights_dir

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


# --- issue 13 item 8: torch checkpoints stay out of the kiosk wheel ------------------------------

REPO = Path(__file__).resolve().parents[2]
KIOSK_FILES = {"edge.int8.onnx", "edge.int8.tflite", "card.json", "standardizer.json",
               "export.json"}


def test_package_data_excludes_torch_checkpoints():
    import tomllib

    import detak

    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "*.pt" in cfg["exclude-package-data"]["detak"]
    assert sorted(Path(detak.__file__).parent.rglob("*.pt")) == []       # none inside detak/
    assert {p.name for p in (weights_dir() / "edge").iterdir()} >= KIOSK_FILES


def test_the_wheel_carries_the_kiosk_models_and_no_torch_weights(tmp_path):
    pytest.importorskip("setuptools")
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "detak", src / "detak",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for pt in (REPO / "weights").rglob("*.pt"):   # a stray checkpoint in the package folder
        shutil.copy2(pt, src / "detak" / "models" / "weights" / pt.parent.name / pt.name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                           "--no-build-isolation", "-w", str(tmp_path / "whl"), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = (tmp_path / "whl").glob("detak-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if n.endswith(".pt")]
    edge = {Path(n).name for n in names if n.startswith("detak/models/weights/edge/")}
    assert edge >= KIOSK_FILES


def test_torch_checkpoints_are_found_outside_the_package_and_listed_where_they_are(
        tmp_path, monkeypatch):
    from detak.export.catalog import list_models
    from detak.models import shipped
    from detak.models.trained import torch_weights_file

    card = json.loads((weights_dir() / "edge" / "card.json").read_text())
    monkeypatch.setattr(shipped, "CHECKOUT_WEIGHTS", tmp_path / "no-checkout")
    monkeypatch.setenv("DETAK_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DETAK_WEIGHTS", raising=False)
    # a kiosk: no checkpoint anywhere; listed as not installed, not runnable
    assert torch_weights_file(weights_dir() / "edge", card) is None
    rows = {(r["name"], r["runtime"]): r for r in list_models(include_bundles=False)}
    assert rows[("edge", "torch")]["location"] == "not installed"
    assert rows[("edge", "torch")]["path"] is None
    assert rows[("edge", "torch")]["runnable_here"] is False
    assert rows[("edge", "onnx")]["location"] == "package"
    from detak.export.predict import RuntimeNotAvailableError, load_model

    with pytest.raises(RuntimeNotAvailableError, match="checkpoint resnet1d.pt is not installed"):
        load_model("resnet1d", runtime="auto", precision=None)   # a host without the archive
    # a host with the separate weights archive: found, with its location
    (tmp_path / "w" / "edge").mkdir(parents=True)
    (tmp_path / "w" / "edge" / "edge.pt").write_bytes(b"weights")
    monkeypatch.setenv("DETAK_WEIGHTS", str(tmp_path / "w"))
    assert torch_weights_file(weights_dir() / "edge", card) == tmp_path / "w" / "edge" / "edge.pt"
    row = [r for r in list_shipped() if (r["name"], r["runtime"]) == ("edge", "torch")][0]
    assert (row["location"], row["bytes"]) == ("host-weights", 7)
    # the fallback is for shipped models only: another folder's missing weights stay missing
    other = tmp_path / "edge"
    other.mkdir()
    assert torch_weights_file(other, card) is None

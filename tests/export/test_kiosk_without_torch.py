"""The kiosk path never needs torch: in a subprocess where importing torch (and the other host
packages, onnx included) fails, a signed bundle is installed and `detak predict` runs the int8
ONNX and TFLite models from it, with their Grad-CAM maps."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd

HOST_ONLY = ("torch", "torchvision", "torchao", "zennit", "shap", "lime", "captum",
             "litert_torch", "jax", "tensorflow", "onnx")

# the kiosk: importing any host package fails
_GUARD = """
import importlib.abc, json, sys
HOST_ONLY = set({host!r})

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in HOST_ONLY:
            raise ImportError(f"{{name}} is not installed on the kiosk")
        return None

sys.meta_path.insert(0, Block())
"""

_SCRIPT = _GUARD + """
import numpy as np
from detak.cli import main

out = {{}}
out["install"] = main(["bundle", "install", {bundle!r}, "--public-key", {pub!r}])
for runtime in ("onnx", "tflite"):
    out[runtime] = main(["predict", "ptbxl://8", "sample://ptbxl-00102", "--model", "edge",
                         "--runtime", runtime, "--precision", "int8", "--jobs", "1",
                         "--out", {out_dir!r} + f"/{{runtime}}.csv"])
from detak.export.predict import load_model
from detak.models.cnn_data import preprocess_recording
from detak.data.samples import load_sample
m = load_model("edge", runtime="onnx", precision="int8", threads=1)
pred = m.module.run(preprocess_recording(load_sample("ptbxl-00102"), m.standardizer))
out["cam_shape"] = list(pred.cam_mi.shape)
out["folder"] = str(m.folder)
out["imported"] = sorted({{k.split(".")[0] for k in sys.modules}} & HOST_ONLY)
print("RESULT" + json.dumps(out))
"""


def test_kiosk_installs_a_bundle_and_predicts_without_torch(exported_edge, tmp_path):
    from detak.export.bundle import create_bundle, generate_keypair

    priv, pub = generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    bundle = create_bundle(exported_edge, tmp_path / "edge.tar.gz", priv)
    code = _SCRIPT.format(host=HOST_ONLY, bundle=str(bundle), pub=str(pub),
                          out_dir=str(tmp_path))
    env = {**os.environ, "DETAK_BUNDLES": str(tmp_path / "kiosk")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")][-1]
    res = json.loads(line.removeprefix("RESULT"))
    assert res["imported"] == []
    assert res["install"] == 0 and res["onnx"] == 0 and res["tflite"] == 0
    assert res["cam_shape"] == [1, 1000]
    assert res["folder"].startswith(str(tmp_path / "kiosk"))
    a = pd.read_csv(tmp_path / "onnx.csv")
    b = pd.read_csv(tmp_path / "tflite.csv")
    assert a["record"].astype(str).tolist() == ["8", "sample:ptbxl-00102"]
    assert (a.iloc[:, 1:].sub(b.iloc[:, 1:]).abs().to_numpy() < 0.1).all()


def test_the_guard_would_catch_torch(tmp_path):
    """Self-check: the same guard makes an import of torch fail."""
    code = _GUARD.format(host=HOST_ONLY) + (
        "try:\n    import torch\nexcept ImportError as e:\n    print('BLOCKED', e)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert "BLOCKED torch is not installed on the kiosk" in proc.stdout


# --- every command the kiosk offers, on the shipped models, with the host packages blocked ------

_COMMAND = _GUARD + """
from detak.cli import main
code = main({argv!r})
bad = sorted({{k.split(".")[0] for k in sys.modules}} & HOST_ONLY)
print("IMPORTED:" + ",".join(bad))
sys.exit(code)
"""


def _kiosk(argv: list[str], tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DETAK_BUNDLES": str(tmp_path / "no-bundles")}
    proc = subprocess.run([sys.executable, "-c", _COMMAND.format(host=HOST_ONLY, argv=argv)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "IMPORTED:\n" in proc.stdout or proc.stdout.endswith("IMPORTED:"), proc.stdout[-500:]
    return proc


def _one_line_error(proc: subprocess.CompletedProcess, *words: str) -> str:
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def test_predict_without_runtime_runs_the_int8_onnx_model_and_says_so(tmp_path):
    out = tmp_path / "p.csv"
    proc = _kiosk(["predict", "sample://ptbxl-00286", "--model", "edge", "--out", str(out),
                   "--jobs", "1"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out)
    assert list(table.columns) == ["record", "NORM", "MI", "STTC", "CD", "HYP"]
    assert len(table) == 1 and table.iloc[0, 1:].between(0, 1).all()
    assert "runtime onnx int8" in proc.stderr and "edge.int8.onnx" in proc.stderr


def test_predict_with_a_torch_only_model_or_runtime_names_the_extra(tmp_path):
    proc = _kiosk(["predict", "sample://ptbxl-00286", "--model", "resnet1d",
                   "--out", str(tmp_path / "p.csv")], tmp_path)
    _one_line_error(proc, "detak predict", "resnet1d", 'pip install "detak[host]"')
    proc = _kiosk(["predict", "sample://ptbxl-00286", "--model", "edge", "--runtime", "torch",
                   "--out", str(tmp_path / "p.csv")], tmp_path)
    _one_line_error(proc, "detak predict", "torch", 'pip install "detak[host]"')
    assert not (tmp_path / "p.csv").exists()


def test_models_info_and_explain_name_the_host_extra(tmp_path):
    _one_line_error(_kiosk(["models", "info", "edge"], tmp_path),
                    "detak models info", 'pip install "detak[host]"')
    _one_line_error(_kiosk(["explain", "sample://ptbxl-00286", "--model", "edge",
                            "--out", str(tmp_path / "x")], tmp_path),
                    "detak explain", 'pip install "detak[host]"')


def test_models_list_marks_what_runs_here(tmp_path):
    proc = _kiosk(["models", "list", "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout.split("IMPORTED:")[0])
    here = {(r["name"], r["runtime"], r["precision"]): r["runnable_here"] for r in rows}
    assert here[("edge", "onnx", "int8")] is True and here[("edge", "tflite", "int8")] is True
    assert not any(ok for (_, rt, _), ok in here.items() if rt == "torch")
    table = _kiosk(["models", "list"], tmp_path)
    assert table.returncode == 0
    line = [ln for ln in table.stdout.splitlines() if "resnet1d" in ln][0]
    assert "no" in line.split()


def test_predict_on_bad_csv_files_names_the_file_and_the_problem(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    text = tmp_path / "text.csv"
    rows = "\n".join(",".join(["0.1"] * 12) for _ in range(1000))
    text.write_text("I,II,III,aVR,aVL,aVF,V1,V2,V3,V4,V5,V6\n" + rows.replace("0.1", "abc", 1)
                    + "\n")
    for bad in (empty, text):
        proc = _kiosk(["predict", str(bad), "--model", "edge", "--out",
                       str(tmp_path / "p.csv")], tmp_path)
        _one_line_error(proc, "detak predict", bad.name)


def test_screen_runs_the_whole_pipeline_without_torch(tmp_path):
    """Issue 14: `detak screen` (quality, intervals, rules, NB, int8 CNN + CAM, urgency, store)
    with the host packages blocked, on a 12-lead and a single-lead recording and a device."""
    from detak.data.samples import load_sample
    from detak.data.wfdb_io import write_wfdb

    one = write_wfdb(load_sample("ludb-1").select(["II"]).replace(name="one"), tmp_path / "one")
    proc = _kiosk(["screen", "sample://ptbxl-00286", str(one), "emu://ptbxl/1?speed=20",
                   "--store", str(tmp_path / "S"), "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(ln) for ln in proc.stdout.split("IMPORTED:")[0].splitlines() if ln]
    assert [r["mi"] is not None for r in rows] == [True, False, True]
    assert rows[0]["mi"]["cam"] is True and rows[0]["mi"]["precision"] == "int8"
    assert "12 sadapan" in rows[1]["mi_reason"]


def test_kiosk_app_serves_without_torch(tmp_path):
    """Issue 14: the app (`detak kiosk`'s create_app, with the int8 model loaded) answers
    /healthz and renders its pages with the host packages blocked."""
    script = _GUARD.format(host=HOST_ONLY) + f"""
from fastapi.testclient import TestClient
from detak.kiosk.app import create_app
c = TestClient(create_app({str(tmp_path / "S")!r}))
h = c.get("/healthz").json()
assert h["status"] == "ok" and "int8" in h["model"], h
assert c.get("/login").status_code == 200
print("IMPORTED:" + ",".join(sorted({{k.split(".")[0] for k in sys.modules}} & HOST_ONLY)))
"""
    env = {**os.environ, "DETAK_BUNDLES": str(tmp_path / "no-bundles")}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("IMPORTED:"), proc.stdout[-500:]

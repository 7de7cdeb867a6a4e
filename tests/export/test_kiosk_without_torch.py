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

_SCRIPT = """
import importlib.abc, json, sys
HOST_ONLY = set({host!r})

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in HOST_ONLY:
            raise ImportError(f"{{name}} is not installed on the kiosk")
        return None

sys.meta_path.insert(0, Block())
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
    code = _SCRIPT.split("import numpy as np")[0].format(host=HOST_ONLY) + (
        "try:\n    import torch\nexcept ImportError as e:\n    print('BLOCKED', e)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert "BLOCKED torch is not installed on the kiosk" in proc.stdout

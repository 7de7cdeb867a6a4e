"""Shared fixtures of the export tests: a small edge model trained for two epochs on 384 real
PTB-XL records (~8 s), its exports (ONNX through the CLI, TFLite through the API), and the
first labelled fold-9 records standardised with its statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

EVAL_RECORDS = 120
CALIBRATION_SIZE = 48


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Export tests run torch single-threaded (as the exporter does by default): on a busy
    2-core machine two OpenMP threads can be ~50x slower than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def trained_edge(tmp_path_factory) -> Path:
    from detak.models.training import train_cnn

    out = tmp_path_factory.mktemp("trained") / "edge"
    threads = torch.get_num_threads()
    try:
        train_cnn("edge", out_dir=out, epochs=2, max_records=384, threads=1, progress=False,
                  eval_train=False, n_boot=20)
    finally:
        torch.set_num_threads(threads)
    return out


@pytest.fixture(scope="session")
def exported_edge(trained_edge, tmp_path_factory) -> Path:
    """fp32 + int8 ONNX (via `detak export onnx`) and TFLite (via `export_model`)."""
    from detak.cli import main
    from detak.export.pipeline import export_model

    out = tmp_path_factory.mktemp("exported") / "edge"
    rc = main(["export", "onnx", "--source", str(trained_edge), "--out", str(out),
               "--calibration-size", str(CALIBRATION_SIZE), "--eval-records", str(EVAL_RECORDS)])
    assert rc == 0
    export_model(source=trained_edge, kind="tflite", out=out,
                 calibration_size=CALIBRATION_SIZE, eval_records=EVAL_RECORDS)
    return out


@pytest.fixture(scope="session")
def fold9_sample(trained_edge) -> tuple[np.ndarray, np.ndarray]:
    """(standardised x, labels) of the first 100 labelled fold-9 records."""
    from detak.models.cnn_data import fold_arrays
    from detak.signal.filters import Standardizer

    std = Standardizer.load(trained_edge / "standardizer.json")
    fa = fold_arrays(9)
    idx = np.flatnonzero(fa.labelled)[:100]
    return std.transform(np.asarray(fa.x[idx])).astype(np.float32), fa.y[idx]


@pytest.fixture(scope="session")
def edge_module(trained_edge):
    from detak.export.predict import load_torch_module
    from detak.models.model_card import read_card

    return load_torch_module(trained_edge, read_card(trained_edge / "card.json"))


def torch_outputs(module, x: np.ndarray) -> dict[str, np.ndarray]:
    """The torch export graph's outputs (fused maps included) for standardised ``x``."""
    from detak.export.cam import export_graph

    graph = export_graph(module)
    with torch.inference_mode():
        out = graph(torch.from_numpy(x))
    return {k: v.numpy() for k, v in out.items()}

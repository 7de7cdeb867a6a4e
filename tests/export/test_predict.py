"""detak.export.predict and `detak predict`: the CSV contract, PTB-XL fast path, resampling,
named errors. The model is a randomly initialised edge net saved into tmp_path (no weights need
to ship for these tests)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import signal as sps

from detak.cli import main
from detak.data.io import write_recording
from detak.data.ludb import load_ludb
from detak.data.recording import MissingLeadError
from detak.export.predict import (
    ModelNotFoundError,
    RuntimeNotAvailableError,
    load_model,
    predict_sources,
)
from detak.models.cnn.registry import build_model
from detak.models.cnn_data import InputError, ModelLeadsError
from detak.signal.filters import Standardizer

HEADER = "record,NORM,MI,STTC,CD,HYP"


def make_tiny_model(folder: Path, seed: int = 0) -> Path:
    """A random edge model with a card and a standardizer, as training writes them. The head
    is scaled up so that the probabilities spread and differences between inputs show."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    m = build_model("edge")
    with torch.no_grad():
        m.head.weight.mul_(8.0)
    torch.save(m.state_dict(), folder / "edge.pt")
    Standardizer([0.0], [0.15]).save(folder / "standardizer.json")
    card = {"format": "detak-cnn-card/1", "name": "tiny-edge", "architecture": {"name": "edge"},
            "weights": {"file": "edge.pt", "precision": "fp32"}}
    (folder / "card.json").write_text(json.dumps(card))
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny-edge")


def test_missing_lead_is_a_named_error(tiny, tmp_path):
    rec = load_ludb(5).recording
    rec = rec.select([lead for lead in rec.leads if lead != "V2"]).replace(name="lab-12")
    path = write_recording(rec, tmp_path / "lab-12")
    with pytest.raises(MissingLeadError, match=r"lab-12.*missing V2"):
        predict_sources([str(path)], tiny)
    # the command reports it by name, without a traceback; a rejected source exits 1
    rc = main(["predict", str(path), "--model", str(tiny), "--out", str(tmp_path / "o.csv")])
    assert rc == 1 and not (tmp_path / "o.csv").exists()  # a source failed (exit rule)


def test_a_bad_source_is_named_and_the_others_are_predicted(tiny, tmp_path, capsys):
    """Exit rule (issue 13, item 4): one failed source is named on stderr, exit 1, and the
    other sources are still predicted and written."""
    good = write_recording(load_ludb(5).recording.replace(name="good"), tmp_path / "good")
    rec = load_ludb(6).recording
    bad = write_recording(rec.select([ld for ld in rec.leads if ld != "V2"]).replace(
        name="no-v2"), tmp_path / "no-v2")
    out = tmp_path / "o.csv"
    capsys.readouterr()
    rc = main(["predict", str(bad), str(good), str(tmp_path / "absent.csv"), "--model",
               str(tiny), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1
    assert [ln for ln in err if "no-v2" in ln and "missing V2" in ln]
    assert [ln for ln in err if "absent.csv" in ln and ln.startswith("detak predict: error:")]
    table = pd.read_csv(out)
    assert list(table["record"]) == ["good"]
    want = predict_sources([str(good)], tiny)
    np.testing.assert_allclose(table.iloc[0, 1:].to_numpy(float),
                               want.iloc[0, 1:].to_numpy(float), atol=1e-6)


def test_rate_below_100_hz_is_a_named_error(tiny, tmp_path):
    rec = load_ludb(5).recording
    slow = rec.replace(signal=rec.signal[:, ::10].copy(), fs=50.0, name="slow")
    path = write_recording(slow, tmp_path / "slow")
    with pytest.raises(InputError, match="50 Hz"):
        predict_sources([str(path)], tiny)


def test_runtimes_without_export_say_so(tiny):
    with pytest.raises(RuntimeNotAvailableError,
                       match=r"runtime onnx: no exported model for tiny-edge yet "
                             r"\(detak export onnx\)"):
        load_model(tiny, runtime="onnx")
    with pytest.raises(RuntimeNotAvailableError, match="tflite"):
        load_model(tiny, runtime="tflite")
    with pytest.raises(RuntimeNotAvailableError, match="int8"):
        load_model(tiny, precision="int8")
    with pytest.raises(ModelNotFoundError, match="nope"):
        load_model("nope")


def test_auto_runtime_takes_the_int8_export_else_torch_and_says_which(tiny, tmp_path, capsys):
    edge = load_model("edge", runtime="auto", precision=None)
    assert (edge.runtime, edge.precision) == ("onnx", "int8") and edge.module.has_cam
    fp32 = load_model("edge", runtime="auto", precision="fp32")
    assert (fp32.runtime, fp32.precision) == ("torch", "fp32")
    plain = load_model(tiny, runtime="auto", precision=None)   # no export: the torch weights
    assert (plain.runtime, plain.precision) == ("torch", "fp32")
    with pytest.raises(RuntimeNotAvailableError, match="none of edge.int8.onnx"):
        load_model(tiny, runtime="auto", precision="int8")
    assert main(["predict", "sample://ptbxl-00102", "--model", str(tiny), "--out",
                 str(tmp_path / "p.csv"), "--jobs", "1"]) == 0
    assert "tiny-edge with runtime torch fp32 (edge.pt)" in capsys.readouterr().err


def test_predict_csv_contract_for_ptbxl_ids_and_wfdb_folder(tiny, tmp_path):
    folder = tmp_path / "recs"
    for n in (1, 2):
        write_recording(load_ludb(n).recording.replace(name=f"ludb{n}"), folder / f"ludb{n}")
    out = tmp_path / "p.csv"
    assert main(["predict", "ptbxl://00008", "ptbxl://11", str(folder), "--model", str(tiny),
                 "--out", str(out), "--jobs", "1"]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == HEADER
    table = pd.read_csv(out)
    assert table["record"].astype(str).tolist() == ["8", "11", "ludb1", "ludb2"]
    probs = table[["NORM", "MI", "STTC", "CD", "HYP"]].to_numpy()
    assert ((probs >= 0) & (probs <= 1)).all()
    assert np.abs(probs[0] - probs[1]).max() > 1e-3  # different records, different outputs


def test_fold_fast_path_equals_record_by_record(tiny):
    fold = predict_sources(["ptbxl://fold9"], tiny, jobs=1)
    assert len(fold) == 2183 and list(fold.columns) == HEADER.split(",")
    picks = fold.iloc[[0, 999, 2182]]
    one = predict_sources([f"ptbxl://{r}" for r in picks["record"]], tiny, jobs=1)
    assert one["record"].tolist() == picks["record"].tolist()
    assert np.allclose(one.iloc[:, 1:].to_numpy(), picks.iloc[:, 1:].to_numpy(), atol=1e-5)


def test_500_hz_record_predicts_like_its_100_hz_version(tiny, tmp_path):
    recs = {n: load_ludb(n).recording for n in (8, 9)}
    paths = {}
    for n, rec in recs.items():
        paths[f"{n}@500"] = write_recording(rec.replace(name=f"r{n}h"), tmp_path / f"r{n}h")
        low = sps.decimate(rec.signal.astype(np.float64), 5, ftype="fir", zero_phase=True)
        paths[f"{n}@100"] = write_recording(rec.replace(signal=low.astype(np.float32), fs=100.0,
                                                        name=f"r{n}l"), tmp_path / f"r{n}l")
    t = predict_sources([str(paths[k]) for k in ("8@500", "8@100", "9@500", "9@100")], tiny,
                        jobs=1)
    p = t.iloc[:, 1:].to_numpy()
    same_record = max(np.abs(p[0] - p[1]).max(), np.abs(p[2] - p[3]).max())
    other_record = np.abs(p[0] - p[2]).max()
    assert same_record < 0.03
    assert same_record < other_record / 3  # the tolerance is far below what the model resolves


def test_models_lead_error_survives_worker_processes():
    import pickle

    err = pickle.loads(pickle.dumps(ModelLeadsError("r1", ["V1"], ["I", "II"])))
    assert err.missing == ["V1"] and "r1" in str(err)


def test_worker_processes_give_the_same_rows_in_order(tiny, tmp_path, monkeypatch):
    from detak.export import predict

    folder = tmp_path / "recs"
    for n in (11, 12, 13, 14):
        write_recording(load_ludb(n).recording.replace(name=f"l{n}"), folder / f"l{n}")
    serial = predict_sources([str(folder)], tiny, jobs=1)
    monkeypatch.setattr(predict, "POOL_MIN_RECORDS", 2)
    pooled = predict_sources([str(folder)], tiny, jobs=2)
    assert pooled["record"].tolist() == ["l11", "l12", "l13", "l14"]
    assert np.allclose(pooled.iloc[:, 1:].to_numpy(), serial.iloc[:, 1:].to_numpy(), atol=1e-6)


# --- fused Grad-CAM maps from the kiosk runtimes (--cam) ----------------------------------------


def test_cam_needs_an_exported_model_with_maps(tmp_path, capsys):
    rc = main(["predict", "sample://ptbxl-00102", "--model", "edge", "--runtime", "torch",
               "--out", str(tmp_path / "p.csv"), "--cam", str(tmp_path / "maps.npz")])
    assert rc == 2 and not (tmp_path / "maps.npz").exists()
    assert "--cam: the fused Grad-CAM maps come from the exported models" in capsys.readouterr().err


@pytest.mark.parametrize("runtime", ["onnx", "tflite"])
def test_cam_file_holds_one_map_per_window_aligned_with_the_csv(tmp_path, runtime):
    csv, maps = tmp_path / "p.csv", tmp_path / "maps.npz"
    sources = ["sample://ptbxl-00102", "sample://ptbxl-07489", "sample://ludb-1"]
    assert main(["predict", *sources, "--model", "edge", "--runtime", runtime, "--precision",
                 "int8", "--out", str(csv), "--cam", str(maps), "--jobs", "1"]) == 0
    table = pd.read_csv(csv, dtype={"record": str})
    with np.load(maps) as z:
        assert list(z["record"]) == list(table["record"])           # 10-s records: one window
        assert z["cam_mi"].shape == z["cam_top"].shape == (3, 1000)
        assert np.isfinite(z["cam_mi"]).all() and (z["cam_mi"] >= 0).all()   # ReLU'd maps
        assert z["cam_mi"].max(axis=1).min() > 0                      # not all-zero
        top = list(z["top_class"])
        assert set(top) <= {"NORM", "MI", "STTC", "CD", "HYP"}
        probs = table[["NORM", "MI", "STTC", "CD", "HYP"]].to_numpy()
        assert top == [("NORM", "MI", "STTC", "CD", "HYP")[i] for i in probs.argmax(axis=1)]
        for i, cls in enumerate(top):                                 # the MI row is its own
            if cls == "MI":
                np.testing.assert_allclose(z["cam_top"][i], z["cam_mi"][i], rtol=1e-6)
        assert float(z["fs"]) == 100.0 and str(z["model"]) == "edge"
        assert str(z["runtime"]) == runtime and str(z["precision"]) == "int8"


# --- recordings with flagged gaps (issue 13, item 2) ----------------------------------------


def _gapped(rec, spans_s):
    from detak.data.gaps import with_gaps

    return with_gaps(rec, spans_s)


def test_gap_is_filled_with_a_warning_and_too_much_gap_is_refused(tiny, tmp_path, capsys):
    from detak.data.gaps import fill_gaps

    rec = load_ludb(5).recording.replace(name="gappy")                  # 10 s: no clean 10 s
    small = _gapped(rec, [(4.0, 4.2)])
    path = write_recording(small, tmp_path / "gappy")
    got = predict_sources([str(path)], tiny).iloc[0, 1:].to_numpy(float)
    ref_path = write_recording(fill_gaps(small, "linear").replace(meta={}), tmp_path / "filled")
    want = predict_sources([str(ref_path)], tiny).iloc[0, 1:].to_numpy(float)
    np.testing.assert_allclose(got, want, atol=1e-5)
    err = capsys.readouterr().err
    assert "gappy: 1 gap, 0.2 s in total, at 4-4.2 s" in err and "0.2 s filled (linear" in err

    big = write_recording(_gapped(rec, [(4.0, 5.0)]).replace(name="holey"), tmp_path / "holey")
    rc = main(["predict", str(big), "--model", str(tiny), "--out", str(tmp_path / "o.csv")])
    err = capsys.readouterr().err
    assert rc == 1 and "holey: 1 gap, 1 s in total" in err and "more than the 0.5 s" in err
    assert not (tmp_path / "o.csv").exists()


def test_longest_gap_free_window_is_used_when_there_is_one(tiny, tmp_path, capsys):
    rec = load_ludb(5).recording
    long = rec.replace(signal=np.concatenate([rec.signal, rec.signal[:, :1500]], axis=1),
                       name="long")                                      # 13 s
    path = write_recording(_gapped(long, [(2.0, 2.5)]), tmp_path / "long")
    got = predict_sources([str(path)], tiny).iloc[0, 1:].to_numpy(float)
    clean = long.replace(signal=long.signal[:, 1250:], name="clean")     # 2.5 s .. 13 s
    want = predict_sources([str(write_recording(clean, tmp_path / "clean"))],
                           tiny).iloc[0, 1:].to_numpy(float)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert "the CNN ran on the gap-free 10.5 s from 2.5 s" in capsys.readouterr().err

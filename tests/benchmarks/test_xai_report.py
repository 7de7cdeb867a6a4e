"""benchmarks/xai_report.py end to end on a tiny subset with a random model: every output is
written, missing models are skipped with a reason, the headline has one row per method, and a
re-run reads the cache instead of recomputing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xai_report as xr

from tests.export.test_predict import make_tiny_model


def test_selection_is_stratified_and_seeded():
    y = np.zeros((100, 5), np.uint8)
    y[:30, 1] = 1
    a = xr.select_records(y, 10, 20, seed=0)
    assert len(a) == 30 and (y[a, 1] == 1).sum() == 10
    assert np.array_equal(a, xr.select_records(y, 10, 20, seed=0))
    assert len(xr.select_records(y, None, None)) == 100


def test_f1_threshold_picks_the_best_cut():
    p = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    y = np.array([1, 1, 0, 1, 0])
    # F1 at each cut: 0.9 → 0.5, 0.8 → 0.8, 0.7 → 0.67, 0.2 → 0.86 (best), 0.1 → 0.75
    assert xr.f1_threshold(p, y) == 0.2


def test_no_model_at_all_is_an_error(tmp_path):
    assert xr.main(["--models", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2


def test_report_end_to_end_on_a_tiny_subset(tmp_path, capsys, monkeypatch):
    import detak.explain.shap_cnn as shap_mod

    real = shap_mod.training_background
    # SHAP's background from fold 1 only (the report reads fold 1 anyway; folds 1-8 are slow)
    monkeypatch.setattr(shap_mod, "training_background",
                        lambda std, n, seed: real(std, n=n, seed=seed, folds=(1,)))
    model = make_tiny_model(tmp_path / "tiny-edge")
    argv = ["--models", str(model), str(tmp_path / "missing"), "--n-pos", "4", "--n-neg", "3",
            "--template-records", "4", "--steps", "4", "--ig-steps", "2", "--methods",
            "gradcam", "lrp:epsilon", "shap", "random", "--shap-background", "4",
            "--shap-samples", "2", "--out", str(tmp_path / "out"),
            "--cache", str(tmp_path / "cache"), "--mi-only"]
    assert xr.main(argv) == 0
    out = tmp_path / "out"
    doc = json.loads((out / "xai.json").read_text())
    assert doc["records"]["n_pos"] == 4 and doc["records"]["n_neg"] == 3
    assert list(doc["skipped"]) == [str(tmp_path / "missing")]
    (name, res), = doc["models"].items()
    assert set(res["methods"]) == {"gradcam", "lrp:epsilon", "shap", "random"}
    shap = res["methods"]["shap"]
    assert shap["kind"] == "shap" and len(shap["leads_mi"]["top3"]) == 3
    assert -1 <= shap["randomisation_rho"]["mean"] <= 1
    assert doc["settings"]["shap_background"] == 4 and doc["settings"]["shap_samples"] == 2
    f = res["methods"]["lrp:epsilon"]["faithfulness"]["normal_beats"]
    assert 0 <= f["deletion_auc"] <= 1 and len(f["deletion_curve"]) == 5
    assert sum(res["groups"].values()) == 7
    readme = (out / "README.md").read_text()
    assert readme.count(f"| {name} | ") >= 4 and "Skipped:" in readme
    assert f"| {name} | shap |" in readme
    for fig in doc["figures"]:
        assert (out / fig).stat().st_size > 1000, fig
    assert any(f.endswith(".svg") for f in doc["figures"])
    headline = capsys.readouterr().out
    assert "lrp:epsilon" in headline
    # resumable: a second run finds every unit in the cache
    cached = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*.npy")}
    assert any(c.startswith("attr_lrp_epsilon") for c in cached)
    assert any(c.startswith("attr_shap_") for c in cached)
    assert xr.main(argv) == 0
    assert {p.name: p.stat().st_mtime_ns
            for p in (tmp_path / "cache").rglob("*.npy")} == cached
    doc2 = json.loads((out / "xai.json").read_text())
    assert doc2["models"][name]["methods"]["lrp:epsilon"]["faithfulness"] == \
        res["methods"]["lrp:epsilon"]["faithfulness"]
    # the compute time survives a cached re-run: recorded beside each unit ...
    t1, t2 = res["seconds"], doc2["models"][name]["seconds"]
    assert t1["compute_total"] > 0 and t1["compute_source"]["shap"] == "recorded"
    assert t2["compute_by_method"] == t1["compute_by_method"]
    assert doc2["compute_seconds"] == pytest.approx(t1["compute_total"])
    assert "computing every unit: " in (out / "README.md").read_text()
    # ... or, for units computed before times were recorded, from the earlier xai.json
    for f in (tmp_path / "cache").rglob("*.seconds"):
        f.unlink()
    assert xr.main(argv) == 0
    t3 = json.loads((out / "xai.json").read_text())["models"][name]["seconds"]
    assert set(t3["compute_source"].values()) == {"earlier run's xai.json"}
    assert t3["compute_by_method"] == t1["compute_by_method"]


@pytest.mark.parametrize("bad", [["--methods", "deeplift"]])
def test_bad_method_is_named(bad, tmp_path):
    with pytest.raises(ValueError, match="unknown method 'deeplift'"):
        xr.main(["--out", str(tmp_path), *bad])


def _method(kind: str, rank: list[str], per_record: float, v1: float = 1 / 12) -> dict:
    mean = {lead: (1 - v1) / 11 for lead in rank} | {"V1": v1}
    return {"kind": kind, "leads_mi": {"mean": mean, "rank": rank,
                                       "utilisation_per_record": per_record}}


def test_s1_comparison_ranks_models_by_lead_utilisation():
    leads = ["V1", "V2", "V5", "V6", "I", "II", "aVL", "aVF", "III", "aVR", "V3", "V4"]
    results = {
        "narrow": {"methods": {"ig": _method("ig", leads, 6.0, v1=0.3),
                               "lrp:s1": _method("lrp", leads, 7.0, v1=0.2),
                               "gradcam": _method("gradcam", leads, 11.0),   # no lead axis
                               "random": _method("random", leads, 11.0)}},
        "wide": {"methods": {"ig": _method("ig", leads, 9.0),
                             "lrp:s1": _method("lrp", leads, 10.0)}},
    }
    rows, notes = xr.s1_comparison(results)
    assert len(rows) == 4 and rows[0][4] == "4/4" and rows[0][5] == "4/4"
    util = [n for n in notes if n.startswith("lead utilisation")]
    assert len(util) == 1
    # mean over the lead-resolved methods only: narrow 6.5, wide 9.5; the widest named first
    assert "wide 9.5, narrow 6.5" in util[0] and "most leads: wide" in util[0]
    v1 = [n for n in notes if n.startswith("V1's share")]
    assert len(v1) == 1 and "narrow 0.250, wide 0.083" in v1[0] and "largest: narrow" in v1[0]

import pytest

from detak.data.sources import SourceError, expand_source, expand_sources


def test_ptbxl_id_and_ludb_sources_keep_the_argument_as_given():
    items = expand_sources(["ptbxl://00257", "ludb://8"])
    assert [(i.source, i.record) for i in items] == [("ptbxl://00257", "ptbxl:257"),
                                                     ("ludb://8", "ludb:8")]


def test_ptbxl_fold_lists_every_record_of_the_fold():
    from detak.data.ptbxl import open_ptbxl

    items = expand_source("ptbxl://fold9")
    meta = open_ptbxl().metadata
    assert len(items) == len(meta[meta["strat_fold"] == 9].index.intersection(
        [int(i.key) for i in items]))
    assert len(items) > 2000
    assert all(i.source == "ptbxl://fold9" for i in items)


@pytest.mark.parametrize("bad, words", [
    ("ptbxl://fold11", "folds 1–10"),
    ("ludb://0", "1–200"),
    ("ludb://201", "1–200"),
    ("foo://1", "unknown source"),
])
def test_bad_source_strings_are_named(bad, words):
    with pytest.raises(SourceError, match=words):
        expand_source(bad)


def test_folder_of_wfdb_records(tmp_path):
    import numpy as np
    import wfdb

    for name in ("a", "b"):
        wfdb.wrsamp(name, fs=250, units=["mV"], sig_name=["II"],
                    p_signal=np.zeros((1000, 1)), fmt=["16"], write_dir=str(tmp_path))
    items = expand_source(str(tmp_path))
    assert [i.record for i in items] == [str(tmp_path / "a"), str(tmp_path / "b")]
    rec = items[0].load()
    assert rec.fs == 250 and rec.leads == ("II",)


def test_empty_folder_is_refused(tmp_path):
    with pytest.raises(SourceError, match="no WFDB records"):
        expand_source(str(tmp_path))


def test_ludb_and_sample_sources_load():
    rec = expand_source("ludb://2")[0].load()
    assert (rec.fs, rec.n_leads, rec.n_samples) == (500.0, 12, 5000)
    rec = expand_source("sample://ptbxl-00257")[0].load()
    assert (rec.fs, rec.n_leads, rec.n_samples) == (100.0, 12, 1000)


def test_a_fold_whose_signals_are_missing_is_one_named_error():
    # The shared copy leaves fold 10 out on purpose (the benchmark's test fold).
    with pytest.raises(SourceError, match="fold 10 signals are not in"):
        expand_source("ptbxl://fold10")


def test_fold10_works_when_a_full_copy_is_present(tmp_path, monkeypatch):
    """A PhysioNet-layout copy with fold-10 signals: ptbxl://fold10 lists and loads them."""
    import shutil

    import numpy as np
    import pandas as pd
    import wfdb

    from detak.data import sources
    from detak.data.paths import data_root
    from detak.data.ptbxl import open_ptbxl

    shared = data_root() / "ptbxl"
    db = pd.read_csv(shared / "ptbxl_database.csv")
    fold10 = db[db.strat_fold == 10].head(2)
    donor = open_ptbxl().record(1).signal  # real samples stand in for the missing fold
    root = tmp_path / "ptbxl"
    root.mkdir()
    fold10.to_csv(root / "ptbxl_database.csv", index=False)
    shutil.copy(shared / "scp_statements.csv", root / "scp_statements.csv")
    for fn in fold10.filename_lr:
        out = root / fn
        out.parent.mkdir(parents=True, exist_ok=True)
        wfdb.wrsamp(out.name, fs=100, units=["mV"] * 12,
                    sig_name=["I", "II", "III", "AVR", "AVL", "AVF",
                              "V1", "V2", "V3", "V4", "V5", "V6"],
                    d_signal=np.round(donor.T * 1000).astype(np.int16), fmt=["16"] * 12,
                    adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=str(out.parent))
    monkeypatch.setenv("DETAK_DATA", str(tmp_path))
    monkeypatch.setenv("DETAK_CACHE", str(tmp_path / "cache"))
    sources._ptbxl.cache_clear()
    try:
        items = expand_source("ptbxl://fold10")
        assert [int(i.key) for i in items] == sorted(fold10.ecg_id)
        rec = items[0].load()
        np.testing.assert_allclose(rec.signal, donor, atol=1e-3)
    finally:
        sources._ptbxl.cache_clear()

import numpy as np
import pytest

from detak.data.samples import SampleNotFoundError, load_sample, sample_index, sample_names


def test_every_sample_loads_with_standard_leads_and_a_licence():
    names = sample_names()
    assert any(n.startswith("ptbxl-") for n in names) and any(n.startswith("ludb-") for n in names)
    for name in names:
        rec = load_sample(name)
        assert rec.leads == ("I", "II", "III", "aVR", "aVL", "aVF",
                             "V1", "V2", "V3", "V4", "V5", "V6")
        assert rec.duration_s == pytest.approx(10.0)
        assert sample_index()[name]["licence"] in {"CC BY 4.0", "ODC-By 1.0"}


def test_bundled_ptbxl_sample_equals_the_shared_dataset():
    from detak.data.ptbxl import open_ptbxl

    ptb = open_ptbxl()
    for name, info in sample_index().items():
        if info["dataset"] != "PTB-XL":
            continue
        bundled, shared = load_sample(name), ptb.record(info["id"])
        np.testing.assert_allclose(bundled.signal, shared.signal, atol=1e-6)
        assert (bundled.meta["sex"], bundled.meta["age"]) == (shared.meta["sex"],
                                                              shared.meta["age"])


def test_bundled_ludb_sample_equals_the_shared_dataset():
    from detak.data.ludb import load_ludb

    np.testing.assert_allclose(load_sample("ludb-8").signal, load_ludb(8).recording.signal,
                               atol=1e-6)


def test_unknown_sample_is_named():
    with pytest.raises(SampleNotFoundError, match="no bundled sample 'nope'"):
        load_sample("nope")

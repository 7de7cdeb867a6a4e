"""Tests for detak.data.paths: data root, dataset lookup errors, cache folder, atomic .npy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import detak
from detak.data.paths import (
    DataNotFoundError,
    cache_dir,
    data_root,
    dataset_dir,
    save_npy_atomic,
)


def test_missing_dataset_names_path_and_env_var(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DETAK_DATA", str(tmp_path))
    with pytest.raises(DataNotFoundError) as err:
        dataset_dir("ptbxl")
    msg = str(err.value)
    assert str(tmp_path / "ptbxl") in msg
    assert "DETAK_DATA" in msg
    assert isinstance(err.value, FileNotFoundError)


def test_missing_dataset_with_explicit_root(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("DETAK_DATA", raising=False)
    with pytest.raises(DataNotFoundError, match="passed explicitly"):
        dataset_dir("ludb", tmp_path / "nowhere")


def test_data_root_follows_env(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DETAK_DATA", str(tmp_path))
    assert data_root() == tmp_path
    (tmp_path / "ludb").mkdir()
    assert dataset_dir("ludb") == tmp_path / "ludb"


def test_default_root_is_shared_data_beside_the_repo(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("DETAK_DATA", raising=False)
    fake_repo = tmp_path / "clone"
    (fake_repo / "detak").mkdir(parents=True)
    (tmp_path / "shared" / "data").mkdir(parents=True)
    monkeypatch.setattr(detak, "__file__", str(fake_repo / "detak" / "__init__.py"))
    assert data_root() == tmp_path / "shared" / "data"


def test_default_root_falls_back_to_cwd(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("DETAK_DATA", raising=False)
    installed = tmp_path / "site-packages"  # no shared/data beside an installed package
    (installed / "detak").mkdir(parents=True)
    monkeypatch.setattr(detak, "__file__", str(installed / "detak" / "__init__.py"))
    work = tmp_path / "project" / "repo"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    assert data_root() == (tmp_path / "project" / "shared" / "data").resolve()


def test_cache_dir_precedence(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DETAK_CACHE", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "explicit"
    assert (tmp_path / "explicit").is_dir()
    monkeypatch.delenv("DETAK_CACHE")
    assert cache_dir() == tmp_path / "xdg" / "detak"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "detak"
    assert cache_dir().is_dir()


def test_save_npy_atomic_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.npy"
    save_npy_atomic(target, np.arange(6, dtype=np.int16).reshape(2, 3))
    assert np.load(target).tolist() == [[0, 1, 2], [3, 4, 5]]
    # a failing write (object arrays cannot be saved without pickle) keeps the old file intact
    with pytest.raises(ValueError):
        save_npy_atomic(target, np.array([object()], dtype=object))
    assert np.load(target).tolist() == [[0, 1, 2], [3, 4, 5]]
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.npy"]


"""detak.export.bundle: signed bundles verify; a tampered file, a wrong key, an altered manifest,
a truncated archive and unsafe names are refused with named errors; install switches
atomically and a refused bundle leaves the previous one active."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from detak.export.bundle import (
    BundleFormatError,
    BundleKeyError,
    BundleSignatureError,
    BundleTamperedError,
    BundleTruncatedError,
    active_bundle,
    create_bundle,
    generate_keypair,
    install_bundle,
    key_id,
    load_public_key,
    rule_set_versions,
    verify_bundle,
)


def _model_folder(root: Path, payload: bytes = b"onnx-bytes-v1") -> Path:
    """A model folder as `detak export` leaves it (model files are opaque bytes here)."""
    m = root / "edge"
    m.mkdir(parents=True, exist_ok=True)
    (m / "card.json").write_text(json.dumps({"name": "edge", "architecture": {
        "name": "edge", "outputs": ["NORM", "MI", "STTC", "CD", "HYP"]},
        "weights": {"file": "edge.pt"}}))
    (m / "standardizer.json").write_text('{"mean": [0.0], "std": [0.15]}')
    (m / "export.json").write_text('{"format": "detak-export-card/1"}')
    (m / "edge.int8.onnx").write_bytes(payload)
    (m / "edge.int8.tflite").write_bytes(b"tflite-bytes")
    (m / "edge.pt").write_bytes(b"torch weights")
    return m


@pytest.fixture
def keys(tmp_path):
    return generate_keypair(tmp_path / "keys" / "detak.pem", tmp_path / "keys" / "detak.pub")


@pytest.fixture
def bundle(tmp_path, keys) -> Path:
    return create_bundle(_model_folder(tmp_path / "m1"), tmp_path / "edge-1.tar.gz", keys[0],
                         version="1")


def _rewrite(src: Path, dst: Path, change) -> Path:
    """Copy a bundle member by member, letting ``change(name, data)`` alter or drop members."""
    with tarfile.open(src, "r:gz") as tin, tarfile.open(dst, "w:gz") as tout:
        for m in tin:
            data = tin.extractfile(m).read()
            new = change(m.name, data)
            if new is None:
                continue
            name, data = new if isinstance(new, tuple) else (m.name, new)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tout.addfile(info, io.BytesIO(data))
    return dst


def test_a_signed_bundle_verifies(bundle, keys):
    m = verify_bundle(bundle, keys[1])
    assert m.name == "edge" and m.data["version"] == "1"
    assert sorted(m.files) == ["card.json", "edge.int8.onnx", "edge.int8.tflite", "export.json",
                               "labels.json", "standardizer.json"]  # no torch weights
    assert m.data["labels"] == ["NORM", "MI", "STTC", "CD", "HYP"]
    assert m.data["rule_sets"] == rule_set_versions() and set(m.data["rule_sets"]) >= {"s3"}
    assert m.data["key_id"] == key_id(load_public_key(keys[1]))


def test_wrong_key_is_refused_and_named(bundle, tmp_path):
    _, other_pub = generate_keypair(tmp_path / "o.pem", tmp_path / "o.pub")
    with pytest.raises(BundleSignatureError, match=r"signed by key [0-9a-f]{16}, this kiosk "
                                                   r"trusts key [0-9a-f]{16}"):
        verify_bundle(bundle, other_pub)


def test_tampered_file_is_refused(bundle, keys, tmp_path):
    bad = _rewrite(bundle, tmp_path / "bad.tar.gz",
                   lambda n, d: d.replace(b"v1", b"v2") if n.endswith(".onnx") else d)
    with pytest.raises(BundleTamperedError, match="edge.int8.onnx does not match its SHA-256"):
        verify_bundle(bad, keys[1])
    longer = _rewrite(bundle, tmp_path / "longer.tar.gz",
                      lambda n, d: d + b"!" if n.endswith(".tflite") else d)
    with pytest.raises(BundleTamperedError, match="edge.int8.tflite is 13 bytes"):
        verify_bundle(longer, keys[1])
    extra = _rewrite(bundle, tmp_path / "extra.tar.gz",
                     lambda n, d: ("files/evil.onnx", d) if n.endswith("labels.json") else d)
    with pytest.raises((BundleTamperedError, BundleTruncatedError), match="evil.onnx|labels"):
        verify_bundle(extra, keys[1])


def test_altered_manifest_is_refused(bundle, keys, tmp_path):
    def change(name, data):
        if name == "manifest.json":
            return data.replace(b'"version": "1"', b'"version": "9"')
        return data

    with pytest.raises(BundleSignatureError, match="manifest was altered"):
        verify_bundle(_rewrite(bundle, tmp_path / "m.tar.gz", change), keys[1])


def test_truncated_and_incomplete_bundles_are_refused(bundle, keys, tmp_path):
    data = bundle.read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleTruncatedError, match="truncated or corrupt"):
        verify_bundle(cut, keys[1])
    missing = _rewrite(bundle, tmp_path / "missing.tar.gz",
                       lambda n, d: None if n.endswith("standardizer.json") else d)
    with pytest.raises(BundleTruncatedError, match="missing: standardizer.json"):
        verify_bundle(missing, keys[1])
    nosig = _rewrite(bundle, tmp_path / "nosig.tar.gz",
                     lambda n, d: None if n == "manifest.sig" else d)
    with pytest.raises(BundleTruncatedError, match="manifest.sig is missing"):
        verify_bundle(nosig, keys[1])
    with pytest.raises(BundleTruncatedError, match="no such bundle file"):
        verify_bundle(tmp_path / "nope.tar.gz", keys[1])


def test_unsafe_member_names_are_refused(bundle, keys, tmp_path):
    evil = _rewrite(bundle, tmp_path / "evil.tar.gz",
                    lambda n, d: ("../../etc/x", d) if n.endswith("labels.json") else d)
    with pytest.raises(BundleFormatError, match=r"unsafe member name '\.\./\.\./etc/x'"):
        verify_bundle(evil, keys[1])


def test_bad_keys_and_folders_are_named_errors(tmp_path, keys):
    (tmp_path / "junk.pub").write_text("hello")
    with pytest.raises(BundleKeyError, match="not a PEM public key"):
        load_public_key(tmp_path / "junk.pub")
    with pytest.raises(BundleKeyError, match="no such file"):
        load_public_key(tmp_path / "none.pub")
    with pytest.raises(BundleKeyError, match="already exists"):
        generate_keypair(keys[0], tmp_path / "x.pub")
    assert (keys[0].stat().st_mode & 0o777) == 0o600
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "card.json").write_text("{}")
    with pytest.raises(BundleFormatError, match="no exported model files"):
        create_bundle(empty, tmp_path / "e.tar.gz", keys[0])


def test_install_switches_atomically_and_keeps_the_previous_on_refusal(bundle, keys, tmp_path):
    root = tmp_path / "kiosk"
    first = install_bundle(bundle, keys[1], root)
    assert active_bundle("edge", root) == first
    assert (first / "edge.int8.onnx").read_bytes() == b"onnx-bytes-v1"
    assert (first / "labels.json").is_file() and (first / "manifest.sig").is_file()

    # a tampered newer bundle, a truncated one and one signed by another key: all refused,
    # the first stays active
    v2 = create_bundle(_model_folder(tmp_path / "m2", b"onnx-bytes-v2"), tmp_path / "v2.tar.gz",
                       keys[0], version="2")
    bad = _rewrite(v2, tmp_path / "v2bad.tar.gz",
                   lambda n, d: d + b"x" if n.endswith(".onnx") else d)
    cut = tmp_path / "v2cut.tar.gz"
    cut.write_bytes(v2.read_bytes()[:-200])
    other_priv, _ = generate_keypair(tmp_path / "o.pem", tmp_path / "o.pub")
    foreign = create_bundle(_model_folder(tmp_path / "m3", b"foreign"), tmp_path / "f.tar.gz",
                            other_priv)
    for refused, err in ((bad, BundleTamperedError), (cut, BundleTruncatedError),
                         (foreign, BundleSignatureError)):
        with pytest.raises(err):
            install_bundle(refused, keys[1], root)
        assert active_bundle("edge", root) == first
        assert (active_bundle("edge", root) / "edge.int8.onnx").read_bytes() == b"onnx-bytes-v1"
    assert not [p for p in (root / "versions").iterdir() if p.name.startswith(".")]  # no debris

    second = install_bundle(v2, keys[1], root)
    assert second != first and active_bundle("edge", root) == second
    assert (active_bundle("edge", root) / "edge.int8.onnx").read_bytes() == b"onnx-bytes-v2"
    assert first.is_dir()  # the old version is kept for a roll-back


def test_prediction_finds_the_active_bundle(bundle, keys, tmp_path, monkeypatch):
    from detak.export.predict import resolve_model_dir

    root = tmp_path / "kiosk"
    monkeypatch.setenv("DETAK_BUNDLES", str(root))
    folder = install_bundle(bundle, keys[1])
    assert folder.parent.parent == root
    assert resolve_model_dir("edge") == folder


def test_cli_refuses_with_a_named_error(bundle, keys, tmp_path, capsys):
    from detak.cli import main

    bad = _rewrite(bundle, tmp_path / "bad.tar.gz",
                   lambda n, d: d + b"x" if n.endswith(".onnx") else d)
    root = tmp_path / "kiosk"
    assert main(["bundle", "install", str(bad), "--public-key", str(keys[1]),
                 "--root", str(root)]) == 2
    assert "BundleTamperedError" in capsys.readouterr().err
    assert active_bundle("edge", root) is None
    assert main(["bundle", "verify", str(bundle), "--public-key", str(keys[1])]) == 0
    assert json.loads(capsys.readouterr().out)["verified"] is True
    assert main(["bundle", "install", str(bundle), "--public-key", str(keys[1]),
                 "--root", str(root)]) == 0
    capsys.readouterr()
    assert main(["bundle", "list", "--root", str(root)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["bundle"], r["version"]) for r in rows] == [("edge", "1")]


def test_models_list_shows_the_installed_bundle_that_predict_will_use(bundle, keys, tmp_path,
                                                                        monkeypatch, capsys):
    from detak.cli import main
    from detak.export.catalog import list_models

    shipped = tmp_path / "package"
    _model_folder(shipped, payload=b"the shipped onnx")
    root = tmp_path / "kiosk"
    monkeypatch.setenv("DETAK_BUNDLES", str(root))
    before = list_models(shipped)
    assert {r["source"] for r in before} == {"package"} and all(r["active"] for r in before)

    folder = install_bundle(bundle, keys[1])
    rows = list_models(shipped)
    from_bundle = [r for r in rows if r["source"] == "bundle"]
    assert sorted((r["name"], r["runtime"], r["precision"]) for r in from_bundle) == [
        ("edge", "onnx", "int8"), ("edge", "tflite", "int8")]  # *.pt is not bundled by default
    assert all(Path(r["path"]).parent == folder and r["active"] for r in from_bundle)
    assert all(r["bundle_version"] == "1" for r in from_bundle)
    onnx = next(r for r in from_bundle if r["runtime"] == "onnx")
    assert onnx["sha256"] == hashlib.sha256(b"onnx-bytes-v1").hexdigest()
    # the shipped files of the same name are listed, but no longer what `--model edge` loads
    assert [r["active"] for r in rows if r["source"] == "package"] == [False] * len(before)
    assert list_models(shipped, include_bundles=False) == before

    assert main(["models", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert any(r["source"] == "bundle" and r["path"] == onnx["path"] for r in listed)
    assert main(["models", "list"]) == 0
    table = capsys.readouterr().out
    assert "bundle" in table and str(folder) in table


def test_include_torch_bundles_a_shipped_models_checkpoint_from_outside_the_package(keys,
                                                                                   tmp_path):
    from detak.models.shipped import weights_dir
    from detak.models.trained import torch_weights_file

    edge = weights_dir() / "edge"
    card = json.loads((edge / "card.json").read_text())
    weights = torch_weights_file(edge, card)
    if weights is None:
        pytest.skip("the torch checkpoints are not installed here (weights/README.md)")
    assert weights.parent != edge                      # not in the package
    plain = verify_bundle(create_bundle(edge, tmp_path / "a.tar.gz", keys[0]), keys[1])
    full = verify_bundle(create_bundle(edge, tmp_path / "b.tar.gz", keys[0],
                                       include_torch=True), keys[1])
    assert "edge.pt" not in plain.files and "edge.int8.onnx" in plain.files
    assert full.files["edge.pt"]["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()

"""Bundle distribution (docs/sync.md §7): the key kiosks pin at enrolment, a published bundle
offered in the batch answer, downloaded by a signed GET, verified and installed with the pinned
key; a bundle signed by another key is refused at publish."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from detak.export.bundle import create_bundle, generate_keypair, install_bundle
from tests.server.harness import ServerProcess
from tests.server.kiosk import Kiosk


def _model_folder(root: Path, payload: bytes) -> Path:
    m = root / "edge"
    m.mkdir(parents=True, exist_ok=True)
    (m / "card.json").write_text(json.dumps({"name": "edge", "architecture": {
        "name": "edge", "outputs": ["NORM", "MI", "STTC", "CD", "HYP"]}}))
    (m / "standardizer.json").write_text('{"mean": [0.0], "std": [0.15]}')
    (m / "edge.int8.onnx").write_bytes(payload)
    return m


def test_publish_offer_download_install(detak_server: ServerProcess, tmp_path: Path) -> None:
    priv, pub = generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    other_priv, _ = generate_keypair(tmp_path / "o.pem", tmp_path / "o.pub")
    bundle = create_bundle(_model_folder(tmp_path / "m", b"onnx v7"), tmp_path / "edge.tar.gz",
                           priv, version="7")
    r = detak_server.admin("bundle", "publish", str(bundle), check=False)
    assert r.returncode == 2 and "bundle key" in r.stderr  # no key set yet
    detak_server.admin("bundle", "key", str(pub))
    forged = create_bundle(_model_folder(tmp_path / "f", b"evil"), tmp_path / "f.tar.gz",
                           other_priv, version="8")
    r = detak_server.admin("bundle", "publish", str(forged), check=False)
    assert r.returncode == 2 and "does not verify" in r.stderr
    detak_server.admin("bundle", "publish", str(bundle))

    k = Kiosk(detak_server.url)
    enrol = k.enroll(detak_server.enrollment_code("Wisma A")).json()
    assert enrol["bundle_public_key"] == pub.read_text()  # pinned by the kiosk
    offer = k.batch([], bundle={"name": "edge", "version": "6"}).json()["bundle_offer"]
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest()
    assert offer == {"name": "edge", "version": "7", "sha256": digest,
                     "size": bundle.stat().st_size, "url": f"/api/v1/bundles/{digest}"}
    assert k.batch([], bundle={"name": "edge", "version": "7"}).json()["bundle_offer"] is None
    got = k.request("GET", offer["url"])
    assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == digest
    assert Kiosk(detak_server.url).http.get(offer["url"]).status_code == 401  # unsigned
    downloaded = tmp_path / "dl.tar.gz"
    downloaded.write_bytes(got.content)
    folder = install_bundle(downloaded, enrol["bundle_public_key"].encode(), tmp_path / "root")
    assert (folder / "edge.int8.onnx").read_bytes() == b"onnx v7"

"""A bundle offered in a sync answer (docs/sync.md §7): installed when it verifies against the
key pinned at enrolment; refused (and not fetched again) when signed by another key, the
previous bundle staying active."""

from __future__ import annotations

from pathlib import Path

from detak.export.bundle import active_bundle, create_bundle, generate_keypair
from detak.kiosk.store import Store
from detak.sync.bundles import installed_version, offer_problem
from tests.export.test_bundle import _model_folder
from tests.sync.conftest import make_client
from tests.sync.fake_server import FakeServer


def _bundle(tmp_path: Path, key: Path, version: str, payload: bytes) -> bytes:
    out = create_bundle(_model_folder(tmp_path / f"m{version}", payload), tmp_path /
                        f"edge-{version}.tar.gz", key, version=version)
    return out.read_bytes()


def test_offer_installed_with_the_pinned_key_and_the_bad_one_refused(
        enrolled: Store, server: FakeServer, bundle_keys: tuple[Path, Path],
        tmp_path: Path) -> None:
    root = tmp_path / "bundles"
    server.bundle = {"name": "edge", "version": "2",
                     "data": _bundle(tmp_path, bundle_keys[0], "2", b"onnx-v2")}
    report = make_client(enrolled, server, bundles_root=root).sync()
    assert report.bundle["installed"] is True and installed_version("edge", root) == "2"
    good = active_bundle("edge", root)
    assert (good / "edge.int8.onnx").read_bytes() == b"onnx-v2"
    # the same version again: not offered, not downloaded
    server.requests.clear()
    make_client(enrolled, server, bundles_root=root).sync()
    assert not any(p.startswith("/api/v1/bundles/") for _, p in server.requests)
    # version 3 signed by a key that is not the pinned one: refused, version 2 stays
    other, _ = generate_keypair(tmp_path / "evil.pem", tmp_path / "evil.pub")
    server.bundle = {"name": "edge", "version": "3",
                     "data": _bundle(tmp_path, other, "3", b"onnx-evil")}
    report = make_client(enrolled, server, bundles_root=root).sync()
    assert report.bundle["installed"] is False and "signature" in report.bundle["error"]
    assert active_bundle("edge", root) == good and installed_version("edge", root) == "2"
    assert report.error is None                 # screenings still sync; the run succeeded
    server.requests.clear()                     # ...and that bundle is not fetched again
    make_client(enrolled, server, bundles_root=root).sync()
    assert not any(p.startswith("/api/v1/bundles/") for _, p in server.requests)


def test_a_truncated_download_installs_nothing(enrolled: Store, server: FakeServer,
                                               bundle_keys: tuple[Path, Path],
                                               tmp_path: Path) -> None:
    import httpx

    root = tmp_path / "bundles"
    data = _bundle(tmp_path, bundle_keys[0], "2", b"onnx-v2")
    server.bundle = {"name": "edge", "version": "2", "data": data}
    original = server.handle

    def truncate(req: httpx.Request) -> httpx.Response:
        resp = original(req)
        if req.url.path.startswith("/api/v1/bundles/"):
            return httpx.Response(200, content=data[:-100])
        return resp

    report = make_client(enrolled, server, bundles_root=root,
                         transport=httpx.MockTransport(truncate)).sync()
    assert report.bundle["installed"] is False and active_bundle("edge", root) is None
    assert enrolled.sync_status()["bundle_rejected_sha256"] is None   # tried again next time
    assert not list((enrolled.root / "tmp").iterdir())                # no partial file left
    report = make_client(enrolled, server, bundles_root=root).sync()
    assert report.bundle["installed"] is True


def test_offers_pointing_elsewhere_are_refused() -> None:
    sha = "a" * 64
    ok = {"name": "edge", "version": "2", "sha256": sha, "size": 10,
          "url": f"/api/v1/bundles/{sha}"}
    assert offer_problem(ok) is None
    assert offer_problem({**ok, "url": "https://evil.example/b"})
    assert offer_problem({**ok, "url": "/api/v1/bundles/../../etc"})
    assert offer_problem({**ok, "sha256": "A" * 64, "url": "/api/v1/bundles/" + "A" * 64})
    assert offer_problem({**ok, "size": 0}) and offer_problem([])

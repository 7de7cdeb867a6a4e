"""`detak sync` and `detak sync enroll` as a user runs them (no server needed here: the
end-to-end runs against the real server are in test_end_to_end.py)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from detak.cli import main
from detak.kiosk.store import Store
from detak.sync.wire import new_private_key, private_key_pem
from tests.sync.conftest import add_screenings


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fake_enrolment(store: Store, url: str) -> None:
    (store.root / "sync-key.pem").write_bytes(private_key_pem(new_private_key()))
    (store.root / "sync-key.pem").chmod(0o600)
    store.save_enrolment(server_url=url, kiosk_id="k" * 32, key_file="sync-key.pem",
                         bundle_public_key="unused")


def test_not_enrolled_is_a_usage_error(tmp_path: Path, capsys) -> None:
    Store.open(tmp_path / "s").close()
    assert main(["sync", "--store", str(tmp_path / "s")]) == 2
    assert "detak sync enroll" in capsys.readouterr().err


def test_no_store_is_a_usage_error(capsys) -> None:
    assert main(["sync"]) == 2
    assert "--store" in capsys.readouterr().err


def test_enroll_refuses_plain_http_to_another_host(tmp_path: Path, capsys) -> None:
    code = main(["sync", "enroll", "http://192.0.2.7:8000", "c0de", "--store",
                 str(tmp_path / "s")])
    assert code == 2 and "refusing plain http://" in capsys.readouterr().err


def test_sync_refuses_plain_http_without_insecure(tmp_path: Path, capsys) -> None:
    with Store.open(tmp_path / "s") as store:
        _fake_enrolment(store, "http://192.0.2.7:8000")
    assert main(["sync", "--store", str(tmp_path / "s")]) == 2
    assert "--insecure" in capsys.readouterr().err


def test_unreachable_server_keeps_items_and_prints_the_summary(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s") as store:
        add_screenings(store, 2)
        _fake_enrolment(store, f"http://127.0.0.1:{_closed_port()}")
    env = {"DETAK_SYNC_RETRY": "base=0.01,cap=0.05,attempts=3", "PYTHONPATH":
           str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, "-m", "detak.cli", "sync", "--store",
                           str(tmp_path / "s")], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 1
    assert proc.stdout.strip().splitlines()[-1] == "synced 0, pending 2, failed 0"
    assert "no answer after 3 attempt" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "detak.cli", "sync", "--store",
                           str(tmp_path / "s"), "--json"], capture_output=True, text=True,
                          env=env, timeout=120)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (out["synced"], out["pending"], out["failed"], out["server_ids"]) == (0, 2, 0, {})
    with Store.open(tmp_path / "s") as store:
        assert "ConnectError" in store.sync_status()["last_error"]


def test_an_enrolment_code_beginning_with_a_dash_is_the_code(tmp_path: Path,
                                                             monkeypatch) -> None:
    # one code in 64 begins with "-" (URL-safe base64); argparse alone takes it for an option
    seen = {}

    def fake_enroll(store, url, code, insecure=False):  # noqa: ANN001, ANN202
        seen.update(store=store, url=url, code=code, insecure=insecure)
        return {"kiosk_id": "k", "server_url": url, "facility": {}, "bundle_key_pinned": True}

    import detak.sync.enroll

    monkeypatch.setattr(detak.sync.enroll, "enroll", fake_enroll)
    assert main(["sync", "enroll", "http://127.0.0.1:1", "-ZSDYh3Cmz6yeOoQ", "--store",
                 str(tmp_path / "s")]) == 0
    assert seen == {"store": str(tmp_path / "s"), "url": "http://127.0.0.1:1",
                    "code": "-ZSDYh3Cmz6yeOoQ", "insecure": False}

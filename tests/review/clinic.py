"""A clinic for the review tests: real PostgreSQL, a real ``detak server``, and a real kiosk
store whose screenings were made by ``detak screen`` and sent by ``detak sync``.

Facilities ``Wisma A`` (the kiosk's) and ``Wisma B``; doctors ``Ana`` and ``Budi`` (Wisma A),
``Citra`` (Wisma B only; invented names); nurse ``nurse-a`` (Wisma A). Every password is `PASSWORD`.
Resident ``R-0007`` ("Siti Contoh", invented) has two screenings (history), one more screening
has no resident (an anterior MI: "refer today").
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.server.harness import DETAK, REPO, ServerProcess
from tests.sync.e2e import enroll_cli, run_sync, sync_env

PASSWORD = "correct horse battery staple"
DOCTORS = {"Ana": "Wisma A", "Budi": "Wisma A", "Citra": "Wisma B"}


@dataclass
class Clinic:
    server: ServerProcess
    store: Path
    env: dict

    def sync(self) -> dict:
        code, obj, err = run_sync(self.store, self.env)
        assert code == 0 and obj is not None, err
        return obj


def _detak(*args: str, env: dict) -> str:
    done = subprocess.run(DETAK + list(args), env=env, capture_output=True, text=True, cwd=REPO,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def make_clinic(server: ServerProcess, store: Path) -> Clinic:
    srv = server
    for fac in ("Wisma A", "Wisma B"):
        srv.admin("facility", "add", fac)
    for name, fac in DOCTORS.items():
        srv.admin("create-user", "--role", "doctor", "--name", name, "--facility", fac,
                  input=PASSWORD + "\n")
    srv.admin("create-user", "--role", "nurse", "--name", "nurse-a", "--facility", "Wisma A",
              input=PASSWORD + "\n")
    env = sync_env()
    _detak("store", "add-resident", "--store", str(store), "--number", "R-0007", "--name",
           "Siti Contoh", "--sex", "F", env=env)
    for src, resident in (("ptbxl://1", "R-0007"), ("sample://ptbxl-00286", "R-0007"),
                          ("sample://ptbxl-00600", None)):
        _detak("screen", src, "--store", str(store), "--lang", "en",
               *(("--resident", resident) if resident else ()), env=env)
    enroll_cli(store, srv.url, srv.enrollment_code("Wisma A"), env)
    clinic = Clinic(srv, store, env)
    obj = clinic.sync()
    assert obj["pending"] == 0, obj
    return clinic

"""A real ``detak kiosk`` process on a free loopback port, for the app and browser tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_kiosk(store: Path, *extra: str, timeout: float = 60.0) -> Iterator[tuple[str, dict]]:
    """Start ``detak kiosk --store STORE --port P EXTRA...``; yield (base URL, /healthz JSON);
    stop it at the end (SIGTERM, then SIGKILL after 10 s)."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    log = open(store.parent / f"kiosk-{port}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "detak.cli", "kiosk", "--store", str(store),
                             "--port", str(port), *extra], stdout=log, stderr=subprocess.STDOUT,
                            env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline, health = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"detak kiosk exited {proc.returncode}: "
                                     + (store.parent / f"kiosk-{port}.log").read_text())
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                    health = json.loads(r.read())
                    break
            except OSError:
                time.sleep(0.2)
        assert health is not None, "detak kiosk did not answer /healthz in time"
        yield base, health
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()

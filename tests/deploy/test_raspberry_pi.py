"""deploy/raspberry-pi/ (issue 14 item 7): the shell scripts parse (bash -n, shellcheck when
installed), the systemd unit verifies (systemd-analyze, when installed) and keeps the issue's
contract and serial/BLE access, the udev rule covers the common USB-serial chips, the Chromium
launcher waits for /healthz, and install.sh merges the wayfire settings without losing lines."""

import http.server
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

PI = Path(__file__).resolve().parents[2] / "deploy" / "raspberry-pi"
SCRIPTS = ["install.sh", "detak-chromium-kiosk", "labwc-autostart"]
UNIT = PI / "detak-kiosk.service"


@pytest.mark.parametrize("name", SCRIPTS)
def test_scripts_parse(name):
    proc = subprocess.run(["bash", "-n", str(PI / name)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck not installed "
                    "(apt-get install shellcheck)")
def test_scripts_are_shellcheck_clean():
    proc = subprocess.run(["shellcheck", "-s", "bash", *(str(PI / n) for n in SCRIPTS)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_unit_verifies(tmp_path):
    """systemd-analyze verify needs ExecStart's program to exist: point it at a stand-in.
    Unknown or invalid settings only warn (exit 0), so the output must be clean too."""
    fake = tmp_path / "detak"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace("/opt/detak/venv/bin/detak", str(fake)))
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    noise = [ln for ln in proc.stderr.splitlines() if str(unit) in ln or "Unknown" in ln]
    assert not noise, proc.stderr
    bad = tmp_path / "bad.service"
    bad.write_text(unit.read_text().replace("NoNewPrivileges=", "NoNewPrivilegez="))
    proc = subprocess.run(["systemd-analyze", "verify", str(bad)], capture_output=True, text=True)
    assert "Unknown key" in proc.stderr  # the check above can fail


def unit_settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            k, v = line.split("=", 1)
            out.setdefault(k, []).append(v)
    return out


def test_unit_runs_the_kiosk_contract_and_keeps_serial_and_ble():
    s = unit_settings()
    assert re.match(r"/opt/detak/venv/bin/detak kiosk --store /var/lib/detak/store --port 8080",
                    s["ExecStart"][0])
    assert s["User"] == ["detak"] and s["Restart"] == ["on-failure"]
    assert set(s["SupplementaryGroups"][0].split()) == {"dialout", "bluetooth"}
    assert "AF_UNIX" in s["RestrictAddressFamilies"][0]  # bleak -> BlueZ over D-Bus
    assert {"char-ttyUSB rw", "char-ttyACM rw"} <= set(s["DeviceAllow"])
    for breaks in ("PrivateDevices", "PrivateUsers", "IPAddressDeny"):
        assert breaks not in s, f"{breaks}= would cut serial, BLE groups or sync"
    assert s["StateDirectoryMode"] == ["0700"]


def test_udev_rule_covers_ftdi_ch340_cp210x():
    text = (PI / "99-detak-ecg.rules").read_text()
    ids = set(re.findall(r'idVendor}=="(\w{4})", ATTRS{idProduct}=="(\w{4})"', text))
    assert {("0403", "6001"), ("0403", "6015"), ("1a86", "7523"), ("10c4", "ea60")} <= ids
    assert 'GROUP="dialout"' in text and 'SYMLINK+="detak-ecg"' in text


class _Health(http.server.BaseHTTPRequestHandler):
    ready_after = 3
    hits = 0

    def do_GET(self):  # noqa: N802
        type(self).hits += 1
        if self.path == "/healthz" and type(self).hits > self.ready_after:
            body = b'{"status": "ok", "store": "/s"}'
            self.send_response(200)
        else:
            body = b'{"status": "starting"}'
            self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def test_chromium_starts_once_healthz_answers_ok(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    # a stand-in browser: record the arguments, then stop the launcher's restart loop
    (bin_ / "chromium").write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/args\nkill $PPID\n')
    (bin_ / "chromium").chmod(0o755)
    for tool in ("curl", "grep", "sleep", "logger", "python3", "cat"):
        if shutil.which(tool):
            (bin_ / tool).symlink_to(shutil.which(tool))
    env = dict(os.environ, PATH=str(bin_), DETAK_URL=url, DETAK_WAIT="30")
    try:
        subprocess.run([shutil.which("bash"), str(PI / "detak-chromium-kiosk")], env=env,
                       timeout=60)
    finally:
        server.shutdown()
    args = (tmp_path / "args").read_text()
    assert _Health.hits > _Health.ready_after  # it waited for the ok answer
    assert "--kiosk" in args and args.strip().endswith(url + "/")


def test_install_merges_wayfire_settings(tmp_path):
    """ini_set, taken from install.sh, sets keys inside existing sections and adds missing
    sections, keeping the user's other lines."""
    src = (PI / "install.sh").read_text()
    func = re.search(r"^ini_set\(\) \{.*?^\}", src, re.S | re.M).group(0)
    ini = tmp_path / "wayfire.ini"
    ini.write_text("[core]\nplugins = a b\n\n[autostart]\npanel = wfrespawn wf-panel-pi\n"
                   "other = x\n[output:HDMI-A-1]\nmode = 1024x600\n")
    script = (func + f"\nini_set {ini} autostart detak /usr/local/bin/detak-chromium-kiosk"
              f"\nini_set {ini} autostart panel true\nini_set {ini} idle dpms_timeout -1\n")
    subprocess.run(["bash", "-c", script], check=True)
    text = ini.read_text()
    auto = text.split("[autostart]")[1].split("[output")[0]
    assert "detak = /usr/local/bin/detak-chromium-kiosk" in auto
    assert "panel = true" in auto and "wf-panel-pi" not in text and "other = x" in auto
    assert "plugins = a b" in text and "mode = 1024x600" in text
    assert text.rstrip().endswith("[idle]\ndpms_timeout = -1")


@pytest.mark.parametrize("args, message", [
    (["--frobnicate"], "unknown argument '--frobnicate'"),
    (["--source", "./no-such.whl"], "--source ./no-such.whl: no such file or folder"),
    (["--bundle", "{tmp}/b.tar.gz"], "--bundle needs --public-key"),
    (["--bundle", "{tmp}/missing.tar.gz", "--public-key", "{tmp}/k.pub"], "not found"),
])
def test_install_refuses_bad_arguments_before_changing_anything(tmp_path, args, message):
    (tmp_path / "b.tar.gz").write_bytes(b"x")
    stage = tmp_path / "stage"
    env = dict(os.environ, DESTDIR=str(stage))
    proc = subprocess.run([shutil.which("bash"), str(PI / "install.sh"),
                           *(a.format(tmp=tmp_path) for a in args)],
                          env=env, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert not stage.exists()

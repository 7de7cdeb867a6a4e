"""``detak calibrate`` (detak/device/calibrate_cli.py) against the virtual device."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from detak.calibration.profile import ProfileError, load_profile
from detak.device.calibrate_cli import main


def test_bad_arguments_are_named(tmp_path, capsys) -> None:
    for argv, message in [
        (["emu://ludb/1?speed=0", "--lead-map", "CH1", "--out", str(tmp_path / "p.toml")],
         "detak calibrate: error: lead map item 'CH1' is not CHANNEL=LEAD"),
        (["emu://ludb/1?gian=2"], "detak calibrate: error: .*unknown parameter 'gian'"),
        (["emu://ludb/1?speed=0", "--seconds", "0"], r"detak calibrate: error: seconds \(0.0\)"),
    ]:
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "Traceback" not in err and re.search(message, err.strip().splitlines()[-1])
    assert not (tmp_path / "p.toml").exists()


def test_calibrate_writes_the_profile_and_prints_its_path_last(tmp_path, capsys,
                                                               monkeypatch) -> None:
    monkeypatch.setenv("DETAK_PROFILES", str(tmp_path))
    assert main(["emu://ludb/1?speed=0&gain=0.8&offset=12", "--seconds", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    path = Path(lines[-1])
    assert path == tmp_path / "detak-emu-ludb-1.toml"
    assert any(line.split()[:2] == ["II", "0.8000"] for line in lines)
    assert "speed 0, not in real time" in "\n".join(lines)
    p = load_profile(path)
    assert p.model == "detak-emu" and p.serial == "ludb-1" and p.driver == "bridge"
    assert p.channels["V4"].gain == pytest.approx(1.25) and p.channels["V4"].offset == 12.0
    assert p.notes["url"] == "emu://ludb/1?speed=0&gain=0.8&offset=12"


def test_record_with_the_profile_undoes_the_devices_miscalibration(tmp_path, capsys,
                                                                  monkeypatch) -> None:
    """calibrate a miscalibrated virtual device, then `detak record --profile` gives back the
    source record (PTB-XL 1) within 1 µV, and so does plain `detak record` (it finds the saved
    profile); with --no-profile it is > 20 µV off."""
    import numpy as np

    from detak.data.ptbxl import open_ptbxl
    from detak.data.wfdb_io import read_wfdb
    from detak.device.cli import _cmd_record, build_parser

    monkeypatch.setenv("DETAK_PROFILES", str(tmp_path))
    url = "emu://ptbxl/1?speed=0&gain=1.05&offset=30"
    assert main([url + "&pulse=1", "--seconds", "1"]) == 0
    profile = capsys.readouterr().out.strip().splitlines()[-1]
    src = open_ptbxl().record(1).signal
    out = {}
    for tag, extra in (("raw", ["--no-profile"]), ("cal", ["--profile", profile]),
                       ("saved", [])):
        args = build_parser().parse_args(
            ["record", url, "--seconds", "10", "--out", str(tmp_path / tag), *extra])
        assert _cmd_record(args) == 0
        path = capsys.readouterr().out.strip().splitlines()[-1]
        out[tag] = read_wfdb(path).signal
    assert np.abs(out["cal"] - src).max() < 1.5e-3    # 1 LSB (1 µV) + rounding
    assert np.array_equal(out["saved"], out["cal"])
    assert np.abs(out["raw"] - src).max() > 0.02    # 5 % gain, 30 µV offset
    with pytest.raises(ProfileError, match="profile .*nope.toml"):
        _cmd_record(build_parser().parse_args(
            ["record", url, "--seconds", "1", "--out", str(tmp_path), "--profile",
             str(tmp_path / "nope.toml")]))

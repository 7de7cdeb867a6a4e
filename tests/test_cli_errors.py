"""Every `detak` sub-command × a set of bad inputs: one line on stderr naming the file and the
problem, the documented exit code, never a traceback (issue 13, items 3 and 4).

The exit rule (README, `detak --help`): 0 = every source analysed, 1 = a source was rejected or
failed (named on stderr), 2 = usage error. The bad inputs are invented in ``tmp_path``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from detak.cli import main

LEADS_12 = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
SAMPLES = Path(__file__).resolve().parents[1] / "detak" / "data" / "sample_records"


def _csv(path: Path, leads: list[str], seconds: float, *, fs: int = 500, all_nan: bool = False,
         text_cell: bool = False) -> str:
    """An invented ECG-like CSV: a 1.2 Hz spike train plus noise, optionally broken."""
    rng = np.random.default_rng(len(leads) + int(seconds * 10))
    n = int(seconds * fs)
    t = np.arange(n) / fs
    beat = np.exp(-(((t % (1 / 1.2)) - 0.3) ** 2) / (2 * 0.01 ** 2))
    x = beat[None, :] * np.linspace(0.5, 1.5, len(leads))[:, None]
    x = x + 0.02 * rng.standard_normal((len(leads), n))
    if all_nan:  # no sample at all: bad even where short gaps are analysed (issue 13 item 2)
        x[:, :] = np.nan
    rows = [",".join("nan" if np.isnan(v) else f"{v:.4f}" for v in col) for col in x.T]
    if text_cell:
        rows[5] = "abc" + rows[5][rows[5].index(","):]
    path.write_text(f"# fs={fs}\n" + ",".join(leads) + "\n" + "\n".join(rows) + "\n")
    return str(path)


def _bad_inputs(d: Path) -> dict[str, str]:
    (d / "empty.csv").write_text("")
    (d / "header_only.csv").write_text("# fs=500\n" + ",".join(LEADS_12) + "\n")
    shutil.copy(SAMPLES / "ludb-1.hea", d / "no_dat.hea")  # names ludb-1.dat, not copied
    (d / "no_records").mkdir()
    (d / "cases_text_cell.csv").write_text("rr_ms,pr_ms,qrs_ms,qt_ms,qtc_bazett_ms,st_ms,"
                                           "rs_ratio,hr_bpm,label\n"
                                           "850,160,abc,390,420,100,1,70,Normal\n")
    return {
        "cases_text_cell": str(d / "cases_text_cell.csv"),
        "empty": str(d / "empty.csv"),
        "header_only": str(d / "header_only.csv"),
        "text_cell": _csv(d / "text_cell.csv", LEADS_12, 10, text_cell=True),
        "no_dat": str(d / "no_dat.hea"),
        "half_second": _csv(d / "half_second.csv", LEADS_12, 0.5),
        "nans": _csv(d / "nans.csv", LEADS_12, 10, all_nan=True),
        "three_leads": _csv(d / "three_leads.csv", ["I", "II", "V1"], 10),
        "scheme": "nosuch://1",
        "no_records": str(d / "no_records"),
        "missing": str(d / "does_not_exist.hea"),
    }


# what the last stderr line must say about each bad input (besides the file's name)
PROBLEM = {
    "empty": r"empty",
    "header_only": r"no data rows|no rows|missing",
    "text_cell": r"'abc'",
    "no_dat": r"ludb-1\.dat",
    "half_second": r"0\.5|short",
    "nans": r"NaN|gap|missing samples",
    "three_leads": r"lead",
    "scheme": r"unknown source|unknown dataset",
    "no_records": r"no WFDB records|no records",
    "missing": r"no such|not found|does not exist",
}

# cases whose problem is in the recording's content (a reader accepts the file)
CONTENT = {"half_second", "nans", "three_leads"}
READ = set(PROBLEM) - CONTENT


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> dict[str, str]:
    return _bad_inputs(tmp_path_factory.mktemp("bad"))


@pytest.fixture(scope="module")
def interval_model(tmp_path_factory) -> str:
    """A naive-Bayes interval model trained on invented cases (for `detak classify`)."""
    from detak.models.tabular_cli import tabular_train

    d = tmp_path_factory.mktemp("nb")
    rng = np.random.default_rng(0)
    keys = ["rr_ms", "pr_ms", "qrs_ms", "qt_ms", "qtc_bazett_ms", "st_ms", "rs_ratio", "hr_bpm"]
    rows = [",".join([*keys, "label"])]
    for i in range(40):
        v = rng.normal([850, 160, 95, 390, 420, 100, 1.0, 70], [80, 20, 10, 20, 20, 15, .3, 8])
        rows.append(",".join(f"{x:.2f}" for x in v) + ("," + ("Normal", "Abnormal")[i % 2]))
    (d / "cases.csv").write_text("\n".join(rows) + "\n")
    assert tabular_train(str(d / "cases.csv"), "nb", 2, d / "model", json_out=False) == 0
    return str(d / "model")


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def _commands(tmp: Path, model: str) -> dict[str, tuple[list[str], set[str]]]:
    """command -> (argv with {src} for the bad input, the cases it is tested on)."""
    out = str(tmp / "out")
    return {
        "intervals": (["intervals", "{src}"], set(PROBLEM) - {"three_leads"}),
        "quality": (["quality", "{src}"], set(PROBLEM) - {"three_leads"}),
        "rhythm": (["rhythm", "{src}"], set(PROBLEM) - {"three_leads"}),
        "rules": (["rules", "{src}"], set(PROBLEM) - {"three_leads"}),
        "plot": (["plot", "{src}", "--out", out + ".png"], set(PROBLEM) - {"three_leads"}),
        "convert": (["convert", "{src}", out + ".csv"], READ),
        "classify": (["classify", "{src}", "--model", model], set(PROBLEM) - {"three_leads"}),
        "predict": (["predict", "{src}", "--model", "edge", "--out", out + ".csv"], set(PROBLEM)),
        "explain": (["explain", "{src}", "--model", "edge", "--no-plot", "--out", out],
                    set(PROBLEM)),
        "evaluate": (["evaluate", "--model", "edge", "--boot", "10", "--source", "{src}"],
                     {"empty", "scheme", "missing", "no_records"}),
        "tabular": (["tabular", "evaluate", "--model", "nb", "--cv", "2", "--dataset", "{src}"],
                    {"empty", "header_only", "text_cell", "missing"}),
    }


CASES = [(cmd, case) for cmd in ("intervals", "quality", "rhythm", "rules", "plot", "convert",
                                 "classify", "predict", "explain", "evaluate", "tabular")
         for case in PROBLEM]


@pytest.mark.parametrize(("command", "case"), CASES)
def test_bad_input_is_one_named_line(command, case, bad, interval_model, tmp_path, capsys):
    argv, cases = _commands(tmp_path, interval_model)[command]
    if case not in cases:
        pytest.skip(f"{case} is not a bad input for `detak {command}`")
    src = bad["cases_" + case] if command == "tabular" and case == "text_cell" else bad[case]
    code, out, err = _run([a.replace("{src}", src) for a in argv], capsys)
    assert code == 1, (code, err)
    assert "Traceback" not in out + err
    last = err.strip().splitlines()[-1] if err.strip() else ""
    assert last.startswith(f"detak {command}"), err
    name = src if "://" in src else Path(src).stem
    assert name in last, f"{name!r} not named in {last!r}"
    problem = r"PTB-XL" if command == "evaluate" else PROBLEM[case]  # labelled sources only
    assert re.search(problem, last), f"{problem!r} not in {last!r}"
    assert "unexpected" not in last, last  # a named error, not the catch-all


# --- commands without a recording SOURCE: their file/argument errors fail early -----------------

def test_file_and_argument_errors_of_the_other_commands(bad, tmp_path, capsys):
    empty_dir = bad["no_records"]
    missing = bad["missing"]
    key = tmp_path / "key.pub"
    assert main(["bundle", "keygen", "--private", str(tmp_path / "key.pem"), "--public",
                 str(key)]) == 0
    cases = [  # (argv, exit code, what the last line names)
        (["train", "--model", "edge", "--resume", "--out", empty_dir], 1, "checkpoint"),
        (["models", "info", missing], 2, "does_not_exist"),
        (["export", "onnx", "--source", empty_dir], 2, "no_records"),
        (["bundle", "verify", bad["empty"], "--public-key", str(key)], 2, "empty"),
        (["bundle", "verify", missing, "--public-key", missing], 2, "does_not_exist"),
        (["record", "--recover", missing], 1, "does_not_exist"),
        (["record", "nosuch://1", "--seconds", "1", "--out", str(tmp_path)], 1, "nosuch://1"),
        (["replay", "nosuch://1", "--seconds", "1"], 1, "nosuch://1"),
        (["calibrate", "nosuch://1", "--out", str(tmp_path / "p.toml")], 1, "nosuch://1"),
        (["evaluate", "--model", "edge", "--boot", "10", "--source", "ptbxl://8"], 1,
         "ptbxl://8"),
        (["evaluate", "--model", "edge", "--boot", "10", "--source", "ludb://1"], 1,
         "ludb://1"),
    ]
    for argv, want, named in cases:
        code, out, err = _run(argv, capsys)
        assert code == want, (argv, code, err)
        assert "Traceback" not in out + err, argv
        last = err.strip().splitlines()[-1]
        assert last.startswith(f"detak {argv[0]}") and named in last, (argv, last)
        assert "unexpected" not in last, last


# --- the exit rule: 0 all analysed, 1 some rejected or failed, 2 usage -------------------------

@pytest.mark.parametrize("command", ["intervals", "quality", "rhythm", "rules", "plot"])
def test_exit_rule_per_source(command, bad, tmp_path, capsys):
    extra = ["--out", str(tmp_path)] if command == "plot" else []
    code, out, err = _run([command, "sample://ludb-1", *extra], capsys)
    assert code == 0, err
    # a rejected recording (0.5 s) beside a good one: both reported, exit 1, the bad one named
    code, out, err = _run([command, "sample://ludb-1", bad["half_second"], *extra], capsys)
    assert code == 1, err
    assert "half_second" in err.strip().splitlines()[-1] and "Traceback" not in err
    if command in {"intervals", "quality", "rhythm"}:
        objs = [__import__("json").loads(ln) for ln in out.splitlines()]
        assert len(objs) == 2 and objs[0]["source"] == "sample://ludb-1"


def test_usage_errors_exit_2(tmp_path, capsys):
    for argv in (["intervals"], ["quality", "--nope", "x"], ["rules", "x.csv", "--ruleset",
                                                             "nope"],
                 ["record", "--seconds", "1"], ["explain", "x.csv", "--model", "edge",
                                                "--method", "nope", "--out", str(tmp_path)]):
        code, out, err = _run(argv, capsys)
        assert code == 2, (argv, code, err)
        assert "Traceback" not in err


def test_help_states_the_exit_rule(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "exit status" in out.lower() and "0" in out and "usage error" in out


def test_debug_shows_the_traceback(bad, capsys):
    with pytest.raises(Exception, match="empty"):
        main(["--debug", "convert", bad["empty"], "x.csv"])

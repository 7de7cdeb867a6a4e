"""Do the int8 edge model's outputs on an (emulated) Raspberry Pi equal the x86 ones? (issue 14
item 7b)

ARM int8 kernels are not x86's (onnxruntime's MLAS and LiteRT's XNNPACK/ruy pick other code
paths), so the kiosk's numbers could differ from the ones the model card was measured with.
This runs the same ``detak predict`` on PTB-XL fold 9 (never used for training) on this machine
and on aarch64 CPython 3.11 under qemu-user (``../shared/tools/arm64/setup.sh``: the kiosk's
aarch64 wheels, a Pi 4 /proc/cpuinfo) — with the fused Grad-CAM maps — and compares:

* max |Δp| over the five superclass probabilities (the CSV keeps 6 decimals, so a difference
  below 1e-6 reads as 0 or 1e-6); the requirement is ≤ 1e-3;
* the CAM: max |Δ| of the MI map and the top-class map, how often the top class and the CAM's
  peak sample agree;
* the rest of the screening that exists today — validation, the quality gate and the interval
  measurement (neurokit2, SciPy) — through ``detak intervals`` on a few records
  (``--interval-sources``; default the bundled sample and LUDB 1–10): every number and string
  of its JSON compared (`compare_json`).

The runtimes pick their int8 kernels from the CPU features the kernel reports (HWCAP), not
from /proc/cpuinfo, and qemu's default CPU ("max") reports the dot-product instructions (and
more) that a Pi 4 lacks. So the aarch64 side runs once per emulated CPU model (``QEMU_CPU``):
``cortex-a72`` (the Pi 4's core: no SDOT/UDOT, the widening-multiply kernels) and
``cortex-a76`` (the Pi 5's: SDOT/UDOT kernels); ``--qemu-cpus`` picks, and the HWCAP the side
saw is printed.

Runtimes: ``onnx`` (the kiosk's default for the edge model) and ``tflite`` (LiteRT int8);
``--runtimes`` picks. Records: all of fold 9 (2,183; about 3 min under emulation here for each
CPU model and runtime) or, with ``--records N``, N fold-9 records drawn with ``--seed`` (numpy
default_rng, sorted ecg_ids). Needs root for the emulation (a private mount namespace);
emulation says nothing about speed. Writes ``docs/results/arm64_equality.md``::

    python benchmarks/arm64_equality.py --arm64-dir /tmp/arm64   # all of fold 9: ~12 min
    python benchmarks/arm64_equality.py --records 200 --runtimes onnx --qemu-cpus cortex-a72

>>> import numpy as np, pandas as pd
>>> t = pd.DataFrame({"record": [1, 2], "NORM": [.5, .2], "MI": [.1, .7], "STTC": [0., 0.],
...                   "CD": [0., 0.], "HYP": [0., 0.]})
>>> u = t.copy(); u.loc[1, "MI"] = .7004
>>> cam = {"cam_mi": np.eye(2, 4, dtype="float32"), "cam_top": np.eye(2, 4, dtype="float32"),
...        "top_class": np.array(["NORM", "MI"])}
>>> r = compare(t, u, cam, cam)
>>> round(r["max_dp"], 6), r["over_1e-3"], r["max_dcam"], r["top_class_agree"]
(0.0004, 0, 0.0, 1.0)
>>> compare_json([{"hr": 60.0, "q": "ok", "l": [1, float("nan")]}],
...              [{"hr": 60.5, "q": "ok", "l": [1, float("nan")]}])
{'values': 4, 'differ': 1, 'text_differ': 0, 'max_abs': 0.5, 'first': 'hr: 60.0 vs 60.5'}
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _provenance import provenance, provenance_line
from readme_tables import RESULTS, write_results

REPO = Path(__file__).resolve().parents[1]
SETUP = REPO.parent / "shared" / "tools" / "arm64" / "setup.sh"
CLASSES = ("NORM", "MI", "STTC", "CD", "HYP")
INTERVAL_SOURCES = ("sample://ptbxl-00286", *(f"ludb://{i}" for i in range(1, 11)))
TOLERANCE = 1e-3
LIBRARIES = ("onnxruntime", "ai-edge-litert", "numpy", "scipy", "pandas")
_PREDICT = ("import sys; from detak.cli import main; sys.argv = ['detak'] + sys.argv[1:]; "
            "sys.exit(main())")
_VERSIONS = ("import json, platform, sys; from importlib import metadata; import detak\n"
             "v = {'python': platform.python_version(), 'machine': platform.machine(), "
             "'detak': detak.__version__}\n"
             "import ctypes; aux = ctypes.CDLL(None).getauxval; aux.restype = ctypes.c_ulong\n"
             "if platform.machine() == 'aarch64':\n"
             "    v['dot product (HWCAP asimddp)'] = str(bool(aux(16) >> 20 & 1))\n"
             "for n in sys.argv[1:]:\n"
             "    try: v[n] = metadata.version(n)\n"
             "    except metadata.PackageNotFoundError: v[n] = 'not installed'\n"
             "print(json.dumps(v))")


def fold9_subset(n: int, seed: int) -> list[str]:
    """``ptbxl://fold9`` when ``n`` is 0, else ``n`` fold-9 records drawn with ``seed``."""
    if n <= 0:
        return ["ptbxl://fold9"]
    from detak.data.sources import _ptbxl

    ids = _ptbxl().fold_ids(9)
    pick = np.sort(np.random.default_rng(seed).choice(ids, size=min(n, len(ids)), replace=False))
    return [f"ptbxl://{int(i)}" for i in pick]


def predict_args(sources: list[str], runtime: str, out: Path) -> list[str]:
    """The ``detak predict`` arguments of one side (int8, CAM maps, one job)."""
    return [*sources, "--model", "edge", "--runtime", runtime, "--precision", "int8",
            "--out", str(out / "p.csv"), "--cam", str(out / "cam.npz"), "--jobs", "1"]


def side_env(qemu_cpu: str | None = None) -> dict[str, str]:
    """The environment of one side: this checkout first; ``QEMU_CPU`` for an emulated one."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("DETAK_PROGRESS", None)
    env.pop("QEMU_CPU", None)
    if qemu_cpu:
        env["QEMU_CPU"] = qemu_cpu
    return env


def run_side(python: list[str], args: list[str], out: Path, env: dict[str, str]) -> float:
    """Run ``detak predict ARGS`` with interpreter command ``python``; wall seconds."""
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.run([*python, "-c", _PREDICT, "predict", *args], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(python[:1])} predict failed ({proc.returncode}):\n"
                           + proc.stderr[-3000:])
    return time.perf_counter() - t0


def side_versions(python: list[str], env: dict[str, str]) -> dict[str, str]:
    """Library versions as that interpreter sees them (and, on aarch64, the dot product)."""
    proc = subprocess.run([*python, "-c", _VERSIONS, *LIBRARIES], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare(a: pd.DataFrame, b: pd.DataFrame, cam_a: Any, cam_b: Any) -> dict[str, Any]:
    """Probability and CAM agreement of two ``detak predict`` results on the same records."""
    if list(a["record"]) != list(b["record"]):
        raise ValueError("the two sides predicted different records")
    dp = np.abs(a.loc[:, list(CLASSES)].to_numpy(float) - b.loc[:, list(CLASSES)].to_numpy(float))
    per_record = dp.max(axis=1)
    dcam = max(float(np.abs(np.asarray(cam_a[k], float) - np.asarray(cam_b[k], float)).max())
               for k in ("cam_mi", "cam_top"))
    peaks = np.asarray(cam_a["cam_mi"]).argmax(axis=1) == np.asarray(cam_b["cam_mi"]).argmax(axis=1)
    return {"records": int(len(a)), "max_dp": float(dp.max()),
            "worst_record": str(a["record"].iloc[int(per_record.argmax())]),
            "over_1e-3": int((per_record > TOLERANCE).sum()),
            "max_dcam": dcam,
            "top_class_agree": float(np.mean(np.asarray(cam_a["top_class"])
                                             == np.asarray(cam_b["top_class"]))),
            "cam_peak_agree": float(peaks.mean())}


def _flatten(obj: Any, path: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        return {k: v for key, val in obj.items()
                for k, v in _flatten(val, f"{path}.{key}" if path else str(key)).items()}
    if isinstance(obj, list):
        return {k: v for i, val in enumerate(obj) for k, v in _flatten(val, f"{path}[{i}]").items()}
    return {path: obj}


def compare_json(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, Any]:
    """Leaf-by-leaf comparison of two lists of JSON objects: leaves compared, leaves that
    differ (NaN equals NaN), of which not numbers (``text_differ``), the largest numeric
    difference and the first difference."""
    if len(a) != len(b):
        raise ValueError(f"{len(a)} results against {len(b)}")
    values = differ = text_differ = 0
    max_abs, first = 0.0, None
    for x, y in zip(a, b, strict=True):
        fx, fy = _flatten(x), _flatten(y)
        for key in sorted(set(fx) | set(fy)):
            u, v = fx.get(key, "<missing>"), fy.get(key, "<missing>")
            values += 1
            numeric = all(isinstance(t, int | float) and not isinstance(t, bool) for t in (u, v))
            if numeric and (u == v or (math.isnan(u) and math.isnan(v))):
                continue
            if not numeric and u == v:
                continue
            differ += 1
            if numeric:
                max_abs = max(max_abs, abs(u - v))
            else:
                text_differ += 1
            first = first or f"{key}: {u} vs {v}"
    return {"values": values, "differ": differ, "text_differ": text_differ,
            "max_abs": max_abs, "first": first}


def run_intervals(python: list[str], sources: list[str], env: dict[str, str]
                  ) -> tuple[list[dict[str, Any]], float]:
    """``detak intervals SOURCES --jobs 1`` on one side: the JSON objects and wall seconds.
    Exit 1 (a rejected source) still prints its object; 2 or more is a failure."""
    t0 = time.perf_counter()
    proc = subprocess.run([*python, "-c", _PREDICT, "intervals", *sources, "--jobs", "1"],
                          env=env, capture_output=True, text=True)
    if proc.returncode > 1 or not proc.stdout.strip():
        raise RuntimeError(f"intervals failed ({proc.returncode}):\n" + proc.stderr[-3000:])
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return rows, time.perf_counter() - t0


def intervals_table(rows: list[dict[str, Any]]) -> str:
    """The Markdown table of the ``detak intervals`` comparisons."""
    out = ["| stages (detak intervals) | emulated core | records | JSON values compared "
           "| values that differ | max \\|Δ\\| | aarch64 (emulated) | x86 |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| validation, quality, intervals | {r['cpu']} | {r['records']} "
                   f"| {r['values']:,} | {r['differ']} | {r['max_abs']:.1e} | {r['arm_s']:.0f} s "
                   f"| {r['x86_s']:.0f} s |")
    return "\n".join(out)


def table(rows: list[dict[str, Any]]) -> str:
    """The Markdown table of the comparisons."""
    out = ["| runtime (int8) | emulated core | records | max \\|Δp\\| "
           "| records with \\|Δp\\| > 1e-3 | max \\|ΔCAM\\| | same top class "
           "| same MI-CAM peak | aarch64 (emulated) | x86 |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['runtime']} | {r['cpu']} | {r['records']:,} | {r['max_dp']:.1e} "
                   f"| {r['over_1e-3']} | {r['max_dcam']:.1e} "
                   f"| {100 * r['top_class_agree']:.1f} % | {100 * r['cam_peak_agree']:.1f} % "
                   f"| {r['arm_s']:.0f} s | {r['x86_s']:.0f} s |")
    return "\n".join(out)


CPU_NOTES = {"cortex-a72": "cortex-a72 (Pi 4, no dot product)",
             "cortex-a76": "cortex-a76 (Pi 5, dot product)"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arm64-dir", type=Path, default=Path("/tmp/arm64"),
                    help="the emulated Pi (built with --setup-script when run.sh is missing)")
    ap.add_argument("--setup-script", type=Path, default=SETUP)
    ap.add_argument("--records", type=int, default=0, help="0 (default): all of fold 9")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runtimes", nargs="+", choices=["onnx", "tflite"],
                    default=["onnx", "tflite"])
    ap.add_argument("--qemu-cpus", nargs="+", default=["cortex-a72", "cortex-a76"],
                    metavar="MODEL", help="qemu CPU models for the aarch64 side "
                    "(default: cortex-a72 cortex-a76; see qemu-aarch64-static -cpu help)")
    ap.add_argument("--interval-sources", nargs="*", default=list(INTERVAL_SOURCES),
                    metavar="SOURCE", help="records for the detak intervals comparison "
                    "(default: the bundled sample and LUDB 1-10; none: skip it)")
    ap.add_argument("--out", type=Path, default=RESULTS / "arm64_equality.md")
    args = ap.parse_args(argv)

    run_sh = args.arm64_dir / "run.sh"
    if not run_sh.exists():
        print(f"building the emulated Pi: {args.setup_script} {args.arm64_dir}", flush=True)
        subprocess.run(["bash", str(args.setup_script), str(args.arm64_dir), str(REPO)],
                       check=True)
    arm, x86 = [str(run_sh)], [sys.executable]
    prov = provenance(libraries=LIBRARIES[:2])
    sources = fold9_subset(args.records, args.seed)
    what = ("all of PTB-XL fold 9" if args.records <= 0 else
            f"{len(sources)} PTB-XL fold-9 records (numpy default_rng seed {args.seed})")
    lines = [f"edge int8, {what}; tolerance |Δp| ≤ {TOLERANCE:g}"]
    sides = {"x86": side_versions(x86, side_env())}
    for cpu in args.qemu_cpus:
        sides[f"aarch64 QEMU_CPU={cpu}"] = side_versions(arm, side_env(cpu))
    for side, v in sides.items():
        lines.append(f"{side}: " + ", ".join(f"{k} {val}" for k, val in v.items()))
    print("\n".join(lines), flush=True)

    rows, ok = [], True
    with tempfile.TemporaryDirectory(prefix="arm64eq-") as tmp:
        for runtime in args.runtimes:
            ref = Path(tmp) / f"{runtime}-x86"
            x86_s = run_side(x86, predict_args(sources, runtime, ref), ref, side_env())
            want = (pd.read_csv(ref / "p.csv"), np.load(ref / "cam.npz"))
            for cpu in args.qemu_cpus:
                out = Path(tmp) / f"{runtime}-{cpu}"
                arm_s = run_side(arm, predict_args(sources, runtime, out), out, side_env(cpu))
                res: dict[str, Any] = {"runtime": runtime, "cpu": CPU_NOTES.get(cpu, cpu),
                                       "arm_s": arm_s, "x86_s": x86_s}
                res.update(compare(want[0], pd.read_csv(out / "p.csv"), want[1],
                                   np.load(out / "cam.npz")))
                ok &= res["max_dp"] <= TOLERANCE
                rows.append(res)
                print(f"{runtime} on {cpu}: {res['records']} records, max |Δp| "
                      f"{res['max_dp']:.2e} (record {res['worst_record']}), {res['over_1e-3']} "
                      f"over 1e-3, max |ΔCAM| {res['max_dcam']:.2e}, top class "
                      f"{100 * res['top_class_agree']:.1f} %, MI-CAM peak "
                      f"{100 * res['cam_peak_agree']:.1f} %; aarch64 {arm_s:.0f} s (emulated), "
                      f"x86 {x86_s:.0f} s", flush=True)
        irows = []
        if args.interval_sources:
            want_i, x86_s = run_intervals(x86, args.interval_sources, side_env())
            for cpu in args.qemu_cpus:
                got, arm_s = run_intervals(arm, args.interval_sources, side_env(cpu))
                r = {"cpu": CPU_NOTES.get(cpu, cpu), "records": len(got), "arm_s": arm_s,
                     "x86_s": x86_s, **compare_json(want_i, got)}
                ok &= r["text_differ"] == 0 and r["max_abs"] <= TOLERANCE
                irows.append(r)
                print(f"intervals on {cpu}: {r['records']} records, {r['values']} values, "
                      f"{r['differ']} differ (max |Δ| {r['max_abs']:.2e}; first: {r['first']})"
                      f"; aarch64 {arm_s:.0f} s (emulated), x86 {x86_s:.0f} s", flush=True)
    body = table(rows)
    blocks = {"arm64_equality": body}
    if irows:
        blocks["arm64_intervals"] = intervals_table(irows)
    verdict = ("PASS: every runtime, core and interval value within 1e-3" if ok else
               "FAIL: an aarch64 result differs from x86 (see above)")
    print("\n\n".join(blocks.values()) + "\n" + verdict)
    full = "\n".join([*lines, "", *(f"{b}\n" for b in blocks.values()), verdict])
    write_results(args.out, "The kiosk's computations on aarch64 (emulated Raspberry Pi) vs x86",
                  provenance_line(prov), full, blocks)
    print(f"wrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

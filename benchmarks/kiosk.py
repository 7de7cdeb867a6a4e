"""Kiosk benchmark (issue 13 item 10): per-stage time of the screening pipeline on one core
for a 10-s 12-lead recording at 100 Hz (``ptbxl-00286``) and 500 Hz (``ludb-1``), the PDF
apart; ``detak kiosk`` cold start to the first 200 on ``/healthz``; page latency p50/p99 under
a bounded loopback load (``/healthz`` and the sign-in page ``/``); peak RSS of the kiosk
process after the load and of this process after screening. Targets: screening <= 1.0 s at
500 Hz, cold start <= 10 s, RSS <= 400 MB.

Stages are timed inside the one pipeline (`detak.kiosk.screening.screen` with ``timings``).

    python benchmarks/kiosk.py [--repeats 10] [--requests 200] [--results docs/results/kiosk.md]

>>> from kiosk import percentile
>>> percentile([1.0, 2.0, 3.0, 4.0], 50), percentile([5.0], 99)
(2.5, 5.0)
"""

from __future__ import annotations

import os

if __name__ == "__main__":   # run as the benchmark: one core (not when a test imports it)
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                 "NUMEXPR_NUM_THREADS"):
        os.environ[_var] = "1"  # before numpy (and onnxruntime) are imported

import argparse  # noqa: E402
import resource  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SAMPLES: dict[str, str] = {"100 Hz": "ptbxl-00286", "500 Hz": "ludb-1"}
TARGET_SCREEN_S = 1.0
TARGET_COLD_S = 10.0
TARGET_RSS_MB = 400.0
PAGES: tuple[str, ...] = ("/healthz", "/")


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (linear interpolation) of ``values``."""
    return float(np.percentile(np.asarray(values, dtype=float), q))


def time_stages(sample: str, repeats: int = 10, lang: str = "en") -> dict[str, list[float]]:
    """Seconds per stage of ``screen`` on ``sample`` (one warm-up, then ``repeats`` runs):
    ``{stage: [s, ...]}`` for `STAGES`, ``screening`` (their sum) and ``pdf``."""
    from detak.data.samples import load_sample
    from detak.kiosk.report_pdf import render_report
    from detak.kiosk.screening import STAGES, screen

    rec = load_sample(sample)
    render_report(screen(rec, lang=lang).to_dict(), rec, lang=lang)  # warm-up: loads, caches
    out: dict[str, list[float]] = {k: [] for k in (*STAGES, "screening", "pdf")}
    for _ in range(repeats):
        timings: dict[str, float] = {}
        s = screen(rec, lang=lang, timings=timings)
        t0 = time.perf_counter()
        render_report(s.to_dict(), rec, lang=lang)
        out["pdf"].append(time.perf_counter() - t0)
        for k in STAGES:
            out[k].append(timings[k])
        out["screening"].append(sum(timings[k] for k in STAGES))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_kiosk(store: Path, timeout: float = 60.0) -> tuple[subprocess.Popen, str, float]:
    """Start ``detak kiosk`` on a free loopback port; (process, base URL, seconds from Popen
    to the first 200 on /healthz)."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    base = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "detak.cli", "kiosk", "--store", str(store),
                             "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"detak kiosk exited {proc.returncode}")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                if r.status == 200:
                    return proc, base, time.perf_counter() - t0
        except OSError:
            time.sleep(0.05)
    stop(proc)
    raise RuntimeError("detak kiosk did not answer /healthz in time")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def page_load(base: str, requests: int = 200, threads: int = 4) -> dict[str, list[float]]:
    """``requests`` GETs of each page in `PAGES` from ``threads`` threads; seconds each."""
    def get(path: str) -> float:
        t0 = time.perf_counter()
        with urllib.request.urlopen(base + path, timeout=10) as r:
            r.read()
            if r.status != 200:
                raise RuntimeError(f"{path}: HTTP {r.status}")
        return time.perf_counter() - t0

    out = {}
    with ThreadPoolExecutor(threads) as pool:
        for path in PAGES:
            out[path] = list(pool.map(get, [path] * requests))
    return out


def vm_hwm_mb(pid: int) -> float:
    """Peak resident set (VmHWM) of process ``pid`` in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def run(repeats: int, requests: int, starts: int) -> tuple[list[str], dict[str, Any]]:
    lines: list[str] = []
    figures: dict[str, Any] = {}
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})  # the screening on one core; the kiosk part is not pinned
    try:
        stages = {label: time_stages(sample, repeats) for label, sample in SAMPLES.items()}
    finally:
        os.sched_setaffinity(0, cpus)
    for label, sample in SAMPLES.items():
        st = stages[label]
        figures[label] = st
        lines += [f"### Screening, {label} (`{sample}`, 10 s, 12 leads; one core, "
                  f"{repeats} runs after one warm-up)", "",
                  "| stage | median ms | p90 ms |", "|---|---:|---:|"]
        for k, v in st.items():
            name = f"**{k}**" if k == "screening" else k
            lines.append(f"| {name} | {1000 * percentile(v, 50):.1f} | "
                         f"{1000 * percentile(v, 90):.1f} |")
        lines.append("")
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as tmp:
        colds = []
        for i in range(starts):
            proc, base, secs = start_kiosk(Path(tmp) / f"store{i}")
            colds.append(secs)
            if i < starts - 1:
                stop(proc)
        try:
            load = page_load(base, requests)
            kiosk_rss = vm_hwm_mb(proc.pid)
        finally:
            stop(proc)
    lines += [f"### Kiosk process (`detak kiosk`, loopback; {requests} GETs per page, 4 threads)",
              "", "cold start to /healthz 200: " + ", ".join(f"{c:.2f} s" for c in colds), "",
              "| page | p50 ms | p99 ms |", "|---|---:|---:|"]
    for path, v in load.items():
        lines.append(f"| `{path}` | {1000 * percentile(v, 50):.1f} | "
                     f"{1000 * percentile(v, 99):.1f} |")
    screen_500 = percentile(figures["500 Hz"]["screening"], 50)
    cold = percentile(colds, 50)
    lines += ["", "### Targets", ""]
    targets = ["| measure | value | target | result |", "|---|---:|---:|---|",
              f"| screening at 500 Hz, median (PDF apart) | {screen_500:.3f} s | "
              f"≤ {TARGET_SCREEN_S} s | {verdict(screen_500 <= TARGET_SCREEN_S)} |",
              f"| PDF at 500 Hz, median (reported apart) | "
              f"{percentile(figures['500 Hz']['pdf'], 50):.3f} s | — | — |",
              f"| cold start, median of {starts} | {cold:.2f} s | ≤ {TARGET_COLD_S:.0f} s | "
              f"{verdict(cold <= TARGET_COLD_S)} |",
              f"| kiosk peak RSS after load (VmHWM) | {kiosk_rss:.0f} MB | "
              f"≤ {TARGET_RSS_MB:.0f} MB | {verdict(kiosk_rss <= TARGET_RSS_MB)} |",
              f"| benchmark peak RSS after screening + PDF (ru_maxrss) | {self_rss:.0f} MB | "
              f"≤ {TARGET_RSS_MB:.0f} MB | {verdict(self_rss <= TARGET_RSS_MB)} |"]
    lines += targets
    return lines, {"targets": "\n".join(targets), "screen_500_s": screen_500, "cold_s": cold,
                   "kiosk_rss_mb": kiosk_rss, "self_rss_mb": self_rss}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=10, help="timed runs per recording")
    ap.add_argument("--requests", type=int, default=200, help="GETs per page")
    ap.add_argument("--starts", type=int, default=3, help="cold starts")
    ap.add_argument("--results", type=Path, default=None,
                    help="write a results file (e.g. docs/results/kiosk.md)")
    args = ap.parse_args(argv)
    from _provenance import provenance_line
    from readme_tables import write_results

    lines, figures = run(args.repeats, args.requests, args.starts)
    prov = provenance_line(libraries=("onnxruntime", "starlette", "uvicorn", "matplotlib"))
    text = "\n".join(lines)
    print(text)
    print(prov)
    if args.results:
        write_results(args.results, "Kiosk benchmark (issue 13 item 10)", prov, text,
                      {"kiosk": figures["targets"]})
    return 0


if __name__ == "__main__":
    sys.exit(main())

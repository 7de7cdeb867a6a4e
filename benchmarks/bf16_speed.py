"""bf16 vs fp32 training-step speed of the CNNs on this CPU (`detak train --compute bf16`).

One training step as ``detak.models.training`` runs it (AdamW lr 1e-3, weight decay 0.01,
BCE-with-logits on 5 classes, batch 32 of 12 × 1000 samples; bf16 = the forward pass under
``torch.autocast("cpu", torch.bfloat16)``, loss, backward and the optimizer step in fp32),
on seeded random input. The steps alternate fp32 / bf16 (so a change of load on a shared
machine hits both) after two warm-up steps each; the figure is the ratio fp32 / bf16 of the
fastest step of each (the step least disturbed by other work; the medians are printed
beside it) from one run: absolute times on a shared machine mean little. One torch thread by
default: on a busy 2-core machine two OpenMP threads wait on each other and dilute the ratio.

    .venv/bin/python benchmarks/bf16_speed.py [--models resnet1d inceptiontime] [--steps 6]
                                              [--threads 1] [--no-results]

A default run writes ``docs/results/bf16_speed.md`` (the README's table, with the versions).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

from _provenance import REPO, provenance_line
from readme_tables import write_results

RESULTS_FILE = REPO / "docs" / "results" / "bf16_speed.md"
DEFAULT_MODELS = ("resnet1d", "inceptiontime")
BATCH, LEADS, SAMPLES, CLASSES = 32, 12, 1000, 5


def step_ratio(name: str, steps: int, threads: int) -> dict[str, Any]:
    """Fastest and median seconds per training step in fp32 and bf16, and their ratios."""
    import torch

    from detak.models.cnn.registry import build_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(name).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, LEADS, SAMPLES, generator=gen)
    y = (torch.rand(BATCH, CLASSES, generator=gen) < 0.3).float()

    def one(bf16: bool) -> float:
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = loss_fn(logits.float(), y)
        loss.backward()
        opt.step()
        return time.perf_counter() - t0

    for bf16 in (False, True, False, True):  # warm-up
        one(bf16)
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(steps):
        for bf16 in (False, True):
            times[bf16].append(one(bf16))
    fp32, bf16 = min(times[False]), min(times[True])
    med = statistics.median(times[False]) / statistics.median(times[True])
    return {"model": name, "fp32_s": fp32, "bf16_s": bf16, "ratio": fp32 / bf16,
            "median_ratio": med}


def cpu_line() -> str:
    """The CPU model and whether it has native bf16 instructions."""
    flags, model = set(), "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
                elif line.startswith("model name") and model == "unknown CPU":
                    model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    has = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    return f"CPU: {model}; native bf16: {', '.join(has) if has else 'none'}."


def table(rows: list[dict[str, Any]], steps: int, threads: int) -> list[str]:
    return ["| model | fp32 s/step | bf16 s/step | fp32 / bf16 | (medians) |",
            "|---|---|---|---|---|",
            *[f"| {r['model']} | {r['fp32_s']:.2f} | {r['bf16_s']:.2f} | {r['ratio']:.1f}× "
              f"| {r['median_ratio']:.1f}× |" for r in rows],
            "", f"{cpu_line()} Batch {BATCH}, {threads} torch thread(s), fastest of {steps} "
            "alternating steps each after 2 warm-up steps; the ratio is the figure, the times "
            "depend on the machine's load."]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    ap.add_argument("--steps", type=int, default=6, help="timed steps per precision")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-results", action="store_true",
                    help=f"do not write {RESULTS_FILE.relative_to(REPO)}")
    args = ap.parse_args(argv)
    rows = []
    for name in args.models:
        rows.append(step_ratio(name, args.steps, args.threads))
        print(f"done: {name}", file=sys.stderr, flush=True)
    prov = provenance_line(libraries=("torch",))
    lines = table(rows, args.steps, args.threads)
    print("\n".join([*lines, "", prov]))
    if tuple(args.models) == DEFAULT_MODELS and not args.no_results:
        path = write_results(RESULTS_FILE, "bf16 vs fp32 training steps", prov,
                             "\n".join(lines), {"bf16_speed": "\n".join([*lines, "", prov])})
        print(f"\nwritten: {path} (make readme copies its table into README.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

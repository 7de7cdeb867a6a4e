"""Kiosk latency of the tabular models: load + classify one record, and classify alone.

Trains each model kind on the heart-failure records (without time; 11 features), saves it to a
temporary folder, then times (median of --repeat runs) ``load_model(path).predict(row)`` and
``model.predict(row)``. Machines are noisy, so each figure is also given as a ratio to a baseline
measured in the same process: scikit-learn's own ``LogisticRegression.predict_proba`` on a
1-row numpy array (no pipeline, no detak code). Budget: ≤ 5 ms for load + classify.

Run: ``.venv/bin/python benchmarks/tabular_latency.py [--repeat 200]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BUDGET_MS = 5.0


def _median_ms(fn, repeat: int) -> float:
    fn()  # warm
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args(argv)

    from sklearn.linear_model import LogisticRegression

    from detak.data.heart_failure import load_heart_failure, split_xy
    from detak.models.tabular import KINDS, TabularModel, load_model

    X, y = split_xy(load_heart_failure(), with_time=False)
    row = {k: float(v) for k, v in X.iloc[5].items()}
    base_model = LogisticRegression(max_iter=2000).fit(X.to_numpy(float), y.to_numpy())
    x1 = X.to_numpy(float)[:1]
    baseline = _median_ms(lambda: base_model.predict_proba(x1), args.repeat)
    print(f"baseline sklearn LogisticRegression.predict_proba(1 row): {baseline:.3f} ms")
    print(f"{'model':<5} {'file KB':>8} {'load+classify ms':>17} {'x base':>7} "
          f"{'classify ms':>12} {'x base':>7}  budget {BUDGET_MS} ms")
    worst = 0.0
    with tempfile.TemporaryDirectory() as d:
        for kind in KINDS:
            m = TabularModel.train(kind, X, y, name=f"hf-{kind}", description="latency bench")
            path = m.save(Path(d))
            loaded = load_model(path)
            t_cls = _median_ms(lambda lm=loaded: lm.predict(row), args.repeat)
            t_all = _median_ms(lambda p=path: load_model(p).predict(row),
                               max(20, args.repeat // 5))
            worst = max(worst, t_all)
            flag = "" if t_all <= BUDGET_MS else "  OVER BUDGET"
            print(f"{kind:<5} {path.stat().st_size / 1024:>8.0f} {t_all:>17.3f} "
                  f"{t_all / baseline:>7.1f} {t_cls:>12.3f} {t_cls / baseline:>7.1f}{flag}")
        # Cold start: a fresh interpreter importing detak's tabular module (and scikit-learn).
        code = ("import time; t=time.perf_counter(); "
                "from detak.models.tabular import load_model; "
                f"m=load_model({str(path)!r}); m.predict({row!r}); "
                "print((time.perf_counter()-t)*1e3)")
        cold = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                    check=True).stdout.strip())
        print(f"cold start (fresh process: import + load + classify, {kind}): {cold:.0f} ms")
    print(f"worst load+classify: {worst:.3f} ms ({'within' if worst <= BUDGET_MS else 'over'} "
          f"the {BUDGET_MS} ms budget); numpy {np.__version__}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

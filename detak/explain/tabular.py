"""SHAP and LIME explanations for `detak.models.tabular` models (host extra ``[host]``).

shap and lime are imported inside the functions: importing this module costs nothing.

Explainers (`shap_explain`):

- ``rf``, ``dt``: ``shap.TreeExplainer`` on the fitted trees, exact; values in probability units
  of the explained class, applied to the imputed and scaled features (per-feature affine maps, so
  each value is that raw feature's contribution); values + base value = predicted probability.
- ``lr``: ``shap.LinearExplainer`` with an independent background sample; values in log-odds
  (decision function) units; values + base value = the model's log-odds.
- ``nb``, ``knn``: ``shap.KernelExplainer`` over the whole pipeline on raw features with a
  background sample (``max_background`` rows, default 50; missing values mean-filled);
  probability units; values + base value = predicted probability (Kernel SHAP enforces it).
  Cost: ``nsamples x background`` model evaluations per explained row (500 x 50 = 25 000 rows;
  about 10 ms per row for NB, 0.1 s for KNN on 299 training rows), so global summaries sample at
  most ``max_rows`` rows (default 100). (``PermutationExplainer`` would also do, but its numba
  compilation costs ~6 s on first use.)

LIME (`lime_explain`): ``LimeTabularExplainer`` on the training rows (missing values replaced
by column means, quartile discretisation) around one row; PNG + JSON.

Re-run the S2 explanations: ``python -m detak.explain.tabular --out docs/results/heart_failure``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from detak.models.tabular import TabularModel, TabularModelError


@dataclass
class ShapResult:
    """SHAP values of one class for ``len(row_ids)`` rows: ``values`` (rows, features),
    ``base_values`` (rows,), ``data`` (raw feature values), ``output`` ("probability" or
    "log-odds")."""

    values: np.ndarray
    base_values: np.ndarray
    data: np.ndarray
    features: tuple[str, ...]
    row_ids: list[Any]
    class_label: Any
    explainer: str
    output: str

    def importance(self) -> pd.DataFrame:
        """Mean |SHAP| per feature, largest first (columns ``feature, mean_abs_shap``)."""
        imp = np.abs(self.values).mean(axis=0)
        return (pd.DataFrame({"feature": self.features, "mean_abs_shap": imp})
                .sort_values("mean_abs_shap", ascending=False, kind="stable")
                .reset_index(drop=True))


def _frame(model: TabularModel, X: Any) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        missing = [f for f in model.features if f not in X.columns]
        if missing:
            raise TabularModelError(f"data lack feature(s) {', '.join(missing)} of model "
                                    f"{model.name!r}")
        return X[list(model.features)]
    return pd.DataFrame(np.asarray(X, dtype=float), columns=list(model.features))


def _class_index(model: TabularModel, class_label: Any) -> int:
    if class_label is None:
        return len(model.classes) - 1
    for i, c in enumerate(model.classes):
        if c == class_label or str(c) == str(class_label):
            return i
    raise TabularModelError(f"class {class_label!r} is not one of {list(model.classes)}")


def _pick(values: np.ndarray, ci: int, n_classes: int) -> np.ndarray:
    """Select the class slice of a SHAP array shaped (rows, features[, classes])."""
    if values.ndim == 3:
        return values[:, :, ci]
    if values.ndim == 2 and n_classes == 2 and ci == 0:
        return -values  # binary models explain the positive class only
    return values


def shap_explain(model: TabularModel, X: Any, *, background: Any = None,
                 class_label: Any = None, max_background: int = 50, nsamples: int = 500,
                 seed: int = 0) -> ShapResult:
    """SHAP values of ``class_label`` (default: the last class, e.g. ``DEATH_EVENT = 1``) for
    the rows of ``X`` (see the module docstring for the explainer per kind). ``background``
    (default: ``X``) is sampled down to ``max_background`` rows."""
    import shap

    Xf = _frame(model, X)
    bg = _frame(model, background) if background is not None else Xf
    if len(bg) > max_background:
        bg = bg.sample(max_background, random_state=seed)
    ci = _class_index(model, class_label)
    n_cls = len(model.classes)
    est, pre = model.pipeline[-1], model.pipeline[:-1]
    Xa = Xf.to_numpy(dtype=float)
    if model.kind in ("rf", "dt"):
        ex = shap.TreeExplainer(est)
        e = ex(pre.transform(Xa))
        vals = _pick(np.asarray(e.values), ci, n_cls)
        base = np.asarray(e.base_values)
        base = base[:, ci] if base.ndim == 2 else base
        name, output = "TreeExplainer", "probability"
    elif model.kind == "lr":
        ex = shap.LinearExplainer(est, shap.maskers.Independent(pre.transform(
            bg.to_numpy(dtype=float)), max_samples=max_background))
        e = ex(pre.transform(Xa))
        vals = _pick(np.asarray(e.values), ci, n_cls)
        base = np.asarray(e.base_values, dtype=float)
        if base.ndim == 2:
            base = base[:, ci]
        elif n_cls == 2 and ci == 0:
            base = -base
        name, output = "LinearExplainer", "log-odds"
    else:
        bga = bg.to_numpy(dtype=float)
        bga = np.where(np.isnan(bga), np.nanmean(bga, axis=0), bga)

        def f(A: np.ndarray) -> np.ndarray:
            return model.predict_proba(A)[:, ci]

        ex = shap.KernelExplainer(f, bga)
        state = np.random.get_state()  # Kernel SHAP samples coalitions with the global RNG
        np.random.seed(seed)
        try:
            vals = np.asarray(ex.shap_values(Xa, nsamples=nsamples, silent=True), dtype=float)
        finally:
            np.random.set_state(state)
        base = np.full(len(Xa), float(np.asarray(ex.expected_value).reshape(-1)[0]))
        name, output = "KernelExplainer", "probability"
    base = np.broadcast_to(base, (len(Xa),)).astype(float)
    return ShapResult(values=np.asarray(vals, dtype=float), base_values=base, data=Xa,
                      features=model.features, row_ids=[*Xf.index], class_label=model.classes[ci],
                      explainer=name, output=output)


def shap_summary(model: TabularModel, X: Any, out_dir: Path | str, *, name: str | None = None,
                 max_rows: int = 100, seed: int = 0, **kwargs: Any) -> dict[str, Any]:
    """Global SHAP summary: ``NAME_shap_beeswarm.png`` and ``NAME_shap_importance.csv`` (mean
    |SHAP|, largest first) in ``out_dir``. Model-agnostic explainers (NB, KNN) use at most
    ``max_rows`` rows of ``X``. Returns ``{"png", "csv", "table", "explainer", "output",
    "rows"}``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap

    Xf = _frame(model, X)
    if model.kind in ("nb", "knn") and len(Xf) > max_rows:
        Xf = Xf.sample(max_rows, random_state=seed)
    res = shap_explain(model, Xf, seed=seed, **kwargs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = name or model.name
    table = res.importance()
    csv_path = out / f"{stem}_shap_importance.csv"
    table.to_csv(csv_path, index=False)
    exp = shap.Explanation(values=res.values, base_values=res.base_values, data=res.data,
                           feature_names=list(res.features))
    plt.figure()
    shap.plots.beeswarm(exp, max_display=len(res.features), show=False)
    fig = plt.gcf()
    fig.suptitle(f"{model.name}: SHAP ({res.explainer}, {res.output}) for class "
                 f"{res.class_label}", fontsize=9)
    png = out / f"{stem}_shap_beeswarm.png"
    fig.savefig(png, dpi=120, bbox_inches="tight")
    plt.close("all")
    return {"png": str(png), "csv": str(csv_path), "table": table.to_dict("records"),
            "explainer": res.explainer, "output": res.output, "rows": len(Xf)}


def shap_record(model: TabularModel, X: Any, index: Any, *, background: Any = None,
                **kwargs: Any) -> dict[str, Any]:
    """Per-record SHAP: the row of ``X`` labelled ``index`` explained against ``background``
    (default ``X``): ``{"index", "class", "base_value", "prediction", "output",
    "contributions": [{"feature", "value", "shap"}, ...] largest |shap| first}``;
    ``prediction`` = base + sum of contributions."""
    Xf = _frame(model, X)
    if index not in Xf.index:
        raise TabularModelError(f"row {index!r} is not in the data (index {Xf.index.min()}–"
                                f"{Xf.index.max()})")
    res = shap_explain(model, Xf.loc[[index]], background=Xf if background is None
                       else background, **kwargs)
    order = np.argsort(-np.abs(res.values[0]), kind="stable")
    return {"index": index, "class": res.class_label, "explainer": res.explainer,
            "output": res.output, "base_value": float(res.base_values[0]),
            "prediction": float(res.base_values[0] + res.values[0].sum()),
            "contributions": [{"feature": res.features[j], "value": float(res.data[0, j]),
                               "shap": float(res.values[0, j])} for j in order]}


def lime_explain(model: TabularModel, X_train: Any, row: Any, *, out_dir: Path | str | None = None,
                 name: str | None = None, class_label: Any = None, num_features: int = 10,
                 num_samples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """LIME local explanation of one record. ``row`` is an index label of ``X_train`` (S2's
    "patient 5" = ``5``) or a mapping of feature values. Returns ``{"row", "class",
    "probabilities", "weights": [{"condition", "weight"}], "intercept", "local_prediction",
    "score"}``; with ``out_dir`` also writes ``NAME_lime_ROW.png`` and ``.json``."""
    from lime.lime_tabular import LimeTabularExplainer

    Xf = _frame(model, X_train)
    train = Xf.to_numpy(dtype=float)
    train = np.where(np.isnan(train), np.nanmean(train, axis=0), train)
    if isinstance(row, dict):
        x = model.row_array(row)[0]
        row_id: Any = "given"
    else:
        if row not in Xf.index:
            raise TabularModelError(f"row {row!r} is not in the data")
        x = Xf.loc[row].to_numpy(dtype=float)
        row_id = row.item() if isinstance(row, np.generic) else row
    x = np.where(np.isnan(x), np.nanmean(Xf.to_numpy(dtype=float), axis=0), x)
    ci = _class_index(model, class_label)
    ex = LimeTabularExplainer(train, feature_names=list(model.features),
                              class_names=[str(c) for c in model.classes],
                              discretize_continuous=True, mode="classification",
                              random_state=seed)
    exp = ex.explain_instance(x, model.predict_proba, num_features=num_features,
                              labels=(ci,), num_samples=num_samples)
    proba = model.predict_proba(x[None, :])[0]
    out: dict[str, Any] = {
        "row": row_id, "class": model.classes[ci],
        "values": {f: float(v) for f, v in zip(model.features, x, strict=True)},
        "probabilities": {str(c): float(p) for c, p in zip(model.classes, proba, strict=True)},
        "weights": [{"condition": c, "weight": float(w)} for c, w in exp.as_list(label=ci)],
        "intercept": float(exp.intercept[ci]), "local_prediction": float(exp.local_pred[0]),
        "score": float(exp.score), "num_samples": num_samples, "seed": seed,
    }
    if out_dir is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        d = Path(out_dir)
        d.mkdir(parents=True, exist_ok=True)
        stem = f"{name or model.name}_lime_{row_id}"
        fig = exp.as_pyplot_figure(label=ci)
        fig.suptitle(f"LIME, row {row_id}, class {model.classes[ci]} "
                     f"(p = {proba[ci]:.2f})", fontsize=9)
        fig.savefig(d / f"{stem}.png", dpi=120, bbox_inches="tight")
        plt.close(fig)
        (d / f"{stem}.json").write_text(json.dumps(out, indent=1, default=str) + "\n")
        out["png"], out["json"] = str(d / f"{stem}.png"), str(d / f"{stem}.json")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """S2's explanations: RF trained on all 299 records (with and without time); SHAP summary
    over all records and LIME for patient 5. Prints the mean |SHAP| tables and LIME weights."""
    from detak.data.heart_failure import load_heart_failure, split_xy

    ap = argparse.ArgumentParser(description="S2 SHAP/LIME explanations of the RF model")
    ap.add_argument("--out", required=True)
    ap.add_argument("--patient", type=int, default=5)
    args = ap.parse_args(argv)
    df = load_heart_failure()
    for with_time in (True, False):
        X, y = split_xy(df, with_time=with_time)
        tag = f"hf_rf_{'with' if with_time else 'without'}_time"
        m = TabularModel.train("rf", X, y, name=tag, description="heart failure, all rows")
        s = shap_summary(m, X, args.out)
        lime = lime_explain(m, X, args.patient, out_dir=args.out)
        print(f"## {tag}: mean |SHAP| ({s['explainer']}, {s['output']} of DEATH_EVENT=1)")
        for r in s["table"]:
            print(f"  {r['feature']:<26} {r['mean_abs_shap']:.4f}")
        print(f"  LIME patient {args.patient}: p(death) = {lime['probabilities']['1']:.2f}")
        for w in lime["weights"][:5]:
            print(f"    {w['condition']:<40} {w['weight']:+.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

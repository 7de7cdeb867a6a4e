"""Tabular classifiers for intervals and clinical records: Gaussian NB, KNN, decision tree,
random forest and logistic regression as scikit-learn Pipelines, saved with a model card.

Every model is ``SimpleImputer(mean) -> scaler -> estimator``: `MinMaxScaler` for KNN (S4's
min-max normalisation, Euclidean distance), `StandardScaler` otherwise (S2, S3). The decision
tree uses the entropy criterion (C4.5-like splits; scikit-learn grows binary CART trees without
C4.5's pruning). The random forest has 30 trees with leaves of at least 5 records
(`RF_DEFAULTS`: chosen by CV for the kiosk's load-time budget). Seeds are fixed (`SEED`).

`TabularModel` holds the pipeline, the feature order, the classes and the card; ``save`` writes
``NAME.joblib`` and the ``NAME.json`` card (`detak.models.model_card`). Loading a model and
classifying one row imports only numpy/scikit-learn/joblib (never torch, shap or lime).

File format (``detak-tabular/2``): the ``.joblib`` file is written and read with joblib and
holds a small dict (format, kind, features, classes) whose ``objects`` entry is the fitted
Pipeline and the KNN training rows as one standard pickle (bytes). joblib's loader runs Python's
pure-Python unpickler (it intercepts numpy arrays), which for a 100-tree forest's tens of
thousands of small objects took 15-25 ms here; the same objects through the C unpickler take
1.5-3 ms (``benchmarks/tabular_latency.py --before-after``). Same objects, same file size.
Files of the earlier ``detak-tabular/1`` format (the Pipeline directly in the joblib dict) still
load.

>>> import pandas as pd
>>> X = pd.DataFrame({"pr_ms": [150, 160, 170, 230, 240, 250],
...                   "qrs_ms": [90, 95, 100, 92, 96, 98]})
>>> y = pd.Series(["normal"] * 3 + ["1AVB"] * 3)
>>> m = TabularModel.train("knn", X, y, name="toy", description="toy rows", k=3)
>>> out = m.predict({"pr_ms": 235, "qrs_ms": 94})
>>> out["label"], [n["label"] for n in m.neighbours({"pr_ms": 235, "qrs_ms": 94})]
('1AVB', ['1AVB', '1AVB', '1AVB'])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from detak.models.model_card import build_card, read_card, sha256_file, write_card

KINDS: tuple[str, ...] = ("nb", "knn", "dt", "rf", "lr")
KIND_NAMES: dict[str, str] = {
    "nb": "Gaussian naive Bayes", "knn": "k-nearest neighbours (Euclidean, min-max scaled)",
    "dt": "decision tree (entropy criterion)", "rf": "random forest",
    "lr": "logistic regression",
}
SEED = 0
DEFAULT_K = 5
# Random forest: 30 trees, leaves of >= 5 records (scikit-learn's default is 100 trees grown
# to purity). Chosen with `benchmarks/tabular_latency.py --rf-grid`: on the heart-failure
# records (5-fold CV repeated over 5 seeds) its ROC AUC and accuracy, with and without time,
# are at least those of 100 unpruned trees (0.790 vs 0.785, 0.908 vs 0.904 with time), and on
# the PTB-XL interval rows (train folds 1-8, validate fold 9) accuracy is the same (0.998); a
# third of the trees and smaller ones load within the kiosk's 5 ms (100 full trees on the
# interval rows: a 6.3 MB file, 14-36 ms on the shared build machine).
RF_DEFAULTS: dict[str, int] = {"n_estimators": 30, "min_samples_leaf": 5}
SMALL_BATCH = 8  # rows up to which predict_proba takes the one-record (kiosk) path
FILE_FORMAT = "detak-tabular/2"
OLD_FILE_FORMATS: tuple[str, ...] = ("detak-tabular/1",)


class TabularModelError(ValueError):
    """A tabular model cannot be built, fed or loaded (the message names the problem)."""


class UnknownModelKindError(TabularModelError):
    """``kind`` is not one of `KINDS`."""


class MissingFeatureError(TabularModelError):
    """A row lacks a feature the model was trained on (a None value is fine: it is imputed)."""


class ModelFileError(TabularModelError):
    """A model file is missing, of another format, or does not match its card."""


def make_model(kind: str, seed: int = SEED, **params: Any) -> Pipeline:
    """An unfitted ``impute -> scale -> model`` Pipeline for ``kind`` in `KINDS`.

    ``params`` go to the estimator (``k`` is an alias of KNN's ``n_neighbors``).

    >>> make_model("knn", k=7).named_steps["model"].n_neighbors
    7
    >>> [type(make_model(k).named_steps["scale"]).__name__ for k in ("knn", "nb")]
    ['MinMaxScaler', 'StandardScaler']
    >>> make_model("svm")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    detak.models.tabular.UnknownModelKindError: unknown model kind 'svm'; choose one of nb, ...
    """
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    if kind not in KINDS:
        raise UnknownModelKindError(f"unknown model kind {kind!r}; choose one of "
                                    f"{', '.join(KINDS)}")
    params = dict(params)
    if kind == "nb":
        from sklearn.naive_bayes import GaussianNB

        est_cls, defaults = GaussianNB, {}
    elif kind == "knn":
        from sklearn.neighbors import KNeighborsClassifier

        if "k" in params:
            params["n_neighbors"] = params.pop("k")
        est_cls = KNeighborsClassifier
        defaults = {"n_neighbors": DEFAULT_K, "metric": "euclidean", "algorithm": "brute"}
    elif kind == "dt":
        from sklearn.tree import DecisionTreeClassifier

        est_cls, defaults = DecisionTreeClassifier, {"criterion": "entropy",
                                                     "random_state": seed}
    elif kind == "rf":
        from sklearn.ensemble import RandomForestClassifier

        est_cls, defaults = RandomForestClassifier, {**RF_DEFAULTS, "random_state": seed}
    else:
        from sklearn.linear_model import LogisticRegression

        est_cls, defaults = LogisticRegression, {"max_iter": 2000, "random_state": seed}
    try:
        estimator = est_cls(**{**defaults, **params})
    except TypeError as exc:
        raise TabularModelError(f"{kind}: bad parameter for {est_cls.__name__}: {exc}") from exc
    scaler = MinMaxScaler() if kind == "knn" else StandardScaler()
    return Pipeline([("impute", SimpleImputer(strategy="mean")), ("scale", scaler),
                     ("model", estimator)])


_OPENMP: Any = None


def _one_openmp_thread() -> Any:
    """A context limiting OpenMP to one thread (for one-row KNN queries).

    scikit-learn's KNN distance kernel runs on OpenMP threads, one per core. For a single row
    that buys nothing, and when the other core is busy (the kiosk measuring a recording) the
    threads wait for each other: one 10 774-row query took ~85 ms instead of ~0.6 ms. The
    threadpoolctl controller is built once per process (~10 ms, like an import); entering the
    limit costs ~0.05 ms. The limit is process-wide while it lasts.
    """
    global _OPENMP
    if _OPENMP is None:
        from threadpoolctl import ThreadpoolController

        _OPENMP = ThreadpoolController().select(user_api="openmp")
    return _OPENMP.limit(limits=1)


def _card_value(v: Any) -> Any:
    v = _py(v)
    return v if v is None or isinstance(v, (bool, int, float, str)) else repr(v)


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


class TabularModel:
    """A fitted Pipeline with its feature order, classes and model card.

    For KNN it also keeps the raw training rows (``train_values``, NaN where missing), their ids
    (``train_ids``, the training frame's index) and labels (``train_labels``) for the neighbour
    table.
    """

    def __init__(self, pipeline: Pipeline, features: Sequence[str], classes: Sequence[Any],
                 card: dict[str, Any], train_values: np.ndarray | None = None,
                 train_ids: Sequence[Any] | None = None,
                 train_labels: Sequence[Any] | None = None) -> None:
        self.pipeline = pipeline
        self.features: tuple[str, ...] = tuple(features)
        self.classes: tuple[Any, ...] = tuple(_py(c) for c in classes)
        self.card = card
        self.train_values = train_values
        self.train_ids = list(train_ids) if train_ids is not None else None
        self.train_labels = ([_py(v) for v in train_labels] if train_labels is not None
                             else None)
        self._pre = pipeline[:-1]
        self._est = pipeline[-1]
        self._is_forest = type(self._est).__name__ == "RandomForestClassifier"
        self._is_knn = type(self._est).__name__ == "KNeighborsClassifier"

    @property
    def kind(self) -> str:
        return str(self.card["kind"])

    @property
    def name(self) -> str:
        return str(self.card["name"])

    # -- training -------------------------------------------------------------------------
    @classmethod
    def train(cls, kind: str, X: Any, y: Any, *, name: str, description: str,
              source: str | None = None, source_sha256: str | None = None,
              metrics: Mapping[str, Any] | None = None, seed: int = SEED,
              **params: Any) -> TabularModel:
        """Fit ``make_model(kind, seed, **params)`` on the DataFrame ``X`` (its columns are the
        features, in order) and labels ``y``; build the card (see the module example)."""
        import pandas as pd

        if not isinstance(X, pd.DataFrame):
            raise TabularModelError("X must be a pandas DataFrame whose columns name the "
                                    "features")
        y_arr = np.asarray(y)
        if len(y_arr) != len(X):
            raise TabularModelError(f"X has {len(X)} rows but y has {len(y_arr)} labels")
        if len(X) == 0:
            raise TabularModelError("no training rows")
        Xa = X.to_numpy(dtype=float)
        if np.isnan(Xa).all(axis=0).any():
            empty = [c for c, e in zip(X.columns, np.isnan(Xa).all(axis=0), strict=True) if e]
            raise TabularModelError(f"feature(s) {', '.join(map(str, empty))} have no values "
                                    "at all; drop them or supply data")
        pipe = make_model(kind, seed=seed, **params)
        pipe.fit(Xa, y_arr)
        classes = [_py(c) for c in pipe.classes_]
        card = build_card(name=name, kind=kind, params=params, features=list(map(str, X.columns)),
                          classes=classes, X=Xa, y=y_arr, description=description, source=source,
                          source_sha256=source_sha256, metrics=metrics, seed=seed,
                          pipeline=" -> ".join(type(s).__name__ for _, s in pipe.steps))
        # The estimator's effective parameters (defaults included), so a card still says what
        # was fitted after detak's defaults change.
        est = pipe.named_steps["model"]
        card["estimator"] = {"class": type(est).__name__,
                             "params": {k: _card_value(v) for k, v in
                                        sorted(est.get_params().items())}}
        keep = kind == "knn"
        return cls(pipe, list(map(str, X.columns)), classes, card,
                   train_values=Xa if keep else None,
                   train_ids=[_py(i) for i in X.index] if keep else None,
                   train_labels=list(y_arr) if keep else None)

    # -- inference ------------------------------------------------------------------------
    def row_array(self, row: Mapping[str, Any]) -> np.ndarray:
        """``row`` (feature -> number or None) as a (1, n_features) float array in feature
        order; extra keys are ignored, None/NaN become NaN (imputed with the training mean)."""
        missing = [f for f in self.features if f not in row]
        if missing:
            raise MissingFeatureError(
                f"row lacks feature(s) {', '.join(missing)} (model {self.name!r} needs "
                f"{', '.join(self.features)}; give None for an unknown value)")
        out = np.empty((1, len(self.features)), dtype=float)
        for j, f in enumerate(self.features):
            v = row[f]
            if v is None:
                out[0, j] = math.nan
                continue
            try:
                out[0, j] = float(v)
            except (TypeError, ValueError):
                raise TabularModelError(f"feature {f!r}: {v!r} is not a number") from None
        if np.isnan(out).all():
            raise TabularModelError(f"row has no value for any of {', '.join(self.features)}")
        return out

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (columns in ``classes`` order) for a 2-D array or DataFrame
        whose columns are ``features`` in order."""
        Xa = np.asarray(X.to_numpy(dtype=float) if hasattr(X, "to_numpy") else X, dtype=float)
        if Xa.ndim != 2 or Xa.shape[1] != len(self.features):
            raise TabularModelError(f"expected rows of {len(self.features)} features "
                                    f"({', '.join(self.features)}), got shape {Xa.shape}")
        if self._is_forest and Xa.shape[0] <= SMALL_BATCH:
            # Same arithmetic as RandomForestClassifier.predict_proba without its per-call
            # joblib dispatch (about 4 ms for 100 trees, 1.4 ms for 30, on one row).
            Z = np.ascontiguousarray(self._pre.transform(Xa), dtype=np.float32)
            acc = np.zeros((Z.shape[0], len(self.classes)))
            for tree in self._est.estimators_:
                acc += tree.predict_proba(Z, check_input=False)
            return acc / len(self._est.estimators_)
        if self._is_knn and Xa.shape[0] <= SMALL_BATCH:
            with _one_openmp_thread():
                return self.pipeline.predict_proba(Xa)
        return self.pipeline.predict_proba(Xa)

    def predict(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Classify one row: ``{"label", "probabilities": {class: p}, "imputed": [features]}``.

        Probability keys are the classes as text (JSON keys); ``label`` keeps the class's type.
        """
        x = self.row_array(row)
        proba = self.predict_proba(x)[0]
        best = int(np.argmax(proba))
        return {
            "label": self.classes[best],
            "probabilities": {str(c): float(p) for c, p in zip(self.classes, proba, strict=True)},
            "imputed": [f for f, v in zip(self.features, x[0], strict=True) if math.isnan(v)],
        }

    def neighbours(self, row: Mapping[str, Any], k: int | None = None) -> list[dict[str, Any]]:
        """KNN only: the ``k`` training rows nearest to ``row`` (default: the model's k), nearest
        first — S4's neighbour table. Each entry: ``rank`` (1-based), ``distance`` (Euclidean in
        the min-max scaled, mean-imputed space), ``label``, ``index`` (the training frame's
        index), ``values`` (the raw training values, None where missing)."""
        if self.kind != "knn" or self.train_values is None or self.train_labels is None:
            raise TabularModelError(f"model {self.name!r} is {self.kind!r}; the neighbour table "
                                    "needs a KNN model")
        n_train = self.train_values.shape[0]
        k = int(k) if k is not None else int(self._est.n_neighbors)
        if k < 1:
            raise TabularModelError(f"k must be at least 1, got {k}")
        k = min(k, n_train)
        z = self._pre.transform(self.row_array(row))
        with _one_openmp_thread():
            dist, idx = self._est.kneighbors(z, n_neighbors=k)
        order = np.lexsort((idx[0], dist[0]))  # by distance, ties by training position
        out = []
        for rank, o in enumerate(order, start=1):
            i = int(idx[0][o])
            vals = self.train_values[i]
            out.append({
                "rank": rank,
                "distance": float(dist[0][o]),
                "label": self.train_labels[i],
                "index": self.train_ids[i] if self.train_ids is not None else i,
                "values": {f: (None if math.isnan(v) else float(v))
                           for f, v in zip(self.features, vals, strict=True)},
            })
        return out

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: Path | str) -> Path:
        """Write ``NAME.joblib`` and ``NAME.json``. ``path`` is a folder (created; NAME is the
        card's name) or a file path ending in ``.joblib`` (NAME is its stem). Returns the
        ``.joblib`` path."""
        import pickle

        import joblib

        path = Path(path)
        if path.suffix == ".joblib":
            folder, stem = path.parent, path.stem
        else:
            folder, stem = path, self.name
        folder.mkdir(parents=True, exist_ok=True)
        model_path = folder / f"{stem}.joblib"
        objects = {"pipeline": self.pipeline, "train_values": self.train_values,
                   "train_ids": self.train_ids, "train_labels": self.train_labels}
        payload = {"format": FILE_FORMAT, "features": list(self.features),
                   "classes": list(self.classes), "kind": self.kind,
                   "objects": pickle.dumps(objects, protocol=pickle.HIGHEST_PROTOCOL)}
        joblib.dump(payload, model_path)
        card = dict(self.card)
        card["model_file"] = {"name": model_path.name, "sha256": sha256_file(model_path)}
        write_card(card, folder / f"{stem}.json")
        self.card = card
        return model_path


def model_paths(path: Path | str) -> tuple[Path, Path]:
    """``(NAME.joblib, NAME.json)`` for a path to either file, the common stem, or a folder that
    holds exactly one ``.joblib``.

    >>> [p.name for p in model_paths("/tmp/models/hf-rf.json")]
    ['hf-rf.joblib', 'hf-rf.json']
    """
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.joblib"))
        if len(found) != 1:
            raise ModelFileError(f"{path}: expected one .joblib model in the folder, found "
                                 f"{len(found)}")
        path = found[0]
    stem = path.with_suffix("") if path.suffix in (".joblib", ".json") else path
    return stem.with_name(stem.name + ".joblib"), stem.with_name(stem.name + ".json")


def load_model(path: Path | str, verify: bool = True) -> TabularModel:
    """Load a model saved by `TabularModel.save` (``path`` as in `model_paths`). With ``verify``
    the ``.joblib`` must match the SHA-256 recorded in the card.

    >>> import tempfile, pandas as pd
    >>> X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]}); y = [0, 0, 1, 1]
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = TabularModel.train("nb", X, y, name="t", description="toy").save(d)
    ...     load_model(p).predict({"a": 2.9})["label"]
    1
    """
    import pickle

    import joblib

    model_path, card_path = model_paths(path)
    for p in (model_path, card_path):
        if not p.is_file():
            raise ModelFileError(f"model file {p} does not exist (a model is NAME.joblib plus "
                                 "its NAME.json card)")
    card = read_card(card_path)
    if verify:
        want = (card.get("model_file") or {}).get("sha256")
        if want is None:
            raise ModelFileError(f"{card_path}: card records no model_file sha256")
        got = sha256_file(model_path)
        if got != want:
            raise ModelFileError(f"{model_path}: SHA-256 {got[:12]}… does not match the card "
                                 f"{card_path.name} ({want[:12]}…); the files are not a pair")
    try:
        payload = joblib.load(model_path)
    except Exception as exc:  # any unreadable file is the same user error
        raise ModelFileError(f"{model_path}: not readable as a joblib file "
                             f"({type(exc).__name__}: {exc})") from exc
    fmt = payload.get("format") if isinstance(payload, dict) else None
    if fmt == FILE_FORMAT:
        try:
            objects = pickle.loads(payload["objects"])
        except Exception as exc:
            raise ModelFileError(f"{model_path}: its 'objects' pickle does not load "
                                 f"({type(exc).__name__}: {exc})") from exc
    elif fmt in OLD_FILE_FORMATS:
        objects = payload
    else:
        raise ModelFileError(f"{model_path}: not a detak tabular model (format {fmt!r}; "
                             f"expected {FILE_FORMAT} or {', '.join(OLD_FILE_FORMATS)})")
    return TabularModel(objects["pipeline"], payload["features"], payload["classes"], card,
                        train_values=objects.get("train_values"),
                        train_ids=objects.get("train_ids"),
                        train_labels=objects.get("train_labels"))

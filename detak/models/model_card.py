"""The JSON model card saved next to every tabular model (``NAME.json`` beside ``NAME.joblib``).

A card says what the model expects and where it came from: features (in order), classes, the
training data (description, file and its SHA-256, a SHA-256 of the exact rows used, class
counts), metrics, the library versions that wrote the pickle (scikit-learn pickles are only safe
to load with the same version), the seed and the creation time.

>>> import numpy as np
>>> card = build_card(name="demo", kind="nb", params={}, features=["a"], classes=[0, 1],
...                   X=np.array([[1.0], [2.0]]), y=np.array([0, 1]), description="toy")
>>> sorted(card)[:5], card["training_data"]["rows"]
(['classes', 'created', 'features', 'format', 'kind'], 2)
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

CARD_FORMAT = "detak-tabular-card/1"


def sha256_file(path: Path | str) -> str:
    """Hex SHA-256 of a file's bytes.

    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile(delete=False) as fh:
    ...     _ = fh.write(b"abc")
    >>> sha256_file(fh.name)[:16]
    'ba7816bf8f01cfea'
    >>> os.unlink(fh.name)
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_rows(X: np.ndarray, y: Sequence[Any] | np.ndarray) -> str:
    """SHA-256 of the training rows as used (features as float64 little-endian, NaN kept, then
    the labels as text, one per line): the same rows give the same hash on any machine.

    >>> sha256_rows(np.array([[1.0, np.nan]]), [1]) == sha256_rows(np.array([[1.0, np.nan]]), [1])
    True
    >>> sha256_rows(np.array([[1.0]]), [1]) == sha256_rows(np.array([[1.0]]), [0])
    False
    """
    h = hashlib.sha256()
    arr = np.ascontiguousarray(np.asarray(X, dtype="<f8"))
    h.update(str(arr.shape).encode())
    h.update(arr.tobytes())
    h.update("\n".join(str(_jsonable(v)) for v in np.asarray(y).tolist()).encode())
    return h.hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose pickles/behaviour the model depends on.

    >>> sorted(library_versions())
    ['detak', 'joblib', 'numpy', 'python', 'scikit-learn', 'scipy']
    """
    import joblib
    import scipy
    import sklearn

    import detak

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "joblib": joblib.__version__,
        "detak": getattr(detak, "__version__", "unknown"),
    }


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def build_card(*, name: str, kind: str, params: Mapping[str, Any], features: Sequence[str],
               classes: Sequence[Any], X: np.ndarray, y: Sequence[Any] | np.ndarray,
               description: str, source: str | None = None, source_sha256: str | None = None,
               metrics: Mapping[str, Any] | None = None, seed: int = 0,
               pipeline: str | None = None) -> dict[str, Any]:
    """The card as a JSON-ready dict (see the module docstring for an example)."""
    y_arr = np.asarray(y)
    labels, counts = np.unique(y_arr, return_counts=True)
    X_arr = np.asarray(X, dtype=float)
    return _jsonable({
        "format": CARD_FORMAT,
        "name": name,
        "kind": kind,
        "params": dict(params),
        "pipeline": pipeline,
        "features": list(features),
        "classes": list(classes),
        "training_data": {
            "description": description,
            "source": source,
            "source_sha256": source_sha256,
            "rows": int(X_arr.shape[0]),
            "rows_sha256": sha256_rows(X_arr, y_arr),
            "class_counts": {str(_jsonable(k)): int(c) for k, c in zip(labels, counts,
                                                                         strict=True)},
            "missing_values": int(np.isnan(X_arr).sum()),
        },
        "metrics": dict(metrics or {}),
        "seed": seed,
        "versions": library_versions(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    })


def write_card(card: Mapping[str, Any], path: Path | str) -> Path:
    """Write ``card`` as indented JSON to ``path``.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     read_card(write_card({"name": "x"}, Path(d) / "x.json"))
    {'name': 'x'}
    """
    path = Path(path)
    path.write_text(json.dumps(_jsonable(card), indent=2, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    return path


def read_card(path: Path | str) -> dict[str, Any]:
    """Read a card written by `write_card`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))

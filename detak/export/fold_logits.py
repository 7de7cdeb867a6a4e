"""Raw logits of a model on a PTB-XL fold, cached on disk: what calibration, operating points
and the model benchmarks are computed from, so a re-run costs a file read.

The cache file is keyed by the model file's SHA-256 (the int8 ONNX for exported models, the
torch checkpoint otherwise), the runtime and precision, and the fold's checksum; its folder is
``$DETAK_LOGITS_CACHE`` or ``cache_dir()/logits``.

>>> fold_logits_path("abc", "onnx", "int8", 9, "f00d").name
'fold09_onnx-int8_abc_f00d.npz'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np


def logits_cache_dir() -> Path:
    """``$DETAK_LOGITS_CACHE`` or ``cache_dir()/logits``."""
    env = os.environ.get("DETAK_LOGITS_CACHE")
    if env:
        return Path(env)
    from detak.data.paths import cache_dir

    return cache_dir() / "logits"


def fold_logits_path(model_sha: str, runtime: str, precision: str, fold: int,
                     fold_checksum: str) -> Path:
    """Where the logits of one model file on one fold are cached."""
    return logits_cache_dir() / (f"fold{int(fold):02d}_{runtime}-{precision}_{model_sha[:16]}_"
                                 f"{fold_checksum[:16]}.npz")


def model_file(loaded: Any) -> Path:
    """The file whose numbers ``loaded`` runs: the exported model, or the torch checkpoint."""
    path = getattr(loaded.module, "path", None)
    if path is not None:
        return Path(path)
    from detak.models.trained import torch_weights_file

    return Path(torch_weights_file(loaded.folder, loaded.card))


def fold_logits(loaded: Any, fold: int, chunk: int = 256) -> dict[str, np.ndarray]:
    """``ids``, ``logits`` (N, 5) float32, ``y`` (N, 5) and ``labelled`` of every record of
    PTB-XL fold ``fold`` for ``loaded`` (a `detak.export.predict.LoadedModel`), from the cache
    when there."""
    from detak.models.cnn_data import fold_arrays
    from detak.models.model_card import sha256_file

    fa = fold_arrays(fold)
    path = fold_logits_path(sha256_file(model_file(loaded)), loaded.runtime, loaded.precision,
                            fold, fa.checksums[int(fold)])
    if path.is_file():
        with np.load(path) as d:
            if np.array_equal(d["ids"], fa.ids):
                return {k: d[k] for k in ("ids", "logits", "y", "labelled")}
    z = np.concatenate([loaded.logits(loaded.standardizer.transform(np.asarray(fa.x[s:s + chunk])))
                        for s in range(0, len(fa), chunk)]).astype(np.float32)
    out = {"ids": fa.ids, "logits": z, "y": np.asarray(fa.y), "labelled": np.asarray(fa.labelled)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **out)
    os.replace(tmp, path)
    return out

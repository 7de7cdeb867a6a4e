"""Where detak finds the datasets (``DETAK_DATA``) and keeps its cache (``DETAK_CACHE``).

The data root is ``$DETAK_DATA`` if set, else ``../shared/data`` next to the repository that holds
the ``detak`` package (``Path(detak.__file__).parents[1] / "../shared/data"``), else
``./../shared/data`` from the working directory. The cache is ``$DETAK_CACHE``, else
``$XDG_CACHE_HOME/detak``, else ``~/.cache/detak``.

>>> (data_root() / "ptbxl").name
'ptbxl'
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

DATA_ENV = "DETAK_DATA"
CACHE_ENV = "DETAK_CACHE"


class DataNotFoundError(FileNotFoundError):
    """A dataset (or a file of one) is not where detak looked for it."""


def _default_data_root() -> Path:
    import detak

    repo = Path(detak.__file__).resolve().parents[1]
    candidate = repo.parent / "shared" / "data"
    if candidate.exists():
        return candidate
    return (Path.cwd() / ".." / "shared" / "data").resolve()


def data_root() -> Path:
    """The folder holding the datasets: ``$DETAK_DATA`` or ``../shared/data`` beside the repo.

    The folder is not required to exist; `dataset_dir` checks that.

    >>> isinstance(data_root(), Path)
    True
    """
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return _default_data_root()


def dataset_dir(name: str, root: Path | str | None = None) -> Path:
    """``root/name`` (``root`` defaults to `data_root`); `DataNotFoundError` if it is missing.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     (Path(d) / "ludb").mkdir()
    ...     dataset_dir("ludb", d).name
    'ludb'
    """
    base = Path(root).expanduser() if root is not None else data_root()
    path = base / name
    if not path.is_dir():
        how = ("passed explicitly" if root is not None
               else f"${DATA_ENV}={os.environ[DATA_ENV]!r}" if os.environ.get(DATA_ENV)
               else f"${DATA_ENV} is not set, so the default ../shared/data beside the repo was "
                    "used")
        raise DataNotFoundError(
            f"dataset {name!r} not found: {path} does not exist (data root {base}, {how}); "
            f"set {DATA_ENV} to the folder that contains {name}/")
    return path


def cache_dir() -> Path:
    """detak's cache folder (created on demand): ``$DETAK_CACHE``, ``$XDG_CACHE_HOME/detak``
    or ``~/.cache/detak``.

    >>> cache_dir().is_dir()
    True
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        path = Path(env).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        path = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "detak"
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_npy_atomic(path: Path, array: np.ndarray) -> Path:
    """Write ``array`` to ``path`` (.npy) via a temporary file and a rename, so readers never see
    a half-written file.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = save_npy_atomic(Path(d) / "x.npy", np.arange(3))
    ...     np.load(p).tolist()
    [0, 1, 2]
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, np.ascontiguousarray(array), allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_pickle_atomic(path: Path, obj: object) -> Path:
    """Pickle ``obj`` (a DataFrame or Series: its ``to_pickle``) to ``path`` via a temporary file
    and a rename, so a crash or a parallel reader never sees a half-written cache file.

    >>> import tempfile, pandas as pd
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = save_pickle_atomic(Path(d) / "t.pkl", pd.Series([1, 2]))
    ...     pd.read_pickle(p).tolist()
    [1, 2]
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        obj.to_pickle(tmp)  # type: ignore[attr-defined]
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path

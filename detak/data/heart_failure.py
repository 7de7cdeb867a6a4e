"""The heart-failure clinical records set (Chicco & Jurman 2020; UCI id 519): 299 patients.

Twelve features and the target ``DEATH_EVENT``. Binary columns (anaemia, diabetes,
high_blood_pressure, sex, smoking, DEATH_EVENT) are int8 0/1 (``sex``: 1 = man, 0 = woman as in
the source). ``time`` is the follow-up period in days: it leaks the outcome for screening use, so
`FEATURES_NO_TIME` drops it.

>>> df = load_heart_failure()
>>> df.shape, int(df[TARGET].sum())
((299, 13), 96)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from detak.data.paths import DataNotFoundError, dataset_dir

FILENAME = "heart_failure_clinical_records_dataset.csv"
TARGET = "DEATH_EVENT"
FEATURES: tuple[str, ...] = (
    "age", "anaemia", "creatinine_phosphokinase", "diabetes", "ejection_fraction",
    "high_blood_pressure", "platelets", "serum_creatinine", "serum_sodium", "sex", "smoking",
    "time",
)
FEATURES_NO_TIME: tuple[str, ...] = tuple(f for f in FEATURES if f != "time")
BINARY: tuple[str, ...] = ("anaemia", "diabetes", "high_blood_pressure", "sex", "smoking", TARGET)
DTYPES: dict[str, str] = {
    "age": "float64",  # a few ages are fractional (60.667)
    "creatinine_phosphokinase": "int64",
    "ejection_fraction": "int64",
    "platelets": "float64",
    "serum_creatinine": "float64",
    "serum_sodium": "int64",
    "time": "int64",
    **{b: "int8" for b in BINARY},
}


class HeartFailureFormatError(ValueError):
    """The CSV lacks a column or holds a value that does not fit it (message names both)."""


def default_path() -> Path:
    """``data_root()/heart_failure/heart_failure_clinical_records_dataset.csv``.

    >>> default_path().name
    'heart_failure_clinical_records_dataset.csv'
    """
    return dataset_dir("heart_failure") / FILENAME


def load_heart_failure(path: Path | str | None = None) -> pd.DataFrame:
    """Load and validate the CSV: the 12 `FEATURES` and `TARGET`, typed as in `DTYPES`.

    >>> df = load_heart_failure()
    >>> list(df.columns) == [*FEATURES, TARGET], str(df["sex"].dtype), str(df["age"].dtype)
    (True, 'int8', 'float64')
    """
    path = Path(path) if path is not None else default_path()
    if not path.is_file():
        raise DataNotFoundError(f"heart-failure records not found: {path} does not exist")
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)  # keep the text for messages
    missing = [c for c in (*FEATURES, TARGET) if c not in raw.columns]
    if missing:
        raise HeartFailureFormatError(f"{path}: column(s) {', '.join(missing)} missing "
                                      f"(columns present: {', '.join(map(str, raw.columns))})")
    if raw.empty:
        raise HeartFailureFormatError(f"{path}: no rows")
    out = pd.DataFrame(index=raw.index)
    for col in (*FEATURES, TARGET):
        values = pd.to_numeric(raw[col].str.strip(), errors="coerce")
        bad = values.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise HeartFailureFormatError(f"{path}: column {col!r}, data row {row + 1}: "
                                          f"{raw[col].iloc[row]!r} is missing or not a number")
        dtype = DTYPES[col]
        if col in BINARY and not values.isin([0, 1]).all():
            row = int(np.flatnonzero(~values.isin([0, 1]).to_numpy())[0])
            raise HeartFailureFormatError(f"{path}: column {col!r}, data row {row + 1}: "
                                          f"{raw[col].iloc[row]!r} is not 0 or 1")
        if dtype.startswith("int") and not (values == values.round()).all():
            row = int(np.flatnonzero((values != values.round()).to_numpy())[0])
            raise HeartFailureFormatError(f"{path}: column {col!r}, data row {row + 1}: "
                                          f"{raw[col].iloc[row]!r} is not a whole number")
        out[col] = values.astype(dtype)
    return out


def split_xy(df: pd.DataFrame, with_time: bool = True) -> tuple[pd.DataFrame, pd.Series]:
    """``(X, y)``: the feature columns (without ``time`` unless ``with_time``) and the target.

    >>> X, y = split_xy(load_heart_failure(), with_time=False)
    >>> X.shape, y.name
    ((299, 11), 'DEATH_EVENT')
    """
    cols = list(FEATURES if with_time else FEATURES_NO_TIME)
    missing = [c for c in (*cols, TARGET) if c not in df.columns]
    if missing:
        raise HeartFailureFormatError(f"data frame: column(s) {', '.join(missing)} missing")
    return df[cols], df[TARGET]

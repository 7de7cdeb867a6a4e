"""PTB-XL (v1.0.3): metadata, diagnostic-superclass labels, folds and records, in either layout.

Two layouts are read from the same root (the folder with ``ptbxl_database.csv`` and
``scp_statements.csv``):

* compact: ``signals100/foldKK.{json,indep.xz,resid.xz}`` (the shared copy; folds 1–9 only),
  decoded by `detak.data.ptbxl_compact` and cached as memory-mapped ``.npy``;
* PhysioNet: ``records100/00000/00001_lr.{hea,dat}`` (and ``records500/..._hr`` at 500 Hz) as
  downloaded from PhysioNet, read with ``wfdb.rdrecord``.

Where a fold has compact signals they are used; otherwise the PhysioNet files. Fold 10 (the
benchmark's test fold) is not in the shared copy on purpose: asking for it there raises
`FoldNotAvailableError`; with a full download it works like any other fold.

Labels follow the PTB-XL benchmark (Strodthoff et al. 2021, ``compute_label_aggregations``): a
record gets superclass C if any of its ``scp_codes`` is a statement with ``diagnostic == 1`` and
``diagnostic_class == C`` in ``scp_statements.csv``, whatever its likelihood value (0 included);
records with no diagnostic superclass are left out of the labelled set.

Ages: PTB-XL v1.0.3 codes ages over 89 (and missing ages) as 300. ``age`` keeps the raw value;
``age_years`` is the same but missing (``None`` / ``<NA>``) where the raw value is 300. ``sex`` is
``"M"``/``"F"`` (PTB-XL codes 0 = male, 1 = female).

>>> ptb = open_ptbxl()
>>> len(ptb.metadata), ptb.SUPERCLASSES
(21799, ('NORM', 'MI', 'STTC', 'CD', 'HYP'))
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from detak.data import ptbxl_compact
from detak.data.leads import STANDARD_LEADS, normalize_lead_name
from detak.data.paths import DATA_ENV, DataNotFoundError, cache_dir, data_root, save_npy_atomic
from detak.data.recording import Recording

SUPERCLASSES: tuple[str, ...] = ("NORM", "MI", "STTC", "CD", "HYP")
DATABASE_CSV = "ptbxl_database.csv"
STATEMENTS_CSV = "scp_statements.csv"
AGE_CODED_OVER_89 = 300
N_SAMPLES = {100: 1000, 500: 5000}
_FILENAME_COLUMN = {100: "filename_lr", 500: "filename_hr"}
_RECORDS_DIR = {100: "records100", 500: "records500"}
_REQUIRED_DB = ("patient_id", "age", "sex", "scp_codes", "strat_fold", "filename_lr",
                "filename_hr")
_REQUIRED_STATEMENTS = ("diagnostic", "diagnostic_class")
_WFDB_UNITS_TO_UV = {"mv": 1000.0, "uv": 1.0, "µv": 1.0, "v": 1e6}


class PtbXlFormatError(ValueError):
    """A PTB-XL file is malformed (the message names the file and the column, record or field)."""


class FoldNotAvailableError(DataNotFoundError):
    """The signals of a fold are not in this copy of PTB-XL (e.g. fold 10 in the shared copy)."""


class UnknownRecordError(KeyError):
    """An ecg_id that ``ptbxl_database.csv`` does not list."""

    def __str__(self) -> str:
        return str(self.args[0])


class UnlabelledRecordError(ValueError):
    """Labels were asked for records that have no diagnostic superclass."""


def _find_root(root: Path | str | None) -> Path:
    explicit = root is not None
    base = Path(root).expanduser() if explicit else data_root()
    candidates = [base / "ptbxl", base]
    for cand in candidates:
        if (cand / DATABASE_CSV).is_file():
            return cand
    how = ("passed explicitly" if explicit
           else f"from ${DATA_ENV}={os.environ[DATA_ENV]!r}" if os.environ.get(DATA_ENV)
           else f"${DATA_ENV} not set, default ../shared/data beside the repo")
    raise DataNotFoundError(
        f"PTB-XL not found: no {DATABASE_CSV} in {candidates[0]} or {candidates[1]} (root {base}, "
        f"{how}); set {DATA_ENV} or pass open_ptbxl(root=...) the folder of a PTB-XL copy")


def open_ptbxl(root: Path | str | None = None, *, cache: Path | str | bool = True) -> PtbXl:
    """Open PTB-XL at ``root`` (the folder with ``ptbxl_database.csv``, or its parent holding
    ``ptbxl/``); default ``data_root()/ptbxl`` (either may also be a PhysioNet download).

    ``cache``: True (default) keeps decoded compact folds in ``cache_dir()/ptbxl100`` and
    PhysioNet-layout folds read by `PtbXl.load_fold` in ``cache_dir()/ptbxl_wfdb`` (keyed by the
    files' names, sizes and mtimes) as memory-mapped ``.npy``; a folder puts both there; False
    caches nothing on disk.

    >>> ptb = open_ptbxl()
    >>> rec = ptb.record(1)
    >>> rec.name, rec.fs, rec.signal.shape, rec.meta["sex"], rec.meta["superclasses"]
    ('ptbxl:1', 100.0, (12, 1000), 'F', ['NORM'])
    """
    return PtbXl(_find_root(root), cache=cache)


load_ptbxl = open_ptbxl  # the name architecture.md uses


class PtbXl:
    """One copy of PTB-XL (see the module docstring for layouts, labels and conventions)."""

    SUPERCLASSES = SUPERCLASSES

    def __init__(self, root: Path, cache: Path | str | bool = True) -> None:
        self.root = Path(root)
        self.cache = cache
        self.signals_dir = self.root / "signals100"
        self._folds: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def __repr__(self) -> str:
        return f"PtbXl({str(self.root)!r})"

    # ---------------------------------------------------------------- metadata and labels
    @functools.cached_property
    def statements(self) -> pd.DataFrame:
        """``scp_statements.csv`` indexed by SCP code."""
        path = self.root / STATEMENTS_CSV
        if not path.is_file():
            raise DataNotFoundError(f"PTB-XL statements not found: {path} does not exist")
        df = pd.read_csv(path, index_col=0)
        for col in _REQUIRED_STATEMENTS:
            if col not in df.columns:
                raise PtbXlFormatError(f"{path}: column {col!r} is missing")
        return df

    @functools.cached_property
    def _diagnostic_class(self) -> dict[str, str]:
        st = self.statements
        diag = st[st["diagnostic"] == 1]
        out = {}
        for code, cls in diag["diagnostic_class"].items():
            if isinstance(cls, str) and cls:
                if cls not in SUPERCLASSES:
                    raise PtbXlFormatError(f"{self.root / STATEMENTS_CSV}: statement {code!r} has "
                                           f"diagnostic_class {cls!r}, not one of {SUPERCLASSES}")
                out[str(code)] = cls
        return out

    @functools.cached_property
    def metadata(self) -> pd.DataFrame:
        """``ptbxl_database.csv`` indexed by ecg_id, with ``scp_codes`` as dicts, ``sex`` as
        ``"M"``/``"F"``, ``age``/``age_years``/``patient_id`` as nullable ints, and a
        ``superclasses`` list column (in `SUPERCLASSES` order)."""
        path = self.root / DATABASE_CSV
        df = pd.read_csv(path)
        for col in ("ecg_id", *_REQUIRED_DB):
            if col not in df.columns:
                raise PtbXlFormatError(f"{path}: column {col!r} is missing")
        if df["ecg_id"].duplicated().any():
            dup = df.loc[df["ecg_id"].duplicated(), "ecg_id"].iloc[0]
            raise PtbXlFormatError(f"{path}: ecg_id {dup} appears more than once")
        df = df.set_index("ecg_id").sort_index()
        codes = []
        for ecg_id, text in df["scp_codes"].items():
            try:
                value = ast.literal_eval(text) if isinstance(text, str) else None
            except (ValueError, SyntaxError):
                value = None
            if not isinstance(value, dict):
                raise PtbXlFormatError(f"{path}: ecg_id {ecg_id}: scp_codes {text!r} is not a "
                                       "dict literal")
            codes.append({str(k): float(v) for k, v in value.items()})
        df["scp_codes"] = codes
        sex = df["sex"].map({0: "M", 1: "F"})
        if sex.isna().any():
            bad = df.index[sex.isna()][0]
            raise PtbXlFormatError(f"{path}: ecg_id {bad}: sex {df.at[bad, 'sex']!r} is not 0 "
                                   "(male) or 1 (female)")
        df["sex"] = sex
        folds = pd.to_numeric(df["strat_fold"], errors="coerce")
        if folds.isna().any():
            bad = df.index[folds.isna()][0]
            raise PtbXlFormatError(f"{path}: ecg_id {bad}: strat_fold "
                                   f"{df.at[bad, 'strat_fold']!r} is not a number")
        df["strat_fold"] = folds.astype(int)
        df["patient_id"] = pd.to_numeric(df["patient_id"], errors="coerce").round().astype("Int64")
        age = pd.to_numeric(df["age"], errors="coerce").round().astype("Int64")
        df["age"] = age
        df["age_years"] = age.mask(age == AGE_CODED_OVER_89)
        df["superclasses"] = [self._superclasses_of(c) for c in codes]
        return df

    def _superclasses_of(self, codes: dict[str, float]) -> list[str]:
        found = {self._diagnostic_class[c] for c in codes if c in self._diagnostic_class}
        return [s for s in SUPERCLASSES if s in found]

    @functools.cached_property
    def _label_table(self) -> pd.DataFrame:
        sc = self.metadata["superclasses"]
        table = {s: sc.map(lambda lst, s=s: s in lst).astype(np.uint8) for s in SUPERCLASSES}
        return pd.DataFrame(table, index=self.metadata.index)

    def _check_ids(self, ids: Iterable[int]) -> np.ndarray:
        arr = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids).astype(np.int64)
        unknown = ~np.isin(arr, self.metadata.index.to_numpy())
        if unknown.any():
            raise UnknownRecordError(f"ecg_id {int(arr[unknown][0])} is not in "
                                     f"{self.root / DATABASE_CSV} ({int(unknown.sum())} unknown)")
        return arr

    def labelled_ids(self, folds: Iterable[int] | None = None) -> np.ndarray:
        """Ascending ecg_ids with at least one diagnostic superclass (optionally in ``folds``).

        >>> ptb = open_ptbxl()
        >>> len(ptb.labelled_ids()), len(ptb.labelled_ids([9]))
        (21388, 2146)
        """
        md = self.metadata
        mask = md["superclasses"].map(len) > 0
        if folds is not None:
            mask &= md["strat_fold"].isin(list(folds))
        return md.index[mask].to_numpy(dtype=np.int64)

    def labels(self, ids: Iterable[int], allow_unlabelled: bool = False) -> np.ndarray:
        """Multilabel targets (n, 5) uint8 in `SUPERCLASSES` order for ``ids``.

        Records without a diagnostic superclass raise `UnlabelledRecordError` unless
        ``allow_unlabelled`` (then their row is all zeros).

        >>> open_ptbxl().labels([1, 8, 351]).tolist()  # NORM; IMI; NST_ at likelihood 0 counts
        [[1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0]]
        """
        arr = self._check_ids(ids)
        out = self._label_table.loc[arr].to_numpy(dtype=np.uint8)
        if not allow_unlabelled and len(out):
            empty = out.sum(axis=1) == 0
            if empty.any():
                raise UnlabelledRecordError(
                    f"{int(empty.sum())} of {len(arr)} records have no diagnostic superclass "
                    f"(first: ecg_id {int(arr[empty][0])}); use labelled_ids() to select the "
                    "labelled set, or allow_unlabelled=True")
        return out

    def fold_ids(self, fold: int) -> np.ndarray:
        """Ascending ecg_ids of strat fold ``fold`` (all records, labelled or not).

        >>> len(open_ptbxl().fold_ids(10))
        2198
        """
        self._check_fold(fold)
        md = self.metadata
        return md.index[md["strat_fold"] == int(fold)].to_numpy(dtype=np.int64)

    def _check_fold(self, fold: int) -> None:
        folds = sorted(int(f) for f in self.metadata["strat_fold"].unique())
        if int(fold) not in folds:
            raise ValueError(f"strat_fold {fold} does not exist in {self.root / DATABASE_CSV} "
                             f"(folds: {folds})")

    # ---------------------------------------------------------------- signals
    def _check_fs(self, fs: int) -> int:
        if int(fs) not in N_SAMPLES:
            raise ValueError(f"PTB-XL is recorded at 100 or 500 Hz, not fs={fs}; resample with "
                             "detak.signal.filters.resample")
        return int(fs)

    def _wfdb_paths(self, ids: np.ndarray, fs: int) -> list[Path]:
        col = self.metadata[_FILENAME_COLUMN[fs]]
        return [self.root / str(col.at[int(i)]) for i in ids]

    def _missing_error(self, fold: int, fs: int, detail: str) -> FoldNotAvailableError:
        rate = "" if fs == 100 else f" at {fs} Hz"
        msg = f"fold {fold} signals{rate} are not in {self.root}: {detail}"
        if fold == 10:
            msg += (". Fold 10 is the PTB-XL benchmark's test fold and is left out of the shared "
                    f"copy on purpose; to use it, point {DATA_ENV} (or open_ptbxl(root=...)) at a "
                    "full PTB-XL v1.0.3 download")
        return FoldNotAvailableError(msg)

    def _source(self, fold: int, fs: int) -> str:
        """'compact' or 'wfdb', or raise `FoldNotAvailableError`."""
        if fs == 100 and fold in ptbxl_compact.available_folds(self.signals_dir):
            return "compact"
        records = self.root / _RECORDS_DIR[fs]
        if records.is_dir():
            return "wfdb"
        compact = (f"no {self.signals_dir.name}/fold{fold:02d}.json (compact layout) and "
                   if fs == 100 else "the compact layout holds 100 Hz only, and ")
        raise self._missing_error(fold, fs, f"{compact}no {records.name}/ folder (PhysioNet "
                                  "layout)")

    def folds_with_signals(self, fs: int = 100) -> list[int]:
        """Strat folds whose signals at ``fs`` are all present in this copy.

        >>> open_ptbxl().folds_with_signals()
        [1, 2, 3, 4, 5, 6, 7, 8, 9]
        """
        fs = self._check_fs(fs)
        out = []
        for fold in sorted(int(f) for f in self.metadata["strat_fold"].unique()):
            try:
                source = self._source(fold, fs)
            except FoldNotAvailableError:
                continue
            paths = [] if source == "compact" else self._wfdb_paths(self.fold_ids(fold), fs)
            if all(p.with_suffix(".hea").is_file() and p.with_suffix(".dat").is_file()
                   for p in paths):
                out.append(fold)
        return out

    def load_fold(self, fold: int, fs: int = 100) -> tuple[np.ndarray, np.ndarray]:
        """``(ecg_ids, signals)`` of strat fold ``fold``: ascending ids and int16
        (N, 12, 1000·fs/100) in µV, standard lead order. The array may be a read-only memmap of
        the cache.

        >>> ids, x = open_ptbxl().load_fold(9)
        >>> x.shape, x.dtype, bool((ids == open_ptbxl().fold_ids(9)).all())
        ((2183, 12, 1000), dtype('int16'), True)
        """
        fs = self._check_fs(fs)
        self._check_fold(fold)
        key = (int(fold), fs)
        if key not in self._folds:
            if self._source(int(fold), fs) == "compact":
                self._folds[key] = ptbxl_compact.load_fold(self.signals_dir, fold,
                                                           cache=self.cache)
            else:
                self._folds[key] = self._load_wfdb_fold(int(fold), fs)
        return self._folds[key]

    def _load_wfdb_fold(self, fold: int, fs: int) -> tuple[np.ndarray, np.ndarray]:
        ids = self.fold_ids(fold)
        paths = self._wfdb_paths(ids, fs)
        stamp = hashlib.sha256(f"{self.root.resolve()}|{fs}".encode())
        missing = []
        for p in paths:
            for suffix in (".hea", ".dat"):
                f = p.with_suffix(suffix)
                try:
                    st = f.stat()
                except FileNotFoundError:
                    missing.append(f)
                    continue
                stamp.update(f"|{f.name}|{st.st_size}|{st.st_mtime_ns}".encode())
        if missing:
            raise self._missing_error(fold, fs, f"{len(missing)} WFDB files of {len(ids)} records "
                                      f"are missing, e.g. {missing[0]}")
        cache_file = None
        if self.cache is not False:
            folder = cache_dir() / "ptbxl_wfdb" if self.cache is True else Path(self.cache)
            cache_file = folder / f"ptbxl{fs}_wfdb_fold{fold:02d}_{stamp.hexdigest()[:32]}.npy"
            if cache_file.is_file():
                try:
                    arr = np.load(cache_file, mmap_mode="r", allow_pickle=False)
                    if arr.dtype == np.int16 and arr.shape == (len(ids), 12, N_SAMPLES[fs]):
                        return ids, arr
                except (ValueError, OSError, EOFError):
                    pass
        arr = np.empty((len(ids), 12, N_SAMPLES[fs]), dtype=np.int16)
        for n, p in enumerate(paths):
            arr[n] = read_wfdb_uv(p, fs)
        if cache_file is not None:
            save_npy_atomic(cache_file, arr)
            return ids, np.load(cache_file, mmap_mode="r", allow_pickle=False)
        return ids, arr

    def record(self, ecg_id: int, fs: int = 100) -> Recording:
        """One record as a `Recording` (float32 mV, standard leads) with its metadata in ``meta``.

        Compact folds are decoded once and then read from the memory-mapped cache.

        >>> rec = open_ptbxl().record(108)
        >>> rec.leads[:3], rec.meta["strat_fold"], rec.meta["age"], rec.meta["age_years"]
        (('I', 'II', 'III'), 8, 300, None)
        """
        fs = self._check_fs(fs)
        ecg_id = int(self._check_ids([ecg_id])[0])
        row = self.metadata.loc[ecg_id]
        fold = int(row["strat_fold"])
        if self._source(fold, fs) == "compact":
            ids, arr = self.load_fold(fold, fs)
            i = int(np.searchsorted(ids, ecg_id))
            if i >= len(ids) or ids[i] != ecg_id:
                raise PtbXlFormatError(
                    f"ecg_id {ecg_id} is in fold {fold} of {self.root / DATABASE_CSV} but not in "
                    f"{self.signals_dir / f'fold{fold:02d}.json'}")
            uv = np.asarray(arr[i])
            source = f"{self.signals_dir}/fold{fold:02d} (compact)"
        else:
            path = self.root / str(row[_FILENAME_COLUMN[fs]])
            if not path.with_suffix(".hea").is_file():
                raise self._missing_error(fold, fs, f"{path.with_suffix('.hea')} does not exist")
            uv = read_wfdb_uv(path, fs)
            source = str(path)
        start = None
        if isinstance(row.get("recording_date"), str):
            try:
                start = datetime.fromisoformat(row["recording_date"])
            except ValueError:
                start = None
        age = row["age"]
        age_years = row["age_years"]
        meta = {
            "dataset": "PTB-XL",
            "ecg_id": ecg_id,
            "patient_id": None if pd.isna(row["patient_id"]) else int(row["patient_id"]),
            "age": None if pd.isna(age) else int(age),
            "age_years": None if pd.isna(age_years) else int(age_years),
            "sex": row["sex"],
            "strat_fold": fold,
            "superclasses": list(row["superclasses"]),
            "scp_codes": dict(row["scp_codes"]),
            "source": source,
        }
        signal = uv.astype(np.float32) / np.float32(1000.0)
        return Recording(signal, fs=float(fs), leads=STANDARD_LEADS, name=f"ptbxl:{ecg_id}",
                         start_time=start, meta=meta)


def read_wfdb_uv(path: Path | str, fs: int = 100) -> np.ndarray:
    """Read one PTB-XL WFDB record (path without extension) as int16 (12, n) µV in standard
    lead order; checks the sample rate, length and lead names against PTB-XL's.

    >>> import tempfile, wfdb
    >>> d = tempfile.mkdtemp()
    >>> x = np.arange(12 * 1000, dtype=np.int16).reshape(1000, 12) % 500
    >>> wfdb.wrsamp("00001_lr", 100, ["mV"] * 12, [l.upper() for l in STANDARD_LEADS],
    ...             d_signal=x, fmt=["16"] * 12, adc_gain=[1000] * 12, baseline=[0] * 12,
    ...             write_dir=d)
    >>> bool((read_wfdb_uv(d + "/00001_lr") == x.T).all())
    True
    """
    import wfdb

    path = Path(path)
    try:
        rec = wfdb.rdrecord(str(path), physical=False)
    except FileNotFoundError as exc:
        raise DataNotFoundError(f"PTB-XL record not found: {path}.hea/.dat ({exc})") from exc
    except Exception as exc:  # wfdb raises plain ValueError/IndexError on broken files
        raise PtbXlFormatError(f"{path}: cannot read WFDB record ({exc})") from exc
    if rec.fs is None or abs(float(rec.fs) - fs) > 1e-6:
        raise PtbXlFormatError(f"{path}: sample rate {rec.fs} Hz, expected {fs} Hz")
    if rec.sig_len != N_SAMPLES[fs]:
        raise PtbXlFormatError(f"{path}: {rec.sig_len} samples, expected {N_SAMPLES[fs]}")
    names = [normalize_lead_name(n) for n in rec.sig_name]
    digital = np.asarray(rec.d_signal)
    out = np.empty((len(STANDARD_LEADS), rec.sig_len), dtype=np.int16)
    for row, lead in enumerate(STANDARD_LEADS):
        if lead not in names:
            raise PtbXlFormatError(f"{path}: lead {lead} missing (leads: {', '.join(names)})")
        j = names.index(lead)
        gain, base = float(rec.adc_gain[j]), float(rec.baseline[j])
        unit = str(rec.units[j] or "mV").strip().lower()
        if unit not in _WFDB_UNITS_TO_UV or gain == 0:
            raise PtbXlFormatError(f"{path}: lead {lead} has unit {rec.units[j]!r} and gain "
                                   f"{gain}; expected a voltage unit and a non-zero gain")
        scale = _WFDB_UNITS_TO_UV[unit] / gain
        values = digital[:, j].astype(np.int64)
        if scale == 1.0 and base == 0.0:
            uv = values
        else:
            uv = np.rint((values - base) * scale).astype(np.int64)
        if uv.min() < -32768 or uv.max() > 32767:
            raise PtbXlFormatError(f"{path}: lead {lead} exceeds the int16 µV range")
        out[row] = uv
    return out


def describe(ptb: PtbXl) -> dict[str, Any]:
    """Counts that identify a PTB-XL copy (records, patients, superclass counts, labelled per
    fold), for reports and provenance checks.

    >>> describe(open_ptbxl())["superclass_counts"]["NORM"]
    9514
    """
    md = ptb.metadata
    table = ptb.labels(md.index, allow_unlabelled=True)
    labelled = table.sum(axis=1) > 0
    return {
        "root": str(ptb.root),
        "records": len(md),
        "patients": int(md["patient_id"].nunique()),
        "superclass_counts": {s: int(table[:, i].sum()) for i, s in enumerate(SUPERCLASSES)},
        "labelled": int(labelled.sum()),
        "labelled_per_fold": {int(f): int(n) for f, n in
                              md.loc[labelled, "strat_fold"].value_counts().sort_index().items()},
        "folds_with_signals_100hz": ptb.folds_with_signals(100),
    }


if __name__ == "__main__":  # python -m detak.data.ptbxl: print the counts of the default copy
    print(json.dumps(describe(open_ptbxl()), indent=2))

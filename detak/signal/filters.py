"""Zero-phase filters, resampling and standardisation — S1's preprocessing chain.

Array functions take ``x`` of shape (n_leads, n_samples) or (n_samples,) and ``fs`` in Hz, and
return float32 of the same shape; `clean` applies the chain to a `Recording`.

>>> import numpy as np
>>> fs = 500.0
>>> t = np.arange(5000) / fs
>>> x = np.sin(2 * np.pi * 10 * t) + 2.0 * np.sin(2 * np.pi * 0.1 * t)   # 10 Hz + drift
>>> y = remove_baseline(x, fs)
>>> bool(np.abs(y[500:-500] - np.sin(2 * np.pi * 10 * t[500:-500])).max() < 0.05)
True
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy import signal as sps

from detak.data.recording import Recording

BASELINE_CUTOFF_HZ = 0.5
LOWPASS_CUTOFF_HZ = 40.0


class FilterError(ValueError):
    """A filter cannot be applied (sample rate too low, recording too short, NaN samples)."""


def _as_float(x: np.ndarray, fs: float | None = None) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if fs is not None and not (np.isfinite(fs) and fs > 0):
        raise FilterError(f"sample rate missing or invalid ({fs})")
    if arr.ndim == 0 or arr.shape[-1] == 0:
        raise FilterError(f"signal has no samples (shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        raise FilterError("signal contains NaN or inf samples; fill or cut flagged gaps first")
    return arr


def _filtfilt(sos: np.ndarray, x: np.ndarray) -> np.ndarray:
    n = x.shape[-1]
    # Default padding (3 × sections × 2) is too short for the 0.5 Hz filter: reflect a full
    # second or as much as the record allows, so edges do not ring.
    padlen = min(n - 1, max(3 * (2 * sos.shape[0] + 1), int(n // 2)))
    return sps.sosfiltfilt(sos, x, axis=-1, padtype="odd", padlen=padlen)


def lowpass(x: np.ndarray, fs: float, cutoff_hz: float = LOWPASS_CUTOFF_HZ,
            order: int = 4) -> np.ndarray:
    """Zero-phase Butterworth low-pass. Cut-offs at or above Nyquist leave ``x`` unchanged.

    >>> import numpy as np
    >>> lowpass(np.ones(300), 100.0).round(3)[:3]
    array([1., 1., 1.], dtype=float32)
    """
    arr = _as_float(x, fs)
    if cutoff_hz >= 0.95 * fs / 2:
        return arr.astype(np.float32)
    sos = sps.butter(order, cutoff_hz, btype="low", fs=fs, output="sos")
    return _filtfilt(sos, arr).astype(np.float32)


def remove_baseline(x: np.ndarray, fs: float, cutoff_hz: float = BASELINE_CUTOFF_HZ,
                    order: int = 2) -> np.ndarray:
    """S1's baseline removal: low-pass at ``cutoff_hz`` isolates the drift, which is subtracted.

    >>> import numpy as np
    >>> float(np.abs(remove_baseline(np.full(1000, 3.0), 100.0)).max()) < 1e-3
    True
    """
    arr = _as_float(x, fs)
    sos = sps.butter(order, cutoff_hz, btype="low", fs=fs, output="sos")
    return (arr - _filtfilt(sos, arr)).astype(np.float32)


def notch(x: np.ndarray, fs: float, mains_hz: float = 50.0, quality: float = 30.0,
          harmonics: bool = True) -> np.ndarray:
    """Zero-phase IIR notch at the mains frequency (and its harmonics below Nyquist).

    >>> import numpy as np
    >>> fs = 500.0; t = np.arange(5000) / fs
    >>> y = notch(np.sin(2 * np.pi * 50 * t), fs)
    >>> bool(np.abs(y[1000:-1000]).max() < 0.05)
    True
    """
    arr = _as_float(x, fs)
    f = mains_hz
    while f < 0.95 * fs / 2:
        b, a = sps.iirnotch(f, quality, fs=fs)
        arr = sps.filtfilt(b, a, arr, axis=-1, padlen=min(arr.shape[-1] - 1, int(fs)))
        if not harmonics:
            break
        f += mains_hz
    return arr.astype(np.float32)


def mains_rms(y: np.ndarray, fs: float, mains_hz: float) -> float | None:
    """RMS (mV) of the mains line at ``mains_hz`` above the neighbouring spectrum (Welch), for
    one lead; None when the line is not at least 6 Hz below Nyquist.

    >>> import numpy as np
    >>> fs = 500.0; t = np.arange(5000) / fs
    >>> round(mains_rms(0.1 * np.sin(2 * np.pi * 50 * t), fs, 50.0), 3)   # 0.1 / sqrt(2)
    0.071
    """
    if mains_hz + 6.0 >= fs / 2:
        return None
    y = np.asarray(y, dtype=np.float64)
    f, p = sps.welch(y, fs=fs, nperseg=min(y.size, int(round(2 * fs))), detrend="constant")
    band = (f >= mains_hz - 1.0) & (f <= mains_hz + 1.0)
    side = (np.abs(f - mains_hz) >= 2.0) & (np.abs(f - mains_hz) <= 6.0)
    excess = float(np.sum(p[band] - np.median(p[side])) * (f[1] - f[0]))
    return float(np.sqrt(max(excess, 0.0)))


def resample(x: np.ndarray, fs: float, target_fs: float) -> np.ndarray:
    """Polyphase resampling (anti-aliased) from ``fs`` to ``target_fs``.

    >>> import numpy as np
    >>> resample(np.zeros((12, 5000)), 500.0, 100.0).shape
    (12, 1000)
    """
    arr = _as_float(x, fs)
    if not (np.isfinite(target_fs) and target_fs > 0):
        raise FilterError(f"target sample rate missing or invalid ({target_fs})")
    if fs == target_fs:
        return arr.astype(np.float32)
    ratio = Fraction(float(target_fs) / float(fs)).limit_denominator(1000)
    # padtype="line": the default zero padding pulls the first and last samples of a signal
    # with an offset toward 0 (a 3 mV offset came out as 1.8 mV at the edges).
    y = sps.resample_poly(arr, ratio.numerator, ratio.denominator, axis=-1, padtype="line")
    n_out = int(round(arr.shape[-1] * target_fs / fs))
    return y[..., :n_out].astype(np.float32)


def clean(rec: Recording, *, baseline_hz: float | None = BASELINE_CUTOFF_HZ,
          lowpass_hz: float | None = LOWPASS_CUTOFF_HZ, notch_hz: float | None = None,
          target_fs: float | None = None) -> Recording:
    """S1's preprocessing on a `Recording`: baseline removal, 40 Hz low-pass, optional notch
    (50 Hz in Indonesia) and resampling. Zero-phase throughout, so waves do not move.

    >>> import numpy as np
    >>> rec = Recording(np.random.default_rng(0).normal(size=(12, 5000)), 500.0,
    ...                 ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"])
    >>> out = clean(rec, notch_hz=50, target_fs=100)
    >>> out.signal.shape, out.fs, out.meta["preprocessing"][-1]
    ((12, 1000), 100.0, 'resample 500→100 Hz')
    """
    if not rec.fs or not np.isfinite(rec.fs) or rec.fs <= 0:
        raise FilterError(f"{rec.name or 'recording'}: sample rate missing or invalid ({rec.fs})")
    x, fs, steps = rec.signal, rec.fs, list(rec.meta.get("preprocessing", []))
    if baseline_hz:
        x = remove_baseline(x, fs, baseline_hz)
        steps.append(f"baseline removal {baseline_hz:g} Hz")
    if notch_hz:
        x = notch(x, fs, notch_hz)
        steps.append(f"notch {notch_hz:g} Hz")
    if lowpass_hz:
        x = lowpass(x, fs, lowpass_hz)
        steps.append(f"low-pass {lowpass_hz:g} Hz")
    if target_fs and target_fs != fs:
        x = resample(x, fs, target_fs)
        steps.append(f"resample {fs:g}→{target_fs:g} Hz")
        fs = float(target_fs)
    return rec.replace(signal=x, fs=fs, meta={**rec.meta, "preprocessing": steps})


@dataclass
class Standardizer:
    """Global z-normalisation with statistics fitted on training data only (S1).

    ``per_lead=True`` keeps one mean/SD per lead instead of one for all leads.

    >>> import numpy as np
    >>> s = Standardizer.fit(np.array([[[1.0, 3.0]], [[1.0, 3.0]]]))
    >>> s.mean, s.std
    ([2.0], [1.0])
    >>> s.transform(np.array([[2.0, 4.0]])).tolist()
    [[0.0, 2.0]]
    """

    mean: list[float]
    std: list[float]
    per_lead: bool = False

    @classmethod
    def fit(cls, x: np.ndarray, per_lead: bool = False) -> Standardizer:
        """Fit on an array (n_records, n_leads, n_samples)."""
        arr = np.asarray(x, dtype=np.float64)
        if per_lead:
            axes = tuple(i for i in range(arr.ndim) if i != arr.ndim - 2)
            return cls(arr.mean(axis=axes).tolist(), arr.std(axis=axes).tolist(), True)
        return cls([float(arr.mean())], [float(arr.std())], False)

    def transform(self, x: np.ndarray) -> np.ndarray:
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        if self.per_lead:
            mean, std = mean[:, None], std[:, None]
        std = np.where(std > 0, std, 1.0)
        return ((np.asarray(x, dtype=np.float32) - mean) / std).astype(np.float32)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"mean": self.mean, "std": self.std,
                                          "per_lead": self.per_lead}, indent=2))

    @classmethod
    def load(cls, path: str | Path) -> Standardizer:
        d = json.loads(Path(path).read_text())
        return cls([float(v) for v in d["mean"]], [float(v) for v in d["std"]],
                   bool(d.get("per_lead", False)))

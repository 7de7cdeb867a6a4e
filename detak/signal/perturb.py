"""Reproducible ECG perturbations (fault injection): what breaks naive beat detectors.

Each function takes ``x`` of shape (n_leads, n_samples) or (n_samples,) in mV at ``fs`` Hz and
returns a perturbed float32 copy of the same shape; ``x`` is never modified. Random choices
(burst positions, noise, phases, spike polarity per lead) come from ``seed`` (an int, a
sequence of ints or a `numpy.random.Generator`), so a perturbation is the same on every run.
Used by ``benchmarks/hr_robustness.py`` and by tests; meant for hardware-in-the-loop fault
injection too (feed the output to a signal generator).

- `tall_t_waves`: T waves (given their onset/offset per lead) scaled ×3 around a straight
  baseline, with smooth tapers, so a detector sees a T as tall as the QRS;
- `noise_bursts`: bursts of EMG-like band-limited (20-150 Hz) noise, peak-to-peak comparable to
  each lead's QRS, in all leads or a few;
- `pacing_spikes`: narrow (1-2 ms), large spikes with a small recovery tail before each QRS;
- `baseline_wander`: a slow sinusoid (0.3 Hz, 1 mV);
- `mains_hum`: 50 Hz (or 60 Hz) sinusoid;
- `poor_lead`: a lead made poor as a Holter's modified chest lead often is: scaled to a
  0.17 mV QRS with EMG-like noise (``"low"``), or with in-band (3-30 Hz) noise (``"noisy"``).
- `swap_limb_electrodes`: two limb cables interchanged (LA/RA, LA/LL, RA/LL, `LIMB_SWAPS`): each
  limb lead derived from the swapped electrode potentials, chest leads unchanged
  (deterministic; takes the lead names, not ``fs``).

>>> import numpy as np
>>> fs = 500.0
>>> t = np.arange(5000) / fs
>>> x = np.vstack([np.sin(2 * np.pi * 1.2 * t)] * 2)
>>> y = mains_hum(baseline_wander(x, fs, seed=1), fs, amplitude_mv=0.2, seed=1)
>>> y.shape, y.dtype, bool(np.abs(y - x).max() > 1.0), float(np.abs(x).max()) <= 1.0
((2, 5000), dtype('float32'), True, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import signal as sps

Seed = int | Sequence[int] | np.random.Generator | None
Segments = Sequence[tuple[int, int]]


class PerturbationError(ValueError):
    """A perturbation cannot be applied as asked (bad shape, sample rate, segment, amplitude)."""


def _as_2d(x: np.ndarray, fs: float, what: str) -> tuple[np.ndarray, bool]:
    arr = np.asarray(x, dtype=np.float64)
    if not (isinstance(fs, int | float | np.floating | np.integer) and np.isfinite(fs)
            and fs > 0):
        raise PerturbationError(f"{what}: sample rate missing or invalid ({fs!r})")
    if arr.ndim not in (1, 2) or arr.shape[-1] == 0:
        raise PerturbationError(f"{what}: signal must be (n_samples,) or (n_leads, n_samples) "
                                f"with samples, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise PerturbationError(f"{what}: signal contains NaN or inf samples")
    one = arr.ndim == 1
    return (arr[None, :].copy() if one else arr.copy()), one


def _out(y: np.ndarray, one: bool) -> np.ndarray:
    return (y[0] if one else y).astype(np.float32)


def _rng(seed: Seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _positive(value: float, name: str, what: str) -> float:
    if not (np.isfinite(value) and value > 0):
        raise PerturbationError(f"{what}: {name} must be a positive number, got {value!r}")
    return float(value)


def _lead_rows(leads: Sequence[int] | None, n_leads: int, what: str) -> list[int]:
    if leads is None:
        return list(range(n_leads))
    rows = [int(r) for r in leads]
    bad = [r for r in rows if not 0 <= r < n_leads]
    if bad or not rows:
        raise PerturbationError(f"{what}: lead rows {bad or rows} do not exist "
                                f"(signal has {n_leads} leads, rows 0..{n_leads - 1})")
    return sorted(set(rows))


def _taper(n: int, ramp: int) -> np.ndarray:
    """1 in the middle, raised-cosine ramps of ``ramp`` samples from 0 at both ends."""
    w = np.ones(n)
    ramp = min(ramp, n // 2)
    if ramp > 0:
        r = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
        w[:ramp] = r
        w[n - ramp:] = r[::-1]
    return w


def robust_amplitude(x: np.ndarray, fs: float) -> np.ndarray:
    """Per-lead peak-to-peak (0.5th to 99.5th percentile) after removing the baseline (mV):
    close to the QRS amplitude of a lead. Returns shape (n_leads,).

    >>> import numpy as np
    >>> t = np.arange(5000) / 500.0
    >>> qrs = np.where((t % 1.0 > 0.5) & (t % 1.0 < 0.54), 1.0, 0.0)   # 1 mV, 40 ms, 60 bpm
    >>> robust_amplitude(np.vstack([qrs, np.zeros(5000)]), 500.0).round(1).tolist()
    [1.0, 0.0]
    """
    from detak.signal.filters import remove_baseline

    arr, _ = _as_2d(x, fs, "robust_amplitude")
    y = np.asarray(remove_baseline(arr, fs), dtype=np.float64)
    return np.percentile(y, 99.5, axis=1) - np.percentile(y, 0.5, axis=1)


def tall_t_waves(x: np.ndarray, fs: float, segments: Sequence[Segments], factor: float = 3.0,
                 taper_ms: float = 20.0) -> np.ndarray:
    """Scale each T wave by ``factor`` (default ×3) around the straight line joining its onset
    and offset samples, with raised-cosine tapers of ``taper_ms`` at both ends (smooth, and the
    signal outside the segments is untouched).

    ``segments``: one list of (onset, offset) sample pairs per lead (for 1-D ``x``: a list with
    one such list). A lead with an empty list is left as it is.

    >>> import numpy as np
    >>> t = np.arange(1000) / 500.0
    >>> x = 0.2 * np.exp(-((t - 1.0) / 0.05) ** 2)          # a 0.2 mV "T wave" at 1 s
    >>> y = tall_t_waves(x, 500.0, [[(400, 600)]])
    >>> round(float(y.max()), 2), bool(np.allclose(y[:400], x[:400]))
    (0.6, True)
    """
    what = "tall_t_waves"
    arr, one = _as_2d(x, fs, what)
    _positive(factor, "factor", what)
    if len(segments) != arr.shape[0]:
        raise PerturbationError(f"{what}: {len(segments)} segment lists for {arr.shape[0]} "
                                f"leads (give one list of (onset, offset) pairs per lead)")
    n = arr.shape[1]
    ramp = int(round(max(0.0, taper_ms) * fs / 1000.0))
    y = arr.copy()
    for row, segs in enumerate(segments):
        for seg in segs:
            a, b = (int(v) for v in seg)
            if not 0 <= a < b < n:
                raise PerturbationError(f"{what}: lead row {row}: segment ({a}, {b}) is not "
                                        f"inside the signal (0..{n - 1}) with onset < offset")
            line = np.linspace(arr[row, a], arr[row, b], b - a + 1)
            dev = arr[row, a: b + 1] - line
            y[row, a: b + 1] += (factor - 1.0) * _taper(b - a + 1, ramp) * dev
    return _out(y, one)


def noise_bursts(x: np.ndarray, fs: float, n_bursts: int = 2, duration_s: float = 1.0,
                 band_hz: tuple[float, float] = (20.0, 150.0), relative_amplitude: float = 1.0,
                 leads: Sequence[int] | None = None, starts_s: Sequence[float] | None = None,
                 seed: Seed = None) -> np.ndarray:
    """Add ``n_bursts`` bursts of band-limited Gaussian noise (EMG-like, ``band_hz``), each
    ``duration_s`` long with 50-ms raised-cosine ramps, to the lead rows ``leads`` (all leads
    by default). Each burst's peak-to-peak in a lead is ``relative_amplitude`` times that
    lead's `robust_amplitude` (≈ its QRS amplitude). The band's upper edge is capped at 0.45·fs.

    Burst starts are ``starts_s`` if given, else drawn from ``seed``: the record is cut into
    ``n_bursts`` equal slots and one burst starts at a random time inside each (no overlap).

    >>> import numpy as np
    >>> t = np.arange(5000) / 500.0
    >>> x = np.vstack([np.where((t % 1.0 > 0.5) & (t % 1.0 < 0.54), 1.0, 0.0)] * 3)
    >>> y = noise_bursts(x, 500.0, starts_s=[2.0, 6.0], leads=[1], seed=0)
    >>> d = y - x                              # bursts: samples 1000-1499 and 3000-3499
    >>> bool(np.all(d[[0, 2]] == 0)), bool(np.all(d[1, :1000] == 0))
    (True, True)
    >>> qrs_mv = float(robust_amplitude(x, 500.0)[1])
    >>> [round(float(np.ptp(d[1, a:a + 500])) / qrs_mv, 2) for a in (1000, 3000)]
    [1.0, 1.0]
    """
    what = "noise_bursts"
    arr, one = _as_2d(x, fs, what)
    n = arr.shape[1]
    dur = _positive(duration_s, "duration_s", what)
    _positive(relative_amplitude, "relative_amplitude", what)
    if int(n_bursts) != n_bursts or n_bursts < 1:
        raise PerturbationError(f"{what}: n_bursts must be a positive integer, got {n_bursts!r}")
    n_bursts = int(n_bursts)
    length = int(round(dur * fs))
    if n_bursts * length > n:
        raise PerturbationError(f"{what}: {n_bursts} bursts of {dur:g} s do not fit in a "
                                f"{n / fs:g}-s signal")
    lo, hi = float(band_hz[0]), min(float(band_hz[1]), 0.45 * fs)
    if not 0 < lo < hi:
        raise PerturbationError(f"{what}: band {band_hz} Hz is empty at sample rate {fs:g} Hz "
                                f"(upper edge capped at 0.45·fs = {0.45 * fs:g} Hz)")
    rows = _lead_rows(leads, arr.shape[0], what)
    rng = _rng(seed)
    if starts_s is not None:
        if len(starts_s) != n_bursts:
            raise PerturbationError(f"{what}: {len(starts_s)} start times for {n_bursts} bursts")
        starts = [int(round(s * fs)) for s in starts_s]
        bad = [s / fs for s in starts if not 0 <= s <= n - length]
        if bad:
            raise PerturbationError(f"{what}: bursts starting at {bad} s do not fit in the "
                                    f"{n / fs:g}-s signal")
    else:
        slot = n // n_bursts
        starts = [k * slot + int(rng.integers(0, slot - length + 1)) for k in range(n_bursts)]
    sos = sps.butter(4, [lo, hi], btype="band", fs=fs, output="sos")
    amp = robust_amplitude(arr, fs)
    pad = int(round(0.2 * fs))
    env = _taper(length, int(round(0.05 * fs)))
    y = arr.copy()
    for s in starts:
        raw = rng.standard_normal((len(rows), length + 2 * pad))
        burst = sps.sosfiltfilt(sos, raw, axis=1)[:, pad: pad + length] * env
        burst /= np.ptp(burst, axis=1, keepdims=True) + 1e-12
        y[rows, s: s + length] += relative_amplitude * amp[rows, None] * burst
    return _out(y, one)


def pacing_spikes(x: np.ndarray, fs: float, qrs_onsets: Sequence[int],
                  amplitude_mv: float = 3.0, width_ms: float = 1.5, before_ms: float = 10.0,
                  recovery: float = 0.1, recovery_ms: float = 8.0, seed: Seed = None
                  ) -> np.ndarray:
    """A pacemaker spike ``before_ms`` before each QRS onset (sample indices ``qrs_onsets``):
    a rectangular pulse ``width_ms`` wide (at least one sample), followed by an exponential
    recovery of opposite polarity (``recovery`` × the pulse, time constant ``recovery_ms``).
    The spike's size in each lead is ``amplitude_mv`` × a per-lead gain drawn from ``seed``
    (random sign, magnitude 0.5-1), as a pacing vector projects differently on each lead.

    >>> import numpy as np
    >>> y = pacing_spikes(np.zeros(1000), 500.0, [300, 700], amplitude_mv=3.0, seed=0)
    >>> int(np.argmax(np.abs(y))), int(np.sum(np.abs(y) > 1.0))
    (295, 2)
    """
    what = "pacing_spikes"
    arr, one = _as_2d(x, fs, what)
    amp = _positive(amplitude_mv, "amplitude_mv", what)
    _positive(width_ms, "width_ms", what)
    if not (np.isfinite(recovery) and recovery >= 0):
        raise PerturbationError(f"{what}: recovery must be >= 0, got {recovery!r}")
    n_leads, n = arr.shape
    onsets = np.asarray(qrs_onsets, dtype=float)
    if onsets.size and not np.all(np.isfinite(onsets)):
        raise PerturbationError(f"{what}: QRS onsets must be finite sample indices")
    width = max(1, int(round(width_ms * fs / 1000.0)))
    lead_by = int(round(before_ms * fs / 1000.0))
    rng = _rng(seed)
    gains = rng.choice([-1.0, 1.0], size=n_leads) * rng.uniform(0.5, 1.0, size=n_leads)
    tail_n = int(round(5 * recovery_ms * fs / 1000.0))
    tail = (-recovery * np.exp(-np.arange(1, tail_n + 1) / (recovery_ms * fs / 1000.0))
            if tail_n and recovery > 0 else np.zeros(0))
    shape = np.concatenate([np.ones(width), tail])
    y = arr.copy()
    for on in onsets:
        s = int(round(on)) - lead_by
        if s < 0 or s >= n:
            continue
        e = min(n, s + shape.size)
        y[:, s:e] += amp * gains[:, None] * shape[None, : e - s]
    return _out(y, one)


def baseline_wander(x: np.ndarray, fs: float, freq_hz: float = 0.3, amplitude_mv: float = 1.0,
                    seed: Seed = None) -> np.ndarray:
    """Add a sinusoidal baseline wander of ``freq_hz`` and peak amplitude ``amplitude_mv``
    (so peak-to-peak is twice that) to every lead, with a random phase per lead.

    >>> import numpy as np
    >>> d = baseline_wander(np.zeros((2, 5000)), 500.0, seed=0)
    >>> np.ptp(d, axis=1).round(1).tolist()
    [2.0, 2.0]
    """
    what = "baseline_wander"
    arr, one = _as_2d(x, fs, what)
    return _out(arr + _sines(arr.shape, fs, freq_hz, amplitude_mv, seed, what), one)


def mains_hum(x: np.ndarray, fs: float, freq_hz: float = 50.0, amplitude_mv: float = 0.5,
              seed: Seed = None) -> np.ndarray:
    """Add mains hum: a ``freq_hz`` sinusoid (50 Hz in Indonesia, 60 Hz elsewhere) of peak
    amplitude ``amplitude_mv`` to every lead, random phase per lead. ``freq_hz`` must be below
    the Nyquist frequency (a hum above it would alias: resample first).

    >>> import numpy as np
    >>> d = mains_hum(np.zeros(1000), 500.0, amplitude_mv=0.5, seed=0)
    >>> f = np.fft.rfftfreq(1000, 1 / 500.0)[np.argmax(np.abs(np.fft.rfft(d)))]
    >>> float(f), round(float(d.max()), 2)
    (50.0, 0.5)
    """
    what = "mains_hum"
    arr, one = _as_2d(x, fs, what)
    return _out(arr + _sines(arr.shape, fs, freq_hz, amplitude_mv, seed, what), one)


POOR_LEAD_QRS_MV = 0.17   # QRS amplitude of the "low" poor lead


def poor_lead(x: np.ndarray, fs: float, kind: str = "low", seed: Seed = None) -> np.ndarray:
    """One lead (1-D, mV) made poor for the beat detector, with noise over its whole length:

    - ``"low"``: scaled to a `POOR_LEAD_QRS_MV` (0.17 mV) `robust_amplitude`, plus 20-150 Hz
      noise with half that peak-to-peak;
    - ``"noisy"``: at its own amplitude, plus 3-30 Hz noise (in the QRS band, survives every
      ECG filter) with half its QRS amplitude peak-to-peak.

    >>> import numpy as np
    >>> t = np.arange(5000) / 500.0
    >>> qrs = np.where((t % 1.0 > 0.5) & (t % 1.0 < 0.54), 1.0, 0.0)
    >>> y = poor_lead(qrs, 500.0, "low", seed=0)
    >>> y.shape, round(float(robust_amplitude(y, 500.0)[0]), 2) < 0.3
    ((5000,), True)
    """
    v = np.asarray(x, dtype=np.float64)
    if v.ndim != 1:
        raise PerturbationError(f"poor_lead: one lead (1-D) expected, got shape {v.shape}")
    n = v.size
    amp = float(robust_amplitude(v, fs)[0]) or 1.0
    if kind == "low":
        v = v * (POOR_LEAD_QRS_MV / amp)
        return noise_bursts(v, fs, n_bursts=1, duration_s=n / fs, relative_amplitude=0.5,
                            starts_s=[0.0], seed=seed)
    if kind == "noisy":
        return noise_bursts(v, fs, n_bursts=1, duration_s=n / fs, band_hz=(3.0, 30.0),
                            relative_amplitude=0.5, starts_s=[0.0], seed=seed)
    raise PerturbationError(f"poor_lead: unknown kind {kind!r} (low, noisy)")


#: the limb-electrode interchanges `swap_limb_electrodes` knows (the classic field errors)
LIMB_SWAPS: tuple[str, ...] = ("LA/RA", "LA/LL", "RA/LL")
LIMB_LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF")
# Each limb lead as weights on the electrode potentials (RA, LA, LL): I = LA - RA,
# II = LL - RA, III = LL - LA, aVR = RA - (LA + LL)/2, aVL = LA - (RA + LL)/2,
# aVF = LL - (RA + LA)/2. The chest leads are measured against Wilson's central terminal, the
# mean of the three, which no interchange of them changes.
_ELECTRODES = ("RA", "LA", "LL")
_LIMB_WEIGHTS = np.array([[-1.0, 1.0, 0.0], [-1.0, 0.0, 1.0], [0.0, -1.0, 1.0],
                          [1.0, -0.5, -0.5], [-0.5, 1.0, -0.5], [-0.5, -0.5, 1.0]])


def limb_swap_map(swap: str) -> list[tuple[int, float]]:
    """For each limb lead (`LIMB_LEADS` order), the recorded lead it becomes when the two limb
    electrodes of ``swap`` (e.g. ``"LA/RA"``) are interchanged, and the sign: a lead measured
    from the swapped cables is the lead whose electrode weights are the permuted ones, so
    every lead is exactly another lead or its negative.

    >>> [(LIMB_LEADS[i], s) for i, s in limb_swap_map("LA/RA")]
    [('I', -1.0), ('III', 1.0), ('II', 1.0), ('aVL', 1.0), ('aVR', 1.0), ('aVF', 1.0)]
    """
    parts = [p.strip().upper() for p in str(swap).split("/")]
    if len(parts) != 2 or len(set(parts)) != 2 or not set(parts) <= set(_ELECTRODES):
        raise PerturbationError(f"swap_limb_electrodes: unknown swap {swap!r} "
                                f"(use {', '.join(LIMB_SWAPS)})")
    perm = list(range(3))
    a, b = (_ELECTRODES.index(p) for p in parts)
    perm[a], perm[b] = b, a
    out = []
    for w in _LIMB_WEIGHTS:
        # cable k now carries the potential of electrode perm[k]: the lead reads w @ phi[perm]
        moved = np.zeros(3)
        moved[perm] = w
        for j, v in enumerate(_LIMB_WEIGHTS):
            if np.allclose(moved, v):
                out.append((j, 1.0))
                break
            if np.allclose(moved, -v):
                out.append((j, -1.0))
                break
    return out


def swap_limb_electrodes(x: np.ndarray, leads: Sequence[str], swap: str = "LA/RA"
                         ) -> np.ndarray:
    """The recording as it would have been made with the two limb electrodes of ``swap``
    (``"LA/RA"``, ``"LA/LL"`` or ``"RA/LL"``) interchanged: each limb lead is derived from the
    swapped electrode potentials (`limb_swap_map`); the chest leads (Wilson's terminal is the
    mean of the three limb electrodes) and any other rows are unchanged. ``x`` is
    (n_leads, n_samples) with ``leads`` naming its rows; the six limb leads must be there.
    A second identical swap restores ``x`` exactly (the map is a signed permutation).

    LA/RA: I → −I, II ↔ III, aVR ↔ aVL; LA/LL: I ↔ II, III → −III, aVL ↔ aVF;
    RA/LL: I → −III, II → −II, III → −I, aVR ↔ aVF — from Einthoven's and Goldberger's lead
    definitions; Batchvarov, Malik & Camm (Europace 2007;9:1081-1090) describe these patterns.

    >>> import numpy as np
    >>> x = np.arange(12, dtype=float)[:, None] * np.ones((1, 3))
    >>> names = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    >>> swap_limb_electrodes(x, names, "LA/RA")[:6, 0].tolist()
    [-0.0, 2.0, 1.0, 4.0, 3.0, 5.0]
    >>> bool(np.array_equal(swap_limb_electrodes(swap_limb_electrodes(x, names), names), x))
    True
    """
    what = "swap_limb_electrodes"
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != len(leads):
        raise PerturbationError(f"{what}: signal of shape {arr.shape} for {len(leads)} lead "
                                "names (give (n_leads, n_samples) and one name per row)")
    names = [str(n) for n in leads]
    missing = [ld for ld in LIMB_LEADS if ld not in names]
    if missing:
        raise PerturbationError(f"{what}: needs the six limb leads; missing "
                                f"{', '.join(missing)}")
    rows = [names.index(ld) for ld in LIMB_LEADS]
    y = arr.copy()
    for dst, (src, sign) in zip(rows, limb_swap_map(swap), strict=True):
        y[dst] = sign * arr[rows[src]]
    return y.astype(np.float32) if np.asarray(x).dtype == np.float32 else y


def _sines(shape: tuple[int, ...], fs: float, freq_hz: float, amplitude_mv: float, seed: Seed,
           what: str) -> np.ndarray:
    f = _positive(freq_hz, "freq_hz", what)
    a = _positive(amplitude_mv, "amplitude_mv", what)
    if f >= fs / 2:
        raise PerturbationError(f"{what}: {f:g} Hz is at or above the Nyquist frequency of "
                                f"the {fs:g}-Hz signal")
    phase = _rng(seed).uniform(0, 2 * np.pi, size=(shape[0], 1))
    t = np.arange(shape[1]) / fs
    return a * np.sin(2 * np.pi * f * t[None, :] + phase)

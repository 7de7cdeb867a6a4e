"""Wave-segment attribution (S1's Tables 8-10, automated): which part of the beat carries the
evidence.

Each beat of each lead is cut by the Foundation's delineation
(`detak.signal.intervals.measure_intervals`: ``beat_times_s`` and per-lead ``beat_boundaries``
in ms from each beat's fiducial) into a **partition** of consecutive segments

    P [p_on, p_off) · PQ [p_off, qrs_on) · QRS [qrs_on, qrs_off) · ST [qrs_off, t_on) ·
    T [t_on, t_off) · TP [t_off, next beat's p_on or qrs_on)

and every sample no segment claims is ``unassigned``: before the first beat's first boundary,
after the last beat's last one, and wherever a boundary the segment needs is missing (one P
bound without the other, a T onset without an end, a beat without QRS bounds). A beat with no
P wave at all (AF) has no P and PQ: its TP runs up to the QRS onset. Two **landmark windows**
overlap the partition and are reported beside it: ``QRS_onset`` = the first 40 ms of the QRS
(where a pathological Q wave lives: >= 40 ms is the classic criterion) and ``J_point`` = the
J point (QRS offset) ± 40 ms (where ST elevation is read). Positive and negative attribution
are summed separately per segment over leads and beats.

>>> import numpy as np
>>> bb = {"II": {"p_on": [-200.0], "p_off": [-120.0], "qrs_on": [-50.0], "qrs_off": [50.0],
...              "t_on": [150.0], "t_off": [350.0]}}
>>> lab = segment_labels([1.0], bb, ["II"], n_samples=200, fs=100.0)
>>> [SEGMENT_NAMES[v] for v in lab[0, [50, 82, 90, 100, 110, 120, 140]]]
['unassigned', 'P', 'PQ', 'QRS', 'ST', 'T', 'unassigned']
"""

from __future__ import annotations

import hashlib
import math
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SEGMENTS", "WINDOWS", "SEGMENT_NAMES", "UNASSIGNED", "segment_labels",
           "window_masks", "segment_attribution", "delineate", "delineate_fold",
           "aggregate_segments"]

SEGMENTS: tuple[str, ...] = ("P", "PQ", "QRS", "ST", "T", "TP")
UNASSIGNED = len(SEGMENTS)
SEGMENT_NAMES: tuple[str, ...] = (*SEGMENTS, "unassigned")
WINDOWS: tuple[str, ...] = ("QRS_onset", "J_point")
QRS_ONSET_MS = 40.0
J_POINT_MS = 40.0
_P, _PQ, _QRS, _ST, _T, _TP = range(6)


def _get(bounds: Mapping[str, Sequence[float | None]], key: str, i: int) -> float | None:
    vals = bounds.get(key) or []
    v = vals[i] if i < len(vals) else None
    return None if v is None or not math.isfinite(float(v)) else float(v)


def _beat_events(fid_s: float, b: Mapping[str, Sequence[float | None]], i: int,
                 fs: float) -> list[tuple[int, int]]:
    """(sample, label starting there) for beat ``i`` of one lead."""
    def at(key: str) -> int | None:
        v = _get(b, key, i)
        return None if v is None else int(round((fid_s + v / 1000.0) * fs))

    p_on, p_off, q_on, q_off, t_on, t_off = (at(k) for k in (
        "p_on", "p_off", "qrs_on", "qrs_off", "t_on", "t_off"))
    ev: list[tuple[int, int]] = []
    if p_on is not None and p_off is not None:
        ev += [(p_on, _P), (p_off, _PQ)]
    elif p_on is not None or p_off is not None:
        ev.append((p_on if p_on is not None else p_off, UNASSIGNED))
    if q_on is None or q_off is None:
        anchor = q_on if q_on is not None else q_off
        if anchor is None:
            anchor = int(round(fid_s * fs))
        ev.append((anchor, UNASSIGNED))
        return ev
    ev.append((q_on, _QRS))
    if t_on is not None and t_off is not None:
        ev += [(q_off, _ST), (t_on, _T), (t_off, _TP)]
    elif t_off is not None:          # ST and T not separable
        ev += [(q_off, UNASSIGNED), (t_off, _TP)]
    elif t_on is not None:           # T end unknown
        ev += [(q_off, _ST), (t_on, UNASSIGNED)]
    else:
        ev.append((q_off, UNASSIGNED))
    return ev


def segment_labels(beat_times_s: Sequence[float],
                   beat_boundaries: Mapping[str, Mapping[str, Sequence[float | None]]],
                   leads: Sequence[str], n_samples: int, fs: float) -> np.ndarray:
    """(leads, n_samples) int8 labels: indices into `SEGMENT_NAMES` (see the module doc).
    Leads without boundaries are all ``unassigned``."""
    out = np.full((len(leads), n_samples), UNASSIGNED, dtype=np.int8)
    for r, lead in enumerate(leads):
        b = beat_boundaries.get(lead)
        if not b:
            continue
        events: list[tuple[int, int]] = []
        for i, fid in enumerate(beat_times_s):
            events += _beat_events(float(fid), b, i, fs)
        if not events:
            continue
        # segments that end on the next beat (TP) stop there; the last beat's TP is cut
        events.sort(key=lambda e: e[0])
        for (s0, lab), (s1, _) in zip(events[:-1], events[1:], strict=True):
            a, z = max(0, s0), min(n_samples, s1)
            if z > a:
                out[r, a:z] = lab
        # after the last event: unassigned (the next beat, if any, is not in the record)
    return out


def window_masks(beat_times_s: Sequence[float],
                 beat_boundaries: Mapping[str, Mapping[str, Sequence[float | None]]],
                 leads: Sequence[str], n_samples: int, fs: float) -> dict[str, np.ndarray]:
    """Boolean (leads, n_samples) masks of the landmark windows ``QRS_onset`` (first 40 ms of
    the QRS) and ``J_point`` (QRS offset ± 40 ms)."""
    masks = {w: np.zeros((len(leads), n_samples), dtype=bool) for w in WINDOWS}
    for r, lead in enumerate(leads):
        b = beat_boundaries.get(lead) or {}
        for i, fid in enumerate(beat_times_s):
            q_on, q_off = _get(b, "qrs_on", i), _get(b, "qrs_off", i)
            for name, lo_ms, hi_ms in (
                    ("QRS_onset", q_on, None if q_on is None else q_on + QRS_ONSET_MS),
                    ("J_point", None if q_off is None else q_off - J_POINT_MS,
                     None if q_off is None else q_off + J_POINT_MS)):
                if lo_ms is None or hi_ms is None:
                    continue
                a = max(0, int(round((fid + lo_ms / 1000.0) * fs)))
                z = min(n_samples, int(round((fid + hi_ms / 1000.0) * fs)))
                if z > a:
                    masks[name][r, a:z] = True
    return masks


def segment_attribution(attr: np.ndarray, labels: np.ndarray,
                        windows: Mapping[str, np.ndarray] | None = None
                        ) -> dict[str, dict[str, float]]:
    """Per segment (and window): ``pos`` (sum of positive attribution), ``neg`` (sum of
    negative attribution, <= 0) and ``n`` (lead-samples), from ``attr`` and ``labels`` of the
    same (leads, n_samples) shape.

    >>> lab = np.array([[0, 0, 2, 2, 6]])
    >>> d = segment_attribution(np.array([[1.0, -2.0, 3.0, 0.5, 9.0]]), lab)
    >>> d["P"], d["QRS"]["pos"], d["unassigned"]["pos"]
    ({'pos': 1.0, 'neg': -2.0, 'n': 2}, 3.5, 9.0)
    """
    a = np.asarray(attr, dtype=np.float64)
    if a.shape != labels.shape:
        raise ValueError(f"attribution shape {a.shape} != label shape {labels.shape}")
    pos, neg = np.clip(a, 0, None), np.clip(a, None, 0)
    out: dict[str, dict[str, float]] = {}
    for k, name in enumerate(SEGMENT_NAMES):
        m = labels == k
        out[name] = {"pos": float(pos[m].sum()), "neg": float(neg[m].sum()), "n": int(m.sum())}
    for name, m in (windows or {}).items():
        out[name] = {"pos": float(pos[m].sum()), "neg": float(neg[m].sum()), "n": int(m.sum())}
    return out


def delineate(x_mv: np.ndarray, fs: float, leads: Sequence[str], name: str = "record"
              ) -> dict[str, Any]:
    """``{"beat_times_s", "beat_boundaries"}`` of one (leads, samples) mV record by
    `measure_intervals` (empty lists where no beat is found)."""
    from detak.data.recording import Recording
    from detak.signal.intervals import measure_intervals

    iv = measure_intervals(Recording(np.asarray(x_mv, dtype=np.float32), float(fs),
                                     list(leads), name=name))
    return {"beat_times_s": list(iv.beat_times_s), "beat_boundaries": iv.beat_boundaries}


def _intervals_code_hash() -> str:
    import detak.signal.beats as b
    import detak.signal.delineation as d
    import detak.signal.intervals as i

    h = hashlib.sha256()
    for mod in (b, d, i):
        h.update(Path(mod.__file__).read_bytes())
    return h.hexdigest()[:12]


def delineate_fold(x_mv: np.ndarray, ids: Sequence[int], fs: float, leads: Sequence[str],
                   cache_key: str | None = None, progress: bool = False
                   ) -> dict[int, dict[str, Any]]:
    """`delineate` for many records (``x_mv`` (N, leads, samples)), keyed by id; with a
    ``cache_key`` (e.g. the fold checksum) the results are kept in ``cache_dir()/explain``
    (keyed too by a hash of the delineation code) and only missing ids are computed."""
    from detak.data.paths import cache_dir

    path = None
    done: dict[int, dict[str, Any]] = {}
    if cache_key:
        path = cache_dir() / "explain" / f"beats_{cache_key}_{_intervals_code_hash()}.pkl"
        if path.is_file():
            with open(path, "rb") as fh:
                done = pickle.load(fh)
    todo = [(k, int(i)) for k, i in enumerate(ids) if int(i) not in done]
    it = todo
    if progress and todo:
        from tqdm import tqdm

        it = tqdm(todo, unit="rec", desc="delineation")
    for n, (k, i) in enumerate(it):
        done[i] = delineate(np.asarray(x_mv[k]), fs, leads, name=str(i))
        if path is not None and (n % 100 == 99 or n == len(todo) - 1):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            with open(tmp, "wb") as fh:
                pickle.dump(done, fh)
            tmp.replace(path)
    return {int(i): done[int(i)] for i in ids}


def aggregate_segments(per_record: Sequence[Mapping[str, Mapping[str, float]]]
                       ) -> dict[str, dict[str, float]]:
    """Mean over records of each segment's share of the record's positive attribution
    (``pos_share``) and negative attribution (``neg_share``), its share of the lead-samples
    (``time_share``), ``density`` = pos_share / time_share (1 = as much as its duration
    predicts), and ``top`` = the fraction of records whose highest-density segment it is
    (partition segments only; records without positive attribution are skipped).

    >>> rec = {"P": {"pos": 1.0, "neg": 0.0, "n": 10}, "QRS": {"pos": 3.0, "neg": -1.0, "n": 10}}
    >>> agg = aggregate_segments([rec])
    >>> agg["QRS"]["pos_share"], agg["QRS"]["density"], agg["QRS"]["top"]
    (0.75, 1.5, 1.0)
    """
    names = [n for n in SEGMENT_NAMES if any(n in r for r in per_record)]
    names += [w for w in WINDOWS if any(w in r for r in per_record) and w not in names]
    acc: dict[str, dict[str, list[float]]] = {n: {"pos_share": [], "neg_share": [],
                                                   "time_share": [], "density": []}
                                              for n in names}
    top_counts = dict.fromkeys(names, 0)
    n_used = 0
    for r in per_record:
        part = [n for n in SEGMENT_NAMES if n in r]
        tot_pos = sum(r[n]["pos"] for n in part)
        tot_neg = sum(r[n]["neg"] for n in part)
        tot_n = sum(r[n]["n"] for n in part)
        if tot_pos <= 0 or tot_n <= 0:
            continue
        n_used += 1
        best, best_d = None, -1.0
        for n in names:
            if n not in r:
                continue
            ps = r[n]["pos"] / tot_pos
            ts = r[n]["n"] / tot_n
            acc[n]["pos_share"].append(ps)
            acc[n]["neg_share"].append(r[n]["neg"] / tot_neg if tot_neg < 0 else 0.0)
            acc[n]["time_share"].append(ts)
            if ts > 0:
                d = ps / ts
                acc[n]["density"].append(d)
                if n in SEGMENTS and d > best_d:
                    best, best_d = n, d
        if best is not None:
            top_counts[best] += 1
    out: dict[str, dict[str, float]] = {}
    for n in names:
        out[n] = {k: (float(np.mean(v)) if v else float("nan")) for k, v in acc[n].items()}
        out[n]["top"] = top_counts[n] / n_used if n_used and n in SEGMENTS else float("nan")
    out["_records"] = {"n": float(n_used)}
    return out

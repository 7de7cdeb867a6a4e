"""Multilabel CNN predictions for any ECG source: ``detak predict`` (issue 4's contract).

`predict_sources` returns one row per record with the columns ``record, NORM, MI, STTC, CD,
HYP`` (probabilities). ``record`` is the ecg_id for PTB-XL sources and the record name (file
stem) otherwise. Recordings at any rate ≥ 100 Hz are resampled to 100 Hz, filtered and
standardised exactly as in training (`detak.models.cnn_data.preprocess_recording`); missing
leads raise `ModelLeadsError` naming the record and the leads. ``ptbxl://foldK`` uses the
cached filtered fold arrays instead of reading records one by one.

Inference sits in `detak.export`, above `detak.models` (which never imports it): the runtime
choice, the bundle resolution and ``detak predict``.

A model is a folder with ``card.json``, ``standardizer.json`` and the weights (``NAME.pt``) or
exported files: given by path, or by NAME — an installed bundle (`detak.export.bundle`) first,
then a shipped model (`detak.models.shipped`), then a model trained into the default output
folder ``cache_dir()/cnn/NAME``.

Runtimes: ``torch`` (host; fp32) runs ``NAME.pt``; ``onnx`` and ``tflite`` (kiosk; no torch)
run the exported ``STEM.PRECISION.onnx`` / ``STEM.PRECISION.tflite`` (``detak export``; STEM is
the weights file's stem) through `detak.export.runtime.load_runtime`, whose `ModelRuntime` is
``LoadedModel.module`` (its ``run`` also returns the fused Grad-CAM maps). `_make_runner` is the
one place that switches on the runtime.

Calibrated probabilities: when the model card holds a ``calibration`` block (per class a
temperature or isotonic knots, fitted on PTB-XL fold 9 by ``tools/calibrate_models.py``;
`detak.models.prob_calibration`), `load_model` applies it to the runtime's logits in
`LoadedModel.predict` and `LoadedModel.run` — the one place probabilities leave the runtime, so
``detak predict``, ``detak screen``, the kiosk and the PDF show the same calibrated numbers.
`LoadedModel.probabilities` says in words whether they are calibrated; ``load_model(...,
calibrated=False)`` gives the raw sigmoid outputs (the card's metrics, ``detak evaluate``).

Fused Grad-CAM maps (the kiosk's explanation, no torch, no gradients): with a `CamCollector`
(``detak predict ... --cam MAPS.npz``) an exported model that carries the maps (a GAP + linear
or S1's concat-pool head, `detak.export.cam`) also hands back, per 10-s window, the map of the MI
class and of the top-scoring class, upsampled to the 1000 input samples; `CamCollector.save`
writes them with the record of each window. Models without such a head say so (`NoCamError`).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from detak.models.cnn_data import CLASSES, MODEL_FS, N_SAMPLES, InputError, preprocess_recording
from detak.models.shipped import CARD_FILE, STANDARDIZER_FILE, shipped_model_dir
from detak.models.trained import (
    ModelNotFoundError,
    default_models_dir,
    load_torch_module,
    torch_predictor,
    torch_weights_file,
)
from detak.signal.filters import Standardizer

RUNTIMES: tuple[str, ...] = ("torch", "onnx", "tflite")
PRECISIONS: tuple[str, ...] = ("fp32", "int8")
AUTO = "auto"  # the best runtime this install has for the model: see `choose_runtime`
COLUMNS: tuple[str, ...] = ("record", *CLASSES)
_FOLD = re.compile(r"^ptbxl://fold0*(\d+)$", re.IGNORECASE)
_CHUNK_RECORDS = 512
POOL_MIN_RECORDS = 64  # fewer records are read in this process (workers take ~2 s to start)


class RuntimeNotAvailableError(RuntimeError):
    """The runtime or precision asked for has no model file (yet)."""


class CalibrationCardError(RuntimeNotAvailableError):
    """The model card's ``calibration`` block cannot be used (bad values, a class missing, or
    fitted on another model file): the model is not run rather than run uncalibrated."""


class NoCamError(RuntimeNotAvailableError):
    """Maps were asked for but the runtime or the model file gives none (the message says
    why)."""


def resolve_model_dir(model: str | Path) -> Path:
    """The folder of a model given as a folder, a file inside it, or a NAME: the active
    installed bundle of that name (`detak.export.bundle`, ``detak bundle install``) first, then
    a shipped model, then ``cache_dir()/cnn/NAME``.

    >>> resolve_model_dir("no-such-model")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    detak.models.trained.ModelNotFoundError: model 'no-such-model' not found: ...
    """
    p = Path(model).expanduser()
    if p.is_dir() and (p / CARD_FILE).is_file():
        return p
    if p.is_file() and (p.parent / CARD_FILE).is_file():
        return p.parent
    name = str(model)
    from detak.export.bundle import active_bundle

    installed = active_bundle(name) if "/" not in name else None
    if installed is not None:
        return installed
    shipped = shipped_model_dir(name)
    if shipped is not None:
        return shipped
    trained = default_models_dir() / name
    if (trained / CARD_FILE).is_file():
        return trained
    raise ModelNotFoundError(
        f"model {name!r} not found: not a folder with {CARD_FILE}, not a shipped model "
        f"(detak models list), and no {trained / CARD_FILE} (train one with `detak train "
        f"--model NAME`)")


UNCALIBRATED = "uncalibrated model output"


@dataclasses.dataclass
class LoadedModel:
    """A model ready to predict: ``predict(x)`` maps standardised (N, 12, 1000) float32 to
    probabilities (N, 5), calibrated by the card's ``calibration`` block when it has one
    (`calibration`; ``probabilities`` says which in words). ``run(x)`` (exported runtimes)
    gives the runtime's `Prediction` with the same probabilities, raw logits and the CAM.

    This is the one place probabilities leave the runtime: ``detak predict``, ``detak
    screen``, the kiosk and its PDF all take them from here."""

    name: str
    folder: Path
    card: dict[str, Any]
    standardizer: Standardizer
    runtime: str
    precision: str
    predict: Callable[[np.ndarray], np.ndarray]
    module: Any = None  # torch: the nn.Module; onnx / tflite: the export.runtime.ModelRuntime
    calibration: Any = None  # a detak.models.prob_calibration.Calibration, or None
    logits: Callable[[np.ndarray], np.ndarray] | None = None  # raw logits (N, 5), uncalibrated

    @property
    def probabilities(self) -> str:
        """What the probabilities are: "calibrated: " and the calibration's label (e.g.
        "temperature, PTB-XL fold 9"), the label as "uncalibrated: ..." when the card keeps
        every class's raw output (no map beat it on held-out records), or "uncalibrated
        model output" without a calibration block."""
        return self.calibration.statement if self.calibration else UNCALIBRATED

    def calibrate(self, logits: np.ndarray) -> np.ndarray:
        """Probabilities (N, 5) float32 of raw logits (N, 5): the calibration's, or sigmoid."""
        from detak.models.prob_calibration import sigmoid

        if self.calibration is None:
            return np.asarray(sigmoid(logits), dtype=np.float32)
        return self.calibration.probabilities(logits)

    def run(self, x: np.ndarray) -> Any:
        """The exported runtime's `detak.export.runtime.Prediction` for standardised ``x``,
        its ``probs`` calibrated as ``predict``'s (``logits`` and the maps as the file gives
        them)."""
        if self.runtime == "torch" or not hasattr(self.module, "run"):
            raise NoCamError(f"{self.name}: run() needs an exported model (onnx or tflite); "
                             f"this one runs on {self.runtime}")
        out = self.module.run(x)
        if self.calibration is None:
            return out
        return dataclasses.replace(out, probs=self.calibration.probabilities(out.logits))


def _stem(folder: Path, card: dict[str, Any]) -> str:
    name = card.get("name", folder.name)
    return Path(str(card.get("weights", {}).get("file") or f"{name}.pt")).stem


def _candidates(precision: str | None) -> list[tuple[str, str]]:
    """The order ``--runtime auto`` tries (runtime, precision) in."""
    if precision == "fp32":
        return [("torch", "fp32"), ("onnx", "fp32"), ("tflite", "fp32")]
    exported = [("onnx", "int8"), ("tflite", "int8")]
    return exported if precision == "int8" else [*exported, ("torch", "fp32")]


def choose_runtime(folder: Path, card: dict[str, Any], runtime: str = AUTO,
                   precision: str | None = None) -> tuple[str, str]:
    """The (runtime, precision) to run the model in ``folder`` with.

    An explicit ``runtime`` is kept (``precision`` defaults to fp32, as before ``auto``).
    ``auto`` takes the first this install can run and the model has a file for: int8 ONNX
    (with the fused Grad-CAM, the kiosk's model), int8 TFLite, then torch fp32 (host); with
    ``precision`` fp32: torch, then fp32 ONNX, then fp32 TFLite. A model that has nothing this
    install can run is a `RuntimeNotAvailableError` naming the extra to install.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = (Path(d) / "m.int8.onnx").write_bytes(b"")
    ...     choose_runtime(Path(d), {"name": "m", "weights": {"file": "m.pt"}})
    ('onnx', 'int8')
    """
    from detak.export.available import HOST_EXTRA, runtimes_here
    from detak.export.runtime import find_model_file, model_filename

    if runtime != AUTO:
        return runtime, precision or "fp32"
    name, stem, here = card.get("name", folder.name), _stem(folder, card), runtimes_here()
    have: list[str] = []
    missing_checkpoint = ""
    for rt, prec in _candidates(precision):
        path = (torch_weights_file(folder, card) if rt == "torch"
                else find_model_file(folder, stem, rt, prec))
        if path is not None and here[rt]:
            return rt, prec
        if path is not None:
            have.append(path.name if rt != "torch" else f"{path.name} (torch)")
        elif rt == "torch" and (card.get("weights") or {}).get("file"):
            missing_checkpoint = str(card["weights"]["file"])
    if here["torch"] and missing_checkpoint and not have:
        raise RuntimeNotAvailableError(
            f"model {name}: its torch checkpoint {missing_checkpoint} is not installed (shipped "
            f"models' checkpoints are not in the wheel): put {folder.name}/"
            f"{missing_checkpoint} in $DETAK_WEIGHTS or unpack the weights archive into "
            "~/.cache/detak, or use a model exported for the kiosk")
    if missing_checkpoint and not here["torch"]:
        have.append(f"{missing_checkpoint} (torch weights, a host artifact not installed here)")
    if not have:
        wanted = ", ".join(f"{stem}.pt" if rt == "torch" else model_filename(stem, rt, p)
                           for rt, p in _candidates(precision))
        raise RuntimeNotAvailableError(f"model {name}: none of {wanted} is in {folder}")
    raise RuntimeNotAvailableError(
        f"model {name} has only {', '.join(have)}, and this install cannot run "
        f"{'it' if len(have) == 1 else 'them'}: install the host extra ({HOST_EXTRA}) for "
        "torch, or use a model exported for the kiosk (detak models list: runnable_here)")


def _make_runner(folder: Path, card: dict[str, Any], runtime: str, precision: str,
                 batch_size: int, threads: int | None) -> tuple[Callable, Any]:
    """The runtime switch: a function standardised input → logits, and the module."""
    name = card.get("name", folder.name)
    if runtime not in RUNTIMES:
        raise RuntimeNotAvailableError(f"unknown runtime {runtime!r}; use one of "
                                       f"{', '.join(RUNTIMES)}")
    if precision not in PRECISIONS:
        raise RuntimeNotAvailableError(f"unknown precision {precision!r}; use one of "
                                       f"{', '.join(PRECISIONS)}")
    if runtime in ("onnx", "tflite"):
        from detak.export.runtime import (
            BackendUnavailableError,
            find_model_file,
            load_runtime,
            model_filename,
        )

        stem = _stem(folder, card)
        path = find_model_file(folder, stem, runtime, precision)
        if path is None:
            raise RuntimeNotAvailableError(
                f"runtime {runtime}: no exported model for {name} yet (detak export {runtime}); "
                f"{folder / model_filename(stem, runtime, precision)} does not exist")
        try:
            engine = load_runtime(path, threads=int(threads or 1), batch_size=batch_size)
        except BackendUnavailableError as err:
            raise RuntimeNotAvailableError(f"runtime {runtime}: {err}") from err
        return (lambda x: engine.run(x).logits), engine
    if precision == "int8":
        raise RuntimeNotAvailableError(
            f"runtime torch runs {name} in fp32 only; int8 needs an exported model "
            "(--runtime onnx or tflite, detak export)")
    from detak.export.available import HostExtraMissingError, require_torch

    try:
        require_torch(f"runtime torch ({name})", "on a kiosk run an exported model: "
                      "--runtime auto, onnx or tflite")
    except HostExtraMissingError as err:
        raise RuntimeNotAvailableError(str(err)) from None
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    module = load_torch_module(folder, card)
    return torch_predictor(module, batch_size, logits=True), module


def card_calibration(folder: Path, card: dict[str, Any]) -> Any:
    """The card's calibration (`detak.models.prob_calibration.Calibration`), None when the
    card has none; `CalibrationCardError` when it is unusable: bad values, a class missing, or
    fitted on a model file (``model_file`` / ``model_file_sha256``) that is in ``folder`` with
    other bytes now.

    >>> card_calibration(Path("."), {"name": "m"}) is None
    True
    """
    from detak.models.model_card import sha256_file
    from detak.models.prob_calibration import Calibration, CalibrationError

    block = card.get("calibration")
    if block is None:
        return None
    name = card.get("name", folder.name)
    classes = (card.get("architecture") or {}).get("outputs") or list(CLASSES)
    try:
        cal = Calibration.from_card(block, list(classes))
    except CalibrationError as err:
        raise CalibrationCardError(f"model {name}: {folder / CARD_FILE}: {err}") from None
    fitted, sha = cal.info.get("model_file"), cal.info.get("model_file_sha256")
    if fitted and sha and (folder / str(fitted)).is_file() \
            and sha256_file(folder / str(fitted)) != sha:
        raise CalibrationCardError(
            f"model {name}: the calibration in {folder / CARD_FILE} was fitted on another "
            f"{fitted} (sha256 {str(sha)[:16]}): re-run tools/calibrate_models.py")
    return cal


def _calibrated_runner(run_logits: Callable[[np.ndarray], np.ndarray],
                       calibration: Any) -> Callable[[np.ndarray], np.ndarray]:
    from detak.models.prob_calibration import sigmoid

    def run(x: np.ndarray) -> np.ndarray:
        z = run_logits(x)
        if calibration is None:
            return np.asarray(sigmoid(z), dtype=np.float32)
        return calibration.probabilities(z)

    return run


def load_model(model: str | Path, runtime: str = "torch", precision: str | None = "fp32",
               batch_size: int = 256, threads: int | None = None,
               calibrated: bool = True) -> LoadedModel:
    """Resolve, read the card and standardizer, and load the weights for ``runtime``
    (``auto``: the best this install can run, `choose_runtime`; the `LoadedModel` says which
    runtime and precision were taken). ``calibrated``: apply the card's calibration (default;
    False gives the raw sigmoid outputs the card's metrics were computed on)."""
    from detak.models.model_card import read_card

    folder = resolve_model_dir(model)
    card = read_card(folder / CARD_FILE)
    std_path = folder / STANDARDIZER_FILE
    if not std_path.is_file():
        raise ModelNotFoundError(f"{folder}: {STANDARDIZER_FILE} is missing (the training "
                                 "statistics the inputs are standardised with)")
    if runtime not in (*RUNTIMES, AUTO):
        raise RuntimeNotAvailableError(f"unknown runtime {runtime!r}; use one of "
                                       f"{', '.join((AUTO, *RUNTIMES))}")
    calibration = card_calibration(folder, card) if calibrated else None
    runtime, precision = choose_runtime(folder, card, runtime, precision)
    run_logits, module = _make_runner(folder, card, runtime, precision, batch_size, threads)
    return LoadedModel(name=str(card.get("name", folder.name)), folder=folder, card=card,
                       standardizer=Standardizer.load(std_path), runtime=runtime,
                       precision=precision, predict=_calibrated_runner(run_logits, calibration),
                       module=module, calibration=calibration, logits=run_logits)


def _prepare(args: tuple[Any, Standardizer]) -> np.ndarray:
    item, std = args
    return preprocess_recording(gap_free_input(item.load()), std)


def gap_free_input(rec: Any) -> Any:
    """What the CNN sees of a recording with flagged gaps (`detak.data.gaps.model_window`): the
    longest gap-free stretch if it covers a 10-s window, else the 10-s window with the least
    gap, filled by linear interpolation, with a warning on stderr; `InputError` when that
    window needs more than `MAX_FILLED_GAP_S` filled (the MI limit, README "Recordings with
    gaps"). A recording without gaps is returned as it is.

    >>> from detak.data.samples import load_sample
    >>> rec = load_sample("ptbxl-00102")
    >>> gap_free_input(rec) is rec
    True
    """
    import sys

    from detak.data.gaps import GapError, model_window
    from detak.data.validation import RecordingError

    if not rec.meta.get("gaps"):
        return rec
    try:
        out, note = model_window(rec, N_SAMPLES / MODEL_FS)
    except (GapError, RecordingError) as err:
        raise InputError(str(err)) from None
    if note:
        print(f"detak predict: warning: {note}", file=sys.stderr, flush=True)
    return out


def _record_name(item: Any) -> str:
    if item.kind == "ptbxl":
        return str(int(item.key))
    if item.kind == "file":
        name = Path(item.record).name
        # a WFDB record is named without its header's suffix (rec.hea and rec are one record)
        return name[:-4] if name.lower().endswith((".hea", ".dat")) else name
    return item.record


class CamCollector:
    """Collects the fused Grad-CAM maps while `predict_sources` runs an exported model.

    ``wrap(loaded)`` returns a model whose ``predict`` keeps each window's ``cam_mi`` and
    ``cam_top``; `predict_sources` tells it which record each window belongs to.

    >>> c = CamCollector()
    >>> c.n_windows, c.records
    (0, [])
    """

    def __init__(self) -> None:
        self.records: list[str] = []
        self.window: list[int] = []
        self._mi: list[np.ndarray] = []
        self._top: list[np.ndarray] = []
        self._top_class: list[np.ndarray] = []
        self.model = self.runtime = self.precision = ""

    @property
    def n_windows(self) -> int:
        return sum(len(m) for m in self._mi)

    def wrap(self, loaded: LoadedModel) -> LoadedModel:
        """``loaded`` with a ``predict`` that also keeps the maps (`NoCamError` when the model
        has none)."""
        engine = loaded.module
        if loaded.runtime == "torch" or not hasattr(engine, "has_cam"):
            raise NoCamError(
                "--cam: the fused Grad-CAM maps come from the exported models the kiosk runs "
                "(--runtime onnx or tflite); on the host, `detak explain --method gradcam` "
                "computes Grad-CAM with torch")
        if not engine.has_cam:
            raise NoCamError(f"--cam: {loaded.name} ({engine.path.name}) has no fused Grad-CAM "
                             f"output: {engine.cam_note}")
        self.model, self.runtime, self.precision = loaded.name, loaded.runtime, loaded.precision

        def run(x: np.ndarray) -> np.ndarray:
            out = loaded.run(x)
            self._mi.append(out.cam_mi)
            self._top.append(out.cam_top)
            self._top_class.append(out.top_class)
            return out.probs

        return dataclasses.replace(loaded, predict=run)

    def name_windows(self, names: Sequence[str], windows: Sequence[int]) -> None:
        """The records (in prediction order) and how many windows each had."""
        for name, n in zip(names, windows, strict=True):
            self.records.extend([name] * int(n))
            self.window.extend(range(int(n)))

    def save(self, path: str | Path) -> Path:
        """Write ``record``, ``window``, ``cam_mi``, ``cam_top`` (n_windows, 1000) float32,
        ``top_class`` (class names), ``fs``, ``model``, ``runtime``, ``precision`` as an .npz."""
        n = self.n_windows
        if n != len(self.records):
            raise RuntimeError(f"{n} maps for {len(self.records)} windows")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)      # as write_predictions does
        empty = np.empty((0, N_SAMPLES), np.float32)
        top = np.concatenate(self._top_class) if self._top_class else np.empty(0, int)
        with open(path, "wb") as fh:
            np.savez_compressed(
                fh, record=np.asarray(self.records, dtype=str),
                window=np.asarray(self.window, dtype=np.int32),
                cam_mi=np.concatenate(self._mi) if self._mi else empty,
                cam_top=np.concatenate(self._top) if self._top else empty,
                top_class=np.asarray([CLASSES[i] for i in top], dtype=str),
                fs=np.float32(MODEL_FS), model=self.model, runtime=self.runtime,
                precision=self.precision)
        return path


#: Errors a bad record raises while it is read and prepared (the other records go on when
#: `predict_sources` is given a ``failed`` list).
RECORD_ERRORS: tuple[type[BaseException], ...] = (ValueError, KeyError, OSError)


def _prepare_or_error(args: tuple[Any, Standardizer]) -> np.ndarray | BaseException:
    """`_prepare`, with a bad record's error returned instead of raised (it crosses a process
    pool as a value, so one record cannot stop the others)."""
    try:
        return _prepare(args)
    except RECORD_ERRORS as err:
        return err


def _predict_items(loaded: LoadedModel, items: Sequence[Any], jobs: int,
                   windows_out: list[int] | None = None,
                   failed: list[tuple[str, BaseException]] | None = None,
                   ) -> list[np.ndarray | None]:
    """Per item, the probabilities averaged over its 10-s windows (their counts appended to
    ``windows_out``). With ``failed``, an item that cannot be read or prepared is None and
    ``(name, error)`` is appended to ``failed``; without it the first such error is raised."""
    out: list[np.ndarray | None] = []
    pool = None
    if jobs > 1 and len(items) >= POOL_MIN_RECORDS:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"))
    try:
        for s in range(0, len(items), _CHUNK_RECORDS):
            chunk = items[s:s + _CHUNK_RECORDS]
            args = [(it, loaded.standardizer) for it in chunk]
            prepared = (list(pool.map(_prepare_or_error, args, chunksize=16)) if pool
                        else [_prepare_or_error(a) for a in args])
            windows: list[np.ndarray] = []
            for it, w in zip(chunk, prepared, strict=True):
                if isinstance(w, BaseException):
                    if failed is None:
                        raise w
                    failed.append((_record_name(it), w))
                else:
                    windows.append(w)
            if not windows:
                out.extend(None for _ in chunk)
                continue
            probs = loaded.predict(np.concatenate(windows))
            if windows_out is not None:
                windows_out.extend(len(w) for w in windows)
            bounds = np.cumsum([0] + [len(w) for w in windows])
            good = iter(probs[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:],
                                                                strict=True))
            out.extend(None if isinstance(w, BaseException) else next(good) for w in prepared)
    finally:
        if pool is not None:
            pool.shutdown()
    return out


def predict_fold(loaded: LoadedModel, fold: int) -> tuple[np.ndarray, np.ndarray]:
    """(ecg_ids, probabilities) for every record of PTB-XL strat fold ``fold`` from the cached
    filtered fold arrays."""
    from detak.models.cnn_data import fold_arrays

    fa = fold_arrays(fold)
    probs = np.empty((len(fa), len(CLASSES)), dtype=np.float32)
    for s in range(0, len(fa), _CHUNK_RECORDS):
        probs[s:s + _CHUNK_RECORDS] = loaded.predict(
            loaded.standardizer.transform(fa.x[s:s + _CHUNK_RECORDS]))
    return fa.ids, probs


def predict_sources(sources: Sequence[str], model: str | Path | LoadedModel = "edge",
                    runtime: str = "torch", precision: str | None = "fp32", batch_size: int = 256,
                    jobs: int | None = None, cams: CamCollector | None = None,
                    failed: list[tuple[str, BaseException]] | None = None) -> pd.DataFrame:
    """Probabilities of the 5 superclasses for every record the sources name (see the module
    docstring): a DataFrame with columns ``record, NORM, MI, STTC, CD, HYP``, in source order.

    ``jobs``: worker processes that read and filter records (default: all cores; used for 64
    records or more) and torch threads. ``cams``: a `CamCollector` that keeps the fused Grad-CAM
    maps of every window (exported models with a map only). ``failed``: when given, a source or
    record that cannot be read or prepared is left out and ``(name, error)`` appended to it
    (`detak predict` names each and goes on); without it the first such error is raised.

    >>> predict_sources(["ptbxl://1"], model="no-such-model")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    detak.models.trained.ModelNotFoundError: model 'no-such-model' not found: ...
    """
    from detak.data.sources import SourceError, expand_source

    jobs = int(jobs or os.cpu_count() or 1)
    loaded = (model if isinstance(model, LoadedModel)
              else load_model(model, runtime, precision, batch_size, threads=jobs))
    if cams is not None:
        loaded = cams.wrap(loaded)
    names: list[str] = []
    rows: list[np.ndarray] = []
    pending: list[Any] = []

    def flush() -> None:
        if pending:
            windows: list[int] = []
            probs = _predict_items(loaded, pending, jobs, windows, failed)
            new = [_record_name(it) for it, p in zip(pending, probs, strict=True)
                   if p is not None]
            rows.extend(p for p in probs if p is not None)
            names.extend(new)
            if cams is not None:
                cams.name_windows(new, windows)
            pending.clear()

    for source in sources:
        m = _FOLD.match(source.strip())
        if m:
            from detak.data.ptbxl import FoldNotAvailableError

            flush()
            try:
                ids, probs = predict_fold(loaded, int(m.group(1)))
            except (FoldNotAvailableError, ValueError) as err:
                if failed is None:
                    raise SourceError(f"{source!r}: {err}") from err
                failed.append((source, SourceError(f"{source!r}: {err}")))
                continue
            names.extend(str(int(i)) for i in ids)
            rows.extend(probs)
            if cams is not None:
                cams.name_windows([str(int(i)) for i in ids], [1] * len(ids))
            continue
        try:
            pending.extend(expand_source(source))
        except (SourceError, *RECORD_ERRORS) as err:
            if failed is None:
                raise
            failed.append((source, err))
    flush()
    table = pd.DataFrame(np.asarray(rows, dtype=np.float64).reshape(-1, len(CLASSES)),
                         columns=list(CLASSES))
    table.insert(0, "record", names)
    return table


def write_predictions(table: pd.DataFrame, path: str | Path) -> Path:
    """Write the prediction table as CSV (header ``record,NORM,MI,STTC,CD,HYP``; 6 decimals)."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    table.loc[:, list(COLUMNS)].to_csv(path, index=False, float_format="%.6f")
    return path


__all__ = ["AUTO", "COLUMNS", "CalibrationCardError", "CamCollector", "LoadedModel",
           "ModelNotFoundError", "NoCamError",
           "card_calibration", "choose_runtime",
           "RuntimeNotAvailableError", "default_models_dir", "load_torch_module",
           "load_model", "predict_fold", "predict_sources", "resolve_model_dir",
           "write_predictions", "MODEL_FS", "N_SAMPLES"]

"""How close the int8 ONNX edge model runs to ONNX Runtime's own int8 GEMM rate (issue 18,
item 1), measured so that load on a shared machine cancels out.

For each subject (an int8 ``.onnx`` file, or a model folder/NAME whose ``NAME.int8.onnx`` is
used) the script times, at batch 1 with 1 thread, in *interleaved rounds* (one round = every
configuration in turn, then the reference GEMM; ``--rounds`` rounds, each configuration's
median of ``--calls`` calls per round):

* ``cam``: the file as shipped (logits, probabilities, the two maps);
* ``no CAM``: the same graph pruned to ``logits`` and ``probs`` (onnx's extractor);
* ``body``: pruned to the float feature map the head reads (the quantized convolutions,
  the input QuantizeLinear and the DequantizeLinear of the features);
* ``quantize``: the input QuantizeLinear alone;
* the reference: ONNX Runtime's ``MatMulInteger`` (uint8 × int8, 512 × 1024 × 1024, the
  kernel family its int8 convolutions run on), median of ``--gemm-calls`` calls.

A round's ratio is the model's MAC/s over that round's GEMM MAC/s, so a load change hits
numerator and denominator alike; the table gives the median over rounds and the p25–p75 of
the per-round ratios.

MACs are counted on the ONNX graph itself (`graph_macs`, batch 1): every Conv (output
elements × input channels per group × kernel size) and every MatMul / Gemm (output elements ×
the reduced dimension), the float head and the CAM included — beside the model card's count
(`count_macs`: the torch model's convs and its final linear, no CAM).

``--reexport`` adds, for each model folder, the int8 file that ``detak export onnx`` writes
with this checkout's code (`reexport`: the export card's calibration set and method), so an
export change is timed against the shipped file in the same run. ``--variants`` adds the
edge shapes of `SHAPES` with random weights (`shape_variants`): what channel counts would do
without training.

``--profile`` adds ONNX Runtime's profiler (``SessionOptions.enable_profiling``) on the
``cam`` graph: time per operator type of the *optimized* graph onnxruntime runs. The profiler
adds a roughly fixed cost per node (its own timestamps), so small nodes look dearer than they
are; the pruned-graph timings above are the overhead-free split.

Run: ``python benchmarks/edge_int8_speed.py --models edge training_state/edge-kd
[--onnx FILE ...] [--rounds 15] [--calls 200] [--profile] [--reexport] [--variants]
[--markdown OUT.md] [--json OUT]`` (a subject may be given as ``LABEL=NAME|DIR|FILE``).

>>> from onnx import TensorProto, helper
>>> g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["y"])], "g",
...     [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", 3, 4])],
...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
...     [helper.make_tensor("b", TensorProto.FLOAT, [4, 5], [0.0] * 20)])
>>> graph_macs(helper.make_model(g))  # 3 × 5 outputs × 4 each, at batch 1
{'MatMul': 60}
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _provenance import provenance_line
from readme_tables import write_results

LIBRARIES = ("onnxruntime", "onnx")
GEMM_SHAPE = (512, 1024, 1024)
INPUT = "ecg"
CONFIGS = ("cam", "nocam", "body", "quantize")


def _session(model: Any, profile_prefix: str | None = None) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    if profile_prefix:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    src = model if isinstance(model, str) else model.SerializeToString()
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def gemm_reference() -> tuple[Any, dict[str, np.ndarray], int]:
    """ONNX Runtime's int8 GEMM (``MatMulInteger``, uint8 × int8 → int32) session, its feed and
    its MAC count (`GEMM_SHAPE`)."""
    from onnx import TensorProto, helper, numpy_helper

    m, k, n = GEMM_SHAPE
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (m, k), dtype=np.uint8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    graph = helper.make_graph([helper.make_node("MatMulInteger", ["A", "B"], ["Y"])], "gemm",
                              [helper.make_tensor_value_info("A", TensorProto.UINT8, [m, k])],
                              [helper.make_tensor_value_info("Y", TensorProto.INT32, [m, n])],
                              [numpy_helper.from_array(b, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return _session(model), {"A": a}, m * k * n


def _batch_one(model: Any) -> Any:
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    for vi in list(m.graph.input) + list(m.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if len(dims) and dims[0].dim_param:
            dims[0].dim_value = 1
    del m.graph.value_info[:]
    return onnx.shape_inference.infer_shapes(m, data_prop=True)


def graph_macs(model: Any) -> dict[str, int]:
    """Multiply-accumulates per record of an ONNX model at batch 1, by operator type: Conv
    (output elements × input channels / group × kernel elements), MatMul and Gemm (output
    elements × the reduced dimension). Shapes by onnx shape inference."""
    from onnx import numpy_helper

    m = _batch_one(model)
    shapes: dict[str, list[int]] = {}
    for vi in list(m.graph.input) + list(m.graph.value_info) + list(m.graph.output):
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else 0 for d in dims]
    for init in m.graph.initializer:
        shapes[init.name] = list(numpy_helper.to_array(init).shape)
    producer = {o: n for n in m.graph.node for o in n.output}

    def shape(name: str) -> list[int]:
        if name in shapes:
            return shapes[name]
        p = producer.get(name)  # a weight behind its DequantizeLinear
        if p is not None and p.op_type == "DequantizeLinear":
            return shape(p.input[0])
        return []

    out: dict[str, int] = collections.Counter()
    for node in m.graph.node:
        y = shape(node.output[0])
        if not y or 0 in y:
            continue
        if node.op_type == "Conv":
            w = shape(node.input[1])
            out["Conv"] += int(np.prod(y)) * int(np.prod(w[1:]))
        elif node.op_type in ("MatMul", "Gemm"):
            a = shape(node.input[0])
            trans_a = any(at.name == "transA" and at.i for at in node.attribute)
            k = a[-2] if (trans_a and len(a) >= 2) else a[-1]
            out[node.op_type] += int(np.prod(y)) * int(k)
    return dict(out)


def _head_inputs(model: Any) -> list[str]:
    """Tensors produced outside the head (``/head/`` nodes) and read by it: the float feature
    map the body hands to the head."""
    head = [n for n in model.graph.node if n.name.startswith("/head/")]
    made = {o for n in head for o in n.output}
    consts = {i.name for i in model.graph.initializer}
    return sorted({i for n in head for i in n.input if i and i not in made and i not in consts
                   and any(i in p.output for p in model.graph.node)})


def variants(path: Path) -> dict[str, Any]:
    """The ``cam``, ``nocam``, ``body`` and ``quantize`` graphs of an int8 ONNX file."""
    import onnx
    from onnx.utils import Extractor

    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    ex = Extractor(model)
    outs = [o.name for o in model.graph.output]
    q_in = [n.output[0] for n in model.graph.node
            if n.op_type == "QuantizeLinear" and n.input[0] == INPUT]
    graphs = {"cam": model}
    if {"logits", "probs"} <= set(outs) and len(outs) > 2:
        graphs["nocam"] = ex.extract_model([INPUT], ["logits", "probs"])
    feats = _head_inputs(model)
    if feats:
        graphs["body"] = ex.extract_model([INPUT], feats)
    if q_in:
        graphs["quantize"] = ex.extract_model([INPUT], q_in[:1])
    return graphs


def _median_us(sess: Any, feeds: list[dict[str, np.ndarray]], calls: int) -> float:
    for f in feeds[:5]:
        sess.run(None, f)
    times = []
    for i in range(calls):
        f = feeds[i % len(feeds)]
        t0 = time.perf_counter()
        sess.run(None, f)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def interleaved(subjects: dict[str, dict[str, Any]], records: np.ndarray, rounds: int,
                calls: int, gemm_calls: int) -> dict[str, Any]:
    """Per-round medians (µs) of every subject's configurations and the GEMM's G MAC/s."""
    gemm, gemm_feed, gemm_macs = gemm_reference()
    feeds = [{INPUT: np.ascontiguousarray(records[i:i + 1])} for i in range(len(records))]
    sessions = {(s, c): _session(g) for s, graphs in subjects.items() for c, g in graphs.items()}
    times: dict[tuple[str, str], list[float]] = {k: [] for k in sessions}
    gemm_rate: list[float] = []
    keys = list(sessions)
    for r in range(rounds):
        # alternate the order between rounds so no configuration always follows the GEMM
        for key in (keys if r % 2 == 0 else keys[::-1]):
            times[key].append(_median_us(sessions[key], feeds, calls))
        g = [_median_us(gemm, [gemm_feed], 1) for _ in range(gemm_calls)]
        gemm_rate.append(gemm_macs / statistics.median(g) / 1e3)  # G MAC/s
    return {"times_us": times, "gemm_gmacs": gemm_rate}


def profile_by_op(path: Path, records: np.ndarray, calls: int) -> dict[str, dict[str, float]]:
    """ONNX Runtime's profiler on ``path``: µs per call and node count per operator type of
    the optimized graph (the kernels that actually ran)."""
    import onnxruntime  # noqa: F401 - the profiler belongs to the session

    with tempfile.TemporaryDirectory(prefix="detak-prof-") as tmp:
        sess = _session(str(path), profile_prefix=str(Path(tmp) / "p"))
        feeds = [{INPUT: np.ascontiguousarray(records[i:i + 1])} for i in range(len(records))]
        for i in range(calls):
            sess.run(None, feeds[i % len(feeds)])
        events = json.loads(Path(sess.end_profiling()).read_text())
    per_node: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    runs: list[float] = []
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_node[(e["args"]["op_name"], e["name"])].append(e["dur"])
        elif e.get("cat") == "Session" and e["name"] == "model_run":
            runs.append(e["dur"])
    per_op: dict[str, float] = collections.defaultdict(float)
    nodes: dict[str, int] = collections.Counter()
    for (op, _), durs in per_node.items():  # per node: the median call (µs)
        per_op[op] += statistics.median(durs)
        nodes[op] += 1
    return {"_run": {"us": statistics.median(runs) if runs else float("nan"),
                     "nodes": sum(nodes.values())},
            **{op: {"us": v, "nodes": nodes[op]}
               for op, v in sorted(per_op.items(), key=lambda t: -t[1])}}


def _q(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def summarise(name: str, macs: dict[str, dict[str, int]], card_macs: int | None,
              timing: dict[str, Any]) -> dict[str, Any]:
    """One subject's medians, G MAC/s and % of the GEMM (``macs``: per configuration, by
    operator type)."""
    times = {c: v for (s, c), v in timing["times_us"].items() if s == name}
    gemm = timing["gemm_gmacs"]
    total = sum(macs["cam"].values())
    conv = macs["cam"].get("Conv", 0)
    row: dict[str, Any] = {"subject": name, "macs_total": total, "macs_conv": conv,
                           "macs_head": total - conv, "macs_card": card_macs,
                           "gemm_gmacs": statistics.median(gemm)}
    for c, v in times.items():
        row[f"{c}_us"] = statistics.median(v)
        row[f"{c}_us_p25_p75"] = (_q(v, 25), _q(v, 75))
    for c in ("cam", "nocam", "body"):
        if c not in times:
            continue
        m = sum(macs[c].values())
        # per round: (MACs / latency) / that round's GEMM rate
        ratios = [m / t / 1e3 / g for t, g in zip(times[c], gemm, strict=True)]
        row[f"{c}_pct"] = 100 * statistics.median(ratios)
        row[f"{c}_pct_p25_p75"] = (100 * _q(ratios, 25), 100 * _q(ratios, 75))
        row[f"{c}_gmacs"] = m / statistics.median(times[c]) / 1e3
    return row


def _fmt_pct(row: dict[str, Any], c: str) -> str:
    if f"{c}_pct" not in row:
        return "—"
    lo, hi = row[f"{c}_pct_p25_p75"]
    return f"{row[f'{c}_pct']:.0f} % ({lo:.0f}–{hi:.0f})"


def paired_change(timing: dict[str, Any], new: str, old: str) -> tuple[float, float, float]:
    """Median and p25/p75 over rounds of the latency ratio ``new`` / ``old`` (CAM graphs):
    the two were timed in the same rounds, so the ratio cancels the machine's load."""
    t = timing["times_us"]
    r = [a / b for a, b in zip(t[(new, "cam")], t[(old, "cam")], strict=True)]
    return statistics.median(r), _q(r, 25), _q(r, 75)


def markdown(rows: list[dict[str, Any]], profiles: dict[str, dict], meta: dict[str, Any]) -> str:
    lines = ["| subject | MACs (conv + head/CAM) | latency µs, CAM [p25–p75] | no CAM | body | "
             "input quantize | G MAC/s (CAM) | GEMM G MAC/s | % of GEMM, CAM [p25–p75] | "
             "no CAM | body |", "|" + "---|" * 11]
    for r in rows:
        lo, hi = r["cam_us_p25_p75"]
        lines.append(
            f"| {r['subject']} | {r['macs_conv'] / 1e6:.2f} M + {r['macs_head'] / 1e3:.0f} k | "
            f"{r['cam_us']:.1f} [{lo:.1f}–{hi:.1f}] | {r.get('nocam_us', float('nan')):.1f} | "
            f"{r.get('body_us', float('nan')):.1f} | {r.get('quantize_us', float('nan')):.1f} | "
            f"{r['cam_gmacs']:.0f} | {r['gemm_gmacs']:.0f} | {_fmt_pct(r, 'cam')} | "
            f"{_fmt_pct(r, 'nocam')} | {_fmt_pct(r, 'body')} |")
    lines += ["", f"Batch 1, 1 thread, {meta['rounds']} interleaved rounds × {meta['calls']} "
              f"calls per configuration (median per round), reference: ONNX Runtime "
              f"MatMulInteger {'x'.join(map(str, GEMM_SHAPE))} ({meta['gemm_calls']} calls per "
              "round); % of GEMM: median over rounds of each round's ratio, p25–p75 in brackets. "
              "MACs counted on the ONNX graph at batch 1 (convs; head = the float MatMul/Gemm "
              "of logits and CAM). Inputs: "
              f"{meta['inputs']}. CPU: {meta['cpu']}."]
    for new, old, (med, lo, hi) in meta.get("paired", []):
        lines.append(f"{new} / {old}, latency with CAM, per-round ratio: {med:.3f} "
                     f"(p25–p75 {lo:.3f}–{hi:.3f}).")
    for name, prof in profiles.items():
        run = prof["_run"]
        lines += ["", f"Profile of {name} (ONNX Runtime profiler: the median call of each of "
                  f"the {run['nodes']} nodes of the optimized graph, summed per operator; "
                  f"{run['us']:.0f} µs per call under the profiler, which times in whole µs "
                  "and adds its own cost to every node):", "",
                  "| operator | nodes | µs per call | share |", "|---|---|---|---|"]
        total = sum(v["us"] for k, v in prof.items() if k != "_run")
        for op, v in prof.items():
            if op == "_run":
                continue
            lines.append(f"| {op} | {v['nodes']} | {v['us']:.1f} | "
                         f"{100 * v['us'] / total:.1f} % |")
    return "\n".join(lines)


# Edge-architecture shapes timed with random weights (``--variants``): (stem, stages) as
# `detak.models.cnn.edge.EdgeNet` takes them, named "stem/stage widths kernels" (kernels as
# shipped unless given); the first is the shipped shape.
SHAPES: dict[str, tuple[int, tuple[tuple[int, tuple[int, int]], ...]]] = {
    "shipped 32/32,48,64,96": (32, ((32, (7, 7)), (48, (5, 5)), (64, (5, 5)), (96, (3, 3)))),
    "stem 16/32,48,64,96": (16, ((32, (7, 7)), (48, (5, 5)), (64, (5, 5)), (96, (3, 3)))),
    "32/32,64,64,96 k5,5,3,3": (32, ((32, (5, 5)), (64, (5, 5)), (64, (3, 3)), (96, (3, 3)))),
    "32/64,64,64,64 k3": (32, ((64, (3, 3)), (64, (3, 3)), (64, (3, 3)), (64, (3, 3)))),
    "32/64,64,96,128 k5,5,3,3": (32, ((64, (5, 5)), (64, (5, 5)), (96, (3, 3)), (128, (3, 3)))),
    "3 stages 32/64,96,128": (32, ((64, (7, 7)), (96, (5, 5)), (128, (3, 3)))),
    "64/64,64,96,128 k3": (64, ((64, (3, 3)), (64, (3, 3)), (96, (3, 3)), (128, (3, 3)))),
}


def shape_variants(out_dir: Path, calibration: np.ndarray) -> list[tuple[str, Path, int]]:
    """`SHAPES` as int8 ONNX files with random weights (seeded; batch-norm statistics and
    affine terms drawn as after training, so activations have realistic ranges), exported
    and quantized by detak's own path (`export_onnx`, `quantize_onnx`, MinMax)."""
    import torch

    from detak.export.onnx_export import export_onnx, quantize_onnx
    from detak.models.cnn.edge import EdgeNet
    from detak.models.cnn.registry import count_parameters

    out = []
    for i, (name, (stem, stages)) in enumerate(SHAPES.items()):
        torch.manual_seed(i)
        model = EdgeNet(stem=stem, stages=stages).eval()
        g = torch.Generator().manual_seed(i)
        with torch.no_grad():
            for mod in model.modules():
                if isinstance(mod, torch.nn.BatchNorm1d):
                    n = mod.num_features
                    mod.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
                    mod.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                    mod.weight.copy_(torch.rand(n, generator=g) + 0.5)
                    mod.bias.copy_(torch.randn(n, generator=g) * 0.3)
        fp32 = export_onnx(model, out_dir / f"v{i}.fp32.onnx")
        q = quantize_onnx(fp32, out_dir / f"v{i}.int8.onnx", calibration)
        out.append((f"{name} ({count_parameters(model) / 1e3:.0f} k par.)", q, None))
    return out


def reexport(folder: Path, out_dir: Path) -> Path:
    """The int8 ONNX file `detak export onnx` would write for ``folder`` with this checkout's
    code: the export card's calibration set (size, seed) and chosen calibration method, the
    same `export_onnx` + `quantize_onnx` calls (deterministic: the same bytes)."""
    import json as _json

    from detak.export.onnx_export import export_onnx, quantize_onnx
    from detak.export.predict import load_torch_module
    from detak.export.representative import representative_set
    from detak.models.model_card import read_card
    from detak.signal.filters import Standardizer

    card = read_card(folder / "card.json")
    onnx_card = _json.loads((folder / "export.json").read_text())["exports"]["onnx"]
    calib = onnx_card["calibration"]
    std = Standardizer.load(folder / "standardizer.json")
    x = std.transform(representative_set(calib["size"], calib["seed"]).x).astype(np.float32)
    stem = Path(card["weights"]["file"]).stem
    out_dir.mkdir(parents=True, exist_ok=True)
    fp32 = export_onnx(load_torch_module(folder, card), out_dir / f"{stem}.fp32.onnx")
    return quantize_onnx(fp32, out_dir / f"{stem}.int8.onnx", x,
                         method=onnx_card["int8"]["calibration_method"])


def resolve_subject(spec: str) -> tuple[str, Path, int | None]:
    """(label, int8 ONNX path, card MACs) of a model NAME/folder or an ``.onnx`` file, each
    optionally as ``LABEL=SPEC``."""
    label, _, spec = spec.rpartition("=") if "=" in spec else (spec, "", spec)
    p = Path(spec)
    if p.suffix == ".onnx" and p.is_file():
        return label, p, None
    from detak.export.predict import resolve_model_dir
    from detak.export.runtime import find_model_file
    from detak.models.model_card import read_card

    folder = resolve_model_dir(spec)
    card = read_card(folder / "card.json")
    stem = Path(card["weights"]["file"]).stem
    path = find_model_file(folder, stem, "onnx", "int8")
    if path is None:
        raise SystemExit(f"{spec}: no int8 ONNX file in {folder}")
    return label, path, int(card["architecture"].get("macs") or 0) or None


def fold_records(fold: int, n: int, subject: str) -> tuple[np.ndarray, str]:
    """``n`` standardised records of ``fold`` (the first model folder's standardizer), or
    seeded normal noise when the data or a standardizer is missing (int8 timing does not
    depend on the values)."""
    try:
        from detak.export.predict import resolve_model_dir
        from detak.models.cnn_data import fold_arrays
        from detak.signal.filters import Standardizer

        std = Standardizer.load(resolve_model_dir(subject) / "standardizer.json")
        fa = fold_arrays(fold)
        idx = np.flatnonzero(fa.labelled)[:n]
        return (std.transform(np.asarray(fa.x[idx])).astype(np.float32),
                f"the first {len(idx)} labelled fold-{fold} records")
    except Exception:  # noqa: BLE001 - any failure: fall back to noise, and say so
        rng = np.random.default_rng(0)
        return (rng.standard_normal((n, 12, 1000)).astype(np.float32),
                f"{n} records of seeded N(0, 1) noise")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="*", default=["edge"], metavar="NAME|DIR")
    p.add_argument("--onnx", nargs="*", default=[], metavar="FILE.int8.onnx")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--gemm-calls", type=int, default=7)
    p.add_argument("--fold", type=int, default=9)
    p.add_argument("--profile", action="store_true", help="ONNX Runtime profile per op type")
    p.add_argument("--reexport", action="store_true",
                   help="also time each model folder re-exported with this checkout's code")
    p.add_argument("--variants", action="store_true",
                   help="also time the edge shapes of SHAPES with random weights")
    p.add_argument("--markdown", default=None, metavar="OUT.md")
    p.add_argument("--json", default=None, metavar="OUT.json")
    args = p.parse_args(argv)
    specs = [*args.models, *args.onnx]
    subjects = [resolve_subject(s) for s in specs]
    first = args.models[0].rpartition("=")[2] if args.models else "edge"
    records, inputs = fold_records(args.fold, 100, first)
    tmp = tempfile.TemporaryDirectory(prefix="detak-shapes-")
    if args.reexport:
        from detak.models.model_card import sha256_file

        for i, (label, path, card_macs) in enumerate(list(subjects)):
            if (path.parent / "export.json").is_file() and path.suffix == ".onnx":
                new = reexport(path.parent, Path(tmp.name) / f"re{i}")
                subjects.append((f"{label}, re-exported", new, card_macs))
                print(f"{label}: re-exported {new.name} sha256 {sha256_file(new)[:16]} "
                      f"(shipped {sha256_file(path)[:16]})", file=sys.stderr)
    n_named = len(subjects)
    if args.variants:
        subjects += shape_variants(Path(tmp.name), records[:64])
    graphs = {label: variants(path) for label, path, _ in subjects}
    macs = {label: {c: graph_macs(g) for c, g in graphs[label].items()}
            for label, _, _ in subjects}
    timing = interleaved(graphs, records, args.rounds, args.calls, args.gemm_calls)
    rows = [summarise(label, macs[label], card_macs, timing)
            for label, _, card_macs in subjects]
    profiles = ({label: profile_by_op(path, records, 300) for label, path, _ in
                 subjects[:n_named]} if args.profile else {})
    tmp.cleanup()
    from edge_inference import cpu_info

    cpu = cpu_info()
    meta = {"rounds": args.rounds, "calls": args.calls, "gemm_calls": args.gemm_calls,
            "inputs": inputs, "cpu": f"{cpu['model']} ({cpu['vendor']}, AVX-512 VNNI: "
                                      f"{cpu['avx512_vnni']})",
            "files": {label: str(path) for label, path, _ in subjects},
            "paired": [(label, label.removesuffix(", re-exported"),
                        paired_change(timing, label, label.removesuffix(", re-exported")))
                       for label, _, _ in subjects if label.endswith(", re-exported")]}
    table = markdown(rows, profiles, meta)
    prov = provenance_line(libraries=LIBRARIES)
    print(table)
    print("\n" + prov)
    if args.markdown:
        write_results(Path(args.markdown), "int8 edge model against ONNX Runtime's int8 GEMM",
                      prov, table, {"edge_int8_speed": table.split("\n\nProfile")[0]
                                    + "\n\n" + prov})
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "profiles": profiles, "meta": meta,
                                               "timing": {f"{s}/{c}": v for (s, c), v in
                                                          timing["times_us"].items()},
                                               "gemm_gmacs": timing["gemm_gmacs"]},
                                              indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Exported CNNs on the kiosk's runtimes (issue 5): for each model × runtime × precision, file
size, fold-9 macro and MI AUC, the AUC change against the torch fp32 model, Grad-CAM agreement
with fp32, peak RSS, and single-thread latency per 10-s record with and without the CAM
outputs, as a ratio to torch fp32 measured in the same process, and the MAC/s achieved.

A model is a NAME (installed bundle, shipped, or trained into ``cache_dir()/cnn/NAME``) or a
folder that holds ``NAME.pt`` (torch reference) and the ``detak export`` files
(``NAME.{fp32,int8}.{onnx,tflite}``, ``export.json``).

* AUCs: all labelled records of ``--fold`` (default 9; 10 where a full PTB-XL copy has it).
* CAM agreement: per MI-positive record, Pearson r of the MI map against the fp32 map of the
  same runtime (fp32 rows: against torch's fused map); mean (and 5th percentile) over records
  whose reference map is not flat.
* Latency: batch 1, 1 thread, the backend call only (`ModelRuntime.run_batch`, which includes
  the int8 TFLite input quantization), median of ``--runs`` (≥ 200) calls on distinct fold
  records after 20 warm-up calls; torch fp32 likewise (``module(x)`` under inference_mode).
  "no CAM": the same file with the map outputs removed, timed alternately with the CAM file
  (so load changes hit both) (ONNX: the graph pruned to ``logits``
  and ``probs`` with onnx's extractor; TFLite: re-exported with ``cam=False`` — fp32 exactly,
  int8 re-quantized on the export card's calibration set).
* Peak RSS: a fresh Python process that imports the runtime, loads the file and runs 50
  records (``VmHWM``; ``ru_maxrss`` would report the parent's size, which Linux carries across
  exec); torch likewise with the ``.pt``.
* MAC/s: the model's multiply-accumulates per record (model card) / latency, beside the core's
  assumed peak (``--peak-gmacs``, or AVX-512 VNNI: 128 int8 MACs/cycle on Intel cores with two
  512-bit FMA units, 64 on AMD Zen 4, whose 512-bit ops run on 256-bit units; × the clock in
  /proc/cpuinfo, which in a VM is the nominal, not the turbo, clock). Because that assumed
  peak can be wrong (turbo clock, unknown port counts), the script also *measures* one core's
  ceiling in the same process (`measured_ceiling`): ONNX Runtime's own int8 GEMM
  (``MatMulInteger``, uint8 × int8, the kernel its QDQ convolutions run on) and fp32 GEMM
  (``MatMul``) on a large 512 × 1024 × 1024 product, 1 thread, median of 30 calls, before and
  after the models (the higher of the two, as load on a shared machine only lowers it); the
  table gives each row's MAC/s as a share of it.

A Raspberry Pi 4 (Cortex-A72) has no int8 dot-product instructions; int8 is often no faster
than fp32 there. This script reports what it measures on the machine it runs on — it invents
no Pi figures.

Run: ``.venv/bin/python benchmarks/edge_inference.py --models edge [--runs 200] [--fold 9]
[--json OUT.json] [--markdown OUT.md] [--no-rss] [--no-cam-variants]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _provenance import provenance_line
from readme_tables import write_results

LIBRARIES = ("onnxruntime", "onnx", "ai-edge-litert", "torch")

RUNTIMES = ("onnx", "tflite")
PRECISIONS = ("fp32", "int8")


def cpu_info() -> dict[str, Any]:
    """Model name, vendor, clock and the VNNI flags of this machine's CPU."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""

    def field(name: str) -> str:
        m = re.search(rf"^{name}\s*:\s*(.+)$", text, re.MULTILINE)
        return m.group(1).strip() if m else ""

    flags = set(field("flags").split())
    return {"model": field("model name") or platform.processor(), "vendor": field("vendor_id"),
            "family": field("cpu family"), "mhz": float(field("cpu MHz") or 0),
            "avx512_vnni": "avx512_vnni" in flags, "avx_vnni": "avx_vnni" in flags,
            "avx512f": "avx512f" in flags, "cores": os.cpu_count()}


def assumed_peak(cpu: dict[str, Any], override: float | None) -> dict[str, Any]:
    """Peak int8 and fp32 MAC/s of one core under stated assumptions."""
    ghz = cpu["mhz"] / 1000
    if cpu["vendor"] == "AuthenticAMD" and cpu["avx512f"]:
        int8_per_cycle, fp32_per_cycle, note = 64, 16, "AMD Zen 4: 512-bit ops on 256-bit units"
    elif cpu["avx512_vnni"]:
        int8_per_cycle, fp32_per_cycle, note = 128, 32, "2 × 512-bit FMA units (Intel server)"
    elif cpu["avx_vnni"]:
        int8_per_cycle, fp32_per_cycle, note = 64, 16, "AVX-VNNI 256-bit"
    else:
        int8_per_cycle, fp32_per_cycle, note = 32, 16, "no VNNI: AVX2 int8 via 16-bit products"
    out = {"int8_gmacs": round(int8_per_cycle * ghz, 1), "fp32_gmacs": round(fp32_per_cycle * ghz,
                                                                              1),
           "assumption": f"{note}; {int8_per_cycle} int8 / {fp32_per_cycle} fp32 MACs per "
                         f"cycle × {ghz:.2f} GHz (nominal clock)"}
    if override:
        out["int8_gmacs"] = override
        out["assumption"] = f"given with --peak-gmacs ({override} G int8 MAC/s)"
    return out


def measured_ceiling(m: int = 512, k: int = 1024, n: int = 1024,
                     calls: int = 30) -> dict[str, float]:
    """One core's practical int8 and fp32 MAC/s: ONNX Runtime GEMMs (``MatMulInteger`` uint8 ×
    int8 → int32, ``MatMul`` fp32) of ``m × k × n``, 1 thread, median of ``calls``."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    results: dict[str, float] = {}
    for kind in ("int8", "fp32"):
        if kind == "int8":
            a = rng.integers(0, 256, (m, k), dtype=np.uint8)
            b = rng.integers(-128, 128, (k, n), dtype=np.int8)
            node = helper.make_node("MatMulInteger", ["A", "B"], ["Y"])
            a_type, y_type = TensorProto.UINT8, TensorProto.INT32
        else:
            a = rng.standard_normal((m, k), dtype=np.float32)
            b = rng.standard_normal((k, n), dtype=np.float32)
            node = helper.make_node("MatMul", ["A", "B"], ["Y"])
            a_type, y_type = TensorProto.FLOAT, TensorProto.FLOAT
        graph = helper.make_graph([node], f"gemm_{kind}",
                                  [helper.make_tensor_value_info("A", a_type, [m, k])],
                                  [helper.make_tensor_value_info("Y", y_type, [m, n])],
                                  [numpy_helper.from_array(b, "B")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        onnx.checker.check_model(model)
        sess = ort.InferenceSession(model.SerializeToString(), opts,
                                    providers=["CPUExecutionProvider"])
        for _ in range(3):
            sess.run(None, {"A": a})
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            sess.run(None, {"A": a})
            times.append(time.perf_counter() - t0)
        results[f"{kind}_gmacs"] = round(m * k * n / statistics.median(times) / 1e9, 1)
    results["shape"] = f"{m}x{k}x{n}"
    return results


def median_latency_ms(fn: Any, inputs: list[np.ndarray], runs: int) -> float:
    for x in inputs[:20]:
        fn(x)
    times = []
    for i in range(runs):
        x = inputs[i % len(inputs)]
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def paired_latency_ms(fn_a: Any, fn_b: Any, inputs: list[np.ndarray],
                      runs: int) -> tuple[float, float]:
    """Medians of two functions timed alternately on the same inputs, so a load change on a
    shared machine hits both: the fair way to measure what the CAM outputs add."""
    for x in inputs[:20]:
        fn_a(x)
        fn_b(x)
    ta, tb = [], []
    for i in range(runs):
        x = inputs[i % len(inputs)]
        for fn, acc in ((fn_a, ta), (fn_b, tb)) if i % 2 == 0 else ((fn_b, tb), (fn_a, ta)):
            t0 = time.perf_counter()
            fn(x)
            acc.append(time.perf_counter() - t0)
    return statistics.median(ta) * 1000, statistics.median(tb) * 1000


_RSS_SCRIPT = """
import re, sys, numpy as np
kind, path, folder = sys.argv[1], sys.argv[2], sys.argv[3]
x = np.random.default_rng(0).normal(size=(1, 12, 1000)).astype(np.float32)
if kind == "torch":
    import torch
    torch.set_num_threads(1)
    from detak.models.model_card import read_card
    from detak.export.predict import load_torch_module
    from pathlib import Path
    m = load_torch_module(Path(folder), read_card(Path(folder) / "card.json"))
    with torch.inference_mode():
        for _ in range(50):
            m(torch.from_numpy(x))
else:
    from detak.export.runtime import load_runtime
    rt = load_runtime(path, threads=1)
    for _ in range(50):
        rt.run_batch(x)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the (large) parent across exec
hwm = re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)
print("MAXRSS_KB", hwm)
"""


def peak_rss_mb(kind: str, path: Path, folder: Path) -> float | None:
    proc = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, kind, str(path), str(folder)],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    m = re.search(r"MAXRSS_KB (\d+)", proc.stdout)
    return round(int(m.group(1)) / 1024, 1) if m else None


def no_cam_variant(path: Path, runtime: str, precision: str, module: Any, card: dict,
                   out_dir: Path) -> Path:
    """The same model without the map outputs (see the module docstring)."""
    target = out_dir / path.name.replace(f".{precision}.", f".{precision}.nocam.")
    if runtime == "onnx":
        import onnx
        from onnx.utils import Extractor

        model = onnx.load(str(path))
        sub = Extractor(model).extract_model([model.graph.input[0].name], ["logits", "probs"])
        onnx.save(sub, str(target))
        return target
    from detak.export.tflite_export import export_tflite, export_tflite_int8

    if precision == "fp32":
        return export_tflite(module, target, cam=False)
    from detak.export.representative import representative_set
    from detak.signal.filters import Standardizer

    calib = card["exports"]["tflite"]["calibration"]
    std = Standardizer.load(path.parent / "standardizer.json")
    cs = representative_set(calib["size"], calib["seed"])
    return export_tflite_int8(module, target, std.transform(cs.x).astype(np.float32), cam=False)


def bench_model(model: str, args: argparse.Namespace, peak: dict[str, Any]) -> list[dict]:
    import torch

    from detak.export.cam import MI_INDEX, export_graph
    from detak.export.compare import auc_summary, cam_agreement
    from detak.export.predict import load_torch_module, resolve_model_dir
    from detak.export.runtime import find_model_file, load_runtime
    from detak.models.cnn_data import fold_arrays
    from detak.models.model_card import read_card
    from detak.models.trained import torch_weights_file
    from detak.signal.filters import Standardizer

    torch.set_num_threads(1)
    folder = resolve_model_dir(model)
    card = read_card(folder / "card.json")
    export_card = json.loads((folder / "export.json").read_text()) if (
        folder / "export.json").is_file() else {}
    stem = Path(card["weights"]["file"]).stem
    macs = int(card["architecture"].get("macs") or export_card.get("macs") or 0)
    std = Standardizer.load(folder / "standardizer.json")
    fa = fold_arrays(args.fold)
    keep = np.flatnonzero(fa.labelled)
    x = std.transform(np.asarray(fa.x[keep])).astype(np.float32)
    y = fa.y[keep]
    mi_pos = y[:, MI_INDEX] == 1
    singles = [np.ascontiguousarray(x[i:i + 1]) for i in range(min(len(x), args.runs))]
    rows: list[dict] = []

    module = load_torch_module(folder, card)
    graph = export_graph(module)
    with torch.inference_mode():
        ref = {k: [] for k in graph.output_names}
        for s in range(0, len(x), 256):
            out = graph(torch.from_numpy(x[s:s + 256]))
            for k in ref:
                ref[k].append(out[k].numpy())
        ref = {k: np.concatenate(v) for k, v in ref.items()}
        t_torch = median_latency_ms(lambda r: module(torch.from_numpy(r)), singles, args.runs)
    torch_auc = auc_summary(y, ref["probs"])
    rows.append({"model": card.get("name", stem), "runtime": "torch", "precision": "fp32",
                 "bytes": torch_weights_file(folder, card).stat().st_size,
                 "macro_auc": torch_auc["macro_auc"], "mi_auc": torch_auc["mi_auc"],
                 "auc_change": 0.0, "cam_r": None, "latency_ms": round(t_torch, 4),
                 "latency_nocam_ms": round(t_torch, 4), "ratio_to_torch": 1.0,
                 "gmacs": round(macs / t_torch / 1e6, 1),
                 "peak_rss_mb": None if args.no_rss else peak_rss_mb(
                     "torch", torch_weights_file(folder, card), folder)})
    fp32_maps: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory(prefix="detak-bench-") as tmp:
        for runtime in RUNTIMES:
            for precision in PRECISIONS:
                path = find_model_file(folder, stem, runtime, precision)
                if path is None:
                    continue
                rt = load_runtime(path, threads=1)
                pred = rt.run(x)
                summary = auc_summary(y, pred.probs)
                cam_r = None
                if rt.has_cam:
                    reference = ref["cam_mi"] if precision == "fp32" else fp32_maps.get(runtime)
                    if precision == "fp32":
                        fp32_maps[runtime] = pred.cam_mi
                    if reference is not None:
                        cam_r = cam_agreement(pred.cam_mi, reference, mi_pos)
                lat_nocam = None
                if rt.has_cam and not args.no_cam_variants:
                    nc = load_runtime(no_cam_variant(path, runtime, precision, module,
                                                     export_card, Path(tmp)), threads=1)
                    lat, lat_nocam = paired_latency_ms(rt.run_batch, nc.run_batch, singles,
                                                       args.runs)
                else:
                    lat = median_latency_ms(rt.run_batch, singles, args.runs)
                rows.append({
                    "model": card.get("name", stem), "runtime": f"{runtime} ({rt.backend})",
                    "precision": precision, "bytes": path.stat().st_size,
                    "macro_auc": summary["macro_auc"], "mi_auc": summary["mi_auc"],
                    "auc_change": round(summary["macro_auc"] - torch_auc["macro_auc"], 5),
                    "cam_r": cam_r, "latency_ms": round(lat, 4),
                    "latency_nocam_ms": None if lat_nocam is None else round(lat_nocam, 4),
                    "ratio_to_torch": round(lat / t_torch, 3),
                    "gmacs": round(macs / lat / 1e6, 1),
                    "peak_rss_mb": None if args.no_rss else peak_rss_mb(runtime, path, folder)})
    for r in rows:
        r["macs"] = macs
        r["records"] = len(x)
        r["fold"] = args.fold
    return rows


def explain_slow_int8(rows: list[dict]) -> list[str]:
    notes = []
    for r in rows:
        if r["precision"] != "int8":
            continue
        fp = next((q for q in rows if q["model"] == r["model"] and q["runtime"] == r["runtime"]
                   and q["precision"] == "fp32"), None)
        if fp and r["latency_ms"] > fp["latency_ms"]:
            notes.append(
                f"{r['model']} {r['runtime']} int8 ({r['latency_ms']:.3f} ms) is slower than "
                f"fp32 ({fp['latency_ms']:.3f} ms): the int8 kernels of this backend do not use "
                "the CPU's dot-product instructions for this layout (e.g. signed-signed "
                "activations on x86, or per-op requantization of small tensors), so the "
                "quantize/dequantize work is not paid back.")
    return notes


def markdown(rows: list[dict], peak: dict[str, Any], cpu: dict[str, Any],
             ceiling: dict[str, Any] | None = None) -> str:
    head = ("| model | runtime | precision | size (KB) | macro AUC | MI AUC | Δ AUC vs torch | "
            "CAM r (MI+, mean / p05) | latency ms (CAM) | no CAM | × torch fp32 | G MAC/s | "
            "% of measured GEMM | peak RSS MB |")
    lines = [head, "|" + "---|" * 14]
    for r in rows:
        cam = (f"{r['cam_r']['mean_r']:.3f} / {r['cam_r']['p05_r']:.3f}"
               if r["cam_r"] and "mean_r" in r["cam_r"] else "—")
        nocam = f"{r['latency_nocam_ms']:.3f}" if r["latency_nocam_ms"] is not None else "—"
        rss = f"{r['peak_rss_mb']:.0f}" if r["peak_rss_mb"] else "—"
        ref = (ceiling or {}).get("int8_gmacs" if r["precision"] == "int8" else "fp32_gmacs")
        share = f"{100 * r['gmacs'] / ref:.0f} %" if ref else "—"
        lines.append(f"| {r['model']} | {r['runtime']} | {r['precision']} | "
                     f"{r['bytes'] / 1024:.0f} | {r['macro_auc']:.4f} | {r['mi_auc']:.4f} | "
                     f"{r['auc_change']:+.4f} | {cam} | {r['latency_ms']:.3f} | {nocam} | "
                     f"{r['ratio_to_torch']:.2f} | {r['gmacs']:.0f} | {share} | {rss} |")
    lines.append("")
    lines.append(f"CPU: {cpu['model']} ({cpu['vendor']}, AVX-512 VNNI: {cpu['avx512_vnni']}); "
                 f"one core's assumed peak: {peak['int8_gmacs']} G int8 MAC/s, "
                 f"{peak['fp32_gmacs']} G fp32 MAC/s ({peak['assumption']}).")
    if ceiling:
        lines.append(f"Measured in this run (ONNX Runtime GEMM {ceiling['shape']}, 1 thread): "
                     f"{ceiling['int8_gmacs']} G int8 MAC/s, {ceiling['fp32_gmacs']} G fp32 "
                     "MAC/s — the '% of measured GEMM' column's reference.")
    if rows:
        lines.append(f"Fold {rows[0]['fold']}, {rows[0]['records']} labelled records; "
                     "latency: batch 1, 1 thread, median of the runs.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["edge"], metavar="NAME|DIR")
    p.add_argument("--runs", type=int, default=200, help="timed calls per configuration (≥ 200)")
    p.add_argument("--fold", type=int, default=9)
    p.add_argument("--peak-gmacs", type=float, default=None,
                   help="one core's int8 peak in G MAC/s (default: from the CPU flags)")
    p.add_argument("--no-rss", action="store_true", help="skip the peak-RSS subprocesses")
    p.add_argument("--no-cam-variants", action="store_true",
                   help="skip the latency without the CAM outputs")
    p.add_argument("--json", default=None, metavar="OUT.json")
    p.add_argument("--markdown", default=None, metavar="OUT.md",
                   help="write the results file (docs/results/edge_inference.md holds the "
                        "README's table)")
    args = p.parse_args(argv)
    if args.runs < 200:
        print(f"--runs {args.runs}: the issue asks for the median of at least 200 runs",
              file=sys.stderr)
    cpu = cpu_info()
    peak = assumed_peak(cpu, args.peak_gmacs)
    before = measured_ceiling()
    rows: list[dict] = []
    for model in args.models:
        rows.extend(bench_model(model, args, peak))
    after = measured_ceiling()
    ceiling = {k: (max(v, after[k]) if isinstance(v, float) else v) for k, v in before.items()}
    table = markdown(rows, peak, cpu, ceiling)
    notes = explain_slow_int8(rows)
    prov = provenance_line(libraries=LIBRARIES)
    print(table)
    for n in notes:
        print("note:", n)
    print("\n" + prov)
    if args.markdown:
        full = table + "\n" + "".join(f"\nnote: {n}" for n in notes)
        write_results(Path(args.markdown), "Exported CNNs on the kiosk's runtimes", prov, full,
                      {"edge_inference": table + "\n\n" + prov})
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu, "peak": peak, "ceiling": ceiling,
                                               "rows": rows,
                                               "notes": notes}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

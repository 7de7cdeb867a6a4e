"""Acquisition benchmark (issue 6): bridge decoder throughput and CPU share while recording.

1. Decoder throughput, single core: real LUDB records (12 leads, 500 Hz) quantised like an
   ADS1298 (24-bit, 47.68 nV LSB) and framed as the bridge protocol (10 samples per SAMPLES
   frame), then fed to `BridgeDriver.feed` (COBS + CRC + message decoding + events) in 4 kB
   reads. Reported as frames/s, MB/s and as a multiple of the physical need of a 12-lead 500 Hz
   24-bit stream (12 x 500 x 3 = 18 kB/s). Target: >= 100x.
2. CPU share while recording in real time: the virtual device runs in a separate process on a
   pseudo-terminal (``python -m detak.firmware_bridge.serve``), and this process records from
   ``serial://<pty>`` with `detak.device.record` for ``--seconds``; CPU time (user + system) of
   this process / wall time. Target: < 5 % of one core.

    python benchmarks/acquisition.py [--seconds 30] [--records 6] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _provenance import provenance, provenance_line

REQUIRED_BYTES_PER_S = 12 * 500 * 3          # 18 kB/s: 12 leads, 500 Hz, 24 bit
ADS1298_LSB_NV = 47.68                       # VREF 2.4 V, gain 6


def build_stream(n_records: int, lsb_nv: float = ADS1298_LSB_NV, block: int = 10
                 ) -> tuple[bytes, int, int]:
    """Wire bytes of ``n_records`` LUDB records as one bridge stream; (bytes, frames, samples)."""
    from detak.data.ludb import load_ludb
    from detak.firmware_bridge.messages import INT24, DeviceInfo, Samples, encode_message

    recs = [load_ludb(n).recording for n in range(1, n_records + 1)]
    mv = np.concatenate([r.signal for r in recs], axis=1).astype(np.float64)
    counts = np.clip(np.rint(mv * 1e6 / lsb_nv), -(2**23), 2**23 - 1).astype(np.int32)
    info = DeviceInfo(500000, lsb_nv, 24, INT24, tuple(recs[0].leads),
                      ("RA", "LA", "LL", "RL", "V1", "V2", "V3", "V4", "V5", "V6"),
                      "bench", "1", "1")
    parts = [encode_message(info, 0)]
    seq = 1
    for i in range(0, counts.shape[1], block):
        parts.append(encode_message(Samples(i, i * 2000, INT24, counts[:, i:i + block]), seq))
        seq += 1
    return b"".join(parts), seq - 1, counts.shape[1]


def decoder_throughput(wire: bytes, frames: int, repeats: int = 3) -> dict:
    from detak.device.bridge import BridgeDriver

    best = float("inf")
    for _ in range(repeats):
        drv = BridgeDriver()
        t0 = time.process_time()
        n_blocks = 0
        for i in range(0, len(wire), 4096):
            n_blocks += len(drv.feed(wire[i:i + 4096]))
        best = min(best, time.process_time() - t0)
        assert drv.stats()["crc_errors"] == 0 and n_blocks == frames + 1
    mb_s = len(wire) / best / 1e6
    return {"bytes": len(wire), "frames": frames, "cpu_s": round(best, 4),
            "frames_per_s": round(frames / best), "MB_per_s": round(mb_s, 2),
            "x_realtime_18kBps": round(len(wire) / best / REQUIRED_BYTES_PER_S, 1)}


def recording_cpu(seconds: float) -> dict:
    from detak.device.record import record

    url = f"emu://ludb/1?loop=1&speed=1&lsb_nv={ADS1298_LSB_NV}"
    server = subprocess.Popen([sys.executable, "-m", "detak.firmware_bridge.serve", url],
                              stdout=subprocess.PIPE, text=True)
    try:
        kind, pty = server.stdout.readline().split()
        assert kind == "pty", kind
        with tempfile.TemporaryDirectory() as d:
            r0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
            path = record(f"serial://{pty}", seconds, d, name="bench")
            r1, w1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
            from detak.data.wfdb_io import read_wfdb

            rec = read_wfdb(path)
    finally:
        server.terminate()
        server.wait(timeout=10)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    wall = w1 - w0
    return {"seconds_recorded": rec.duration_s, "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 3), "cpu_share_of_one_core_pct": round(100 * cpu / wall, 2),
            "gaps": len(rec.meta["gaps"]),
            "note": "includes connecting, the handshake and writing the WFDB record"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=30.0, help="real-time recording length")
    p.add_argument("--records", type=int, default=6, help="LUDB records in the decoder stream")
    p.add_argument("--skip-recording", action="store_true", help="only the decoder part")
    p.add_argument("--out", default=None, help="also write the results as JSON here")
    args = p.parse_args(argv)
    wire, frames, samples = build_stream(args.records)
    result = {"machine": {"python": platform.python_version(), "cpu": platform.processor()
                          or platform.machine(), "cores": os.cpu_count()},
              "stream": {"records": f"LUDB 1-{args.records}", "samples": samples,
                         "lsb_nv": ADS1298_LSB_NV, "samples_per_frame": 10},
              "decoder": decoder_throughput(wire, frames)}
    print(f"decoder: {result['decoder']['frames_per_s']} frames/s, "
          f"{result['decoder']['MB_per_s']} MB/s = {result['decoder']['x_realtime_18kBps']}x "
          f"the 18 kB/s of 12 leads at 500 Hz, 24 bit (single core)")
    if not args.skip_recording:
        result["recording"] = recording_cpu(args.seconds)
        rc = result["recording"]
        print(f"recording {rc['seconds_recorded']:g} s in real time: {rc['cpu_s']} s CPU in "
              f"{rc['wall_s']} s = {rc['cpu_share_of_one_core_pct']} % of one core, "
              f"{rc['gaps']} gaps")
    result["provenance"] = provenance(libraries=("pyserial",))
    print(json.dumps(result, indent=1))
    print(provenance_line(result["provenance"]))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``pcap coalesce``: one receive queue vs ``--queues 4`` in one process, and ``--queues 4``
on a local Dask cluster of 1 and 2 workers.

Generates a receive capture on local disk: ``--flows`` interleaved IPv4 TCP flows (more than
one coalescer's 64 SCUs), each sending 64,000-byte sends cut into 1448-byte segments with
timestamps (PSH at the end of each send), valid checksums, arrival 1 us apart. Then times,
in interleaved rounds: serial ``--queues 1`` (the single coalescer), serial ``--queues 4``
(the cost of steering by the RSS hash), and ``--queues 4`` on clusters of 1 and 2 workers
(started once, start-up reported apart). Every cluster output is checked byte for byte
against the serial ``--queues 4`` output. Each figure is the median of the rounds with its
spread, with the CPU of this process (client and the local clusters' schedulers) and of the
workers, and the load average.

Run: PYTHONPATH=src:benchmarks python3 benchmarks/bench_coalesce.py [--size-mb 512]
     [--rounds 3] [--flows 200] [--dir DIR]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_scale import Runner

from ndis_offload.engine.transmit import segment_tcp
from ndis_offload.io import distributed
from ndis_offload.io.cluster import ClusterSpec, local_cluster
from ndis_offload.io.coalesce import Steering, coalesce

MSS = 1448
SEND = 64_000
QUEUES = 4


def _send(flow: int, burst: int, payload: bytes) -> bytes:
    """One 64,000-byte LSO send of ``flow`` (Ethernet / IPv4 / TCP with timestamps)."""
    eth = bytes.fromhex("020000000002020000000001") + b"\x08\x00"
    tcp_len = 32
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + tcp_len + len(payload), burst & 0xFFFF,
                     0x4000, 64, 6, 0, bytes([10, flow >> 8, flow & 0xFF, 1]),
                     bytes([10, 255, 0, 1]))  # fmt: skip
    seq = (flow * 1_000_003 + burst * len(payload)) & 0xFFFFFFFF
    options = b"\x01\x01\x08\x0a" + struct.pack("!II", 7 + burst, 9)
    tcp = struct.pack("!HHIIBBHHH", 40000 + flow, 443, seq, 1, (tcp_len // 4) << 4, 0x18,
                      512, 0, 0) + options  # fmt: skip
    return eth + ip + tcp + payload


def generate(path: Path, size_mb: int, flows: int) -> int:
    """Write the capture; the frames written."""
    payload = np.random.default_rng(1448).integers(0, 256, SEND, dtype=np.uint8).tobytes()
    rng = np.random.default_rng(7)
    target = size_mb << 20
    written = frames = 0
    ts = 1_700_000_000_000_000
    with open(path, "wb", buffering=1 << 22) as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        burst = 0
        while written < target:
            per_flow = [segment_tcp(_send(f, burst, payload), MSS).frames for f in range(flows)]
            order = np.repeat(np.arange(flows), len(per_flow[0]))
            rng.shuffle(order)
            cursor = [0] * flows
            records = []
            for f in order.tolist():
                frame = per_flow[f][cursor[f]]
                cursor[f] += 1
                records.append(struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000,
                                           len(frame), len(frame)) + frame)  # fmt: skip
                ts += 1
            block = b"".join(records)
            out.write(block)
            written += len(block)
            frames += len(records)
            burst += 1
    return frames


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--flows", type=int, default=200)
    parser.add_argument("--dir", help="where to write the capture (default: a temp dir)")
    args = parser.parse_args(argv)
    from distributed import Client

    rows: dict[str, list[tuple[float, float, float]]] = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "rx.pcap"
        frames = generate(path, args.size_mb, args.flows)
        size = path.stat().st_size
        print(f"capture: {size / 1e6:.0f} MB, {frames:,} frames, {args.flows} flows, in {tmp}")
        clusters: dict[int, Any] = {}
        clients: dict[int, Any] = {}
        for workers in (1, 2):
            start = time.perf_counter()
            clusters[workers] = local_cluster(workers)
            clients[workers] = Client(clusters[workers])
            print(f"local cluster of {workers}: started in {time.perf_counter() - start:.2f} s")
        one, ref, out = Path(tmp) / "one.pcap", Path(tmp) / "ref.pcap", Path(tmp) / "out.pcap"
        try:
            for _ in range(args.rounds):
                serial = Runner(None)
                rows.setdefault("serial --queues 1", []).append(
                    serial(lambda: coalesce(path, one))[:3]
                )
                got = serial(lambda: coalesce(path, ref, steering=Steering(QUEUES)))
                rows.setdefault(f"serial --queues {QUEUES}", []).append(got[:3])
                for workers, client in clients.items():
                    spec = ClusterSpec(scheduler=clusters[workers].scheduler_address)
                    job = functools.partial(distributed.coalesce, path, out, spec,
                                            steering=Steering(QUEUES))  # fmt: skip
                    result = Runner(client)(job)
                    if out.read_bytes() != ref.read_bytes():
                        raise SystemExit(f"workers={workers}: output differs from serial")
                    rows.setdefault(f"{workers} worker{'s' * (workers > 1)} --queues "
                                    f"{QUEUES}", []).append(result[:3])  # fmt: skip
                print(f"round done, load average {os.getloadavg()[0]:.1f}", flush=True)
            merged = got[3]
            print(f"--queues {QUEUES}: {merged.frames_out:,} frames written of {frames:,}; "
                  f"--queues 1: {one.stat().st_size / 1e6:.0f} MB written")  # fmt: skip
        finally:
            for workers in clusters:
                clients[workers].close()
                clusters[workers].close()
    print(f"load average (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'run':<22} {'wall s':>7} {'spread':>13} {'MB/s':>6} {'vs q1':>6} {'vs q4':>6} "
          f"{'client cpu':>10} {'workers cpu':>11}")  # fmt: skip
    med = {n: tuple(statistics.median(v[i] for v in r) for i in range(3)) for n, r in rows.items()}
    base1, base4 = med["serial --queues 1"][0], med[f"serial --queues {QUEUES}"][0]
    for name, values in rows.items():
        wall, client_cpu, workers_cpu = med[name]
        walls = [v[0] for v in values]
        print(f"{name:<22} {wall:>7.2f} {min(walls):>6.2f}..{max(walls):<6.2f} "
              f"{size / wall / 1e6:>6.1f} {base1 / wall:>5.2f}x {base4 / wall:>5.2f}x "
              f"{client_cpu:>10.2f} {workers_cpu:>11.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

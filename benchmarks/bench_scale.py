"""Scale-out: ``pcap verify`` / ``fix`` / ``segment`` on a local Dask cluster vs one process.

Generates a capture (the uniform 1514-byte TCP capture of bench_pcap.py, half its frames left
for offload) on local disk, then times, in interleaved rounds: the serial tool, the same job
on a 1-worker cluster (the cost of the machinery: pieces, tasks, the feed chain) and on a
2-worker cluster. Every run is checked against the serial one (the same report; the same
output bytes). Each figure is the median of the rounds with its spread, with the CPU time of
the client process (client and scheduler: a ``LocalCluster``'s scheduler runs there) and of
the workers, and the load average.

Targets (issue "scale out"): verify with 2 workers at least 1.7x serial on a 2-core machine;
per-task overhead under 3 % (CPU of a 1-worker run, workers and client, vs serial). The
clusters are started once (start-up reported apart), as a long-lived cluster is used.

Run: python benchmarks/bench_scale.py [--size-mb 8192] [--rounds 3] [--jobs verify,fix]
     [--dir DIR] [--check]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_pcap import generate

from ndis_offload.cli.pcap import summary
from ndis_offload.io import distributed, pcap_jobs
from ndis_offload.io.cluster import ClusterSpec, local_cluster

TARGET_SPEEDUP = 1.7
TARGET_OVERHEAD = 0.03


def cpu_seconds() -> float:
    """CPU time of this process (user + system), all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Runner:
    """Runs a job and measures wall time, this process's CPU and the workers' CPU."""

    def __init__(self, client: Any | None) -> None:
        self.client = client

    def workers_cpu(self) -> float:
        if self.client is None:
            return 0.0
        return float(sum(self.client.run(cpu_seconds).values()))

    def __call__(self, func: Callable[[], Any]) -> tuple[float, float, float, Any]:
        workers = self.workers_cpu()
        cpu, start = cpu_seconds(), time.perf_counter()
        result = func()
        wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu
        return wall, cpu, self.workers_cpu() - workers, result


def _cluster_job(job: str, path: Path, out: Path, spec: ClusterSpec) -> pcap_jobs.JobResult:
    if job == "verify":
        return distributed.verify(path, spec)
    if job == "fix":
        return distributed.fix(path, out, spec, everything=True)
    return distributed.segment(path, out, spec)


def report(result: pcap_jobs.JobResult) -> str:
    return json.dumps(summary(result), sort_keys=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=8192)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", default="verify,fix", help="verify, fix, segment")
    parser.add_argument("--dir", help="where to write the capture (default: a temp dir)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    from distributed import Client

    jobs = args.jobs.split(",")
    rows: dict[str, list[tuple[float, float, float]]] = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "scale.pcap"
        frames = generate(path, args.size_mb)
        size = path.stat().st_size
        print(f"capture: {size / 1e9:.2f} GB, {frames:,} frames, in {tmp}")
        pcap_jobs.verify(path)  # warm the page cache
        clusters, clients = {}, {}
        for workers in (1, 2):
            start = time.perf_counter()
            clusters[workers] = local_cluster(workers)  # as --workers N starts it
            clients[workers] = Client(clusters[workers])
            took = time.perf_counter() - start
            print(f"local cluster of {workers}: started in {took:.2f} s")
        out, ref = Path(tmp) / "out.pcap", Path(tmp) / "ref.pcap"
        try:
            for _ in range(args.rounds):
                for job in jobs:
                    serial = Runner(None)
                    if job == "verify":
                        expected = serial(lambda: pcap_jobs.verify(path))
                    elif job == "fix":
                        expected = serial(lambda: pcap_jobs.fix(path, ref, everything=True))
                    else:
                        expected = serial(lambda: pcap_jobs.segment(path, ref))
                    rows.setdefault(f"{job} serial", []).append(expected[:3])
                    for workers, client in clients.items():
                        spec = ClusterSpec(scheduler=clusters[workers].scheduler_address)
                        run = Runner(client)
                        got = run(functools.partial(_cluster_job, job, path, out, spec))
                        if report(got[3]) != report(expected[3]):
                            raise SystemExit(f"{job} workers={workers}: report differs")
                        if job != "verify" and out.read_bytes() != ref.read_bytes():
                            raise SystemExit(f"{job} workers={workers}: output differs")
                        rows.setdefault(f"{job} workers={workers}", []).append(got[:3])
                print(f"round done, load average {os.getloadavg()[0]:.1f}", flush=True)
        finally:
            for workers in clusters:
                clients[workers].close()
                clusters[workers].close()
    return _table(rows, size, args.check)


def _table(rows: dict[str, list[tuple[float, float, float]]], size: int, check: bool) -> int:
    print(f"load average (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'run':<18} {'wall s':>7} {'spread':>13} {'MB/s':>6} {'vs serial':>9} "
          f"{'client cpu':>10} {'workers cpu':>11} {'cpu vs serial':>13}")  # fmt: skip
    med: dict[str, tuple[float, float, float]] = {}
    for name, values in rows.items():
        wall, client, workers = (statistics.median(v[i] for v in values) for i in range(3))
        med[name] = (wall, client, workers)
    for name, values in rows.items():
        job = name.split()[0]
        wall, client, workers = med[name]
        base_wall, base_cpu, _ = med[f"{job} serial"]
        walls = [v[0] for v in values]
        print(f"{name:<18} {wall:>7.2f} {min(walls):>6.2f}..{max(walls):<6.2f} "
              f"{size / wall / 1e6:>6.0f} {base_wall / wall:>8.2f}x {client:>10.2f} "
              f"{workers:>11.2f} {(client + workers) / base_cpu:>12.2f}x")  # fmt: skip
    missed = 0
    if "verify workers=2" in med:
        speedup = med["verify serial"][0] / med["verify workers=2"][0]
        one = med["verify workers=1"]
        overhead = (one[1] + one[2]) / med["verify serial"][1] - 1
        two = med["verify workers=2"]
        share = two[1] / (two[1] + two[2])
        print(f"verify speed-up with 2 workers: {speedup:.2f}x (target {TARGET_SPEEDUP}x) "
              f"{'met' if speedup >= TARGET_SPEEDUP else 'MISSED'}")  # fmt: skip
        verdict = "met" if overhead < TARGET_OVERHEAD else "MISSED"
        print(f"overhead, CPU of a 1-worker run vs serial: {overhead * 100:+.1f} % "
              f"(target < {TARGET_OVERHEAD:.0%}) {verdict}")  # fmt: skip
        print(f"client + scheduler share of the CPU with 2 workers: {share * 100:.1f} %")
        missed += speedup < TARGET_SPEEDUP
        missed += overhead >= TARGET_OVERHEAD
    return 1 if missed and check else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

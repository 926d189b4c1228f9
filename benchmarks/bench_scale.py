"""Scale-out: ``pcap verify`` / ``fix`` on a local Dask cluster vs one process, same file.

Generates a capture (the uniform 1514-byte TCP capture of bench_pcap.py, half its frames
left for offload), then times, in interleaved rounds: serial verify, verify with
``--workers 1`` (the overhead of the distributed machinery: pieces, task dispatch, shipping
checks to the client) and ``--workers 2``; likewise ``fix --all``. Each figure is the median
of the rounds with its spread. Targets (issue "scale out"): verify with 2 workers at least
1.7x serial on a 2-core machine; per-task overhead under 3 % (workers=1 vs serial).
The cluster is started once per configuration and its start-up is reported separately.

Run: python benchmarks/bench_scale.py [--size-mb 2048] [--rounds 3] [--check]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_pcap import generate

from ndis_offload.io import distributed, pcap_jobs
from ndis_offload.io.cluster import ClusterSpec

TARGET_SPEEDUP = 1.7
TARGET_OVERHEAD = 0.03


def timed(func: object, *args: object, **kwargs: object) -> float:
    start = time.perf_counter()
    func(*args, **kwargs)  # type: ignore[operator]
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    from distributed import LocalCluster

    missed = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scale.pcap"
        frames = generate(path, args.size_mb)
        size = path.stat().st_size
        print(f"capture: {size / 1e9:.2f} GB, {frames:,} frames")
        pcap_jobs.verify(path)  # warm the page cache
        times: dict[str, list[float]] = {}
        clusters = {}
        for workers in (1, 2):
            start = time.perf_counter()
            clusters[workers] = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True,
                dashboard_address=":0", silence_logs=50,
            )  # fmt: skip
            print(f"local cluster of {workers}: started in {time.perf_counter() - start:.2f} s")
        try:
            for _ in range(args.rounds):
                times.setdefault("verify serial", []).append(timed(pcap_jobs.verify, path))
                for workers, cluster in clusters.items():
                    spec = ClusterSpec(scheduler=cluster.scheduler_address)
                    times.setdefault(f"verify workers={workers}", []).append(
                        timed(distributed.verify, path, spec)
                    )
                out = Path(tmp) / "out.pcap"
                times.setdefault("fix serial", []).append(
                    timed(pcap_jobs.fix, path, out, everything=True)
                )
                for workers, cluster in clusters.items():
                    spec = ClusterSpec(scheduler=cluster.scheduler_address)
                    times.setdefault(f"fix workers={workers}", []).append(
                        timed(distributed.fix, path, out, spec, everything=True)
                    )
        finally:
            for cluster in clusters.values():
                cluster.close()
    print(f"{'run':<20} {'median s':>9} {'spread':>15} {'MB/s':>8} {'vs serial':>10}")
    for name, values in times.items():
        job = name.split()[0]
        med = statistics.median(values)
        ratio = statistics.median(times[f"{job} serial"]) / med
        print(f"{name:<20} {med:>9.2f} {min(values):>7.2f}..{max(values):<7.2f} "
              f"{size / med / 1e6:>8.0f} {ratio:>9.2f}x")  # fmt: skip
    speedup = statistics.median(times["verify serial"]) / statistics.median(
        times["verify workers=2"]
    )
    overhead = (
        statistics.median(times["verify workers=1"]) / statistics.median(times["verify serial"]) - 1
    )
    print(f"verify speed-up with 2 workers: {speedup:.2f}x (target {TARGET_SPEEDUP}x) "
          f"{'met' if speedup >= TARGET_SPEEDUP else 'MISSED'}")  # fmt: skip
    print(f"overhead with 1 worker: {overhead * 100:+.1f} % (target < {TARGET_OVERHEAD:.0%}) "
          f"{'met' if overhead < TARGET_OVERHEAD else 'MISSED'}")  # fmt: skip
    missed += speedup < TARGET_SPEEDUP
    missed += overhead >= TARGET_OVERHEAD
    return 1 if missed and args.check else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

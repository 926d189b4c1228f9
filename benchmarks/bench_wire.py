"""Live wire throughput: kernel TCP (iperf3) through ``ndis-offload wire`` vs a veth pair
between the same two namespaces, measured in the same run.

Rows: veth (the kernel's own virtual wire, offloads on), the wire in passthrough mode with
offloads on, in segment mode with offloads on (NIC A cuts LSO sends to the MTU with the
engine, NIC B validates checksums and coalesces with RSC) and off (every offload off through
``OID_OFFLOAD_ENCAPSULATION`` and ``OID_TCP_OFFLOAD_PARAMETERS``: the kernel segments and
checksums itself). Targets (ratios, same run): passthrough >= 0.6x veth; segment >= 0.25x
veth; segment on >= 3x segment off. Each configuration runs ``--rounds`` times (iperf3
``-t --seconds``), configurations taking turns by round; the median is reported.

Needs root, /dev/net/tun and iperf3. Run: python3 benchmarks/bench_wire.py [--rounds 3]
[--seconds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from typing import Any

from ndis_offload.io import netns
from ndis_offload.io.tap.cleanup import remove_namespace
from ndis_offload.io.tap.control import call

CLI = [sys.executable, "-c", "from ndis_offload.cli.main import entry; entry()"]
VETH = ("10.78.0.1", "10.78.0.2")

OFF = [
    {"op": "set", "oid": "OID_OFFLOAD_ENCAPSULATION",
     "value": {"IPv4": {"Enabled": 2}, "IPv6": {"Enabled": 2}}},
    {"op": "set", "oid": "OID_TCP_OFFLOAD_PARAMETERS", "value": {"RscIPv4": 1, "RscIPv6": 1}},
]  # fmt: skip
ON = [
    {"op": "set", "oid": "OID_OFFLOAD_ENCAPSULATION",
     "value": {"IPv4": {"Enabled": 1, "EncapsulationType": 2, "HeaderSize": 14},
               "IPv6": {"Enabled": 1, "EncapsulationType": 2, "HeaderSize": 14}}},
    {"op": "set", "oid": "OID_TCP_OFFLOAD_PARAMETERS", "value": {"RscIPv4": 2, "RscIPv6": 2}},
]  # fmt: skip


class Wire:
    def __init__(self, mode: str, tag: str) -> None:
        self.socket = f"/run/ndis-offload/bench-{tag}.sock"
        self.proc = subprocess.Popen(
            [*CLI, "wire", "--json", "--mode", mode, "--socket", self.socket],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        self.info = json.loads(self.proc.stdout.readline())["ready"]
        self.namespaces: dict[str, str] = self.info["namespaces"]

    def set_offloads(self, on: bool) -> None:
        for request in ON if on else OFF:
            answer = call(self.socket, request)
            assert answer["ok"], answer

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
        for name in self.namespaces.values():
            remove_namespace(name)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def add_veth(a: str, b: str) -> None:
    netns.ip(a, "link", "add", "vetha", "type", "veth", "peer", "name", "vethb", "netns", b)
    netns.ip(a, "addr", "add", f"{VETH[0]}/24", "dev", "vetha")
    netns.ip(b, "addr", "add", f"{VETH[1]}/24", "dev", "vethb")
    netns.ip(a, "link", "set", "vetha", "up")
    netns.ip(b, "link", "set", "vethb", "up")


def iperf(client_ns: str, server_ns: str, address: str, seconds: float) -> float:
    """Gbit/s received by an iperf3 server in ``server_ns`` from a client in ``client_ns``."""
    server = subprocess.Popen(
        netns.exec_args(server_ns, "iperf3", "-s", "-1", "-p", "5299"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(0.3)
        done = subprocess.run(
            netns.exec_args(client_ns, "iperf3", "-c", address, "-p", "5299", "-J",
                            "-t", str(seconds)),
            capture_output=True, text=True, timeout=seconds + 30, check=False,
        )  # fmt: skip
        data = json.loads(done.stdout)
        return float(data["end"]["sum_received"]["bits_per_second"]) / 1e9
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(5)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    why = netns.preflight() or (None if shutil.which("iperf3") else "needs iperf3")
    if why:
        print(f"bench_wire skipped: {why}")
        return 0
    tag = str(os.getpid())
    results: dict[str, list[float]] = {
        "veth": [], "passthrough on": [], "segment on": [], "segment off": [],
    }  # fmt: skip
    passthrough = segment = None
    try:
        passthrough = Wire("passthrough", tag + "p")
        segment = Wire("segment", tag + "s")
        a, b = passthrough.namespaces["a"], passthrough.namespaces["b"]
        add_veth(a, b)
        for _ in range(args.rounds):
            results["veth"].append(iperf(a, b, VETH[1], args.seconds))
            results["passthrough on"].append(iperf(a, b, "10.77.0.2", args.seconds))
            sa, sb = segment.namespaces["a"], segment.namespaces["b"]
            segment.set_offloads(True)
            results["segment on"].append(iperf(sa, sb, "10.77.0.2", args.seconds))
            segment.set_offloads(False)
            results["segment off"].append(iperf(sa, sb, "10.77.0.2", args.seconds))
    finally:
        for wire in (passthrough, segment):
            if wire is not None:
                wire.close()
    median = {name: statistics.median(values) for name, values in results.items()}
    veth = median["veth"]
    ratios: list[tuple[str, float, float]] = [
        ("passthrough on / veth", median["passthrough on"] / veth, 0.6),
        ("segment on / veth", median["segment on"] / veth, 0.25),
        ("segment on / segment off", median["segment on"] / median["segment off"], 3.0),
    ]
    if args.json:
        out: dict[str, Any] = {
            "gbit_s": median,
            "rounds": results,
            "ratios": {name: {"ratio": r, "target": t} for name, r, t in ratios},
        }
        print(json.dumps(out, indent=1))
        return 0
    print(f"{'configuration':<28}{'Gbit/s (median)':>16}   rounds")
    for name, values in results.items():
        rounds = " ".join(f"{v:.2f}" for v in values)
        print(f"{name:<28}{median[name]:>16.2f}   {rounds}")
    print()
    print(f"{'ratio':<28}{'measured':>10}{'target':>10}")
    for name, ratio, target in ratios:
        verdict = "met" if ratio >= target else "MISSED"
        print(f"{name:<28}{ratio:>10.2f}{target:>10.2f}  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

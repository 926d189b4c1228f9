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
[--seconds 3] [--processes 1|2] [--json]; the wires run with ``--processes`` NIC processes
(default: the CLI's), and segment mode with the other count is a row of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import time
from typing import Any, cast

from ndis_offload.io import netns
from ndis_offload.io.tap.cleanup import remove_namespace
from ndis_offload.io.tap.control import call
from ndis_offload.io.tap.wire import DEFAULT_PROCESSES

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
    def __init__(self, mode: str, tag: str, processes: int = 2) -> None:
        self.socket = f"/run/ndis-offload/bench-{tag}.sock"
        self.proc = subprocess.Popen(
            [*CLI, "wire", "--json", "--mode", mode, "--socket", self.socket,
             "--processes", str(processes)],
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


def _loadavg() -> str:
    with open("/proc/loadavg") as load:
        return " ".join(load.read().split()[:3])


def add_veth(a: str, b: str) -> None:
    netns.ip(a, "link", "add", "vetha", "type", "veth", "peer", "name", "vethb", "netns", b)
    netns.ip(a, "addr", "add", f"{VETH[0]}/24", "dev", "vetha")
    netns.ip(b, "addr", "add", f"{VETH[1]}/24", "dev", "vethb")
    netns.ip(a, "link", "set", "vetha", "up")
    netns.ip(b, "link", "set", "vethb", "up")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` and its children (the NIC B process of
    ``--processes 2``): ``/proc/PID/stat`` utime + stime."""
    total = 0.0
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listing:
            children = [int(child) for child in listing.read().split()]
    except OSError:
        children = []
    for one in (pid, *children):
        try:
            with open(f"/proc/{one}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def iperf(
    client_ns: str, server_ns: str, address: str, seconds: float, wire: Wire | None = None
) -> tuple[float, float]:
    """Gbit/s received by an iperf3 server in ``server_ns`` from a client in ``client_ns``,
    and the wire process's CPU seconds per GB carried (0 without a wire): a figure that
    depends much less on what else the machine runs than the throughput does."""
    server = subprocess.Popen(
        netns.exec_args(server_ns, "iperf3", "-s", "-1", "-p", "5299"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(0.3)
        before = cpu_seconds(wire.proc.pid) if wire is not None else 0.0
        done = subprocess.run(
            netns.exec_args(client_ns, "iperf3", "-c", address, "-p", "5299", "-J",
                            "-t", str(seconds)),
            capture_output=True, text=True, timeout=seconds + 30, check=False,
        )  # fmt: skip
        used = cpu_seconds(wire.proc.pid) - before if wire is not None else 0.0
        data = json.loads(done.stdout)
        received = data["end"]["sum_received"]
        gigabytes = float(received["bytes"]) / 1e9
        return float(received["bits_per_second"]) / 1e9, used / gigabytes if gigabytes else 0.0
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(5)


class _UnpluggedDevice:
    """A stand-in for :class:`TapDevice` (no kernel): the offline pipeline rows."""

    name = "offline"
    namespace = None
    uso_supported = True
    offload = 0

    def set_offload(self, flags: int) -> None:
        self.offload = flags

    def close(self) -> None:
        pass


_PATTERN = bytes(range(256)) * 258


def _tcp_frame(payload: int, seq: int, *, ack_only: bool = False, complete: bool = False) -> bytes:
    """A TCP/IPv4 frame as the kernel hands it to a TAP: the IPv4 header checksum always
    filled; the TCP checksum filled only when ``complete`` (a frame sent without
    ``VIRTIO_NET_HDR_F_NEEDS_CSUM``), else left for the NIC's send path."""
    from ndis_offload.engine import insert_checksums

    eth = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00"
    options = b"\x01\x01\x08\x0a" + struct.pack("!II", seq & 0xFFFF, 7)
    flags = 0x10 if ack_only else 0x18
    tcp = struct.pack("!HHIIBBHHH", 40000, 5201, seq, 1, 0x80, flags, 512, 0, 0) + options
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + payload, 1, 0x4000, 64, 6, 0,
                     b"\x0a\x4d\x00\x01", b"\x0a\x4d\x00\x02")  # fmt: skip
    frame = eth + ip + tcp + _PATTERN[seq & 0xFF : (seq & 0xFF) + payload]
    return insert_checksums(frame, tcp=complete, udp=False)


def offline(total_mb: int = 64, *, off: bool = True) -> dict[str, float]:
    """CPU time of the two NICs' Python paths alone (fake devices: no kernel, no syscalls),
    in one process: segment mode with offloads on (64 KB LSO sends -> NIC A's LSO -> NIC
    B's checksum validation + RSC, one ACK back per send) and off (1448-byte segments with
    complete checksums, one ACK per two; skipped when not ``off``). Returns the one-core
    ceiling in Gbit/s of each."""
    from ndis_offload.io.tap.nic import TapNic
    from ndis_offload.io.tap.vnet_hdr import VirtioNetHdr
    from ndis_offload.stack.profiles import get_profile

    def nics(on: bool) -> tuple[TapNic, TapNic]:
        made = []
        for name in ("a", "b"):
            device = cast(Any, _UnpluggedDevice())
            nic = TapNic(name, get_profile("full" if on else "no-offload"), device=device)
            made.append(nic)
        return made[0], made[1]

    mss, per_send = 1448, 45
    sends = total_mb * 1_000_000 // (mss * per_send)
    out: dict[str, float] = {}
    gso = VirtioNetHdr(1, 1, 66, mss, 34, 16).encode()
    ack = VirtioNetHdr(1, 0, 0, 0, 34, 16).encode() + _tcp_frame(0, 1, ack_only=True)
    a, b = nics(True)
    frames = [gso + _tcp_frame(mss * per_send, 1 + i * mss * per_send) for i in range(sends)]
    start = time.process_time()
    for raw in frames:
        b.receive(a.transmit(raw), 0.0)
        a.receive(b.transmit(ack), 0.0)
    out["segment on"] = sends * mss * per_send * 8 / (time.process_time() - start) / 1e9
    if not off:
        return out
    a, b = nics(False)
    plain = bytes(10)
    segments = [
        plain + _tcp_frame(mss, 1 + i * mss, complete=True) for i in range(sends * per_send)
    ]
    ack_plain = plain + _tcp_frame(0, 1, ack_only=True, complete=True)
    start = time.process_time()
    for first in range(0, len(segments), 64):
        wire = [f for raw in segments[first : first + 64] for f in a.transmit(raw)]
        b.receive(wire, 0.0)
        for _ in range(0, len(wire), 2):
            a.receive(b.transmit(ack_plain), 0.0)
    out["segment off"] = len(segments) * mss * 8 / (time.process_time() - start) / 1e9
    return out


STAGES = ("LSO send (NIC A)", "receive + RSC (NIC B)", "ACK send (NIC B)", "ACK receive (NIC A)")


def send_stages(
    sends: int = 400, rounds: int = 5, dpc_sends: int = 1, acks: float = 1.0
) -> dict[str, tuple[float, float]]:
    """CPU microseconds per 64 KB send (45 segments of 1448 bytes) in each stage of the
    offline segment-on pipeline (see :func:`offline`): ``(whole stage, engine calls
    alone)``, the stage through the NICs (``TapNic.transmit`` / ``receive``: the NDIS send
    and receive paths, counters, statistics) and the same work as bare engine calls
    (``transmit_lso``, ``RscCoalescer.push_batch`` + ``flush``, ``transmit_checksum``,
    ``RscCoalescer.push``) on the same frames; the difference is what the NIC and NDIS
    layers add. Medians of ``rounds`` runs after a warm-up. Each send is read into one
    reused buffer first, as the wire's TAP read does. ``dpc_sends`` sends share one
    receive DPC (``wire.DPC_BYTES``); ``acks`` ACKs come back per send (the kernel sends
    0.7-0.9 per 64 KB unit), one ACK DPC per receive DPC."""
    from ndis_offload.engine import RscCoalescer, transmit_checksum, transmit_lso
    from ndis_offload.io.tap.nic import TapNic
    from ndis_offload.io.tap.vnet_hdr import VIRTIO_NET_HDR_LEN, VirtioNetHdr
    from ndis_offload.stack.datapath import _checksum_request, _lso_request
    from ndis_offload.stack.profiles import get_profile

    mss, per_send = 1448, 45
    gso = VirtioNetHdr(1, 1, 66, mss, 34, 16).encode()
    ack = VirtioNetHdr(1, 0, 0, 0, 34, 16).encode() + _tcp_frame(0, 1, ack_only=True)
    frames = [gso + _tcp_frame(mss * per_send, 1 + i * mss * per_send) for i in range(sends)]
    buffer = bytearray(max(map(len, frames)))
    view = memoryview(buffer)
    clock = time.thread_time_ns
    per_dpc = max(1, round(acks * dpc_sends))

    def run(engine: bool) -> list[float]:
        a, b = (
            TapNic(name, get_profile("full"), device=cast(Any, _UnpluggedDevice()))
            for name in ("a", "b")
        )
        lso = _lso_request(a._classify(frames[0])[2])[0]
        csum = _checksum_request(b._classify(ack)[1])[0]
        rx_b, rx_a = RscCoalescer(timeout=0.0005), RscCoalescer(timeout=0.0005)
        spent = [0] * len(STAGES)
        for first in range(0, len(frames), dpc_sends):
            wire: list[bytes] = []
            t0 = clock()
            for raw in frames[first : first + dpc_sends]:
                n = len(raw)
                buffer[:n] = raw  # the TAP read
                if engine:
                    wire += transmit_lso(view[VIRTIO_NET_HDR_LEN:n], lso)[0].frames
                else:
                    wire += a.transmit(view[:n])
            t1 = clock()
            if engine:
                rx_b.push_batch(wire, 0.0)
                rx_b.flush()
            else:
                b.receive(wire, 0.0)
            t2 = clock()
            back: list[bytes] = []
            for _ in range(per_dpc):
                buffer[: len(ack)] = ack
                if engine:
                    back.append(transmit_checksum(view[VIRTIO_NET_HDR_LEN : len(ack)], csum))
                else:
                    back += b.transmit(view[: len(ack)])
            t3 = clock()
            if engine:
                for frame in back:
                    rx_a.push(frame, 0.0)
            else:
                a.receive(back, 0.0)
            t4 = clock()
            for i, (start, stop) in enumerate(((t0, t1), (t1, t2), (t2, t3), (t3, t4))):
                spent[i] += stop - start
        return [value / 1e3 / sends for value in spent]

    runs: dict[bool, list[list[float]]] = {True: [], False: []}
    for _ in range(rounds + 1):  # the first round warms up
        for engine in (False, True):  # interleaved: both see the same machine
            runs[engine].append(run(engine))
    out = {
        name: (
            statistics.median(r[i] for r in runs[False][1:]),
            statistics.median(r[i] for r in runs[True][1:]),
        )
        for i, name in enumerate(STAGES)
    }
    out["total"] = (sum(v[0] for v in out.values()), sum(v[1] for v in out.values()))
    return out


def profile_offline(top: int) -> None:
    """Where the CPU time of the NICs' paths goes (segment mode, offloads on), per function
    and per layer (``engine``, ``packet``, ``stack``, ``io``, ...)."""
    import cProfile
    import pstats

    offline(8, off=False)  # warm up: imports, caches
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    offline(32, off=False)
    profiler.disable()
    stats = pstats.Stats(profiler)
    table = cast(dict[Any, tuple[int, int, float, float, Any]], stats.stats)  # type: ignore[attr-defined]
    total = sum(row[2] for row in table.values()) or 1.0
    layers: dict[str, float] = {}
    for (path, _line, _name), row in table.items():
        parts = path.split("/ndis_offload/")
        layer = parts[1].split("/")[0] if len(parts) > 1 else "python / numpy"
        layers[layer] = layers.get(layer, 0.0) + row[2]
    print("own CPU time per layer: " + ", ".join(
        f"{name} {100 * spent / total:.0f} %"
        for name, spent in sorted(layers.items(), key=lambda item: -item[1])
    ))  # fmt: skip
    stats.sort_stats("tottime").print_stats(top)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--processes", type=int, choices=(1, 2), default=DEFAULT_PROCESSES,
        help="NIC processes of the wires the ratios are taken from (the CLI default: "
        f"{DEFAULT_PROCESSES}); the other count is measured too, as the 'segment on, N "
        "processes' row",
    )  # fmt: skip
    parser.add_argument(
        "--stages", action="store_true",
        help="only print the CPU microseconds per 64 KB send of each stage of the offline "
        "segment-on pipeline (medians of 5 runs), then exit",
    )  # fmt: skip
    parser.add_argument(
        "--dpc-sends", type=int, metavar="N", default=1,
        help="--stages: N sends share one receive DPC (live: up to 8 LSO sends the kernel "
        "has queued in one process, wire.DPC_BYTES; the link merges up to about 4)",
    )  # fmt: skip
    parser.add_argument(
        "--acks", type=float, metavar="K", default=1.0,
        help="--stages: ACKs back per send (live: 0.7-0.9 per 64 KB unit)",
    )  # fmt: skip
    parser.add_argument(
        "--profile", type=int, metavar="N", default=0,
        help="only profile the offline segment-on pipeline (cProfile on a CPU-time clock) "
        "and print its N most expensive functions by own time, then exit",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.stages:
        stages = send_stages(dpc_sends=args.dpc_sends, acks=args.acks)
        print(
            f"CPU us per 64 KB send, offline, {args.dpc_sends} send(s) per receive DPC, "
            f"{args.acks:g} ACK(s) per send (load average {_loadavg()}):"
        )
        print(f"  {'stage':<24}{'NIC':>8}{'engine':>8}{'NIC - engine':>14}")
        for name, (whole, engine) in stages.items():
            print(f"  {name:<24}{whole:8.1f}{engine:8.1f}{whole - engine:14.1f}")
        return 0
    if args.profile:
        profile_offline(args.profile)
        return 0
    pipeline = offline()
    pipeline_ratio = pipeline["segment on"] / pipeline["segment off"]
    why = netns.preflight() or (None if shutil.which("iperf3") else "needs iperf3")
    if why:
        print(f"live rows skipped: {why}")
        print(f"offline NIC pipeline (one core, Gbit/s): {pipeline}; on/off {pipeline_ratio:.2f}x")
        return 0
    tag = str(os.getpid())
    other = 3 - args.processes
    alt = f"segment on, {other} process{'es' if other == 2 else ''}"
    names = ("veth", "passthrough on", "segment on", "segment off", alt)
    results: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    passthrough = segment = alternative = None
    try:
        passthrough = Wire("passthrough", tag + "p", args.processes)
        segment = Wire("segment", tag + "s", args.processes)
        alternative = Wire("segment", tag + "t", other)
        a, b = passthrough.namespaces["a"], passthrough.namespaces["b"]
        add_veth(a, b)
        for _ in range(args.rounds):
            for name, wire, on in (
                ("veth", None, True),
                ("passthrough on", passthrough, True),
                ("segment on", segment, True),
                ("segment off", segment, False),
                (alt, alternative, True),
            ):
                if wire is segment:
                    segment.set_offloads(on)
                client, server = (a, b) if wire in (None, passthrough) else (
                    wire.namespaces["a"], wire.namespaces["b"])  # fmt: skip
                address = VETH[1] if wire is None else "10.77.0.2"
                gbit, seconds_per_gb = iperf(client, server, address, args.seconds, wire)
                results[name].append(gbit)
                cpu[name].append(seconds_per_gb)
    finally:
        for wire in (passthrough, segment, alternative):
            if wire is not None:
                wire.close()
    median = {name: statistics.median(values) for name, values in results.items()}
    cost = {name: statistics.median(values) for name, values in cpu.items()}
    veth = median["veth"]
    ratios: list[tuple[str, float, float]] = [
        ("passthrough on / veth", median["passthrough on"] / veth, 0.6),
        ("segment on / veth", median["segment on"] / veth, 0.25),
        ("segment on / segment off", median["segment on"] / median["segment off"], 3.0),
    ]
    if args.json:
        out: dict[str, Any] = {
            "gbit_s": median,
            "wire_cpu_s_per_gb": cost,
            "rounds": results,
            "ratios": {name: {"ratio": r, "target": t} for name, r, t in ratios},
            "offline_pipeline_gbit_s": pipeline,
            "processes": args.processes,
            "loadavg": _loadavg(),
        }
        print(json.dumps(out, indent=1))
        return 0
    print(f"{'configuration':<26}{'Gbit/s (median)':>16}{'wire CPU s/GB':>15}   rounds (Gbit/s)")
    for name, values in results.items():
        rounds = " ".join(f"{v:.2f}" for v in values)
        wire_cost = f"{cost[name]:.2f}" if cost[name] else "-"
        print(f"{name:<26}{median[name]:>16.2f}{wire_cost:>15}   {rounds}")
    print()
    print(f"{'ratio':<28}{'measured':>10}{'target':>10}")
    for name, ratio, target in ratios:
        verdict = "ok" if ratio >= target else "BELOW TARGET"  # run_all.py --check reads it
        print(f"{name:<28}{ratio:>10.2f}{target:>10.2f}  {verdict}")
    print(f"NIC processes per wire: {args.processes}; load average {_loadavg()}")
    print(
        f"offline NIC pipeline alone (Python paths, one core, no kernel): segment on "
        f"{pipeline['segment on']:.2f} Gbit/s, off {pipeline['segment off']:.2f} Gbit/s, "
        f"{pipeline_ratio:.2f}x"
    )
    if cost["segment on"]:
        print(
            f"wire CPU per GB, segment off / on: {cost['segment off'] / cost['segment on']:.2f}x"
            " (how much cheaper the offloads make the software NIC, load-independent)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

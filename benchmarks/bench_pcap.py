"""Capture tools speed and memory: ``pcap verify`` / ``pcap fix`` vs a dpkt loop doing the same.

Generates a pcap of 1514-byte TCP frames (half with correct checksums, half left for offload:
IPv4 checksum 0, TCP checksum = pseudo-header sum) in a temp dir, then measures frames/s of
ours (whole file) and of a dpkt-based loop (parse Ethernet / IP / TCP, check both checksums,
classify, and for ``fix`` recompute and write; over the first ``--dpkt-mb`` MB to bound the
run time; default: the whole file), and the peak RSS of ``verify`` / ``fix`` in a fresh subprocess
(``resource.getrusage``). Both sides must agree on the counts.
Run: python benchmarks/bench_pcap.py [--size-mb 1024] [--dpkt-mb N]

``--varied`` instead measures the issue-8 targets on a varied capture (IPv4 / IPv6, TCP /
UDP, 802.1Q, IPv4 options, IPv6 extension headers, frames of 60 to 1514 bytes, three
checksums in four spoiled: zero, garbage, or the IPv4 header checksum zeroed): the whole
``ndis-offload pcap verify`` process (start-up included) against ``tshark`` with IP / TCP /
UDP checksum validation, and ``pcap fix --all`` against ``tcprewrite --fixcsum``, in
interleaved rounds after a warm-up (medians of wall and CPU time, children included), with
each process's peak RSS, the load average and the CPU pressure (Linux PSI, which decides
whether ``fix`` uses every core). Targets (on wall time): verify >= 10x tshark,
fix >= 1.0x tcprewrite, peak RSS < 200 MB. Rows are skipped with a reason when a tool is
missing.
Run: python benchmarks/bench_pcap.py --varied [--size-mb 256] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dpkt

from ndis_offload.engine.transmit import segment_tcp
from ndis_offload.io import local_fix
from ndis_offload.io.pcap_jobs import Options, fix, verify
from ndis_offload.packet.checksum import pseudo_header_sum_ipv4

MSS = 1460


def make_block() -> bytes:
    """1024 pcap records of 1514-byte frames: even ones correct, odd ones left for offload."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    src, dst = "10.0.0.1", "10.0.0.2"
    frames: list[bytes] = []
    for flow in range(32):
        giant = bytes(
            Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
            / IP(src=src, dst=dst, id=flow)
            / TCP(sport=40000 + flow, dport=443, flags="A", seq=flow << 24)
            / (bytes(range(256)) * 730)[: 32 * MSS]
        )
        frames += segment_tcp(giant, MSS).frames
    out = bytearray()
    pseudo = pseudo_header_sum_ipv4(bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), 6, 20 + MSS)
    for i, frame in enumerate(frames):
        buf = bytearray(frame)
        if i % 2:
            buf[24:26] = b"\0\0"
            struct.pack_into("!H", buf, 50, pseudo)
        out += struct.pack("<IIII", 1_700_000_000 + i, i, len(buf), len(buf)) + buf
    return bytes(out)


def generate(path: Path, size_mb: int) -> int:
    block = make_block()
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
    repeats = max(1, size_mb * (1 << 20) // len(block))
    with path.open("wb") as out:
        out.write(header)
        for _ in range(repeats):
            out.write(block)
    return repeats * 1024


def dpkt_check(buf: bytes) -> tuple[int, int, bytes | None]:
    """(ip_state, tcp_state, fixed frame or None): 1 ok, 2 wrong, 3 left for offload."""
    eth = dpkt.ethernet.Ethernet(buf)
    ip = eth.data
    header = bytes(ip)[: ip.hl * 4]
    ip_ok = dpkt.in_cksum(header) == 0
    ip_state = 1 if ip_ok else (3 if ip.sum == 0 else 2)
    tcp = ip.data
    seg = bytes(tcp)
    pseudo = struct.pack(">4s4sxBH", ip.src, ip.dst, ip.p, len(seg))
    total = dpkt.in_cksum_add(dpkt.in_cksum_add(0, pseudo), seg)
    tcp_ok = dpkt.in_cksum_done(total) == 0
    phdr = dpkt.in_cksum_done(dpkt.in_cksum_add(0, pseudo))
    partial = (~phdr) & 0xFFFF
    tcp_state = 1 if tcp_ok else (3 if tcp.sum in (0, partial) else 2)
    fixed = None
    if ip_state == 3 or tcp_state == 3:
        ip.sum = 0
        tcp.sum = 0
        fixed = bytes(eth)  # dpkt recomputes both checksums when packing
    return ip_state, tcp_state, fixed


def dpkt_run(path: Path, limit: int, out_path: Path | None) -> tuple[int, int, float]:
    """(frames, frames left for offload, seconds) over the first ``limit`` bytes."""
    start = time.perf_counter()
    frames = offload = 0
    with path.open("rb") as handle:
        reader = dpkt.pcap.Reader(handle)
        writer = dpkt.pcap.Writer(out_path.open("wb")) if out_path else None
        for ts, buf in reader:
            ip_state, tcp_state, fixed = dpkt_check(buf)
            offload += ip_state == 3 or tcp_state == 3
            if writer is not None:
                writer.writepkt(fixed or buf, ts)
            frames += 1
            if frames * 1530 >= limit:
                break
        if writer is not None:
            writer.close()
    return frames, offload, time.perf_counter() - start


RSS_PROBE = """
import resource, sys
from ndis_offload.io.pcap_jobs import fix, verify
if sys.argv[1] == "verify":
    verify(sys.argv[2])
else:
    fix(sys.argv[2], sys.argv[3])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_mb(*args: str) -> float:
    result = subprocess.run(
        [sys.executable, "-c", RSS_PROBE, *args], capture_output=True, text=True, check=True
    )
    return int(result.stdout.split()[-1]) / 1024


def varied_block(count: int = 4096) -> bytes:
    """``count`` pcap records of the varied mix (see the module docstring)."""
    from scapy.layers.inet import IP, TCP, UDP, IPOption_NOP
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop
    from scapy.layers.l2 import Dot1Q, Ether

    from ndis_offload.packet.locate import Layer, locate

    out = bytearray()
    for i in range(count):
        body = bytes((k * 7) & 0xFF for k in range(6 + (i * 397) % 1400))
        l4 = TCP(sport=40000, dport=80, flags="PA") if (i // 4) % 2 == 0 else UDP(dport=53)
        ips = (
            IP(src="10.0.0.1", dst="10.0.0.2"),
            IP(src="10.0.0.1", dst="10.0.0.2", options=[IPOption_NOP()] * 4),
            IPv6(src="fd00::1", dst="fd00::2"),
            IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt(),
        )
        eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")  # no ARP lookups
        link = eth / Dot1Q(vlan=5) if (i // 8) % 2 else eth
        frame = bytearray(bytes(link / ips[i % 4] / l4 / body)[:1514])
        frame += bytes(max(0, 60 - len(frame)))
        hops = {h.kind: h for h in locate(bytes(frame)).hops}
        l4hop = hops.get(Layer.TCP) or hops.get(Layer.UDP)
        if l4hop is not None and l4hop.end <= len(frame) and i % 4 < 2:
            at = l4hop.offset + (16 if l4hop.kind == Layer.TCP else 6)
            frame[at : at + 2] = b"\0\0" if i % 4 == 0 else bytes([(i * 31) & 0xFF, 0x5A])
        if i % 4 == 2 and Layer.IPV4 in hops:
            at = hops[Layer.IPV4].offset + 10
            frame[at : at + 2] = b"\0\0"
        out += struct.pack("<IIII", 1_700_000_000 + i, i, len(frame), len(frame)) + frame
    return bytes(out)


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS MB) of one whole process (its children's CPU
    included: ``fix`` may fork one per core)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return time.perf_counter() - start, cpu, usage.ru_maxrss / 1024


def cpu_pressure() -> str:
    """Linux PSI: the share of the last 10 s some task waited for a CPU. Below
    ``local_fix.QUIET`` ``pcap fix`` uses every core, else only those the load average
    leaves idle (one on a busy 2-core machine): read the fix row with it."""
    value = local_fix.cpu_contention()
    return "CPU pressure n/a" if value is None else f"CPU pressure (some avg10) {value:.1f}%"


def varied(size_mb: int, rounds: int) -> None:
    ours = [sys.executable, "-c", "from ndis_offload.cli.main import entry; entry()", "pcap"]
    tshark, tcprewrite = shutil.which("tshark"), shutil.which("tcprewrite")
    # As installed: modules compiled once (an environment that forbids writing bytecode
    # would time the compiler on every start).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as tmp:
        capture = Path(tmp) / "varied.pcap"
        block = varied_block()
        header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
        repeats = max(1, size_mb * (1 << 20) // len(block))
        with capture.open("wb") as out:
            out.write(header)
            for _ in range(repeats):
                out.write(block)
        print(
            f"varied capture: {repeats * 4096:,} frames, {capture.stat().st_size / 2**20:,.0f} MiB"
        )
        pairs = {
            "verify vs tshark": (
                [*ours, "verify", "-q", str(capture)],
                [tshark, "-n", "-r", str(capture), "-o", "ip.check_checksum:TRUE",
                 "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"]
                if tshark else None, 10.0,
            ),
            "fix --all vs tcprewrite": (
                [*ours, "fix", "--all", "-q", str(capture), str(Path(tmp) / "ours.pcap")],
                [tcprewrite, "--fixcsum", "-i", str(capture), "-o", str(Path(tmp) / "tr.pcap")]
                if tcprewrite else None, 1.0,
            ),
        }  # fmt: skip
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
              f"{cpu_pressure()}")  # fmt: skip
        print(f"\n{'whole processes (medians)':<26} {'ours s':>14} {'theirs s':>14} "
              f"{'ratio wall/CPU':>15} {'target':>7} {'peak RSS':>9}")  # fmt: skip
        print(f"{'':<26} {'wall / CPU':>14} {'wall / CPU':>14}")
        for name, (mine, theirs, target) in pairs.items():
            if theirs is None:
                print(f"{name:<26} skipped: the tool is not installed")
                continue
            timed(mine, env), timed(theirs, env)  # warm-up: page cache, bytecode
            a: list[tuple[float, float, float]] = []
            b: list[tuple[float, float, float]] = []
            for _ in range(rounds):  # interleaved: A B A B ...
                a.append(timed(mine, env))
                b.append(timed(theirs, env))
            wall_a, cpu_a = (statistics.median(x[k] for x in a) for k in (0, 1))
            wall_b, cpu_b = (statistics.median(x[k] for x in b) for k in (0, 1))
            ratio, cpu_ratio = wall_b / wall_a, cpu_b / cpu_a
            rss = max(x[2] for x in a)
            ok = "ok" if ratio >= target and rss < 200 else "BELOW TARGET"
            ratios = f"{ratio:>6.2f}x / {cpu_ratio:<5.2f}x"
            print(f"{name:<26} {wall_a:>6.2f} / {cpu_a:<5.2f} {wall_b:>6.2f} / {cpu_b:<5.2f} "
                  f"{ratios} {target:>5.1f}x {rss:>6.0f} MB  {ok}")  # fmt: skip
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
              f"{cpu_pressure()}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=0, help="capture size (MB)")
    parser.add_argument(
        "--dpkt-mb", type=int, default=0, help="MB the dpkt loop reads (default: all)"
    )
    parser.add_argument("--varied", action="store_true", help="the issue-8 targets")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (--varied)")
    args = parser.parse_args()
    if args.varied:
        varied(args.size_mb or 256, args.rounds)
        return
    args.size_mb = args.size_mb or 1024
    with tempfile.TemporaryDirectory() as tmp:
        capture = Path(tmp) / "big.pcap"
        t0 = time.perf_counter()
        frames = generate(capture, args.size_mb)
        size = capture.stat().st_size
        print(f"capture: {frames:,} frames, {size / 2**20:,.0f} MiB "
              f"(generated in {time.perf_counter() - t0:.1f} s)")  # fmt: skip
        t0 = time.perf_counter()
        result = verify(capture, Options())
        t_verify = time.perf_counter() - t0
        assert result.analyzer.frames == frames
        ours_offload = result.analyzer.totals[1]
        assert ours_offload == frames // 2, result.analyzer.totals
        t0 = time.perf_counter()
        fixed = fix(capture, Path(tmp) / "fixed.pcap", Options())
        t_fix = time.perf_counter() - t0
        assert fixed.changed == frames  # one IP + one TCP field per odd frame
        check = verify(Path(tmp) / "fixed.pcap")
        assert check.analyzer.totals[0] == frames
        limit = (args.dpkt_mb or args.size_mb * 2) << 20
        d_frames, d_offload, d_verify = dpkt_run(capture, limit, None)
        assert d_offload == d_frames // 2
        d_frames_fix, _, d_fix = dpkt_run(capture, limit, Path(tmp) / "d.pcap")
        (Path(tmp) / "fixed.pcap").unlink()
        (Path(tmp) / "d.pcap").unlink()
        rss_verify = peak_rss_mb("verify", str(capture))
        rss_fix = peak_rss_mb("fix", str(capture), str(Path(tmp) / "fixed.pcap"))
    print(f"\n{'1514-byte TCP frames':<22} {'ours fr/s':>12} {'dpkt fr/s':>12} {'ratio':>8}"
          f"  target  {'peak RSS':>9}")  # fmt: skip
    for name, ours, theirs, rss in (
        ("verify", frames / t_verify, d_frames / d_verify, rss_verify),
        ("fix", frames / t_fix, d_frames_fix / d_fix, rss_fix),
    ):
        ratio = ours / theirs
        verdict = "ok" if ratio >= 10 and rss < 200 else "BELOW TARGET"
        print(f"{name:<22} {ours:>12,.0f} {theirs:>12,.0f} {ratio:>7.1f}x  >= 10x  "
              f"{rss:>6.0f} MB  {verdict}")  # fmt: skip
    print(f"(ours over {size / 2**20:,.0f} MiB: verify {t_verify:.1f} s, fix {t_fix:.1f} s; "
          f"dpkt over {d_frames:,} frames)")  # fmt: skip


if __name__ == "__main__":
    main()

"""``pcap segment`` speed: 3 000 captured 64 000-byte LSO sends cut at MSS 1448, vs a
straightforward dpkt loop (read with ``dpkt.pcap.Reader``, cut each send with dpkt packet
objects as in bench_lso.py, write with ``dpkt.pcap.Writer``).

Both run as fresh processes (start-up included) on the same generated capture, in
interleaved rounds; each time is the child's CPU time (user + system, ``getrusage``), the
figure the median of the per-round ratios. Both outputs must hold the same frames.
Run: python benchmarks/bench_segment.py [--sends 3000] [--rounds 5] [--check]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import dpkt
from timing import HEADER, Comparison, Report

from ndis_offload.packet.checksum import pseudo_header_sum_ipv4

MSS = 1448
PAYLOAD = 64_000
OURS = "from ndis_offload.cli.main import entry; entry()"


def make_capture(path: Path, sends: int) -> None:
    """``sends`` consecutive 64 000-byte sends of one flow, as tcpdump sees them on Linux:
    lengths and the IPv4 checksum set, the TCP checksum the pseudo-header sum (offload)."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    payload = (bytes(range(256)) * (PAYLOAD // 256 + 1))[:PAYLOAD]
    base = bytes(
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / IP(src="192.0.2.1", dst="198.51.100.7", id=0, flags="DF")
        / TCP(sport=49152, dport=443, seq=0, ack=1, flags="A", options=[("NOP", None)] * 4)
        / payload
    )
    pseudo = pseudo_header_sum_ipv4(bytes([192, 0, 2, 1]), bytes([198, 51, 100, 7]), 6, None)
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        frame = bytearray(base)
        for index in range(sends):
            struct.pack_into("!H", frame, 18, (index * 45) & 0xFFFF)  # IPv4 ID
            frame[24:26] = b"\0\0"
            struct.pack_into("!H", frame, 24, ~_sum(frame[14:34]) & 0xFFFF)
            struct.pack_into("!I", frame, 38, (index * PAYLOAD) & 0xFFFFFFFF)  # sequence
            struct.pack_into("!H", frame, 50, (pseudo + len(frame) - 34) % 0xFFFF)
            header = struct.pack(
                "<IIII", 1_700_000_000 + index // 1000, index, len(frame), len(frame)
            )
            out.write(header + frame)


def _sum(data: bytes | bytearray) -> int:
    words: tuple[int, ...] = struct.unpack(f"!{len(data) // 2}H", data)
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def dpkt_loop(src: str, dst: str) -> None:
    """The straightforward dpkt version of ``pcap segment --mss 1448``."""
    from bench_lso import dpkt_lso

    with open(src, "rb") as fin, open(dst, "wb") as fout:
        writer = dpkt.pcap.Writer(fout, snaplen=262144)
        for ts, buf in dpkt.pcap.Reader(fin):
            if len(buf) > 1514:
                for frame in dpkt_lso(buf, MSS):
                    writer.writepkt(frame, ts)
            else:
                writer.writepkt(buf, ts)


def child_cpu(args: list[str]) -> float:
    """CPU seconds (user + system) of one child process running ``args``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def frames_of(path: Path) -> list[bytes]:
    with path.open("rb") as fin:
        return [bytes(buf) for _, buf in dpkt.pcap.Reader(fin)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--dpkt-loop", nargs=2, metavar=("SRC", "DST"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.dpkt_loop:
        dpkt_loop(*args.dpkt_loop)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        src, ours_out, dpkt_out = (
            Path(tmp) / "sends.pcap",
            Path(tmp) / "o.pcap",
            Path(tmp) / "d.pcap",
        )
        make_capture(src, args.sends)
        ours = [sys.executable, "-c", OURS, "pcap", "segment", "-q", "--mss", str(MSS)]
        ours += [str(src), str(ours_out)]
        theirs = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--dpkt-loop",
            str(src),
            str(dpkt_out),
        ]
        row = Comparison(f"pcap segment {args.sends} x 64 000 B sends vs dpkt loop", [], [], 8)
        print(f"{args.sends} sends, {src.stat().st_size / 1e6:.0f} MB capture")
        print(HEADER)
        for index in range(args.rounds):
            if index % 2:  # alternate which side runs first
                b, a = child_cpu(theirs), child_cpu(ours)
            else:
                a, b = child_cpu(ours), child_cpu(theirs)
            pair = (a, b)
            row.ours.append(pair[0])
            row.theirs.append(pair[1])
            row.ratios.append(pair[1] / pair[0])
            if index == 0:
                assert frames_of(ours_out) == frames_of(dpkt_out), "outputs differ"
        report = Report()
        report.add(row)
        empty = Path(tmp) / "empty.pcap"
        empty.write_bytes(src.read_bytes()[:24])  # the file header only: nothing to do
        startup(
            [*ours[:-2], str(empty), str(Path(tmp) / "e1.pcap")],
            [*theirs[:-2], str(empty), str(Path(tmp) / "e2.pcap")],
            row,
        )
    return report.finish()


def startup(ours: list[str], theirs: list[str], row: Comparison) -> None:
    """For the reader: how much of each side is interpreter and import start-up (the same
    commands on a capture with no records: the imports the real run makes, lazy ones
    included), and the ratio without it (not a target)."""
    a = statistics.median(child_cpu(ours) for _ in range(5))
    b = statistics.median(child_cpu(theirs) for _ in range(5))
    work = (statistics.median(row.theirs) - b) / max(statistics.median(row.ours) - a, 1e-9)
    print(f"start-up (same commands, empty capture, CPU s): ours {a:.2f}, dpkt loop {b:.2f}; "
          f"ratio without start-up {work:.3g}x (information, not a target)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())

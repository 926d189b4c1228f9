"""Regenerate the README's pictures from the real commands:

    python3 tests/viz/docs_pictures.py [DIR]      (default: docs/)

- ``demo-sequence.svg``: ``ndis-offload demo --svg``
- ``conformance-matrix.svg``: ``ndis-offload conformance --all --check encapsulation- --svg``
  (the ``OID_OFFLOAD_ENCAPSULATION`` checks: the whole battery is a long picture)
- ``capture-stats.svg``: ``ndis-offload pcap stats --svg`` of :func:`sample_capture`, a
  two-second transmit + receive capture with the artifacts offload leaves (checksums left
  for offload, unsegmented LSO sends, coalesced receives) built here with scapy.
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet
from scapy.utils import wrpcap

from ndis_offload.cli.main import main
from ndis_offload.packet.checksum import pseudo_header_sum_ipv4

ROOT = Path(__file__).resolve().parents[2]
START = 1_700_000_000.0
MAC: dict[str, Any] = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
PEER: dict[str, Any] = {"src": "02:00:00:00:00:02", "dst": "02:00:00:00:00:01"}
HOST, SERVER, DNS = "192.0.2.1", "198.51.100.2", "198.51.100.53"


def _ip(text: str) -> bytes:
    return bytes(int(x) for x in text.split("."))


def _send(t: float, seq: int, size: int, sport: int, offload: bool) -> Packet:
    """A transmit as the capture shows it: with offload, IP checksum 0 and the TCP
    pseudo-header sum (LSO: IP length the NIC will fill per segment)."""
    lso = size > 1448
    l4 = pseudo_header_sum_ipv4(_ip(HOST), _ip(SERVER), 6, None if lso else 20 + size)
    pkt = Ether(**MAC) / IP(src=HOST, dst=SERVER, chksum=0 if offload else None) / TCP(
        sport=sport, dport=443, seq=seq, flags="PA", chksum=l4 if offload else None
    ) / (bytes(range(256)) * (size // 256 + 1))[:size]  # fmt: skip
    pkt.time = t
    return pkt


def sample_capture(path: Path) -> Path:
    """Two seconds of a host: a bulk upload with LSO (64 KB sends every 100 ms, wire-sized
    frames between), a download the NIC coalesced (RSC), an offload-free flow and DNS."""
    frames: list[Packet] = []
    seq, down = 1, 1
    syn = Ether(**PEER) / IP(src=SERVER, dst=HOST) / TCP(
        sport=443, dport=40000, flags="SA", options=[("MSS", 1448)])  # fmt: skip
    syn.time = START
    frames.append(syn)
    for step in range(200):
        t = START + step * 0.01
        size = 65000 if step % 10 == 0 else 1448
        frames.append(_send(t, seq, size, 40000, offload=True))
        seq += size
        if step % 4 == 0:  # the download: coalesced segments, up to 4 x MSS
            size = 1448 * (1 + step % 3) + (0 if step < 100 else 2896)
            rx = Ether(**PEER) / IP(src=SERVER, dst=HOST) / TCP(
                sport=443, dport=40002, seq=down, flags="A") / (b"d" * size)  # fmt: skip
            rx.time = t + 0.002
            frames.append(rx)
            down += size
        if step % 5 == 0:
            plain = Ether(**MAC) / IP(src=HOST, dst=SERVER) / TCP(
                sport=40004, dport=80, seq=step * 512, flags="A") / (b"p" * 512)  # fmt: skip
            plain.time = t + 0.004
            frames.append(plain)
        if step % 50 == 0:
            dns = Ether(**MAC) / IP(src=HOST, dst=DNS) / UDP(sport=5353, dport=53) / (b"q" * 40)
            dns.time = t + 0.006
            frames.append(dns)
    wrpcap(str(path), frames)
    return path


def _cli(*argv: str) -> int:
    return main(list(argv), console=Console(file=io.StringIO(), width=120))


def generate(out: Path) -> list[Path]:
    """Write the three pictures into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    demo, matrix, stats = (out / "demo-sequence.svg", out / "conformance-matrix.svg",
                           out / "capture-stats.svg")  # fmt: skip
    assert _cli("demo", "--svg", str(demo)) == 0
    assert _cli("conformance", "--all", "--check", "encapsulation-", "--svg", str(matrix)) == 1
    with tempfile.TemporaryDirectory() as tmp:
        capture = sample_capture(Path(tmp) / "sample.pcap")
        assert _cli("pcap", "stats", str(capture), "--svg", str(stats)) == 0
    return [demo, matrix, stats]


if __name__ == "__main__":
    for written in generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs"):
        print(written)

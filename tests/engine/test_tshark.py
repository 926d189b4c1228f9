"""Wireshark's own checksum validation accepts every frame the transmit engine emits."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP, IPOption_NOP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt
from scapy.layers.l2 import Dot1Q, Ether
from scapy.utils import wrpcap

from ndis_offload.engine import insert_checksums, segment_tcp, segment_udp

TSHARK = shutil.which("tshark")


def engine_frames() -> list[bytes]:
    v4 = Ether() / IP(src="10.1.0.1", dst="10.1.0.2", options=[IPOption_NOP()] * 4)
    v6 = Ether() / IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrDestOpt()
    vlan = Ether() / Dot1Q(vlan=7) / IP(src="10.2.0.1", dst="10.2.0.2")
    ts = [("Timestamp", (1, 2))]
    frames: list[bytes] = []
    for base in (v4, v6, vlan):
        giant = bytes(base / TCP(sport=40000, dport=80, flags="PA", options=ts) / (b"z" * 9001))
        frames += segment_tcp(giant, 1448).frames
        big_udp = bytes(base / UDP(sport=5353, dport=53) / (b"u" * 5000))
        frames += segment_udp(big_udp, 1200).frames
        odd = bytes(base / UDP(sport=1, dport=2, chksum=0x1234) / b"odd")
        frames.append(insert_checksums(odd))
        frames.append(insert_checksums(bytes(base / TCP(chksum=0) / b"")))
    return frames


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (apt-get install tshark)")
def test_tshark_validates_every_engine_checksum(tmp_path: Path) -> None:
    capture = tmp_path / "engine.pcap"
    frames = engine_frames()
    wrpcap(str(capture), [Ether(f) for f in frames])
    assert TSHARK is not None
    result = subprocess.run(
        [
            TSHARK,
            "-n",
            "-r",
            str(capture),
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "ip.checksum.status",
            "-e",
            "tcp.checksum.status",
            "-e",
            "udp.checksum.status",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert len(rows) == len(frames)
    # checksum.status: 0 = bad, 1 = good, 2 = unverified (tshark's expert field values)
    bad = [row for row in rows if any(field == "0" for field in row[1:])]
    assert bad == [], f"tshark reports bad checksums: {bad}"
    good = sum(field == "1" for row in rows for field in row[1:])
    assert good >= len(frames), "tshark did not verify the checksums"

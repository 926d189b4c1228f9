"""``ndis-offload rss``: the 5-tuple mode against the verification table of the NDIS page
"Verifying the RSS hash calculation", the capture mode against scapy-parsed tuples hashed with
the page's pseudocode ("RSS hashing functions")."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.utils import rdpcap, wrpcap

from ndis_offload.cli.main import main
from ndis_offload.engine.rss import VERIFICATION_KEY
from rss_vectors import IPV4_TABLE, IPV6_TABLE, reference_hash


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), console=Console(file=out, width=200))
    return code, out.getvalue()


@pytest.mark.parametrize("dst, dport, src, sport, ip_only, with_tcp", IPV4_TABLE + IPV6_TABLE)
def test_tuple_mode_matches_the_verification_table(
    dst: str, dport: int, src: str, sport: int, ip_only: int, with_tcp: int
) -> None:
    def ep(addr: str, port: int | None) -> str:
        text = f"[{addr}]" if ":" in addr else addr
        return text if port is None else f"{text}:{port}"

    code, text = cli("rss", "--src", ep(src, sport), "--dst", ep(dst, dport), "--json")
    assert code == 0
    assert json.loads(text)["hash"] == f"0x{with_tcp:08x}"
    code, text = cli("rss", "--src", ep(src, None), "--dst", ep(dst, None), "--json")
    assert json.loads(text)["hash"] == f"0x{ip_only:08x}"


def test_capture_mode_against_scapy(tmp_path: Path) -> None:
    mac: dict[str, Any] = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
    frames = [
        Ether(**mac) / IP(src="66.9.149.187", dst="161.142.100.80") / TCP(sport=2794, dport=1766),
        Ether(**mac) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=53, dport=5353) / b"x",
        Ether(**mac) / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(),
        Ether(**mac) / IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=1, dport=2),
        Ether(**mac) / ARP(),
        Ether(**mac) / IP(src="10.0.0.3", dst="10.0.0.4", flags="MF") / TCP(sport=7, dport=8),
    ]
    path = tmp_path / "rss.pcap"
    wrpcap(str(path), frames)
    code, text = cli("rss", str(path), "--json", "--queues", "3", "--table-size", "64")
    assert code == 0
    rows = [json.loads(line) for line in text.splitlines()]
    assert [r["frame"] for r in rows] == list(range(1, len(frames) + 1))
    for row, pkt in zip(rows, rdpcap(str(path)), strict=True):
        if ARP in pkt:
            assert row["hash_type"] is None and row["queue"] is None
            continue
        ip = pkt[IP] if IP in pkt else pkt[IPv6]
        import ipaddress

        data = ipaddress.ip_address(ip.src).packed + ipaddress.ip_address(ip.dst).packed
        fragment = IP in pkt and (pkt[IP].flags.MF or pkt[IP].frag)
        l4 = pkt[TCP] if TCP in pkt else pkt[UDP] if UDP in pkt else None
        if l4 is not None and not fragment:
            data += l4.sport.to_bytes(2, "big") + l4.dport.to_bytes(2, "big")
        expected = reference_hash(VERIFICATION_KEY, data)
        assert row["hash"] == f"0x{expected:08x}", row
        assert row["queue"] == (expected & 63) % 3


def test_bad_input_exits_2(tmp_path: Path) -> None:
    assert cli("rss", "--src", "1.2.3.4:1", "--dst", "::1:2")[0] == 2
    assert cli("rss", "--src", "nope", "--dst", "1.2.3.4")[0] == 2
    assert cli("rss", "--src", "1.2.3.4:1", "--dst", "1.2.3.5:2", "--types", "BOGUS")[0] == 2
    assert cli("rss", "--src", "1.2.3.4:1", "--dst", "1.2.3.5:2", "--key", "zz")[0] == 2
    assert cli("rss", "--src", "1.2.3.4:1", "--dst", "1.2.3.5:2", "--table-size", "3")[0] == 2
    assert cli("rss", str(tmp_path / "missing.pcap"))[0] == 2
    assert cli("rss")[0] == 2

"""``ndis-offload pcap``: end to end on scapy-built captures, checked by scapy / dpkt / tshark."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import dpkt
import pytest
from rich.console import Console
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Packet
from scapy.utils import rdpcap, wrpcap

from ndis_offload.cli.main import main
from ndis_offload.io import coalesce, pcap_jobs
from ndis_offload.packet.checksum import pseudo_header_sum_ipv4, pseudo_header_sum_ipv6

MAC: dict[str, Any] = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
A4, B4 = "192.0.2.1", "198.51.100.2"
A6, B6 = "2001:db8::1", "2001:db8::2"
TSHARK = shutil.which("tshark")


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), console=Console(file=out, width=120))
    return code, out.getvalue()


def _ip4(text: str) -> bytes:
    return bytes(int(x) for x in text.split("."))


def _ip6(text: str) -> bytes:
    import ipaddress

    return ipaddress.IPv6Address(text).packed


def offload_capture() -> list[Packet]:
    """Transmit-side captures with offload artifacts on three flows, plus odds and ends."""
    out: list[Packet] = []
    stream = bytes(range(256)) * 200
    seq = 1000
    syn = Ether(**MAC) / IP(src=B4, dst=A4) / TCP(sport=443, dport=40000, flags="SA",
                                                  options=[("MSS", 1448)])  # fmt: skip
    out.append(syn)
    for size in (1448, 1448, 20000, 700, 9000, 1000):  # giant LSO sends between normal ones
        data = stream[seq - 1000 : seq - 1000 + size]
        l4 = pseudo_header_sum_ipv4(_ip4(A4), _ip4(B4), 6, None if size > 1448 else 20 + size)
        out.append(Ether(**MAC) / IP(src=A4, dst=B4, chksum=0) / TCP(
            sport=40000, dport=443, seq=seq, flags="PA", chksum=l4) / data)  # fmt: skip
        seq += size
    for i in range(3):
        vlan = Ether(**MAC) / Dot1Q(vlan=7) / IP(src=A4, dst=B4)
        out.append(vlan / TCP(sport=5000, dport=80, seq=i * 100, flags="A") / (b"v" * 100))
    ext = IPv6(src=A6, dst=B6) / IPv6ExtHdrDestOpt()
    data6 = b"6" * 5000
    l4 = pseudo_header_sum_ipv6(_ip6(A6), _ip6(B6), 6, 20 + len(data6))
    out.append(Ether(**MAC) / ext / TCP(sport=7, dport=8, flags="PA", chksum=l4) / data6)
    out.append(Ether(**MAC) / IPv6(src=A6, dst=B6) / UDP(sport=9, dport=10, chksum=0) / b"u")
    out.append(Ether(**MAC) / ARP())
    return out


def write(path: Path, packets: list[Packet]) -> Path:
    wrpcap(str(path), packets)
    return path


def scapy_bad_checksums(path: Path) -> list[int]:
    """Frames whose IP / TCP / UDP checksum scapy recomputes differently (1-based)."""
    bad = []
    for number, pkt in enumerate(rdpcap(str(path)), 1):
        raw = bytes(pkt)
        for layer in (IP, TCP, UDP):
            if layer not in pkt:
                continue
            if layer is UDP and IP in pkt and pkt[UDP].chksum == 0:
                continue
            fresh = Ether(raw)
            del fresh[layer].chksum
            if Ether(bytes(fresh))[layer].chksum != pkt[layer].chksum:
                bad.append(number)
    return bad


def tcp_streams(path: Path) -> dict[tuple[bytes, bytes, int, int], bytes]:
    """Each TCP flow's byte stream, by sequence number (dpkt as the independent parser)."""
    pieces: dict[tuple[bytes, bytes, int, int], dict[int, bytes]] = defaultdict(dict)
    with path.open("rb") as handle:
        for _, buf in dpkt.pcap.Reader(handle):
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            if not isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6) or not isinstance(
                ip.data, dpkt.tcp.TCP
            ):
                continue
            tcp = ip.data
            if tcp.data:
                pieces[(bytes(ip.src), bytes(ip.dst), tcp.sport, tcp.dport)][tcp.seq] = tcp.data
    streams = {}
    for key, parts in pieces.items():
        data = b""
        for seq in sorted(parts):
            data += parts[seq]
        streams[key] = data
    return streams


def test_verify_diagnoses_artifacts(tmp_path: Path) -> None:
    capture = write(tmp_path / "tx.pcap", offload_capture())
    code, text = cli("pcap", "verify", "--json", str(capture))
    report = json.loads(text)
    assert code == 0, report
    diag = report["diagnosis"]
    assert diag["unsegmented LSO send"] == 3
    assert diag["left for offload"] == 5  # 3 normal sends, IPv6 UDP 0, IPv6 ext-header send
    assert diag["correct"] == 4 and diag["not checked"] == 1
    flows = {f["flow"] for f in report["flows"]}
    assert "TCP 192.0.2.1:40000 > 198.51.100.2:443" in flows
    code, text = cli("pcap", "verify", str(capture))
    assert code == 0 and "unsegmented LSO send" in text


def test_verify_exit_code_on_real_errors(tmp_path: Path) -> None:
    bad = Ether(**MAC) / IP(src=A4, dst=B4) / TCP(flags="A", chksum=0x1234) / (b"x" * 40)
    capture = write(tmp_path / "bad.pcap", [bad])
    code, text = cli("pcap", "verify", str(capture))
    assert code == 1 and "wrong checksum" in text


def test_fix_completes_offload_checksums(tmp_path: Path) -> None:
    packets = offload_capture()
    capture = write(tmp_path / "tx.pcap", packets)
    assert scapy_bad_checksums(capture)
    fixed = tmp_path / "fixed.pcap"
    code, text = cli("pcap", "fix", str(capture), str(fixed))
    assert code == 0, text
    assert scapy_bad_checksums(fixed) == []
    assert len(rdpcap(str(fixed))) == len(packets)
    assert cli("pcap", "verify", str(fixed))[0] == 0


def test_segment_then_coalesce_preserves_every_tcp_stream(tmp_path: Path) -> None:
    capture = write(tmp_path / "tx.pcap", offload_capture())
    segmented = tmp_path / "seg.pcap"
    assert cli("pcap", "segment", str(capture), str(segmented))[0] == 0
    sizes = [len(bytes(p)) for p in rdpcap(str(segmented))]
    assert max(sizes) <= 1514 + 4 + 40  # VLAN / IPv6 extension header frames
    assert scapy_bad_checksums(segmented) == []
    assert tcp_streams(segmented) == tcp_streams(capture)
    merged = tmp_path / "rsc.pcap"
    code, text = cli("pcap", "coalesce", "--timeout", "1000", str(segmented), str(merged))
    assert code == 0, text
    assert len(rdpcap(str(merged))) < len(sizes)
    assert tcp_streams(merged) == tcp_streams(capture)


def test_segment_sll2_and_pcapng(tmp_path: Path) -> None:
    giant = bytes(offload_capture()[3])  # the 20000-byte LSO send
    sll2 = b"\x08\x00\x00\x00" + b"\0\0\0\3" + b"\x00\x01\x04\x06" + bytes(8) + giant[14:]
    from scapy.layers.l2 import CookedLinuxV2

    capture = tmp_path / "sll2.pcap"
    wrpcap(str(capture), [CookedLinuxV2(sll2)], linktype=276)
    out = tmp_path / "out.pcap"
    code, text = cli("pcap", "segment", "--mss", "1000", str(capture), str(out))
    assert code == 0, text
    frames = [bytes(p) for p in rdpcap(str(out))]
    assert len(frames) == 20 and all(f[:20] == sll2[:20] for f in frames)
    ng = tmp_path / "tx.pcapng"
    from scapy.utils import wrpcapng

    wrpcapng(str(ng), offload_capture())
    assert cli("pcap", "segment", str(ng), str(tmp_path / "seg.pcapng"))[0] == 0
    assert cli("pcap", "verify", str(tmp_path / "seg.pcapng"))[0] == 0


def test_truncated_capture_error_and_keep_going(tmp_path: Path) -> None:
    capture = write(tmp_path / "tx.pcap", offload_capture())
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(capture.read_bytes()[:-30])
    code, text = cli("pcap", "fix", str(cut), str(tmp_path / "o.pcap"))
    assert code == 2 and "frame 13 at offset" in text and "truncated" in text
    assert not (tmp_path / "o.pcap").exists()
    code, text = cli("pcap", "fix", "--keep-going", str(cut), str(tmp_path / "o.pcap"))
    assert code == 1 and "skipped" in text and "frame 13 at offset" in text  # exit 1: skipped
    assert len(rdpcap(str(tmp_path / "o.pcap"))) == 12
    code, text = cli("pcap", "verify", "--json", "--keep-going", str(cut))
    assert json.loads(text)["capture_errors"]


def test_interrupt_leaves_no_partial_output(tmp_path: Path) -> None:
    capture = write(tmp_path / "tx.pcap", offload_capture() * 50)

    def interrupt(frames: int, nbytes: int) -> None:
        raise KeyboardInterrupt

    opts = pcap_jobs.Options(chunk_bytes=4096, progress=interrupt)
    for job in (pcap_jobs.fix, pcap_jobs.segment, coalesce.coalesce):
        with pytest.raises(KeyboardInterrupt):
            job(capture, tmp_path / "out.pcap", opts)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["tx.pcap"]


def test_interrupt_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    capture = write(tmp_path / "tx.pcap", offload_capture())

    def boom(*args: object, **kwargs: object) -> list[bytes]:
        raise KeyboardInterrupt

    monkeypatch.setattr(pcap_jobs, "segment_record", boom)
    code, text = cli("pcap", "segment", str(capture), str(tmp_path / "out.pcap"))
    assert code == 130 and "interrupted" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tx.pcap"]


def test_stats_and_plot(tmp_path: Path) -> None:
    capture = write(tmp_path / "tx.pcap", offload_capture())
    code, text = cli("pcap", "stats", str(capture))
    assert code == 0 and "on the wire" in text
    pytest.importorskip("matplotlib", reason="the plot extra is not installed")
    png = tmp_path / "sizes.png"
    assert cli("pcap", "stats", "-q", "--plot", str(png), str(capture))[0] == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_not_a_capture(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"hello world, not a capture")
    code, text = cli("pcap", "verify", str(junk))
    assert code == 2 and "not a pcap" in text
    assert cli("pcap", "verify", str(tmp_path / "missing.pcap"))[0] == 2


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (apt-get install tshark)")
def test_tshark_accepts_fix_and_segment_outputs(tmp_path: Path) -> None:
    capture = write(tmp_path / "tx.pcap", offload_capture())
    assert TSHARK is not None
    for tool in ("fix", "segment"):
        out = tmp_path / f"{tool}.pcap"
        assert cli("pcap", tool, str(capture), str(out))[0] == 0
        result = subprocess.run(
            [TSHARK, "-n", "-r", str(out), "-o", "ip.check_checksum:TRUE",
             "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
             "-T", "fields", "-e", "frame.number", "-e", "ip.checksum.status",
             "-e", "tcp.checksum.status", "-e", "udp.checksum.status"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        rows = [line.split("\t") for line in result.stdout.splitlines()]
        bad = [row for row in rows if any(field == "0" for field in row[1:])]
        assert bad == [], f"tshark: bad checksums in {tool} output: {bad}"
        assert sum(field == "1" for row in rows for field in row[1:]) >= len(rows) - 1

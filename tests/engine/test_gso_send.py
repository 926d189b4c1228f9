"""Linux GSO of captured sends: VXLAN / Geneve tunnelled TCP and BIG TCP.

Oracles: scapy builds every expected segment itself (lengths, IDs and checksums computed
by scapy from the send's headers, the rules of Linux ``skb_udp_tunnel_segment`` /
``tcp_gso_segment`` applied by hand), tshark validates every checksum of the segments
(outer IP, outer UDP, inner IP, inner TCP), and the inner payloads reassemble to the send.
"""

from __future__ import annotations

import io
import ipaddress
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from scapy.contrib.geneve import GENEVE
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop, Jumbo
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw
from scapy.utils import rdpcap, wrpcap

from ndis_offload.cli.main import main
from ndis_offload.engine import segment_gso, segment_tcp
from ndis_offload.errors import PacketError
from ndis_offload.packet.checksum import pseudo_header_sum_ipv4, pseudo_header_sum_ipv6

TSHARK = shutil.which("tshark")
OUTER_ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
INNER_ETH = Ether(src="02:00:00:00:01:01", dst="02:00:00:00:01:02")
TS = [("NOP", None), ("NOP", None), ("Timestamp", (123, 456))]


def outer_ip(v6: bool) -> Packet:
    if v6:
        return IPv6(src="2001:db8::a", dst="2001:db8::b", hlim=64)
    return IP(src="192.0.2.10", dst="192.0.2.20", id=0xFFF0, flags="DF", ttl=64)


def inner_ip(v6: bool) -> Packet:
    if v6:
        return IPv6(src="fd00::1", dst="fd00::2", hlim=63)
    return IP(src="10.0.0.1", dst="10.0.0.2", id=1234, flags="DF", ttl=63)


def tunnel(kind: str, outer_v6: bool, udp_csum: int | None) -> Packet:
    """Outer Ethernet / IP / UDP / VXLAN or Geneve / inner Ethernet (no inner IP yet)."""
    port = 4789 if kind == "vxlan" else 6081
    udp = UDP(sport=49999, dport=port, chksum=udp_csum)
    encap = VXLAN(vni=42) if kind == "vxlan" else GENEVE(vni=42, proto=0x6558)
    return OUTER_ETH / outer_ip(outer_v6) / udp / encap / INNER_ETH


def _packed(address: str) -> bytes:
    return ipaddress.ip_address(address).packed


def gso_send(pkt: Packet, *, zero_outer_udp_len: bool = False) -> bytes:
    """``pkt`` as Linux hands a tunnelled GSO send to the NIC: IPv4 checksums left zero, the
    inner TCP checksum and a non-zero outer UDP checksum holding their pseudo-header sums
    (left partial), every length set."""
    frame = bytearray(bytes(pkt))
    parsed = Ether(bytes(frame))
    tcp_at = len(frame) - len(parsed[TCP])
    inner = parsed[TCP].underlayer
    tcp_len = len(parsed[TCP])
    if isinstance(inner, IP):
        seed = pseudo_header_sum_ipv4(_packed(inner.src), _packed(inner.dst), 6, tcp_len)
    else:
        seed = pseudo_header_sum_ipv6(_packed(inner.src), _packed(inner.dst), 6, tcp_len)
    frame[tcp_at + 16 : tcp_at + 18] = seed.to_bytes(2, "big")
    for index in range(2):
        ip = parsed.getlayer(IP, nb=index + 1)
        if ip is not None:
            at = len(frame) - len(ip)
            frame[at + 10 : at + 12] = b"\0\0"
    udp_at = len(frame) - len(parsed[UDP]) if UDP in parsed else -1
    if udp_at >= 0 and frame[udp_at + 6 : udp_at + 8] != b"\0\0":  # UDP_TUNNEL_CSUM: partial
        outer = parsed[UDP].underlayer
        udp_len = len(parsed[UDP])
        pseudo = pseudo_header_sum_ipv4 if isinstance(outer, IP) else pseudo_header_sum_ipv6
        seed = pseudo(_packed(outer.src), _packed(outer.dst), 17, udp_len)
        frame[udp_at + 6 : udp_at + 8] = seed.to_bytes(2, "big")
    if zero_outer_udp_len:
        frame[udp_at + 4 : udp_at + 6] = b"\0\0"
    return bytes(frame)


def flags_for(flags: int, index: int, count: int) -> int:
    keep = flags & ~0x89
    if index == 0:
        keep |= flags & 0x80
    if index == count - 1:
        keep |= flags & 0x09
    return keep


def scapy_segments(pkt: Packet, mss: int, outer_udp_zero: bool) -> list[bytes]:
    """Every segment built by scapy: IP IDs +1 (outer and inner), lengths and checksums
    computed by scapy; the outer UDP checksum stays 0 when the send had 0."""
    pkt = Ether(bytes(pkt))
    data = bytes(pkt[TCP].payload)
    template = pkt.copy()
    template[TCP].remove_payload()
    count = max(1, -(-len(data) // mss))
    out = []
    for index in range(count):
        seg = template.copy()
        for nb in (1, 2):
            ip4, original = seg.getlayer(IP, nb=nb), pkt.getlayer(IP, nb=nb)
            if ip4 is not None and original is not None:
                ip4.id = (original.id + index) & 0xFFFF
                ip4.len = None
                ip4.chksum = None
            ip6 = seg.getlayer(IPv6, nb=nb)
            if ip6 is not None:
                ip6.plen = None
        if UDP in seg:
            seg[UDP].len = None
            seg[UDP].chksum = 0 if outer_udp_zero else None
        seg[TCP].seq = (pkt[TCP].seq + index * mss) & 0xFFFFFFFF
        seg[TCP].flags = flags_for(int(pkt[TCP].flags), index, count)
        seg[TCP].chksum = None
        out.append(bytes(seg / Raw(data[index * mss : (index + 1) * mss])))
    return out


CASES = [
    (kind, outer_v6, inner_v6, udp_csum)
    for kind in ("vxlan", "geneve")
    for outer_v6 in (False, True)
    for inner_v6 in (False, True)
    for udp_csum in (0, 0xBEEF)
]


@pytest.mark.parametrize(("kind", "outer_v6", "inner_v6", "udp_csum"), CASES)
def test_udp_tunnel_gso_matches_scapy(
    kind: str, outer_v6: bool, inner_v6: bool, udp_csum: int
) -> None:
    payload = bytes(range(256)) * 39 + b"tail"
    pkt = (
        tunnel(kind, outer_v6, udp_csum)
        / inner_ip(inner_v6)
        / TCP(sport=40000, dport=5201, seq=0xFFFFF000, flags="FPAC", options=TS)
        / payload
    )
    send = gso_send(pkt)
    frames = segment_gso(send, 1400).frames
    expected = scapy_segments(pkt, 1400, udp_csum == 0)
    assert len(frames) == len(expected) == 8
    assert frames == expected
    assert b"".join(bytes(Ether(f)[TCP].payload) for f in frames) == payload


def test_big_tcp_ipv4_total_length_zero() -> None:
    payload = bytes(range(251)) * 400  # 100 400 bytes: more than an IPv4 length can say
    head = OUTER_ETH / IP(src="10.9.0.1", dst="10.9.0.2", id=7) / TCP(flags="PA")
    frame = bytearray(bytes(head) + payload)
    frame[16:18] = b"\0\0"  # BIG TCP: IPv4 Total Length 0
    frames = segment_gso(bytes(frame), 8948).frames
    assert len(frames) == 12
    assert b"".join(bytes(Ether(f)[TCP].payload) for f in frames) == payload
    for index, out in enumerate(frames):
        seg = Ether(out)
        assert seg[IP].len == len(out) - 14 and seg[IP].id == 7 + index
        assert_scapy_checksums(out)


def big_tcp_ipv6(jumbo: bool, payload: bytes) -> bytes:
    """An IPv6 BIG TCP send: Payload Length 0, with or without the jumbo hop-by-hop option."""
    v6 = IPv6(src="fd00::10", dst="fd00::20", plen=0)
    tcp = TCP(sport=1, dport=2, seq=5, flags="PA", options=TS)
    if not jumbo:
        raw = bytearray(bytes(OUTER_ETH / v6 / tcp / payload))
        raw[18:20] = b"\0\0"
        return bytes(raw)
    hbh = IPv6ExtHdrHopByHop(options=[Jumbo(jumboplen=8 + len(bytes(tcp)) + len(payload))])
    raw = bytearray(bytes(OUTER_ETH / v6 / hbh / tcp / payload))
    raw[18:20] = b"\0\0"
    return bytes(raw)


@pytest.mark.parametrize("jumbo", [False, True], ids=["plen0", "jumbo-hbh"])
def test_big_tcp_ipv6(jumbo: bool) -> None:
    payload = bytes(range(256)) * 300  # 76 800 bytes
    frames = segment_gso(big_tcp_ipv6(jumbo, payload), 9000).frames
    assert len(frames) == 9
    assert b"".join(bytes(Ether(f)[TCP].payload) for f in frames) == payload
    for index, out in enumerate(frames):
        seg = Ether(out)
        assert IPv6ExtHdrHopByHop not in seg  # the jumbo header is gone
        assert seg[IPv6].nh == 6 and seg[IPv6].plen == len(out) - 54
        assert seg[TCP].seq == 5 + 9000 * index
        assert_scapy_checksums(out)


def zero_tunnel_lengths(frame: bytes) -> bytes:
    """Outer IPv6 payload length, outer UDP length and inner IPv6 payload length set to 0."""
    raw = bytearray(frame)
    raw[18:20] = b"\0\0"
    raw[58:60] = b"\0\0"  # outer UDP length (14 + 40 + 4)
    inner_v6 = 14 + 40 + 8 + 8 + 14
    raw[inner_v6 + 4 : inner_v6 + 6] = b"\0\0"
    return bytes(raw)


def test_big_tcp_inside_a_vxlan_tunnel() -> None:
    """bigtcp-ipv6-vxlan-ipv6: outer IPv6 length 0, outer UDP length 0, inner IPv6 length 0."""
    payload = bytes(range(256)) * 234  # scapy builds the expected segments up to 64 KB
    pkt = tunnel("vxlan", True, 0) / inner_ip(True) / TCP(flags="PA") / payload
    frames = segment_gso(zero_tunnel_lengths(gso_send(pkt)), 8000).frames
    assert len(frames) == 8
    assert frames == scapy_segments(pkt, 8000, True)
    # Beyond 64 KB (no length field can hold it): checked segment by segment.
    big = bytes(range(256)) * 400
    head = gso_send(tunnel("vxlan", True, 0xBEEF) / inner_ip(True) / TCP(flags="PA"))
    frames = segment_gso(zero_tunnel_lengths(head + big), 9000).frames
    assert len(frames) == 12
    assert b"".join(bytes(Ether(f)[TCP].payload) for f in frames) == big
    for out in frames:
        seg = Ether(out)
        inner = seg.getlayer(IPv6, nb=2)
        assert inner is not None and inner.plen == len(out) - 124
        assert seg[UDP].len == len(out) - 54
        assert_scapy_checksums(out)


def assert_scapy_checksums(frame: bytes) -> None:
    """Every IP / TCP / UDP checksum of ``frame`` is what scapy computes."""
    pkt = Ether(frame)
    for layer in (IP, TCP, UDP):
        for nb in (1, 2):
            got = pkt.getlayer(layer, nb=nb)
            if got is not None and not (layer is UDP and got.chksum == 0):
                got.chksum = None
    assert bytes(Ether(bytes(pkt))) == frame


def test_non_transport_frames_pass_and_bad_carriers_raise() -> None:
    from scapy.layers.inet import ICMP

    icmp = bytes(OUTER_ETH / IP() / ICMP() / bytes(3000))
    assert segment_gso(icmp, 1000).frames == [icmp]
    assert segment_gso(icmp, 1000).wire_bytes == len(icmp)
    frag = bytes(OUTER_ETH / IP(flags="MF") / TCP() / bytes(3000))
    with pytest.raises(PacketError, match="fragment"):
        segment_gso(frag, 1000)
    jumbo = bytearray(big_tcp_ipv6(True, bytes(1000)))
    jumbo[56] = 0xC9  # the option is no longer Jumbo: the locator sees a length-0 HBH
    with pytest.raises(PacketError):
        segment_gso(bytes(jumbo[:60]), 100)


@settings(max_examples=40, deadline=None)
@given(
    st.binary(min_size=0, max_size=5000),
    st.integers(1, 1500),
    st.sampled_from(CASES),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
)
def test_tunnel_gso_property(
    payload: bytes,
    mss: int,
    case: tuple[str, bool, bool, int],
    ip_id: int,
    seq: int,
) -> None:
    kind, outer_v6, inner_v6, udp_csum = case
    outer = tunnel(kind, outer_v6, udp_csum)
    if not outer_v6:
        outer[IP].id = ip_id
    pkt = outer / inner_ip(inner_v6) / TCP(seq=seq, flags="PA") / payload
    result = segment_gso(gso_send(pkt), mss)
    assert result.frames == scapy_segments(pkt, mss, udp_csum == 0)
    assert result.wire_bytes == sum(map(len, result.frames))


@pytest.mark.parametrize("carrier", ["gre", "ipip", "sit"])
def test_gre_and_ip_in_ip_carriers(carrier: str) -> None:
    """Constant carrier headers (GRE without checksum, IP-in-IP, IPv6-in-IPv4): the outer
    IPv4 gets its length, ID and checksum per segment like the inner one."""
    from scapy.layers.l2 import GRE

    outer = OUTER_ETH / IP(src="192.0.2.1", dst="192.0.2.2", id=300)
    inner = inner_ip(carrier == "sit")
    pkt = (outer / GRE() / inner) if carrier == "gre" else (outer / inner)
    pkt = pkt / TCP(sport=5, dport=6, seq=77, flags="PA") / (bytes(range(256)) * 20)
    frames = segment_gso(gso_send(pkt), 1000).frames
    assert len(frames) == 6
    assert frames == scapy_segments(pkt, 1000, False)
    with pytest.raises(PacketError, match="GRE with a checksum"):
        segment_gso(bytes(outer / GRE(chksum_present=1) / inner / TCP() / bytes(3000)), 1000)


def test_plain_lso_is_the_same_cut() -> None:
    """A plain send cut by segment_gso equals segment_tcp (one core, two planners)."""
    pkt = OUTER_ETH / IP(src="1.1.1.1", dst="2.2.2.2") / TCP(flags="PA") / bytes(9000)
    assert segment_gso(bytes(pkt), 1448).frames == segment_tcp(bytes(pkt), 1448).frames


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (apt-get install tshark)")
def test_tshark_validates_every_tunnel_segment(tmp_path: Path) -> None:
    frames: list[bytes] = []
    for kind, outer_v6, inner_v6, udp_csum in CASES:
        pkt = tunnel(kind, outer_v6, udp_csum) / inner_ip(inner_v6) / TCP(flags="PA")
        frames += segment_gso(gso_send(pkt / bytes(range(200))), 64).frames
    frames += segment_gso(big_tcp_ipv6(True, bytes(range(256)) * 100), 9000).frames
    capture = tmp_path / "gso.pcap"
    wrpcap(str(capture), [Ether(f) for f in frames])
    assert TSHARK is not None
    fields = ["ip.checksum.status", "udp.checksum.status", "tcp.checksum.status"]
    result = subprocess.run(
        [TSHARK, "-n", "-r", str(capture)]
        + ["-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE"]
        + ["-o", "udp.check_checksum:TRUE", "-T", "fields"]
        + [arg for name in fields for arg in ("-e", name)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert len(rows) == len(frames)
    # checksum.status: 0 = bad, 1 = good, 2 = unverified (an outer UDP checksum of 0)
    bad = [row for row in rows if any("0" in value.split(",") for value in row)]
    assert bad == [], f"tshark reports bad checksums: {bad}"
    for frame, row in zip(frames, rows, strict=True):
        pkt = Ether(frame)
        ipv4 = sum(pkt.getlayer(IP, nb=nb) is not None for nb in (1, 2))
        udp = int(UDP in pkt and pkt[UDP].chksum != 0)
        good = [value.split(",").count("1") for value in row]
        assert good == [ipv4, udp, 1], (row, pkt.summary())


def write_pcap(path: Path, frames: list[bytes]) -> None:
    """A pcap with snap length 262144 (BIG TCP sends exceed 64 KB)."""
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for index, frame in enumerate(frames):
            out.write(struct.pack("<IIII", 1_700_000_000, index, len(frame), len(frame)) + frame)


def test_pcap_segment_cuts_tunnelled_and_big_tcp_sends(tmp_path: Path) -> None:
    payload = bytes(range(256)) * 100
    sends = [
        gso_send(tunnel(kind, outer_v6, csum) / inner_ip(inner_v6) / TCP(flags="PA") / payload)
        for kind, outer_v6, inner_v6, csum in CASES
    ]
    sends.append(big_tcp_ipv6(True, payload * 3))
    capture, out = tmp_path / "gso.pcap", tmp_path / "wire.pcap"
    write_pcap(capture, sends)
    text = io.StringIO()
    argv = ["pcap", "segment", "--mss", "1400", str(capture), str(out)]
    assert main(argv, console=Console(file=text, width=120)) == 0, text.getvalue()
    frames = [bytes(p) for p in rdpcap(str(out))]
    expected = [segment_gso(send, 1400).frames for send in sends]
    # ``pcap segment`` completes the checksums left for offload before cutting; a zero UDP
    # checksum over IPv6 is one of them for the capture checks (RFC 8200), so there the
    # outer UDP checksum is filled; everything else is the engine's cut of the send.
    masked = [
        f[:60] + b"??" + f[62:] if f[12:14] == b"\x86\xdd" and f[20] == 17 else f for f in frames
    ]
    assert masked == [
        f[:60] + b"??" + f[62:] if f[12:14] == b"\x86\xdd" and f[20] == 17 else f
        for cut in expected
        for f in cut
    ]
    assert len(frames) == 16 * 19 + 55
    for cut, send in zip(expected, sends, strict=True):
        inner = b"".join(bytes(Ether(f)[TCP].payload) for f in cut)
        assert inner == (payload * 3 if len(send) > 70000 else payload)
        for frame in cut:
            assert_scapy_checksums(frame)

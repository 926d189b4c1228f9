"""The per-send fast path of the segmentation core: the seeded transport checksum (whole rows
summed, the headers before the transport subtracted through the seed), the latest-send
check of a flow (``latest_plain``) and the cutters it hands out.

Oracles: scapy building each segment itself (``scapy_cut``: lengths and checksums computed
by scapy), and a cut by a new, uncached shape and cutter of the plan the locator gives
(``plan_send``), which shares no state with the caches under test.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet
from test_transmit import TS, scapy_cut

from ndis_offload.engine import gso, gso_send
from ndis_offload.engine.gso_send import latest_plain, plan_send
from ndis_offload.engine.transmit import (
    segment_tcp,
    segment_tcp_rows,
    segment_udp,
    segment_udp_rows,
)
from ndis_offload.packet.locate import locate
from ndis_offload.packet.proto import IPPROTO_TCP, IPPROTO_UDP

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def fresh_cut(frame: bytes, mss: int, want: int) -> list[bytes]:
    """The cut by a new shape and cutter of the locator's plan (no cache, no reuse)."""
    view = memoryview(frame)
    plan = plan_send(view, locate(view, tunnels=False, giant_llc=True), want)
    shape = gso.Shape(plan, plan.end - plan.header_len, mss)
    return gso.Cutter(plan, shape).segments(view).frames


def test_the_last_seed_steps_both_ways() -> None:
    """IPv4 TCP and UDP sends whose last segment is short: over many addresses the seed of
    a full segment falls both below and above the last one's step (``_LOW`` unset and
    set), and every cut is scapy's."""
    mss, size = 100, 3 * 100 + 1  # the last segment is 99 bytes short
    for l4 in (TCP(sport=1, dport=2, flags="PA"), UDP(sport=1, dport=2)):
        seen = set()
        for n in range(2400):
            ip = IP(src=f"10.{n % 7}.{n // 7 % 250}.{n % 250 + 1}", dst="192.0.2.9", id=n)
            pkt = ETH / ip / l4 / bytes((n + i) & 0xFF for i in range(size))
            frame = bytes(pkt)
            segment = segment_tcp if TCP in pkt else segment_udp
            got = segment(frame, mss).frames
            assert got == fresh_cut(frame, mss, IPPROTO_TCP if TCP in pkt else IPPROTO_UDP)
            if n % 40 == 0:
                assert got == scapy_cut(pkt, mss)
            found = latest_plain(frame, IPPROTO_TCP if TCP in pkt else IPPROTO_UDP, mss)
            assert found is not None  # the send just cut is the latest
            seen |= {key & gso._LOW for key in found.shape.heads}
        assert seen == {0, gso._LOW}


def headers(v6: bool, udp: bool, ts: bool, vlan: bool, src: int, port: int) -> Packet:
    link = ETH / Dot1Q(vlan=7) if vlan else ETH
    ip = IPv6(src=f"2001:db8::{src:x}", dst="2001:db8::2") if v6 else IP(src=f"192.0.2.{src}")
    l4 = UDP(sport=port, dport=53) if udp else TCP(sport=port, options=TS if ts else [])
    return link / ip / l4


@settings(max_examples=60, deadline=None)
@given(
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.integers(1, 4000),
    st.integers(1, 1500),
    st.lists(
        st.tuples(
            st.integers(1, 3),  # flow: source address (key bytes)
            st.integers(1024, 1026),  # flow: source port (key bytes)
            st.integers(0, 0xFFFF),  # IPv4 ID
            st.integers(0, 0xFFFFFFFF),  # sequence number
            st.integers(0, 0xFF),  # TCP flags
            st.integers(0, 255),  # payload byte
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_a_flows_sends_are_cut_as_first_sends(
    v6: bool, udp: bool, ts: bool, vlan: bool, size: int, mss: int,
    sends: list[tuple[int, int, int, int, int, int]],
) -> None:  # fmt: skip
    """Sends of a few flows of one shape, interleaved (the latest-send check hits, misses
    on other addresses or ports, and hands out cached cutters and reused workspaces):
    each send's frames and rows are the uncached cut's, and scapy's."""
    want = IPPROTO_UDP if udp else IPPROTO_TCP
    segment, rows = (segment_udp, segment_udp_rows) if udp else (segment_tcp, segment_tcp_rows)
    for src, port, ip_id, seq, flags, fill in sends:
        pkt = headers(v6, udp, ts, vlan, src, port)
        if IP in pkt:
            pkt[IP].id = ip_id
        if TCP in pkt:
            pkt[TCP].seq, pkt[TCP].flags = seq, flags
        pkt = pkt / (bytes([fill]) * size)
        frame = bytes(pkt)
        expected = fresh_cut(frame, mss, want)
        assert segment(frame, mss).frames == expected
        assert rows(frame, mss).frames() == expected
        assert segment(memoryview(frame), mss).frames == expected  # not the bytes fast path
        if len(expected) <= 8:
            assert expected == scapy_cut(pkt, mss)


def test_the_latest_send_check_reads_every_key_byte() -> None:
    """A frame that differs from the latest send in a byte the plan depends on (length,
    address, data offset) is not taken for it; one that differs elsewhere is."""
    gso_send._last[0] = None
    pkt = ETH / IP(src="192.0.2.1", dst="192.0.2.2", id=5) / TCP(options=TS) / (b"q" * 3000)
    frame = bytearray(bytes(pkt))
    assert segment_tcp(bytes(frame), 1000).frames == scapy_cut(pkt, 1000)
    assert latest_plain(bytes(frame), IPPROTO_TCP, 1000) is not None
    assert latest_plain(bytes(frame), IPPROTO_TCP, 999) is None  # another MSS
    assert latest_plain(bytes(frame), IPPROTO_UDP, 1000) is None  # another transport
    for at in (12, 14, 16, 17, 23, 26, 29, 30, 33, 46):  # ethertype .. data offset
        edited = bytearray(frame)
        edited[at] ^= 0x10
        assert latest_plain(bytes(edited), IPPROTO_TCP, 1000) is None, at
    for at in (0, 6, 18, 19, 22, 24, 34, 38, 47, 60, 3000):  # MACs, ID, TTL, ports, ...
        edited = bytearray(frame)
        edited[at] ^= 0x10
        assert latest_plain(bytes(edited), IPPROTO_TCP, 1000) is not None, at

"""The fast paths of the segmentation core: the direct plan of plain sends, the cached
shapes and their reused workspaces, and the zero-copy rows.

Oracles: the general plan (``plan_send`` over the locator) for every frame the direct plan
answers, scapy building each segment itself (``scapy_cut``), and every IPv4 header checksum
recomputed from the segment's bytes for every starting IPv4 ID.
"""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet
from test_transmit import TS, scapy_cut

from ndis_offload.engine import gso, gso_send
from ndis_offload.engine.gso import cut, cut_rows
from ndis_offload.engine.gso_send import plan_plain, plan_plain_shaped, plan_send
from ndis_offload.engine.transmit import (
    segment_tcp,
    segment_tcp_rows,
    segment_udp,
    segment_udp_rows,
)
from ndis_offload.errors import PacketError
from ndis_offload.packet.checksum import internet_checksum
from ndis_offload.packet.locate import locate
from ndis_offload.packet.proto import IPPROTO_TCP, IPPROTO_UDP

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def base_frames() -> list[bytes]:
    """Plain sends of every kind the direct plan reads, and neighbours it must refuse."""
    out = []
    for ip in (
        IP(src="192.0.2.1", dst="198.51.100.7", id=7),
        IP(src="192.0.2.1", dst="198.51.100.7", options=b"\x01\x01\x01\x00"),
        IPv6(src="2001:db8::1", dst="2001:db8::2"),
        IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrDestOpt(),
    ):
        for l4 in (TCP(seq=5, options=TS), TCP(), UDP(sport=1, dport=2), UDP(dport=4789)):
            for link in (ETH, ETH / Dot1Q(vlan=4), ETH / Dot1Q(vlan=4) / Dot1Q(vlan=5)):
                out.append(bytes(link / ip / l4 / (b"x" * 300)))
    return out


BASES = base_frames()


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from(BASES),
    st.lists(st.tuples(st.integers(0, 120), st.integers(0, 255)), max_size=4),
    st.integers(0, 400),
    st.sampled_from([None, IPPROTO_TCP, IPPROTO_UDP]),
    st.booleans(),
)
def test_direct_plan_is_the_general_plan(
    frame: bytes, edits: list[tuple[int, int]], cut_to: int, want: int | None, tunnels: bool
) -> None:
    """Whenever the direct plan answers (any bytes: mutated headers, cut frames, wrong
    lengths), it is the plan the locator and ``plan_send`` give."""
    data = bytearray(frame[: max(cut_to, 0) or len(frame)])
    for at, value in edits:
        if at < len(data):
            data[at] = value
    view = memoryview(bytes(data))
    fast = plan_plain(view, want, tunnels=tunnels)
    if fast is None:
        return
    general = plan_send(view, locate(view, tunnels=tunnels, giant_llc=True), want)
    assert fast == general


def test_direct_plan_answers_the_common_sends() -> None:
    answered = [f for f in BASES if plan_plain(memoryview(f)) is not None]
    # IPv4 / IPv4 with options / IPv6 without extensions, TCP twice and UDP twice, with 0
    # or 1 VLAN tag: 3 x 4 x 2.
    assert len(answered) == 24
    vxlan = BASES[9]  # IPv4, UDP to 4789, no VLAN tag
    assert plan_plain(memoryview(vxlan), tunnels=True) is None


def headers_of(v6: bool, udp: bool, ts: bool, ip_id: int, seq: int, flags: int, src: int) -> Packet:
    ip = (
        IPv6(src=f"2001:db8::{src}", dst="2001:db8::2")
        if v6
        else IP(src=f"192.0.2.{src}", id=ip_id)
    )
    l4 = UDP(sport=7, dport=9) if udp else TCP(seq=seq, flags=flags, options=TS if ts else [])
    return ETH / ip / l4


SENDS = st.builds(
    headers_of,
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFF),
    st.integers(1, 254),
)


@settings(max_examples=80, deadline=None)
@given(SENDS, st.lists(st.binary(min_size=1, max_size=4000), min_size=2, max_size=4), st.data())
def test_reused_workspaces_hold_nothing_over(
    headers: Packet, payloads: list[bytes], data: st.DataObject
) -> None:
    """Sends of one shape in a row (same sizes, other bytes, other flows: the workspace and
    its cached pseudo-header constant are reused) each equal scapy's segments."""
    size = len(payloads[0])
    mss = data.draw(st.integers(1, 1500))
    for payload in payloads:
        payload = (payload * (size // len(payload) + 1))[:size]
        src = data.draw(st.integers(1, 254))
        pkt = headers.copy()
        ip = pkt[IP] if IP in pkt else pkt[IPv6]
        ip.src = f"192.0.2.{src}" if IP in pkt else f"2001:db8::{src}"
        if IP in pkt:
            ip.id = data.draw(st.integers(0, 0xFFFF))
        if TCP in pkt:
            pkt[TCP].seq = data.draw(st.integers(0, 0xFFFFFFFF))
        frame = bytes(pkt / payload)
        segment = segment_udp if UDP in pkt else segment_tcp
        assert segment(frame, mss).frames == scapy_cut(pkt / payload, mss)


@settings(max_examples=80, deadline=None)
@given(SENDS, st.binary(max_size=3000), st.integers(1, 1500), st.integers(0, 7), st.booleans())
def test_payloads_are_copied_from_any_buffer_offset(
    headers: Packet, payload: bytes, mss: int, skew: int, whole: bool
) -> None:
    """The full segments' payloads are copied as one ``V<mss>`` element a row: from a
    frame at any byte offset of a writable buffer, followed by link padding, with a
    payload that fills its last segment or not, the segments are scapy's."""
    if whole and payload:
        payload = payload[: len(payload) - len(payload) % mss] or payload
    pkt = headers / payload
    buffer = bytearray(skew) + bytes(pkt) + b"\xee" * 5  # link padding after the send
    view = memoryview(buffer)[skew:]
    segment = segment_udp if UDP in headers else segment_tcp
    assert segment(view, mss).frames == scapy_cut(pkt, mss)


def test_every_ipv4_id_gives_valid_header_checksums() -> None:
    """All 65,536 starting IDs (the ID wrapping, the checksum column with and without its
    remainder): every segment's IPv4 header checksums to zero and its ID is +1 mod 2**16."""
    frame = bytearray(bytes(ETH / IP(src="192.0.2.1", dst="198.51.100.7") / TCP() / (b"z" * 30)))
    for ip_id in range(0x10000):
        struct.pack_into("!H", frame, 18, ip_id)
        frames = segment_tcp(frame, 8).frames
        assert len(frames) == 4
        for index, seg in enumerate(frames):
            assert internet_checksum(seg[14:34]) == 0, (ip_id, index)
            assert struct.unpack_from("!H", seg, 18)[0] == (ip_id + index) & 0xFFFF


@settings(max_examples=60, deadline=None)
@given(SENDS, st.binary(max_size=5000), st.integers(1, 2000))
def test_rows_are_the_frames(headers: Packet, payload: bytes, mss: int) -> None:
    """The zero-copy rows hold exactly the frames of ``cut``, by index, iteration and
    ``frames()``, and stay valid after later sends of the same shape."""
    frame = bytes(headers / payload)
    view = memoryview(frame)
    plan = plan_plain(view)
    assert plan is not None
    whole = cut(frame, plan, mss)
    expected = whole.frames
    assert whole.wire_bytes == sum(map(len, expected))
    rows = cut_rows(frame, plan, mss)
    cut(bytes(headers / bytes(len(payload))), plan, mss)  # the same shape, other bytes
    assert rows.frames() == expected
    assert [bytes(f) for f in rows] == expected
    assert len(rows) == len(expected)
    assert bytes(rows.frame(-1)) == expected[-1]
    assert rows.payload_bytes == len(payload)
    public = segment_udp_rows if UDP in headers else segment_tcp_rows
    assert public(frame, mss).frames() == expected


def test_size_errors_are_raised_for_every_send_of_a_shape() -> None:
    frame = bytes(ETH / IP(len=0) / UDP(len=0, chksum=0) / (b"u" * 70000))
    view = memoryview(frame)
    plan = plan_send(view, locate(view, giant_llc=True))
    for _ in range(2):  # the cached shape keeps the error
        try:
            cut(frame, plan, 65530)
        except PacketError as error:
            assert "length limit" in error.reason
        else:
            raise AssertionError("no error")


def test_one_segment_with_an_mss_beyond_the_length_fields() -> None:
    """A send that fits one segment is cut even when ``mss`` plus the headers would not fit
    a length field (MSS 65,535): the segment's lengths are its own (this used to raise
    ``struct.error``)."""
    for pkt in (
        ETH / IP(src="192.0.2.1") / UDP() / (b"d" * 100),
        ETH / IP(src="192.0.2.1") / TCP(flags="PA") / (b"d" * 100),
        ETH / IPv6(src="2001:db8::1") / UDP() / (b"d" * 100),
    ):
        segment = segment_udp if UDP in pkt else segment_tcp
        assert segment(bytes(pkt), 65535).frames == scapy_cut(pkt, 65535)


def _clear_caches() -> None:
    gso_send._PLAINS.clear()
    gso_send._last[0] = None
    gso._SHAPES.clear()


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(BASES),
    st.lists(
        st.lists(st.tuples(st.integers(0, 110), st.integers(0, 255)), max_size=3),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from([None, IPPROTO_TCP, IPPROTO_UDP]),
    st.integers(1, 400),
    st.booleans(),
)
def test_cached_plan_and_shape_are_the_uncached_ones(
    frame: bytes, edit_rounds: list[list[tuple[int, int]]], want: int | None, mss: int,
    tunnels: bool,
) -> None:  # fmt: skip
    """A run of sends made from one frame by byte edits (IDs, sequence numbers, flags and
    checksums, and also lengths, addresses, offsets: the bytes the cache key holds): each
    send's cached plan is ``plan_plain``'s for its own bytes, and its cut (cache hit or
    miss, reused workspace) is byte for byte the cut by a new uncached shape."""
    data = bytearray(frame)
    for edits in edit_rounds:
        for at, value in edits:
            if at < len(data):
                data[at] = value
        view = memoryview(bytes(data))
        found = plan_plain_shaped(view, want, mss, tunnels=tunnels)
        plain = plan_plain(view, want, tunnels=tunnels)
        assert (found[0] if found else None) == plain
        if found is None or plain is None:
            continue
        plan, shape = found
        try:
            warm = cut(view, plan, mss, shape=shape).frames
        except PacketError as error:
            warm_error: str | None = error.reason
        else:
            warm_error = None
        fresh = gso.Shape(plain, plain.end - plain.header_len, mss)  # no cache, no reuse
        try:
            cold = cut(view, plain, mss, shape=fresh).frames
        except PacketError as error:
            assert warm_error == error.reason
        else:
            assert warm_error is None
            assert warm == cold


def test_the_plan_cache_and_the_shapes_are_bounded() -> None:
    """Many flows and sizes: the caches keep at most their limits (the oldest go), and a
    shape keeps at most 32 lane-delta variants (8 flag combinations, with and without the
    IPv4 steps, with and without the low-seed step)."""
    _clear_caches()
    for src in range(1, 200):
        for size in (100, 101):
            pkt = ETH / IP(src=f"192.0.2.{src}", id=0xFFFF - src) / TCP(flags=src) / (b"p" * size)
            segment_tcp(bytes(pkt), 16)
    assert len(gso_send._PLAINS) <= gso_send._MAX_PLAINS
    assert len(gso._SHAPES) <= gso._MAX_SHAPES
    assert all(len(shape.heads) <= 32 for shape in gso._SHAPES.values())
    assert any(len(shape.heads) > 1 for shape in gso._SHAPES.values())


def test_a_cache_hit_reads_nothing_stale() -> None:
    """The second send of a flow finds its plan in the cache; its own ID, sequence number,
    flags, window, options and payload are cut, not the first send's."""
    _clear_caches()
    first = ETH / IP(src="192.0.2.1", id=7) / TCP(seq=1, flags="PA", options=TS) / (b"a" * 3000)
    second = (
        ETH / IP(src="192.0.2.1", id=0xFFF0, ttl=9)
        / TCP(seq=0xFFFFFF00, flags="FPAC", window=77, options=TS[:2] + [("Timestamp", (9, 8))])
        / (b"b" * 3000)
    )  # fmt: skip
    assert segment_tcp(bytes(first), 1000).frames == scapy_cut(first, 1000)
    hits = len(gso_send._PLAINS)
    assert segment_tcp(bytes(second), 1000).frames == scapy_cut(second, 1000)
    assert len(gso_send._PLAINS) == hits  # the same key: a hit

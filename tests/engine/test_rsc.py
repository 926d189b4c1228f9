"""RSC coalescer: one test per NDIS rule, round trips through LSO, fuzzing; every emitted
frame is re-checksummed by scapy and dpkt."""

from __future__ import annotations

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP, IPOption_NOP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet

from ndis_offload.engine.rsc import CoalescedFrame, RscCoalescer
from ndis_offload.engine.transmit import segment_tcp
from ndis_offload.structs.nbl_info import NdisRscNblInfoInfo

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
V4 = IP(src="192.0.2.1", dst="198.51.100.7", id=100, flags="DF", ttl=64)
V6 = IPv6(src="2001:db8::1", dst="2001:db8::2", hlim=64)
TS = "Timestamp"


def seg(
    seq: int,
    size: int = 100,
    *,
    ip: Packet = V4,
    flags: str = "A",
    ack: int = 1000,
    win: int = 512,
    ts: tuple[int, int] | None = None,
    sport: int = 40000,
    options: list[tuple[str, object]] | None = None,
    **ip_fields: object,
) -> bytes:
    opts = options if options is not None else []
    if ts is not None:
        opts = [("NOP", None), ("NOP", None), (TS, ts)]
    layer = ip.copy()
    for name, value in ip_fields.items():
        setattr(layer, name, value)
    data = bytes((seq + i) & 0xFF for i in range(size))
    tcp = TCP(sport=sport, dport=443, seq=seq, ack=ack, flags=flags, window=win, options=opts)
    return bytes(ETH / layer / tcp / data)


def verify(frame: bytes) -> Packet:
    """Checksums verified by scapy (rebuild) and dpkt (in_cksum); returns the scapy packet."""
    pkt = Ether(frame)
    copy = pkt.copy()
    for layer in (IP, TCP, UDP):
        if layer in copy:
            del copy[layer].chksum
    assert bytes(Ether(bytes(copy))) == frame
    eth = dpkt.ethernet.Ethernet(frame)
    ip = eth.data
    if isinstance(ip, dpkt.ip.IP):
        assert dpkt.in_cksum(bytes(ip)[: ip.hl * 4]) == 0
        pseudo = ip.src + ip.dst + bytes([0, ip.p]) + len(ip.data).to_bytes(2, "big")
        assert dpkt.in_cksum(pseudo + bytes(ip.data)) == 0
    elif isinstance(ip, dpkt.ip6.IP6) and ip.nxt == 6:
        body = bytes(ip.data)
        pseudo = ip.src + ip.dst + len(body).to_bytes(4, "big") + b"\0\0\0\x06"
        assert dpkt.in_cksum(pseudo + body) == 0
    return pkt


def run(
    frames: list[bytes], coalescer: RscCoalescer | None = None, *, batch: bool = False
) -> list[CoalescedFrame]:
    rsc = coalescer or RscCoalescer(timeout=10.0)
    out = rsc.push_batch(frames, 0.0) if batch else [o for f in frames for o in rsc.push(f, 0.0)]
    out += rsc.flush()
    return out


def both(frames: list[bytes], **kwargs: object) -> list[CoalescedFrame]:
    """The result of per-frame ``push`` and of ``push_batch``, asserted identical."""
    single = run(frames, RscCoalescer(timeout=10.0, **kwargs))  # type: ignore[arg-type]
    batched = run(frames, RscCoalescer(timeout=10.0, **kwargs), batch=True)  # type: ignore[arg-type]
    assert single == batched
    for item in single:
        verify(item.frame)
    return single


def payload(frame: bytes) -> bytes:
    return bytes(Ether(frame)[TCP].payload)


def counts(out: list[CoalescedFrame]) -> list[int]:
    return [o.rsc.CoalescedSegCount for o in out]


@pytest.mark.parametrize("ip", [V4, V6], ids=["v4", "v6"])
def test_in_order_segments_merge(ip: Packet) -> None:
    frames = [seg(1 + 100 * i, ip=ip, ack=1000 + i, win=500 + i) for i in range(5)]
    out = both(frames)
    assert len(out) == 1 and out[0].rsc == NdisRscNblInfoInfo(CoalescedSegCount=5)
    assert out[0].checksum.IpChecksumSucceeded and out[0].checksum.TcpChecksumSucceeded
    pkt = verify(out[0].frame)
    assert payload(out[0].frame) == b"".join(payload(f) for f in frames)
    assert pkt[TCP].seq == 1 and pkt[TCP].ack == 1004 and pkt[TCP].window == 504  # last ACK/WND
    if IP in pkt:
        assert pkt[IP].id == 100 and pkt[IP].len == 20 + 20 + 500
    else:
        assert pkt[IPv6].plen == 20 + 500


def test_single_segment_passes_unchanged_with_count_zero() -> None:
    frame = seg(1)
    out = both([frame])
    assert out[0].frame == frame and out[0].rsc.CoalescedSegCount == 0
    assert out[0].checksum.IpChecksumSucceeded and out[0].checksum.TcpChecksumSucceeded


def test_out_of_order_ends_unit_and_resumes() -> None:
    frames = [seg(1), seg(101), seg(301), seg(401), seg(201)]
    out = both(frames)
    assert counts(out) == [2, 2, 0]
    assert out[2].frame == frames[4]


@pytest.mark.parametrize("flags", ["FA", "SA", "RA", "UA", "A" + "N"])
def test_control_flags_end_unit_and_pass_alone(flags: str) -> None:
    frames = [seg(1), seg(101), seg(201, flags=flags), seg(301)]
    out = both(frames)
    assert counts(out) == [2, 0, 0]
    assert out[1].frame == frames[2] and out[2].frame == frames[3]


def test_psh_ends_unit_after_including_it() -> None:
    frames = [seg(1), seg(101, flags="PA"), seg(201)]
    rsc = RscCoalescer(timeout=10.0)
    assert rsc.push(frames[0], 0.0) == []
    out = rsc.push(frames[1], 0.0)
    assert len(out) == 1 and out[0].rsc.CoalescedSegCount == 2
    assert verify(out[0].frame)[TCP].flags == "PA"
    assert rsc.push(frames[2], 0.0) == [] and rsc.flow_count == 1


def test_psh_ored_without_flush_on_psh() -> None:
    out = both([seg(1), seg(101, flags="PA"), seg(201)], flush_on_psh=False)
    assert counts(out) == [3] and Ether(out[0].frame)[TCP].flags == "PA"


def test_bad_checksum_passes_through() -> None:
    bad = bytearray(seg(101))
    bad[-1] ^= 0xFF
    frames = [seg(1), bytes(bad), seg(201), seg(301)]
    out = run(frames, RscCoalescer(timeout=10.0))
    assert run(frames, RscCoalescer(timeout=10.0), batch=True) == out
    assert [o.frame for o in out[:2]] == frames[:2]
    assert out[1].checksum.TcpChecksumFailed and not out[1].checksum.TcpChecksumSucceeded
    assert counts(out) == [0, 0, 2]


@pytest.mark.parametrize(
    "frame",
    [
        seg(
            1,
            options=None,
            ip=IP(src="192.0.2.1", dst="198.51.100.7", options=[IPOption_NOP()] * 4),
        ),
        bytes(ETH / V6 / IPv6ExtHdrDestOpt() / TCP(seq=1, flags="A") / (b"x" * 100)),
        seg(1, options=[("MSS", 1460)]),
        seg(1, options=[("SAckOK", b"")]),
    ],
    ids=["ip-options", "ipv6-ext", "mss-option", "sack-option"],
)
def test_segment_exceptions_are_never_coalesced(frame: bytes) -> None:
    out = both([frame, frame])
    assert [o.frame for o in out] == [frame, frame] and counts(out) == [0, 0]


def test_ipv4_fragments_are_not_coalesced() -> None:
    frag = bytes(ETH / IP(src="192.0.2.1", dst="198.51.100.7", flags="MF") / TCP() / (b"x" * 10))
    out = both([frag, frag])
    assert [o.frame for o in out] == [frag, frag]


def test_timestamps_latest_carried_and_must_not_decrease() -> None:
    frames = [seg(1, ts=(10, 5)), seg(101, ts=(12, 6)), seg(201, ts=(15, 6)), seg(301, ts=(11, 6))]
    out = both(frames)
    assert counts(out) == [3, 0]
    opts = dict(verify(out[0].frame)[TCP].options)
    assert opts[TS] == (15, 6) and out[0].timestamp_delta == 5
    assert out[1].frame == frames[3]


def test_timestamp_wraparound_is_modular() -> None:
    frames = [seg(1, ts=(0xFFFFFFF0, 1)), seg(101, ts=(0x10, 1))]
    out = both(frames)
    assert counts(out) == [2] and out[0].timestamp_delta == 0x20


def test_size_cap_65535() -> None:
    frames = [seg(1 + 1400 * i, size=1400) for i in range(60)]
    out = both(frames)
    assert sum(counts(out)) == 60 and len(out) == 2
    for item in out:
        assert verify(item.frame)[IP].len <= 65535
    assert b"".join(payload(o.frame) for o in out) == b"".join(payload(f) for f in frames)


def test_window_update_coalesced_not_counted() -> None:
    frames = [seg(1), seg(101), seg(201, size=0, win=4000), seg(201, size=0, win=8000)]
    out = both(frames)
    assert counts(out) == [2] and verify(out[0].frame)[TCP].window == 8000


def test_duplicate_acks_indicated_alone_by_default() -> None:
    dup = seg(201, size=0)
    out = both([seg(1), seg(101), dup, dup])
    assert counts(out) == [2, 0, 0] and out[1].frame == dup and out[1].rsc.DupAckCount == 0


def test_duplicate_acks_counted_when_enabled() -> None:
    dup = seg(201, size=0)
    out = both([seg(1), seg(101), dup, dup, dup], coalesce_dup_acks=True)
    # The SCU with data ends; a new SCU starts with the first duplicate ACK (count 0) and
    # counts the two that follow ("DupAckCount will be 1 less than the number").
    assert [o.rsc for o in out] == [
        NdisRscNblInfoInfo(CoalescedSegCount=2),
        NdisRscNblInfoInfo(CoalescedSegCount=1, DupAckCount=2),
    ]
    assert payload(out[1].frame) == b""


def test_pure_ack_advancing_ends_unit() -> None:
    ack = seg(201, size=0, ack=5000)
    out = both([seg(1), seg(101), ack, seg(201, ack=5000)])
    assert counts(out) == [2, 0, 0] and out[1].frame == ack


def test_piggybacked_ack_advances() -> None:
    out = both([seg(1, ack=10), seg(101, ack=20), seg(201, ack=15)])
    assert counts(out) == [2, 0]  # ACK going back ends the unit
    assert verify(out[0].frame)[TCP].ack == 20


def test_ecn_and_ip_fields_resume_coalescing() -> None:
    frames = [seg(1), seg(101), seg(201, tos=1), seg(301, tos=1), seg(401, flags="A")]
    assert counts(both(frames)) == [2, 2, 0]
    frames = [seg(1), seg(101, flags="EA"), seg(201, flags="EA")]
    assert counts(both(frames)) == [0, 2]


def test_ttl_is_minimum_and_id_is_first() -> None:
    out = both([seg(1, ttl=64, id=7), seg(101, ttl=3, id=8), seg(201, ttl=50, id=9)])
    pkt = verify(out[0].frame)
    assert pkt[IP].ttl == 3 and pkt[IP].id == 7
    out = both([seg(1, ip=V6, hlim=9), seg(101, ip=V6, hlim=4)])
    assert verify(out[0].frame)[IPv6].hlim == 4


def test_flows_interleaved() -> None:
    a = [seg(1 + 100 * i, sport=1) for i in range(4)]
    b = [seg(7 + 100 * i, sport=2, ip=V6) for i in range(4)]
    frames = [f for pair in zip(a, b, strict=True) for f in pair]
    out = both(frames)
    assert counts(out) == [4, 4]
    assert payload(out[0].frame) == b"".join(payload(f) for f in a)
    assert payload(out[1].frame) == b"".join(payload(f) for f in b)


def test_vlan_tagged_flow_coalesces() -> None:
    frames = [
        bytes(ETH / Dot1Q(vlan=5) / V4 / TCP(seq=1 + 10 * i, flags="A") / (b"v" * 10))
        for i in range(3)
    ]
    out = both(frames)
    assert counts(out) == [3] and Ether(out[0].frame)[Dot1Q].vlan == 5


def test_timeout_flush() -> None:
    rsc = RscCoalescer(timeout=0.5)
    assert rsc.push(seg(1, sport=1), 0.0) == []
    assert rsc.push(seg(1, sport=2), 0.3) == []
    assert rsc.flush(0.4) == []
    out = rsc.flush(0.6)
    assert len(out) == 1 and Ether(out[0].frame)[TCP].sport == 1
    out = rsc.push(seg(101, sport=2), 0.9)  # the sport=2 unit is 0.6 old: indicated first
    assert len(out) == 1 and rsc.flow_count == 1
    assert len(rsc.flush()) == 1 and rsc.flow_count == 0


def test_max_flows_evicts_oldest() -> None:
    rsc = RscCoalescer(timeout=10.0, max_flows=2)
    assert rsc.push(seg(1, sport=1), 0.0) == [] and rsc.push(seg(1, sport=2), 0.0) == []
    out = rsc.push(seg(1, sport=3), 0.0)
    assert len(out) == 1 and Ether(out[0].frame)[TCP].sport == 1 and rsc.flow_count == 2
    with pytest.raises(ValueError):
        RscCoalescer(max_flows=0)


def test_non_tcp_passes_through() -> None:
    udp = bytes(ETH / V4 / UDP() / b"u")
    junk = b"\x01\x02\x03"
    out = run([udp, junk, seg(1)], RscCoalescer())
    assert [o.frame for o in out] == [udp, junk, seg(1)]
    assert out[0].checksum.UdpChecksumSucceeded
    assert run([udp, junk, seg(1)], RscCoalescer(), batch=True) == out


@given(
    size=st.integers(0, 70000) | st.integers(0, 3000),
    mss=st.integers(300, 9000),
    v6=st.booleans(),
    ts=st.booleans(),
    flags=st.sampled_from(["A", "PA", "FA", "FPA"]),
    batch=st.booleans(),
)
def test_lso_then_rsc_round_trip(
    size: int, mss: int, v6: bool, ts: bool, flags: str, batch: bool
) -> None:
    data = bytes(i * 7 & 0xFF for i in range(size))
    opts = [("NOP", None), ("NOP", None), (TS, (5, 6))] if ts else []
    ip = V6 if v6 else V4
    template = bytes(ETH / ip / TCP(seq=0xFFFFFF00, ack=9, flags=flags, options=opts))
    header = bytearray(template)
    at = 16 if not v6 else 18
    header[at : at + 2] = b"\0\0"  # NDIS LSO: IP length 0, taken from the frame length
    frames = segment_tcp(bytes(header) + data, mss).frames
    out = run(frames, RscCoalescer(timeout=10.0), batch=batch)
    assert b"".join(payload(o.frame) for o in out) == data
    assert sum(max(o.rsc.CoalescedSegCount, 1) for o in out) == len(frames)
    for item in out:
        pkt = verify(item.frame)
        assert pkt[TCP].sport == 20 and pkt[TCP].ack == 9
        assert pkt[TCP].options == Ether(template)[TCP].options
    if "F" not in flags and size <= 60000:  # one SCU, the frame LSO started from
        whole = bytes(ETH / ip / TCP(seq=0xFFFFFF00, ack=9, flags=flags, options=opts) / data)
        assert [o.frame for o in out] == [whole]


@given(st.lists(st.tuples(st.integers(0, 4), st.binary(max_size=4)), max_size=16))
def test_fuzzed_frames_pass_through_or_coalesce(picks: list[tuple[int, bytes]]) -> None:
    bases = [seg(1 + 100 * i) for i in range(4)] + [bytes(ETH / V6 / TCP() / b"6")]
    frames = []
    for index, noise in picks:
        frame = bytearray(bases[index])
        for pos, byte in enumerate(noise):
            if pos == 0 and byte < 40:
                frame = frame[: len(frame) * byte // 40]
            elif frame:
                frame[(byte * 13 + pos * 29) % len(frame)] ^= 1 << (byte % 8)
        frames.append(bytes(frame))
    out = run(frames)
    assert out == run(frames, batch=True)
    merged = [o for o in out if o.rsc.CoalescedSegCount]
    for item in merged:
        verify(item.frame)
    assert sum(max(o.rsc.CoalescedSegCount, 1) for o in out) == len(frames)

"""``RscCoalescer.push``'s fast path for a pure ACK (no payload) with no SCU held for its
flow ("Rules for coalescing TCP/IP packets": a pure ACK that is neither a window update nor
a duplicate ACK of a held unit is not coalesced; "Exception conditions that terminate
coalescing" E2-E6 still count): the same indications, exception counts and held units as
the general per-frame path (segment decode and the rules), on random streams of pure,
duplicate and window-update ACKs among data, with bad checksums, options, flags, IPv4 /
IPv6, VLAN tags and random byte damage to the headers.

Oracle: the general path (``_scalar_seg`` + ``_process``), which ``push`` took for every
frame before the fast path (and ``tests/engine/test_rsc_oracle.py`` holds to the docs)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet
from test_rsc_batch import KINDS, scenario

from ndis_offload.engine import rsc
from ndis_offload.engine.rsc import CoalescedFrame, RscCoalescer, _scalar_seg

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def general_push(coalescer: RscCoalescer, frame: bytes, now: float) -> list[CoalescedFrame]:
    """``push`` as it was before the fast path: every frame through the segment decode."""
    out: list[CoalescedFrame] = []
    coalescer._expire(now, out)
    seg, key, word = _scalar_seg(frame)
    coalescer._process(frame, seg, key, word, now, out)
    return out


def ack(v6: bool = False, *, flags: str = "A", ts: bool = True, ack_no: int = 100) -> bytes:
    ip: Packet = IPv6(src="2001:db8::1", dst="2001:db8::2") if v6 else IP(
        src="192.0.2.1", dst="198.51.100.7", flags="DF"
    )  # fmt: skip
    opts = [("NOP", None), ("NOP", None), ("Timestamp", (7, 9))] if ts else []
    tcp = TCP(sport=40000, dport=443, seq=5, ack=ack_no, flags=flags, window=512, options=opts)
    return bytes(ETH / ip / tcp)


def run_both(frames: list[bytes | bytearray], times: list[float], **options: object) -> None:
    fast = RscCoalescer(**options)  # type: ignore[arg-type]
    slow = RscCoalescer(**options)  # type: ignore[arg-type]
    for number, (frame, now) in enumerate(zip(frames, times, strict=True)):
        got = fast.push(frame, now)
        want = general_push(slow, bytes(frame) if number % 5 else frame, now)  # type: ignore[arg-type]
        assert got == want, number
        assert [o.frame for o in got] == [o.frame for o in want]  # byte-identical
        assert all(type(o.frame) is bytes for o in got)
        assert fast.exceptions == slow.exceptions, number
        assert list(fast._flows) == list(slow._flows), number
    assert fast.flush() == slow.flush()


ACK_KINDS = KINDS + ("ack", "dup", "window") * 8 + ("bad_ip", "bad_tcp", "option") * 2
"""Pure, duplicate and window-update ACKs about as often as data (and damaged ones)."""
DAMAGE = st.lists(st.tuples(st.integers(0, 95), st.integers(1, 255)), max_size=3)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=scenario(kinds=ACK_KINDS), damage=st.lists(DAMAGE, max_size=40), data=st.data())
def test_fast_path_equals_the_general_path(
    case: tuple[list[bytes], list[int], dict[str, object]],
    damage: list[list[tuple[int, int]]],
    data: st.DataObject,
) -> None:
    frames, cuts, options = case
    stream: list[bytes | bytearray] = []
    for index, frame in enumerate(frames):
        stream.append(frame)
        if index < len(damage) and damage[index]:  # a damaged copy after the original
            hurt = bytearray(frame)
            for at, xor in damage[index]:
                if at < len(hurt):
                    hurt[at] ^= xor
            stream.append(bytes(hurt) if index % 2 else hurt)
    times = sorted(data.draw(st.lists(st.sampled_from([0.0, 1.0, 3.0, 200.0]),
                                      min_size=len(stream), max_size=len(stream))))  # fmt: skip
    run_both(stream, times, **options)


@pytest.mark.parametrize("v6", [False, True])
@pytest.mark.parametrize("ts", [False, True])
@pytest.mark.parametrize("flags", ["A", "PA", "AE", "AC", "AN", "FA", "SA", "RA", "AU", ""])
def test_each_flag_and_layout_alike(v6: bool, ts: bool, flags: str) -> None:
    frames: list[bytes | bytearray] = [ack(v6, flags=flags, ts=ts)]
    bad = bytearray(frames[0])
    bad[-1] ^= 0x10  # a bad TCP checksum (E2)
    frames += [bad, bytes(bad), ack(v6, flags=flags, ts=ts, ack_no=200)]
    if not v6:
        ttl = bytearray(frames[0])
        ttl[22] ^= 1  # the IPv4 header checksum fails, the TCP one holds (E2)
        frames.append(bytes(ttl))
    run_both(frames, [0.0] * len(frames))
    run_both(frames, [0.0] * len(frames), coalesce_dup_acks=True)


def odd_ack(kind: str) -> bytes:
    """A pure ACK with good checksums in a layout the fast path must leave to the rules."""
    opts: list[tuple[str, object]] = [("NOP", None), ("NOP", None), ("Timestamp", (7, 9))]
    v4 = IP(src="192.0.2.1", dst="198.51.100.7", flags="DF")
    v6 = IPv6(src="2001:db8::1", dst="2001:db8::2")
    l2: Packet = ETH
    l3: Packet = v4
    if kind == "mf":
        l3 = IP(src="192.0.2.1", dst="198.51.100.7", flags="MF")
    elif kind == "offset":
        l3 = IP(src="192.0.2.1", dst="198.51.100.7", frag=3)
    elif kind == "ip options":
        l3 = IP(src="192.0.2.1", dst="198.51.100.7", options=[b"\x01\x01\x01\x00"])
    elif kind == "hop-by-hop":
        l3 = v6 / IPv6ExtHdrHopByHop()
    elif kind == "version":
        l3 = IP(src="192.0.2.1", dst="198.51.100.7", version=5)
    elif kind == "version6":
        l3 = IPv6(src="2001:db8::1", dst="2001:db8::2", version=5)
    elif kind == "vlan":
        l2 = ETH / Dot1Q(vlan=7)
    elif kind == "mss":
        opts = [("MSS", 1400)]
    elif kind == "sack":
        opts = [("NOP", None), ("NOP", None), ("SAck", (10, 20))]
    elif kind == "two timestamps":
        opts = [("Timestamp", (7, 9)), ("Timestamp", (8, 9))]
    elif kind == "eol":
        opts = [("NOP", None), ("EOL", None), ("NOP", None), ("NOP", None)]
    reserved = 1 if kind == "reserved" else 0
    tcp = TCP(sport=40000, dport=443, ack=100, flags="A", options=opts, reserved=reserved)
    frame = bytes(l2 / l3 / tcp)
    if kind == "padding":
        frame = bytes(ETH / v4 / TCP(sport=40000, dport=443, flags="A")) + bytes(6)
    return frame


@pytest.mark.parametrize(
    "kind",
    ["mf", "offset", "ip options", "hop-by-hop", "version", "version6", "reserved", "vlan",
     "mss", "sack", "two timestamps", "eol", "padding"],
)  # fmt: skip
def test_layouts_left_to_the_rules_alike(kind: str) -> None:
    frame = odd_ack(kind)
    data = bytes(ETH / IP(src="192.0.2.1", dst="198.51.100.7", flags="DF") / TCP(
        sport=40000, dport=443, seq=0, ack=100, flags="A") / bytes(64))  # fmt: skip
    for options in ({}, {"coalesce_dup_acks": True}):
        run_both([frame, data, frame, frame[:-1], bytearray(frame)], [0.0] * 5, **options)


def test_a_clean_pure_ack_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a held unit the segment decode is not run; with one (or with duplicate-ACK
    coalescing, or a damaged ACK) it is."""
    calls: list[object] = []

    def counted(frame: bytes) -> object:
        calls.append(frame)
        return _scalar_seg(frame)

    monkeypatch.setattr(rsc, "_scalar_seg", counted)
    coalescer = RscCoalescer()
    for v6 in (False, True):
        out = coalescer.push(ack(v6), 0.0)
        assert [o.frame for o in out] == [ack(v6)] and out[0].rsc.CoalescedSegCount == 0
        assert out[0].checksum.TcpChecksumSucceeded and out[0].checksum.IpChecksumSucceeded != v6
    assert calls == []
    data = bytes(
        ETH / IP(src="192.0.2.1", dst="198.51.100.7", flags="DF")
        / TCP(sport=40000, dport=443, seq=5, ack=100, flags="A") / bytes(100)
    )  # fmt: skip
    coalescer.push(data, 0.0)  # held: the next ACK of the flow goes through the rules
    assert coalescer.flow_count == 1 and len(calls) == 1
    coalescer.push(ack(ts=False, ack_no=300), 0.0)  # ends the unit, indicated alone
    assert len(calls) == 2 and coalescer.flow_count == 0
    coalescer.push(data, 0.0)
    out = coalescer.push(ack(True), 0.0)  # another flow's ACK: fast, the unit stays held
    assert len(calls) == 3 and coalescer.flow_count == 1 and [o.frame for o in out] == [ack(True)]
    RscCoalescer(coalesce_dup_acks=True).push(ack(), 0.0)
    assert len(calls) == 4

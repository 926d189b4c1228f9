"""RSC ``push_batch`` (vectorized scan and rules) against per-frame ``push``: random
interleavings of segmented flows with corrupted checksums, PSH / FIN, reordering, pure and
duplicate ACKs, timestamps, odd sizes, VLAN tags and IPv6, split into random batches."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.packet import Packet

from ndis_offload.engine import rsc_batch, rsc_fast
from ndis_offload.engine.rsc import CoalescedFrame, RscCoalescer, _scalar_seg
from ndis_offload.engine.rsc_fast import FIELDS, scan
from ndis_offload.engine.transmit import segment_tcp
from ndis_offload.packet.checksum import (
    internet_checksum,
    pseudo_header_sum_ipv4,
    pseudo_header_sum_ipv6,
)

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")

# One segment event: (size, kind, extra); kinds other than "data" are rare variations.
KINDS = ("data",) * 12 + (
    "psh", "fin", "bad_tcp", "bad_ip", "swap", "ack", "dup", "window", "ts_back", "ecn", "tos",
    "ack_back", "option", "udp", "garbage",
)  # fmt: skip


BULK_KINDS = ("data",) * 20 + ("psh", "swap", "ts_back", "ecn", "tos", "ack_back")
"""Mostly data, with the variations that stay on the scan's path (they only break units)."""


@st.composite
def flow_spec(
    draw: st.DrawFn, index: int, kinds: tuple[str, ...] = KINDS
) -> tuple[bool, bool, bool, list[tuple[int, str]]]:
    v6 = draw(st.booleans())
    vlan = draw(st.integers(0, 3)) == 0
    ts = draw(st.booleans())
    jumbo = draw(st.integers(0, 3)) == 0
    sizes = st.integers(1, 9000 if jumbo else 1460)
    events = draw(st.lists(st.tuples(sizes, st.sampled_from(kinds)), min_size=1, max_size=30))
    return v6, vlan, ts, events


def build_flow(index: int, spec: tuple[bool, bool, bool, list[tuple[int, str]]]) -> list[bytes]:
    v6, vlan, ts, events = spec
    l2: Packet = ETH / Dot1Q(vlan=5) if vlan else ETH.copy()
    seq, ack, tsval, window = 1000 * index, 100, 100, 512
    frames: list[bytes] = []
    for size, kind in events:
        ip: Packet = (
            IPv6(src="2001:db8::1", dst="2001:db8::2", tc=4 if kind == "tos" else 0)
            if v6
            else IP(src="192.0.2.1", dst="198.51.100.7", flags="DF", id=index,
                    tos=4 if kind == "tos" else 0, ttl=64 - len(frames) % 3)
        )  # fmt: skip
        if kind == "udp":
            frames.append(bytes(l2 / ip / UDP(sport=5000 + index, dport=53) / bytes(size % 64)))
            continue
        if kind == "garbage":
            frames.append(bytes(l2 / ip)[: 14 + size % 40])
            continue
        flags = {"psh": "PA", "fin": "FA", "ecn": "AE"}.get(kind, "A")
        opts: list[tuple[str, object]] = []
        stamp = tsval - 50 if kind == "ts_back" else tsval
        if ts:
            opts = [("NOP", None), ("NOP", None), ("Timestamp", (stamp, 7))]
        if kind == "option":
            opts = [("Timestamp", (stamp, 7)), ("NOP", None), ("NOP", None)] if ts else [
                ("MSS", 1400)
            ]  # fmt: skip
        payload = b"" if kind in ("ack", "dup", "window") else bytes(
            (seq + i * 7) & 0xFF for i in range(size)
        )  # fmt: skip
        if kind == "ack":
            ack += size
        if kind == "window":
            window += 1
        tcp = TCP(
            sport=40000 + index, dport=443, seq=seq, ack=ack - 5 if kind == "ack_back" else ack,
            flags=flags, window=window, options=opts,
        )  # fmt: skip
        frame = bytearray(bytes(l2 / ip / tcp / payload))
        if kind == "bad_tcp":
            frame[-1 if payload else -5] ^= 0x40
        elif kind == "bad_ip" and not v6:
            frame[(18 if vlan else 14) + 8] ^= 1  # TTL: the header checksum fails
        frames.append(bytes(frame))
        if kind == "swap" and len(frames) >= 2:
            frames[-1], frames[-2] = frames[-2], frames[-1]
        seq = (seq + len(payload)) & 0xFFFFFFFF
        tsval += size % 3
        ack += size % 5
    return frames


@st.composite
def scenario(
    draw: st.DrawFn, min_flows: int = 1, max_flows: int = 4, kinds: tuple[str, ...] = KINDS
) -> tuple[list[bytes], list[int], dict[str, object]]:
    count = draw(st.integers(min_flows, max_flows))
    flows = [build_flow(i, draw(flow_spec(i, kinds))) for i in range(count)]
    frames: list[bytes] = []
    cursors = [0] * count
    while any(c < len(f) for c, f in zip(cursors, flows, strict=True)):
        live = [i for i in range(count) if cursors[i] < len(flows[i])]
        pick = draw(st.sampled_from(live))
        frames.append(flows[pick][cursors[pick]])
        cursors[pick] += 1
    cuts = sorted(draw(st.lists(st.integers(0, len(frames)), max_size=6 if count < 6 else 4)))
    options: dict[str, object] = {
        "flush_on_psh": draw(st.booleans()),
        "coalesce_dup_acks": draw(st.booleans()),
        "max_flows": draw(st.sampled_from([1, 2, 3, 64] if count < 6 else [64])),
        "timeout": draw(st.sampled_from([0.5, 2.5, 100.0] if count < 6 else [100.0])),
    }
    return frames, [0, *cuts, len(frames)], options


def compare(frames: list[bytes], cuts: list[int], **options: object) -> list[CoalescedFrame]:
    single = RscCoalescer(**options)  # type: ignore[arg-type]
    batch = RscCoalescer(**options)  # type: ignore[arg-type]
    expected: list[CoalescedFrame] = []
    got: list[CoalescedFrame] = []
    for number, (lo, hi) in enumerate(zip(cuts, cuts[1:], strict=False)):
        now = float(number)
        for frame in frames[lo:hi]:
            expected += single.push(frame, now)
        if lo == hi:  # an empty batch only expires SCUs
            expected += single.flush(now)
        got += batch.push_batch(frames[lo:hi], now)
        assert got == expected
        assert list(batch._flows) == list(single._flows)  # the same SCUs, in the same order
        assert batch.exceptions == single.exceptions  # E1-E8 counted alike (Aborts)
    expected += single.flush()
    got += batch.flush()
    assert got == expected
    return got


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_push_batch_equals_push(case: tuple[list[bytes], list[int], dict[str, object]]) -> None:
    frames, cuts, options = case
    compare(frames, cuts, **options)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario(min_flows=6, max_flows=10, kinds=BULK_KINDS))
def test_push_batch_equals_push_many_flows(
    case: tuple[list[bytes], list[int], dict[str, object]],
) -> None:
    """Batches of many bulk flows whose units continue across batches or break (reordering,
    timestamps or ACKs going back, ECN / TOS changes, PSH) give what per-frame ``push``
    gives, exception counts included."""
    frames, cuts, options = case
    compare(frames, cuts, **options)


@pytest.mark.parametrize("flows", [1, 3, 40])
@pytest.mark.parametrize("batch", [1, 7, 64])
def test_lso_bursts_split_across_batches(flows: int, batch: int) -> None:
    """Bursts beyond 65535 bytes (exception 7 inside a batch and across batches), with
    timestamps, odd MSS, IPv4 and IPv6, VLAN."""
    frames: list[list[bytes]] = []
    for index in range(flows):
        l2: Packet = ETH / Dot1Q(vlan=index) if index % 3 == 2 else ETH
        ip: Packet = IPv6(src="2001:db8::1", dst="2001:db8::2") if index % 2 else IP(
            src="192.0.2.1", dst="198.51.100.7", flags="DF"
        )  # fmt: skip
        segments: list[bytes] = []
        for part in range(2):  # two 50 000-byte sends, back to back: 100 000 bytes in order
            tcp = TCP(
                sport=40000 + index,
                dport=443,
                seq=index + 50_000 * part,
                ack=1,
                flags="A",
                options=[("NOP", None), ("NOP", None), ("Timestamp", (5, 9))],
            )
            data = bytes((i * 31 + index) & 0xFF for i in range(50_000))
            segments += segment_tcp(bytes(l2 / ip / tcp / data), 1447 + index % 2).frames
        frames.append(segments)
    interleaved = [f for group in zip(*frames, strict=False) for f in group]
    interleaved += [f for group in frames for f in group[min(map(len, frames)) :]]
    cuts = [*range(0, len(interleaved), batch), len(interleaved)]
    out = compare(interleaved, cuts, timeout=1e9, max_flows=64)
    assert any(o.rsc.CoalescedSegCount > 1 for o in out)


@pytest.mark.parametrize("varying", ["port", "address", "mac", "all"])
def test_one_layout_batches_grouped_by_every_key_word(varying: str) -> None:
    """Bulk flows of one layout that differ in the ports, an address, the MAC addresses or
    all of them (one, two or many varying flow-key words: the sort and hash groupings of
    the one-layout scan) give what per-frame ``push`` gives, one unit per send."""
    per_flow = []
    for index in range(6):
        mac = f"02:00:00:00:00:{index + 1 if varying in ('mac', 'all') else 1:02x}"
        src = f"192.0.2.{index + 1}" if varying in ("address", "all") else "192.0.2.1"
        sport = 40000 + index if varying in ("port", "all") else 40000
        tcp = TCP(sport=sport, dport=443, seq=index * 99, ack=1, flags="PA",
                  options=[("NOP", None), ("NOP", None), ("Timestamp", (5, 9))])  # fmt: skip
        ip = IP(src=src, dst="198.51.100.7", flags="DF")
        data = bytes((i * 7 + index) & 0xFF for i in range(20_000))
        pkt = Ether(src=mac, dst="02:00:00:00:00:99") / ip / tcp / data
        per_flow.append(segment_tcp(bytes(pkt), 1448).frames)
    frames = [f for group in zip(*per_flow, strict=True) for f in group]
    assert scan(frames[:24]).one_match  # the one-layout path took the batch
    cuts = [*range(0, len(frames), 24), len(frames)]
    out = compare(frames, cuts, timeout=1e9, max_flows=64)
    assert [o.rsc.CoalescedSegCount for o in out] == [len(per_flow[0])] * 6


def test_scan_rejects_what_the_scalar_path_must_see() -> None:
    """Only plain data segments with good checksums are scanned; the rest is left alone."""
    tcp = TCP(sport=1, dport=2, seq=5, ack=1, flags="A")
    good = bytes(ETH / IP(src="10.0.0.1", dst="10.0.0.2") / tcp / (b"x" * 11))
    bad = bytearray(good)
    bad[-1] ^= 1
    pure_ack = bytes(ETH / IP(src="10.0.0.1", dst="10.0.0.2") / tcp)
    options = bytes(
        ETH / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(flags="A", options=[("MSS", 1)]) / b"y"
    )
    fragment = bytes(ETH / IP(src="10.0.0.1", dst="10.0.0.2", flags="MF") / tcp / b"z")
    result = scan([good, bytes(bad), pure_ack, options, fragment, good[:20], good])
    assert len(FIELDS) == result.table.shape[0]
    assert result.table[FIELDS.index("index")].tolist() == [0, 6]
    assert result.heads == [0, 2] and len(result.keys) == 1  # one flow


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(flow_spec(0), min_size=1, max_size=3))
def test_scan_fields_match_the_scalar_parser(
    specs: list[tuple[bool, bool, bool, list[tuple[int, str]]]],
) -> None:
    """Every scanned segment's key and fields are what ``_scalar_seg`` reads; every plain
    data segment (no other option layout) is scanned."""
    frames = [f for index, spec in enumerate(specs) for f in build_flow(index, spec)]
    result = scan(frames)
    rows = dict(zip(result.table[FIELDS.index("index")].tolist(), result.table.T.tolist(),
                    strict=True))  # fmt: skip
    positions = list(rows)
    assert len(set(result.keys)) == len(result.keys)  # one group per flow
    for flow, scanned_key in enumerate(result.keys):
        members = positions[result.heads[flow] : result.heads[flow + 1]]
        assert members == sorted(members)  # arrival order within the flow
        for position in members:
            assert scanned_key == _scalar_seg(frames[position])[1]
    for position, frame in enumerate(frames):
        seg, _, _ = _scalar_seg(frame)
        data = seg is not None and seg[1] and seg[6] > 0
        assert data or position not in rows
        if seg is None or not data:
            continue
        if position not in rows:  # only other option layouts are left to the scalar path
            assert (seg[7] >> 16) & 0x3F not in (24, 0x3F)
            continue
        row = dict(zip(FIELDS, rows[position], strict=True))
        _, _, seq, ack, win, flags, plen, match, ttl, tsval, tsecr, l3, _, _, end, _ = seg
        nxt = (seq + plen) & 0xFFFFFFFF
        assert (row["nxt"], row["ack"], row["win"], row["flags"]) == (nxt, ack, win, flags)
        assert (row["plen"], row["match"], row["ttl"]) == (plen, match, ttl)
        assert (row["tsval"], row["tsecr"], row["size"]) == (tsval, tsecr, end - l3)
        payload = result.buffer[row["pend"] - plen : row["pend"]]
        assert payload == frame[end - plen : end]


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
@pytest.mark.parametrize("link", ["plain", "vlan", "qinq"])
def test_one_layout_path_equals_the_per_frame_checks(v6: bool, link: str) -> None:
    """A batch of one link / header layout is checked against its first frame; the result
    equals checking every frame on its own (``_scan_shape``), for one length (cached
    constants: lengths 99-102 share a stride) and for several, and a frame that breaks the
    layout (a bad checksum) sends the batch to the per-frame checks."""
    l2: Packet = {"plain": ETH, "vlan": ETH / Dot1Q(vlan=3),
                  "qinq": ETH / Dot1AD(vlan=4) / Dot1Q(vlan=3)}[link]  # fmt: skip
    ip: Packet = IPv6(src="2001:db8::1", dst="2001:db8::2") if v6 else IP(
        src="192.0.2.1", dst="198.51.100.7"
    )  # fmt: skip
    for sizes in (
        [1] * 6, [2] * 6, [3] * 6, [4] * 6, [1448] * 5 + [300], [1448] * 2 + [300] + [1448] * 3,
        [300] + [1448] * 5, [7, 8, 9, 10, 11, 12],
    ):  # fmt: skip
        frames = []
        for i, size in enumerate(sizes):
            tcp = TCP(sport=1000 + i % 2, dport=80, seq=10 * i, ack=1, flags="A")
            frames.append(bytes(l2 / ip / tcp / bytes((i + k) & 0xFF for k in range(size))))
        buffer, joined = rsc_fast._join(frames)
        starts, lengths = joined.starts, joined.lengths
        for frame, start, size in zip(frames, starts.tolist(), lengths.tolist(), strict=True):
            assert buffer[start : start + size] == frame and start % 4 == 2
        w4 = np.frombuffer(buffer, dtype="<u4", count=len(buffer) // 4)
        shape = rsc_fast._shape_of_frame(frames[0])
        assert shape is not None
        fast = rsc_fast._scan_layout(shape, frames, w4, joined)
        assert fast is not None, "the one-layout path takes the batch"
        each = rsc_fast._scan_shape(shape, None, w4, starts, lengths)
        assert fast[0].tolist() == each[0].tolist()
        assert fast[1:] == each[1:]
        bad = bytearray(frames[3])
        bad[-1] ^= 0x10
        frames[3] = bytes(bad)
        buffer, joined = rsc_fast._join(frames)
        w4 = np.frombuffer(buffer, dtype="<u4", count=len(buffer) // 4)
        assert rsc_fast._scan_layout(shape, frames, w4, joined) is None
        result = scan(frames)
        assert 3 not in result.table[FIELDS.index("index")].tolist()
        assert len(result.table[0]) == len(frames) - 1


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
@pytest.mark.parametrize(("link", "at"), [("plain", 12), ("vlan", 16), ("vlan", 12)])
def test_a_frame_of_another_ethertype_leaves_the_one_layout_path(
    v6: bool, link: str, at: int
) -> None:
    """A frame among a bulk batch whose EtherType (or VLAN TPID) is not the first frame's,
    all else equal, is not a segment of the first frame's layout: the scan leaves it to the
    per-frame path, and ``push_batch`` equals ``push``."""
    l2: Packet = ETH / Dot1Q(vlan=3) if link == "vlan" else ETH
    ip: Packet = IPv6(src="2001:db8::1", dst="2001:db8::2") if v6 else IP(
        src="192.0.2.1", dst="198.51.100.7", flags="DF"
    )  # fmt: skip
    frames = []
    for i in range(8):
        tcp = TCP(sport=1000, dport=80, seq=1000 * i, ack=1, flags="A")
        frames.append(bytes(l2 / ip / tcp / bytes(range(i, i + 1000 % 256))))
    other = bytearray(frames[5])
    other[at : at + 2] = b"\x88\xb5"  # a local experimental EtherType
    frames[5] = bytes(other)
    assert 5 not in scan(frames).table[FIELDS.index("index")].tolist()
    compare(frames, [0, len(frames)], timeout=1e9)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(1, 3000), min_size=1, max_size=70),
    st.sampled_from(["as drawn", "one length", "one length but the last", "one pad"]),
)
def test_join_places_every_frame_at_2_mod_4_between_zeros(lengths: list[int], kind: str) -> None:
    """Frames joined by ``_join`` (with their common pad as separator, or piece by piece)
    start at ``2 (mod 4)``, in order, with only zero bytes around them and enough after the
    last one for every header word the scan reads."""
    if kind == "one length":
        lengths = [lengths[0]] * len(lengths)
    elif kind == "one length but the last":
        lengths = [lengths[0]] * (len(lengths) - 1) + lengths[-1:]
    elif kind == "one pad":
        lengths = [size - (size & 3) + (lengths[0] & 3) + 4 for size in lengths]
    frames = [bytes((i + k) % 255 + 1 for k in range(size)) for i, size in enumerate(lengths)]
    buffer, joined = rsc_fast._join(frames)
    assert joined.lengths.tolist() == lengths
    outside = bytearray(buffer)
    end = 0
    for frame, start in zip(frames, joined.starts.tolist(), strict=True):
        assert start % 4 == 2 and start >= end + 2
        assert buffer[start : start + len(frame)] == frame
        outside[start : start + len(frame)] = bytes(len(frame))
        end = start + len(frame)
    assert not any(outside), "only zeros between and around the frames"
    assert len(buffer) >= joined.starts[-1] - 2 + 4 * rsc_fast._WORDS
    if len(frames) > 1:
        assert joined.stride == joined.starts[1] - joined.starts[0]


def test_flow_grouping_is_exact_even_when_hashes_collide() -> None:
    """Flows told apart by more than two key words (IPv6 addresses) are grouped by a hash;
    with every hash equal (a forced collision) the grouping falls back to the key bytes and
    is the same, and no two flows merge."""
    frames = []
    for i in range(12):
        src = f"2001:db8:{i % 3}::{i % 4 + 1}"
        tcp = TCP(sport=1000 + i % 2, dport=80, seq=7 * i, ack=1, flags="A")
        frames.append(bytes(ETH / IPv6(src=src, dst="2001:db8::99") / tcp / b"abcdefgh"))
    buffer, joined = rsc_fast._join(frames)
    starts = joined.starts
    w4 = np.frombuffer(buffer, dtype="<u4", count=len(buffer) // 4)
    shape = rsc_fast._shape_of_frame(frames[0])
    assert shape is not None
    ws = starts >> 2
    key = rsc_fast._gather(shape, w4, ws)[shape.key_row :]
    collide = dataclasses.replace(shape, hash=np.zeros_like(shape.hash))
    for s in (shape, collide):
        order, heads, keys = rsc_fast._group(key, ws, w4, s)
        assert order is not None
        groups = [sorted(order[heads[f] : heads[f + 1]].tolist()) for f in range(len(keys))]
        assert len(set(keys)) == len(keys) == 12
        for f, members in enumerate(groups):
            assert {_scalar_seg(frames[m])[1] for m in members} == {keys[f]}


@given(
    st.integers(1, 40),
    st.integers(0, 300),
    st.integers(0, 40),
    st.integers(0, 9),
    st.lists(st.integers(-3, 3), max_size=3),
    st.randoms(use_true_random=False),
)
def test_block_payloads_equal_the_per_segment_views(
    count: int, size: int, gap: int, first: int, nudges: list[int], rnd: random.Random
) -> None:
    """A long evenly spaced block is copied out as one piece (``_Payloads.block``); whatever
    the layout (nudged ends or lengths break the even spacing), the pieces joined equal the
    segments' payloads joined."""
    step = size + gap
    pends = [first + size + step * i for i in range(count)]
    plens = [size] * count
    for nudge in nudges:  # uneven spacing or lengths
        at = rnd.randrange(count)
        if nudge > 0:
            pends[at] += nudge
            plens[at] += nudge
        elif nudge < 0 and plens[at] >= -nudge:
            plens[at] += nudge
    buffer = rnd.randbytes(max(pends) + 5)
    payloads = rsc_batch._Payloads(buffer, _columns(pends, plens), 0)
    lo = rnd.randrange(count)
    hi = rnd.randrange(lo, count) + 1
    got = b"".join(payloads.block(lo, hi))
    pieces = zip(pends[lo:hi], plens[lo:hi], strict=True)
    assert got == b"".join(buffer[b - n : b] for b, n in pieces)


@pytest.mark.parametrize("tail", [1, 288, 1447, 1448, 1449])
def test_a_sends_short_tail_is_a_piece_of_its_own(tail: int) -> None:
    """A block of one MSS ending in a send's tail of another length: the evenly spaced
    segments are copied as one piece and the tail is a second piece (not a view per
    segment); the pieces joined are the payloads joined."""
    step, size, count = 1452, 1448, 45
    pends = [64 + size + step * i for i in range(count)]
    plens = [size] * count
    plens[-1] = tail
    pends[-1] += tail - size
    buffer = random.Random(tail).randbytes(max(pends) + 5)
    expected = b"".join(buffer[b - n : b] for b, n in zip(pends, plens, strict=True))
    for stride in (0, -1, step):  # checked spacing, one flow in order, a known stride
        payloads = rsc_batch._Payloads(buffer, _columns(pends, plens), stride)
        pieces = payloads.block(0, count)
        assert len(pieces) == (1 if tail == size else 2)
        assert b"".join(pieces) == expected
        for lo, hi in ((0, count - 1), (3, count), (count - 20, count), (1, 17), (40, 45)):
            got = b"".join(payloads.block(lo, hi))
            assert got == b"".join(
                buffer[b - n : b] for b, n in zip(pends[lo:hi], plens[lo:hi], strict=True)
            )


def _columns(pends: list[int], plens: list[int]) -> npt.NDArray[np.int64]:
    """A scan table whose payload ends and lengths are ``pends`` and ``plens``."""
    table = np.zeros((len(FIELDS), len(pends)), dtype=np.int64)
    table[FIELDS.index("pend")] = pends
    table[FIELDS.index("plen")] = plens
    return table


@settings(max_examples=30, deadline=None)
@given(st.integers(536, 1460), st.integers(1, 3), st.integers(8, 80), st.booleans())
def test_bulk_blocks_copied_as_one_piece_equal_push(
    mss: int, flows: int, batch: int, v6: bool
) -> None:
    """Bulk sends of one MSS (the blocks ``_Payloads`` copies as one piece) give what
    per-frame ``push`` gives."""
    per_flow = []
    for index in range(flows):
        ip: Packet = IPv6(src="2001:db8::1", dst="2001:db8::2") if v6 else IP(
            src="192.0.2.1", dst="198.51.100.7", flags="DF"
        )  # fmt: skip
        tcp = TCP(sport=40000 + index, dport=443, seq=index * 7, ack=1, flags="PA",
                  options=[("NOP", None), ("NOP", None), ("Timestamp", (5, 9))])  # fmt: skip
        data = bytes((i * 13 + index) & 0xFF for i in range(40_000))
        per_flow.append(segment_tcp(bytes(ETH / ip / tcp / data), mss).frames)
    frames = [f for group in zip(*per_flow, strict=True) for f in group]
    cuts = [*range(0, len(frames), batch), len(frames)]
    out = compare(frames, cuts, timeout=1e9, max_flows=64)
    assert sum(o.rsc.CoalescedSegCount for o in out) == len(frames)


@settings(max_examples=150, deadline=None)
@given(
    st.booleans(),
    st.booleans(),
    st.integers(2, 12),
    st.integers(1, 1460),
    st.integers(1, 1460),
    st.none() | st.tuples(st.integers(0, 11), st.integers(0, 2000), st.integers(1, 255)),
)
def test_one_stride_batch_equals_the_per_frame_checks(
    v6: bool,
    ts: bool,
    count: int,
    size: int,
    last: int,
    damage: tuple[int, int, int] | None,
) -> None:
    """Frames of one length but the last (a send's tail) share a stride and the cached
    constants; with any one byte of any frame changed (the last one's too), the one-layout
    path either declines the batch or gives what checking every frame on its own gives."""
    frames = _tail_cut_frames(ETH, v6, ts, count, size, last)
    shape = rsc_fast._shape_of_frame(bytes(frames[0]))  # the layout, before any damage
    assert shape is not None
    if damage is not None:
        which, at, flip = damage
        frame = frames[which % count]
        frame[at % len(frame)] ^= flip
    _assert_one_layout_path_agrees(shape, frames, must_take=damage is None, one_stride=True)


def _tail_cut_frames(
    l2: Packet, v6: bool, ts: bool, count: int, size: int, last: int
) -> list[bytearray]:
    """``count`` TCP frames of three flows with ``size`` payload bytes but the last
    (``last``), after ``l2``."""
    ip: Packet = IPv6(src="2001:db8::1", dst="2001:db8::2") if v6 else IP(
        src="192.0.2.1", dst="198.51.100.7", flags="DF"
    )  # fmt: skip
    opts = [("NOP", None), ("NOP", None), ("Timestamp", (5, 9))] if ts else []
    frames = []
    for i in range(count):
        tcp = TCP(sport=1000 + i % 3, dport=80, seq=10 * i, ack=1, flags="A", options=opts)
        length = last if i == count - 1 else size
        frames.append(
            bytearray(bytes(l2 / ip / tcp / bytes((i + k) & 0xFF for k in range(length))))
        )
    return frames


def _assert_one_layout_path_agrees(
    shape: rsc_fast._Shape, frames: list[bytearray], *, must_take: bool, one_stride: bool
) -> None:
    """The one-layout path over ``frames`` (of ``shape``) declines them, or gives what
    checking every frame on its own gives; it takes them when ``must_take``."""
    joined = [bytes(f) for f in frames]
    buffer, joining = rsc_fast._join(joined)
    if one_stride:
        assert joining.pattern[0] < 0, "one length but the last: one stride"
    w4 = np.frombuffer(buffer, dtype="<u4", count=len(buffer) // 4)
    fast = rsc_fast._scan_layout(shape, joined, w4, joining)
    each = rsc_fast._scan_shape(shape, None, w4, joining.starts, joining.lengths)
    if must_take:
        assert fast is not None
    if fast is not None:
        assert fast[0].tolist() == each[0].tolist()
        assert fast[1:] == each[1:]


def _fix_checksums(frame: bytearray, l3: int, v6: bool) -> None:
    """Recompute the IPv4 header (20 bytes) and TCP checksums of ``frame`` over its bytes as
    they are, so that a header changed on purpose still passes the checksum checks."""
    l4 = l3 + (40 if v6 else 20)
    if v6:
        src, dst = bytes(frame[l3 + 8 : l3 + 24]), bytes(frame[l3 + 24 : l4])
        pseudo = pseudo_header_sum_ipv6(src, dst, 6, len(frame) - l4)
    else:
        frame[l3 + 10 : l3 + 12] = b"\0\0"
        frame[l3 + 10 : l3 + 12] = internet_checksum(frame[l3:l4]).to_bytes(2, "big")
        src, dst = bytes(frame[l3 + 12 : l3 + 16]), bytes(frame[l3 + 16 : l4])
        pseudo = pseudo_header_sum_ipv4(src, dst, 6, len(frame) - l4)
    frame[l4 + 16 : l4 + 18] = b"\0\0"
    frame[l4 + 16 : l4 + 18] = internet_checksum(frame[l4:], pseudo).to_bytes(2, "big")


@settings(max_examples=200, deadline=None)
@given(
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.integers(2, 10),
    st.integers(1, 600),
    st.integers(1, 600),
    st.lists(st.tuples(st.integers(0, 9), st.integers(0, 99), st.integers(1, 255)), max_size=3),
)
def test_one_layout_path_with_changed_headers_equals_the_per_frame_checks(
    v6: bool,
    ts: bool,
    vlan: bool,
    count: int,
    size: int,
    last: int,
    changes: list[tuple[int, int, int]],
) -> None:
    """Header bytes of any frames changed and their checksums made right again: the
    one-layout path either declines the batch or gives what checking every frame on its own
    gives (every header bit it takes from the first frame is compared)."""
    l2: Packet = ETH / Dot1Q(vlan=5) if vlan else ETH
    frames = _tail_cut_frames(l2, v6, ts, count, size, last)
    shape = rsc_fast._shape_of_frame(bytes(frames[0]))  # the layout, before any change
    assert shape is not None
    for which, at, flip in changes:
        frame = frames[which % count]
        frame[at % len(frame)] ^= flip
        _fix_checksums(frame, shape.l3, v6)
    _assert_one_layout_path_agrees(shape, frames, must_take=not changes, one_stride=False)


@st.composite
def bulk_dpcs(draw: st.DrawFn) -> tuple[list[bytes], list[int], bool]:
    """Many bulk flows whose ACK and timestamps stay put within a send (a unit's tail is
    then equal to the next segment's fields: one ``extend_units`` call per DPC), cut
    into DPCs of random sizes, with losses, bad checksums, PSH, ECN / timestamp changes
    and odd payload lengths."""
    count = draw(st.integers(2, 12))
    frames = _bulk_frames(draw, count, draw(st.booleans()), (1, 44))
    dpc = draw(st.integers(1, 80))
    return frames, [*range(0, len(frames), dpc), len(frames)], draw(st.booleans())


def _bulk_frames(
    draw: st.DrawFn, count: int, v6: bool, mss_counts: tuple[int, int], keep: int = 12
) -> list[bytes]:
    """``count`` bulk flows of two sends each (of ``mss_counts`` MSS, plus 0-3 bytes),
    round robin, with losses, bad checksums, PSH, ECN, timestamp and TTL changes (each 1
    in ``keep + 6`` segments)."""
    mss = draw(st.sampled_from([536, 1000, 1447, 1448]))
    per_flow: list[list[bytes]] = []
    for index in range(count):
        segments = []
        seq = index * 7919
        for send in range(2):  # two sends back to back: a unit may go on past the first's tail
            hops = 64 - 5 * send  # (the second with a lower TTL / Hop Limit)
            ip: Packet = IPv6(src="2001:db8::1", dst="2001:db8::2", hlim=hops) if v6 else IP(
                src="192.0.2.1", dst="198.51.100.7", flags="DF", ttl=hops
            )  # fmt: skip
            size = draw(st.integers(*mss_counts)) * mss + draw(st.integers(0, 3))
            tcp = TCP(sport=40000 + index, dport=443, seq=seq, ack=1, flags="PA",
                      options=[("NOP", None), ("NOP", None), ("Timestamp", (5, 9))])  # fmt: skip
            data = bytes(range(256)) * (size // 256) + bytes(size % 256)
            segments += segment_tcp(bytes(ETH / ip / tcp / data), mss).frames
            seq += size
        edited: list[bytes] = []
        for segment in segments:
            events = ("drop", "bad", "psh", "ecn", "ts", "ttl")
            event = draw(st.sampled_from(("keep",) * keep + events))
            frame = bytearray(segment)
            if event == "drop":
                continue
            if event == "bad":
                frame[-1] ^= 0x21
            elif event in ("psh", "ecn", "ts", "ttl"):
                l4 = 14 + (40 if v6 else 20)
                if event == "ttl":  # a lower TTL / Hop Limit (the unit keeps the minimum)
                    frame[14 + (7 if v6 else 8)] -= 1 + len(edited) % 3
                elif event == "psh":
                    frame[l4 + 13] |= 0x08
                elif event == "ecn":
                    frame[l4 + 13] |= 0x40  # ECE: exception 8 on both sides of it
                else:
                    frame[l4 + 24] ^= 0x80  # TSval jumps ahead (or back) by 2**31
                frame = bytearray(_fix_tcp_checksum(bytes(frame), v6))
            edited.append(bytes(frame))
        per_flow.append(edited)
    frames: list[bytes] = []
    cursors = [0] * count
    while any(c < len(f) for c, f in zip(cursors, per_flow, strict=True)):
        for i in range(count):  # round robin, as an LSO burst per flow arrives interleaved
            if cursors[i] < len(per_flow[i]):
                frames.append(per_flow[i][cursors[i]])
                cursors[i] += 1
    return frames


def _fix_tcp_checksum(frame: bytes, v6: bool) -> bytes:
    """``frame`` with its TCP (and IPv4 header) checksum recomputed (scapy as the
    oracle)."""
    packet = Ether(frame)
    layer = packet[IPv6] if v6 else packet[IP]
    del layer[TCP].chksum
    if not v6:
        del layer.chksum
    return bytes(packet)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bulk_dpcs())
def test_bulk_dpcs_of_many_flows_equal_push(case: tuple[list[bytes], list[int], bool]) -> None:
    """DPCs in which each flow's segments continue its unit as it stands (one block per
    flow: one ``extend_units`` call for the DPC) give what per-frame ``push`` gives, with the
    units that break, lose a segment or meet a bad checksum, exceptions counted alike."""
    frames, cuts, flush_on_psh = case
    compare(frames, cuts, timeout=1e9, max_flows=64, flush_on_psh=flush_on_psh)


@st.composite
def held_dpcs(draw: st.DrawFn) -> tuple[list[bytes], list[int], list[str], dict[str, object]]:
    """Bulk flows round robin in DPCs of a few segments per flow (the same mix and layout
    DPC after DPC: their growth is held, ``rsc_pending``), with rare events that end the
    holding: a loss, a bad checksum, PSH, ECN, timestamps, odd lengths, a DPC pushed frame
    by frame, ``flush(now)``, ``flush()``, units expiring."""
    count = draw(st.integers(5, 9))
    keep = draw(st.sampled_from([20, 60, 300]))  # events: 1 in keep + 6 segments
    frames = _bulk_frames(draw, count, draw(st.booleans()), (4, 20), keep)
    dpc = count * draw(st.integers(1, 3))
    cuts = [*range(0, len(frames), dpc), len(frames)]
    steps = ("batch",) * draw(st.sampled_from([3, 30])) + ("push", "flush_now", "flush")
    actions = [draw(st.sampled_from(steps)) for _ in cuts[1:]]
    options: dict[str, object] = {
        "flush_on_psh": draw(st.booleans()),
        "timeout": draw(st.sampled_from([1e9, 1e9, 3.5])),
    }
    return frames, cuts, actions, options


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(held_dpcs())
def test_held_growth_equals_push(
    case: tuple[list[bytes], list[int], list[str], dict[str, object]],
) -> None:
    """Bulk DPCs whose units' growth is held as arrays and settled later (by a DPC that
    breaks a unit, another mix, ``push``, ``flush``, an expiry) give what per-frame
    ``push`` gives (held from 5 flows on here)."""
    frames, cuts, actions, options = case
    single = RscCoalescer(max_flows=64, **options)  # type: ignore[arg-type]
    batch = RscCoalescer(max_flows=64, **options)  # type: ignore[arg-type]
    expected: list[CoalescedFrame] = []
    got: list[CoalescedFrame] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rsc_batch, "_HOLD_FLOWS", 5)
        for number, (lo, hi) in enumerate(zip(cuts, cuts[1:], strict=False)):
            now, action = float(number), actions[number]
            if action == "flush_now":
                expected += single.flush(now)
                got += batch.flush(now)
            elif action == "flush":
                expected += single.flush()
                got += batch.flush()
            for frame in frames[lo:hi]:
                expected += single.push(frame, now)
            if action == "push":
                for frame in frames[lo:hi]:
                    got += batch.push(frame, now)
            else:
                got += batch.push_batch(frames[lo:hi], now)
            assert got == expected
            assert list(batch._flows) == list(single._flows)
            assert batch.exceptions == single.exceptions
    expected += single.flush()
    got += batch.flush()
    assert got == expected


def test_a_bulk_mix_of_many_flows_holds_its_growth() -> None:
    """DPC after DPC of one mix of 16 bulk flows, the growth after the second DPC is held
    (not joined unit by unit); the units leave as per-frame ``push`` gives them."""
    per_flow = []
    for index in range(16):
        tcp = TCP(sport=40000 + index, dport=443, seq=index * 99, ack=1, flags="PA",
                  options=[("NOP", None), ("NOP", None), ("Timestamp", (5, 9))])  # fmt: skip
        pkt = ETH / IP(src="192.0.2.1", dst="198.51.100.7", flags="DF") / tcp / bytes(20 * 1448)
        per_flow.append(segment_tcp(bytes(pkt), 1448).frames)
    frames = [f for group in zip(*per_flow, strict=True) for f in group]
    rsc = RscCoalescer(timeout=1e9)
    for start in range(0, 64 * 3, 64):
        assert rsc.push_batch(frames[start : start + 64], 0.0) == []
    assert rsc._pending is not None and rsc._pending.batches == 1
    cuts = [*range(0, len(frames), 64), len(frames)]
    out = compare(frames, cuts, timeout=1e9, max_flows=64)
    assert [o.rsc.CoalescedSegCount for o in out] == [20] * 16


def test_a_recurring_mix_of_ports_from_another_host_is_its_own_flows() -> None:
    """Two hosts sending from the same ports in the same interleaving (the same varying
    flow-key words, other addresses): each batch's flows are its own host's though the
    grouping of a recurring mix of flows is made once, and coalescing equals per-frame
    ``push``."""

    def burst(src: str) -> list[bytes]:
        per_flow = []
        for index in range(4):
            tcp = TCP(sport=40000 + index, dport=443, seq=index * 99, ack=1, flags="A",
                      options=[("NOP", None), ("NOP", None), ("Timestamp", (5, 9))])  # fmt: skip
            pkt = ETH / IP(src=src, dst="198.51.100.7", flags="DF") / tcp / bytes(8 * 1448)
            per_flow.append(segment_tcp(bytes(pkt), 1448).frames)
        return [f for group in zip(*per_flow, strict=True) for f in group]

    a, b = burst("192.0.2.1"), burst("192.0.2.2")
    frames = a[:16] + b[:16] + a[16:] + b[16:]
    found = [scan(frames[lo : lo + 16]) for lo in range(0, 64, 16)]
    assert [_scalar_seg(frames[lo + f])[1] for lo in range(0, 64, 16) for f in range(4)] == [
        key for fast in found for key in fast.keys
    ]
    compare(frames, [0, 16, 32, 48, 64], timeout=1e9, max_flows=64)


@st.composite
def one_flow_stream(draw: st.DrawFn) -> tuple[list[bytes], list[int], bool, bool]:
    """One flow's sends back to back (the live TAP wire's receive path), IPv4 or IPv6, with
    or without timestamps, a send's odd tail, losses, bad checksums, PSH, ECN, timestamps
    jumping, a TTL change, cut into DPCs of random sizes 1-80. Also says whether it is
    clean (no edits: every DPC is one layout of one flow)."""
    v6 = draw(st.booleans())
    ts = draw(st.booleans())
    mss = draw(st.sampled_from([536, 1000, 1447, 1448, 1460]))
    ip: Packet = IPv6(src="2001:db8::1", dst="2001:db8::2") if v6 else IP(
        src="192.0.2.1", dst="198.51.100.7", flags="DF"
    )  # fmt: skip
    options = [("NOP", None), ("NOP", None), ("Timestamp", (5, 9))] if ts else []
    segments: list[bytes] = []
    seq = draw(st.integers(0, 0xFFFFFFFF))  # (wraps modulo 2**32 sometimes)
    for _ in range(draw(st.integers(1, 4))):
        size = draw(st.integers(1, 44)) * mss + draw(st.integers(0, 3))
        tcp = TCP(sport=40000, dport=443, seq=seq, ack=1, flags="PA", options=options)
        data = bytes(range(251)) * (size // 251) + bytes(size % 251)
        segments += segment_tcp(bytes(ETH / ip / tcp / data), mss).frames
        seq = (seq + size) & 0xFFFFFFFF
    clean = draw(st.booleans())
    events = ("keep",) * 14 + ("drop", "bad", "bad_ip", "psh", "ecn", "ts", "ttl")
    frames: list[bytes] = []
    l3 = 14
    l4 = l3 + (40 if v6 else 20)
    for segment in segments:
        event = "keep" if clean else draw(st.sampled_from(events))
        frame = bytearray(segment)
        if event == "drop":
            continue
        if event == "bad":
            frame[-1] ^= 0x21
        elif event == "bad_ip" and not v6:
            frame[l3 + 10] ^= 0x10  # the IPv4 header checksum fails
        elif event in ("psh", "ecn", "ts", "ttl"):
            if event == "psh":
                frame[l4 + 13] |= 0x08
            elif event == "ecn":
                frame[l4 + 13] |= 0x40  # ECE: exception 8 on both sides of it
            elif event == "ts" and ts:
                frame[l4 + 24] ^= 0x80  # TSval jumps ahead (or back) by 2**31
            elif event == "ttl":  # a lower TTL / Hop Limit: the unit keeps the minimum
                frame[l3 + (7 if v6 else 8)] -= 1
                if not v6:  # the header checksum recomputed (scapy)
                    packet = Ether(bytes(frame))
                    del packet[IP].chksum
                    frame = bytearray(bytes(packet))
            frame = bytearray(_fix_tcp_checksum(bytes(frame), v6))
        frames.append(bytes(frame))
    cuts = [0]
    while cuts[-1] < len(frames):
        cuts.append(min(len(frames), cuts[-1] + draw(st.integers(1, 80))))
    return frames, cuts, draw(st.booleans()), clean


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(one_flow_stream())
def test_one_flow_streams_equal_push(case: tuple[list[bytes], list[int], bool, bool]) -> None:
    """One flow in DPCs of 1-80 frames (the scan's one-flow path: no grouping; blocks cut
    by a DPC boundary copied as one piece) gives what per-frame ``push`` gives, with
    losses, bad checksums, PSH, ECN, timestamp jumps and TTL changes, exceptions counted
    alike; a clean stream's DPCs are one flow each."""
    frames, cuts, flush_on_psh, clean = case
    compare(frames, cuts, timeout=1e9, max_flows=64, flush_on_psh=flush_on_psh)
    if clean:
        for lo, hi in zip(cuts, cuts[1:], strict=False):
            found = scan(frames[lo:hi])
            assert found.heads == [0, hi - lo] and len(found.keys) == 1
            assert found.keys[0] == _scalar_seg(frames[lo])[1]

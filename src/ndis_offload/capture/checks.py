"""Checksum state of captured frames: vectorized over a chunk, scalar for the odd shapes.

:func:`check_chunk` locates the common shapes (Ethernet / SLL / SLL2, up to two VLAN tags,
IPv4 with any options, IPv6 directly followed by TCP / UDP) with numpy gathers over the raw
capture bytes and sums every IPv4 header, L4 segment and address block in one
:func:`~ndis_offload.packet.checksum.batch_sums` call. Everything else (IPv6 extension
headers, LSO frames with a zero IP length, short or malformed frames) goes through
:func:`check_frame`, which uses :func:`~ndis_offload.packet.headers.parse_frame`; a test
holds both paths to identical results.

A checksum is *left for offload* when its field holds 0 or the folded pseudo-header sum
(with the L4 length, as Linux ``CHECKSUM_PARTIAL`` leaves it, or without, as NDIS LSO
senders do) instead of the complete checksum.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from ndis_offload.capture.linktype import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    direction,
    to_ethernet,
)
from ndis_offload.errors import PacketError
from ndis_offload.packet.checksum import (
    batch_sums,
    fold,
    ones_complement_sum,
    pseudo_header_sum_ipv4,
    pseudo_header_sum_ipv6,
)
from ndis_offload.packet.headers import (
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    VLAN_TPIDS,
    parse_frame,
)

IntArray = npt.NDArray[np.int64]
U64Array = npt.NDArray[np.uint64]
BoolArray = npt.NDArray[np.bool_]

_PAD = 256
_I64 = np.int64
_U64 = np.uint64
_H = struct.Struct("!H")


class Sum(IntEnum):
    """State of one checksum field."""

    NONE = 0
    """Not checked: absent (UDP/IPv4 0, IPv6 header), a fragment, or no TCP / UDP."""
    OK = 1
    WRONG = 2
    OFFLOAD = 3
    """Left for offload: 0 or the pseudo-header sum, to be completed by the NIC."""


class Kind(IntEnum):
    """What could be checked in a frame."""

    IP = 0
    """An IP frame whose headers were located."""
    SNAPPED = 1
    """Cut by the snap length: checksums cannot be checked."""
    OTHER = 2
    """Not IPv4 / IPv6, or an unsupported link type."""
    MALFORMED = 3


@dataclass(slots=True)
class FrameCheck:
    """The result of :func:`check_frame`; positions count from the record's first byte."""

    kind: Kind = Kind.OTHER
    ip_state: Sum = Sum.NONE
    l4_state: Sum = Sum.NONE
    ip_len: int = 0
    zero_length: bool = False
    proto: int = 0
    flags: int = 0
    payload_len: int = 0
    l4_pos: int = -1
    l4_len: int = 0
    ip_field: int = -1
    ip_value: int = 0
    l4_field: int = -1
    l4_value: int = 0
    words: tuple[int, ...] = ()
    """Flow identity: version, proto, 4 source words, 4 destination words, ports."""
    error: PacketError | None = None


def _u32s(addr: bytes) -> list[int]:
    return list(struct.unpack(f"!{len(addr) // 4}I", addr)) + [0] * (4 - len(addr) // 4)


def _ethertype(eth: bytes) -> int:
    if len(eth) < 14:
        return -1
    pos = 12
    (et,) = _H.unpack_from(eth, pos)
    while et in VLAN_TPIDS and pos + 6 <= len(eth):
        pos += 4
        (et,) = _H.unpack_from(eth, pos)
    return int(et)


def check_frame(linktype: int, data: bytes, orig_len: int) -> FrameCheck:
    """Checksum state of one record (any shape ``parse_frame`` understands)."""
    out = FrameCheck()
    if orig_len > len(data):
        out.kind = Kind.SNAPPED
        return out
    try:
        _, eth = to_ethernet(linktype, data)
    except PacketError as error:
        if error.offset is not None:
            out.kind, out.error = Kind.MALFORMED, error
        return out
    delta = len(data) - len(eth)
    et = _ethertype(eth)
    if et not in (ETHERTYPE_IPV4, ETHERTYPE_IPV6):
        if et == -1:
            out.kind = Kind.MALFORMED
            out.error = PacketError(f"runt frame of {len(data)} bytes", offset=0)
        return out
    try:
        layout = parse_frame(eth)
    except PacketError as error:
        try:
            layout = parse_frame(eth, zero_length_ok=True)
        except PacketError:
            off = None if error.offset is None else error.offset + delta
            out.kind, out.error = Kind.MALFORMED, PacketError(error.reason, offset=off)
            return out
        out.zero_length = True
    out.kind = Kind.IP
    l3, l4, end = layout.l3_offset, layout.l4_offset, layout.ip_end
    out.ip_len = end - l3
    out.proto = layout.l4_proto
    if layout.ip_version == 4:
        header = eth[l3 : l3 + layout.l3_len]
        total = ones_complement_sum(header)
        (stored,) = _H.unpack_from(eth, l3 + 10)
        out.ip_field = l3 + 10 + delta
        out.ip_value = ~fold(total + (~stored & 0xFFFF)) & 0xFFFF
        if out.zero_length:  # the IP length is for the NIC to fill in, like the checksum
            out.ip_state = Sum.OFFLOAD
        else:
            out.ip_state = Sum.OK if total == 0xFFFF else (Sum.WRONG if stored else Sum.OFFLOAD)
    src, dst = layout.pseudo_src, layout.pseudo_dst
    ports = 0
    if layout.l4_len and not layout.is_fragment:
        ports = struct.unpack_from("!I", eth, l4)[0]
        out.l4_pos, out.l4_len = l4 + delta, layout.l4_len
        out.payload_len = layout.payload_len
        _l4_state(out, eth, layout.ip_version, layout.l4_proto, l4, end, src, dst, delta)
        if layout.l4_proto == IPPROTO_TCP:
            out.flags = eth[l4 + 13]
    out.words = (layout.ip_version, layout.l4_proto, *_u32s(src), *_u32s(dst), ports)
    return out


def _l4_state(
    out: FrameCheck, eth: bytes, version: int, proto: int, l4: int, end: int,
    src: bytes, dst: bytes, delta: int,
) -> None:  # fmt: skip
    is_tcp = proto == IPPROTO_TCP
    field_at = l4 + (16 if is_tcp else 6)
    (stored,) = _H.unpack_from(eth, field_at)
    length = end - l4
    if not is_tcp:
        (udp_len,) = _H.unpack_from(eth, l4 + 4)
        if stored == 0 and version == 4:
            return
        if udp_len < 8 or udp_len > length:
            out.l4_state = Sum.WRONG
            return
        length = udp_len
    pseudo = pseudo_header_sum_ipv4 if version == 4 else pseudo_header_sum_ipv6
    with_len = pseudo(src, dst, proto, length)
    no_len = pseudo(src, dst, proto, None)
    total = ones_complement_sum(eth[l4 : l4 + length], with_len)
    value = ~fold(total + (~stored & 0xFFFF)) & 0xFFFF
    if not is_tcp and value == 0:
        value = 0xFFFF
    out.l4_field, out.l4_value = field_at + delta, value
    if total == 0xFFFF:
        out.l4_state = Sum.OK
    elif stored in (0, with_len, no_len):
        out.l4_state = Sum.OFFLOAD
    else:
        out.l4_state = Sum.WRONG


@dataclass(slots=True)
class Checks:
    """Per-frame results for a chunk; ``*_field`` are absolute offsets in the buffer or -1."""

    kind: npt.NDArray[np.int8]
    ip_state: npt.NDArray[np.int8]
    l4_state: npt.NDArray[np.int8]
    ip_len: IntArray
    zero_length: BoolArray
    proto: IntArray
    flags: IntArray
    payload_len: IntArray
    l4_pos: IntArray
    l4_len: IntArray
    ip_field: IntArray
    ip_value: IntArray
    l4_field: IntArray
    l4_value: IntArray
    flow: U64Array
    reverse: U64Array
    direction: npt.NDArray[np.int8]
    words: U64Array = field(default_factory=lambda: np.zeros((0, 11), dtype=np.uint64))
    """Flow identity words per frame (see :attr:`FrameCheck.words`)."""
    errors: dict[int, PacketError] = field(default_factory=dict)
    slow: int = 0
    """How many frames took the scalar path."""


_MIX = _U64(0x9E3779B97F4A7C15)


def flow_hash(words: U64Array) -> U64Array:
    """A 64-bit hash per row of flow words (never 0 for a row that has any nonzero word)."""
    h = np.full(words.shape[0], 0xCBF29CE484222325, dtype=_U64)
    for col in range(words.shape[1]):
        h = (h ^ words[:, col]) * _MIX
        h ^= h >> _U64(29)
    h[h == 0] = 1
    return h


def _reverse_words(words: U64Array) -> U64Array:
    rev = words.copy()
    rev[:, 2:6], rev[:, 6:10] = words[:, 6:10], words[:, 2:6]
    ports = words[:, 10]
    rev[:, 10] = ((ports & _U64(0xFFFF)) << _U64(16)) | (ports >> _U64(16))
    return rev


def check_chunk(
    buffer: bytes,
    data_offsets: IntArray,
    caplens: IntArray,
    origlens: IntArray,
    linktypes: IntArray,
    bad: set[int] | None = None,
    *,
    vectorized: bool = True,
) -> Checks:
    """Check every record of a chunk (``vectorized=False`` forces the scalar path)."""
    n = len(data_offsets)
    padded = buffer + bytes(_PAD)
    data = np.frombuffer(padded, dtype=np.uint8)

    def u8(pos: IntArray) -> IntArray:
        return data[pos].astype(_I64)

    def u16(pos: IntArray) -> IntArray:
        return (u8(pos) << 8) | u8(pos + 1)

    def u32(pos: IntArray) -> IntArray:
        return (u16(pos) << 16) | u16(pos + 2)

    off = data_offsets.astype(_I64)
    end_rec = off + caplens
    is_eth = linktypes == LINKTYPE_ETHERNET
    sll = linktypes == LINKTYPE_LINUX_SLL
    sll2 = linktypes == LINKTYPE_LINUX_SLL2
    hdr = np.where(is_eth, 14, np.where(sll, 16, 20))
    supported = (is_eth | sll | sll2) & (caplens >= hdr + 20)
    off_c = np.where(supported, off, 0)
    et = u16(off_c + np.where(is_eth, 12, np.where(sll, 14, 0)))
    l3 = off_c + hdr
    for _ in range(2):
        tag = (et == 0x8100) | (et == 0x88A8) | (et == 0x9100)
        et = np.where(tag, u16(l3 + 2), et)
        l3 = np.where(tag, l3 + 4, l3)
    vihl = u8(l3)
    ihl = (vihl & 0xF) * 4
    total = u16(l3 + 2)
    v4 = supported & (et == ETHERTYPE_IPV4) & (vihl >> 4 == 4) & (ihl >= 20) & (total >= ihl)
    v4 &= l3 + total <= end_rec
    plen = u16(l3 + 4)
    nh = u8(l3 + 6)
    v6 = supported & (et == ETHERTYPE_IPV6) & (vihl >> 4 == 6) & (l3 + 40 + plen <= end_rec)
    v6 &= (nh == IPPROTO_TCP) | (nh == IPPROTO_UDP)
    ip_end = np.where(v4, l3 + total, l3 + 40 + plen)
    proto = np.where(v4, u8(l3 + 9), nh)
    fragment = v4 & ((u16(l3 + 6) & 0x3FFF) != 0)
    l4 = l3 + np.where(v4, ihl, 40)
    room = ip_end - l4
    doff = (u8(l4 + 12) >> 4) * 4
    has_l4 = (v4 | v6) & ~fragment
    tcp = has_l4 & (proto == IPPROTO_TCP)
    udp = has_l4 & (proto == IPPROTO_UDP)
    tcp_ok = tcp & (room >= 20) & (doff >= 20) & (doff <= room)
    udp_ok = udp & (room >= 8)
    fast = (v4 | v6) & ~(tcp & ~tcp_ok) & ~(udp & ~udp_ok) & (origlens <= caplens)
    if bad:
        fast[list(bad)] = False
    if not vectorized:
        fast[:] = False
    tcp &= fast
    udp &= fast
    v4f = v4 & fast
    udp_len = np.where(udp, u16(l4 + 4), 0)
    udp_field = np.where(udp, u16(l4 + 6), 1)
    udp_none = udp & (udp_field == 0) & v4
    udp_bad = udp & ~udp_none & ((udp_len < 8) | (udp_len > room))
    summed = tcp | (udp & ~udp_none & ~udp_bad)
    l4_length = np.where(tcp, room, np.where(summed, udp_len, 0))
    addr_off = np.where(v4, l3 + 12, l3 + 8)
    addr_len = np.where(v4, 8, 32)
    sums = batch_sums(
        padded,
        np.concatenate([l3, l4, addr_off]),
        np.concatenate(
            [np.where(v4f, ihl, 0), np.where(summed, l4_length, 0), np.where(summed, addr_len, 0)]
        ),
    )
    ip_sum, l4_sum, addr_sum = sums[:n], sums[n : 2 * n], sums[2 * n :]

    def fold64(x: U64Array) -> U64Array:
        for _ in range(3):
            x = (x & _U64(0xFFFF)) + (x >> _U64(16))
        return x

    ip_stored = u16(l3 + 10).astype(_U64)
    ip_value = (~fold64(ip_sum + (~ip_stored & _U64(0xFFFF))) & _U64(0xFFFF)).astype(_I64)
    ip_state = np.where(
        v4f, np.where(ip_sum == 0xFFFF, Sum.OK, np.where(ip_stored == 0, Sum.OFFLOAD, Sum.WRONG)), 0
    ).astype(np.int8)
    base = addr_sum + proto.astype(_U64)
    with_len = fold64(base + l4_length.astype(_U64))
    no_len = fold64(base)
    l4_total = fold64(with_len + l4_sum)
    field_at = l4 + np.where(tcp, 16, 6)
    stored = u16(field_at).astype(_U64)
    l4_value = (~fold64(l4_total + (~stored & _U64(0xFFFF))) & _U64(0xFFFF)).astype(_I64)
    l4_value = np.where(udp & (l4_value == 0), 0xFFFF, l4_value)
    offload = (stored == 0) | (stored == with_len) | (stored == no_len)
    l4_state = np.where(
        summed,
        np.where(l4_total == 0xFFFF, Sum.OK, np.where(offload, Sum.OFFLOAD, Sum.WRONG)),
        np.where(udp_bad, Sum.WRONG, Sum.NONE),
    ).astype(np.int8)
    words = np.zeros((n, 11), dtype=_U64)
    words[:, 0] = np.where(v4, 4, 6)
    words[:, 1] = proto
    words[:, 2] = np.where(v4, u32(l3 + 12), u32(l3 + 8))
    words[:, 6] = np.where(v4, u32(l3 + 16), u32(l3 + 24))
    for k in (1, 2, 3):
        words[:, 2 + k] = np.where(v4, 0, u32(l3 + 8 + 4 * k))
        words[:, 6 + k] = np.where(v4, 0, u32(l3 + 24 + 4 * k))
    words[:, 10] = np.where(has_l4, u32(l4), 0)
    sll_dir = np.where(sll, u16(off_c) == 4, u8(off_c + 10) == 4)
    checks = Checks(
        kind=np.where(fast, Kind.IP, Kind.OTHER).astype(np.int8),
        ip_state=ip_state,
        l4_state=l4_state,
        ip_len=np.where(fast, ip_end - l3, 0),
        zero_length=np.zeros(n, dtype=np.bool_),
        proto=np.where(fast, proto, 0),
        flags=np.where(tcp, u8(l4 + 13), 0),
        payload_len=np.where(tcp, room - doff, np.where(udp, room - 8, 0)),
        l4_pos=np.where(tcp | udp, l4, -1),
        l4_len=np.where(tcp, doff, np.where(udp, 8, 0)),
        ip_field=np.where(v4f, l3 + 10, -1),
        ip_value=ip_value,
        l4_field=np.where(summed, field_at, -1),
        l4_value=l4_value,
        flow=np.zeros(n, dtype=_U64),
        reverse=np.zeros(n, dtype=_U64),
        direction=np.where(is_eth | ~supported, -1, sll_dir).astype(np.int8),
    )
    slow_rows = np.flatnonzero(~fast).tolist()
    has_flow = fast.copy()
    for row in slow_rows:
        _fill_slow(checks, row, buffer, int(off[row]), int(caplens[row]), int(origlens[row]),
                   int(linktypes[row]), words, has_flow, bad)  # fmt: skip
    checks.slow = len(slow_rows)
    checks.words = words
    if has_flow.any():
        checks.flow[has_flow] = flow_hash(words[has_flow])
        checks.reverse[has_flow] = flow_hash(_reverse_words(words[has_flow]))
    return checks


def _fill_slow(
    checks: Checks, row: int, buffer: bytes, start: int, caplen: int, origlen: int,
    linktype: int, words: U64Array, has_flow: BoolArray, bad: set[int] | None,
) -> None:  # fmt: skip
    if bad and row in bad:
        checks.kind[row] = Kind.MALFORMED
        return
    record = buffer[start : start + caplen]
    result = check_frame(linktype, record, origlen)
    checks.kind[row] = result.kind
    checks.direction[row] = direction(linktype, record)
    if result.error is not None:
        checks.errors[row] = result.error
    if result.kind != Kind.IP:
        return
    checks.ip_state[row] = result.ip_state
    checks.l4_state[row] = result.l4_state
    checks.ip_len[row] = result.ip_len
    checks.zero_length[row] = result.zero_length
    checks.proto[row] = result.proto
    checks.flags[row] = result.flags
    checks.payload_len[row] = result.payload_len
    checks.l4_len[row] = result.l4_len
    checks.l4_pos[row] = start + result.l4_pos if result.l4_pos >= 0 else -1
    checks.ip_field[row] = start + result.ip_field if result.ip_field >= 0 else -1
    checks.ip_value[row] = result.ip_value
    checks.l4_field[row] = start + result.l4_field if result.l4_field >= 0 else -1
    checks.l4_value[row] = result.l4_value
    words[row] = result.words
    has_flow[row] = True


__all__ = ["Checks", "FrameCheck", "Kind", "Sum", "check_chunk", "check_frame", "flow_hash"]

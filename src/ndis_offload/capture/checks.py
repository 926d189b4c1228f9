"""Checksum state of captured frames, per layer, tunnels included.

:func:`check_chunk` locates every header of every record with the frame locator
(:func:`~ndis_offload.packet.locate_batch.locate_batch`) and then checks, per hop, every
checksum whose covered bytes are all in the capture: each IPv4 header (inner ones too), each
TCP / UDP datagram with its pseudo-header (from its own IP hop), and a GRE checksum when
present. A checksum whose bytes run past the captured bytes is ``CUT``: only that layer is
left unchecked. All sums of a chunk are one
:func:`~ndis_offload.packet.checksum.batch_sums` call.

A checksum is *left for offload* when its field holds 0 or the folded pseudo-header sum
(with the L4 length, as Linux ``CHECKSUM_PARTIAL`` leaves it, or without, as NDIS LSO
senders do) instead of the complete checksum. A UDP checksum of 0 is "no checksum" over
IPv4, and over IPv6 for a UDP tunnel (RFC 6935); a UDP Length beyond the IP payload makes the
frame malformed (not a wrong checksum).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from ndis_offload.capture.linktype import cooked_direction
from ndis_offload.errors import PacketError
from ndis_offload.packet.checksum import Buffer, batch_sums
from ndis_offload.packet.locate import (
    F_BAD_LENGTH,
    F_CHECKSUM,
    F_FRAGMENT,
    F_ZERO_LENGTH,
    IP_LAYERS,
    Layer,
    Stop,
)
from ndis_offload.packet.locate_batch import Locations, any_of, locate_batch
from ndis_offload.packet.proto import IPPROTO_TCP, IPPROTO_UDP

IntArray = npt.NDArray[np.int64]
U64Array = npt.NDArray[np.uint64]
BoolArray = npt.NDArray[np.bool_]

_I64 = np.int64
_U64 = np.uint64
_IPV4, _IPV6, _TCP, _UDP, _GRE = (int(k) for k in (Layer.IPV4, Layer.IPV6, Layer.TCP,
                                                   Layer.UDP, Layer.GRE))  # fmt: skip
"""The :class:`Layer` codes as plain ints: numpy compares an array with an ``IntEnum`` member
several times slower (it inspects the object each time)."""


def _any_per_row(mask: BoolArray) -> BoolArray:
    """``mask.any(axis=1)``, a column at a time (numpy reduces a handful of columns per row
    row by row: ten times slower for a chunk's ``(frames, hops)`` tables)."""
    out = np.zeros(mask.shape[0], dtype=np.bool_)
    for c in range(mask.shape[1]):
        out |= mask[:, c]
    return out


class Sum(IntEnum):
    """State of one checksum field."""

    NONE = 0
    """Not checked: absent (UDP/IPv4 0, IPv6 header), a fragment, or no checksum here."""
    OK = 1
    WRONG = 2
    OFFLOAD = 3
    """Left for offload: 0 or the pseudo-header sum, to be completed by the NIC."""
    CUT = 4
    """Some covered bytes are not in the capture (snap length): cannot be checked."""


class Kind(IntEnum):
    """What could be checked in a frame."""

    IP = 0
    """At least one IP header was located (its layers carry their own states)."""
    SNAPPED = 1
    """Cut by the snap length before any IP header."""
    OTHER = 2
    """Not IP (ARP, STP, ...), encrypted (MACsec), or an unsupported link type."""
    MALFORMED = 3


@dataclass(slots=True)
class Checks:
    """Per-frame results for a chunk; offsets and ``*_field`` are absolute in the buffer.

    ``layer_state`` / ``layer_field`` / ``layer_value`` are ``(frames, loc.width)``, one column
    per hop of :attr:`loc` (field -1: no checksum to write). The per-frame ``ip_*`` fields are
    the outermost IPv4 header's; ``l4_*``, ``proto``, ``flags``, ``payload_len`` and the flow
    are the innermost TCP / UDP's; ``ip_len`` is the outermost IP datagram's length.
    """

    loc: Locations
    kind: npt.NDArray[np.int8]
    layer_state: npt.NDArray[np.int8]
    layer_field: IntArray
    layer_value: IntArray
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
    words: U64Array
    """Flow identity per frame: version, proto, 4 source words, 4 destination words, ports."""
    errors: dict[int, PacketError] = field(default_factory=dict)
    slow: int = 0
    """How many frames took the scalar locator."""


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


def fold64(x: U64Array) -> U64Array:
    """Fold unsigned sums to 16 bits with end-around carry."""
    for _ in range(4):
        x = (x & _U64(0xFFFF)) + (x >> _U64(16))
    return x


class _Bytes:
    def __init__(self, buffer: Buffer) -> None:
        self.data = np.frombuffer(buffer, dtype=np.uint8) if buffer else np.zeros(1, np.uint8)
        self.last = len(self.data) - 1

    def u8(self, pos: IntArray) -> IntArray:
        return self.data.take(pos, mode="clip").astype(_I64)

    def u16(self, pos: IntArray) -> IntArray:
        return (self.u8(pos) << 8) | self.u8(pos + 1)

    def u32(self, pos: IntArray) -> IntArray:
        return (self.u16(pos) << 16) | self.u16(pos + 2)


def _enclosing_ip(kind: npt.NDArray[np.int8]) -> IntArray:
    """Per (frame, hop): the column of the last IP hop before it, or -1."""
    n = kind.shape[0]
    out = np.full(kind.shape, -1, dtype=_I64)
    cur = np.full(n, -1, dtype=_I64)
    for c in range(kind.shape[1]):
        out[:, c] = cur
        cur = np.where((kind[:, c] == _IPV4) | (kind[:, c] == _IPV6), c, cur)
    return out


def _check_layers(
    buffer: Buffer, b: _Bytes, loc: Locations, cap_end: IntArray, enc: IntArray
) -> tuple[npt.NDArray[np.int8], IntArray, IntArray]:
    kind = loc.kind
    gre = (kind == _GRE) & ((loc.flags & F_CHECKSUM) != 0)
    cand = (kind == _IPV4) | (kind == _TCP) | (kind == _UDP) | gre
    flat = np.flatnonzero(cand)
    width = kind.shape[1]
    rows, cols = flat // width, flat % width

    def pick(table: npt.NDArray[Any], where: IntArray) -> IntArray:
        return table.reshape(-1).take(where).astype(_I64)

    k = pick(kind, flat)
    off, hlen, end = pick(loc.offset, flat), pick(loc.hlen, flat), pick(loc.end, flat)
    flags = pick(loc.flags, flat)
    is_v4h, is_tcp, is_udp = k == _IPV4, k == _TCP, k == _UDP
    l4 = is_tcp | is_udp
    ip_flat = rows * width + np.maximum(enc.reshape(-1).take(flat), 0)
    ip_kind = pick(kind, ip_flat)
    ip_flags = pick(loc.flags, ip_flat)
    length = np.where(is_v4h, hlen, end - off)
    field_at = off + np.select([is_v4h, is_tcp, is_udp], [10, 16, 6], 4)
    stored = b.u16(field_at)
    nxt = pick(kind, rows * width + np.minimum(cols + 1, width - 1))
    tunnel = any_of(nxt, (Layer.VXLAN, Layer.GENEVE, Layer.L2TP)) & (cols + 1 < width)
    udp_none = is_udp & (stored == 0) & ((ip_kind == _IPV4) | tunnel)
    no_check = (l4 & ((ip_flags & F_FRAGMENT) != 0)) | udp_none
    no_check |= is_udp & ((flags & F_BAD_LENGTH) != 0)
    captured = off + length <= cap_end[rows]
    summed = ~no_check & captured
    addr_len = np.where(ip_kind == _IPV4, 4, 16)
    psrc, pdst = pick(loc.psrc, ip_flat), pick(loc.pdst, ip_flat)
    pseudo = summed & l4
    # Source and destination side by side (no Home Address / Routing header): one range.
    joint = pseudo & (pdst == psrc + addr_len)
    apart = pseudo & ~joint
    m = len(rows)
    wanted = (summed, pseudo, apart)
    sums = batch_sums(
        buffer,
        np.concatenate([off[summed], psrc[pseudo], pdst[apart]]),
        np.concatenate([length[summed], (addr_len << joint)[pseudo], addr_len[apart]]),
    )
    parts = np.split(sums, np.cumsum([int(w.sum()) for w in wanted])[:-1])
    total, s_src, s_dst = (np.zeros(m, dtype=_U64) for _ in range(3))
    for out, mask, part in zip((total, s_src, s_dst), wanted, parts, strict=True):
        out[mask] = part
    proto = np.where(is_tcp, IPPROTO_TCP, IPPROTO_UDP).astype(_U64)
    base = s_src + s_dst + proto
    with_len = fold64(base + length.astype(_U64))
    no_len = fold64(base)
    total = fold64(total + np.where(l4, with_len, 0).astype(_U64))
    st = stored.astype(_U64)
    value = (~fold64(total + (~st & _U64(0xFFFF))) & _U64(0xFFFF)).astype(_I64)
    value = np.where(is_udp & (value == 0), 0xFFFF, value)
    offload = (st == 0) | (l4 & ((st == with_len) | (st == no_len)))
    offload |= is_v4h & ((flags & F_ZERO_LENGTH) != 0)  # the IP length is for the NIC too
    state = np.select(
        [no_check, ~captured, total == 0xFFFF, offload],
        [Sum.NONE, Sum.CUT, Sum.OK, Sum.OFFLOAD],
        Sum.WRONG,
    ).astype(np.int8)
    layer_state = np.zeros(kind.shape, dtype=np.int8)
    layer_field = np.full(kind.shape, -1, dtype=_I64)
    layer_value = np.zeros(kind.shape, dtype=_I64)
    layer_state.reshape(-1)[flat] = state
    layer_field.reshape(-1)[flat] = np.where(summed, field_at, -1)
    layer_value.reshape(-1)[flat] = value
    return layer_state, layer_field, layer_value


def check_chunk(
    buffer: Buffer,
    data_offsets: IntArray,
    caplens: IntArray,
    origlens: IntArray,
    linktypes: IntArray,
    bad: set[int] | None = None,
    *,
    directions: npt.NDArray[np.int8] | None = None,
    vectorized: bool = True,
    analysis: bool = True,
) -> Checks:
    """Check every record of a chunk (``vectorized=False`` forces the scalar locator).

    ``directions`` (1 sent, 0 received, -1 unknown; e.g. from pcapng ``epb_flags``) win over
    what a cooked (SLL / SLL2) header says. ``analysis=False`` gives the checksums only:
    ``loc``, ``kind``, the ``layer_*`` tables, ``zero_length`` and ``errors`` (what checksum
    completion reads); the per-frame summary (``ip_*``, ``l4_*``, ``proto``, ``flags``,
    ``payload_len``, ``direction``) and the flow identity are left empty.
    """
    n = len(data_offsets)
    off = np.asarray(data_offsets, dtype=_I64)
    caps = np.asarray(caplens, dtype=_I64)
    loc = locate_batch(buffer, off, caps, origlens, linktypes, vectorized=vectorized)
    b = _Bytes(buffer)
    cap_end = off + caps
    enc = _enclosing_ip(loc.kind)
    layer_state, layer_field, layer_value = _check_layers(buffer, b, loc, cap_end, enc)
    kind_h = loc.kind
    rows = np.arange(n)

    has_ip = _any_per_row(any_of(kind_h, IP_LAYERS))
    bad_udp = _any_per_row((kind_h == _UDP) & ((loc.flags & F_BAD_LENGTH) != 0))
    stop = loc.stop
    kind = np.select(
        [stop == Stop.MALFORMED, bad_udp, has_ip, stop == Stop.CUT],
        [Kind.MALFORMED, Kind.MALFORMED, Kind.IP, Kind.SNAPPED],
        Kind.OTHER,
    ).astype(np.int8)
    errors: dict[int, PacketError] = {}
    for row in np.flatnonzero(kind == Kind.MALFORMED).tolist():
        errors[row] = _error(loc, row, b)
    if bad:
        idx = np.fromiter(bad, dtype=_I64)
        kind[idx] = Kind.MALFORMED
        layer_state[idx] = 0
        layer_field[idx] = -1
        for row in bad:
            errors.pop(row, None)

    deepest = loc.kind[rows, np.maximum(loc.depth - 1, 0)]
    transport_last = any_of(deepest, (_TCP, _UDP))
    zero = _any_per_row(any_of(kind_h, (_IPV4, _IPV6, _UDP)) &
                        ((loc.flags & F_ZERO_LENGTH) != 0)) & transport_last  # fmt: skip
    zero_length = zero & (kind == Kind.IP)
    if not analysis:
        return _checksums_only(loc, kind, layer_state, layer_field, layer_value, zero_length,
                               errors)  # fmt: skip

    def at(arr: npt.NDArray[np.generic], col: IntArray, default: int) -> IntArray:
        got = arr[rows, np.maximum(col, 0)].astype(_I64)
        return np.where(col >= 0, got, default)

    first_ip = loc.column(IP_LAYERS)
    first_v4 = loc.column({Layer.IPV4})
    last_l4 = loc.column({Layer.TCP, Layer.UDP}, last=True)
    ip_len = np.where(has_ip, at(loc.end, first_ip, 0) - at(loc.offset, first_ip, 0), 0)
    l4_kind = at(kind_h, last_l4, 0)
    is_tcp, is_udp = l4_kind == Layer.TCP, l4_kind == Layer.UDP
    l4_pos = at(loc.offset, last_l4, -1)
    l4_hlen = at(loc.hlen, last_l4, 0)
    l4_end = at(loc.end, last_l4, 0)
    flow_ip = np.where(last_l4 >= 0, enc[rows, np.maximum(last_l4, 0)],
                       loc.column(IP_LAYERS, last=True))  # fmt: skip
    ip_kind = at(kind_h, flow_ip, 0)
    ip_off = at(loc.offset, flow_ip, 0)
    v4 = ip_kind == Layer.IPV4
    proto = np.where(is_tcp, IPPROTO_TCP, np.where(is_udp, IPPROTO_UDP, at(loc.proto, flow_ip, 0)))
    words = np.zeros((n, 11), dtype=_U64)
    has_flow = (flow_ip >= 0) & (kind == Kind.IP)
    _flow_words(words, b, v4, proto, ip_off, last_l4, l4_pos, has_flow)
    direction = cooked_direction(b.data, off, caps, np.asarray(linktypes, dtype=_I64))
    if directions is not None:
        direction = np.where(directions >= 0, directions, direction).astype(np.int8)
    checks = Checks(
        loc=loc,
        kind=kind,
        layer_state=layer_state,
        layer_field=layer_field,
        layer_value=layer_value,
        ip_state=at(layer_state, first_v4, 0).astype(np.int8),
        l4_state=at(layer_state, last_l4, 0).astype(np.int8),
        ip_len=np.where(kind == Kind.IP, ip_len, 0),
        zero_length=zero_length,
        proto=np.where(has_flow, proto, 0),
        flags=np.where(is_tcp, b.u8(l4_pos + 13), 0),
        payload_len=np.where(last_l4 >= 0, l4_end - l4_pos - l4_hlen, 0),
        l4_pos=l4_pos,
        l4_len=l4_hlen,
        ip_field=at(layer_field, first_v4, -1),
        ip_value=at(layer_value, first_v4, 0),
        l4_field=at(layer_field, last_l4, -1),
        l4_value=at(layer_value, last_l4, 0),
        flow=np.zeros(n, dtype=_U64),
        reverse=np.zeros(n, dtype=_U64),
        direction=direction,
        words=words,
        errors=errors,
        slow=int(loc.slow.sum()),
    )
    if has_flow.any():
        checks.flow[has_flow] = flow_hash(words[has_flow])
        checks.reverse[has_flow] = flow_hash(_reverse_words(words[has_flow]))
    return checks


def _checksums_only(
    loc: Locations, kind: npt.NDArray[np.int8], layer_state: npt.NDArray[np.int8],
    layer_field: IntArray, layer_value: IntArray, zero_length: BoolArray,
    errors: dict[int, PacketError],
) -> Checks:  # fmt: skip
    """:class:`Checks` with the per-frame summary and flow identity left empty."""
    n = len(kind)

    def none() -> IntArray:
        return np.full(n, -1, dtype=_I64)

    def zero() -> IntArray:
        return np.zeros(n, dtype=_I64)

    return Checks(
        loc=loc, kind=kind, layer_state=layer_state, layer_field=layer_field,
        layer_value=layer_value, ip_state=np.zeros(n, np.int8), l4_state=np.zeros(n, np.int8),
        ip_len=zero(), zero_length=zero_length, proto=zero(), flags=zero(), payload_len=zero(),
        l4_pos=none(), l4_len=zero(), ip_field=none(), ip_value=zero(), l4_field=none(),
        l4_value=zero(),
        flow=np.zeros(n, _U64), reverse=np.zeros(n, _U64), direction=np.full(n, -1, np.int8),
        words=np.zeros((n, 11), _U64), errors=errors, slow=int(loc.slow.sum()),
    )  # fmt: skip


def _flow_words(
    words: U64Array, b: _Bytes, v4: BoolArray, proto: IntArray, ip_off: IntArray,
    last_l4: IntArray, l4_pos: IntArray, has_flow: BoolArray,
) -> None:  # fmt: skip
    """Fill ``words`` with each frame's flow identity (see :attr:`Checks.words`)."""
    words[:, 0] = np.where(v4, 4, 6)
    words[:, 1] = proto
    words[:, 2] = b.u32(ip_off + np.where(v4, 12, 8))
    words[:, 6] = b.u32(ip_off + np.where(v4, 16, 24))
    if not v4.all():  # the other three words of IPv6 addresses
        for w in (1, 2, 3):
            words[:, 2 + w] = np.where(v4, 0, b.u32(ip_off + 8 + 4 * w))
            words[:, 6 + w] = np.where(v4, 0, b.u32(ip_off + 24 + 4 * w))
    words[:, 10] = np.where(last_l4 >= 0, b.u32(l4_pos), 0)
    words[~has_flow] = 0


def _error(loc: Locations, row: int, b: _Bytes) -> PacketError:
    """The reason a frame is malformed, with its offset from the record's first byte."""
    base = int(loc.starts[row])
    for c in range(int(loc.depth[row])):
        if loc.kind[row, c] == Layer.UDP and loc.flags[row, c] & F_BAD_LENGTH:
            pos = int(loc.offset[row, c])
            length = int(b.u16(np.array([pos + 4]))[0])
            ip_end = int(loc.end[row, c])
            return PacketError(
                f"UDP length {length} does not fit the IP payload of {ip_end - pos} bytes",
                offset=pos + 4 - base,
            )
    reason = loc.reasons.get(row) or loc.located(row).reason or "malformed frame"
    return PacketError(reason, offset=int(loc.stop_offset[row]) - base)


LAYER_NAMES = {
    Layer.IPV4: "IPv4", Layer.IPV6: "IPv6", Layer.TCP: "TCP", Layer.UDP: "UDP",
    Layer.GRE: "GRE", Layer.ICMP: "ICMP", Layer.ICMPV6: "ICMPv6", Layer.ETHERNET: "Ethernet",
    Layer.SLL: "SLL", Layer.SLL2: "SLL2", Layer.VLAN: "802.1Q", Layer.MPLS: "MPLS",
    Layer.LLC_SNAP: "LLC/SNAP", Layer.ERSPAN: "ERSPAN", Layer.VXLAN: "VXLAN",
    Layer.GENEVE: "Geneve", Layer.L2TP: "L2TP",
}  # fmt: skip
"""Wireshark's names for the layers."""


def layer_names(loc: Locations, row: int) -> list[str]:
    """Names of the hops of ``row``; hops inside a tunnel are called ``inner`` (twice: two)."""
    names = []
    ips = 0
    for c in range(int(loc.depth[row])):
        kind = Layer(int(loc.kind[row, c]))
        if kind in IP_LAYERS:
            ips += 1
        names.append("inner " * max(ips - 1, 0) + LAYER_NAMES[kind])
    return names


__all__ = [
    "LAYER_NAMES",
    "Checks",
    "Kind",
    "Sum",
    "check_chunk",
    "flow_hash",
    "fold64",
    "layer_names",
]

"""The frame locator over a batch of frames: numpy gathers, the scalar walk for odd shapes.

:func:`locate_batch` walks every frame of a buffer at once, one header kind per step, for
the common shapes: Ethernet / SLL / SLL2 / raw IP links, VLAN stacks, IPv4 (options, later
fragments), IPv6 without extension headers, TCP, UDP, ICMP / ICMPv6, GRE (version 0, no
routing), VXLAN, Geneve, IP-in-IP. A frame that leaves those shapes at any step (IPv6
extension headers, MPLS, LLC/SNAP, L2TP, ERSPAN, MACsec, ESP, zero lengths, first fragments,
cut or malformed headers) is marked and handed, whole, to the scalar
:func:`~ndis_offload.packet.locate.locate`, so every row equals what the scalar walk says
(a hypothesis test holds the two identical). Offsets in :class:`Locations` are absolute in
the buffer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ndis_offload.packet.locate import (
    F_CHECKSUM,
    F_FRAGMENT,
    F_LATER_FRAGMENT,
    MAX_HOPS,
    Hop,
    Layer,
    Located,
    Stop,
    locate,
)
from ndis_offload.packet.proto import (
    ETH_HEADER_LEN,
    ETHERTYPE_ERSPAN_II,
    ETHERTYPE_ERSPAN_III,
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    ETHERTYPE_MACSEC,
    ETHERTYPE_MIN,
    ETHERTYPE_MPLS,
    ETHERTYPE_MPLS_MULTICAST,
    ETHERTYPE_TEB,
    GENEVE_HEADER_LEN,
    GRE_CHECKSUM,
    GRE_KEY,
    GRE_ROUTING,
    GRE_SEQUENCE,
    IPPROTO_AH,
    IPPROTO_DSTOPTS,
    IPPROTO_ESP,
    IPPROTO_FRAGMENT,
    IPPROTO_GRE,
    IPPROTO_HOPOPTS,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_IPIP,
    IPPROTO_IPV6,
    IPPROTO_ROUTING,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPV6_EXTENSION_HEADERS,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    LINKTYPES,
    MAX_VLAN_TAGS,
    SLL2_HEADER_LEN,
    SLL_HEADER_LEN,
    UDP_PORT_GENEVE,
    UDP_PORT_L2TP,
    UDP_PORT_VXLAN,
    VLAN_TPIDS,
    VXLAN_HEADER_LEN,
)

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
_I64 = np.int64

(_DONE, _ETH, _IP4, _IP6, _TCP, _UDP, _GRE, _VXLAN, _GENEVE, _ICMP) = range(10)
_ODD_ETHERTYPES = (ETHERTYPE_MPLS, ETHERTYPE_MPLS_MULTICAST, ETHERTYPE_MACSEC, *VLAN_TPIDS)
"""Types the scalar walk handles (a VLAN tag here is one inside a cooked header or tunnel)."""
_FIRST_WIDTH = 4
"""Hop columns to start with (Ethernet, VLAN, IP, TCP); tunnels widen the tables."""
_MAX_EXT = 8
"""IPv6 extension headers walked with numpy; a longer chain takes the scalar walk."""
_MAX_OPTIONS = 8


def any_of(values: npt.NDArray[Any], choices: Iterable[int]) -> BoolArray:
    """``values`` equal to any of a few ``choices`` (cheaper than ``np.isin`` for few)."""
    out = np.zeros(values.shape, dtype=np.bool_)
    for choice in choices:
        out |= values == choice
    return out


@dataclass(slots=True)
class Locations:
    """Hops of every frame of a batch: ``(frames, width)`` arrays, outermost hop first;
    ``width`` (:attr:`width`) grows with the deepest frame, up to ``MAX_HOPS``.

    ``kind`` holds :class:`~ndis_offload.packet.locate.Layer` values (0 past ``depth``);
    ``offset`` / ``end`` / ``psrc`` / ``pdst`` are absolute positions in the buffer;
    ``stop`` / ``stop_offset`` say why each walk ended; ``reasons`` holds the scalar walk's
    reason for rows it located; ``slow`` marks those rows.
    """

    starts: IntArray
    kind: npt.NDArray[np.int8]
    offset: IntArray
    hlen: IntArray
    end: IntArray
    flags: IntArray
    psrc: IntArray
    pdst: IntArray
    proto: IntArray
    depth: IntArray
    stop: npt.NDArray[np.int8]
    stop_offset: IntArray
    slow: BoolArray
    reasons: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def width(self) -> int:
        """Columns of the hop tables (at least the deepest frame's hop count)."""
        return int(self.kind.shape[1])

    _TABLES = ("kind", "offset", "hlen", "end", "flags", "psrc", "pdst", "proto")

    def grow(self, width: int) -> None:
        """Widen the hop tables to ``width`` columns (zeros on the right)."""
        extra = width - self.width
        if extra <= 0:
            return
        for name in self._TABLES:
            table = getattr(self, name)
            setattr(self, name, np.pad(table, ((0, 0), (0, extra))))

    def column(self, kinds: frozenset[Layer] | set[Layer], *, last: bool = False) -> IntArray:
        """Per frame, the hop column of the first (``last``: last) hop of ``kinds``, or -1."""
        hit = any_of(self.kind, kinds)
        if last:
            col = self.width - 1 - np.argmax(hit[:, ::-1], axis=1)
        else:
            col = np.argmax(hit, axis=1)
        return np.where(hit.any(axis=1), col, -1).astype(_I64)

    def take(self, name: str, col: IntArray, default: int = 0) -> IntArray:
        """``getattr(self, name)[row, col[row]]`` per row (``default`` where ``col`` is -1)."""
        values = getattr(self, name)
        rows = np.arange(len(col))
        got = values[rows, np.maximum(col, 0)].astype(_I64)
        return np.where(col >= 0, got, default)

    def located(self, row: int) -> Located:
        """Row ``row`` as the scalar :class:`Located` (offsets relative to the frame)."""
        base = int(self.starts[row])
        hops = tuple(
            Hop(
                Layer(int(self.kind[row, c])),
                int(self.offset[row, c]) - base,
                int(self.hlen[row, c]),
                int(self.end[row, c]) - base,
                int(self.flags[row, c]),
                int(self.psrc[row, c]) - base if self.psrc[row, c] else 0,
                int(self.pdst[row, c]) - base if self.pdst[row, c] else 0,
                int(self.proto[row, c]),
            )
            for c in range(int(self.depth[row]))
        )
        return Located(
            hops, Stop(int(self.stop[row])), int(self.stop_offset[row]) - base,
            self.reasons.get(row, ""),
        )  # fmt: skip


class _Batch:
    """Working state of one vectorized walk."""

    def __init__(self, data: npt.NDArray[np.uint8], loc: Locations, cap_end: IntArray) -> None:
        self.data = data
        self.last = len(data) - 1
        self.loc = loc
        self.cap_end = cap_end
        n = len(loc)
        self.state = np.zeros(n, dtype=_I64)
        self.pos = loc.starts.copy()
        self.hend = np.zeros(n, dtype=_I64)
        self.val = np.zeros(n, dtype=_I64)

    def u8(self, pos: IntArray) -> IntArray:
        return self.data.take(pos, mode="clip").astype(_I64)

    def u16(self, pos: IntArray) -> IntArray:
        return (self.u8(pos) << 8) | self.u8(pos + 1)

    def to_slow(self, rows: IntArray, bad: BoolArray) -> IntArray:
        """Mark ``rows[bad]`` for the scalar walk; returns the others."""
        if bad.any():
            gone = rows[bad]
            self.loc.slow[gone] = True
            self.state[gone] = _DONE
            return rows[~bad]
        return rows

    def need(self, rows: IntArray, pos: IntArray, count: IntArray | int) -> BoolArray:
        """Rows whose ``count`` bytes at ``pos`` are not inside both the hop and the capture."""
        stop = pos + count
        bad: BoolArray = (stop > self.hend[rows]) | (stop > self.cap_end[rows])
        return bad

    def add(self, rows: IntArray, kind: IntArray | int, off: IntArray, hlen: IntArray | int,
            end: IntArray, flags: IntArray | int = 0, psrc: IntArray | int = 0,
            pdst: IntArray | int = 0, proto: IntArray | int = 0) -> None:  # fmt: skip
        """Record a hop for ``rows`` (the walk keeps two columns free before each step)."""
        loc = self.loc
        depth = loc.depth[rows]
        if len(depth) and int(depth.max()) >= loc.width:
            loc.grow(min(2 * loc.width, MAX_HOPS))
        at = rows * loc.width + depth  # flat positions: cheaper than 2-D fancy indexing
        loc.kind.reshape(-1)[at] = kind
        loc.offset.reshape(-1)[at] = off
        loc.hlen.reshape(-1)[at] = hlen
        loc.end.reshape(-1)[at] = end
        if not isinstance(flags, int) or flags:
            loc.flags.reshape(-1)[at] = flags
        if not isinstance(psrc, int) or psrc:
            loc.psrc.reshape(-1)[at] = psrc
            loc.pdst.reshape(-1)[at] = pdst
            loc.proto.reshape(-1)[at] = proto
        loc.depth[rows] = depth + 1

    def finish(self, rows: IntArray, stop: Stop, offset: IntArray) -> None:
        self.state[rows] = _DONE
        self.loc.stop[rows] = stop
        self.loc.stop_offset[rows] = offset

    # -- dispatch --------------------------------------------------------------------------
    def ethertype(self, rows: IntArray, et: IntArray, pos: IntArray) -> None:
        """Continue ``rows`` after a type field ``et`` whose payload starts at ``pos``."""
        self.pos[rows] = pos
        slow = (et < ETHERTYPE_MIN) | any_of(et, _ODD_ETHERTYPES)
        keep = ~slow
        rows, et, pos = self.to_slow(rows, slow), et[keep], pos[keep]
        nxt = np.select(
            [et == ETHERTYPE_IPV4, et == ETHERTYPE_IPV6, et == ETHERTYPE_TEB], [_IP4, _IP6, _ETH],
            _DONE,
        )  # fmt: skip
        self.state[rows] = nxt
        other = nxt == _DONE
        self.finish(rows[other], Stop.NOT_IP, pos[other] - 2)

    def transport(self, rows: IntArray, proto: IntArray, l4: IntArray, end: IntArray) -> None:
        """Continue ``rows`` after an IP header (not a fragment) carrying ``proto``."""
        self.pos[rows] = l4
        self.hend[rows] = end
        self.val[rows] = proto
        slow = proto == IPPROTO_ESP
        keep = ~slow
        rows, proto, end = self.to_slow(rows, slow), proto[keep], end[keep]
        nxt = np.select(
            [proto == IPPROTO_TCP, proto == IPPROTO_UDP, proto == IPPROTO_GRE,
             proto == IPPROTO_IPIP, proto == IPPROTO_IPV6,
             (proto == IPPROTO_ICMP) | (proto == IPPROTO_ICMPV6)],
            [_TCP, _UDP, _GRE, _IP4, _IP6, _ICMP], _DONE,
        )  # fmt: skip
        self.state[rows] = nxt
        other = nxt == _DONE
        self.finish(rows[other], Stop.END, end[other])

    # -- steps -----------------------------------------------------------------------------
    def eth(self, rows: IntArray) -> None:
        p = self.pos[rows]
        rows = self.to_slow(rows, self.need(rows, p, ETH_HEADER_LEN))
        p = self.pos[rows]
        q = p + 12
        et = self.u16(q)
        tags = np.zeros(len(rows), dtype=_I64)
        bad = np.zeros(len(rows), dtype=np.bool_)
        for _ in range(MAX_VLAN_TAGS + 1):
            tagged = any_of(et, VLAN_TPIDS) & ~bad
            if not tagged.any():
                break
            bad |= tagged & ((tags == MAX_VLAN_TAGS) | self.need(rows, q, 6))
            step = tagged & ~bad
            q = np.where(step, q + 4, q)
            tags += step
            et = np.where(step, self.u16(q), et)
        keep = ~bad
        rows, p, q, et, tags = self.to_slow(rows, bad), p[keep], q[keep], et[keep], tags[keep]
        end = self.hend[rows]
        self.add(rows, Layer.ETHERNET, p, q + 2 - p, end)
        tagged = tags > 0
        if tagged.any():
            self.add(rows[tagged], Layer.VLAN, p[tagged] + 12, 4 * tags[tagged], end[tagged])
        self.ethertype(rows, et, q + 2)

    def ip4(self, rows: IntArray) -> None:
        p = self.pos[rows]
        rows = self.to_slow(rows, self.need(rows, p, 20))
        p = self.pos[rows]
        vihl = self.u8(p)
        ihl = (vihl & 0xF) * 4
        total = self.u16(p + 2)
        frag = self.u16(p + 6)
        later = (frag & 0x1FFF) != 0
        first = ((frag & 0x2000) != 0) & ~later
        bad = (vihl >> 4 != 4) | (ihl < 20) | self.need(rows, p, ihl) | (total < ihl)
        bad |= (p + total > self.hend[rows]) | first
        keep = ~bad
        rows, p, ihl, total, later = (
            self.to_slow(rows, bad),
            p[keep],
            ihl[keep],
            total[keep],
            later[keep],
        )
        flags = np.where(later, F_FRAGMENT | F_LATER_FRAGMENT, 0)
        proto = self.u8(p + 9)
        self.add(rows, Layer.IPV4, p, ihl, p + total, flags, p + 12, p + 16, proto)
        self.finish(rows[later], Stop.FRAGMENT, (p + ihl)[later])
        go = ~later
        self.transport(rows[go], proto[go], (p + ihl)[go], (p + total)[go])

    def ip6(self, rows: IntArray) -> None:
        p = self.pos[rows]
        rows = self.to_slow(rows, self.need(rows, p, 40))
        p = self.pos[rows]
        plen = self.u16(p + 4)
        nh = self.u8(p + 6)
        bad = (self.u8(p) >> 4 != 6) | (plen == 0) | (p + 40 + plen > self.hend[rows])
        keep = ~bad
        rows, p, plen, nh = self.to_slow(rows, bad), p[keep], plen[keep], nh[keep]
        end = p + 40 + plen
        pos = p + 40
        bad = np.zeros(len(rows), dtype=np.bool_)
        for _ in range(_MAX_EXT):
            ext = any_of(nh, IPV6_EXTENSION_HEADERS) & ~bad
            if not ext.any():
                break
            bad |= ext & self._ext_header_is_odd(rows, nh, pos, end)
            ext &= ~bad
            size = np.where(nh == IPPROTO_AH, (self.u8(pos + 1) + 2) * 4,
                            (self.u8(pos + 1) + 1) * 8)  # fmt: skip
            bad |= ext & ((pos + size > end) | self.need(rows, pos, size))
            ext &= ~bad
            nh = np.where(ext, self.u8(pos), nh)
            pos = np.where(ext, pos + size, pos)
        bad |= any_of(nh, IPV6_EXTENSION_HEADERS)
        keep = ~bad
        rows, p, end, pos, nh = self.to_slow(rows, bad), p[keep], end[keep], pos[keep], nh[keep]
        self.add(rows, Layer.IPV6, p, pos - p, end, 0, p + 8, p + 24, nh)
        self.transport(rows, nh, pos, end)

    def _ext_header_is_odd(
        self, rows: IntArray, nh: IntArray, pos: IntArray, end: IntArray
    ) -> BoolArray:
        """Extension headers the scalar walk must see: fragments, routing headers with
        segments left, options that are not padding (Jumbo, Home Address, anything odd),
        and headers not all inside the datagram and the capture."""
        odd = (nh == IPPROTO_FRAGMENT) | (pos + 8 > end) | self.need(rows, pos, 8)
        odd |= (nh == IPPROTO_ROUTING) & (self.u8(pos + 3) != 0)
        options = (nh == IPPROTO_HOPOPTS) | (nh == IPPROTO_DSTOPTS)
        stop = pos + (self.u8(pos + 1) + 1) * 8
        at = pos + 2
        for _ in range(_MAX_OPTIONS):
            live = options & (at < stop)
            if not live.any():
                break
            opt = self.u8(at)
            size = np.where(opt == 0, 1, 2 + self.u8(at + 1))
            odd |= live & (opt > 1)  # only Pad1 / PadN: no Jumbo, no Home Address
            odd |= live & (at + size > stop)
            at = np.where(live, at + size, at)
        odd |= options & (at < stop)
        result: BoolArray = odd
        return result

    def tcp(self, rows: IntArray) -> None:
        p = self.pos[rows]
        bad = self.need(rows, p, 20)
        doff = (self.u8(p + 12) >> 4) * 4
        bad |= (doff < 20) | self.need(rows, p, doff)
        keep = ~bad
        rows, p, doff = self.to_slow(rows, bad), p[keep], doff[keep]
        end = self.hend[rows]
        self.add(rows, Layer.TCP, p, doff, end)
        self.finish(rows, Stop.END, self.hend[rows])

    def icmp(self, rows: IntArray) -> None:
        p = self.pos[rows]
        rows = self.to_slow(rows, self.need(rows, p, 4))
        p, end = self.pos[rows], self.hend[rows]
        kind = np.where(self.val[rows] == IPPROTO_ICMP, Layer.ICMP, Layer.ICMPV6)
        self.add(rows, kind, p, 4, end)
        self.finish(rows, Stop.END, self.hend[rows])

    def udp(self, rows: IntArray) -> None:
        p = self.pos[rows]
        bad = self.need(rows, p, 8)
        ulen = self.u16(p + 4)
        sport, dport = self.u16(p), self.u16(p + 2)
        bad |= (ulen < 8) | (p + ulen > self.hend[rows])
        bad |= (sport == UDP_PORT_L2TP) | (dport == UDP_PORT_L2TP)
        keep = ~bad
        rows, p, ulen, dport = self.to_slow(rows, bad), p[keep], ulen[keep], dport[keep]
        ip_end = self.hend[rows]
        self.add(rows, Layer.UDP, p, 8, p + ulen)
        nxt = np.select([dport == UDP_PORT_VXLAN, dport == UDP_PORT_GENEVE], [_VXLAN, _GENEVE], 0)
        self.state[rows] = nxt
        self.pos[rows] = p + 8
        self.hend[rows] = p + ulen
        plain = nxt == _DONE
        self.finish(rows[plain], Stop.END, ip_end[plain])

    def vxlan(self, rows: IntArray) -> None:
        p = self.pos[rows]
        rows = self.to_slow(rows, self.need(rows, p, VXLAN_HEADER_LEN))
        p = self.pos[rows]
        self.add(rows, Layer.VXLAN, p, VXLAN_HEADER_LEN, self.hend[rows])
        self.pos[rows] += VXLAN_HEADER_LEN
        self.state[rows] = _ETH

    def geneve(self, rows: IntArray) -> None:
        p = self.pos[rows]
        first = self.u8(p)
        hlen = GENEVE_HEADER_LEN + 4 * (first & 0x3F)
        bad = self.need(rows, p, GENEVE_HEADER_LEN) | (first >> 6 != 0) | self.need(rows, p, hlen)
        keep = ~bad
        rows, p, hlen = self.to_slow(rows, bad), p[keep], hlen[keep]
        self.add(rows, Layer.GENEVE, p, hlen, self.hend[rows])
        self.ethertype(rows, self.u16(p + 2), p + hlen)

    def gre(self, rows: IntArray) -> None:
        p = self.pos[rows]
        bad = self.need(rows, p, 4)
        flags, proto = self.u16(p), self.u16(p + 2)
        hlen = 4 + 4 * (
            ((flags & GRE_CHECKSUM) != 0).astype(_I64) + ((flags & GRE_KEY) != 0)
            + ((flags & GRE_SEQUENCE) != 0)
        )  # fmt: skip
        bad |= ((flags & 7) != 0) | ((flags & GRE_ROUTING) != 0) | self.need(rows, p, hlen)
        bad |= (proto == ETHERTYPE_ERSPAN_II) | (proto == ETHERTYPE_ERSPAN_III)
        keep = ~bad
        rows, p, hlen, flags, proto = (
            self.to_slow(rows, bad),
            p[keep],
            hlen[keep],
            flags[keep],
            proto[keep],
        )
        gflags = np.where((flags & GRE_CHECKSUM) != 0, F_CHECKSUM, 0)
        self.add(rows, Layer.GRE, p, hlen, self.hend[rows], gflags)
        self.ethertype(rows, proto, p + hlen)

    def link(self, rows: IntArray, linktypes: IntArray) -> None:
        """The first step: the link header of each record."""
        lt = linktypes[rows]
        p = self.pos[rows]
        eth = lt == LINKTYPE_ETHERNET
        self.state[rows[eth]] = _ETH
        self.state[rows[lt == LINKTYPE_IPV4]] = _IP4
        self.state[rows[lt == LINKTYPE_IPV6]] = _IP6
        raw = lt == LINKTYPE_RAW
        nibble = self.u8(p) >> 4
        bad = raw & ((nibble != 4) & (nibble != 6) | self.need(rows, p, 1))
        self.state[rows[raw & (nibble == 4)]] = _IP4
        self.state[rows[raw & (nibble == 6)]] = _IP6
        for linktype, kind, size, type_at in (
            (LINKTYPE_LINUX_SLL, Layer.SLL, SLL_HEADER_LEN, 14),
            (LINKTYPE_LINUX_SLL2, Layer.SLL2, SLL2_HEADER_LEN, 0),
        ):
            cooked = rows[lt == linktype]
            if not len(cooked):
                continue
            cp = self.pos[cooked]
            cooked = self.to_slow(cooked, self.need(cooked, cp, size))
            cp = self.pos[cooked]
            self.add(cooked, kind, cp, size, self.hend[cooked])
            self.ethertype(cooked, self.u16(cp + type_at), cp + size)
        known = any_of(lt, LINKTYPES)
        self.to_slow(rows, bad | ~known)


@dataclass(frozen=True, slots=True)
class PlainShape:
    """Where the headers of a plain TCP frame sit (offsets from the frame's first byte)."""

    ip_version: int
    src: int
    """The IP source address; the destination follows it."""
    addr_len: int
    l4: int
    """The TCP header."""


PLAIN_IPV4 = PlainShape(4, ETH_HEADER_LEN + 12, 4, ETH_HEADER_LEN + 20)
PLAIN_IPV6 = PlainShape(6, ETH_HEADER_LEN + 8, 16, ETH_HEADER_LEN + 40)


def plain_tcp_rows(
    data: npt.NDArray[np.uint8], starts: IntArray, caplens: IntArray, linktypes: IntArray
) -> tuple[tuple[PlainShape, IntArray], tuple[PlainShape, IntArray]]:
    """The rows of the commonest frame among the records ``data[starts[i]:][:caplens[i]]``
    (a few byte tests, no walk): a complete untagged Ethernet II frame with IPv4 without
    options and not a fragment, or IPv6 without extension headers, carrying a whole TCP
    header: ``((PLAIN_IPV4, rows), (PLAIN_IPV6, rows))``. These are the tests of
    ``packet.headers._plain_tcp``, whose answers are the full walk's, so callers may read
    such a row's headers at the fixed offsets and send the others to the walk."""
    if not len(data) or not len(starts):
        empty = np.zeros(0, dtype=_I64)
        return (PLAIN_IPV4, empty), (PLAIN_IPV6, empty)

    def u8(offset: int) -> npt.NDArray[np.uint8]:
        got: npt.NDArray[np.uint8] = data.take(starts + offset, mode="clip")
        return got

    def u16(offset: int) -> IntArray:
        return (u8(offset).astype(_I64) << 8) | u8(offset + 1)

    eth = linktypes == LINKTYPE_ETHERNET
    ethertype = u16(12)
    v4 = eth & (caplens >= 54) & (ethertype == ETHERTYPE_IPV4) & (u8(14) == 0x45)
    v4 &= u8(23) == IPPROTO_TCP
    total = u16(16)
    doff4 = (u8(46) >> 4).astype(_I64) * 4
    v4 &= (total >= 40) & (14 + total <= caplens) & ((u16(20) & 0x3FFF) == 0)
    v4 &= (doff4 >= 20) & (20 + doff4 <= total)
    v6 = eth & (caplens >= 74) & (ethertype == ETHERTYPE_IPV6) & ((u8(14) >> 4) == 6)
    v6 &= u8(20) == IPPROTO_TCP
    payload = u16(18)
    doff6 = (u8(66) >> 4).astype(_I64) * 4
    v6 &= (payload >= 20) & (54 + payload <= caplens) & (doff6 >= 20) & (doff6 <= payload)
    return (PLAIN_IPV4, np.flatnonzero(v4)), (PLAIN_IPV6, np.flatnonzero(v6))


def locate_batch(
    buffer: bytes | bytearray | memoryview,
    starts: npt.ArrayLike,
    caplens: npt.ArrayLike,
    wire_lens: npt.ArrayLike | None = None,
    linktypes: npt.ArrayLike | int = LINKTYPE_ETHERNET,
    *,
    vectorized: bool = True,
) -> Locations:
    """Locate every header of the records ``buffer[starts[i] : starts[i] + caplens[i]]``.

    ``wire_lens`` are the original lengths (default: ``caplens``); ``linktypes`` one link
    type or one per record. ``vectorized=False`` sends every row through the scalar walk.
    """
    start = np.asarray(starts, dtype=_I64).reshape(-1)
    n = len(start)
    cap = np.asarray(caplens, dtype=_I64).reshape(-1)
    wire = cap if wire_lens is None else np.maximum(np.asarray(wire_lens, dtype=_I64), cap)
    lts = np.broadcast_to(np.asarray(linktypes, dtype=_I64), (n,))

    def table(dtype: type = _I64) -> npt.NDArray[Any]:  # hlen, flags, proto: small types
        return np.zeros((n, _FIRST_WIDTH), dtype=dtype)

    loc = Locations(
        starts=start, kind=table(np.int8), offset=table(), hlen=table(np.int32), end=table(),
        flags=table(np.int16), psrc=table(), pdst=table(), proto=table(np.int16),
        depth=np.zeros(n, dtype=_I64), stop=np.zeros(n, dtype=np.int8),
        stop_offset=np.zeros(n, dtype=_I64), slow=np.zeros(n, dtype=np.bool_),
    )  # fmt: skip
    view = memoryview(buffer).cast("B") if not isinstance(buffer, bytes) else buffer
    if n == 0:
        return loc
    if vectorized:
        data = np.frombuffer(view, dtype=np.uint8) if len(view) else np.zeros(1, np.uint8)
        walk = _Batch(data, loc, start + cap)
        walk.hend[:] = start + wire
        walk.link(np.arange(n, dtype=_I64), lts)
        steps = {
            _ETH: walk.eth, _IP4: walk.ip4, _IP6: walk.ip6, _TCP: walk.tcp, _UDP: walk.udp,
            _GRE: walk.gre, _VXLAN: walk.vxlan, _GENEVE: walk.geneve, _ICMP: walk.icmp,
        }  # fmt: skip
        for _ in range(4 * MAX_HOPS):
            live = walk.state != _DONE
            if not live.any():
                break
            states = walk.state[live]
            rows_live = np.flatnonzero(live)
            deep = loc.depth[rows_live] > MAX_HOPS - 2
            if deep.any():  # the scalar walk decides whether it fits
                walk.to_slow(rows_live, deep)
                states, rows_live = states[~deep], rows_live[~deep]
            for state in np.flatnonzero(np.bincount(states)).tolist():  # a few small codes
                steps[state](rows_live[states == state])
    else:
        loc.slow[:] = True
    for row in np.flatnonzero(loc.slow).tolist():
        _fill(loc, row, view, int(start[row]), int(cap[row]), int(wire[row]), int(lts[row]))
    return loc


def _fill(loc: Locations, row: int, view: bytes | memoryview, start: int, cap: int, wire: int,
          linktype: int) -> None:  # fmt: skip
    found = locate(view[start : start + cap], linktype, wire_len=wire)
    if len(found.hops) > loc.width:
        loc.grow(max(len(found.hops), min(2 * loc.width, MAX_HOPS)))
    loc.kind[row] = 0
    loc.offset[row] = loc.hlen[row] = loc.end[row] = loc.flags[row] = 0
    loc.psrc[row] = loc.pdst[row] = loc.proto[row] = 0
    for c, hop in enumerate(found.hops):
        loc.kind[row, c] = hop.kind
        loc.offset[row, c] = start + hop.offset
        loc.hlen[row, c] = hop.hlen
        loc.end[row, c] = start + hop.end
        loc.flags[row, c] = hop.flags
        loc.psrc[row, c] = start + hop.psrc if hop.psrc else 0
        loc.pdst[row, c] = start + hop.pdst if hop.pdst else 0
        loc.proto[row, c] = hop.proto
    loc.depth[row] = len(found.hops)
    loc.stop[row] = found.stop
    loc.stop_offset[row] = start + found.stop_offset
    if found.reason:
        loc.reasons[row] = found.reason


__all__ = [
    "PLAIN_IPV4",
    "PLAIN_IPV6",
    "Locations",
    "PlainShape",
    "any_of",
    "locate_batch",
    "plain_tcp_rows",
]

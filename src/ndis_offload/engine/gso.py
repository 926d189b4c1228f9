"""The vectorized segmentation core shared by LSO, USO and tunnelled (UDP-encapsulated) GSO.

A :class:`GsoPlan` says where the per-segment fields of a large send sit (every IP header,
the outer UDP header of a tunnel, the inner TCP / UDP header); :func:`cut` turns the send
into its wire frames with a fixed number of numpy calls whatever the segment count.

Everything that depends only on the *shape* of a send (header offsets and length, payload
size, MSS) is computed once and cached (:class:`Shape`): the row geometry, the reduction
bounds, the per-row constants, and *workspaces* — a zeroed output buffer with every column
view into it already made. A send then costs:

* every row's headers in one add of big-endian 32-bit lanes: the send's headers as a full
  segment carries them (lengths, IPv4 header checksum, the transport checksum *seed*, no
  FIN / PSH / CWR), plus a per-shape row constant (:meth:`Shape.head`): the TCP sequence
  number ``+ i * mss`` (a whole lane, wrapping like the field), the IPv4 ID ``+ i`` and
  header checksum ``- i`` (the checksum falls by one as the ID rises by one), the last
  row's lengths and seed, FIN / PSH on the last row and CWR on the first. The lanes line up
  with the transport header, so every 16-bit field is one half of a lane and changes
  without a carry while no IPv4 ID or checksum wraps (else those columns are computed
  apart);
* the payload as one strided copy (a row per segment, each full segment's payload one
  ``V<mss>`` element: a ``memcpy`` a row, not a 2-D byte loop);
* every transport checksum from one ``reduceat`` over whole rows read as little-endian
  ``uint32`` lanes. The transport checksum field is seeded with the pseudo-header sum minus
  the words of the headers before the transport (an IPv4 header sums to 0xFFFF, its own
  checksum; an IPv6 Payload Length, a tunnel's UDP length, an 802.3 length are the only
  other per-row words there, each ``short`` lower in the last row, as the seed's step
  says), so a row sums to exactly what its checksum covers, the fields just written
  (sequence numbers, flags, lengths) included. TCP rows are summed negated
  (``subtract.reduceat`` from a zero first lane), so one ``remainder`` gives the
  checksums. The sums are in the lanes' byte order and written through a little-endian
  view (a byte swap is a multiplication by 256 mod 0xFFFF, and the checksum of the
  swapped sum is the swapped checksum);
* a tunnel's outer UDP checksum from the rows' inner-header words alone: a segment whose
  transport checksum is filled sums to minus its pseudo-header;
* the frames cut from the buffer by one ``struct`` unpack (a C loop making the ``bytes``).

A :class:`Cutter` holds a plan with its shape and every constant the cut reads, gathered
once: the plan cache hands one out per flow, and a send unpacks one tuple.

The zero-copy entry point :func:`cut_rows` returns the segments as rows of one buffer
(:class:`SegmentRows`) instead of ``bytes`` objects.

Field rules follow Linux ``tcp_gso_segment`` / ``__udp_gso_segment`` /
``skb_udp_tunnel_segment``: every IPv4 ID +1 per segment, the sequence number advanced by
the bytes sent, CWR only on the first segment, FIN / PSH only on the last; a tunnel's
outer UDP checksum is filled only when the send carried a non-zero one.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from ndis_offload.errors import PacketError
from ndis_offload.packet.proto import IPPROTO_TCP, TCP_CWR, TCP_FIN, TCP_PSH, byte_view

U64Array = npt.NDArray[np.uint64]
U8Array = npt.NDArray[np.uint8]
ByteView = bytes | memoryview
"""A frame's bytes as the cut reads them: ``bytes``, or a 1-D memoryview of bytes."""

MAX_LENGTH_FIELD = 0xFFFF

_U64 = np.uint64
_U8 = np.uint8
_U64_TYPE = np.dtype(np.uint64)
_add, _subtract, _remainder, _ndarray = np.add, np.subtract, np.remainder, np.ndarray
"""Module names for the per-send calls (one lookup, not two)."""
_ROW_FLAGS = TCP_FIN | TCP_PSH | TCP_CWR
"""TCP flags of one row only: FIN / PSH on the last segment, CWR on the first."""
_PLAIN = 0x100
"""A :meth:`Shape.head` key bit: no IPv4 ID / checksum steps (:func:`_ipv4_columns`)."""
_LOW = 0x200
"""A :meth:`Shape.head` key bit: the checksum seed of a full segment plus the last row's
step (:attr:`Shape.seed_step`) passes 0xFFFF (the last row's seed then steps by
``seed_step - 0xFFFF``: no carry out of the field)."""
_BIG = 0xFFFF << 40
"""A multiple of 0xFFFF above every sum formed here: ``(_BIG - K - x) % 0xFFFF`` stays >= 0."""
_H = struct.Struct("!H")
_I = struct.Struct("!I")
_ALIGN = 8
_IP_MODS = np.array([0x10000, 0xFFFF], dtype=np.int64)
"""IPv4 ID wraps at 2**16, its header checksum modulo 0xFFFF."""


class IpHeader(NamedTuple):
    """One IP header of the send: its offset, version and (IPv4) header length."""

    offset: int
    version: int
    header_len: int
    """IPv4 IHL in bytes (the checksummed header); 40 for IPv6."""


class GsoPlan(NamedTuple):
    """Where the per-segment fields of one large send sit (offsets from the frame start).

    ``header_len`` bytes are repeated in front of every payload slice; the payload runs to
    ``end`` (bytes after it are link padding and are dropped).
    """

    header_len: int
    end: int
    ips: tuple[IpHeader, ...]
    """Every IP header, outermost first; each gets its length (and IPv4 ID / checksum)."""
    l4_offset: int
    l4_proto: int
    l4_pseudo: int
    """Folded pseudo-header sum of the innermost L4 header without its length."""
    outer_udp: int | None = None
    """Offset of a tunnel's outer UDP header (its length is set per segment)."""
    outer_udp_pseudo: int = 0
    outer_udp_checksum: bool = False
    """Fill the outer UDP checksum (the send carried a non-zero one)."""
    length_field: int | None = None
    """Offset of an 802.3 length field (LLC/SNAP frames): the bytes after it."""


@dataclass(slots=True)
class Segmentation:
    """The frames an LSO / USO / GSO send became, and the L4 payload bytes they carry.

    Not frozen: a frozen dataclass's ``__init__`` (``object.__setattr__`` per field) costs
    more than the rest of a small send's bookkeeping, and this object is made per send."""

    frames: list[bytes]
    payload_bytes: int
    """The LSOv1 completion ``TcpPayload`` value."""
    wire_bytes: int
    """``sum(map(len, frames))``, known from the cut's shape (every segment carries the
    headers, the payload is shared out): what transmit statistics count, without a pass over
    the frames."""


@dataclass(slots=True)
class SegmentRows:
    """The segments of one send as rows of one buffer (:func:`cut_rows`; no copy per frame).
    Not frozen, for the reason :class:`Segmentation` is not.

    Segment ``i`` is ``rows[i, start : start + length]``, the last one
    ``rows[-1, start : start + last_length]``; the bytes around them are padding.
    """

    rows: U8Array
    start: int
    length: int
    """Bytes in every segment but the last."""
    last_length: int
    payload_bytes: int

    def __len__(self) -> int:
        return len(self.rows)

    def frame(self, index: int) -> memoryview:
        """Segment ``index`` (negative counts from the end) as a view of the buffer."""
        count = len(self.rows)
        if not -count <= index < count:
            raise IndexError(index)
        index %= count
        size = self.last_length if index == count - 1 else self.length
        flat = self.rows.data.cast("B")
        at = index * self.rows.shape[1] + self.start
        return flat[at : at + size]

    def __iter__(self) -> Iterator[memoryview]:
        for index in range(len(self.rows)):
            yield self.frame(index)

    def frames(self) -> list[bytes]:
        """Every segment as ``bytes`` (one C loop)."""
        return list(_splitter(self.start, self.length, self.rows.shape[1], len(self) - 1,
                              self.last_length).unpack_from(self.rows.data))  # fmt: skip


@lru_cache(maxsize=64)
def _splitter(start: int, step: int, stride: int, rows: int, last: int) -> struct.Struct:
    """Cuts ``rows`` frames of ``step`` bytes (each at ``start`` in a row of ``stride``
    bytes) and one of ``last`` bytes from a buffer, in C."""
    row = f"{start}x{step}s{stride - start - step}x" if rows else ""
    return struct.Struct(f"{row * rows}{start}x{last}s")


@cache
def _be_words(count: int) -> struct.Struct:
    return struct.Struct(f"!{count}H")


def _size_error(plan: GsoPlan, largest: int) -> PacketError | None:
    """Why segments of ``largest`` payload bytes cannot carry the plan's length fields."""
    hdr = plan.header_len
    for ip in plan.ips:
        value = hdr - ip.offset - (0 if ip.version == 4 else 40) + largest
        if value > MAX_LENGTH_FIELD:
            return PacketError(
                f"segment of {largest} payload bytes exceeds the IPv{ip.version} length limit "
                f"({value} > {MAX_LENGTH_FIELD}); the total length limit caps the MSS",
                offset=ip.offset,
            )
    for udp in (plan.outer_udp, plan.l4_offset if plan.l4_proto != IPPROTO_TCP else None):
        if udp is not None and hdr - udp + largest > MAX_LENGTH_FIELD:
            return PacketError("segment exceeds the UDP length limit", offset=udp + 4)
    return None


def _length_fields(plan: GsoPlan, payload: int) -> tuple[tuple[int, int], ...]:
    """Every length field of the headers (offset, value) for a segment of ``payload``
    bytes."""
    hdr = plan.header_len
    fields = [
        (ip.offset + 2, hdr - ip.offset + payload)
        if ip.version == 4
        else (ip.offset + 4, hdr - ip.offset - 40 + payload)
        for ip in plan.ips
    ]
    if plan.length_field is not None:
        fields.append((plan.length_field, hdr - plan.length_field - 2 + payload))
    if plan.outer_udp is not None:
        fields.append((plan.outer_udp + 4, hdr - plan.outer_udp + payload))
    if plan.l4_proto != IPPROTO_TCP:
        fields.append((plan.l4_offset + 4, hdr - plan.l4_offset + payload))
    return tuple((at, value & 0xFFFF) for at, value in fields)


class _Workspace:
    """One zeroed output buffer of a shape with its column views (reused send after send;
    only the frame bytes are ever written, so the padding stays zero)."""

    __slots__ = ("buf", "flat", "rows", "tmpl", "head", "head_in", "head_bytes", "head_tmp",
                 "head_rows", "pay_rows",
                 "lanes", "sums", "csum", "ip_cols", "ip_tmp", "l4_tmp", "outer",
                 "outer_csum", "views")  # fmt: skip

    def __init__(self, shape: Shape) -> None:
        count, stride, p0 = shape.count, shape.stride, shape.start
        hdr, l4 = shape.hdr, shape.l4
        self.buf = np.zeros(count * stride, dtype=_U8)
        self.flat = self.buf.data
        data = self.buf.data
        self.rows = self.buf.reshape(count, stride)
        self.tmpl = bytearray(shape.lead + hdr)
        """The send's headers as a full segment carries them (after ``lead`` zeros)."""
        width = (shape.lead + hdr) // 4
        self.head_in = np.empty(count * width, dtype=np.uint32)
        self.head_bytes = self.head_in.data.cast("B")
        """The send's template repeated per row (written through this byte view)."""
        self.head_tmp = np.empty(count * width, dtype=np.uint32)
        self.head_rows = self.head_tmp.reshape(count, width)[:, ::-1]
        """The rows of ``head_tmp``, whose lanes run backwards (:meth:`Shape.head`)."""
        self.head = np.ndarray((count, width), ">u4", data, p0 - shape.lead, (stride, 4))
        """Every row's headers as big-endian 32-bit lanes (from ``lead`` bytes before the
        frame: the lanes line up with the transport header)."""
        self.pay_rows = np.ndarray((count - 1,), shape.pay_type, data, p0 + hdr, (stride,))
        """The payload of every full segment, one ``V<mss>`` element a row (a 1-D copy of
        whole elements, each one ``memcpy``: cheaper than a 2-D byte copy)."""
        self.lanes = np.frombuffer(data, dtype="<u4", count=shape.lane_count)
        self.sums = np.empty(count, dtype=_U64)
        self.l4_tmp = np.empty(count, dtype=_U64)
        at = p0 + l4 + (16 if shape.is_tcp else 6)
        self.csum = np.ndarray((count,), "<u2", data, at, (stride,))
        self.ip_cols = [
            np.ndarray((count, 2), ">u2", data, p0 + offset + 4, (stride, 6))
            for offset, _ in shape.ipv4
        ]
        self.ip_tmp: npt.NDArray[np.int64] | None = None
        """For IPv4 IDs or checksums that wrap (made when first needed)."""
        self.outer: npt.NDArray[np.uint16] | None = None
        self.outer_csum: npt.NDArray[np.uint16] | None = None
        if shape.outer_udp is not None:
            udp = shape.outer_udp
            self.outer = np.ndarray((count, (l4 - udp) // 2), ">u2", data, p0 + udp, (stride, 2))
            self.outer_csum = np.ndarray((count,), ">u2", data, p0 + udp + 6, (stride,))
        self.views = (
            self.head_bytes, self.head_in, self.head_tmp, self.head, self.head_rows, self.flat,
            self.pay_rows, self.lanes, self.sums, self.l4_tmp, self.csum,
        )  # fmt: skip
        """The views a send writes and reads, in :meth:`Cutter._fill`'s order."""


U32Array = npt.NDArray[np.uint32]


class Shape:
    """The geometry and per-row constants of one kind of send: header layout, payload
    size and MSS (addresses, ports and field values are per send).

    Row ``i`` of the output holds segment ``i`` at column :attr:`start`, chosen so the
    transport header starts 8-byte aligned and the row's first lane is zero; the row runs
    on to a multiple of 8 with zeros.

    Every row's headers are the send's (with full-segment lengths, the transport checksum
    seeded, IPv4 header checksum for a full segment) plus a per-row constant, added as big-endian
    32-bit lanes aligned with the transport header (:meth:`head`): the TCP sequence
    number is a whole lane (``+ i * mss``, wrapping like the field); every 16-bit field is
    one half of a lane, so the IPv4 ID (``+ i``), IPv4 header checksum (``- i``) and the
    last row's lengths change without a carry into the other half, provided no ID or
    checksum wraps (the ``_PLAIN`` deltas and :func:`_ipv4_columns` then take over).
    """

    __slots__ = ("count", "full", "mss", "last_len", "hdr", "l4", "is_tcp", "start",
                 "stride", "step", "last_step", "lane_count", "bounds", "ipv4", "ip_words",
                 "ip_base", "short", "id_max", "c_min", "c_max", "l4_full", "mod", "seed_shift",
                 "seed_step", "outer_shift", "seed_bias", "reduce", "cutter",
                 "outer_udp", "spare", "splitter", "error", "patches", "lead", "head_parts",
                 "heads", "last_at", "flags_at", "width", "keep", "put", "flags_shift",
                 "ip_bits", "pay_type")  # fmt: skip

    def __init__(self, plan: GsoPlan, size: int, mss: int) -> None:
        self.mss = mss
        self.count = count = max(1, -(-size // mss))
        self.full = full = count - 1
        self.last_len = last_len = size - full * mss
        self.hdr = hdr = plan.header_len
        self.l4 = l4 = plan.l4_offset
        self.is_tcp = is_tcp = plan.l4_proto == IPPROTO_TCP
        self.outer_udp = plan.outer_udp
        self.error: PacketError | None = None
        if hdr % 2 or any(ip.offset % 2 for ip in plan.ips):
            self.error = PacketError("IP header at an odd offset", offset=plan.ips[0].offset)
        ref = mss if full else last_len
        """The payload of every segment but the last (the last alone: its own)."""
        self.error = self.error or _size_error(plan, ref)
        self.lead = lead = -l4 % 4
        """Zero bytes in front of the headers so 32-bit lanes line up with the transport."""
        full_lengths = _length_fields(plan, ref)
        patches = [(at, _H.pack(value)) for at, value in full_lengths]
        patches.append((l4 + (16 if is_tcp else 6), b"\0\0"))  # the transport checksum
        if plan.outer_udp is not None:
            patches.append((plan.outer_udp + 6, b"\0\0"))
        self.patches = tuple((lead + at, value) for at, value in sorted(patches))
        """The template's fields (offsets from its start): lengths, zeroed checksums."""
        self.ipv4 = tuple((ip.offset, ip.header_len) for ip in plan.ips if ip.version == 4)
        self.ip_words = tuple((lead + at, _be_words(ihl // 2)) for at, ihl in self.ipv4)
        p0 = -l4 % _ALIGN
        self.start = p0 = p0 + _ALIGN if p0 < 4 else p0
        """The frame's column: the transport header 8-byte aligned, and the row's first lane
        zero (a TCP row's checksum is its negated sum, :meth:`Cutter._fill`)."""
        self.step = hdr + mss
        self.last_step = hdr + last_len
        self.stride = stride = -(-(p0 + hdr + ref) // _ALIGN) * _ALIGN
        self.last_at = full * stride + p0
        """Where the last segment starts in the output buffer."""
        self.flags_at = lead + l4 + 13 if is_tcp and full else 0
        """The TCP flags byte in the template, when FIN / PSH / CWR differ between rows."""
        # The template as one big-endian integer of ``width`` bytes: ``keep`` clears the
        # patched fields, every IPv4 header checksum and the row flags, ``put`` sets the
        # patches; ``ip_bits`` places each IPv4 header, its ID and its checksum.
        self.width = width = lead + hdr

        def bits(at: int, size: int) -> int:
            """The shift of the ``size``-byte field at template offset ``at``."""
            return 8 * (width - at - size)

        cleared = put = 0
        for at, value in self.patches:
            cleared |= (1 << 8 * len(value)) - 1 << bits(at, len(value))
            put |= int.from_bytes(value) << bits(at, len(value))
        for offset, _ in self.ipv4:
            cleared |= 0xFFFF << bits(lead + offset + 10, 2)
        self.flags_shift = bits(self.flags_at, 1) if self.flags_at else 0
        self.seed_shift = bits(lead + l4 + (16 if is_tcp else 6), 2)
        """The transport checksum field, seeded per send (:meth:`Cutter._fill`)."""
        if self.flags_at:
            cleared |= _ROW_FLAGS << self.flags_shift
        self.keep = (1 << 8 * width) - 1 ^ cleared
        self.put = put
        self.ip_bits = tuple(
            (bits(lead + at, ihl), (1 << 8 * ihl) - 1, bits(lead + at + 4, 2),
             bits(lead + at + 10, 2))
            for at, ihl in self.ipv4
        )  # fmt: skip
        """Per IPv4 header: shift and mask of the header, shifts of its ID and checksum."""
        # Lane ranges: every row whole (zeros around its frame), the last one to its
        # frame's end rounded up to a lane.
        lane = 4
        self.lane_count = (full * stride + p0 + self.last_step + lane - 1) // lane
        rows = np.arange(count, dtype=np.intp)[:, None]
        self.bounds = np.arange(count, dtype=np.intp) * (stride // lane)
        self.short = short = ref - last_len
        """Payload bytes the last segment lacks (its IPv4 checksum is higher by as many)."""
        # A row's sum holds its headers before the transport: each IPv4 header sums to
        # 0xFFFF (its checksum), every other length field there (IPv6 Payload Length, a
        # tunnel's UDP length, an 802.3 length) is ``short`` lower in the last row, as is
        # the transport length of the pseudo-header. The seed (:meth:`Cutter._fill`) is the
        # pseudo-header minus those headers; the last row's seed differs by this step.
        uncompensated = sum(ip.version == 6 for ip in plan.ips)
        uncompensated += (plan.outer_udp is not None) + (plan.length_field is not None)
        self.seed_step = -short * (1 - uncompensated) % 0xFFFF
        self.outer_shift = 8 * (hdr - l4)
        """The template's bits from the transport header on (below: the headers before)."""
        # TCP rows are summed negated (a zero first lane minus the rest: ``2**64 - sum``,
        # which is ``1 - sum`` modulo 0xFFFF; the seed's extra 256 is that 1 in the
        # little-endian domain), UDP rows as they are.
        self.reduce = np.subtract.reduceat if is_tcp else np.add.reduceat
        self.seed_bias = 256 if is_tcp else 0
        self.id_max = 0xFFFF - full
        self.c_min, self.c_max = full, 0xFFFE + full - short
        """The lane deltas hold for a first IPv4 ID up to ``id_max`` and a full-segment
        header checksum in ``[c_min, c_max]`` (nothing wraps)."""
        # IPv4 IDs or checksums that wrap: [ID, checksum] of row i are [id0 + i, c0 - i]
        # (c0 for a full segment), the last row's checksum higher by ``short``.
        base = rows * (1, -1)
        base[full, 1] += short
        self.ip_base = base
        self.head_parts = self._head_deltas(full_lengths, plan, last_len)
        self.heads: dict[int, U32Array] = {}
        self.l4_full = hdr - l4 + ref
        """The transport length of a full segment (in its pseudo-header)."""
        self.mod = np.full(count, 0xFFFF, dtype=_U64)
        self.spare: list[_Workspace] = []
        self.cutter: Cutter | None = None
        """The latest :class:`Cutter` made for this shape (:func:`cutter_for`)."""
        self.splitter = _splitter(p0, self.step, stride, full, self.last_step)
        self.pay_type = np.dtype(f"V{mss}")
        """A full segment's payload as one numpy element (:attr:`_Workspace.pay_rows`)."""

    def _head_deltas(
        self, full_lengths: tuple[tuple[int, int], ...], plan: GsoPlan, last_len: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """What each row adds to the send's header lanes: without and with the IPv4 ID /
        checksum steps (without: for :func:`_ipv4_columns`)."""
        count, full, lead = self.count, self.full, self.lead
        width = (lead + self.hdr) // 4
        deltas = np.zeros((count, width), dtype=np.int64)
        if self.error is not None:  # odd offsets: never cut
            return deltas, deltas
        step = np.arange(count, dtype=np.int64)

        def lane(at: int) -> tuple[int, int]:
            """The lane of the 16-bit field at ``at`` and the shift of its half (every
            field sits at an even offset: a shape with an odd IP offset is refused above,
            and every header length is even)."""
            index, half = divmod(lead + at, 4)
            return index, 16 if half == 0 else 0

        if full:
            last_lengths = _length_fields(plan, last_len)
            for (at, value), (_, last) in zip(full_lengths, last_lengths, strict=True):
                index, shift = lane(at)
                deltas[full, index] += (last - value) << shift
        if self.is_tcp:
            deltas[:, (lead + self.l4 + 4) // 4] += step * self.mss
        plain = deltas.copy()
        for offset, _ in self.ipv4:
            index, shift = lane(offset + 4)
            deltas[:, index] += step << shift
            index, shift = lane(offset + 10)
            deltas[:, index] -= step << shift
            deltas[full, index] += self.short << shift
        return plain, deltas

    def head(self, key: int) -> U32Array:
        """The lane deltas for ``key``: the send's FIN / PSH / CWR bits (FIN / PSH go to
        the last row, CWR to the first), plus ``_PLAIN`` for no IPv4 ID / checksum steps.
        Made on first use, at most 16 per shape."""
        deltas = self.heads.get(key)
        if deltas is None:
            plain, stepped = self.head_parts
            rows = (plain if key & _PLAIN else stepped).copy()
            if self.flags_at:
                index = self.flags_at // 4  # the flags byte is the second of its lane
                rows[self.full, index] += (key & (TCP_FIN | TCP_PSH)) << 16
                rows[0, index] += (key & TCP_CWR) << 16
            if self.seed_step:
                # The last row's seed, without a carry out of the field (``_LOW``).
                index, half = divmod(self.width - 2 - self.seed_shift // 8, 4)
                step = self.seed_step - (0xFFFF if key & _LOW else 0)
                rows[self.full, index] += step << (16 if half == 0 else 0)
            # Lanes backwards, as the reversed template has them.
            deltas = self.heads[key] = (rows[:, ::-1] & 0xFFFFFFFF).astype(np.uint32).ravel()
        return deltas


_SHAPES: dict[tuple[object, ...], Shape] = {}
_MAX_SHAPES = 128


def shape_for(plan: GsoPlan, mss: int) -> Shape:
    """The cached shape of a send cut at ``mss`` (thread-safe: at worst two threads build
    the same one)."""
    if mss <= 0:
        raise PacketError(f"MSS {mss} must be positive")
    size = plan.end - plan.header_len
    key = (plan.header_len, plan.ips, plan.l4_offset, plan.l4_proto, plan.outer_udp,
           plan.length_field, size, mss)  # fmt: skip
    shape = _SHAPES.get(key)
    if shape is None:
        if len(_SHAPES) >= _MAX_SHAPES:
            _SHAPES.pop(next(iter(_SHAPES)), None)
        shape = _SHAPES[key] = Shape(plan, size, mss)
    return shape


class _Args(NamedTuple):
    """Everything the cut of one plan with one shape reads, gathered once (a send then
    reads them in one unpacking, not attribute by attribute)."""

    error: PacketError | None
    spare: list[_Workspace]
    flags_shift: int
    flags_mask: int
    keep: int
    put: int
    ip_bits: tuple[tuple[int, int, int, int], ...]
    id_max: int
    c_min: int
    c_max: int
    seed_base: int
    outer_shift: int
    seed_step: int
    seed_shift: int
    heads: dict[int, U32Array]
    width: int
    rows: int
    last_at: int
    last_step: int
    end: int
    full: int
    mss: int
    hdr: int
    reduce: Callable[..., U64Array]
    bounds: npt.NDArray[np.intp]
    mod: U64Array
    is_tcp: bool
    outer_checksum: bool
    pay_type: np.dtype[np.void]


class Cutter:
    """A plan with its shape: cuts sends laid out as the plan says (a flow's sends, cached
    by :func:`~ndis_offload.engine.gso_send.plan_plain_shaped`)."""

    __slots__ = ("plan", "shape", "args", "size", "wire_bytes", "splitter", "spare")

    def __init__(self, plan: GsoPlan, shape: Shape) -> None:
        self.plan = plan
        self.shape = s = shape
        self.size = plan.end - plan.header_len
        self.wire_bytes = s.step * (s.count - 1) + s.last_step
        self.splitter = s.splitter
        self.spare = s.spare
        self.args = _Args(
            s.error, s.spare, s.flags_shift, _ROW_FLAGS if s.flags_at else 0, s.keep, s.put,
            s.ip_bits, s.id_max, s.c_min, s.c_max, plan.l4_pseudo + s.l4_full + s.seed_bias,
            s.outer_shift, s.seed_step, s.seed_shift, s.heads, s.width, s.count, s.last_at,
            s.last_step, plan.end, s.full, s.mss, plan.header_len, s.reduce, s.bounds, s.mod,
            s.is_tcp, s.outer_udp is not None and plan.outer_udp_checksum, s.pay_type,
        )  # fmt: skip

    def segments(self, view: ByteView) -> Segmentation:
        """The send in ``view`` cut into ``bytes`` frames."""
        ws = self._fill(view)
        frames = self.splitter.unpack_from(ws.flat)
        self.spare.append(ws)
        return Segmentation(list(frames), self.size, self.wire_bytes)

    def rows(self, view: ByteView) -> SegmentRows:
        """The send in ``view`` cut into the rows of one new buffer."""
        ws = self._fill(view)
        shape = self.shape
        rows = ws.rows.copy()
        self.spare.append(ws)
        return SegmentRows(rows, shape.start, shape.step, shape.last_step, self.size)

    def _fill(self, view: ByteView) -> _Workspace:
        """Cut the send in ``view`` into the rows of a workspace of its shape."""
        (error, spare, flags_shift, flags_mask, keep, put, ip_bits, id_max, c_min, c_max,
         seed_base, outer_shift, seed_step, seed_shift, heads, width, rows, last_at, last_step,
         end, full, mss, hdr, reduce, bounds, mod, is_tcp, outer_checksum,
         pay_type) = self.args  # fmt: skip
        if error is not None:
            raise error
        ws = spare.pop() if spare else _Workspace(self.shape)
        (head_bytes, head_in, head_tmp, head_be, head_rows, flat, pay_rows, lanes, sums, total,
         csum) = ws.views  # fmt: skip

        # The headers of a full segment: lengths, transport checksum 0, no FIN / PSH / CWR,
        # and the IPv4 header checksum; every row gets them plus its lane deltas.
        # Built as one integer (Python's big-int operators beat slicing a bytearray): a sum
        # of 16-bit words is the integer modulo 0xFFFF (2**16 is 1 modulo 0xFFFF).
        head = int.from_bytes(view[:hdr])
        key = head >> flags_shift & flags_mask
        head = head & keep | put
        for at, mask, id_at, sum_at in ip_bits:
            c0 = -(head >> at & mask) % 0xFFFF
            head |= c0 << sum_at
            if head >> id_at & 0xFFFF > id_max or not c_min <= c0 <= c_max:
                key |= _PLAIN
        # The transport checksum field is seeded so that a whole row sums to the segment's
        # pseudo-header and transport (the headers before the transport subtracted).
        seed = (seed_base - (head >> outer_shift)) % 0xFFFF
        if seed + seed_step > 0xFFFF:
            key |= _LOW
        head |= seed << seed_shift
        deltas = heads.get(key)
        if deltas is None:
            deltas = self.shape.head(key)
        # Little-endian, the template's big-endian lanes are native ones in reverse order.
        head_bytes[:] = head.to_bytes(width, "little") * rows
        _add(head_in, deltas, out=head_tmp)
        head_be[...] = head_rows
        if key & _PLAIN:
            ws.tmpl[:] = head.to_bytes(width)
            _ipv4_columns(ws, self.shape)

        # The payload: one strided copy of the full segments, the last one apart.
        flat[last_at + hdr : last_at + last_step] = view[hdr + full * mss : end]
        if full:
            pay_rows[...] = _ndarray((full,), pay_type, view, hdr)

        # Transport checksums: every row summed as little-endian lanes (with the seed: its
        # pseudo-header and transport); the checksum is minus the sum modulo 0xFFFF, which
        # TCP rows give as they are (negated sums). (A ufunc writing the 16-bit fields
        # itself would cast: slower than the copy.)
        _remainder(reduce(lanes, bounds, dtype=_U64_TYPE, out=sums), mod, out=total)
        if not is_tcp:  # UDP: 0xFFFF - (sum % 0xFFFF), a computed 0 sent as 0xFFFF
            _subtract(mod, total, out=total)
        csum[...] = total
        if outer_checksum:
            _outer_udp_checksum(ws, self.plan)
        return ws


def cutter_for(plan: GsoPlan, shape: Shape) -> Cutter:
    """The cutter of ``plan`` with its ``shape`` (the shape keeps its latest one)."""
    cutter = shape.cutter
    if cutter is None or (cutter.plan is not plan and cutter.plan != plan):
        cutter = shape.cutter = Cutter(plan, shape)
    return cutter


def _ipv4_columns(ws: _Workspace, shape: Shape) -> None:
    """[ID, header checksum] of every row of every IPv4 header, computed (an ID or a
    checksum that wraps), from the template's ID and full-segment checksum."""
    if ws.ip_tmp is None:
        ws.ip_tmp = np.empty((shape.count, 2), dtype=np.int64)
    for (at, words), cols in zip(shape.ip_words, ws.ip_cols, strict=True):
        fields: tuple[int, ...] = words.unpack_from(ws.tmpl, at)
        id0, c0 = fields[2], fields[5]
        np.add(shape.ip_base, (id0, c0), out=ws.ip_tmp)
        if id0 + shape.full > 0xFFFF:  # the ID wraps to 0: one less in the sum, one more
            ws.ip_tmp[0x10000 - id0 :, 1] += 1
        np.remainder(ws.ip_tmp, _IP_MODS, out=cols, casting="unsafe")


def _outer_udp_checksum(ws: _Workspace, plan: GsoPlan) -> None:
    """A tunnel's outer UDP checksum. The inner transport range of each row (checksum
    filled) sums to minus its pseudo-header, and the outer UDP length exceeds the inner
    transport length by the constant ``l4 - outer_udp``, so the outer sum is the inner
    headers' words plus constants."""
    udp = plan.outer_udp
    assert udp is not None and ws.outer is not None and ws.outer_csum is not None
    words = ws.outer.sum(axis=1, dtype=_U64)
    const = plan.outer_udp_pseudo - plan.l4_pseudo + plan.l4_offset - udp
    total = np.subtract(_U64(_BIG - const - 1), words)
    total %= _U64(0xFFFF)
    np.add(total, _U64(1), out=ws.outer_csum, casting="unsafe")


def cut(
    frame: bytes | bytearray | memoryview, plan: GsoPlan, mss: int, *, shape: Shape | None = None
) -> Segmentation:
    """Cut the payload of ``frame`` (laid out as ``plan`` says) into ``mss``-byte segments
    (``shape``: :func:`shape_for` of the plan and ``mss``, when the caller has it)."""
    return cut_view(byte_view(frame), plan, shape or shape_for(plan, mss))


def cut_view(view: ByteView, plan: GsoPlan, shape: Shape) -> Segmentation:
    """:func:`cut` of a byte view with its shape."""
    return cutter_for(plan, shape).segments(view)


def cut_rows(
    frame: bytes | bytearray | memoryview, plan: GsoPlan, mss: int, *, shape: Shape | None = None
) -> SegmentRows:
    """:func:`cut` without making a ``bytes`` object per segment: the segments stay in the
    rows of one new buffer (see :class:`SegmentRows`), the caller's to keep."""
    return cut_rows_view(byte_view(frame), plan, shape or shape_for(plan, mss))


def cut_rows_view(view: ByteView, plan: GsoPlan, shape: Shape) -> SegmentRows:
    """:func:`cut_rows` of a byte view with its shape."""
    return cutter_for(plan, shape).rows(view)

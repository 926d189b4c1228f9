"""The vectorized segmentation core shared by LSO, USO and tunnelled (UDP-encapsulated) GSO.

A :class:`GsoPlan` says where the per-segment fields of a large send sit (every IP header,
the outer UDP header of a tunnel, the inner TCP / UDP header); :func:`cut` turns the send
into its wire frames with a fixed number of numpy calls whatever the segment count.

Everything that depends only on the *shape* of a send (header offsets and length, payload
size, MSS) is computed once and cached (:class:`_Shape`): the row geometry, the reduction
bounds, the per-row constants, and *workspaces* — a zeroed output buffer with every column
view into it already made. A send then costs:

* the headers of a full segment (the send's headers with full-segment lengths, checksums
  zeroed) broadcast into every row; the last row gets its own (short lengths, FIN / PSH);
  CWR stays on the first row only;
* the payload as one strided copy (a row per segment);
* the IPv4 ID and header checksum of every row in one add + remainder through a strided
  ``(rows, 2)`` big-endian view (the checksum falls by one as the ID rises by one);
* the TCP sequence numbers as one ``uint32`` add (wrapping like the field);
* every transport checksum from one ``reduceat`` over the rows, each range running from the
  TCP / UDP header to the end of the row, so the header fields just written (sequence
  numbers, flags, UDP lengths) are summed with the payload and need no arithmetic of their
  own. The rows are placed so each range starts 8-byte aligned, and read as little-endian
  ``uint32`` lanes; the checksum is computed in that byte order and written through a
  little-endian view (a byte swap is a multiplication by 256 mod 0xFFFF, and the checksum
  of the swapped sum is the swapped checksum);
* a tunnel's outer UDP checksum from the rows' inner-header words alone: a segment whose
  transport checksum is filled sums to minus its pseudo-header;
* the frames cut from the buffer by one ``struct`` unpack (a C loop making the ``bytes``).

The zero-copy entry point :func:`cut_rows` returns the segments as rows of one buffer
(:class:`SegmentRows`) instead of ``bytes`` objects.

Field rules follow Linux ``tcp_gso_segment`` / ``__udp_gso_segment`` /
``skb_udp_tunnel_segment``: every IPv4 ID +1 per segment, the sequence number advanced by
the bytes sent, CWR only on the first segment, FIN / PSH only on the last; a tunnel's
outer UDP checksum is filled only when the send carried a non-zero one.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from ndis_offload.errors import PacketError
from ndis_offload.packet.proto import IPPROTO_TCP, TCP_CWR, TCP_FIN, TCP_PSH

U64Array = npt.NDArray[np.uint64]
U8Array = npt.NDArray[np.uint8]

MAX_LENGTH_FIELD = 0xFFFF

_U64 = np.uint64
_U8 = np.uint8
_BIG = 0xFFFF << 40
"""A multiple of 0xFFFF above every sum formed here: ``(_BIG - K - x) % 0xFFFF`` stays >= 0."""
_H = struct.Struct("!H")
_I = struct.Struct("!I")
_ALIGN = 8
_ZEROS = {2: b"\0\0", 4: b"\0\0\0\0"}
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


@dataclass(frozen=True, slots=True)
class Segmentation:
    """The frames an LSO / USO / GSO send became, and the L4 payload bytes they carry."""

    frames: list[bytes]
    payload_bytes: int
    """The LSOv1 completion ``TcpPayload`` value."""


@dataclass(frozen=True, slots=True)
class SegmentRows:
    """The segments of one send as rows of one buffer (:func:`cut_rows`; no copy per frame).

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


def _words(buf: bytes | bytearray, start: int, end: int) -> int:
    """Unfolded sum of the big-endian 16-bit words of an even-length slice."""
    words: tuple[int, ...] = _be_words((end - start) // 2).unpack_from(buf, start)
    return sum(words)


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


def _length_fields(plan: GsoPlan, payload: int) -> tuple[tuple[int, bytes], ...]:
    """Every length field of the headers (offset, big-endian value) for a segment of
    ``payload`` bytes."""
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
    return tuple((at, _H.pack(value & 0xFFFF)) for at, value in fields)


class _Workspace:
    """One zeroed output buffer of a shape with its column views (reused send after send;
    only the frame bytes are ever written, so the padding stays zero)."""

    __slots__ = ("buf", "flat", "hdr_first", "hdr_rest", "pay_rows", "lanes", "sums",
                 "payload", "csum", "seq", "ip_cols", "ip_tmp", "ip_vec", "l4_tmp", "outer",
                 "outer_csum", "l4_key", "l4_const")  # fmt: skip

    def __init__(self, shape: _Shape) -> None:
        count, stride, p0 = shape.count, shape.stride, shape.start
        hdr, l4 = shape.hdr, shape.l4
        self.buf = np.zeros(count * stride, dtype=_U8)
        self.flat = self.buf.data
        data = self.buf.data
        rows = self.buf.reshape(count, stride)
        self.hdr_first = rows[0, p0 : p0 + hdr]
        self.hdr_rest = rows[1 : count - 1, p0 : p0 + hdr]
        self.pay_rows = rows[: count - 1, p0 + hdr : p0 + hdr + shape.mss]
        self.lanes = np.frombuffer(data, dtype="<u4", count=shape.lane_count)
        self.sums = np.empty(len(shape.bounds), dtype=_U64)
        self.payload = self.sums[::2]
        self.l4_tmp = np.empty(count, dtype=_U64)
        at = p0 + l4 + (16 if shape.is_tcp else 6)
        self.csum = np.ndarray((count,), "<u2", data, at, (stride,))
        self.seq = np.ndarray((count,), ">u4", data, p0 + l4 + 4, (stride,))
        self.ip_cols = [
            np.ndarray((count, 2), ">u2", data, p0 + offset + 4, (stride, 6))
            for offset, _ in shape.ipv4
        ]
        self.ip_tmp: npt.NDArray[np.int64] | None = None
        """For IDs or checksums that wrap (made when first needed)."""
        self.ip_vec = np.zeros(2, dtype=np.uint16)
        self.outer: npt.NDArray[np.uint16] | None = None
        self.outer_csum: npt.NDArray[np.uint16] | None = None
        if shape.outer_udp is not None:
            udp = shape.outer_udp
            self.outer = np.ndarray((count, (l4 - udp) // 2), ">u2", data, p0 + udp, (stride, 2))
            self.outer_csum = np.ndarray((count,), ">u2", data, p0 + udp + 6, (stride,))
        self.l4_key = -1
        self.l4_const = np.empty(count, dtype=_U64)


class _Shape:
    """The geometry and per-row constants of one kind of send: header layout, payload
    size and MSS (addresses, ports and field values are per send).

    Row ``i`` of the output holds segment ``i`` at column :attr:`start`, chosen so the
    transport header starts 8-byte aligned; the row runs on to a multiple of 8 with zeros.
    """

    __slots__ = ("count", "full", "mss", "last_len", "hdr", "l4", "is_tcp", "start",
                 "stride", "step", "last_step", "lane_count", "bounds", "ipv4", "ip_base",
                 "ip_slack", "ip_base16", "seq_base", "l4_lengths", "outer_udp", "spare",
                 "splitter", "error", "zeroed", "full_lengths", "last_lengths")  # fmt: skip

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
        self.full_lengths = _length_fields(plan, ref)
        self.last_lengths = _length_fields(plan, last_len)
        self.ipv4 = tuple((ip.offset, ip.header_len) for ip in plan.ips if ip.version == 4)
        zeroed = [(offset + 10, 2) for offset, _ in self.ipv4]
        zeroed.append((l4 + (16 if is_tcp else 6), 2))
        if plan.outer_udp is not None:
            zeroed.append((plan.outer_udp + 6, 2))
        self.zeroed = tuple(zeroed)
        self.start = p0 = -l4 % _ALIGN
        self.step = hdr + mss
        self.last_step = hdr + last_len
        self.stride = stride = -(-(p0 + hdr + ref) // _ALIGN) * _ALIGN
        # Lane ranges: row i from its transport header to the end of the row; the last row
        # to its frame's end rounded up to a lane (zeros). The gaps between ranges (the next
        # row's outer headers) are summed into slots that are dropped.
        lane = 4
        self.lane_count = (full * stride + p0 + self.last_step + lane - 1) // lane
        rows = np.arange(count, dtype=np.intp)[:, None]
        self.bounds = (rows * (stride // lane) + ((p0 + l4) // lane, stride // lane)).ravel()[:-1]
        # IPv4: [ID, checksum] of row i are [id0 + i, c0 - i] (c0 for a total length of
        # ``ref`` payload bytes); the last row's checksum is higher by the bytes it lacks.
        base = rows * (1, -1)
        base[full, 1] += ref - last_len
        self.ip_base = base
        self.ip_base16 = base.astype(np.uint16) if self.ipv4 else base
        self.ip_slack = (full, 0xFFFE - max(ref - last_len - full, 0 if full else -full))
        """Checksum c0 values in [full, 0xFFFE - max] need no remainder."""
        self.seq_base = np.arange(0, count * mss, mss, dtype=np.uint32)
        # The transport length (in the pseudo-header) of each row, little-endian domain.
        self.l4_lengths = np.full(count, 256 * (hdr - l4 + ref) % 0xFFFF, dtype=np.int64)
        self.l4_lengths[full] = 256 * (hdr - l4 + last_len) % 0xFFFF
        self.spare: list[_Workspace] = []
        self.splitter = _splitter(p0, self.step, stride, full, self.last_step)

    def workspace(self) -> _Workspace:
        try:
            return self.spare.pop()
        except IndexError:
            return _Workspace(self)


_SHAPES: dict[tuple[object, ...], _Shape] = {}
_MAX_SHAPES = 128


def _shape(plan: GsoPlan, size: int, mss: int) -> _Shape:
    """The cached shape of a send (thread-safe: at worst two threads build the same one)."""
    key = (plan.header_len, plan.ips, plan.l4_offset, plan.l4_proto, plan.outer_udp,
           plan.length_field, size, mss)  # fmt: skip
    shape = _SHAPES.get(key)
    if shape is None:
        if len(_SHAPES) >= _MAX_SHAPES:
            _SHAPES.pop(next(iter(_SHAPES)), None)
        shape = _SHAPES[key] = _Shape(plan, size, mss)
    return shape


def _fill(view: memoryview, plan: GsoPlan, mss: int) -> tuple[_Shape, _Workspace]:
    """Cut the send in ``view`` into the rows of a workspace of its shape."""
    if mss <= 0:
        raise PacketError(f"MSS {mss} must be positive")
    hdr = plan.header_len
    shape = _shape(plan, plan.end - hdr, mss)
    if shape.error is not None:
        raise shape.error
    full, last_len, l4, is_tcp = shape.full, shape.last_len, shape.l4, shape.is_tcp

    # The headers of a full segment (checksums zeroed) and of the last one.
    tmpl = bytearray(view[:hdr])
    for at, width in shape.zeroed:
        tmpl[at : at + width] = _ZEROS[width]
    flags0 = tmpl[l4 + 13] if is_tcp else 0
    last = bytearray(tmpl)
    for at, value in shape.last_lengths:
        last[at : at + 2] = value
    for at, value in shape.full_lengths:
        tmpl[at : at + 2] = value
    if full and is_tcp:
        tmpl[l4 + 13] = flags0 & ~(TCP_FIN | TCP_PSH | TCP_CWR)
        last[l4 + 13] = flags0 & ~TCP_CWR

    ws = shape.workspace()
    flat = ws.flat
    at = full * shape.stride + shape.start
    flat[at : at + hdr] = last
    flat[at + hdr : at + hdr + last_len] = view[hdr + full * mss : plan.end]
    if full:
        at = shape.start
        flat[at : at + hdr] = tmpl
        if full > 1:
            ws.hdr_rest[...] = ws.hdr_first
        if flags0 & TCP_CWR:
            flat[at + l4 + 13] = flags0 & ~(TCP_FIN | TCP_PSH)
        np.copyto(ws.pay_rows, np.ndarray((full, mss), _U8, view, hdr))

    low, high = shape.ip_slack
    for (offset, ihl), cols in zip(shape.ipv4, ws.ip_cols, strict=True):
        (id0,) = _H.unpack_from(view, offset + 4)
        tmpl[offset + 4 : offset + 6] = b"\0\0"
        c0 = (_BIG - _words(tmpl, offset, offset + ihl) - id0) % 0xFFFF
        if id0 + full <= 0xFFFF and low <= c0 <= high:  # nothing wraps: uint16 adds
            vec = ws.ip_vec
            vec[0] = id0
            vec[1] = c0
            np.add(shape.ip_base16, vec, out=cols)
            continue
        if ws.ip_tmp is None:
            ws.ip_tmp = np.empty((shape.count, 2), dtype=np.int64)
        np.add(shape.ip_base, (id0, c0), out=ws.ip_tmp)
        if id0 + full > 0xFFFF:  # the ID wraps to 0: one less in the sum, one more here
            ws.ip_tmp[0x10000 - id0 :, 1] += 1
        np.remainder(ws.ip_tmp, _IP_MODS, out=cols, casting="unsafe")
    if is_tcp:
        np.add(shape.seq_base, _I.unpack_from(view, l4 + 4)[0], out=ws.seq, casting="unsafe")

    # Transport checksums: header + payload of each row (the checksum field is 0) summed
    # as little-endian lanes, the pseudo-header (addresses, protocol, length) added.
    np.add.reduceat(ws.lanes, shape.bounds, dtype=_U64, out=ws.sums)
    if ws.l4_key != plan.l4_pseudo:
        pseudo = (256 * plan.l4_pseudo + (0 if is_tcp else 1)) % 0xFFFF
        np.subtract(_BIG - pseudo, shape.l4_lengths, out=ws.l4_const, casting="unsafe")
        ws.l4_key = plan.l4_pseudo
    total = np.subtract(ws.l4_const, ws.payload, out=ws.l4_tmp)
    if is_tcp:
        np.remainder(total, _U64(0xFFFF), out=ws.csum, casting="unsafe")
    else:  # UDP: a computed 0 is sent as 0xFFFF
        np.remainder(total, _U64(0xFFFF), out=total)
        np.add(total, _U64(1), out=ws.csum, casting="unsafe")
    if ws.outer is not None and plan.outer_udp_checksum:
        _outer_udp_checksum(ws, plan)
    return shape, ws


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


def _as_bytes(frame: bytes | bytearray | memoryview) -> memoryview:
    view = memoryview(frame)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def cut(frame: bytes | bytearray | memoryview, plan: GsoPlan, mss: int) -> Segmentation:
    """Cut the payload of ``frame`` (laid out as ``plan`` says) into ``mss``-byte segments."""
    shape, ws = _fill(_as_bytes(frame), plan, mss)
    frames = shape.splitter.unpack_from(ws.buf.data)
    shape.spare.append(ws)
    return Segmentation(list(frames), plan.end - plan.header_len)


def cut_rows(frame: bytes | bytearray | memoryview, plan: GsoPlan, mss: int) -> SegmentRows:
    """:func:`cut` without making a ``bytes`` object per segment: the segments stay in the
    rows of one new buffer (see :class:`SegmentRows`), the caller's to keep."""
    shape, ws = _fill(_as_bytes(frame), plan, mss)
    rows = ws.buf.reshape(shape.count, shape.stride).copy()
    shape.spare.append(ws)
    return SegmentRows(rows, shape.start, shape.step, shape.last_step, plan.end - plan.header_len)

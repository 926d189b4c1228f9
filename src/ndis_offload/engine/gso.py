"""The vectorized segmentation core shared by LSO, USO and tunnelled (UDP-encapsulated) GSO.

A :class:`GsoPlan` says where the per-segment fields of a large send sit (every IP header,
the outer UDP header of a tunnel, the inner TCP / UDP header); :func:`cut` turns the send
into its wire frames with a fixed number of numpy calls whatever the segment count:

* one preallocated output buffer holds a row per segment: headers, then the payload slice
  (one strided copy); the headers of every row come from broadcasting a template that
  already holds the full-segment lengths;
* the per-segment fields (IPv4 ID, TCP sequence number, checksums) are written as whole
  columns through a big-endian ``uint16`` view of the rows, and the first / last rows are
  patched as scalars (CWR only on the first segment, FIN / PSH and the short length only
  on the last);
* the payload slice sums come from one ``reduceat`` over the payload seen as ``uint32``
  lanes (little-endian sums are byte-swapped by multiplying by 256:
  ``swap16(x) == 256 * x (mod 0xFFFF)``);
* every checksum is ``(C - varying) % 0xFFFF`` where ``C`` holds the header constants, so
  no folding loop runs per segment; the IPv4 header checksum falls by one as the ID rises
  by one, so it is an ``arange`` too;
* the frames are cut from the buffer by one ``struct`` unpack (a C loop making the
  ``bytes`` objects).

Field rules follow Linux ``tcp_gso_segment`` / ``__udp_gso_segment`` /
``skb_udp_tunnel_segment``: every IPv4 ID +1 per segment, the sequence number advanced by
the bytes sent, CWR only on the first segment, FIN / PSH only on the last; a tunnel's
outer UDP checksum is filled only when the send carried a non-zero one.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from ndis_offload.errors import PacketError
from ndis_offload.packet.checksum import batch_sums, ones_complement_sum
from ndis_offload.packet.proto import IPPROTO_TCP, TCP_CWR, TCP_FIN, TCP_PSH

U64Array = npt.NDArray[np.uint64]

MAX_LENGTH_FIELD = 0xFFFF

_U64 = np.uint64
_U8 = np.uint8
_M32 = 0xFFFFFFFF
_BIG = 0xFFFF << 40
"""A multiple of 0xFFFF above every sum formed here: ``(_BIG - K - x) % 0xFFFF`` stays >= 0."""
_H = struct.Struct("!H")
_I = struct.Struct("!I")


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


@cache
def _be_words(count: int) -> struct.Struct:
    return struct.Struct(f"!{count}H")


def _words(buf: bytes | bytearray, start: int, end: int) -> int:
    """Unfolded sum of the big-endian 16-bit words of an even-length slice."""
    words: tuple[int, ...] = _be_words((end - start) // 2).unpack_from(buf, start)
    return sum(words)


@lru_cache(maxsize=64)
def _bounds(rows: int, width: int) -> npt.NDArray[np.intp]:
    bounds = np.arange(0, rows * width, width, dtype=np.intp)
    bounds.flags.writeable = False
    return bounds


def payload_sums(view: memoryview, start: int, size: int, mss: int, count: int) -> U64Array:
    """Per-segment payload sums, each congruent (mod 0xFFFF) to the slice's big-endian
    ones' complement sum and non-negative.

    With ``mss % 4 == 0`` the payload is read as little-endian ``uint32`` words and every
    segment summed by one ``reduceat``; a little-endian sum ``x`` is the big-endian one
    times 256 (mod 0xFFFF), since 256 * 256 == 65536 == 1.
    """
    full = count - 1
    if count == 1:
        return np.array([ones_complement_sum(view[start : start + size])], dtype=_U64)
    if mss % 4:
        offsets = start + mss * np.arange(count, dtype=np.int64)
        lengths = np.full(count, mss, dtype=np.int64)
        lengths[full] = size - full * mss
        return batch_sums(view, offsets, lengths)
    whole = size // 4
    lanes = np.frombuffer(view, dtype="<u4", count=whole, offset=start)
    if whole > full * mss // 4:
        sums = np.add.reduceat(lanes, _bounds(count, mss // 4), dtype=_U64)
    else:  # the last segment holds fewer than 4 bytes
        sums = np.zeros(count, dtype=_U64)
        sums[:full] = np.add.reduceat(lanes, _bounds(full, mss // 4), dtype=_U64)
    if size % 4:
        sums[full] += _U64(int.from_bytes(view[start + 4 * whole : start + size], "little"))
    sums *= _U64(256)
    return sums


@lru_cache(maxsize=64)
def _splitter(step: int, stride: int, rows: int, last: int) -> struct.Struct:
    """Cuts ``rows`` frames of ``step`` bytes (each in ``stride`` bytes) and one of ``last``
    bytes from a buffer, in C."""
    return struct.Struct(f"{rows * (f'{step}s' + 'x' * (stride - step))}{last}s")


def _check_sizes(plan: GsoPlan, largest: int) -> None:
    hdr = plan.header_len
    for ip in plan.ips:
        value = hdr - ip.offset - (0 if ip.version == 4 else 40) + largest
        if value > MAX_LENGTH_FIELD:
            raise PacketError(
                f"segment of {largest} payload bytes exceeds the IPv{ip.version} length limit "
                f"({value} > {MAX_LENGTH_FIELD}); the total length limit caps the MSS",
                offset=ip.offset,
            )
    for udp in (plan.outer_udp, plan.l4_offset if plan.l4_proto != IPPROTO_TCP else None):
        if udp is not None and hdr - udp + largest > MAX_LENGTH_FIELD:
            raise PacketError("segment exceeds the UDP length limit", offset=udp + 4)


def cut(frame: bytes | bytearray | memoryview, plan: GsoPlan, mss: int) -> Segmentation:
    """Cut the payload of ``frame`` (laid out as ``plan`` says) into ``mss``-byte segments."""
    if mss <= 0:
        raise PacketError(f"MSS {mss} must be positive")
    view = memoryview(frame)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    hdr, l4 = plan.header_len, plan.l4_offset
    if hdr % 2 or any(ip.offset % 2 for ip in plan.ips):
        raise PacketError("IP header at an odd offset", offset=plan.ips[0].offset)
    size = plan.end - hdr
    count = max(1, -(-size // mss))
    full = count - 1
    last_len = size - full * mss
    _check_sizes(plan, min(size, mss))
    delta = (last_len - mss) % 0xFFFF  # the last segment's length change, mod 0xFFFF
    is_tcp = plan.l4_proto == IPPROTO_TCP

    # Template: the headers of a full segment with the varying fields and checksums zeroed.
    tmpl = bytearray(view[:hdr])
    for ip in plan.ips:
        if ip.version == 4:
            _H.pack_into(tmpl, ip.offset + 2, hdr - ip.offset + mss)
            tmpl[ip.offset + 10 : ip.offset + 12] = b"\0\0"
        else:
            _H.pack_into(tmpl, ip.offset + 4, hdr - ip.offset - 40 + mss)
    if plan.length_field is not None:
        _H.pack_into(tmpl, plan.length_field, hdr - plan.length_field - 2 + mss)
    if plan.outer_udp is not None:
        _H.pack_into(tmpl, plan.outer_udp + 4, hdr - plan.outer_udp + mss)
        tmpl[plan.outer_udp + 6 : plan.outer_udp + 8] = b"\0\0"
    flags0 = 0
    if is_tcp:
        (seq0,) = _I.unpack_from(tmpl, l4 + 4)
        flags0 = tmpl[l4 + 13]
        tmpl[l4 + 4 : l4 + 8] = b"\0\0\0\0"
        tmpl[l4 + 13] = flags0 & ~(TCP_FIN | TCP_PSH | TCP_CWR)
        tmpl[l4 + 16 : l4 + 18] = b"\0\0"
        csum_at = l4 + 16
    else:
        _H.pack_into(tmpl, l4 + 4, hdr - l4 + mss)
        tmpl[l4 + 6 : l4 + 8] = b"\0\0"
        csum_at = l4 + 6

    # One output buffer: a row of ``stride`` bytes per segment (headers, then payload; a
    # pad byte when the frame length is odd, so every row holds whole big-endian words).
    step = hdr + mss
    stride = step + (step & 1)
    out = np.empty(count * stride, dtype=_U8)
    rows = out.reshape(count, stride)
    words = out.view(">u2").reshape(count, stride // 2)
    rows[:, :hdr] = np.frombuffer(tmpl, dtype=_U8)
    src = np.frombuffer(view, dtype=_U8, count=plan.end)
    if full:
        rows[:full, hdr:step] = src[hdr : hdr + full * mss].reshape(full, mss)
    rows[full, hdr : hdr + last_len] = src[hdr + full * mss : plan.end]

    for ip in plan.ips:
        if ip.version == 4:
            (id0,) = _H.unpack_from(tmpl, ip.offset + 4)
            tmpl[ip.offset + 4 : ip.offset + 6] = b"\0\0"
            const = _BIG - _words(tmpl, ip.offset, ip.offset + ip.header_len)
            # The checksum falls by one as the ID rises by one: an arange unless either wraps.
            words[:, (ip.offset + 4) // 2] = np.arange(id0, id0 + count, dtype=np.int64)
            top = (const - id0) % 0xFFFF
            if id0 + count <= 0x10000 and top >= full:
                ip_csum = np.arange(top, top - count, -1, dtype=np.int64)
                ip_csum[full] = (top - full - delta) % 0xFFFF
            else:
                ids = (id0 + np.arange(count, dtype=np.int64)) & 0xFFFF
                ip_csum = (const - ids) % 0xFFFF
                ip_csum[full] = (int(ip_csum[full]) - delta) % 0xFFFF
            words[:, (ip.offset + 10) // 2] = ip_csum

    sums = payload_sums(view, hdr, size, mss, count)
    payload = sums.copy() if plan.outer_udp_checksum else sums
    l4_const = plan.l4_pseudo + (hdr - l4 + mss) + _words(tmpl, l4, hdr)
    if is_tcp:
        seq = np.arange(seq0, seq0 + count * mss, mss, dtype=np.int64)
        if seq0 + full * mss > _M32:
            seq &= _M32
        # A big-endian uint32 column (rows need not be 4-byte aligned); the cast keeps the
        # low 32 bits.
        np.ndarray((count,), ">u4", out.data, l4 + 4, (stride,))[:] = seq
        sums += seq.view(_U64)  # seq as two 16-bit words is congruent to seq
        sums[0] += _U64(flags0 & TCP_CWR)
        sums[full] += _U64((flags0 & (TCP_FIN | TCP_PSH)) + delta)
        rows[0, l4 + 13] |= flags0 & TCP_CWR
        rows[full, l4 + 13] |= flags0 & (TCP_FIN | TCP_PSH)
        l4_csum = np.subtract(_U64(_BIG - l4_const), sums)
        l4_csum %= _U64(0xFFFF)
    else:  # UDP: the length is in the pseudo-header and in the header; 0 is sent as 0xFFFF
        sums[full] += _U64(2 * delta)
        l4_csum = np.subtract(_U64(_BIG - l4_const - 1), sums)
        l4_csum %= _U64(0xFFFF)
        l4_csum += _U64(1)
    words[:, csum_at // 2] = l4_csum
    if last_len != mss:
        _last_lengths(words[full], plan, last_len)
    if plan.outer_udp is not None and plan.outer_udp_checksum:
        _outer_udp_checksum(words, plan, payload, mss, delta)
    frames = _splitter(step, stride, full, hdr + last_len).unpack_from(out.data)
    return Segmentation(list(frames), size)


def _last_lengths(row: npt.NDArray[np.uint16], plan: GsoPlan, last_len: int) -> None:
    """The length fields of the last (short) segment's header row."""
    hdr = plan.header_len
    for ip in plan.ips:
        at = ip.offset + (2 if ip.version == 4 else 4)
        row[at // 2] = hdr - ip.offset - (0 if ip.version == 4 else 40) + last_len
    udps = [plan.outer_udp] if plan.outer_udp is not None else []
    if plan.l4_proto != IPPROTO_TCP:
        udps.append(plan.l4_offset)
    for udp in udps:
        row[(udp + 4) // 2] = hdr - udp + last_len
    if plan.length_field is not None:
        row[plan.length_field // 2] = hdr - plan.length_field - 2 + last_len


def _outer_udp_checksum(
    words: npt.NDArray[np.uint16], plan: GsoPlan, payload: U64Array, mss: int, delta: int
) -> None:
    """A tunnel's outer UDP checksum: pseudo-header, every header byte after it (inner
    headers with their final fields), and the payload slice."""
    udp = plan.outer_udp
    assert udp is not None
    hdr = plan.header_len
    rows = words[:, udp // 2 : hdr // 2].sum(axis=1, dtype=_U64)
    total = rows + payload
    total[-1] += _U64(delta)
    const = plan.outer_udp_pseudo + (hdr - udp + mss)
    csum = np.subtract(_U64(_BIG - const - 1), total)
    csum %= _U64(0xFFFF)
    csum += _U64(1)
    words[:, (udp + 6) // 2] = csum

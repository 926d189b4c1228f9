"""Receive checksum validation of many frames in one vectorized pass.

The frames are joined into one buffer; the frame locator
(:func:`~ndis_offload.packet.locate_batch.locate_batch`) finds the outer IP and transport
headers of the common shapes (any VLAN stack, IPv4 with options, IPv6 directly followed by
TCP / UDP) with numpy gathers, and
every IPv4 header, L4 segment and pseudo-header address block is summed over one 16-bit
big-endian view of the buffer (frames are placed at even offsets, so every header starts on a
word: gathers for headers, one ``np.add.reduceat`` for all L4 segments; this is several times
faster than the alignment-agnostic :func:`~ndis_offload.packet.checksum.batch_sums`).
Anything else (LLC/SNAP, IPv6 extension headers, short or malformed frames) goes
through the per-frame
:func:`~ndis_offload.engine.receive.validate_word`, so results are identical to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ndis_offload.engine.receive import (
    IP_FAILED,
    IP_SUCCEEDED,
    TCP_FAILED,
    TCP_SUCCEEDED,
    UDP_FAILED,
    UDP_SUCCEEDED,
    receive_info,
    validate_word,
)
from ndis_offload.errors import PacketError
from ndis_offload.packet.locate import F_FRAGMENT, F_ZERO_LENGTH, IP_LAYERS, Layer
from ndis_offload.packet.locate_batch import locate_batch as locate_frames
from ndis_offload.packet.proto import (
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    MAX_VLAN_TAGS,
    VLAN_TPIDS,
    Frame,
)
from ndis_offload.structs.nbl_info import NdisTcpIpChecksumNetBufferListInfoReceive

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
WordArray = npt.NDArray[np.uint32]
U32Array = npt.NDArray[np.uint32]
U64Array = npt.NDArray[np.uint64]

_PAD = 160
"""Zero bytes after the joined frames, so fixed-offset gathers never leave the buffer."""
_I64 = np.int64


@dataclass(frozen=True, slots=True)
class BatchLayout:
    """Headers of many frames joined in ``buffer``; offsets are absolute in ``buffer``.

    Only rows with ``fast`` set were located here; the other fields of other rows are
    meaningless. ``l4_len`` is 0 for a fragment or when there is no TCP / UDP header.
    """

    buffer: bytes
    data: npt.NDArray[np.uint8]
    starts: IntArray
    lengths: IntArray
    fast: BoolArray
    version: IntArray
    l3: IntArray
    l3_len: IntArray
    l4: IntArray
    l4_len: IntArray
    end: IntArray
    proto: IntArray
    fragment: BoolArray

    def u8(self, pos: IntArray) -> IntArray:
        """The byte at each absolute position."""
        return self.data[pos].astype(_I64)

    def u16(self, pos: IntArray) -> IntArray:
        """The big-endian 16-bit word at each absolute position."""
        return (self.u8(pos) << 8) | self.u8(pos + 1)

    def u32(self, pos: IntArray) -> IntArray:
        """The big-endian 32-bit word at each absolute position."""
        return (self.u16(pos) << 16) | self.u16(pos + 2)


def locate_batch(frames: Sequence[Frame]) -> BatchLayout:
    """Join ``frames`` and locate their outer IP / transport headers with the frame locator.

    Rows the vectorized locator took (Ethernet with any VLAN stack, IPv4 with options, IPv6
    without extension headers, TCP / UDP) are ``fast``; the others go to the per-frame
    :func:`~ndis_offload.engine.receive.validate_word`.
    """
    lengths = np.fromiter((len(f) for f in frames), dtype=_I64, count=len(frames))
    starts = np.zeros(len(frames), dtype=_I64)
    if len(frames) > 1:  # every frame starts at an even offset: 16-bit words stay aligned
        np.cumsum((lengths + (lengths & 1))[:-1], out=starts[1:])
    buffer = b"".join(
        (bytes(f) + b"\0" if len(f) & 1 else bytes(f)) if not isinstance(f, bytes) else
        (f + b"\0" if len(f) & 1 else f)
        for f in frames
    ) + bytes(_PAD)  # fmt: skip
    data = np.frombuffer(buffer, dtype=np.uint8)
    loc = locate_frames(buffer, starts, lengths)
    rows = np.arange(len(frames))
    ip_col = loc.column(IP_LAYERS)
    col = np.maximum(ip_col, 0)
    kind = loc.kind[rows, col]
    l3, l3_len, end = loc.offset[rows, col], loc.hlen[rows, col], loc.end[rows, col]
    flags = loc.flags[rows, col]
    next_col = np.minimum(col + 1, loc.width - 1)
    next_kind = np.where(col + 1 < loc.depth, loc.kind[rows, next_col], 0)
    has_l4 = (next_kind == Layer.TCP) | (next_kind == Layer.UDP)
    version = np.where(kind == Layer.IPV4, 4, 6)
    fast = (ip_col >= 0) & ~loc.slow & (l3 % 2 == 0) & (l3_len % 2 == 0)
    fast &= (flags & F_ZERO_LENGTH) == 0
    fast &= (version == 4) | ((loc.psrc[rows, col] == l3 + 8) & (loc.pdst[rows, col] == l3 + 24))
    return BatchLayout(
        buffer, data, starts, lengths, fast, version, l3, l3_len, l3 + l3_len,
        np.where(has_l4, loc.hlen[rows, next_col], 0), end, loc.proto[rows, col],
        (flags & F_FRAGMENT) != 0,
    )  # fmt: skip


_K30 = np.arange(30, dtype=_I64)
_K16 = np.arange(16, dtype=_I64)


def _gather_sums(words: U32Array, first: IntArray, count: IntArray, k: IntArray) -> U64Array:
    """Sums of ``count[i] <= len(k)`` 16-bit words from word index ``first[i]``."""
    picked = words[first[:, None] + k]
    sums: U64Array = np.where(k < count[:, None], picked, 0).sum(axis=1, dtype=np.uint64)
    return sums


def _range_sums(
    words: U32Array, data: npt.NDArray[np.uint8], first: IntArray, length: IntArray
) -> U64Array:
    """Exact big-endian word sums of ``[first, first + length)`` (``first`` even, ranges
    sorted and disjoint): one ``np.add.reduceat`` over the 16-bit view of the buffer."""
    out = np.zeros(len(first), dtype=np.uint64)
    live = length >= 2
    if live.any():
        idx = np.empty(2 * int(live.sum()), dtype=_I64)
        idx[0::2] = first[live] // 2
        idx[1::2] = first[live] // 2 + length[live] // 2
        out[live] = np.add.reduceat(words, idx, dtype=np.uint64)[0::2]
    odd = (length & 1) == 1
    out[odd] += data[first[odd] + length[odd] - 1].astype(np.uint64) << np.uint64(8)
    return out


def _fold(values: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    for _ in range(3):
        values = (values & np.uint64(0xFFFF)) + (values >> np.uint64(16))
    return values


def batch_words(
    layout: BatchLayout, frames: Sequence[Frame], *, ip: bool = True, tcp: bool = True,
    udp: bool = True, slow: bool = True,
) -> WordArray:  # fmt: skip
    """``Receive`` info words of every frame of ``layout`` (see :func:`validate_batch`).

    With ``slow=False`` the rows :func:`locate_batch` did not locate are left 0.
    """
    n = len(frames)
    words = np.zeros(n, dtype=np.uint32)
    fast = layout.fast
    v4 = fast & (layout.version == 4)
    is_tcp = fast & (layout.l4_len >= 20) & (layout.proto == IPPROTO_TCP)
    is_udp = fast & (layout.l4_len == 8) & (layout.proto == IPPROTO_UDP)
    udp_len = np.where(is_udp, layout.u16(layout.l4 + 4), 0)
    udp_field = np.where(is_udp, layout.u16(layout.l4 + 6), 1)
    udp_none = is_udp & (udp_field == 0) & v4  # RFC 768: no checksum
    udp_bad = (
        is_udp & ~udp_none & ((udp_field == 0) | (udp_len < 8) | (udp_len > layout.end - layout.l4))
    )
    sum_udp = is_udp & ~udp_none & ~udp_bad
    l4_len = np.where(is_tcp, layout.end - layout.l4, np.where(sum_udp, udp_len, 0))
    l4_rows = is_tcp | sum_udp
    w16 = np.frombuffer(layout.buffer, dtype=">u2").astype(np.uint32)
    l3w = np.where(fast, layout.l3 // 2, 0)
    ip_sum = _fold(_gather_sums(w16, l3w, np.where(v4, layout.l3_len // 2, 0), _K30))
    addr_sum = _gather_sums(
        w16, l3w + np.where(v4, 6, 4), np.where(l4_rows, np.where(v4, 4, 16), 0), _K16
    )
    l4_sum = _fold(_range_sums(w16, layout.data, np.where(l4_rows, layout.l4, 0), l4_len))
    if ip:
        words |= np.where(v4, np.where(ip_sum == 0xFFFF, IP_SUCCEEDED, IP_FAILED), 0).astype(
            np.uint32
        )
    pseudo = addr_sum + layout.proto.astype(np.uint64) + l4_len.astype(np.uint64)
    l4_valid = _fold(_fold(pseudo) + l4_sum) == 0xFFFF
    if tcp:
        words |= np.where(is_tcp, np.where(l4_valid, TCP_SUCCEEDED, TCP_FAILED), 0).astype(
            np.uint32
        )
    if udp:
        udp_word = np.where(sum_udp, np.where(l4_valid, UDP_SUCCEEDED, UDP_FAILED), 0)
        words |= np.where(udp_bad, UDP_FAILED, udp_word).astype(np.uint32)
    for index in np.flatnonzero(~fast).tolist() if slow else ():
        try:
            words[index] = validate_word(frames[index], ip=ip, tcp=tcp, udp=udp)
        except PacketError as error:
            raise error.for_frame(index) from error
    return words


def ip_version(frame: Frame) -> int:
    """The outer IP version of an Ethernet frame (4, 6, or 0 for none) after any 802.1Q /
    802.1ad stack: the Ethertype walk alone, no validation (what a receive path needs to
    pick per-family settings; the frame locator does the full walk)."""
    offset = 12
    for _ in range(MAX_VLAN_TAGS + 1):
        if len(frame) < offset + 2:
            return 0
        ethertype = (frame[offset] << 8) | frame[offset + 1]
        if ethertype == ETHERTYPE_IPV4:
            return 4
        if ethertype == ETHERTYPE_IPV6:
            return 6
        if ethertype not in VLAN_TPIDS:
            return 0
        offset += 4
    return 0


def ip_versions(frames: Sequence[Frame]) -> list[int]:
    """:func:`ip_version` of each frame."""
    return [ip_version(frame) for frame in frames]


def validate_batch_words(
    frames: Sequence[Frame], *, ip: bool = True, tcp: bool = True, udp: bool = True
) -> WordArray:
    """:func:`validate_batch` as an array of ``Receive`` info words (``View.to_int()``)."""
    return batch_words(locate_batch(frames), frames, ip=ip, tcp=tcp, udp=udp)


def validate_batch(
    frames: Sequence[Frame], *, ip: bool = True, tcp: bool = True, udp: bool = True
) -> list[NdisTcpIpChecksumNetBufferListInfoReceive]:
    """:func:`~ndis_offload.engine.receive.validate_receive` of every frame, vectorized.

    A frame that cannot be parsed raises :class:`PacketError` naming its ``frame_index``.
    """
    words = validate_batch_words(frames, ip=ip, tcp=tcp, udp=udp)
    return [receive_info(word) for word in words.tolist()]


__all__ = [
    "BatchLayout",
    "batch_words",
    "ip_version",
    "ip_versions",
    "locate_batch",
    "validate_batch",
    "validate_batch_words",
]

"""Link-layer adapters: cooked (SLL / SLL2) and raw IP records as Ethernet frames and back,
and which way a captured frame went.

The engine works on Ethernet frames; a cooked header is swapped for a 14-byte Ethernet
header that carries the same EtherType (a raw IP record gets one), and restored around
whatever frames come back. Directions come from the SLL / SLL2 packet type, or from the
pcapng Enhanced Packet Block ``epb_flags`` option (inbound / outbound).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from ndis_offload.errors import PacketError
from ndis_offload.packet.proto import (
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    LINKTYPES,
    SLL2_HEADER_LEN,
    SLL_HEADER_LEN,
    SLL_OUTGOING,
)

SUPPORTED = LINKTYPES
HEADER_LEN = {
    LINKTYPE_ETHERNET: 14, LINKTYPE_LINUX_SLL: SLL_HEADER_LEN,
    LINKTYPE_LINUX_SLL2: SLL2_HEADER_LEN, LINKTYPE_RAW: 0, LINKTYPE_IPV4: 0, LINKTYPE_IPV6: 0,
}  # fmt: skip
OPT_EPB_FLAGS = 2
"""pcapng ``epb_flags``: bits 0-1 are the direction (1 inbound, 2 outbound)."""
_RAW = (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6)


def add_frames_per_linktype(into: dict[int, int], more: Mapping[int, int]) -> None:
    """Add ``more``'s frame counts per link type to ``into`` (the unsupported link types a
    job counts, merged across chunks, pieces and processes)."""
    for linktype, frames in more.items():
        into[linktype] = into.get(linktype, 0) + frames


def to_ethernet(linktype: int, data: bytes) -> tuple[bytes, bytes]:
    """(link header to restore, Ethernet frame) for a record of ``linktype``."""
    if linktype == LINKTYPE_ETHERNET:
        return b"", data
    if linktype not in SUPPORTED:
        raise PacketError(f"link type {linktype} is not supported")
    if linktype in _RAW:
        if not data:
            raise PacketError("empty raw IP record", offset=0)
        version = data[0] >> 4
        ethertype = ETHERTYPE_IPV4 if version == 4 else ETHERTYPE_IPV6
        return b"", bytes(12) + ethertype.to_bytes(2, "big") + data
    size = HEADER_LEN[linktype]
    if len(data) < size:
        raise PacketError(f"truncated cooked header: {len(data)} of {size} bytes", offset=0)
    if linktype == LINKTYPE_LINUX_SLL:
        return data[:2], data[2:]
    return data[:20], bytes(12) + data[0:2] + data[20:]


def from_ethernet(linktype: int, header: bytes, frame: bytes) -> bytes:
    """Undo :func:`to_ethernet` for a (possibly new) Ethernet ``frame``."""
    if linktype == LINKTYPE_LINUX_SLL2:
        return header + frame[14:]
    if linktype in _RAW:
        return frame[14:]
    return header + frame


def direction(linktype: int, data: bytes) -> int:
    """1 sent by the capturing host, 0 received, -1 unknown (Ethernet has no direction)."""
    if linktype == LINKTYPE_LINUX_SLL and len(data) >= 2:
        return 1 if int.from_bytes(data[0:2], "big") == SLL_OUTGOING else 0
    if linktype == LINKTYPE_LINUX_SLL2 and len(data) >= 11:
        return 1 if data[10] == SLL_OUTGOING else 0
    return -1


def cooked_direction(
    data: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], caplens: npt.NDArray[np.int64],
    linktypes: npt.NDArray[np.int64],
) -> npt.NDArray[np.int8]:  # fmt: skip
    """:func:`direction` of many records of one buffer at once."""
    sll = (linktypes == LINKTYPE_LINUX_SLL) & (caplens >= 2)
    sll2 = (linktypes == LINKTYPE_LINUX_SLL2) & (caplens >= 11)
    if not (sll.any() or sll2.any()):
        return np.full(len(starts), -1, dtype=np.int8)
    at = np.where(sll, starts + 1, starts + 10)
    pkttype = data.take(at, mode="clip")
    high = np.where(sll, data.take(starts, mode="clip"), 0)
    out = np.where(sll | sll2, (pkttype == SLL_OUTGOING) & (high == 0), -1)
    return out.astype(np.int8)


def epb_direction(options: bytes | memoryview, big_endian: bool) -> int:
    """The direction in a pcapng EPB's options: 1 outbound, 0 inbound, -1 not said."""
    head = struct.Struct(">HH" if big_endian else "<HH")
    word = struct.Struct(">I" if big_endian else "<I")
    pos = 0
    while pos + 4 <= len(options):
        code, size = head.unpack_from(options, pos)
        if code == 0:
            break
        if code == OPT_EPB_FLAGS and size == 4 and pos + 8 <= len(options):
            bits = word.unpack_from(options, pos + 4)[0] & 3
            return {1: 0, 2: 1}.get(bits, -1)
        pos += 4 + (size + 3) // 4 * 4
    return -1


__all__ = [
    "HEADER_LEN",
    "OPT_EPB_FLAGS",
    "SUPPORTED",
    "cooked_direction",
    "direction",
    "epb_direction",
    "from_ethernet",
    "to_ethernet",
]

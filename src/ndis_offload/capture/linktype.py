"""Link-layer adapters: Linux cooked captures (SLL / SLL2) as Ethernet frames and back.

The engine works on Ethernet frames; a cooked header is swapped for a 14-byte Ethernet
header that carries the same EtherType, and restored around whatever frames come back.
"""

from __future__ import annotations

from ndis_offload.errors import PacketError

LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276
SUPPORTED = frozenset({LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2})

ETHERTYPE_POS = {LINKTYPE_ETHERNET: 12, LINKTYPE_LINUX_SLL: 14, LINKTYPE_LINUX_SLL2: 0}
"""Offset of the EtherType / protocol field from the start of the record."""
HEADER_LEN = {LINKTYPE_ETHERNET: 14, LINKTYPE_LINUX_SLL: 16, LINKTYPE_LINUX_SLL2: 20}
SLL_OUTGOING = 4
"""``sll_pkttype`` PACKET_OUTGOING: the host sent this frame."""


def to_ethernet(linktype: int, data: bytes) -> tuple[bytes, bytes]:
    """(link header to restore, Ethernet frame) for a record of ``linktype``."""
    if linktype == LINKTYPE_ETHERNET:
        return b"", data
    if linktype not in SUPPORTED:
        raise PacketError(f"link type {linktype} is not supported")
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
    return header + frame


def direction(linktype: int, data: bytes) -> int:
    """1 sent by the capturing host, 0 received, -1 unknown (Ethernet has no direction)."""
    if linktype == LINKTYPE_LINUX_SLL and len(data) >= 2:
        return 1 if int.from_bytes(data[0:2], "big") == SLL_OUTGOING else 0
    if linktype == LINKTYPE_LINUX_SLL2 and len(data) >= 11:
        return 1 if data[10] == SLL_OUTGOING else 0
    return -1


__all__ = [
    "ETHERTYPE_POS",
    "HEADER_LEN",
    "LINKTYPE_ETHERNET",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "SUPPORTED",
    "direction",
    "from_ethernet",
    "to_ethernet",
]

"""The outer IP and transport headers of an Ethernet frame, as one flat layout.

``parse_frame`` is the frame locator (:func:`~ndis_offload.packet.locate.locate`) stopped at
the first transport: Ethernet II, 802.1Q / QinQ tags, 802.3 + LLC/SNAP, MPLS, IPv4 (options,
fragments), IPv6 (extension headers, RFC 8200 §4) and TCP / UDP. Malformed or truncated
frames raise :class:`~ndis_offload.errors.PacketError` naming the byte offset of the problem.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ndis_offload.errors import PacketError
from ndis_offload.packet.locate import (
    F_FRAGMENT,
    F_ZERO_LENGTH,
    IP_LAYERS,
    Layer,
    Stop,
    locate,
)
from ndis_offload.packet.proto import (
    ETH_HEADER_LEN,
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    LINKTYPE_ETHERNET,
    LLC_SNAP_PREFIX,
    MAX_VLAN_TAGS,
    VLAN_TPIDS,
    byte_view,
)

_H = struct.Struct("!H")


@dataclass(frozen=True, slots=True)
class FrameLayout:
    """Header offsets of one frame; every offset counts from the first byte of the frame."""

    l3_offset: int
    """Length of the L2 header (Ethernet + VLAN tags + LLC/SNAP)."""
    ethertype: int
    vlan_tags: tuple[int, ...]
    """The TCI of each in-frame 802.1Q / 802.1ad tag, outermost first."""
    llc_snap: bool
    ip_version: int
    l3_len: int
    """IPv4 header with options, or IPv6 fixed header plus all extension headers."""
    ip_end: int
    """One past the IP datagram (bytes after it are Ethernet padding)."""
    l4_proto: int
    l4_offset: int
    l4_len: int
    """TCP header length with options, 8 for UDP, 0 otherwise or for non-first fragments."""
    is_fragment: bool
    pseudo_src: bytes
    pseudo_dst: bytes
    """Pseudo-header addresses: the IPv6 Home Address / final routing destination if present."""

    @property
    def l2_len(self) -> int:
        """Alias of :attr:`l3_offset`."""
        return self.l3_offset

    @property
    def payload_offset(self) -> int:
        """First byte after the L4 header."""
        return self.l4_offset + self.l4_len

    @property
    def payload_len(self) -> int:
        """Bytes of L4 payload inside the IP datagram."""
        return self.ip_end - self.payload_offset


def parse_frame(
    frame: bytes | bytearray | memoryview, *, zero_length_ok: bool = False
) -> FrameLayout:
    """Locate the headers of ``frame``.

    ``zero_length_ok`` (for LSO / USO sends) accepts an IPv4 Total Length / IPv6 Payload
    Length of 0 and derives it from the frame length (the NDIS convention), and an 802.3
    length field that cannot hold the size of a giant LLC/SNAP frame.
    """
    view = byte_view(frame)
    simple = _plain_tcp(view)
    if simple is not None:
        return simple
    return _parse_located(view, zero_length_ok)


_ETH_IPV4 = ETHERTYPE_IPV4.to_bytes(2, "big")
_ETH_IPV6 = ETHERTYPE_IPV6.to_bytes(2, "big")
_IPV4_FRAGMENT_BITS = 0x3FFF
"""MF and the fragment offset."""


def plain_tcp(frame: bytes | bytearray | memoryview) -> tuple[int, int, int] | None:
    """(TCP header offset, end of the IP datagram, TCP header length) of the commonest frame,
    a complete untagged Ethernet II + IPv4 without options (not a fragment) or IPv6 without
    extension headers + TCP, read with a few byte tests (IPv4 iff the offset is 34);
    ``None`` for anything else (the locator's walk then decides, and explains what is
    wrong). The one test of that layout for single frames: :func:`parse_frame` and the
    engine's small-frame fast paths (ACK checksums, pure ACKs under RSC) take it."""
    size = len(frame)
    if size < 54:
        return None
    ethertype = frame[12:14]
    if ethertype == _ETH_IPV4:
        if frame[14] != 0x45 or frame[23] != IPPROTO_TCP:
            return None
        total = (frame[16] << 8) | frame[17]
        if total < 40 or 14 + total > size or ((frame[20] << 8) | frame[21]) & _IPV4_FRAGMENT_BITS:
            return None
        doff = (frame[46] >> 4) * 4
        if doff < 20 or 20 + doff > total:
            return None
        return 34, 14 + total, doff
    if ethertype == _ETH_IPV6:
        if size < 74 or frame[14] >> 4 != 6 or frame[20] != IPPROTO_TCP:
            return None
        payload = (frame[18] << 8) | frame[19]
        if payload < 20 or 54 + payload > size:
            return None
        doff = (frame[66] >> 4) * 4
        if doff < 20 or doff > payload:
            return None
        return 54, 54 + payload, doff
    return None


def _plain_tcp(view: memoryview) -> FrameLayout | None:
    """The layout of a frame :func:`plain_tcp` recognises; ``None`` for anything else.
    Whenever it answers, the answer is the walk's (a property test holds it to that)."""
    found = plain_tcp(view)
    if found is None:
        return None
    l4, end, doff = found
    if l4 == 34:
        return FrameLayout(14, ETHERTYPE_IPV4, (), False, 4, 20, end, IPPROTO_TCP, 34, doff,
                           False, bytes(view[26:30]), bytes(view[30:34]))  # fmt: skip
    return FrameLayout(14, ETHERTYPE_IPV6, (), False, 6, 40, end, IPPROTO_TCP, 54, doff,
                       False, bytes(view[22:38]), bytes(view[38:54]))  # fmt: skip


def _parse_located(view: memoryview, zero_length_ok: bool) -> FrameLayout:
    """:func:`parse_frame` through the frame locator's full walk."""
    found = locate(view, LINKTYPE_ETHERNET, tunnels=False, giant_llc=zero_length_ok)
    at = found.index(IP_LAYERS)
    if at < 0 or found.stop in (Stop.MALFORMED, Stop.CUT, Stop.DEPTH):
        raise PacketError(found.reason, offset=found.stop_offset)
    ip = found.hops[at]
    if ip.flags & F_ZERO_LENGTH and not zero_length_ok:
        field = "IPv4 total length" if ip.kind == Layer.IPV4 else "IPv6 payload length"
        where = ip.offset + (2 if ip.kind == Layer.IPV4 else 4)
        raise PacketError(f"{field} 0 (an LSO send) where a length is needed", offset=where)
    l4 = ip.offset + ip.hlen
    after = found.hops[at + 1] if at + 1 < len(found.hops) else None
    l4_len = after.hlen if after is not None and after.kind in (Layer.TCP, Layer.UDP) else 0
    vlan = [hop for hop in found.hops[:at] if hop.kind == Layer.VLAN]
    tags = (
        tuple(_H.unpack_from(view, vlan[0].offset + 4 * i + 2)[0] for i in range(vlan[0].hlen // 4))
        if vlan
        else ()
    )
    return FrameLayout(
        l3_offset=ip.offset,
        ethertype=_H.unpack_from(view, ip.offset - 2)[0],
        vlan_tags=tags,
        llc_snap=any(hop.kind == Layer.LLC_SNAP for hop in found.hops[:at]),
        ip_version=4 if ip.kind == Layer.IPV4 else 6,
        l3_len=ip.hlen,
        ip_end=ip.end,
        l4_proto=ip.proto,
        l4_offset=l4,
        l4_len=l4_len,
        is_fragment=bool(ip.flags & F_FRAGMENT),
        pseudo_src=bytes(view[ip.psrc : ip.psrc + (4 if ip.kind == Layer.IPV4 else 16)]),
        pseudo_dst=bytes(view[ip.pdst : ip.pdst + (4 if ip.kind == Layer.IPV4 else 16)]),
    )


__all__ = [
    "ETHERTYPE_IPV4",
    "ETHERTYPE_IPV6",
    "ETH_HEADER_LEN",
    "IPPROTO_TCP",
    "IPPROTO_UDP",
    "LLC_SNAP_PREFIX",
    "MAX_VLAN_TAGS",
    "VLAN_TPIDS",
    "FrameLayout",
    "parse_frame",
]

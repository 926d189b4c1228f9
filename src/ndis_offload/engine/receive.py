"""Software receive checksum offload: the ``NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO.Receive``
flags a NIC reports with Rx IPv4 / TCP / UDP checksum offload enabled.

Rules (``docs/real-miniports.md``, NetKVM receive checksum: ``ParaNdis_CheckRxChecksum``):
IPv4 header checksum; TCP / UDP over IPv4 / IPv6 with the pseudo-header; UDP/IPv4 checksum 0
means "no checksum" (no verdict); UDP/IPv6 checksum 0 is invalid (RFC 8200 §8.1); a received
0xFFFF equals a computed 0 (the sum check treats both zeros alike); IP fragments get no L4
verdict; truncated or short datagrams are *failed*, never succeeded. Frames that cannot be
parsed at all (no locatable IP header) raise :class:`~ndis_offload.errors.PacketError`;
non-IP frames get no flags.
"""

from __future__ import annotations

import struct

from ndis_offload.errors import PacketError
from ndis_offload.packet.checksum import (
    ones_complement_sum,
    pseudo_header_sum_ipv4,
    pseudo_header_sum_ipv6,
)
from ndis_offload.packet.headers import FrameLayout, parse_frame
from ndis_offload.packet.locate import Layer, locate
from ndis_offload.packet.proto import (
    ETH_HEADER_LEN,
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    VLAN_TPIDS,
    byte_view,
)
from ndis_offload.packet.proto import Frame as Frame  # re-exported: rsc.py, rsc_fast.py
from ndis_offload.structs.nbl_info import NdisTcpIpChecksumNetBufferListInfoReceive

Receive = NdisTcpIpChecksumNetBufferListInfoReceive

TCP_FAILED = Receive(TcpChecksumFailed=1).to_int()
UDP_FAILED = Receive(UdpChecksumFailed=1).to_int()
IP_FAILED = Receive(IpChecksumFailed=1).to_int()
TCP_SUCCEEDED = Receive(TcpChecksumSucceeded=1).to_int()
UDP_SUCCEEDED = Receive(UdpChecksumSucceeded=1).to_int()
IP_SUCCEEDED = Receive(IpChecksumSucceeded=1).to_int()
"""Bits of the ``Receive`` info word (``View.to_int()`` layout)."""

_H = struct.Struct("!H")
_VALID = 0xFFFF
"""A folded ones' complement sum over data that includes a correct checksum field."""

_INFO_CACHE: dict[int, Receive] = {}


def receive_info(word: int) -> Receive:
    """The ``Receive`` view of an info word (cached: there are few distinct words)."""
    info = _INFO_CACHE.get(word)
    if info is None:
        info = _INFO_CACHE[word] = Receive.from_int(word)
    return info


def l4_pseudo_sum(layout: FrameLayout, length: int) -> int:
    """The pseudo-header sum (with ``length``) of the frame's L4 protocol."""
    if layout.ip_version == 4:
        return pseudo_header_sum_ipv4(layout.pseudo_src, layout.pseudo_dst, layout.l4_proto, length)
    return pseudo_header_sum_ipv6(layout.pseudo_src, layout.pseudo_dst, layout.l4_proto, length)


def receive_word(
    frame: Frame, layout: FrameLayout, *, ip: bool = True, tcp: bool = True, udp: bool = True
) -> int:
    """The ``Receive`` info word for a frame whose headers ``layout`` located completely."""
    view = byte_view(frame)
    word = 0
    l3, l4, end = layout.l3_offset, layout.l4_offset, layout.ip_end
    if ip and layout.ip_version == 4:
        ok = ones_complement_sum(view[l3 : l3 + layout.l3_len]) == _VALID
        word |= IP_SUCCEEDED if ok else IP_FAILED
    if layout.is_fragment or layout.l4_len == 0:
        return word
    if layout.l4_proto == IPPROTO_TCP and tcp:
        total = ones_complement_sum(view[l4:end], l4_pseudo_sum(layout, end - l4))
        word |= TCP_SUCCEEDED if total == _VALID else TCP_FAILED
    elif layout.l4_proto == IPPROTO_UDP and udp:
        length, field = _H.unpack_from(view, l4 + 4)[0], _H.unpack_from(view, l4 + 6)[0]
        if field == 0 and layout.ip_version == 4:
            return word  # RFC 768: the sender computed no checksum
        if field == 0 or length < 8 or l4 + length > end:
            return word | UDP_FAILED  # RFC 8200 §8.1 / a UDP length beyond the datagram
        total = ones_complement_sum(view[l4 : l4 + length], l4_pseudo_sum(layout, length))
        word |= UDP_SUCCEEDED if total == _VALID else UDP_FAILED
    return word


def _l3_offset(view: memoryview) -> tuple[int, int]:
    """(L3 offset, EtherType) after the link headers the frame locator found (Ethernet II,
    VLAN stacks, 802.3 + LLC/SNAP, MPLS)."""
    size = len(view)
    if size < ETH_HEADER_LEN:
        raise PacketError(f"runt frame of {size} bytes has no Ethernet header")
    link = [hop for hop in locate(view, tunnels=False).hops if hop.kind in _LINK_LAYERS]
    last = link[-1] if link else None
    offset = last.offset + last.hlen if last is not None else ETH_HEADER_LEN
    if last is not None and last.kind == Layer.VLAN:
        offset += 2
    (ethertype,) = _H.unpack_from(view, offset - 2)
    return offset, ethertype


_LINK_LAYERS = frozenset({Layer.ETHERNET, Layer.VLAN, Layer.LLC_SNAP})


def _short_word(view: memoryview, error: PacketError, ip: bool, tcp: bool, udp: bool) -> int:
    """Flags for a frame ``parse_frame`` rejected: failed if it is a truncated datagram.

    Re-raises ``error`` when the frame is malformed rather than short (a bad version, IHL,
    TCP data offset, ...); non-IP frames get no flags.
    """
    l3, ethertype = _l3_offset(view)
    if ethertype not in (ETHERTYPE_IPV4, ETHERTYPE_IPV6):
        if ethertype < 0x0600 or ethertype in VLAN_TPIDS:
            raise error
        return 0
    size = len(view)
    avail = size - l3
    proto = -1
    if ethertype == ETHERTYPE_IPV4:
        if avail >= 20:
            if view[l3] >> 4 != 4 or view[l3] & 0xF < 5:
                raise error
            ihl = (view[l3] & 0xF) * 4
            total = _H.unpack_from(view, l3 + 2)[0]
            if total < ihl:
                raise error
            fragment = _H.unpack_from(view, l3 + 6)[0] & 0x3FFF != 0
            if not fragment:  # fragments get no L4 verdict
                proto = view[l3 + 9]
            if ihl <= total <= avail:  # IP datagram complete: the L4 header is short
                hdr_ok = ones_complement_sum(view[l3 : l3 + ihl]) == _VALID
                if fragment:
                    return (IP_SUCCEEDED if hdr_ok else IP_FAILED) if ip else 0
                if _short_l4(view, l3 + ihl, l3 + total, proto, error):
                    return _fail(proto, tcp, udp) | (
                        (IP_SUCCEEDED if hdr_ok else IP_FAILED) if ip else 0
                    )
                raise error
    else:
        if avail >= 40:
            if view[l3] >> 4 != 6:
                raise error
            proto = view[l3 + 6]
            if 40 + _H.unpack_from(view, l3 + 4)[0] <= avail:
                if _short_l4(view, l3 + 40, size, proto, error):
                    return _fail(proto, tcp, udp)
                raise error
    return (IP_FAILED if ip else 0) | _fail(proto, tcp, udp)


def _short_l4(view: memoryview, l4: int, end: int, proto: int, error: PacketError) -> bool:
    """Whether the TCP / UDP header at ``l4`` is cut short by ``end`` (else: malformed)."""
    if proto == IPPROTO_TCP:
        if l4 + 20 > end:
            return True
        if view[l4 + 12] >> 4 < 5:
            raise error
        return l4 + (view[l4 + 12] >> 4) * 4 > end
    return proto == IPPROTO_UDP and l4 + 8 > end


def _fail(proto: int, tcp: bool, udp: bool) -> int:
    if proto == IPPROTO_TCP and tcp:
        return TCP_FAILED
    if proto == IPPROTO_UDP and udp:
        return UDP_FAILED
    return 0


def validate_word(frame: Frame, *, ip: bool = True, tcp: bool = True, udp: bool = True) -> int:
    """:func:`validate_receive` as the raw info word."""
    view = byte_view(frame)
    try:
        layout = parse_frame(view)
    except PacketError as error:
        return _short_word(view, error, ip, tcp, udp)
    return receive_word(view, layout, ip=ip, tcp=tcp, udp=udp)


def validate_receive(
    frame: Frame, *, ip: bool = True, tcp: bool = True, udp: bool = True
) -> NdisTcpIpChecksumNetBufferListInfoReceive:
    """Receive checksum offload of one frame, as ``NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO``
    ``.Receive``: ``ip`` / ``tcp`` / ``udp`` are the enabled Rx offloads
    (``IPv4Receive.IpChecksum``, ``TcpChecksum``, ``UdpChecksum``)."""
    return receive_info(validate_word(frame, ip=ip, tcp=tcp, udp=udp))


__all__ = [
    "IP_FAILED",
    "IP_SUCCEEDED",
    "TCP_FAILED",
    "TCP_SUCCEEDED",
    "UDP_FAILED",
    "UDP_SUCCEEDED",
    "receive_info",
    "receive_word",
    "validate_receive",
    "validate_word",
]

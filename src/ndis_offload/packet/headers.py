"""Locate the L2/L3/L4 headers of an Ethernet frame without copying it.

``parse_frame`` walks Ethernet II, 802.1Q / QinQ tags, 802.3 + LLC/SNAP, IPv4 (options,
fragments), IPv6 (extension headers, RFC 8200 §4) and TCP / UDP, and returns offsets.
Malformed or truncated frames raise :class:`~ndis_offload.errors.PacketError` naming the
byte offset of the problem.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ndis_offload.errors import PacketError

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
VLAN_TPIDS = frozenset({0x8100, 0x88A8, 0x9100})
IPPROTO_TCP = 6
IPPROTO_UDP = 17
ETH_HEADER_LEN = 14
MAX_VLAN_TAGS = 4
LLC_SNAP_PREFIX = b"\xaa\xaa\x03"

# IPv6 extension headers sized (Hdr Ext Len + 1) * 8. 135 (Mobility) is walked like NetKVM.
_IPV6_EXT_UNITS8 = frozenset({0, 43, 60, 135})
_IPV6_FRAGMENT = 44
_IPV6_AH = 51
_IPV6_ROUTING = 43
_IPV6_DEST_OPTS = 60
_HOME_ADDRESS_OPTION = 0xC9

_H = struct.Struct("!H")
_HH = struct.Struct("!HH")


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


def _need(size: int, offset: int, count: int, what: str) -> None:
    if offset + count > size:
        raise PacketError(
            f"truncated {what}: needs {count} bytes, {size - offset} left", offset=offset
        )


def _parse_l2(frame: memoryview, giant: bool) -> tuple[int, int, tuple[int, ...], bool]:
    size = len(frame)
    _need(size, 0, ETH_HEADER_LEN, "Ethernet header")
    offset = 12
    (ethertype,) = _H.unpack_from(frame, offset)
    tags: list[int] = []
    while ethertype in VLAN_TPIDS:
        if len(tags) == MAX_VLAN_TAGS:
            raise PacketError(f"more than {MAX_VLAN_TAGS} VLAN tags", offset=offset)
        _need(size, offset, 6, "802.1Q tag")
        tci, ethertype = _HH.unpack_from(frame, offset + 2)
        tags.append(tci)
        offset += 4
    offset += 2
    llc = False
    # An LSO send over LLC/SNAP may be larger than an 802.3 length can say: with ``giant``,
    # an LLC/SNAP header after an unknown type/length field is taken as 802.3.
    giant_llc = (
        giant
        and ethertype not in (ETHERTYPE_IPV4, ETHERTYPE_IPV6)
        and bytes(frame[offset : offset + 3]) == LLC_SNAP_PREFIX
    )
    if ethertype <= 1500 or giant_llc:
        if ethertype > size - offset and not giant_llc:
            raise PacketError(f"802.3 length {ethertype} exceeds the frame", offset=offset - 2)
        _need(size, offset, 8, "LLC/SNAP header")
        if bytes(frame[offset : offset + 3]) != LLC_SNAP_PREFIX:
            raise PacketError("802.3 frame without LLC/SNAP (AA AA 03) header", offset=offset)
        (ethertype,) = _H.unpack_from(frame, offset + 6)
        offset += 8
        llc = True
    elif ethertype < 0x0600:
        raise PacketError(f"invalid EtherType/length 0x{ethertype:04x}", offset=offset - 2)
    return offset, ethertype, tuple(tags), llc


_L3 = tuple[int, int, int, bool, bool, bytes, bytes]
"""(l3_len, ip_end, l4_proto, is_fragment, has_l4_header, pseudo_src, pseudo_dst)"""


def _ipv4(frame: memoryview, l3: int, zero_length_ok: bool) -> _L3:
    size = len(frame)
    _need(size, l3, 20, "IPv4 header")
    vihl = frame[l3]
    if vihl >> 4 != 4:
        raise PacketError(f"IPv4 version field is {vihl >> 4}", offset=l3)
    ihl = (vihl & 0xF) * 4
    if ihl < 20:
        raise PacketError(f"IPv4 IHL {ihl // 4} below 5", offset=l3)
    _need(size, l3, ihl, "IPv4 options")
    total, frag = _HH.unpack_from(frame, l3 + 2)[0], _H.unpack_from(frame, l3 + 6)[0]
    if total == 0 and zero_length_ok:
        total = size - l3
    if total < ihl:
        raise PacketError(f"IPv4 total length {total} below header length {ihl}", offset=l3 + 2)
    if l3 + total > size:
        raise PacketError(
            f"IPv4 total length {total} exceeds the {size - l3} bytes in the frame", offset=l3 + 2
        )
    is_fragment = bool(frag & 0x3FFF)
    first_fragment = frag & 0x1FFF == 0
    src = bytes(frame[l3 + 12 : l3 + 16])
    dst = bytes(frame[l3 + 16 : l3 + 20])
    return ihl, l3 + total, frame[l3 + 9], is_fragment, first_fragment, src, dst


def _home_address(frame: memoryview, start: int, end: int) -> bytes | None:
    """The Home Address option (RFC 6275 §6.3) in a Destination Options header, if any."""
    pos = start + 2
    while pos < end:
        opt = frame[pos]
        if opt == 0:
            pos += 1
            continue
        if pos + 2 > end:
            raise PacketError("truncated IPv6 option", offset=pos)
        opt_len = frame[pos + 1]
        if pos + 2 + opt_len > end:
            raise PacketError("IPv6 option overruns its header", offset=pos)
        if opt == _HOME_ADDRESS_OPTION and opt_len == 16:
            return bytes(frame[pos + 2 : pos + 18])
        pos += 2 + opt_len
    return None


def _routing_destination(frame: memoryview, start: int, hdr_len: int) -> bytes | None:
    """The final destination named by a Routing header with segments left (RFC 8200 §8.1)."""
    rtype, segments_left = frame[start + 2], frame[start + 3]
    if segments_left == 0 or hdr_len < 24:
        return None
    if rtype in (0, 2):
        last = start + 8 + 16 * ((hdr_len - 8) // 16 - 1)
        return bytes(frame[last : last + 16])
    if rtype == 4:  # Segment Routing: Segment List[0] is the final segment
        return bytes(frame[start + 8 : start + 24])
    return None


def _ipv6(frame: memoryview, l3: int, zero_length_ok: bool) -> _L3:
    size = len(frame)
    _need(size, l3, 40, "IPv6 header")
    if frame[l3] >> 4 != 6:
        raise PacketError(f"IPv6 version field is {frame[l3] >> 4}", offset=l3)
    (payload_len,) = _H.unpack_from(frame, l3 + 4)
    if payload_len == 0 and zero_length_ok:
        payload_len = size - l3 - 40
    end = l3 + 40 + payload_len
    if end > size:
        raise PacketError(f"IPv6 payload length {payload_len} exceeds the frame", offset=l3 + 4)
    src = bytes(frame[l3 + 8 : l3 + 24])
    dst = bytes(frame[l3 + 24 : l3 + 40])
    next_header = frame[l3 + 6]
    pos = l3 + 40
    is_fragment = False
    while True:
        if next_header in _IPV6_EXT_UNITS8 or next_header in (_IPV6_FRAGMENT, _IPV6_AH):
            if pos + 8 > end:
                raise PacketError(f"truncated IPv6 extension header {next_header}", offset=pos)
            ext_len = frame[pos + 1]
            if next_header == _IPV6_FRAGMENT:
                hdr_len = 8
            elif next_header == _IPV6_AH:
                hdr_len = (ext_len + 2) * 4
            else:
                hdr_len = (ext_len + 1) * 8
            if pos + hdr_len > end:
                raise PacketError(
                    f"IPv6 extension header {next_header} overruns the payload", offset=pos
                )
            if next_header == _IPV6_ROUTING:
                dst = _routing_destination(frame, pos, hdr_len) or dst
            elif next_header == _IPV6_DEST_OPTS:
                src = _home_address(frame, pos, pos + hdr_len) or src
            elif next_header == _IPV6_FRAGMENT:
                (frag,) = _H.unpack_from(frame, pos + 2)
                is_fragment = True
                if frag & 0xFFF8:  # not the first fragment: no upper-layer header here
                    return pos + hdr_len - l3, end, frame[pos], True, False, src, dst
            next_header = frame[pos]
            pos += hdr_len
            continue
        return pos - l3, end, next_header, is_fragment, True, src, dst


def parse_frame(
    frame: bytes | bytearray | memoryview, *, zero_length_ok: bool = False
) -> FrameLayout:
    """Locate the headers of ``frame``.

    ``zero_length_ok`` (for LSO / USO sends) accepts an IPv4 Total Length / IPv6 Payload
    Length of 0 and derives it from the frame length (the NDIS convention), and an 802.3
    length field that cannot hold the size of a giant LLC/SNAP frame.
    """
    view = memoryview(frame)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    l3, ethertype, tags, llc = _parse_l2(view, zero_length_ok)
    if ethertype == ETHERTYPE_IPV4:
        ip_version = 4
        l3_len, ip_end, proto, frag, has_l4, src, dst = _ipv4(view, l3, zero_length_ok)
    elif ethertype == ETHERTYPE_IPV6:
        ip_version = 6
        l3_len, ip_end, proto, frag, has_l4, src, dst = _ipv6(view, l3, zero_length_ok)
    else:
        raise PacketError(f"EtherType 0x{ethertype:04x} is not IPv4 or IPv6", offset=l3 - 2)
    l4 = l3 + l3_len
    l4_len = 0
    if not has_l4:
        pass
    elif proto == IPPROTO_TCP:
        _need(ip_end, l4, 20, "TCP header")
        l4_len = (view[l4 + 12] >> 4) * 4
        if l4_len < 20:
            raise PacketError(f"TCP data offset {l4_len // 4} below 5", offset=l4 + 12)
        _need(ip_end, l4, l4_len, "TCP options")
    elif proto == IPPROTO_UDP:
        _need(ip_end, l4, 8, "UDP header")
        l4_len = 8
    return FrameLayout(
        l3_offset=l3,
        ethertype=ethertype,
        vlan_tags=tags,
        llc_snap=llc,
        ip_version=ip_version,
        l3_len=l3_len,
        ip_end=ip_end,
        l4_proto=proto,
        l4_offset=l4,
        l4_len=l4_len,
        is_fragment=frag,
        pseudo_src=src,
        pseudo_dst=dst,
    )

"""The frame locator: where every header of a frame is, tunnels included (scalar parser).

A frame is a stack of *hops*, outermost first. Each :class:`Hop` has a :class:`Layer` kind,
the ``offset`` of its header from the first byte of the record, the header length ``hlen``
and ``end``, one past the last byte the hop covers on the wire:

* link hops (Ethernet, SLL, SLL2; VLAN and MPLS stacks; LLC/SNAP) end where their enclosing
  hop ends; the Ethernet hop's ``hlen`` runs through its last type field (VLAN tags
  included, 14 + 4 x tags), and a ``VLAN`` hop after it (offset 12, 4 bytes a tag) names
  the tag stack; an ``MPLS`` hop is the whole label stack;
* IP hops end at their datagram's end (IPv4 Total Length, IPv6 Payload Length or Jumbo
  Payload; with :data:`F_ZERO_LENGTH` the field was 0 and the end is the enclosing end);
  the IPv6 hop's ``hlen`` includes every extension header; ``psrc`` / ``pdst`` are the
  offsets of the pseudo-header addresses (RFC 8200 §8.1: the Home Address / final
  Routing destination when present);
* TCP, GRE and ICMP end with their datagram; UDP at its Length (0: the datagram end,
  :data:`F_ZERO_LENGTH`); VXLAN, Geneve, ERSPAN, L2TP hops with their UDP / GRE carrier.

Tunnels followed: GRE (with key / sequence / checksum; ERSPAN I, II, III), VXLAN (UDP 4789),
Geneve (UDP 6081), IP-in-IP (4), IPv6-in-IP (41), L2TPv2 over UDP 1701 (PPP), MPLS label
stacks, Ethernet over GRE / Geneve. The walk ends with a :class:`Stop` saying why: the
transport was reached (``END``), the capture was cut inside a header (``CUT``), the frame is
malformed (``MALFORMED``, with a reason), the link carries no IP (``NOT_IP``), the rest is
encrypted (``OPAQUE``: MACsec, ESP), or a non-first fragment (``FRAGMENT``).

``wire_len`` is the frame's length on the wire (a capture's original length): a header that
would fit in it but is not in the captured bytes is ``CUT``; one that would not is malformed.
:mod:`ndis_offload.packet.locate_batch` does the same for a batch of frames with numpy.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final

from ndis_offload.packet.proto import (
    ERSPAN_II_HEADER_LEN,
    ERSPAN_III_HEADER_LEN,
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
    IPV4_FLAG_MF,
    IPV4_FRAGMENT_OFFSET,
    IPV6_EXTENSION_HEADERS,
    IPV6_OPT_HOME_ADDRESS,
    IPV6_OPT_JUMBO,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    LLC_SNAP_PREFIX,
    MAX_8023_LENGTH,
    MAX_MPLS_LABELS,
    MAX_VLAN_TAGS,
    PPP_IPV4,
    PPP_IPV6,
    SLL2_HEADER_LEN,
    SLL_HEADER_LEN,
    UDP_PORT_GENEVE,
    UDP_PORT_L2TP,
    UDP_PORT_VXLAN,
    VLAN_TPIDS,
    VXLAN_HEADER_LEN,
    Frame,
    byte_view,
)


class Layer(IntEnum):
    """The kind of a hop (``Locations.kind`` holds these values; 0 = no hop)."""

    NONE = 0
    ETHERNET = 1
    SLL = 2
    SLL2 = 3
    VLAN = 4
    MPLS = 5
    LLC_SNAP = 6
    IPV4 = 7
    IPV6 = 8
    TCP = 9
    UDP = 10
    ICMP = 11
    ICMPV6 = 12
    GRE = 13
    ERSPAN = 14
    VXLAN = 15
    GENEVE = 16
    L2TP = 17


class Stop(IntEnum):
    """Why the walk ended."""

    END = 0
    """A transport (or a payload the locator does not open) was reached."""
    CUT = 1
    """The capture ends inside a header (snap length)."""
    MALFORMED = 2
    NOT_IP = 3
    """The link carries something other than IP (ARP, STP, ...)."""
    OPAQUE = 4
    """The rest is encrypted (MACsec, ESP): it cannot be checked."""
    FRAGMENT = 5
    """An IP fragment: no transport checksum can be checked."""
    DEPTH = 6
    """More than :data:`MAX_HOPS` hops."""


MAX_HOPS: Final = 16
"""Hops recorded per frame (a VLAN or MPLS stack is one hop)."""

F_FRAGMENT: Final = 1
"""IP hop: the datagram is a fragment (MF set or a fragment offset; IPv6 Fragment header)."""
F_LATER_FRAGMENT: Final = 2
"""IP hop: a non-first fragment (no transport header)."""
F_ZERO_LENGTH: Final = 4
"""IP / UDP hop: the length field was 0 (BIG TCP, LSO sends); ``end`` is the enclosing end."""
F_JUMBO: Final = 8
"""IPv6 hop: the length came from a Jumbo Payload option (RFC 2675)."""
F_CHECKSUM: Final = 16
"""GRE hop: the Checksum field is present."""
F_BAD_LENGTH: Final = 32
"""UDP hop: the UDP Length is below 8 or beyond the IP payload (malformed)."""

IP_LAYERS: Final = frozenset({Layer.IPV4, Layer.IPV6})
L4_LAYERS: Final = frozenset({Layer.TCP, Layer.UDP})

_NO_NEXT_HEADER: Final = 59
_H = struct.Struct("!H")
_HH = struct.Struct("!HH")
_I = struct.Struct("!I")


@dataclass(frozen=True, slots=True)
class Hop:
    """One header of a frame; offsets count from the first byte of the record."""

    kind: Layer
    offset: int
    hlen: int
    end: int
    flags: int = 0
    psrc: int = 0
    """IP hops: offset of the pseudo-header source address (0 for other hops)."""
    pdst: int = 0
    proto: int = 0
    """IP hops: the protocol after the header and every extension header (0 otherwise)."""


@dataclass(frozen=True, slots=True)
class Located:
    """The hops of one frame and why the walk stopped."""

    hops: tuple[Hop, ...]
    stop: Stop
    stop_offset: int = 0
    """Where the walk stopped (the offending byte for ``MALFORMED`` / ``CUT``)."""
    reason: str = field(default="", compare=False)
    """What is wrong (``MALFORMED``), cut (``CUT``) or carried (``NOT_IP``, ``OPAQUE``); the
    batch locator keeps it only for the rows the scalar walk located."""

    def index(self, kinds: frozenset[Layer], *, last: bool = False) -> int:
        """Position in :attr:`hops` of the first (``last``: the last) hop of ``kinds``, or -1."""
        found = [i for i, hop in enumerate(self.hops) if hop.kind in kinds]
        return (found[-1] if last else found[0]) if found else -1


class _Walk:
    """The state of one scalar walk; a method per header kind, each returning the next."""

    def __init__(self, view: memoryview, wire_len: int, tunnels: bool, giant_llc: bool) -> None:
        self.view = view
        self.cap = len(view)
        self.wire = wire_len
        self.tunnels = tunnels
        self.giant_llc = giant_llc
        self.hops: list[Hop] = []

    def add(self, hop: Hop) -> None:
        if len(self.hops) == MAX_HOPS:
            raise _Done(Stop.DEPTH, hop.offset, f"more than {MAX_HOPS} headers")
        self.hops.append(hop)

    def need(self, offset: int, count: int, end: int, what: str) -> None:
        """``count`` header bytes at ``offset`` inside a hop that ends at ``end``."""
        if offset + count > end:
            raise _Done(
                Stop.MALFORMED, offset, f"truncated {what}: needs {count} bytes, "
                f"{max(end - offset, 0)} left",
            )  # fmt: skip
        if offset + count > self.cap:
            raise _Done(Stop.CUT, offset, f"{what} cut by the snap length")

    def u8(self, offset: int) -> int:
        return self.view[offset]

    def u16(self, offset: int) -> int:
        return int(_H.unpack_from(self.view, offset)[0])

    # -- link ------------------------------------------------------------------------------
    def ethernet(self, offset: int, end: int) -> None:
        self.need(offset, ETH_HEADER_LEN, end, "Ethernet header")
        pos = offset + 12
        ethertype = self.u16(pos)
        tags = 0
        while ethertype in VLAN_TPIDS:
            if tags == MAX_VLAN_TAGS:
                raise _Done(Stop.MALFORMED, pos, f"more than {MAX_VLAN_TAGS} VLAN tags")
            self.need(pos, 6, end, "802.1Q tag")
            pos += 4
            tags += 1
            ethertype = self.u16(pos)
        self.add(Hop(Layer.ETHERNET, offset, pos + 2 - offset, end))
        if tags:
            self.add(Hop(Layer.VLAN, offset + 12, 4 * tags, end))
        pos += 2
        giant = (
            self.giant_llc
            and ethertype not in (ETHERTYPE_IPV4, ETHERTYPE_IPV6)
            and bytes(self.view[pos : pos + 3]) == LLC_SNAP_PREFIX
        )
        if ethertype <= MAX_8023_LENGTH or giant:
            if ethertype > end - pos and not giant:
                raise _Done(Stop.MALFORMED, pos - 2, f"802.3 length {ethertype} exceeds the frame")
            if pos + 3 <= self.cap and bytes(self.view[pos : pos + 3]) != LLC_SNAP_PREFIX:
                raise _Done(Stop.NOT_IP, pos, "802.3 frame without LLC/SNAP (AA AA 03) header")
            self.need(pos, 8, end, "LLC/SNAP header")
            self.add(Hop(Layer.LLC_SNAP, pos, 8, end))
            self.ethertype(self.u16(pos + 6), pos + 8, end)
            return
        if ethertype < ETHERTYPE_MIN:
            raise _Done(Stop.MALFORMED, pos - 2, f"invalid EtherType/length 0x{ethertype:04x}")
        self.ethertype(ethertype, pos, end)

    def ethertype(self, ethertype: int, pos: int, end: int) -> None:
        if ethertype == ETHERTYPE_IPV4:
            self.ipv4(pos, end)
        elif ethertype == ETHERTYPE_IPV6:
            self.ipv6(pos, end)
        elif ethertype in (ETHERTYPE_MPLS, ETHERTYPE_MPLS_MULTICAST):
            self.mpls(pos, end)
        elif ethertype == ETHERTYPE_TEB:
            self.ethernet(pos, end)
        elif ethertype == ETHERTYPE_MACSEC:
            raise _Done(Stop.OPAQUE, pos, "MACsec (802.1AE): encrypted, cannot be checked")
        else:
            raise _Done(Stop.NOT_IP, pos - 2, f"EtherType 0x{ethertype:04x} is not IPv4 or IPv6")

    def mpls(self, pos: int, end: int) -> None:
        start = pos
        for _ in range(MAX_MPLS_LABELS):
            self.need(pos, 4, end, "MPLS label")
            bottom = self.u8(pos + 2) & 1
            pos += 4
            if bottom:
                break
        else:
            raise _Done(Stop.MALFORMED, pos, f"more than {MAX_MPLS_LABELS} MPLS labels")
        self.add(Hop(Layer.MPLS, start, pos - start, end))
        self.need(pos, 1, end, "MPLS payload")
        nibble = self.u8(pos) >> 4
        if nibble == 4:
            self.ipv4(pos, end)
        elif nibble == 6:
            self.ipv6(pos, end)
        else:
            raise _Done(Stop.NOT_IP, pos, "MPLS payload is not IPv4 or IPv6")

    def sll(self, end: int) -> None:
        self.need(0, SLL_HEADER_LEN, end, "Linux cooked (SLL) header")
        self.add(Hop(Layer.SLL, 0, SLL_HEADER_LEN, end))
        self.link_payload(self.u16(14), SLL_HEADER_LEN, end)

    def sll2(self, end: int) -> None:
        self.need(0, SLL2_HEADER_LEN, end, "Linux cooked (SLL2) header")
        self.add(Hop(Layer.SLL2, 0, SLL2_HEADER_LEN, end))
        self.link_payload(self.u16(0), SLL2_HEADER_LEN, end)

    def link_payload(self, protocol: int, pos: int, end: int) -> None:
        if protocol in VLAN_TPIDS:  # a cooked header with the tag left in the payload
            tags = 0
            while protocol in VLAN_TPIDS:
                if tags == MAX_VLAN_TAGS:
                    raise _Done(Stop.MALFORMED, pos, f"more than {MAX_VLAN_TAGS} VLAN tags")
                self.need(pos, 4, end, "802.1Q tag")
                protocol = self.u16(pos + 2)
                pos += 4
                tags += 1
            self.add(Hop(Layer.VLAN, pos - 4 * tags, 4 * tags, end))
        self.ethertype(protocol, pos, end)

    def raw(self, end: int) -> None:
        self.need(0, 1, end, "IP header")
        version = self.u8(0) >> 4
        if version == 4:
            self.ipv4(0, end)
        elif version == 6:
            self.ipv6(0, end)
        else:
            raise _Done(Stop.MALFORMED, 0, f"raw IP version field is {version}")

    # -- IP --------------------------------------------------------------------------------
    def ipv4(self, l3: int, end: int) -> None:
        self.need(l3, 20, end, "IPv4 header")
        vihl = self.u8(l3)
        if vihl >> 4 != 4:
            raise _Done(Stop.MALFORMED, l3, f"IPv4 version field is {vihl >> 4}")
        ihl = (vihl & 0xF) * 4
        if ihl < 20:
            raise _Done(Stop.MALFORMED, l3, f"IPv4 IHL {ihl // 4} below 5")
        self.need(l3, ihl, end, "IPv4 options")
        total, frag = self.u16(l3 + 2), self.u16(l3 + 6)
        flags = 0
        if total == 0:
            flags |= F_ZERO_LENGTH
            total = end - l3
        elif total < ihl:
            raise _Done(
                Stop.MALFORMED, l3 + 2, f"IPv4 total length {total} below header length {ihl}"
            )
        elif l3 + total > end:
            raise _Done(
                Stop.MALFORMED, l3 + 2,
                f"IPv4 total length {total} exceeds the {end - l3} bytes in the frame",
            )  # fmt: skip
        if frag & (IPV4_FLAG_MF | IPV4_FRAGMENT_OFFSET):
            flags |= F_FRAGMENT
            if frag & IPV4_FRAGMENT_OFFSET:
                flags |= F_LATER_FRAGMENT
        ip_end = l3 + total
        proto = self.u8(l3 + 9)
        self.add(Hop(Layer.IPV4, l3, ihl, ip_end, flags, l3 + 12, l3 + 16, proto))
        if flags & F_LATER_FRAGMENT:
            raise _Done(Stop.FRAGMENT, l3 + ihl, "a later IP fragment")
        self.transport(proto, l3 + ihl, ip_end, bool(flags & F_FRAGMENT))

    def ipv6(self, l3: int, end: int) -> None:
        self.need(l3, 40, end, "IPv6 header")
        if self.u8(l3) >> 4 != 6:
            raise _Done(Stop.MALFORMED, l3, f"IPv6 version field is {self.u8(l3) >> 4}")
        payload_len = self.u16(l3 + 4)
        flags = 0
        ip_end = l3 + 40 + payload_len
        next_header = self.u8(l3 + 6)
        if payload_len == 0 and end > ip_end and next_header != _NO_NEXT_HEADER:
            flags |= F_ZERO_LENGTH
            ip_end = end
        elif ip_end > end:
            raise _Done(
                Stop.MALFORMED, l3 + 4, f"IPv6 payload length {payload_len} exceeds the frame"
            )
        psrc, pdst = l3 + 8, l3 + 24
        pos = l3 + 40
        fragment = later = False
        while next_header in IPV6_EXTENSION_HEADERS:
            self.need(pos, 8, ip_end, f"IPv6 extension header {next_header}")
            ext_len = self.u8(pos + 1)
            if next_header == IPPROTO_FRAGMENT:
                hdr_len = 8
            elif next_header == IPPROTO_AH:
                hdr_len = (ext_len + 2) * 4
            else:
                hdr_len = (ext_len + 1) * 8
            if pos + hdr_len > ip_end:
                raise _Done(
                    Stop.MALFORMED, pos, f"IPv6 extension header {next_header} overruns the payload"
                )
            self.need(pos, hdr_len, ip_end, f"IPv6 extension header {next_header}")
            if next_header == IPPROTO_HOPOPTS and pos == l3 + 40:
                jumbo = self._options(pos, pos + hdr_len, IPV6_OPT_JUMBO, 4)
                if jumbo is not None and payload_len == 0:
                    ip_end = l3 + 40 + int(_I.unpack_from(self.view, jumbo)[0])
                    flags = (flags & ~F_ZERO_LENGTH) | F_JUMBO
                    if ip_end > end:
                        raise _Done(
                            Stop.MALFORMED, jumbo, "IPv6 jumbo payload length exceeds the frame"
                        )
            elif next_header == IPPROTO_ROUTING:
                pdst = self._routing_destination(pos, hdr_len) or pdst
            elif next_header == IPPROTO_DSTOPTS:
                psrc = self._options(pos, pos + hdr_len, IPV6_OPT_HOME_ADDRESS, 16) or psrc
            elif next_header == IPPROTO_FRAGMENT:
                fragment = True
                later = self.u16(pos + 2) & 0xFFF8 != 0
            next_header = self.u8(pos)
            pos += hdr_len
            if later:
                break
        flags |= (F_FRAGMENT if fragment else 0) | (F_LATER_FRAGMENT if later else 0)
        self.add(Hop(Layer.IPV6, l3, pos - l3, ip_end, flags, psrc, pdst, next_header))
        if later:
            raise _Done(Stop.FRAGMENT, pos, "a later IP fragment")
        self.transport(next_header, pos, ip_end, fragment)

    def _options(self, start: int, end: int, wanted: int, size: int) -> int | None:
        """Offset of the data of option ``wanted`` (``size`` bytes) in an options header."""
        pos = start + 2
        while pos < end:
            opt = self.u8(pos)
            if opt == 0:
                pos += 1
                continue
            if pos + 2 > end:
                raise _Done(Stop.MALFORMED, pos, "truncated IPv6 option")
            opt_len = self.u8(pos + 1)
            if pos + 2 + opt_len > end:
                raise _Done(Stop.MALFORMED, pos, "IPv6 option overruns its header")
            if opt == wanted and opt_len == size:
                return pos + 2
            pos += 2 + opt_len
        return None

    def _routing_destination(self, start: int, hdr_len: int) -> int | None:
        """The final destination of a Routing header with segments left (RFC 8200 §8.1)."""
        rtype, segments_left = self.u8(start + 2), self.u8(start + 3)
        if segments_left == 0 or hdr_len < 24:
            return None
        if rtype in (0, 2):
            return start + 8 + 16 * ((hdr_len - 8) // 16 - 1)
        if rtype == 4:  # Segment Routing: Segment List[0] is the final segment
            return start + 8
        return None

    # -- transports and tunnels ------------------------------------------------------------
    def transport(self, proto: int, l4: int, end: int, fragment: bool) -> None:
        if proto == IPPROTO_TCP:
            self.need(l4, 20, end, "TCP header")
            doff = (self.u8(l4 + 12) >> 4) * 4
            if doff < 20:
                raise _Done(Stop.MALFORMED, l4 + 12, f"TCP data offset {doff // 4} below 5")
            self.need(l4, doff, end, "TCP options")
            self.add(Hop(Layer.TCP, l4, doff, end))
        elif proto == IPPROTO_UDP:
            self.udp(l4, end, fragment)
        elif proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
            self.need(l4, 4, end, "ICMP header")
            self.add(Hop(Layer.ICMP if proto == IPPROTO_ICMP else Layer.ICMPV6, l4, 4, end))
        elif proto == IPPROTO_GRE and self.tunnels and not fragment:
            self.gre(l4, end)
        elif proto == IPPROTO_IPIP and self.tunnels and not fragment:
            self.ipv4(l4, end)
        elif proto == IPPROTO_IPV6 and self.tunnels and not fragment:
            self.ipv6(l4, end)
        elif proto == IPPROTO_ESP:
            raise _Done(Stop.OPAQUE, l4, "ESP: encrypted, cannot be checked")
        if fragment:
            raise _Done(Stop.FRAGMENT, l4, "the first IP fragment")
        raise _Done(Stop.END, end, "")

    def udp(self, l4: int, end: int, fragment: bool) -> None:
        self.need(l4, 8, end, "UDP header")
        length = self.u16(l4 + 4)
        flags = 0
        udp_end = l4 + length
        if length == 0:
            flags, udp_end = F_ZERO_LENGTH, end
        elif fragment:  # the Length is the whole datagram's, not this fragment's
            udp_end = min(udp_end, end)
        elif length < 8 or udp_end > end:
            flags, udp_end = F_BAD_LENGTH, end
        self.add(Hop(Layer.UDP, l4, 8, udp_end, flags))
        if fragment or flags & F_BAD_LENGTH or not self.tunnels:
            return
        sport, dport = _HH.unpack_from(self.view, l4)
        pos = l4 + 8
        if dport == UDP_PORT_VXLAN:
            self.need(pos, VXLAN_HEADER_LEN, udp_end, "VXLAN header")
            self.add(Hop(Layer.VXLAN, pos, VXLAN_HEADER_LEN, udp_end))
            self.ethernet(pos + VXLAN_HEADER_LEN, udp_end)
        elif dport == UDP_PORT_GENEVE:
            self.need(pos, GENEVE_HEADER_LEN, udp_end, "Geneve header")
            first = self.u8(pos)
            if first >> 6:
                raise _Done(Stop.MALFORMED, pos, f"Geneve version {first >> 6}")
            hlen = GENEVE_HEADER_LEN + 4 * (first & 0x3F)
            self.need(pos, hlen, udp_end, "Geneve options")
            self.add(Hop(Layer.GENEVE, pos, hlen, udp_end))
            self.ethertype(self.u16(pos + 2), pos + hlen, udp_end)
        elif UDP_PORT_L2TP in (sport, dport):
            self.l2tp(pos, udp_end)

    def l2tp(self, pos: int, end: int) -> None:
        """L2TPv2 (RFC 2661 §3.1) data messages carrying PPP-framed IPv4 / IPv6."""
        self.need(pos, 2, end, "L2TP header")
        flags = self.u16(pos)
        if flags & 0xF != 2 or flags & 0x8000:  # not v2, or a control message
            self.add(Hop(Layer.L2TP, pos, 2, end))
            return
        hlen = 6 + (2 if flags & 0x4000 else 0) + (4 if flags & 0x0800 else 0)
        if flags & 0x0200:
            self.need(pos, hlen + 2, end, "L2TP header")
            hlen += 2 + self.u16(pos + hlen)
        self.need(pos, hlen, end, "L2TP header")
        self.add(Hop(Layer.L2TP, pos, hlen, end))
        ppp = pos + hlen
        self.need(ppp, 2, end, "PPP header")
        if self.u16(ppp) == 0xFF03:
            ppp += 2
            self.need(ppp, 2, end, "PPP header")
        protocol = self.u16(ppp)
        if protocol == PPP_IPV4:
            self.ipv4(ppp + 2, end)
        elif protocol == PPP_IPV6:
            self.ipv6(ppp + 2, end)
        else:
            raise _Done(Stop.NOT_IP, ppp, f"PPP protocol 0x{protocol:04x} is not IPv4 or IPv6")

    def gre(self, pos: int, end: int) -> None:
        self.need(pos, 4, end, "GRE header")
        flags, protocol = _HH.unpack_from(self.view, pos)
        if flags & 7 or flags & GRE_ROUTING:  # version 1 (PPTP) or source routing
            self.add(Hop(Layer.GRE, pos, 4, end))
            raise _Done(Stop.END, end, "")
        hlen = 4 + 4 * (bool(flags & GRE_CHECKSUM) + bool(flags & GRE_KEY))
        hlen += 4 * bool(flags & GRE_SEQUENCE)
        self.need(pos, hlen, end, "GRE header")
        self.add(Hop(Layer.GRE, pos, hlen, end, F_CHECKSUM if flags & GRE_CHECKSUM else 0))
        pos += hlen
        if protocol == ETHERTYPE_ERSPAN_II and not flags & GRE_SEQUENCE:
            self.add(Hop(Layer.ERSPAN, pos, 0, end))  # type I: no ERSPAN header
            self.ethernet(pos, end)
        elif protocol == ETHERTYPE_ERSPAN_II:
            self.need(pos, ERSPAN_II_HEADER_LEN, end, "ERSPAN header")
            self.add(Hop(Layer.ERSPAN, pos, ERSPAN_II_HEADER_LEN, end))
            self.ethernet(pos + ERSPAN_II_HEADER_LEN, end)
        elif protocol == ETHERTYPE_ERSPAN_III:
            self.need(pos, ERSPAN_III_HEADER_LEN, end, "ERSPAN header")
            hlen = ERSPAN_III_HEADER_LEN + (8 if self.u8(pos + 11) & 1 else 0)
            self.need(pos, hlen, end, "ERSPAN platform header")
            self.add(Hop(Layer.ERSPAN, pos, hlen, end))
            self.ethernet(pos + hlen, end)
        else:
            self.ethertype(protocol, pos, end)


class _Done(Exception):
    """Ends a walk (the hops found so far stay valid)."""

    def __init__(self, stop: Stop, offset: int, reason: str) -> None:
        super().__init__(reason)
        self.stop, self.offset, self.reason = stop, offset, reason


def locate(
    frame: Frame,
    linktype: int = LINKTYPE_ETHERNET,
    *,
    wire_len: int | None = None,
    tunnels: bool = True,
    giant_llc: bool = False,
) -> Located:
    """Every header of one record of ``linktype`` (never raises for any bytes).

    ``wire_len`` (default: the captured length) is the original length of a captured frame.
    ``tunnels=False`` stops at the first transport. ``giant_llc`` takes an LLC/SNAP header
    after an unknown type/length field as 802.3 (an LSO send larger than an 802.3 length).
    """
    view = byte_view(frame)
    wire = max(len(view), wire_len if wire_len is not None else len(view))
    walk = _Walk(view, wire, tunnels, giant_llc)
    try:
        if linktype == LINKTYPE_ETHERNET:
            walk.ethernet(0, wire)
        elif linktype == LINKTYPE_LINUX_SLL:
            walk.sll(wire)
        elif linktype == LINKTYPE_LINUX_SLL2:
            walk.sll2(wire)
        elif linktype == LINKTYPE_RAW:
            walk.raw(wire)
        elif linktype == LINKTYPE_IPV4:
            walk.ipv4(0, wire)
        elif linktype == LINKTYPE_IPV6:
            walk.ipv6(0, wire)
        else:
            return Located((), Stop.NOT_IP, 0, f"link type {linktype} is not supported")
        return Located(tuple(walk.hops), Stop.END, wire)
    except _Done as done:
        return Located(tuple(walk.hops), done.stop, done.offset, done.reason)


__all__ = [
    "F_BAD_LENGTH",
    "F_CHECKSUM",
    "F_FRAGMENT",
    "F_JUMBO",
    "F_LATER_FRAGMENT",
    "F_ZERO_LENGTH",
    "IP_LAYERS",
    "L4_LAYERS",
    "MAX_HOPS",
    "Hop",
    "Layer",
    "Located",
    "Stop",
    "locate",
]

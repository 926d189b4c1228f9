"""What a large send is made of, found with the frame locator, and Linux GSO of captured sends.

:func:`plan_send` turns the hops of :func:`~ndis_offload.packet.locate.locate` into the
:class:`~ndis_offload.engine.gso.GsoPlan` the vectorized core cuts by: every IP header (each
gets its length, IPv4 ID and checksum per segment), the carrier UDP header of a VXLAN /
Geneve tunnel, and the innermost TCP / UDP header.

:func:`segment_gso` cuts one captured send the way Linux segments it:

* plain TCP (``tcp_gso_segment``) and UDP (``__udp_gso_segment``) sends;
* UDP-tunnel GSO (``skb_udp_tunnel_segment``): VXLAN (UDP 4789) and Geneve (UDP 6081) over
  IPv4 / IPv6 carrying TCP (or UDP). Each segment gets its outer IP length (IPv4: ID +1 and
  checksum), its outer UDP length, and its outer UDP checksum when the send carried a
  non-zero one (``SKB_GSO_UDP_TUNNEL_CSUM``; a zero checksum stays zero), and the inner
  IP / TCP fields of a plain LSO segment. GRE without a checksum and IP-in-IP carriers are
  constant headers and cut the same way;
* BIG TCP: IPv4 Total Length 0 (the length comes from the frame), IPv6 Payload Length 0
  with or without a Jumbo Payload hop-by-hop option (RFC 2675; the 8-byte jumbo-only
  hop-by-hop header is removed from the segments, as ``ipv6_hopopt_jumbo_remove`` does).
"""

from __future__ import annotations

import struct
from functools import lru_cache

from ndis_offload.engine.gso import (
    ByteView,
    Cutter,
    GsoPlan,
    IpHeader,
    Segmentation,
    Shape,
    cut,
    shape_for,
)
from ndis_offload.errors import PacketError
from ndis_offload.packet.locate import (
    F_BAD_LENGTH,
    F_CHECKSUM,
    F_FRAGMENT,
    F_JUMBO,
    Hop,
    Layer,
    Located,
    Stop,
    locate,
)
from ndis_offload.packet.proto import (
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    ETHERTYPE_VLAN,
    IPPROTO_HOPOPTS,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPV4_FLAG_MF,
    IPV4_FRAGMENT_OFFSET,
    IPV6_OPT_JUMBO,
    LINKTYPE_ETHERNET,
    UDP_PORT_GENEVE,
    UDP_PORT_L2TP,
    UDP_PORT_VXLAN,
    Frame,
    byte_view,
)

_IP = (Layer.IPV4, Layer.IPV6)
_L4 = (Layer.TCP, Layer.UDP)
_UDP_TUNNELS = (Layer.VXLAN, Layer.GENEVE)
_CARRIERS = frozenset(
    {
        Layer.ETHERNET,
        Layer.VLAN,
        Layer.MPLS,
        Layer.LLC_SNAP,
        Layer.IPV4,
        Layer.IPV6,
        Layer.VXLAN,
        Layer.GENEVE,
        Layer.GRE,
    }
)
"""Hops that are constant headers of a send (besides the IP / carrier UDP fields)."""
_JUMBO_HBH_LEN = 8
_NAMES = {IPPROTO_TCP: "TCP", IPPROTO_UDP: "UDP"}


_ADDR4 = struct.Struct("!2H")
_ADDR6 = struct.Struct("!8H")
_PSEUDO4 = struct.Struct("!4H")
_PSEUDO6 = struct.Struct("!16H")
_HH = struct.Struct("!HH")
_H = struct.Struct("!H")
_TUNNEL_PORTS = frozenset({UDP_PORT_VXLAN, UDP_PORT_GENEVE, UDP_PORT_L2TP})


def _pseudo(view: ByteView, ip: Hop, proto: int) -> int:
    """Pseudo-header sum of the transport after ``ip``, without the length."""
    addr = _ADDR4 if ip.kind == Layer.IPV4 else _ADDR6
    src: tuple[int, ...] = addr.unpack_from(view, ip.psrc)
    dst: tuple[int, ...] = addr.unpack_from(view, ip.pdst)
    return sum(src) + sum(dst) + proto


def plan_send(view: ByteView, found: Located, want: int | None = None) -> GsoPlan:
    """The plan of the send in ``view`` whose hops are ``found``; ``want`` (TCP / UDP) is
    the transport the caller asked to segment (None: the innermost one)."""
    name = _NAMES.get(want or 0, "TCP or UDP")
    if found.stop == Stop.FRAGMENT:
        raise PacketError("cannot segment an IP fragment", offset=found.stop_offset)
    if found.stop != Stop.END:
        raise PacketError(found.reason or found.stop.name.lower(), offset=found.stop_offset)
    hops = found.hops
    l4 = hops[-1]
    if l4.kind not in _L4:
        raise PacketError(f"segmentation requested but the frame carries no {name} header")
    l4_proto = IPPROTO_TCP if l4.kind == Layer.TCP else IPPROTO_UDP
    if want is not None and want != l4_proto:
        raise PacketError(f"segmentation requested but the frame carries no {name} header")
    ips: list[IpHeader] = []
    outer_udp: Hop | None = None
    outer_ip: Hop | None = None
    length_field = None
    last_ip: Hop | None = None
    for index, hop in enumerate(hops[:-1]):
        if hop.kind in _IP:
            if hop.flags & F_FRAGMENT:
                raise PacketError("cannot segment an IP fragment", offset=hop.offset)
            ips.append(IpHeader(hop.offset, 4 if hop.kind == Layer.IPV4 else 6, hop.hlen))
            last_ip = hop
        elif (
            hop.kind == Layer.UDP
            and index + 1 < len(hops)
            and hops[index + 1].kind in (_UDP_TUNNELS)
        ):
            if outer_udp is not None:
                raise PacketError("nested UDP tunnels are not segmented", offset=hop.offset)
            if hop.flags & F_BAD_LENGTH or last_ip is None:
                raise PacketError("malformed tunnel UDP header", offset=hop.offset)
            outer_udp, outer_ip = hop, last_ip
        elif hop.kind == Layer.GRE and hop.flags & F_CHECKSUM:
            raise PacketError("GSO over GRE with a checksum is not supported", offset=hop.offset)
        elif hop.kind == Layer.LLC_SNAP and not ips:
            length_field = hop.offset - 2
        elif hop.kind not in _CARRIERS:
            raise PacketError(f"cannot segment through a {hop.kind.name} header", offset=hop.offset)
    if last_ip is None:
        raise PacketError("the transport is not inside an IP datagram", offset=l4.offset)
    if l4.kind == Layer.UDP and l4.flags & F_BAD_LENGTH:
        raise PacketError("UDP length does not match the datagram", offset=l4.offset + 4)
    udp_csum = False
    udp_pseudo = 0
    if outer_udp is not None and outer_ip is not None:
        udp_csum = view[outer_udp.offset + 6] != 0 or view[outer_udp.offset + 7] != 0
        udp_pseudo = _pseudo(view, outer_ip, IPPROTO_UDP)
    return GsoPlan(
        header_len=l4.offset + l4.hlen,
        end=l4.end,
        ips=tuple(ips),
        l4_offset=l4.offset,
        l4_proto=l4_proto,
        l4_pseudo=_pseudo(view, last_ip, l4_proto),
        outer_udp=None if outer_udp is None else outer_udp.offset,
        outer_udp_pseudo=udp_pseudo,
        outer_udp_checksum=udp_csum,
        length_field=length_field,
    )


def plan_plain(view: ByteView, want: int | None = None, *, tunnels: bool = False) -> GsoPlan | None:
    """The plan of the commonest send, read straight from the bytes: Ethernet II (at most
    one 802.1Q tag), IPv4 (not a fragment) or IPv6 without extension headers, then TCP or
    UDP. None for anything else, malformed frames included: :func:`plan_send` over
    :func:`~ndis_offload.packet.locate.locate` then gives the plan or the error. Where it
    answers, the answer is that plan (``tunnels``: UDP to a tunnel port is left to it)."""
    n = len(view)
    if n < 14:
        return None
    (ethertype,) = _H.unpack_from(view, 12)
    l3 = 14
    if ethertype == ETHERTYPE_VLAN and n >= 18:
        (ethertype,) = _H.unpack_from(view, 16)
        l3 = 18
    if ethertype == ETHERTYPE_IPV4:
        if n < l3 + 20:
            return None
        vihl = view[l3]
        ihl = (vihl & 0xF) * 4
        if vihl >> 4 != 4 or ihl < 20 or n < l3 + ihl:
            return None
        (total,) = _H.unpack_from(view, l3 + 2)
        (frag,) = _H.unpack_from(view, l3 + 6)
        if frag & (IPV4_FLAG_MF | IPV4_FRAGMENT_OFFSET) or 0 < total < ihl or l3 + total > n:
            return None
        end = l3 + total if total else n
        proto = view[l3 + 9]
        ip = IpHeader(l3, 4, ihl)
        pseudo = sum(_PSEUDO4.unpack_from(view, l3 + 12)) + proto
    elif ethertype == ETHERTYPE_IPV6:
        if n < l3 + 40 or view[l3] >> 4 != 6:
            return None
        (payload_len,) = _H.unpack_from(view, l3 + 4)
        proto = view[l3 + 6]
        end = l3 + 40 + payload_len
        if payload_len == 0 and n > end:
            end = n
        elif end > n:
            return None
        ip = IpHeader(l3, 6, 40)
        ihl = 40
        pseudo = sum(_PSEUDO6.unpack_from(view, l3 + 8)) + proto
    else:
        return None
    l4 = l3 + ihl
    if want is not None and proto != want:
        return None
    if proto == IPPROTO_TCP:
        if l4 + 20 > end:
            return None
        hlen = (view[l4 + 12] >> 4) * 4
        if hlen < 20 or l4 + hlen > end:
            return None
    elif proto == IPPROTO_UDP:
        if l4 + 8 > end:
            return None
        sport, dport = _HH.unpack_from(view, l4)
        (length,) = _H.unpack_from(view, l4 + 4)
        if length:
            if length < 8 or l4 + length > end:
                return None
            end = l4 + length
        if tunnels and (dport in _TUNNEL_PORTS or sport == UDP_PORT_L2TP):
            return None
        hlen = 8
    else:
        return None
    return GsoPlan(l4 + hlen, end, (ip,), l4, proto, pseudo)


_KEY_IPV4 = struct.Struct("!BxHxxHxB2x8s")
"""Version / IHL, Total Length, flags / fragment offset, protocol, addresses."""
_KEY_IPV6 = struct.Struct("!B3xHBx32s")
"""Version / traffic class, Payload Length, next header, addresses."""
_KEY_UDP = struct.Struct("!4sH")
"""Ports and length."""
_PLAINS: dict[tuple[object, ...], Cutter] = {}
_MAX_PLAINS = 64
_Last = tuple[int, int | None, bool, int, struct.Struct, tuple[object, ...], Cutter]
_last: list[_Last | None] = [None]
"""The latest answer of :func:`plan_plain_shaped`: the frame length, the arguments, a reader
of the bytes its key holds (at that frame's offsets), those bytes, and the plan and shape."""


def _plain_key(
    view: ByteView, want: int | None, tunnels: bool, mss: int
) -> tuple[object, ...] | None:
    """Everything :func:`plan_plain` reads from ``view`` (the frame length, link type,
    every IP field it checks, the addresses of the pseudo-header, the TCP data offset or
    the UDP ports and length), with the arguments: frames with one key have one plan. None
    when the frame is too short to read them."""
    try:
        (ethertype,) = _H.unpack_from(view, 12)
        l3 = 14
        if ethertype == ETHERTYPE_VLAN:
            (ethertype,) = _H.unpack_from(view, 16)
            l3 = 18
        if ethertype == ETHERTYPE_IPV4:
            ip: tuple[object, ...] = _KEY_IPV4.unpack_from(view, l3)
            l4 = l3 + (view[l3] & 0xF) * 4
            proto = ip[3]
        elif ethertype == ETHERTYPE_IPV6:
            ip = _KEY_IPV6.unpack_from(view, l3)
            l4 = l3 + 40
            proto = ip[2]
        else:
            return None
        if proto == IPPROTO_TCP:
            l4_key: object = view[l4 + 12]
        elif proto == IPPROTO_UDP:
            l4_key = _KEY_UDP.unpack_from(view, l4)
        else:
            return None
    except (struct.error, IndexError):
        return None
    return (len(view), want, tunnels, mss, l3, ethertype, ip, l4_key)


@lru_cache(maxsize=64)
def _key_reader(l3: int, version: int, l4: int, proto: int) -> struct.Struct:
    """One ``struct`` reading, at a frame's own offsets, the bytes :func:`_plain_key` reads
    (the ethertypes, the IP fields, the TCP data offset or the UDP ports and length)."""
    link = "12xH" if l3 == 14 else "12xH2xH"
    ip = f"{_KEY_IPV4.format[1:]}{l4 - l3 - 20}x" if version == 4 else _KEY_IPV6.format[1:]
    return struct.Struct(f"!{link}{ip}{'12xB' if proto == IPPROTO_TCP else _KEY_UDP.format[1:]}")


def latest_plain(
    view: ByteView, want: int | None, mss: int, tunnels: bool = False
) -> Cutter | None:
    """The cutter of the latest answer of :func:`plan_plain_shaped` when ``view`` holds
    the bytes its key holds (one ``struct`` read), else None: the next send of a flow."""
    last = _last[0]
    if last is not None:
        size, last_want, last_tunnels, last_mss, reader, fields, found = last
        if (
            size == len(view)
            and last_want == want
            and last_mss == mss
            and last_tunnels == tunnels
            and reader.unpack_from(view) == fields
        ):
            return found
    return None


def plan_plain_shaped(
    view: ByteView, want: int | None, mss: int, *, tunnels: bool = False
) -> tuple[GsoPlan, Shape] | None:
    """:func:`plan_plain` and the shape of the send cut at ``mss``, cached by the bytes the
    plan depends on (:func:`_plain_key`): the next send of a flow (other IPv4 ID, sequence
    number, flags, options, payload) finds both without reading its headers again. At most
    ``_MAX_PLAINS`` entries (the oldest goes); the latest is checked first
    (:func:`latest_plain`)."""
    found = plain_cutter(view, want, mss, tunnels)
    return None if found is None else (found.plan, found.shape)


def plain_cutter(
    view: ByteView, want: int | None, mss: int, tunnels: bool = False
) -> Cutter | None:
    """:func:`plan_plain_shaped` as the :class:`~ndis_offload.engine.gso.Cutter` of the
    plan and shape, cached with them."""
    found = latest_plain(view, want, mss, tunnels)
    if found is not None:
        return found
    key = _plain_key(view, want, tunnels, mss)
    found = None if key is None else _PLAINS.get(key)
    if found is None:
        plan = plan_plain(view, want, tunnels=tunnels)
        if plan is None:
            return None
        found = Cutter(plan, shape_for(plan, mss))
        if key is not None:
            if len(_PLAINS) >= _MAX_PLAINS:
                _PLAINS.pop(next(iter(_PLAINS)), None)
            _PLAINS[key] = found
    if key is not None:
        plan = found.plan
        ip = plan.ips[0]
        reader = _key_reader(ip.offset, ip.version, plan.l4_offset, plan.l4_proto)
        _last[0] = (len(view), want, tunnels, mss, reader, reader.unpack_from(view), found)
    return found


def _without_jumbo(view: memoryview, jumbo: list[Hop]) -> memoryview:
    """``view`` without the jumbo-only hop-by-hop header of the IPv6 jumbograms ``jumbo``."""
    out = bytearray(view)
    for hop in reversed(jumbo):  # innermost first: earlier offsets stay valid
        hbh = hop.offset + 40
        if (
            out[hop.offset + 6] != IPPROTO_HOPOPTS
            or out[hbh + 1] != 0
            or out[hbh + 2] != IPV6_OPT_JUMBO
        ):
            raise PacketError(
                "IPv6 jumbogram whose hop-by-hop header holds more than the Jumbo option",
                offset=hbh,
            )
        out[hop.offset + 6] = out[hbh]  # the next header after the hop-by-hop header
        out[hop.offset + 4 : hop.offset + 6] = b"\0\0"
        del out[hbh : hbh + _JUMBO_HBH_LEN]
    return memoryview(out)


def segment_gso(frame: Frame, mss: int) -> Segmentation:
    """Cut one captured send (plain, VXLAN / Geneve tunnelled, or BIG TCP) into the frames
    Linux GSO puts on the wire, ``mss`` bytes of innermost payload each.

    A frame whose innermost protocol is not TCP / UDP (ICMP, ...) is not a GSO send and comes
    back as is; malformed frames, fragments and unsupported carriers raise ``PacketError``.
    """
    view = byte_view(frame)
    plain = plain_cutter(view, None, mss, tunnels=True)
    if plain is not None:
        return plain.segments(view)
    found = locate(view, LINKTYPE_ETHERNET, tunnels=True, giant_llc=True)
    jumbo = [hop for hop in found.hops if hop.kind == Layer.IPV6 and hop.flags & F_JUMBO]
    if found.stop == Stop.END and found.hops and found.hops[-1].kind not in _L4:
        return Segmentation([bytes(view)], 0, len(view))  # no transport to cut (ICMP, ...): as is
    if jumbo:
        view = _without_jumbo(view, jumbo)
        found = locate(view, LINKTYPE_ETHERNET, tunnels=True, giant_llc=True)
    return cut(view, plan_send(view, found), mss)


__all__ = [
    "latest_plain",
    "plain_cutter",
    "plan_plain",
    "plan_plain_shaped",
    "plan_send",
    "segment_gso",
]

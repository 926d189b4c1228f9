"""Frames for locator and capture tests: every tunnel and link shape, built with scapy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st
from scapy.contrib.erspan import ERSPAN_II, ERSPAN_III
from scapy.contrib.geneve import GENEVE
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_NOP
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    Jumbo,
)
from scapy.layers.l2 import GRE, LLC, SNAP, Dot1AD, Dot1Q, Dot3, Ether
from scapy.layers.l2tp import L2TP
from scapy.layers.ppp import PPP
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

from ndis_offload.packet.proto import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
)

MAC: dict[str, Any] = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}


def ip4(**kw: Any) -> Packet:
    return IP(src="10.0.0.1", dst="10.0.0.2", **kw)


def ip6(**kw: Any) -> Packet:
    return IPv6(src="fd00::1", dst="fd00::2", **kw)


def payload(n: int) -> bytes:
    return bytes((i * 7) & 0xFF for i in range(n))


TRANSPORTS: dict[str, Callable[[int], Packet]] = {
    "tcp": lambda n: TCP(sport=40000, dport=80, flags="PA") / payload(n),
    "tcp-opts": lambda n: TCP(options=[("MSS", 1460), ("Timestamp", (1, 2))]) / payload(n),
    "udp": lambda n: UDP(sport=5000, dport=53) / payload(n),
    "icmp": lambda n: ICMP() / payload(n),
}


def inner_ip(kind: str, transport: Packet) -> Packet:
    if kind == "ip4":
        return ip4() / transport
    if kind == "ip4-opts":
        return ip4(options=[IPOption_NOP()] * 4) / transport
    if kind == "ip6":
        return ip6() / transport
    return ip6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / transport


IPS = ("ip4", "ip4-opts", "ip6", "ip6-ext")


def tunnel(kind: str, inner: Packet, outer_ip: str) -> Packet:
    """``inner`` (an IP packet) carried by tunnel ``kind`` over ``outer_ip``."""
    eth = Ether(**MAC)
    wrap: dict[str, Callable[[], Packet]] = {
        "vxlan": lambda: UDP(sport=49152, dport=4789) / VXLAN(vni=42) / eth / inner,
        "geneve": lambda: UDP(sport=49152, dport=6081) / GENEVE(vni=7, proto=0x0800 if
                                                                  inner.version == 4 else 0x86DD)
        / inner,
        "geneve-eth": lambda: UDP(sport=49152, dport=6081) / GENEVE(proto=0x6558) / eth / inner,
        "gre": lambda: GRE() / inner,
        "gre-key": lambda: GRE(key_present=1, key=9, seqnum_present=1, sequence_number=3) / inner,
        "gre-csum": lambda: GRE(chksum_present=1) / inner,
        "gre-eth": lambda: GRE(proto=0x6558) / eth / inner,
        "erspan2": lambda: GRE(seqnum_present=1, proto=0x88BE) / ERSPAN_II() / eth / inner,
        "erspan3": lambda: GRE(seqnum_present=1, proto=0x22EB) / ERSPAN_III() / eth / inner,
        "ipip": lambda: inner,
        "l2tp": lambda: UDP(sport=1701, dport=1701) / L2TP() / PPP(
            proto=0x0021 if inner.version == 4 else 0x0057) / inner,
    }  # fmt: skip
    body: Packet = wrap[kind]()
    return (ip4() if outer_ip == "ip4" else ip6()) / body


TUNNELS = ("vxlan", "geneve", "geneve-eth", "gre", "gre-key", "gre-csum", "gre-eth",
           "erspan2", "erspan3", "ipip", "l2tp")  # fmt: skip


def link(kind: str, ip_packet: Packet) -> tuple[int, bytes]:
    """(link type, record bytes) for ``ip_packet`` under link shape ``kind``."""
    raw = bytes(ip_packet)
    et = b"\x08\x00" if raw[0] >> 4 == 4 else b"\x86\xdd"
    if kind == "eth":
        return LINKTYPE_ETHERNET, bytes(Ether(**MAC) / ip_packet)
    if kind == "vlan":
        return LINKTYPE_ETHERNET, bytes(Ether(**MAC) / Dot1Q(vlan=5) / ip_packet)
    if kind == "qinq":
        return LINKTYPE_ETHERNET, bytes(Ether(**MAC) / Dot1AD(vlan=7) / Dot1Q(vlan=9) / ip_packet)
    if kind == "vlan3":
        stack = Ether(**MAC) / Dot1AD(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3)
        return LINKTYPE_ETHERNET, bytes(stack / ip_packet)
    if kind == "mpls":
        return LINKTYPE_ETHERNET, bytes(Ether(**MAC) / MPLS(label=16, s=0) / MPLS(label=17) / raw)
    if kind == "llc":
        return LINKTYPE_ETHERNET, bytes(Dot3(**MAC) / LLC() / SNAP(code=int.from_bytes(et, "big"))
                                        / ip_packet)  # fmt: skip
    if kind == "sll":
        return LINKTYPE_LINUX_SLL, b"\x00\x04\x00\x01\x00\x06" + bytes(8) + et + raw
    if kind == "sll2":
        return LINKTYPE_LINUX_SLL2, et + bytes(2) + bytes(4) + b"\x00\x01\x00\x06" + bytes(8) + raw
    if kind == "raw":
        return LINKTYPE_RAW, raw
    return (LINKTYPE_IPV4 if raw[0] >> 4 == 4 else LINKTYPE_IPV6), raw


LINKS = ("eth", "vlan", "qinq", "vlan3", "mpls", "llc", "sll", "sll2", "raw", "rawip")


@st.composite
def recipe_frames(draw: st.DrawFn) -> tuple[int, bytes]:
    """A well-formed record: any link, optionally one or two tunnels, any transport."""
    size = draw(st.integers(0, 64))
    inner = inner_ip(draw(st.sampled_from(IPS)), TRANSPORTS[draw(st.sampled_from(
        sorted(TRANSPORTS)))](size))  # fmt: skip
    for _ in range(draw(st.integers(0, 2))):
        inner = tunnel(draw(st.sampled_from(TUNNELS)), inner, draw(st.sampled_from(("ip4", "ip6"))))
    extra = draw(st.sampled_from(("", "frag", "later", "jumbo", "routing")))
    if extra == "frag" and inner.version == 4:
        inner.flags = "MF"
    elif extra == "later" and inner.version == 4:
        inner.frag = 10
    elif extra == "frag":
        inner = ip6() / IPv6ExtHdrFragment(m=1) / inner.payload
    elif extra == "routing" and inner.version == 6:
        inner = ip6() / IPv6ExtHdrRouting(addresses=["fd00::9"], segleft=1) / inner.payload
    elif extra == "jumbo" and inner.version == 6:
        body = bytes(inner.payload)
        hbh = IPv6ExtHdrHopByHop(options=[Jumbo(jumboplen=len(body) + 8)])
        inner = ip6(plen=0) / hbh / Raw(body)
        inner.nh = 0
    return link(draw(st.sampled_from(LINKS)), inner)


@st.composite
def damaged_frames(draw: st.DrawFn) -> tuple[int, bytes, int]:
    """(link type, captured bytes, wire length): a recipe frame cut short and/or damaged."""
    linktype, data = draw(recipe_frames())
    buf = bytearray(data)
    for _ in range(draw(st.integers(0, 3))):
        if buf:
            buf[draw(st.integers(0, len(buf) - 1))] = draw(st.integers(0, 255))
    wire = len(buf)
    cut = draw(st.integers(0, wire))
    return linktype, bytes(buf[: cut if draw(st.booleans()) else wire]), wire

"""Wire numbers of the protocols the frame locator knows, each written once, and the
:data:`Frame` type with its byte view.

EtherTypes and IP protocol numbers are IANA's; link types are the tcpdump.org ``LINKTYPE_*``
values stored in pcap / pcapng files; UDP ports are the IANA-assigned tunnel ports.
"""

from __future__ import annotations

from typing import Final

Frame = bytes | bytearray | memoryview
"""Frame bytes as every packet / engine function accepts them."""


def byte_view(frame: Frame) -> memoryview:
    """``frame`` as a 1-D memoryview of bytes (the raw bytes of any buffer, e.g. of a view of
    16-bit items)."""
    view = memoryview(frame)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


# -- link types (https://www.tcpdump.org/linktypes.html) ------------------------------------
LINKTYPE_ETHERNET: Final = 1
LINKTYPE_RAW: Final = 101
"""Raw IP: IPv4 or IPv6, told apart by the version nibble."""
LINKTYPE_LINUX_SLL: Final = 113
LINKTYPE_IPV4: Final = 228
LINKTYPE_IPV6: Final = 229
LINKTYPE_LINUX_SLL2: Final = 276
LINKTYPES: Final = frozenset(
    {LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LINUX_SLL, LINKTYPE_IPV4, LINKTYPE_IPV6,
     LINKTYPE_LINUX_SLL2}
)  # fmt: skip
"""The link types the locator understands."""
SLL_HEADER_LEN: Final = 16
SLL2_HEADER_LEN: Final = 20
SLL_OUTGOING: Final = 4
"""``sll_pkttype`` PACKET_OUTGOING: the capturing host sent the frame."""

# -- Ethernet ----------------------------------------------------------------------------------
ETH_HEADER_LEN: Final = 14
ETHERTYPE_IPV4: Final = 0x0800
ETHERTYPE_IPV6: Final = 0x86DD
ETHERTYPE_VLAN: Final = 0x8100
ETHERTYPE_QINQ: Final = 0x88A8
ETHERTYPE_QINQ_OLD: Final = 0x9100
VLAN_TPIDS: Final = frozenset({ETHERTYPE_VLAN, ETHERTYPE_QINQ, ETHERTYPE_QINQ_OLD})
"""802.1Q, 802.1ad and the pre-standard QinQ tag protocol identifiers."""
MAX_VLAN_TAGS: Final = 8
ETHERTYPE_MPLS: Final = 0x8847
ETHERTYPE_MPLS_MULTICAST: Final = 0x8848
ETHERTYPE_MACSEC: Final = 0x88E5
ETHERTYPE_TEB: Final = 0x6558
"""Transparent Ethernet Bridging: an Ethernet frame follows (GRE, Geneve)."""
ETHERTYPE_ERSPAN_II: Final = 0x88BE
ETHERTYPE_ERSPAN_III: Final = 0x22EB
ETHERTYPE_MIN: Final = 0x0600
"""Type/length values from here up are EtherTypes; up to 1500 they are 802.3 lengths."""
MAX_8023_LENGTH: Final = 1500
LLC_SNAP_PREFIX: Final = b"\xaa\xaa\x03"
MAX_MPLS_LABELS: Final = 16
PPP_IPV4: Final = 0x0021
PPP_IPV6: Final = 0x0057

# -- IP ----------------------------------------------------------------------------------------
IPPROTO_HOPOPTS: Final = 0
IPPROTO_ICMP: Final = 1
IPPROTO_IPIP: Final = 4
IPPROTO_TCP: Final = 6
IPPROTO_UDP: Final = 17
IPPROTO_IPV6: Final = 41
IPPROTO_ROUTING: Final = 43
IPPROTO_FRAGMENT: Final = 44
IPPROTO_GRE: Final = 47
IPPROTO_ESP: Final = 50
IPPROTO_AH: Final = 51
IPPROTO_ICMPV6: Final = 58
IPPROTO_DSTOPTS: Final = 60
IPPROTO_L2TP: Final = 115
IPPROTO_MOBILITY: Final = 135
IPV6_EXTENSION_HEADERS: Final = frozenset(
    {IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_FRAGMENT, IPPROTO_AH, IPPROTO_DSTOPTS,
     IPPROTO_MOBILITY}
)  # fmt: skip
"""Extension headers the IPv6 walk steps over (RFC 8200 §4; 135 walked like NetKVM)."""
IPV6_OPT_JUMBO: Final = 0xC2
"""Jumbo Payload option (RFC 2675), in a Hop-by-Hop header: BIG TCP over IPv6."""
IPV6_OPT_HOME_ADDRESS: Final = 0xC9
IPV4_FLAG_MF: Final = 0x2000
IPV4_FRAGMENT_OFFSET: Final = 0x1FFF

# -- TCP flags (RFC 9293 §3.1, RFC 3168) -------------------------------------------------------
TCP_FIN: Final = 0x01
TCP_SYN: Final = 0x02
TCP_RST: Final = 0x04
TCP_PSH: Final = 0x08
TCP_ACK: Final = 0x10
TCP_URG: Final = 0x20
TCP_ECE: Final = 0x40
TCP_CWR: Final = 0x80
TCP_ECN_FLAGS: Final = TCP_ECE | TCP_CWR

# -- tunnels -----------------------------------------------------------------------------------
UDP_PORT_VXLAN: Final = 4789
UDP_PORT_GENEVE: Final = 6081
UDP_PORT_L2TP: Final = 1701
GRE_CHECKSUM: Final = 0x8000
GRE_ROUTING: Final = 0x4000
GRE_KEY: Final = 0x2000
GRE_SEQUENCE: Final = 0x1000
VXLAN_HEADER_LEN: Final = 8
GENEVE_HEADER_LEN: Final = 8
ERSPAN_II_HEADER_LEN: Final = 8
ERSPAN_III_HEADER_LEN: Final = 12

"""Offload features as plain names, and their mapping to and from ``NDIS_OFFLOAD``.

A miniport's hardware, its configured state and its current state are each a frozenset of
feature names; :func:`build_offload` renders one as the ``NDIS_OFFLOAD`` NDIS sees and
:func:`features_of` reads one back (what a protocol driver may use).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ndis_offload.constants.offload import NdisEncapsulation
from ndis_offload.structs.offload import (
    ChecksumIPv4,
    ChecksumIPv6,
    LsoV1IPv4,
    LsoV2IPv4,
    LsoV2IPv6,
    NdisOffload,
    NdisTcpIpChecksumOffload,
    NdisTcpLargeSendOffloadV1,
    NdisTcpLargeSendOffloadV2,
    NdisTcpRecvSegCoalesceOffload,
    NdisUdpSegmentationOffload,
    RscFamily,
    UsoIPv4,
    UsoIPv6,
)

IPV4_CHECKSUM = ("ip4_tx", "ip4_rx", "tcp4_tx", "tcp4_rx", "udp4_tx", "udp4_rx")
IPV6_CHECKSUM = ("tcp6_tx", "tcp6_rx", "udp6_tx", "udp6_rx")
FEATURES: tuple[str, ...] = (
    *IPV4_CHECKSUM,
    *IPV6_CHECKSUM,
    "lsov1",
    "lsov2_4",
    "lsov2_6",
    "uso4",
    "uso6",
    "rsc4",
    "rsc6",
)
"""Every feature, in display order."""

FEATURE_LABELS: dict[str, str] = {
    "ip4_tx": "IPv4 header checksum Tx",
    "ip4_rx": "IPv4 header checksum Rx",
    "tcp4_tx": "TCP/IPv4 checksum Tx",
    "tcp4_rx": "TCP/IPv4 checksum Rx",
    "udp4_tx": "UDP/IPv4 checksum Tx",
    "udp4_rx": "UDP/IPv4 checksum Rx",
    "tcp6_tx": "TCP/IPv6 checksum Tx",
    "tcp6_rx": "TCP/IPv6 checksum Rx",
    "udp6_tx": "UDP/IPv6 checksum Tx",
    "udp6_rx": "UDP/IPv6 checksum Rx",
    "lsov1": "LSOv1 IPv4",
    "lsov2_4": "LSOv2 IPv4",
    "lsov2_6": "LSOv2 IPv6",
    "uso4": "USO IPv4",
    "uso6": "USO IPv6",
    "rsc4": "RSC IPv4",
    "rsc6": "RSC IPv6",
}

FAMILY_FEATURES: dict[int, frozenset[str]] = {
    4: frozenset({*IPV4_CHECKSUM, "lsov1", "lsov2_4", "uso4"}),
    6: frozenset({*IPV6_CHECKSUM, "lsov2_6", "uso6"}),
}
"""What ``NDIS_OFFLOAD_ENCAPSULATION`` ``IPv4``/``IPv6`` ON activates and OFF deactivates:
checksum and large send (LSOv1, LSOv2, and USO, its UDP sibling). RSC is left to
``OID_TCP_OFFLOAD_PARAMETERS``."""

OFFLOAD_TYPES = ("checksum", "lsov1", "lsov2", "uso", "ipsec")
"""The offload types whose ``Encapsulation`` members a profile declares."""


@dataclass(frozen=True)
class OffloadLimits:
    """Numbers a miniport reports with LSO and USO support."""

    lso_max_offload_size: int = 64000
    lso_min_segment_count: int = 2
    uso_max_offload_size: int = 64000
    uso_min_segment_count: int = 2
    revision: int = 7
    """``NDIS_OFFLOAD`` revision the miniport reports (1-7)."""
    encapsulations: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(OFFLOAD_TYPES[:4], int(NdisEncapsulation.IEEE_802_3))
    )


def _b(flag: bool) -> int:
    return 1 if flag else 0


def build_offload(features: frozenset[str], limits: OffloadLimits) -> NdisOffload:
    """Render a feature set as the ``NDIS_OFFLOAD`` a miniport reports.

    Dependent bits follow the parent, as NetKVM and netvsp report them: IP options support
    with the IPv4 checksums, TCP options with the TCP checksum, IPv6 extension headers with
    the IPv6 checksums; an offload that is off has ``Encapsulation =
    NDIS_ENCAPSULATION_NOT_SUPPORTED`` and zero sizes.
    """
    f = features
    enc = limits.encapsulations

    def v4(direction: str) -> ChecksumIPv4:
        ip, tcp, udp = (f"{p}4_{direction}" in f for p in ("ip", "tcp", "udp"))
        any_on = ip or tcp or udp
        return ChecksumIPv4(
            Encapsulation=enc.get("checksum", 0) if any_on else 0,
            IpOptionsSupported=_b(any_on),
            TcpOptionsSupported=_b(tcp),
            TcpChecksum=_b(tcp),
            UdpChecksum=_b(udp),
            IpChecksum=_b(ip),
        )

    def v6(direction: str) -> ChecksumIPv6:
        tcp, udp = (f"{p}6_{direction}" in f for p in ("tcp", "udp"))
        any_on = tcp or udp
        return ChecksumIPv6(
            Encapsulation=enc.get("checksum", 0) if any_on else 0,
            IpExtensionHeadersSupported=_b(any_on),
            TcpOptionsSupported=_b(tcp),
            TcpChecksum=_b(tcp),
            UdpChecksum=_b(udp),
        )

    lso_size, lso_min = limits.lso_max_offload_size, limits.lso_min_segment_count
    uso_size, uso_min = limits.uso_max_offload_size, limits.uso_min_segment_count
    revision = limits.revision
    offload = NdisOffload(
        Header=NdisOffload.header_for(revision),
        Checksum=NdisTcpIpChecksumOffload(v4("tx"), v4("rx"), v6("tx"), v6("rx")),
        LsoV1=NdisTcpLargeSendOffloadV1(
            LsoV1IPv4(enc.get("lsov1", 0), lso_size, lso_min, 1, 1) if "lsov1" in f else LsoV1IPv4()
        ),
        LsoV2=NdisTcpLargeSendOffloadV2(
            LsoV2IPv4(enc.get("lsov2", 0), lso_size, lso_min) if "lsov2_4" in f else LsoV2IPv4(),
            LsoV2IPv6(enc.get("lsov2", 0), lso_size, lso_min, 1, 1)
            if "lsov2_6" in f
            else LsoV2IPv6(),
        ),
    )
    if revision >= 3:
        offload = offload.evolve(
            Rsc=NdisTcpRecvSegCoalesceOffload(
                RscFamily(_b("rsc4" in f)), RscFamily(_b("rsc6" in f))
            )
        )
    if revision >= 6:
        offload = offload.evolve(
            UdpSegmentation=NdisUdpSegmentationOffload(
                UsoIPv4(enc.get("uso", 0), uso_size, uso_min) if "uso4" in f else UsoIPv4(),
                UsoIPv6(enc.get("uso", 0), uso_size, uso_min, IpExtensionHeadersSupported=1)
                if "uso6" in f
                else UsoIPv6(),
            )
        )
    return offload


def features_of(offload: NdisOffload) -> frozenset[str]:
    """The features an ``NDIS_OFFLOAD`` says are on (what a protocol driver may use)."""
    c = offload.Checksum
    out: set[str] = set()
    for direction, part4, part6 in (
        ("tx", c.IPv4Transmit, c.IPv6Transmit),
        ("rx", c.IPv4Receive, c.IPv6Receive),
    ):
        if part4.Encapsulation:
            if part4.IpChecksum:
                out.add(f"ip4_{direction}")
            if part4.TcpChecksum:
                out.add(f"tcp4_{direction}")
            if part4.UdpChecksum:
                out.add(f"udp4_{direction}")
        if part6.Encapsulation:
            if part6.TcpChecksum:
                out.add(f"tcp6_{direction}")
            if part6.UdpChecksum:
                out.add(f"udp6_{direction}")
    if offload.LsoV1.IPv4.Encapsulation:
        out.add("lsov1")
    if offload.LsoV2.IPv4.Encapsulation:
        out.add("lsov2_4")
    if offload.LsoV2.IPv6.Encapsulation:
        out.add("lsov2_6")
    if offload.Rsc.IPv4.Enabled:
        out.add("rsc4")
    if offload.Rsc.IPv6.Enabled:
        out.add("rsc6")
    if offload.UdpSegmentation.IPv4.Encapsulation:
        out.add("uso4")
    if offload.UdpSegmentation.IPv6.Encapsulation:
        out.add("uso6")
    return frozenset(out)


def feature_encapsulations(offload: NdisOffload) -> dict[str, int]:
    """Each feature that is on in ``offload`` with the ``Encapsulation`` mask of the offload
    type it belongs to. RSC has no ``Encapsulation`` member; the RSC pages require 802.3
    (other encapsulations are indicated normally), so RSC maps to
    ``NDIS_ENCAPSULATION_IEEE_802_3``."""
    c = offload.Checksum
    parts = {
        "4_tx": c.IPv4Transmit.Encapsulation,
        "4_rx": c.IPv4Receive.Encapsulation,
        "6_tx": c.IPv6Transmit.Encapsulation,
        "6_rx": c.IPv6Receive.Encapsulation,
    }
    masks = {
        "lsov1": offload.LsoV1.IPv4.Encapsulation,
        "lsov2_4": offload.LsoV2.IPv4.Encapsulation,
        "lsov2_6": offload.LsoV2.IPv6.Encapsulation,
        "uso4": offload.UdpSegmentation.IPv4.Encapsulation,
        "uso6": offload.UdpSegmentation.IPv6.Encapsulation,
        "rsc4": int(NdisEncapsulation.IEEE_802_3),
        "rsc6": int(NdisEncapsulation.IEEE_802_3),
    }
    out: dict[str, int] = {}
    for feature in features_of(offload):
        if feature in masks:
            out[feature] = int(masks[feature])
        else:  # ip4_tx, tcp6_rx, ...: the checksum part of that IP version and direction
            out[feature] = int(parts[feature[-4:]])
    return out


def offload_types_without_802_3(offload: NdisOffload) -> list[str]:
    """The ``NDIS_OFFLOAD`` parts that advertise an offload whose ``Encapsulation`` lacks
    ``NDIS_ENCAPSULATION_IEEE_802_3``. ``oid-tcp-offload-current-config``: "Miniport adapters
    must support Ethernet encapsulation for all of the types of task offload that they
    support. The other types of encapsulation are optional." Empty for a conformant one."""
    c = offload.Checksum
    parts: tuple[tuple[str, int], ...] = (
        ("Checksum.IPv4Transmit", c.IPv4Transmit.Encapsulation),
        ("Checksum.IPv4Receive", c.IPv4Receive.Encapsulation),
        ("Checksum.IPv6Transmit", c.IPv6Transmit.Encapsulation),
        ("Checksum.IPv6Receive", c.IPv6Receive.Encapsulation),
        ("LsoV1.IPv4", offload.LsoV1.IPv4.Encapsulation),
        ("IPsecV1.Supported", offload.IPsecV1.Supported.Encapsulation),
        ("LsoV2.IPv4", offload.LsoV2.IPv4.Encapsulation),
        ("LsoV2.IPv6", offload.LsoV2.IPv6.Encapsulation),
        ("IPsecV2", offload.IPsecV2.Encapsulation),
        ("UdpSegmentation.IPv4", offload.UdpSegmentation.IPv4.Encapsulation),
        ("UdpSegmentation.IPv6", offload.UdpSegmentation.IPv6.Encapsulation),
    )
    ieee_802_3 = int(NdisEncapsulation.IEEE_802_3)
    return [name for name, mask in parts if mask and not mask & ieee_802_3]


def supported_encapsulations(offload: NdisOffload) -> int:
    """The bitwise OR of the ``Encapsulation`` members of the checksum, LSOv1, IPsec and LSOv2
    parts (and USO): what NDIS reports as the encapsulations the adapter supports."""
    c = offload.Checksum
    mask = (
        c.IPv4Transmit.Encapsulation
        | c.IPv4Receive.Encapsulation
        | c.IPv6Transmit.Encapsulation
        | c.IPv6Receive.Encapsulation
        | offload.LsoV1.IPv4.Encapsulation
        | offload.IPsecV1.Supported.Encapsulation
        | offload.LsoV2.IPv4.Encapsulation
        | offload.LsoV2.IPv6.Encapsulation
        | offload.IPsecV2.Encapsulation
        | offload.UdpSegmentation.IPv4.Encapsulation
        | offload.UdpSegmentation.IPv6.Encapsulation
    )
    return int(mask)

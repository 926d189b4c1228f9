"""Linux constants of the TAP interface (``include/uapi/linux/if_tun.h``) and the NDIS feature
<-> ``TUNSETOFFLOAD`` mapping, sans-IO.

One table: :data:`TUN_OFFLOAD_FEATURES` says which NDIS current-configuration features each
``TUN_F_*`` bit needs; :func:`tun_offload_flags` applies it and :func:`ndis_features_for`
reads it backwards. ``docs/linux-mapping.md`` explains each row and what has no counterpart.
"""

from __future__ import annotations

from enum import IntFlag

from ndis_offload.stack.features import Feature, feature_for

IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000

TUNSETIFF = 0x400454CA
"""``_IOW('T', 202, int)``."""
TUNGETFEATURES = 0x800454CF
"""``_IOR('T', 207, unsigned int)``."""
TUNSETOFFLOAD = 0x400454D0
"""``_IOW('T', 208, unsigned int)``."""
TUNGETVNETHDRSZ = 0x800454D7
TUNSETVNETHDRSZ = 0x400454D8


class TunOffload(IntFlag):
    """``TUN_F_*``: the offloaded frames the TAP's reader accepts from the kernel."""

    CSUM = 0x01
    TSO4 = 0x02
    TSO6 = 0x04
    TSO_ECN = 0x08
    UFO = 0x10
    USO4 = 0x20
    USO6 = 0x40


TUN_F_CSUM = TunOffload.CSUM
TUN_F_TSO4 = TunOffload.TSO4
TUN_F_TSO6 = TunOffload.TSO6
TUN_F_TSO_ECN = TunOffload.TSO_ECN
TUN_F_UFO = TunOffload.UFO
TUN_F_USO4 = TunOffload.USO4
TUN_F_USO6 = TunOffload.USO6

CSUM_FEATURES: frozenset[Feature] = frozenset(
    feature_for("checksum", ip, "Tx", member)
    for ip in (4, 6)
    for member in ("TcpChecksum", "UdpChecksum")
)
"""``TUN_F_CSUM`` gives the device ``NETIF_F_HW_CSUM``: one bit for every protocol and IP
version, so it needs every TCP/UDP transmit checksum offload of both versions."""

_USO = frozenset({feature_for("uso", 4), feature_for("uso", 6)})
TUN_OFFLOAD_FEATURES: dict[TunOffload, frozenset[Feature]] = {
    TunOffload.CSUM: CSUM_FEATURES,
    TunOffload.TSO4: CSUM_FEATURES | {feature_for("lsov2", 4)},
    TunOffload.TSO6: CSUM_FEATURES | {feature_for("lsov2", 6)},
    TunOffload.TSO_ECN: CSUM_FEATURES,  # with TSO4 or TSO6: CWR on the first segment only
    TunOffload.USO4: CSUM_FEATURES | _USO,
    TunOffload.USO6: CSUM_FEATURES | _USO,
}
"""``TUN_F_*`` bit -> the NDIS features (``stack.features`` names) that must all be on.
``TUN_F_UFO`` (IP fragmentation of UDP) has no NDIS counterpart and is never set; the
kernel accepts ``USO4`` only together with ``USO6`` (one ``NETIF_F_GSO_UDP_L4`` bit)."""

_DATA_VALID = "per frame: VIRTIO_NET_HDR_F_DATA_VALID on the frames written"
_GSO_UNIT = "per frame: a GSO_TCPV{} header on the coalesced frames written"
NO_TUN_COUNTERPART: dict[Feature, str] = {
    Feature.IP4_TX: "the kernel always fills the IPv4 header checksum itself",
    Feature.IP4_RX: _DATA_VALID,
    Feature.TCP4_RX: _DATA_VALID,
    Feature.UDP4_RX: _DATA_VALID,
    Feature.TCP6_RX: _DATA_VALID,
    Feature.UDP6_RX: _DATA_VALID,
    Feature.LSOV1: "kernel GSO frames are presented as LSOv2 sends (LSOv1 is not used)",
    Feature.RSC4: _GSO_UNIT.format(4),
    Feature.RSC6: _GSO_UNIT.format(6),
}
"""NDIS features that no ``TUNSETOFFLOAD`` bit expresses, and what stands for them."""


ETHTOOL_FEATURE: dict[TunOffload, str] = {
    TunOffload.CSUM: "tx-checksum-ip-generic",
    TunOffload.TSO4: "tx-tcp-segmentation",
    TunOffload.TSO6: "tx-tcp6-segmentation",
    TunOffload.TSO_ECN: "tx-tcp-ecn-segmentation",
    TunOffload.USO4: "tx-udp-segmentation",
    TunOffload.USO6: "tx-udp-segmentation",
}
"""The device feature (``ethtool -k`` name) ``tun.c``'s ``set_offload`` turns each bit into:
``NETIF_F_HW_CSUM``, ``NETIF_F_TSO``, ``NETIF_F_TSO6``, ``NETIF_F_TSO_ECN``,
``NETIF_F_GSO_UDP_L4``."""


def tun_offload_flags(current: frozenset[str], *, uso_supported: bool = True) -> int:
    """The ``TUNSETOFFLOAD`` argument for an adapter whose current configuration is
    ``current``: every bit whose features are all on (``TSO_ECN`` only with a TSO bit, the
    USO bits only when the kernel has them)."""
    flags = TunOffload(0)
    for bit, needs in TUN_OFFLOAD_FEATURES.items():
        if needs <= current:
            flags |= bit
    if not flags & (TunOffload.TSO4 | TunOffload.TSO6):
        flags &= ~TunOffload.TSO_ECN
    if not uso_supported:
        flags &= ~(TunOffload.USO4 | TunOffload.USO6)
    return int(flags)


def ndis_features_for(flags: int) -> frozenset[Feature]:
    """The NDIS send features a ``TUNSETOFFLOAD`` value lets the kernel use (the reverse
    reading of :data:`TUN_OFFLOAD_FEATURES`)."""
    out: set[Feature] = set()
    for bit, needs in TUN_OFFLOAD_FEATURES.items():
        if flags & bit:
            out |= needs
    return frozenset(out)


def describe_flags(flags: int) -> str:
    """``TUN_F_CSUM|TUN_F_TSO4`` (or ``0``)."""
    names = [f"TUN_F_{bit.name}" for bit in TunOffload if flags & bit]
    return "|".join(names) if names else "0"


__all__ = [
    "CSUM_FEATURES",
    "ETHTOOL_FEATURE",
    "IFF_NO_PI",
    "IFF_TAP",
    "IFF_VNET_HDR",
    "NO_TUN_COUNTERPART",
    "TUNGETFEATURES",
    "TUNSETIFF",
    "TUNSETOFFLOAD",
    "TUNSETVNETHDRSZ",
    "TUN_OFFLOAD_FEATURES",
    "TunOffload",
    "describe_flags",
    "ndis_features_for",
    "tun_offload_flags",
]

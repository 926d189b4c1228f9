"""Offload features: one typed table, and the mappings to and from ``NDIS_OFFLOAD``.

Every feature a miniport can switch is a :class:`Feature`; :data:`FEATURE_TABLE` says, for
each one, where it lives in ``NDIS_OFFLOAD`` (part and member), which
``NDIS_OFFLOAD_PARAMETERS`` field turns it on or off and with which values, which
standardized INF keyword holds it (``using-registry-values-to-enable-and-disable-task-
offloading``) and its label. Everything else in the package (profiles, the reference
miniport, the variants, the tables) reads this table.

A miniport's hardware, configured state and current state are each a frozenset of
features; :func:`build_offload` renders one as the ``NDIS_OFFLOAD`` NDIS sees and
:func:`features_of` reads one back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from functools import reduce
from typing import Any, Literal

from ndis_offload.constants.offload import (
    NdisEncapsulation,
    NdisOffloadParametersChecksum,
    NdisOffloadParametersLsoV2,
)
from ndis_offload.structs.offload import NdisOffload
from ndis_offload.structs.parameters import NdisOffloadParameters


class Feature(StrEnum):
    """One switchable offload, by IP version and direction (the value is its short name)."""

    IP4_TX = "ip4_tx"
    IP4_RX = "ip4_rx"
    TCP4_TX = "tcp4_tx"
    TCP4_RX = "tcp4_rx"
    UDP4_TX = "udp4_tx"
    UDP4_RX = "udp4_rx"
    TCP6_TX = "tcp6_tx"
    TCP6_RX = "tcp6_rx"
    UDP6_TX = "udp6_tx"
    UDP6_RX = "udp6_rx"
    LSOV1 = "lsov1"
    LSOV2_4 = "lsov2_4"
    LSOV2_6 = "lsov2_6"
    USO4 = "uso4"
    USO6 = "uso6"
    RSC4 = "rsc4"
    RSC6 = "rsc6"


OffloadType = Literal["checksum", "lsov1", "lsov2", "uso", "rsc"]

_CSUM = NdisOffloadParametersChecksum
_TX_ON = frozenset({int(_CSUM.TX_ENABLED_RX_DISABLED), int(_CSUM.TX_RX_ENABLED)})
_RX_ON = frozenset({int(_CSUM.RX_ENABLED_TX_DISABLED), int(_CSUM.TX_RX_ENABLED)})
_CSUM_ALL = frozenset(int(v) for v in _CSUM if v != _CSUM.NO_CHANGE)
_SWITCH_ON = frozenset({int(NdisOffloadParametersLsoV2.LSOV2_ENABLED)})
"""``*_ENABLED`` = 2 for LSOv1, LSOv2, RSC and USO (``NDIS_OFFLOAD_PARAMETERS_UDP_SEG_ENABLED``)."""
_SWITCH_OFF = frozenset({int(NdisOffloadParametersLsoV2.LSOV2_DISABLED)})


@dataclass(frozen=True)
class FeatureSpec:
    """Where one :class:`Feature` lives in every NDIS vocabulary."""

    feature: Feature
    label: str
    row: str
    """The offload-type row of the ``ethtool -k`` style grid."""
    ip: Literal[4, 6]
    direction: Literal["Tx", "Rx"]
    offload_type: OffloadType
    """Key of :attr:`OffloadLimits.encapsulations` (the part's ``Encapsulation`` mask)."""
    part: str
    """``NDIS_OFFLOAD`` part: ``Checksum.IPv4Transmit``, ``LsoV2.IPv6``, ``Rsc.IPv4`` ..."""
    member: str
    """The member of ``part`` that says the feature is on."""
    offload_since: int
    """First ``NDIS_OFFLOAD`` revision with this part."""
    parameters_field: str
    """``NDIS_OFFLOAD_PARAMETERS`` field (dotted for ``UdpSegmentation.IPv4``)."""
    parameters_since: int
    """First ``NDIS_OFFLOAD_PARAMETERS`` revision with this field."""
    parameters_on: frozenset[int]
    """Values of the field that turn the feature on; :attr:`parameters_off` turn it off."""
    parameters_off: frozenset[int]
    keyword: str
    """Standardized INF keyword."""
    keyword_bit: int
    """The bit of the keyword value that enables this feature (checksum: 1 Tx, 2 Rx)."""
    keyword_max: int
    switched_by_encapsulation: bool
    """``OID_OFFLOAD_ENCAPSULATION`` ON activates and OFF deactivates it (README, Decisions:
    checksum, LSO and USO; not RSC)."""
    also: tuple[str, ...] = ()
    """Members of ``part`` reported as supported with it (IP/TCP options, IPv6 extension
    headers), as NetKVM and netvsp report them."""

    @property
    def encapsulation_member(self) -> str | None:
        """The ``Encapsulation`` member of the part (``None``: RSC has none)."""
        return None if self.offload_type == "rsc" else f"{self.part}.Encapsulation"


def _checksum(
    feature: Feature, proto: str, ip: Literal[4, 6], direction: Literal["Tx", "Rx"]
) -> FeatureSpec:
    tx = direction == "Tx"
    member = {"IP": "IpChecksum", "TCP": "TcpChecksum", "UDP": "UdpChecksum"}[proto]
    if ip == 4:
        also: tuple[str, ...] = ("IpOptionsSupported",)
        also += ("TcpOptionsSupported",) if proto == "TCP" else ()
    else:
        also = ("IpExtensionHeadersSupported",)
        also += ("TcpOptionsSupported",) if proto == "TCP" else ()
    on = _TX_ON if tx else _RX_ON
    keyword = f"*{proto}ChecksumOffloadIPv{ip}"
    field_name = "IPv4Checksum" if proto == "IP" else f"{proto}IPv{ip}Checksum"
    label = f"{'IPv4 header' if proto == 'IP' else f'{proto}/IPv{ip}'} checksum {direction}"
    return FeatureSpec(
        feature,
        label,
        "IP header checksum" if proto == "IP" else f"{proto} checksum",
        ip,
        direction,
        "checksum",
        f"Checksum.IPv{ip}{'Transmit' if tx else 'Receive'}",
        member,
        1,
        field_name,
        1,
        on,
        _CSUM_ALL - on,
        keyword,
        1 if tx else 2,
        3,
        True,
        also,
    )


def _switch(
    feature: Feature,
    label: str,
    row: str,
    ip: Literal[4, 6],
    offload_type: OffloadType,
    part: str,
    since: tuple[int, int],
    parameters_field: str,
    keyword: str,
    also: tuple[str, ...] = (),
) -> FeatureSpec:
    rsc = offload_type == "rsc"
    return FeatureSpec(
        feature,
        label,
        row,
        ip,
        "Rx" if rsc else "Tx",
        offload_type,
        part,
        "Enabled" if rsc else "Encapsulation",
        since[0],
        parameters_field,
        since[1],
        _SWITCH_ON,
        _SWITCH_OFF,
        keyword,
        1,
        1,
        not rsc,
        also,
    )


F = Feature
FEATURE_TABLE: dict[str, FeatureSpec] = {
    spec.feature: spec
    for spec in (
        _checksum(F.IP4_TX, "IP", 4, "Tx"),
        _checksum(F.IP4_RX, "IP", 4, "Rx"),
        _checksum(F.TCP4_TX, "TCP", 4, "Tx"),
        _checksum(F.TCP4_RX, "TCP", 4, "Rx"),
        _checksum(F.UDP4_TX, "UDP", 4, "Tx"),
        _checksum(F.UDP4_RX, "UDP", 4, "Rx"),
        _checksum(F.TCP6_TX, "TCP", 6, "Tx"),
        _checksum(F.TCP6_RX, "TCP", 6, "Rx"),
        _checksum(F.UDP6_TX, "UDP", 6, "Tx"),
        _checksum(F.UDP6_RX, "UDP", 6, "Rx"),
        _switch(F.LSOV1, "LSOv1 IPv4", "LSOv1", 4, "lsov1", "LsoV1.IPv4", (1, 1), "LsoV1",
                "*LsoV1IPv4", ("TcpOptions", "IpOptions")),
        _switch(F.LSOV2_4, "LSOv2 IPv4", "LSOv2", 4, "lsov2", "LsoV2.IPv4", (1, 1),
                "LsoV2IPv4", "*LsoV2IPv4"),
        _switch(F.LSOV2_6, "LSOv2 IPv6", "LSOv2", 6, "lsov2", "LsoV2.IPv6", (1, 1),
                "LsoV2IPv6", "*LsoV2IPv6", ("IpExtensionHeadersSupported", "TcpOptionsSupported")),
        _switch(F.USO4, "USO IPv4", "USO", 4, "uso", "UdpSegmentation.IPv4", (6, 5),
                "UdpSegmentation.IPv4", "*UsoIPv4"),
        _switch(F.USO6, "USO IPv6", "USO", 6, "uso", "UdpSegmentation.IPv6", (6, 5),
                "UdpSegmentation.IPv6", "*UsoIPv6", ("IpExtensionHeadersSupported",)),
        _switch(F.RSC4, "RSC IPv4", "RSC", 4, "rsc", "Rsc.IPv4", (3, 3), "RscIPv4", "*RscIPv4"),
        _switch(F.RSC6, "RSC IPv6", "RSC", 6, "rsc", "Rsc.IPv6", (3, 3), "RscIPv6", "*RscIPv6"),
    )
}  # fmt: skip
"""The one feature table (an explicit registry, in display order)."""

FEATURES: tuple[Feature, ...] = tuple(row.feature for row in FEATURE_TABLE.values())
"""Every feature, in display order."""

FAMILY_FEATURES: dict[int, frozenset[Feature]] = {
    ip: frozenset(
        row.feature
        for row in FEATURE_TABLE.values()
        if row.ip == ip and row.switched_by_encapsulation
    )
    for ip in (4, 6)
}
"""What ``NDIS_OFFLOAD_ENCAPSULATION`` ``IPv4``/``IPv6`` ON activates and OFF deactivates."""

OFFLOAD_TYPES: tuple[OffloadType, ...] = ("checksum", "lsov1", "lsov2", "uso")
"""The offload types with an ``Encapsulation`` member a profile declares masks for."""

KEYWORDS: dict[str, tuple[Feature, ...]] = {}
"""Each standardized INF keyword and the features its value switches."""
for _spec in FEATURE_TABLE.values():
    KEYWORDS.setdefault(_spec.keyword, ())
    KEYWORDS[_spec.keyword] += (_spec.feature,)
del _spec


_BY_PLACE: dict[tuple[str, int, str, str], Feature] = {
    (row.offload_type, row.ip, row.direction, row.member): row.feature
    for row in FEATURE_TABLE.values()
}


def feature_for(
    offload_type: OffloadType, ip: int, direction: str = "Tx", member: str = ""
) -> Feature:
    """The feature of an offload type, IP version and direction; for a checksum also its
    ``NDIS_OFFLOAD`` member (``IpChecksum``, ``TcpChecksum``, ``UdpChecksum``). ``KeyError``
    if there is none (e.g. an IPv6 header checksum)."""
    if not member:
        member = {"rsc": "Enabled"}.get(offload_type, "Encapsulation")
    return _BY_PLACE[(offload_type, ip, direction, member)]


def spec(feature: str) -> FeatureSpec:
    """The table row of ``feature`` (a :class:`Feature` or its short name)."""
    return FEATURE_TABLE[Feature(feature)]


def read_member(obj: Any, path: str) -> Any:
    """The member at a dotted ``path`` (``LsoV2.IPv4.Encapsulation``) of a structure."""
    return reduce(getattr, path.split("."), obj)


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
        default_factory=lambda: dict.fromkeys(OFFLOAD_TYPES, int(NdisEncapsulation.IEEE_802_3))
    )


def build_offload(features: frozenset[str], limits: OffloadLimits) -> NdisOffload:
    """Render a feature set as the ``NDIS_OFFLOAD`` a miniport reports.

    Each feature sets its member (and its :attr:`FeatureSpec.also` members) to 1 and its
    part's ``Encapsulation`` to the profile's mask; LSO and USO parts carry the sizes. An
    offload that is off has ``Encapsulation = NDIS_ENCAPSULATION_NOT_SUPPORTED`` and zero
    sizes. Parts newer than ``limits.revision`` stay empty.
    """
    data: dict[str, Any] = {"Header": NdisOffload.header_for(limits.revision).to_dict()}
    sizes = {
        "lsov1": (limits.lso_max_offload_size, limits.lso_min_segment_count),
        "lsov2": (limits.lso_max_offload_size, limits.lso_min_segment_count),
        "uso": (limits.uso_max_offload_size, limits.uso_min_segment_count),
    }
    for feature in FEATURES:
        row = FEATURE_TABLE[feature]
        if feature not in features or row.offload_since > limits.revision:
            continue
        part: dict[str, Any] = reduce(lambda d, k: d.setdefault(k, {}), row.part.split("."), data)
        part[row.member] = 1
        for member in row.also:
            part[member] = 1
        if row.encapsulation_member is not None:
            part["Encapsulation"] = limits.encapsulations.get(row.offload_type, 0)
        if row.offload_type in sizes:
            part["MaxOffLoadSize"], part["MinSegmentCount"] = sizes[row.offload_type]
    return NdisOffload.from_dict(data)


def features_of(offload: NdisOffload) -> frozenset[Feature]:
    """The features an ``NDIS_OFFLOAD`` says are on: the member set and, for a part with an
    ``Encapsulation`` member, a nonzero ``Encapsulation``."""
    out = set()
    for row in FEATURE_TABLE.values():
        if row.encapsulation_member is not None and not read_member(
            offload, row.encapsulation_member
        ):
            continue
        if read_member(offload, f"{row.part}.{row.member}"):
            out.add(row.feature)
    return frozenset(out)


def feature_encapsulations(offload: NdisOffload) -> dict[str, int]:
    """Each feature that is on in ``offload`` with the ``Encapsulation`` mask of its part.
    RSC has no ``Encapsulation`` member; the RSC pages require 802.3 (other encapsulations
    are indicated normally), so RSC maps to ``NDIS_ENCAPSULATION_IEEE_802_3``."""
    out: dict[str, int] = {}
    for feature in features_of(offload):
        member = FEATURE_TABLE[feature].encapsulation_member
        mask = int(NdisEncapsulation.IEEE_802_3) if member is None else read_member(offload, member)
        out[feature] = int(mask)
    return out


ENCAPSULATION_MEMBERS: tuple[str, ...] = (
    "Checksum.IPv4Transmit.Encapsulation",
    "Checksum.IPv4Receive.Encapsulation",
    "Checksum.IPv6Transmit.Encapsulation",
    "Checksum.IPv6Receive.Encapsulation",
    "LsoV1.IPv4.Encapsulation",
    "IPsecV1.Supported.Encapsulation",
    "LsoV2.IPv4.Encapsulation",
    "LsoV2.IPv6.Encapsulation",
    "IPsecV2.Encapsulation",
    "UdpSegmentation.IPv4.Encapsulation",
    "UdpSegmentation.IPv6.Encapsulation",
)
"""Every ``Encapsulation`` member of ``NDIS_OFFLOAD`` (IPsec included)."""


def offload_types_without_802_3(offload: NdisOffload) -> list[str]:
    """The ``NDIS_OFFLOAD`` parts that advertise an offload whose ``Encapsulation`` lacks
    ``NDIS_ENCAPSULATION_IEEE_802_3``. ``oid-tcp-offload-current-config``: "Miniport adapters
    must support Ethernet encapsulation for all of the types of task offload that they
    support. The other types of encapsulation are optional." Empty for a conformant one."""
    ieee_802_3 = int(NdisEncapsulation.IEEE_802_3)
    out = []
    for member in ENCAPSULATION_MEMBERS:
        mask = read_member(offload, member)
        if mask and not mask & ieee_802_3:
            out.append(member.removesuffix(".Encapsulation"))
    return out


def supported_encapsulations(offload: NdisOffload) -> int:
    """The bitwise OR of every ``Encapsulation`` member: what NDIS reports as the
    encapsulations the adapter supports (``oid-tcp-offload-current-config``)."""
    mask = 0
    for member in ENCAPSULATION_MEMBERS:
        mask |= read_member(offload, member)
    return int(mask)


@dataclass(frozen=True)
class ParameterRequest:
    """What one ``NDIS_OFFLOAD_PARAMETERS`` asks: features to turn on and off, and fields
    holding a value the field does not define (``undefined``: feature -> value)."""

    on: frozenset[Feature]
    off: frozenset[Feature]
    undefined: dict[Feature, int]


def parameter_request(p: NdisOffloadParameters, *, revision_gate: bool = True) -> ParameterRequest:
    """Read ``p`` through the table. ``NO_CHANGE`` (0) asks nothing. With ``revision_gate``,
    fields newer than ``p.Header.Revision`` are ignored (a decoded structure already has
    them zero)."""
    on: set[Feature] = set()
    off: set[Feature] = set()
    undefined: dict[Feature, int] = {}
    for row in FEATURE_TABLE.values():
        if revision_gate and row.parameters_since > p.Header.Revision:
            continue
        value = int(read_member(p, row.parameters_field))
        if value == 0:
            continue
        if value in row.parameters_on:
            on.add(row.feature)
        elif value in row.parameters_off:
            off.add(row.feature)
        else:
            undefined[row.feature] = value
    return ParameterRequest(frozenset(on), frozenset(off), undefined)

"""``NDIS_OFFLOAD_PARAMETERS`` (revisions 1-5): the InformationBuffer of
``OID_TCP_OFFLOAD_PARAMETERS``."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Annotated, ClassVar

from ndis_offload.constants import objects as o
from ndis_offload.constants.offload import (
    NdisOffloadParametersChecksum,
    NdisOffloadParametersConnectionOffload,
    NdisOffloadParametersIPsecV1,
    NdisOffloadParametersIPsecV2,
    NdisOffloadParametersLsoV1,
    NdisOffloadParametersLsoV2,
    NdisOffloadParametersRsc,
    NdisOffloadParametersUso,
)
from ndis_offload.structs.codec import UCHAR, ULONG, USHORT, NdisStruct, Since, ndis_struct
from ndis_offload.structs.header import NdisObjectHeader

NDIS_OFFLOAD_PARAMETERS_SIZES: dict[int, int] = {
    o.NDIS_OFFLOAD_PARAMETERS_REVISION_1: o.NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_1,
    o.NDIS_OFFLOAD_PARAMETERS_REVISION_2: o.NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_2,
    o.NDIS_OFFLOAD_PARAMETERS_REVISION_3: o.NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_3,
    o.NDIS_OFFLOAD_PARAMETERS_REVISION_4: o.NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_4,
    o.NDIS_OFFLOAD_PARAMETERS_REVISION_5: o.NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_5,
}


def _values(enum_cls: type[IntEnum]) -> frozenset[int]:
    return frozenset(int(v) for v in enum_cls.__members__.values())


@ndis_struct(None)
@dataclass(frozen=True, slots=True)
class VxlanParameters(NdisStruct):
    """``struct _VXLAN_PARAMETERS {USHORT VxlanUDPPortNumber;}``."""

    VxlanUDPPortNumber: Annotated[int, USHORT] = 0


@ndis_struct(None)
@dataclass(frozen=True, slots=True)
class EncapsulationProtocolParameters(NdisStruct):
    """``union _ENCAPSULATION_PROTOCOL_PARAMETERS {VxlanParameters; ULONG Value;}``."""

    VIEWS: ClassVar[dict[str, type[NdisStruct]]] = {"VxlanParameters": VxlanParameters}

    Value: Annotated[int, ULONG] = 0


@ndis_struct(None)
@dataclass(frozen=True, slots=True)
class UdpSegmentationParameters(NdisStruct):
    """``struct {UCHAR IPv4; UCHAR IPv6;} UdpSegmentation``."""

    ENUM_FIELDS: ClassVar[dict[str, frozenset[int]]] = {
        "IPv4": _values(NdisOffloadParametersUso),
        "IPv6": _values(NdisOffloadParametersUso),
    }

    IPv4: Annotated[int, UCHAR] = 0
    IPv6: Annotated[int, UCHAR] = 0


def _parameters_header(
    revision: int = o.NDIS_OFFLOAD_PARAMETERS_REVISION_5,
) -> NdisObjectHeader:
    return NdisObjectHeader(
        o.NDIS_OBJECT_TYPE_DEFAULT, revision, NDIS_OFFLOAD_PARAMETERS_SIZES[revision]
    )


_CSUM = _values(NdisOffloadParametersChecksum)


@ndis_struct("NDIS_OFFLOAD_PARAMETERS")
@dataclass(frozen=True, slots=True)
class NdisOffloadParameters(NdisStruct):
    """``NDIS_OFFLOAD_PARAMETERS``: per-offload settings, ``NDIS_OFFLOAD_PARAMETERS_NO_CHANGE``
    (0) keeps the current value. Header type ``NDIS_OBJECT_TYPE_DEFAULT``."""

    OBJECT_TYPE: ClassVar[int | None] = o.NDIS_OBJECT_TYPE_DEFAULT
    REVISION_SIZES: ClassVar[dict[int, int]] = NDIS_OFFLOAD_PARAMETERS_SIZES
    ENUM_FIELDS: ClassVar[dict[str, frozenset[int]]] = {
        "IPv4Checksum": _CSUM,
        "TCPIPv4Checksum": _CSUM,
        "UDPIPv4Checksum": _CSUM,
        "TCPIPv6Checksum": _CSUM,
        "UDPIPv6Checksum": _CSUM,
        "LsoV1": _values(NdisOffloadParametersLsoV1),
        "IPsecV1": _values(NdisOffloadParametersIPsecV1),
        "LsoV2IPv4": _values(NdisOffloadParametersLsoV2),
        "LsoV2IPv6": _values(NdisOffloadParametersLsoV2),
        "TcpConnectionIPv4": _values(NdisOffloadParametersConnectionOffload),
        "TcpConnectionIPv6": _values(NdisOffloadParametersConnectionOffload),
        "IPsecV2": _values(NdisOffloadParametersIPsecV2),
        "IPsecV2IPv4": _values(NdisOffloadParametersIPsecV2),
        "RscIPv4": _values(NdisOffloadParametersRsc),
        "RscIPv6": _values(NdisOffloadParametersRsc),
    }

    Header: NdisObjectHeader = field(default_factory=_parameters_header)
    IPv4Checksum: Annotated[int, UCHAR] = 0
    TCPIPv4Checksum: Annotated[int, UCHAR] = 0
    UDPIPv4Checksum: Annotated[int, UCHAR] = 0
    TCPIPv6Checksum: Annotated[int, UCHAR] = 0
    UDPIPv6Checksum: Annotated[int, UCHAR] = 0
    LsoV1: Annotated[int, UCHAR] = 0
    IPsecV1: Annotated[int, UCHAR] = 0
    LsoV2IPv4: Annotated[int, UCHAR] = 0
    LsoV2IPv6: Annotated[int, UCHAR] = 0
    TcpConnectionIPv4: Annotated[int, UCHAR] = 0
    TcpConnectionIPv6: Annotated[int, UCHAR] = 0
    Flags: Annotated[int, ULONG] = 0
    IPsecV2: Annotated[int, UCHAR, Since(2)] = 0
    IPsecV2IPv4: Annotated[int, UCHAR, Since(2)] = 0
    RscIPv4: Annotated[int, UCHAR, Since(3)] = 0
    RscIPv6: Annotated[int, UCHAR, Since(3)] = 0
    EncapsulatedPacketTaskOffload: Annotated[int, UCHAR, Since(3)] = 0
    EncapsulationTypes: Annotated[int, UCHAR, Since(3)] = 0
    EncapsulationProtocolParameters: Annotated[EncapsulationProtocolParameters, Since(4)] = field(
        default_factory=EncapsulationProtocolParameters
    )
    UdpSegmentation: Annotated[UdpSegmentationParameters, Since(5)] = field(
        default_factory=UdpSegmentationParameters
    )

    @classmethod
    def header_for(cls, revision: int) -> NdisObjectHeader:
        """A correct ``Header`` for ``revision`` (type ``NDIS_OBJECT_TYPE_DEFAULT``)."""
        return _parameters_header(revision)

"""The statistics a miniport answers queries with: ``NDIS_RSC_STATISTICS_INFO``
(``OID_TCP_RSC_STATISTICS``) and ``NDIS_STATISTICS_INFO`` (``OID_GEN_STATISTICS``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, ClassVar

from ndis_offload.constants.objects import (
    NDIS_OBJECT_TYPE_DEFAULT,
    NDIS_RSC_STATISTICS_REVISION_1,
    NDIS_SIZEOF_RSC_STATISTICS_REVISION_1,
    NDIS_SIZEOF_STATISTICS_INFO_REVISION_1,
    NDIS_STATISTICS_INFO_REVISION_1,
)
from ndis_offload.constants.statistics import NdisStatisticsFlags
from ndis_offload.structs.codec import ULONG, ULONG64, NdisStruct, ndis_struct
from ndis_offload.structs.header import NdisObjectHeader


def _rsc_header() -> NdisObjectHeader:
    return NdisObjectHeader(
        NDIS_OBJECT_TYPE_DEFAULT,
        NDIS_RSC_STATISTICS_REVISION_1,
        NDIS_SIZEOF_RSC_STATISTICS_REVISION_1,
    )


@ndis_struct("NDIS_RSC_STATISTICS_INFO")
@dataclass(frozen=True, slots=True)
class NdisRscStatisticsInfo(NdisStruct):
    """``typedef struct _NDIS_RSC_STATISTICS_INFO { NDIS_OBJECT_HEADER Header;
    ULONG64 CoalescedPkts; ULONG64 CoalescedOctets; ULONG64 CoalesceEvents;
    ULONG64 Aborts; }`` (``ddi:ntddndis/ns-ntddndis-_ndis_rsc_statistics_info``)."""

    OBJECT_TYPE: ClassVar[int | None] = NDIS_OBJECT_TYPE_DEFAULT
    REVISION_SIZES: ClassVar[dict[int, int]] = {
        NDIS_RSC_STATISTICS_REVISION_1: NDIS_SIZEOF_RSC_STATISTICS_REVISION_1
    }

    Header: NdisObjectHeader = field(default_factory=_rsc_header)
    CoalescedPkts: Annotated[int, ULONG64] = 0
    CoalescedOctets: Annotated[int, ULONG64] = 0
    CoalesceEvents: Annotated[int, ULONG64] = 0
    Aborts: Annotated[int, ULONG64] = 0


def _statistics_header() -> NdisObjectHeader:
    return NdisObjectHeader(
        NDIS_OBJECT_TYPE_DEFAULT,
        NDIS_STATISTICS_INFO_REVISION_1,
        NDIS_SIZEOF_STATISTICS_INFO_REVISION_1,
    )


@ndis_struct("NDIS_STATISTICS_INFO")
@dataclass(frozen=True, slots=True)
class NdisStatisticsInfo(NdisStruct):
    """``typedef struct _NDIS_STATISTICS_INFO { NDIS_OBJECT_HEADER Header;
    ULONG SupportedStatistics; ULONG64 ifInDiscards; ... ULONG64 ifHCOutBroadcastOctets; }``
    (``ddi:ntddndis/ns-ntddndis-_ndis_statistics_info``); ``SupportedStatistics`` holds
    ``NDIS_STATISTICS_FLAGS_VALID_*`` bits."""

    OBJECT_TYPE: ClassVar[int | None] = NDIS_OBJECT_TYPE_DEFAULT
    REVISION_SIZES: ClassVar[dict[int, int]] = {
        NDIS_STATISTICS_INFO_REVISION_1: NDIS_SIZEOF_STATISTICS_INFO_REVISION_1
    }

    Header: NdisObjectHeader = field(default_factory=_statistics_header)
    SupportedStatistics: Annotated[int, ULONG] = 0
    ifInDiscards: Annotated[int, ULONG64] = 0
    ifInErrors: Annotated[int, ULONG64] = 0
    ifHCInOctets: Annotated[int, ULONG64] = 0
    ifHCInUcastPkts: Annotated[int, ULONG64] = 0
    ifHCInMulticastPkts: Annotated[int, ULONG64] = 0
    ifHCInBroadcastPkts: Annotated[int, ULONG64] = 0
    ifHCOutOctets: Annotated[int, ULONG64] = 0
    ifHCOutUcastPkts: Annotated[int, ULONG64] = 0
    ifHCOutMulticastPkts: Annotated[int, ULONG64] = 0
    ifHCOutBroadcastPkts: Annotated[int, ULONG64] = 0
    ifOutErrors: Annotated[int, ULONG64] = 0
    ifOutDiscards: Annotated[int, ULONG64] = 0
    ifHCInUcastOctets: Annotated[int, ULONG64] = 0
    ifHCInMulticastOctets: Annotated[int, ULONG64] = 0
    ifHCInBroadcastOctets: Annotated[int, ULONG64] = 0
    ifHCOutUcastOctets: Annotated[int, ULONG64] = 0
    ifHCOutMulticastOctets: Annotated[int, ULONG64] = 0
    ifHCOutBroadcastOctets: Annotated[int, ULONG64] = 0


STATISTICS_MEMBERS: dict[NdisStatisticsFlags, str] = {
    NdisStatisticsFlags.VALID_DIRECTED_FRAMES_RCV: "ifHCInUcastPkts",
    NdisStatisticsFlags.VALID_MULTICAST_FRAMES_RCV: "ifHCInMulticastPkts",
    NdisStatisticsFlags.VALID_BROADCAST_FRAMES_RCV: "ifHCInBroadcastPkts",
    NdisStatisticsFlags.VALID_BYTES_RCV: "ifHCInOctets",
    NdisStatisticsFlags.VALID_RCV_DISCARDS: "ifInDiscards",
    NdisStatisticsFlags.VALID_RCV_ERROR: "ifInErrors",
    NdisStatisticsFlags.VALID_DIRECTED_FRAMES_XMIT: "ifHCOutUcastPkts",
    NdisStatisticsFlags.VALID_MULTICAST_FRAMES_XMIT: "ifHCOutMulticastPkts",
    NdisStatisticsFlags.VALID_BROADCAST_FRAMES_XMIT: "ifHCOutBroadcastPkts",
    NdisStatisticsFlags.VALID_BYTES_XMIT: "ifHCOutOctets",
    NdisStatisticsFlags.VALID_XMIT_ERROR: "ifOutErrors",
    NdisStatisticsFlags.VALID_XMIT_DISCARDS: "ifOutDiscards",
    NdisStatisticsFlags.VALID_DIRECTED_BYTES_RCV: "ifHCInUcastOctets",
    NdisStatisticsFlags.VALID_MULTICAST_BYTES_RCV: "ifHCInMulticastOctets",
    NdisStatisticsFlags.VALID_BROADCAST_BYTES_RCV: "ifHCInBroadcastOctets",
    NdisStatisticsFlags.VALID_DIRECTED_BYTES_XMIT: "ifHCOutUcastOctets",
    NdisStatisticsFlags.VALID_MULTICAST_BYTES_XMIT: "ifHCOutMulticastOctets",
    NdisStatisticsFlags.VALID_BROADCAST_BYTES_XMIT: "ifHCOutBroadcastOctets",
}
"""The ``NDIS_STATISTICS_INFO`` member each ``NDIS_STATISTICS_FLAGS_VALID_*`` bit of
``SupportedStatistics`` vouches for (``ddi:ntddndis/ns-ntddndis-_ndis_statistics_info``)."""


def supported_members(supported: int) -> list[str]:
    """The members a ``SupportedStatistics`` value says the miniport fills, in flag order."""
    return [member for flag, member in STATISTICS_MEMBERS.items() if supported & flag]

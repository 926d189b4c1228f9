"""``NDIS_STATISTICS_FLAGS_*``: which members of ``NDIS_STATISTICS_INFO`` a miniport fills
(``SupportedStatistics``, ``ntddndis.h``; ``OID_GEN_STATISTICS``)."""

from __future__ import annotations

from enum import IntFlag


class NdisStatisticsFlags(IntFlag):
    """``NDIS_STATISTICS_FLAGS_VALID_*`` bits; members are the C names without the
    ``NDIS_STATISTICS_FLAGS_`` prefix."""

    VALID_DIRECTED_FRAMES_RCV = 0x00000001
    VALID_MULTICAST_FRAMES_RCV = 0x00000002
    VALID_BROADCAST_FRAMES_RCV = 0x00000004
    VALID_BYTES_RCV = 0x00000008
    VALID_RCV_DISCARDS = 0x00000010
    VALID_RCV_ERROR = 0x00000020
    VALID_DIRECTED_FRAMES_XMIT = 0x00000040
    VALID_MULTICAST_FRAMES_XMIT = 0x00000080
    VALID_BROADCAST_FRAMES_XMIT = 0x00000100
    VALID_BYTES_XMIT = 0x00000200
    VALID_XMIT_ERROR = 0x00000400
    VALID_XMIT_DISCARDS = 0x00008000
    VALID_DIRECTED_BYTES_RCV = 0x00010000
    VALID_MULTICAST_BYTES_RCV = 0x00020000
    VALID_BROADCAST_BYTES_RCV = 0x00040000
    VALID_DIRECTED_BYTES_XMIT = 0x00080000
    VALID_MULTICAST_BYTES_XMIT = 0x00100000
    VALID_BROADCAST_BYTES_XMIT = 0x00200000


TRANSMIT = (
    NdisStatisticsFlags.VALID_DIRECTED_FRAMES_XMIT
    | NdisStatisticsFlags.VALID_MULTICAST_FRAMES_XMIT
    | NdisStatisticsFlags.VALID_BROADCAST_FRAMES_XMIT
    | NdisStatisticsFlags.VALID_BYTES_XMIT
    | NdisStatisticsFlags.VALID_XMIT_DISCARDS
    | NdisStatisticsFlags.VALID_DIRECTED_BYTES_XMIT
    | NdisStatisticsFlags.VALID_MULTICAST_BYTES_XMIT
    | NdisStatisticsFlags.VALID_BROADCAST_BYTES_XMIT
)
"""The transmit counters a software miniport keeps (frames and bytes per destination kind,
total bytes, discards)."""
RECEIVE = (
    NdisStatisticsFlags.VALID_DIRECTED_FRAMES_RCV
    | NdisStatisticsFlags.VALID_MULTICAST_FRAMES_RCV
    | NdisStatisticsFlags.VALID_BROADCAST_FRAMES_RCV
    | NdisStatisticsFlags.VALID_BYTES_RCV
    | NdisStatisticsFlags.VALID_DIRECTED_BYTES_RCV
    | NdisStatisticsFlags.VALID_MULTICAST_BYTES_RCV
    | NdisStatisticsFlags.VALID_BROADCAST_BYTES_RCV
)
"""The receive counters a software miniport keeps."""

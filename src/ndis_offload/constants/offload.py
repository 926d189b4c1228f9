"""Offload values (``ntddndis.h``, ``nbllso.h``, ``nbluso.h``): encapsulations, set and
parameter values, LSO/USO info-word values, encapsulated-packet and IPsec v2 flags."""

from __future__ import annotations

from enum import IntEnum, IntFlag


class NdisEncapsulation(IntFlag):
    """``NDIS_ENCAPSULATION_*``: a bit mask in ``NDIS_OFFLOAD`` ``Encapsulation`` members."""

    NOT_SUPPORTED = 0x00000000
    NULL = 0x00000001
    IEEE_802_3 = 0x00000002
    IEEE_802_3_P_AND_Q = 0x00000004
    IEEE_802_3_P_AND_Q_IN_OOB = 0x00000008
    IEEE_LLC_SNAP_ROUTED = 0x00000010

    @classmethod
    def mask(cls) -> int:
        """All defined encapsulation bits."""
        out = 0
        for member in cls:
            out |= int(member)
        return out


class NdisOffloadSet(IntEnum):
    """``NDIS_OFFLOAD_SET_*``: ``NDIS_OFFLOAD_ENCAPSULATION.IPv4/IPv6.Enabled``."""

    NO_CHANGE = 0
    ON = 1
    OFF = 2


class NdisOffloadSupport(IntEnum):
    """``NDIS_OFFLOAD_NOT_SUPPORTED`` / ``_SUPPORTED``: the ``NDIS_OFFLOAD`` bit fields."""

    NOT_SUPPORTED = 0
    SUPPORTED = 1


class NdisOffloadParametersChecksum(IntEnum):
    """``NDIS_OFFLOAD_PARAMETERS_*`` for the five checksum members."""

    NO_CHANGE = 0
    TX_RX_DISABLED = 1
    TX_ENABLED_RX_DISABLED = 2
    RX_ENABLED_TX_DISABLED = 3
    TX_RX_ENABLED = 4


class NdisOffloadParametersLsoV1(IntEnum):
    NO_CHANGE = 0
    LSOV1_DISABLED = 1
    LSOV1_ENABLED = 2


class NdisOffloadParametersLsoV2(IntEnum):
    NO_CHANGE = 0
    LSOV2_DISABLED = 1
    LSOV2_ENABLED = 2


class NdisOffloadParametersIPsecV1(IntEnum):
    NO_CHANGE = 0
    IPSECV1_DISABLED = 1
    IPSECV1_AH_ENABLED = 2
    IPSECV1_ESP_ENABLED = 3
    IPSECV1_AH_AND_ESP_ENABLED = 4


class NdisOffloadParametersIPsecV2(IntEnum):
    NO_CHANGE = 0
    IPSECV2_DISABLED = 1
    IPSECV2_AH_ENABLED = 2
    IPSECV2_ESP_ENABLED = 3
    IPSECV2_AH_AND_ESP_ENABLED = 4


class NdisOffloadParametersRsc(IntEnum):
    NO_CHANGE = 0
    RSC_DISABLED = 1
    RSC_ENABLED = 2


class NdisOffloadParametersUso(IntEnum):
    NO_CHANGE = 0
    USO_DISABLED = 1
    USO_ENABLED = 2


class NdisOffloadParametersConnectionOffload(IntEnum):
    NO_CHANGE = 0
    CONNECTION_OFFLOAD_DISABLED = 1
    CONNECTION_OFFLOAD_ENABLED = 2


NDIS_OFFLOAD_PARAMETERS_SKIP_REGISTRY_UPDATE = 0x00000001
"""``NDIS_OFFLOAD_PARAMETERS.Flags``: do not persist the change to the registry."""


class NdisEncapsulationType(IntFlag):
    """``NDIS_ENCAPSULATION_TYPE_*``: ``EncapsulationTypes`` (GRE/VXLAN task offload)."""

    GRE_MAC = 0x00000001
    VXLAN = 0x00000002


class NdisEncapsulatedPacketTaskOffload(IntFlag):
    """``NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_*``: the 4-bit support masks."""

    NOT_SUPPORTED = 0x00000000
    INNER_IPV4 = 0x00000001
    OUTER_IPV4 = 0x00000002
    INNER_IPV6 = 0x00000004
    OUTER_IPV6 = 0x00000008


class NdisOffloadFlags(IntFlag):
    """``NDIS_OFFLOAD.Flags``."""

    NDIS_OFFLOAD_FLAGS_GROUP_CHECKSUM_CAPABILITIES = 0x00000001
    IPSEC_OFFLOAD_V2_AND_TCP_CHECKSUM_COEXISTENCE = 0x00000002
    IPSEC_OFFLOAD_V2_AND_UDP_CHECKSUM_COEXISTENCE = 0x00000004


class IpsecOffloadV2Authentication(IntFlag):
    """``IPSEC_OFFLOAD_V2_AUTHENTICATION_*``."""

    MD5 = 0x00000001
    SHA_1 = 0x00000002
    SHA_256 = 0x00000004
    AES_GCM_128 = 0x00000008
    AES_GCM_192 = 0x00000010
    AES_GCM_256 = 0x00000020


class IpsecOffloadV2Encryption(IntFlag):
    """``IPSEC_OFFLOAD_V2_ENCRYPTION_*``."""

    NONE = 0x00000001
    DES_CBC = 0x00000002
    THREE_DES_CBC = 0x00000004  # C name: IPSEC_OFFLOAD_V2_ENCRYPTION_3_DES_CBC
    AES_GCM_128 = 0x00000008
    AES_GCM_192 = 0x00000010
    AES_GCM_256 = 0x00000020
    AES_CBC_128 = 0x00000040
    AES_CBC_192 = 0x00000080
    AES_CBC_256 = 0x00000100


class NdisRfc6877XlatOffloadOptions(IntEnum):
    """``NDIS_RFC6877_464XLAT_OFFLOAD_OPTIONS`` (an enum: a 4-byte field)."""

    NDIS_RFC6877_464XLAT_OFFLOAD_NOT_SUPPORTED = 0
    NDIS_RFC6877_464XLAT_OFFLOAD_DISABLED = 1
    NDIS_RFC6877_464XLAT_OFFLOAD_ENABLED = 2
    NDIS_RFC6877_464XLAT_OFFLOAD_ON_DEMAND = 3


class NdisLsoType(IntEnum):
    """``NDIS_TCP_LARGE_SEND_OFFLOAD_V1_TYPE`` / ``_V2_TYPE``: the info word's ``Type`` bit."""

    V1_TYPE = 0
    V2_TYPE = 1


class NdisLsoIpVersion(IntEnum):
    """``NDIS_TCP_LARGE_SEND_OFFLOAD_IPv4`` / ``_IPv6``: ``LsoV2Transmit.IPVersion``."""

    IPv4 = 0
    IPv6 = 1


class NdisUsoIpVersion(IntEnum):
    """``NDIS_UDP_SEGMENTATION_OFFLOAD_IPV4`` / ``_IPV6``: ``Transmit.IPVersion``."""

    IPV4 = 0
    IPV6 = 1


NDIS_LARGE_SEND_OFFLOAD_MAX_HEADER_LENGTH = 128


class NdisNetBufferListInfo(IntEnum):
    """``NDIS_NET_BUFFER_LIST_INFO`` indices (``nblinfo.h``) of the offload info words."""

    TcpIpChecksumNetBufferListInfo = 0
    TcpLargeSendNetBufferListInfo = 2
    UdpRecvSegCoalesceOffloadInfo = 17
    TcpRecvSegCoalesceInfo = 22
    """Shares index 22 with ``UdpSegmentationOffloadInfo`` (receive vs send path)."""
    UdpSegmentationOffloadInfo = 22
    RscTcpTimestampDelta = 23
    """The ``ULONG`` an SCU carries: latest minus earliest TCP TSval of its segments
    (``rules-for-coalescing-tcp-ip-packets``)."""

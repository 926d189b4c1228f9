"""NDIS_STATUS_* codes (``ndis.h`` / ``ntddndis.h``) that the offload flows return or indicate."""

from __future__ import annotations

from ndis_offload.constants.naming import CNamedEnum


class NdisStatus(CNamedEnum):
    """``NDIS_STATUS`` values; members are the C names without the ``NDIS_STATUS_`` prefix."""

    SUCCESS = 0x00000000
    PENDING = 0x00000103
    NOT_ACCEPTED = 0x00010003
    BUFFER_OVERFLOW = 0x80000005
    FAILURE = 0xC0000001
    INVALID_PARAMETER = 0xC000000D
    RESOURCES = 0xC000009A
    NOT_SUPPORTED = 0xC00000BB
    REQUEST_ABORTED = 0xC001000C
    BAD_VERSION = 0xC0010004
    INVALID_LENGTH = 0xC0010014
    INVALID_DATA = 0xC0010015
    BUFFER_TOO_SHORT = 0xC0010016
    INVALID_OID = 0xC0010017
    # Status indications (NDIS_STATUS_INDICATION.StatusCode)
    TASK_OFFLOAD_HARDWARE_CAPABILITIES = 0x40020007
    TASK_OFFLOAD_CURRENT_CONFIG = 0x40020006
    OFFLOAD_ENCASPULATION_CHANGE = 0x40020008
    """Spelled ``ENCASPULATION`` in the Windows headers (sic)."""

    @classmethod
    def c_prefix(cls) -> str:
        return "NDIS_STATUS_"

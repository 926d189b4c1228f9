"""Object identifiers of the task offload OIDs (``ntddndis.h``)."""

from __future__ import annotations

from ndis_offload.constants.naming import CNamedEnum


class Oid(CNamedEnum):
    """``OID_*`` values; members are the C names without the ``OID_`` prefix."""

    OFFLOAD_ENCAPSULATION = 0x0101010A
    TCP_OFFLOAD_CURRENT_CONFIG = 0xFC01020B
    TCP_OFFLOAD_PARAMETERS = 0xFC01020C
    TCP_OFFLOAD_HARDWARE_CAPABILITIES = 0xFC01020D

    @classmethod
    def c_prefix(cls) -> str:
        return "OID_"


OID_OFFLOAD_ENCAPSULATION = Oid.OFFLOAD_ENCAPSULATION
OID_TCP_OFFLOAD_CURRENT_CONFIG = Oid.TCP_OFFLOAD_CURRENT_CONFIG
OID_TCP_OFFLOAD_PARAMETERS = Oid.TCP_OFFLOAD_PARAMETERS
OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES = Oid.TCP_OFFLOAD_HARDWARE_CAPABILITIES

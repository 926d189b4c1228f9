"""Object identifiers of the task offload OIDs (``ntddndis.h``)."""

from __future__ import annotations

from enum import IntEnum


class Oid(IntEnum):
    """``OID_*`` values; members are the C names without the ``OID_`` prefix."""

    OFFLOAD_ENCAPSULATION = 0x0101010A
    TCP_OFFLOAD_CURRENT_CONFIG = 0xFC01020B
    TCP_OFFLOAD_PARAMETERS = 0xFC01020C
    TCP_OFFLOAD_HARDWARE_CAPABILITIES = 0xFC01020D

    @property
    def c_name(self) -> str:
        return f"OID_{self.name}"

    @classmethod
    def name_of(cls, value: int) -> str:
        """The C name of ``value``, or its hex spelling for an OID this package does not know."""
        try:
            return cls(value).c_name
        except ValueError:
            return f"0x{value & 0xFFFFFFFF:08X}"


OID_OFFLOAD_ENCAPSULATION = Oid.OFFLOAD_ENCAPSULATION
OID_TCP_OFFLOAD_CURRENT_CONFIG = Oid.TCP_OFFLOAD_CURRENT_CONFIG
OID_TCP_OFFLOAD_PARAMETERS = Oid.TCP_OFFLOAD_PARAMETERS
OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES = Oid.TCP_OFFLOAD_HARDWARE_CAPABILITIES

"""Every constant this package defines, by its verbatim C name: one explicit table.

``CONSTANTS`` drives ``ndis-offload spec``, the header probe test and the scenario
loader's name resolution (:func:`constant_value`).
"""

from __future__ import annotations

from enum import Enum

from ndis_offload.constants import objects, offload, rss
from ndis_offload.constants.objects import NdisObjectType
from ndis_offload.constants.offload import (
    IpsecOffloadV2Authentication,
    IpsecOffloadV2Encryption,
    NdisEncapsulatedPacketTaskOffload,
    NdisEncapsulation,
    NdisEncapsulationType,
    NdisLsoIpVersion,
    NdisLsoType,
    NdisNetBufferListInfo,
    NdisOffloadFlags,
    NdisOffloadParametersChecksum,
    NdisOffloadParametersConnectionOffload,
    NdisOffloadParametersIPsecV1,
    NdisOffloadParametersIPsecV2,
    NdisOffloadParametersLsoV1,
    NdisOffloadParametersLsoV2,
    NdisOffloadParametersRsc,
    NdisOffloadParametersUso,
    NdisOffloadSet,
    NdisOffloadSupport,
    NdisRfc6877XlatOffloadOptions,
    NdisUsoIpVersion,
)
from ndis_offload.constants.oid import Oid
from ndis_offload.constants.rss import NdisHashFunction, NdisHashType
from ndis_offload.constants.statistics import NdisStatisticsFlags
from ndis_offload.constants.status import NdisStatus

ENUM_PREFIXES: tuple[tuple[type[Enum], str], ...] = (
    (NdisStatus, "NDIS_STATUS_"),
    (Oid, "OID_"),
    (NdisObjectType, "NDIS_OBJECT_TYPE_"),
    (NdisEncapsulation, "NDIS_ENCAPSULATION_"),
    (NdisOffloadSet, "NDIS_OFFLOAD_SET_"),
    (NdisOffloadSupport, "NDIS_OFFLOAD_"),
    (NdisOffloadParametersChecksum, "NDIS_OFFLOAD_PARAMETERS_"),
    (NdisOffloadParametersLsoV1, "NDIS_OFFLOAD_PARAMETERS_"),
    (NdisOffloadParametersLsoV2, "NDIS_OFFLOAD_PARAMETERS_"),
    (NdisOffloadParametersIPsecV1, "NDIS_OFFLOAD_PARAMETERS_"),
    (NdisOffloadParametersIPsecV2, "NDIS_OFFLOAD_PARAMETERS_"),
    (NdisOffloadParametersRsc, "NDIS_OFFLOAD_PARAMETERS_"),
    (NdisOffloadParametersUso, "NDIS_OFFLOAD_PARAMETERS_"),
    (NdisOffloadParametersConnectionOffload, "NDIS_OFFLOAD_PARAMETERS_"),
    (NdisEncapsulationType, "NDIS_ENCAPSULATION_TYPE_"),
    (NdisEncapsulatedPacketTaskOffload, "NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_"),
    (NdisOffloadFlags, ""),
    (IpsecOffloadV2Authentication, "IPSEC_OFFLOAD_V2_AUTHENTICATION_"),
    (IpsecOffloadV2Encryption, "IPSEC_OFFLOAD_V2_ENCRYPTION_"),
    (NdisRfc6877XlatOffloadOptions, ""),
    (NdisLsoType, "NDIS_TCP_LARGE_SEND_OFFLOAD_"),
    (NdisLsoIpVersion, "NDIS_TCP_LARGE_SEND_OFFLOAD_"),
    (NdisUsoIpVersion, "NDIS_UDP_SEGMENTATION_OFFLOAD_"),
    (NdisNetBufferListInfo, ""),
    (NdisHashFunction, "NdisHashFunction"),
    (NdisHashType, "NDIS_HASH_"),
    (NdisStatisticsFlags, "NDIS_STATISTICS_FLAGS_"),
)

_SPELLING_EXCEPTIONS = {
    "IPSEC_OFFLOAD_V2_ENCRYPTION_THREE_DES_CBC": "IPSEC_OFFLOAD_V2_ENCRYPTION_3_DES_CBC",
}


def c_name(member_name: str, prefix: str) -> str:
    """The verbatim C macro name of an enum member name under its C prefix."""
    name = f"{prefix}{member_name}"
    return _SPELLING_EXCEPTIONS.get(name, name)


def _module_ints(module: object) -> dict[str, int]:
    return {
        name: int(value)
        for name, value in vars(module).items()
        if name.isupper()
        and (name.startswith("NDIS_") or name.startswith("IPSEC_"))
        and isinstance(value, int)
        and not isinstance(value, Enum)
    }


def _build() -> dict[str, int]:
    table: dict[str, int] = {}
    for enum_cls, prefix in ENUM_PREFIXES:
        # __members__ includes zero-valued flags (which iteration skips) and aliases
        for name, member in enum_cls.__members__.items():
            table[c_name(name, prefix)] = int(member.value)
    table.update(_module_ints(objects))
    table.update(_module_ints(offload))
    table.update(_module_ints(rss))
    # NO_CHANGE appears in every NDIS_OFFLOAD_PARAMETERS enum under one C name.
    return dict(sorted(table.items()))


CONSTANTS: dict[str, int] = _build()
"""``{C name: value}`` for every constant the package defines."""


def constant_value(name: str) -> int:
    """The value of a constant by C name; ``KeyError`` names close matches."""
    try:
        return CONSTANTS[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, CONSTANTS, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise KeyError(f"unknown constant {name!r}{hint}") from None

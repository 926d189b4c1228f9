"""``NDIS_OFFLOAD_ENCAPSULATION``: the InformationBuffer of ``OID_OFFLOAD_ENCAPSULATION``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, ClassVar

from ndis_offload.constants.objects import (
    NDIS_OBJECT_TYPE_OFFLOAD_ENCAPSULATION,
    NDIS_OFFLOAD_ENCAPSULATION_REVISION_1,
    NDIS_SIZEOF_OFFLOAD_ENCAPSULATION_REVISION_1,
)
from ndis_offload.constants.offload import NdisEncapsulation, NdisOffloadSet
from ndis_offload.structs.codec import ULONG, NdisStruct, ndis_struct
from ndis_offload.structs.header import NdisObjectHeader


@ndis_struct(None)
@dataclass(frozen=True, slots=True)
class NdisOffloadEncapsulationFamily(NdisStruct):
    """The anonymous ``IPv4`` / ``IPv6`` part: ``{ULONG Enabled; ULONG EncapsulationType;
    ULONG HeaderSize;}``."""

    ENUM_FIELDS: ClassVar[dict[str, frozenset[int]]] = {
        "Enabled": frozenset(int(v) for v in NdisOffloadSet)
    }
    ENCAPSULATION_FIELDS: ClassVar[tuple[str, ...]] = ("EncapsulationType",)

    Enabled: Annotated[int, ULONG] = 0
    EncapsulationType: Annotated[int, ULONG] = 0
    HeaderSize: Annotated[int, ULONG] = 0

    def validate_fields(self) -> tuple[str, str] | None:
        problem = NdisStruct.validate_fields(self)
        if problem is None and self.Enabled == NdisOffloadSet.ON and not self.EncapsulationType:
            return "EncapsulationType", "is NDIS_ENCAPSULATION_NOT_SUPPORTED with Enabled = ON"
        return problem

    @classmethod
    def on(
        cls, encapsulation: int = NdisEncapsulation.IEEE_802_3, header_size: int = 14
    ) -> NdisOffloadEncapsulationFamily:
        """``Enabled = NDIS_OFFLOAD_SET_ON`` with this encapsulation and header size."""
        return cls(NdisOffloadSet.ON, encapsulation, header_size)

    @classmethod
    def off(cls) -> NdisOffloadEncapsulationFamily:
        """``Enabled = NDIS_OFFLOAD_SET_OFF`` (type and size zero, as documented)."""
        return cls(NdisOffloadSet.OFF, 0, 0)

    @classmethod
    def no_change(cls) -> NdisOffloadEncapsulationFamily:
        return cls(NdisOffloadSet.NO_CHANGE, 0, 0)


def _default_header() -> NdisObjectHeader:
    return NdisObjectHeader(
        NDIS_OBJECT_TYPE_OFFLOAD_ENCAPSULATION,
        NDIS_OFFLOAD_ENCAPSULATION_REVISION_1,
        NDIS_SIZEOF_OFFLOAD_ENCAPSULATION_REVISION_1,
    )


@ndis_struct("NDIS_OFFLOAD_ENCAPSULATION")
@dataclass(frozen=True, slots=True)
class NdisOffloadEncapsulation(NdisStruct):
    """``typedef struct _NDIS_OFFLOAD_ENCAPSULATION { NDIS_OBJECT_HEADER Header;
    struct {ULONG Enabled; ULONG EncapsulationType; ULONG HeaderSize;} IPv4, IPv6; }``."""

    OBJECT_TYPE: ClassVar[int | None] = NDIS_OBJECT_TYPE_OFFLOAD_ENCAPSULATION
    REVISION_SIZES: ClassVar[dict[int, int]] = {
        NDIS_OFFLOAD_ENCAPSULATION_REVISION_1: NDIS_SIZEOF_OFFLOAD_ENCAPSULATION_REVISION_1
    }

    Header: NdisObjectHeader = field(default_factory=_default_header)
    IPv4: NdisOffloadEncapsulationFamily = field(default_factory=NdisOffloadEncapsulationFamily)
    IPv6: NdisOffloadEncapsulationFamily = field(default_factory=NdisOffloadEncapsulationFamily)

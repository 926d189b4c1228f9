"""``NDIS_OBJECT_HEADER``: the {Type, Revision, Size} prefix of every versioned NDIS object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from ndis_offload.structs.codec import UCHAR, USHORT, NdisStruct, ndis_struct


@ndis_struct("NDIS_OBJECT_HEADER")
@dataclass(frozen=True, slots=True)
class NdisObjectHeader(NdisStruct):
    """``typedef struct _NDIS_OBJECT_HEADER { UCHAR Type; UCHAR Revision; USHORT Size; }``."""

    Type: Annotated[int, UCHAR] = 0
    Revision: Annotated[int, UCHAR] = 0
    Size: Annotated[int, USHORT] = 0

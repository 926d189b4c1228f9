"""Request builders and the battery's own oracle of what an ``NDIS_OFFLOAD_PARAMETERS`` set
does to the current configuration: the field, value and feature mapping comes from the one
feature table; the logic is the page's (each non-``NO_CHANGE`` field sets its features), not
the reference miniport's, so a defect in the reference's planning is caught too."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from ndis_offload.constants import objects as o
from ndis_offload.constants.offload import NdisEncapsulation
from ndis_offload.constants.status import NdisStatus
from ndis_offload.errors import DecodeError
from ndis_offload.stack.core import RequestHandle
from ndis_offload.stack.features import FEATURE_TABLE, FeatureSpec
from ndis_offload.structs.codec import NdisStruct
from ndis_offload.structs.encapsulation import (
    NdisOffloadEncapsulation,
    NdisOffloadEncapsulationFamily,
)
from ndis_offload.structs.header import NdisObjectHeader
from ndis_offload.structs.parameters import NdisOffloadParameters, UdpSegmentationParameters

ON = NdisOffloadEncapsulationFamily.on(NdisEncapsulation.IEEE_802_3, 14)
OFF = NdisOffloadEncapsulationFamily.off()
KEEP = NdisOffloadEncapsulationFamily.no_change()
LLC = NdisOffloadEncapsulationFamily.on(NdisEncapsulation.IEEE_LLC_SNAP_ROUTED, 8)


def encapsulation(v4: NdisOffloadEncapsulationFamily = ON,
                  v6: NdisOffloadEncapsulationFamily = ON) -> bytes:  # fmt: skip
    return NdisOffloadEncapsulation(IPv4=v4, IPv6=v6).encode()


def family_name(part: NdisOffloadEncapsulationFamily) -> str:
    return {0: "NO_CHANGE", 1: "ON", 2: "OFF"}.get(part.Enabled, str(part.Enabled)) + (
        f"/{NdisEncapsulation(part.EncapsulationType).name}" if part.EncapsulationType else ""
    )


def describe_encapsulation(v4: NdisOffloadEncapsulationFamily,
                           v6: NdisOffloadEncapsulationFamily) -> str:  # fmt: skip
    return f"NDIS_OFFLOAD_ENCAPSULATION IPv4={family_name(v4)} IPv6={family_name(v6)}"


def patched(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


@dataclass(frozen=True)
class Field:
    """One ``NDIS_OFFLOAD_PARAMETERS`` member the battery drives, and the features it
    switches (read from the feature table, ``stack.features.FEATURE_TABLE``)."""

    name: str
    features: frozenset[str]
    revision: int
    """The ``NDIS_OFFLOAD_PARAMETERS`` revision that introduced it."""

    @property
    def checksum(self) -> bool:
        return len(self.features) == 2


def _fields() -> tuple[Field, ...]:
    grouped: dict[str, list[FeatureSpec]] = {}
    for row in FEATURE_TABLE.values():
        grouped.setdefault(row.parameters_field, []).append(row)
    return tuple(
        Field(name, frozenset(r.feature.value for r in rows), rows[0].parameters_since)
        for name, rows in grouped.items()
    )


FIELDS: tuple[Field, ...] = _fields()


def parameters(values: dict[str, int] | None = None, *, revision: int = 5, flags: int = 0,
               ) -> NdisOffloadParameters:  # fmt: skip
    """An ``NDIS_OFFLOAD_PARAMETERS`` with ``values`` (field name -> value), the rest
    ``NO_CHANGE``; ``UdpSegmentation.IPv4`` style names reach the nested members."""
    plain: dict[str, int] = {}
    uso: dict[str, int] = {}
    for name, value in (values or {}).items():
        if name.startswith("UdpSegmentation."):
            uso[name.split(".")[1]] = value
        else:
            plain[name] = value
    base = NdisOffloadParameters(
        Header=NdisOffloadParameters.header_for(revision), Flags=flags,
        UdpSegmentation=UdpSegmentationParameters(**uso),
    )  # fmt: skip
    fields: dict[str, Any] = dict(plain)
    return replace(base, **fields)


def encode_parameters(p: NdisOffloadParameters) -> bytes:
    """Encode without validation (the battery sends invalid values on purpose)."""
    return p.encode()


def raw_parameters(values: dict[str, int], revision: int = 5) -> bytes:
    """A parameters buffer whose header says ``revision`` but that is always the newest
    size, with ``values`` poked in at their offsets (fields beyond the revision too)."""
    full = bytearray(encode_parameters(parameters(values, revision=5)))
    header = NdisOffloadParameters.header_for(revision)
    full[0:4] = NdisObjectHeader(header.Type, header.Revision, header.Size).encode()
    return bytes(full)


def describe_parameters(values: dict[str, int], revision: int = 5, flags: int = 0) -> str:
    inner = ", ".join(f"{k}={v}" for k, v in values.items()) or "all NO_CHANGE"
    extra = f", Flags=0x{flags:X}" if flags else ""
    return f"NDIS_OFFLOAD_PARAMETERS rev {revision} ({inner}{extra})"


def apply_parameters(before: frozenset[str], values: dict[str, int], hardware: frozenset[str],
                     revision: int = 5) -> frozenset[str]:  # fmt: skip
    """The documented effect of a successful set: each non-``NO_CHANGE`` field sets its
    feature(s), fields newer than ``revision`` are not there, the rest is untouched."""
    out = set(before)
    for row in FEATURE_TABLE.values():
        value = values.get(row.parameters_field, 0)
        if not value or row.parameters_since > revision:
            continue
        if value in row.parameters_on:
            out.add(row.feature)
        elif value in row.parameters_off:
            out.discard(row.feature)
    return frozenset(out) & hardware


def status_text(handle: RequestHandle) -> str:
    c = handle.completion
    extra = f", BytesNeeded {c.BytesNeeded}" if c is not None and c.BytesNeeded else ""
    return handle.status.c_name + extra


S = TypeVar("S", bound=NdisStruct)


def answer(handle: RequestHandle, cls: type[S]) -> S | str:
    """The structure a successful query answered with, decoded as ``cls``; otherwise why
    not (the completion status, or what is wrong with the InformationBuffer)."""
    done = handle.completion
    oid = handle.request.oid_name
    if done is None or done.status != NdisStatus.SUCCESS:
        return f"{oid} query: {handle.status.c_name}"
    try:
        return cls.decode(done.InformationBuffer)
    except DecodeError as err:
        return f"{oid} answer is no {cls.C_NAME}: {err}"


def grown(before: S | str, after: S | str, members: Sequence[str]) -> dict[str, int] | str:
    """How much each of ``members`` grew from ``before`` to ``after`` (two :func:`answer`
    results), or why one of them could not be read."""
    if isinstance(before, str):
        return before
    if isinstance(after, str):
        return after
    return {name: getattr(after, name) - getattr(before, name) for name in members}


def diff(a: frozenset[str], b: frozenset[str]) -> str:
    gone, new = sorted(a - b), sorted(b - a)
    parts = ([f"-{x}" for x in gone]) + [f"+{x}" for x in new]
    return " ".join(parts) or "no change"


SIZEOF_PARAMETERS_REV1 = o.NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_1
SIZEOF_ENCAPSULATION = o.NDIS_SIZEOF_OFFLOAD_ENCAPSULATION_REVISION_1

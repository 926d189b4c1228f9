"""Request builders and the battery's own oracle of what an ``NDIS_OFFLOAD_PARAMETERS`` set
does to the current configuration (written from the ``_NDIS_OFFLOAD_PARAMETERS`` page, not
from the reference miniport, so a defect in the reference is caught too)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from typing import Any

from ndis_offload.constants import objects as o
from ndis_offload.constants.offload import NdisEncapsulation
from ndis_offload.stack.core import RequestHandle
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
    """One ``NDIS_OFFLOAD_PARAMETERS`` member the battery drives."""

    name: str
    prefix: str
    """The feature it controls: a checksum prefix (``tcp4`` -> ``tcp4_tx``/``tcp4_rx``) or
    one feature (``lsov2_4``)."""
    revision: int = 1
    """The ``NDIS_OFFLOAD_PARAMETERS`` revision that introduced it."""

    @property
    def checksum(self) -> bool:
        return self.name.endswith("Checksum")

    @property
    def features(self) -> frozenset[str]:
        if self.checksum:
            return frozenset({f"{self.prefix}_tx", f"{self.prefix}_rx"})
        return frozenset({self.prefix})


FIELDS: tuple[Field, ...] = (
    Field("IPv4Checksum", "ip4"),
    Field("TCPIPv4Checksum", "tcp4"),
    Field("UDPIPv4Checksum", "udp4"),
    Field("TCPIPv6Checksum", "tcp6"),
    Field("UDPIPv6Checksum", "udp6"),
    Field("LsoV1", "lsov1"),
    Field("LsoV2IPv4", "lsov2_4"),
    Field("LsoV2IPv6", "lsov2_6"),
    Field("RscIPv4", "rsc4", 3),
    Field("RscIPv6", "rsc6", 3),
    Field("UdpSegmentation.IPv4", "uso4", 5),
    Field("UdpSegmentation.IPv6", "uso6", 5),
)
CHECKSUM_DIRECTIONS = {1: (False, False), 2: (True, False), 3: (False, True), 4: (True, True)}
"""``NDIS_OFFLOAD_PARAMETERS_TX_RX_DISABLED`` (1), ``_TX_ENABLED_RX_DISABLED`` (2),
``_RX_ENABLED_TX_DISABLED`` (3), ``_TX_RX_ENABLED`` (4) -> (Tx on, Rx on)."""


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
    for f in FIELDS:
        value = values.get(f.name, 0)
        if not value or f.revision > revision:
            continue
        if f.checksum:
            tx, rx = CHECKSUM_DIRECTIONS[value]
            for on, feature in ((tx, f"{f.prefix}_tx"), (rx, f"{f.prefix}_rx")):
                (out.add if on else out.discard)(feature)
        else:
            (out.add if value == 2 else out.discard)(f.prefix)
    return frozenset(out) & hardware


def status_text(handle: RequestHandle) -> str:
    c = handle.completion
    extra = f", BytesNeeded {c.BytesNeeded}" if c is not None and c.BytesNeeded else ""
    return handle.status.c_name + extra


def diff(a: frozenset[str], b: frozenset[str]) -> str:
    gone, new = sorted(a - b), sorted(b - a)
    parts = ([f"-{x}" for x in gone]) + [f"+{x}" for x in new]
    return " ".join(parts) or "no change"


SIZEOF_PARAMETERS_REV1 = o.NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_1
SIZEOF_ENCAPSULATION = o.NDIS_SIZEOF_OFFLOAD_ENCAPSULATION_REVISION_1

"""How a miniport answers the two offload set OIDs, as data: one knob per axis on which real
miniports differ from the documentation (``docs/real-miniports.md``).

:class:`~ndis_offload.stack.miniport.ReferenceMiniport` reads its ``behaviour``; every
default is the documented reading (README, Decisions). A variant that differs only along
these axes is a :class:`Behaviour` value, not new handler code. The helpers here read an
``InformationBuffer`` the ways real drivers do.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

from ndis_offload.constants.status import NdisStatus
from ndis_offload.stack.requests import OidCompletion, OidRequest

Indicate = Literal["always", "on change", "never", "even on failure"]
"""When ``NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG`` follows a set: after every successful
set (documented), only when the configuration changed, never, or after every set whatever
its status."""


@dataclass(frozen=True)
class Behaviour:
    """The knobs. Defaults: ``oid-offload-encapsulation``, ``oid-tcp-offload-parameters``."""

    short_buffer: NdisStatus = NdisStatus.INVALID_LENGTH
    """Status for an ``InformationBuffer`` shorter than the structure (with ``BytesNeeded``);
    NetKVM and gVNIC say ``NDIS_STATUS_BUFFER_TOO_SHORT``."""
    exact_length: bool = False
    """``InformationBufferLength`` must equal ``sizeof`` (longer: ``BUFFER_OVERFLOW``)."""
    parameters_sizeof: int | None = None
    """``sizeof(NDIS_OFFLOAD_PARAMETERS)`` the driver was built with: it reads no further
    (``None``: the newest revision this package knows)."""

    encapsulation_header: Literal["documented", "minimum", "exact", "type-and-revision"] = (
        "documented"
    )
    """``documented``: Type, a known Revision, Size at least revision 1's, and the field
    values; ``minimum``: Type, Revision >= 1, 28 <= Size <= the buffer (no field checks);
    ``exact``: exactly {0xA8, 1, 28}; ``type-and-revision``: Size unchecked."""
    invalid_header: NdisStatus = NdisStatus.INVALID_PARAMETER
    """Status for a bad ``NDIS_OFFLOAD_ENCAPSULATION`` header or field."""
    encapsulation_match: Literal["documented", "bit-mask", "equality"] = "documented"
    """How an ON ``EncapsulationType`` is tested: ``documented``: one of the two defined
    values, then a bit test against the adapter's masks; ``bit-mask``: any value sharing a
    bit with the adapter's masks; ``equality``: exactly ``NDIS_ENCAPSULATION_IEEE_802_3``."""
    unsupported_encapsulation: NdisStatus = NdisStatus.INVALID_PARAMETER
    """Status when no offload type supports the requested encapsulation."""
    header_size: int | None = None
    """The one ``HeaderSize`` accepted with ON (``None``: any, as documented)."""
    indicate_encapsulation: Indicate = "always"

    parameters_header: Literal["documented", "minimum", "unchecked"] = "documented"
    """``documented``: header and field values checked (``NDIS_STATUS_INVALID_DATA``);
    ``minimum``: Type 0x80, Revision >= 1, Size >= 20 and <= the buffer, else
    ``NDIS_STATUS_INVALID_DATA``, fields unchecked; ``unchecked``: read as a C driver reads
    a zero-filled copy."""
    undefined_value: Literal["reject", "no change"] = "reject"
    """A field value the structure does not define: ``NDIS_STATUS_INVALID_DATA``, or kept."""
    unsupported_request: NdisStatus | None = NdisStatus.INVALID_DATA
    """Status when a set enables what the hardware lacks; ``None``: clamp silently."""
    ignored_fields: frozenset[str] = frozenset()
    """``NDIS_OFFLOAD_PARAMETERS`` fields the driver never reads."""
    indicate_parameters: Indicate = "always"


DOCUMENTED = Behaviour()


def indicate(policy: Indicate, *, succeeded: bool, changed: bool) -> bool:
    """Whether ``policy`` indicates the current configuration after a set."""
    if policy == "even on failure":
        return True
    if policy == "never" or not succeeded:
        return False
    return policy == "always" or changed


def complete(
    request: OidRequest,
    status: NdisStatus,
    detail: str = "",
    *,
    BytesRead: int = 0,
    BytesWritten: int = 0,
    BytesNeeded: int = 0,
) -> OidCompletion:
    """Shorthand for an :class:`OidCompletion`."""
    return OidCompletion(
        request,
        status,
        BytesRead=BytesRead,
        BytesWritten=BytesWritten,
        BytesNeeded=BytesNeeded,
        detail=detail,
    )


def short_buffer(request: OidRequest, needed: int, status: NdisStatus) -> OidCompletion | None:
    """The completion for an ``InformationBuffer`` shorter than ``needed``, else ``None``."""
    length = len(request.InformationBuffer)
    if length >= needed:
        return None
    return complete(
        request, status, f"InformationBufferLength {length} < {needed}", BytesNeeded=needed
    )


def exact_length(request: OidRequest, size: int) -> OidCompletion | None:
    """gVNIC ``CopyOidInformation``: the buffer must be exactly ``size`` bytes."""
    length = len(request.InformationBuffer)
    if length < size:
        return complete(
            request,
            NdisStatus.BUFFER_TOO_SHORT,
            f"InformationBufferLength {length} < sizeof {size}",
            BytesNeeded=size,
        )
    if length > size:
        return complete(
            request,
            NdisStatus.BUFFER_OVERFLOW,
            f"InformationBufferLength {length} > sizeof {size}",
            BytesNeeded=size,
        )
    return None


def read_ndis_object(buffer: bytes, obj_type: int, min_revision: int, min_size: int) -> str | None:
    """openvmm ``read_ndis_object``: ``None`` if the header is acceptable, else why not."""
    if len(buffer) < 4:
        return f"buffer is {len(buffer)} bytes, too short for NDIS_OBJECT_HEADER"
    t, revision, size = struct.unpack_from("<BBH", buffer, 0)
    if t != obj_type:
        return f"Header.Type 0x{t:X} != 0x{obj_type:X}"
    if revision < min_revision:
        return f"Header.Revision {revision} < {min_revision}"
    if size < min_size:
        return f"Header.Size {size} < {min_size}"
    if len(buffer) < size:
        return f"buffer is {len(buffer)} bytes, Header.Size says {size}"
    return None

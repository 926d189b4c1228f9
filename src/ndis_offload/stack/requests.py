"""The messages that cross driver boundaries: OID requests, completions, status indications,
and the trace record of each (frozen dataclasses, h11-style events)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ndis_offload.constants.oid import Oid
from ndis_offload.constants.status import NdisStatus


class RequestType(Enum):
    """``NDIS_REQUEST_TYPE``: the two kinds of OID request the offload flows use."""

    QUERY = "NdisRequestQueryInformation"
    SET = "NdisRequestSetInformation"

    @property
    def verb(self) -> str:
        return "query" if self is RequestType.QUERY else "set"


@dataclass(frozen=True, slots=True)
class OidRequest:
    """``NDIS_OID_REQUEST``: a set carries ``InformationBuffer``; a query gives the capacity
    of its output buffer in ``InformationBufferLength``."""

    Oid: int
    RequestType: RequestType
    InformationBuffer: bytes = b""
    InformationBufferLength: int = 0
    RequestId: int = 0
    requester: str = ""

    @property
    def oid_name(self) -> str:
        return Oid.name_of(self.Oid)


@dataclass(frozen=True, slots=True)
class OidCompletion:
    """The completion of an OID request: status, the byte counts, and a query's output."""

    request: OidRequest
    status: NdisStatus
    BytesRead: int = 0
    BytesWritten: int = 0
    BytesNeeded: int = 0
    InformationBuffer: bytes = b""
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == NdisStatus.SUCCESS


@dataclass(frozen=True, slots=True)
class StatusIndication:
    """``NDIS_STATUS_INDICATION``: ``StatusCode`` and ``StatusBuffer`` from ``SourceHandle``."""

    StatusCode: NdisStatus
    StatusBuffer: bytes = b""
    source: str = "miniport"


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One line of the stack's trace: who did what to whom, with which status and payload."""

    seq: int
    kind: str
    """``bind``, ``unbind``, ``request``, ``pending``, ``completion``, ``indication``."""
    source: str
    target: str
    what: str
    status: str = ""
    payload: dict[str, Any] | None = None
    to: tuple[str, ...] = ()
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "seq": self.seq,
            "kind": self.kind,
            "source": self.source,
            "target": self.target,
            "what": self.what,
        }
        if self.status:
            out["status"] = self.status
        if self.payload is not None:
            out["payload"] = self.payload
        if self.to:
            out["to"] = list(self.to)
        if self.detail:
            out["detail"] = self.detail
        out.update(self.extra)
        return out

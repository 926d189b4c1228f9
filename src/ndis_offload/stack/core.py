"""The NDIS core for one adapter: routes OID requests, answers the ones NDIS owns, serializes
requests to the miniport, caches the offload configuration and fans indications out.

Sans-IO and synchronous: a request that the miniport pends stays in flight until the
miniport completes it through its context; later requests queue behind it, as NDIS
serializes OID requests to a miniport. Exceptions stop at the dispatch boundary and become
completions carrying the error's status.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ndis_offload.constants.offload import NdisOffloadSet
from ndis_offload.constants.oid import Oid
from ndis_offload.constants.status import NdisStatus
from ndis_offload.errors import DecodeError, NdisError, StateError
from ndis_offload.stack.datapath import NetBufferList, ReceiveIndication, SendCompletion
from ndis_offload.stack.filter import FilterDriver
from ndis_offload.stack.miniport import Miniport
from ndis_offload.stack.requests import (
    OidCompletion,
    OidRequest,
    RequestType,
    StatusIndication,
    TraceEvent,
)
from ndis_offload.structs.codec import NdisStruct
from ndis_offload.structs.encapsulation import (
    NdisOffloadEncapsulation,
    NdisOffloadEncapsulationFamily,
)
from ndis_offload.structs.offload import NdisOffload
from ndis_offload.structs.parameters import NdisOffloadParameters
from ndis_offload.structs.statistics import NdisRscStatisticsInfo, NdisStatisticsInfo

QUERY_ONLY = frozenset({Oid.TCP_OFFLOAD_CURRENT_CONFIG, Oid.TCP_OFFLOAD_HARDWARE_CAPABILITIES})
SET_ONLY = frozenset({Oid.TCP_OFFLOAD_PARAMETERS})


@dataclass(frozen=True)
class BindParameters:
    """The ``NDIS_BIND_PARAMETERS`` snapshot a protocol gets in ``ProtocolBindAdapterEx``
    (the offload part: ``DefaultOffloadConfiguration`` is the current configuration)."""

    AdapterName: str
    DefaultOffloadConfiguration: NdisOffload | None


class ProtocolEdge:
    """What a protocol driver implements to be bound (``ProtocolBindAdapterEx`` etc.)."""

    name: str

    def on_bind(self, binding: Binding, parameters: BindParameters) -> None:
        """``ProtocolBindAdapterEx``."""

    def on_unbind(self) -> None:
        """``ProtocolUnbindAdapterEx``."""

    def on_request_complete(self, completion: OidCompletion) -> None:
        """``ProtocolOidRequestComplete`` (only for requests that pended)."""

    def on_status(self, indication: StatusIndication) -> None:
        """``ProtocolStatusEx``."""

    def on_receive(self, indications: list[ReceiveIndication]) -> None:
        """``ProtocolReceiveNetBufferLists``."""


@dataclass
class RequestHandle:
    """A submitted request: ``completion`` is ``None`` while it is pending or queued."""

    request: OidRequest
    completion: OidCompletion | None = None
    returned_pending: bool = False
    """The submitter saw ``NDIS_STATUS_PENDING``: the completion arrives via
    ``ProtocolOidRequestComplete``."""

    @property
    def status(self) -> NdisStatus:
        return NdisStatus.PENDING if self.completion is None else self.completion.status


@dataclass
class Binding:
    """One protocol's open of the adapter (``NdisOpenAdapterEx`` handle)."""

    name: str
    protocol: ProtocolEdge
    stack: NdisStack
    indications: list[StatusIndication] = field(default_factory=list)

    def request(
        self, oid: int, kind: RequestType, buffer: bytes = b"", *, length: int = 4096
    ) -> RequestHandle:
        """``NdisOidRequest``: a set sends ``buffer``; a query offers ``length`` bytes."""
        return self.stack.request(self.name, oid, kind, buffer, length=length)

    def query(self, oid: int, *, length: int = 4096) -> RequestHandle:
        return self.request(oid, RequestType.QUERY, length=length)

    def set(self, oid: int, buffer: bytes) -> RequestHandle:
        return self.request(oid, RequestType.SET, buffer)


Decoder = Callable[[int, bytes], dict[str, Any] | None]


def decode_payload(oid_or_status: int, data: bytes) -> dict[str, Any] | None:
    """Decode an InformationBuffer or StatusBuffer for the trace (``None`` if not ours)."""
    table: dict[int, type[NdisStruct]] = {
        Oid.OFFLOAD_ENCAPSULATION: NdisOffloadEncapsulation,
        Oid.TCP_OFFLOAD_PARAMETERS: NdisOffloadParameters,
        Oid.TCP_OFFLOAD_CURRENT_CONFIG: NdisOffload,
        Oid.TCP_OFFLOAD_HARDWARE_CAPABILITIES: NdisOffload,
        NdisStatus.TASK_OFFLOAD_CURRENT_CONFIG: NdisOffload,
        NdisStatus.TASK_OFFLOAD_HARDWARE_CAPABILITIES: NdisOffload,
        NdisStatus.OFFLOAD_ENCASPULATION_CHANGE: NdisOffloadEncapsulation,
        Oid.TCP_RSC_STATISTICS: NdisRscStatisticsInfo,
        Oid.GEN_STATISTICS: NdisStatisticsInfo,
    }
    cls = table.get(oid_or_status)
    if cls is None or not data:
        return None
    try:
        return cls.decode(data, validate=False).to_dict()
    except DecodeError as err:
        return {"undecodable": err.detail, "hex": data.hex()}


class NdisStack:
    """One adapter stack: a miniport, filters above it (index 0 = lowest), protocol bindings."""

    def __init__(
        self, miniport: Miniport, filters: Sequence[FilterDriver] = (), *,
        trace_limit: int | None = None,
    ) -> None:  # fmt: skip
        """``trace_limit``: keep only about the newest this many trace events (a long-running
        stack, such as a live TAP NIC polled for statistics); ``None`` keeps them all."""
        self.miniport = miniport
        self.filters = list(filters)
        self.bindings: dict[str, Binding] = {}
        self.trace: list[TraceEvent] = []
        self.trace_limit = trace_limit
        self._events = 0
        self._queue: deque[tuple[OidRequest, RequestHandle]] = deque()
        self._in_flight: tuple[OidRequest, RequestHandle] | None = None
        self._next_id = 1
        self.received: list[ReceiveIndication] = []
        """Every NBL the miniport indicated up, in order (DPCs and out-of-DPC flushes)."""
        self.encapsulation: NdisOffloadEncapsulation | None = None
        """The settings of the last successful ``OID_OFFLOAD_ENCAPSULATION`` set."""
        attributes = miniport.initialize(_Context(self))
        self.hardware_capabilities = attributes.HardwareOffloadCapabilities
        self.miniport_config = attributes.DefaultOffloadConfiguration
        """The current configuration the miniport last reported or indicated."""
        config = self.miniport_config
        for flt in self.filters:
            config = flt.on_attach(config)
        self.config = config
        """The current configuration as seen above the filters (bind parameters, queries)."""

    # -- trace ------------------------------------------------------------------------------
    def _record(self, kind: str, source: str, target: str, what: str, **kw: Any) -> None:
        self._events += 1
        self.trace.append(TraceEvent(self._events, kind, source, target, what, **kw))
        limit = self.trace_limit
        if limit is not None and len(self.trace) > 2 * limit:
            del self.trace[: len(self.trace) - limit]  # amortized: one cut per ``limit`` events

    # -- binding ------------------------------------------------------------------------------
    def bind(self, protocol: ProtocolEdge) -> Binding:
        """Bind ``protocol``: it gets the ``NDIS_BIND_PARAMETERS`` offload snapshot."""
        if protocol.name in self.bindings:
            raise StateError(f"{protocol.name} is already bound")
        binding = Binding(protocol.name, protocol, self)
        self.bindings[protocol.name] = binding
        params = BindParameters(self.miniport.name, self.config)
        self._record(
            "bind",
            "ndis",
            protocol.name,
            "ProtocolBindAdapterEx",
            payload={
                "DefaultOffloadConfiguration": None
                if self.config is None
                else self.config.to_dict()
            },
        )
        protocol.on_bind(binding, params)
        return binding

    def unbind(self, name: str) -> None:
        binding = self.bindings.pop(name, None)
        if binding is None:
            raise StateError(f"{name} is not bound")
        self._record("unbind", "ndis", name, "ProtocolUnbindAdapterEx")
        binding.protocol.on_unbind()

    # -- requests -----------------------------------------------------------------------------
    def request(
        self,
        requester: str,
        oid: int,
        kind: RequestType,
        buffer: bytes = b"",
        *,
        length: int = 4096,
    ) -> RequestHandle:
        """Submit an OID request from binding ``requester``."""
        request = OidRequest(
            oid,
            kind,
            bytes(buffer),
            len(buffer) if kind is RequestType.SET else length,
            self._next_id,
            requester,
        )
        self._next_id += 1
        handle = RequestHandle(request)
        self._record(
            "request",
            requester,
            "ndis",
            f"{kind.verb} {request.oid_name}",
            payload=decode_payload(oid, request.InformationBuffer)
            if kind is RequestType.SET
            else None,
            extra={"request_id": request.RequestId, "oid": request.oid_name, "type": kind.verb},
        )
        answered = self._answer_by_ndis(request)
        if answered is not None:
            self._finish(handle, answered, synchronous=True, by="ndis")
            return handle
        down: OidRequest | OidCompletion = request
        for index in range(len(self.filters) - 1, -1, -1):
            assert isinstance(down, OidRequest)
            down = self.filters[index].on_request(down)
            if isinstance(down, OidCompletion):
                self._finish(
                    handle,
                    self._up_from(index, down),
                    synchronous=True,
                    by=self.filters[index].name,
                )
                return handle
        assert isinstance(down, OidRequest)
        self._queue.append((down, handle))
        self._pump()
        if handle.completion is None:
            handle.returned_pending = True
        return handle

    def _answer_by_ndis(self, request: OidRequest) -> OidCompletion | None:
        oid, kind = request.Oid, request.RequestType
        if kind is RequestType.SET and oid in QUERY_ONLY:
            return OidCompletion(
                request,
                NdisStatus.NOT_SUPPORTED,
                detail=f"{request.oid_name} is query-only (answered by NDIS)",
            )
        if kind is RequestType.QUERY and oid in SET_ONLY:
            return OidCompletion(
                request, NdisStatus.NOT_SUPPORTED, detail=f"{request.oid_name} is set-only"
            )
        if kind is not RequestType.QUERY:
            return None
        if oid == Oid.TCP_OFFLOAD_CURRENT_CONFIG:
            return self._query_reply(request, self.config, "the adapter reports no offload")
        if oid == Oid.TCP_OFFLOAD_HARDWARE_CAPABILITIES:
            return self._query_reply(
                request, self.hardware_capabilities, "the adapter reports no offload"
            )
        if oid == Oid.OFFLOAD_ENCAPSULATION:
            return self._query_reply(
                request,
                self.encapsulation,
                "no OID_OFFLOAD_ENCAPSULATION set has succeeded yet",
                missing=NdisStatus.FAILURE,
            )
        return None

    @staticmethod
    def _query_reply(
        request: OidRequest,
        value: NdisOffload | NdisOffloadEncapsulation | None,
        why: str,
        missing: NdisStatus = NdisStatus.NOT_SUPPORTED,
    ) -> OidCompletion:
        if value is None:
            return OidCompletion(request, missing, detail=why)
        data = value.encode()
        if request.InformationBufferLength < len(data):
            return OidCompletion(
                request,
                NdisStatus.BUFFER_TOO_SHORT,
                BytesNeeded=len(data),
                detail=f"InformationBufferLength {request.InformationBufferLength} < {len(data)}",
            )
        return OidCompletion(
            request, NdisStatus.SUCCESS, BytesWritten=len(data), InformationBuffer=data
        )

    def _pump(self) -> None:
        while self._in_flight is None and self._queue:
            request, handle = self._queue.popleft()
            self._in_flight = (request, handle)
            try:
                result = self.miniport.oid_request(request)
            except NdisError as err:
                result = OidCompletion(request, err.status, detail=err.detail)
            except Exception as err:  # the boundary: nothing crosses into NDIS
                result = OidCompletion(
                    request,
                    NdisStatus.FAILURE,
                    detail=f"miniport raised {type(err).__name__}: {err}",
                )
            if result == NdisStatus.PENDING:
                self._record(
                    "pending",
                    self.miniport.name,
                    "ndis",
                    f"{request.RequestType.verb} {request.oid_name}",
                    status="NDIS_STATUS_PENDING",
                    extra={"request_id": request.RequestId},
                )
                return
            assert isinstance(result, OidCompletion)
            self._complete_in_flight(result, synchronous=True)

    def _complete_in_flight(self, completion: OidCompletion, *, synchronous: bool) -> None:
        if self._in_flight is None:
            raise StateError("the miniport completed a request NDIS did not send")
        request, handle = self._in_flight
        if completion.request.RequestId != request.RequestId:
            raise StateError(
                f"completion for request {completion.request.RequestId}, "
                f"in flight is {request.RequestId}"
            )
        self._in_flight = None
        if completion.ok and request.RequestType is RequestType.SET:
            self._after_successful_set(request)
        self._finish(
            handle, self._up_from(-1, completion), synchronous=synchronous, by=self.miniport.name
        )

    def _after_successful_set(self, request: OidRequest) -> None:
        if request.Oid != Oid.OFFLOAD_ENCAPSULATION:
            return
        try:
            new = NdisOffloadEncapsulation.decode(request.InformationBuffer, validate=False)
        except DecodeError:
            return
        old = self.encapsulation
        families: dict[str, NdisOffloadEncapsulationFamily] = {}
        for name in ("IPv4", "IPv6"):
            part = getattr(new, name)
            if part.Enabled == NdisOffloadSet.NO_CHANGE:
                families[name] = getattr(old, name) if old is not None else part
            else:
                families[name] = part
        self.encapsulation = NdisOffloadEncapsulation(IPv4=families["IPv4"], IPv6=families["IPv6"])

    def _up_from(self, index: int, completion: OidCompletion) -> OidCompletion:
        """Pass a completion up through the filters above ``index`` (-1: the miniport)."""
        for flt in self.filters[index + 1 :]:
            completion = flt.on_completion(completion)
        return completion

    def _finish(
        self, handle: RequestHandle, completion: OidCompletion, *, synchronous: bool, by: str
    ) -> None:
        """Record and deliver a completion; ``by`` is who completed it (``ndis``, a filter
        or the miniport), kept in the trace as ``completed_by``."""
        handle.completion = completion
        request = completion.request
        payload = None
        if request.RequestType is RequestType.QUERY and completion.ok:
            payload = decode_payload(request.Oid, completion.InformationBuffer)
        counts = {
            k: v
            for k, v in (
                ("BytesRead", completion.BytesRead),
                ("BytesWritten", completion.BytesWritten),
                ("BytesNeeded", completion.BytesNeeded),
            )
            if v
        }
        self._record(
            "completion",
            "ndis",
            request.requester,
            f"{request.RequestType.verb} {request.oid_name}",
            status=completion.status.c_name,
            payload=payload,
            detail=completion.detail,
            extra={"request_id": request.RequestId, "completed_by": by, **counts},
        )
        binding = self.bindings.get(request.requester)
        if binding is not None and handle.returned_pending:
            binding.protocol.on_request_complete(completion)

    # -- data path ---------------------------------------------------------------------------
    def send(self, nbls: Sequence[NetBufferList], requester: str = "") -> list[SendCompletion]:
        """``NdisSendNetBufferLists``: hand ``nbls`` to the miniport; one completion per NBL,
        in order. A miniport that raises, or returns the wrong number of completions, fails
        the NBLs it did not complete with ``NDIS_STATUS_FAILURE`` (never an exception)."""
        nbls = list(nbls)
        try:
            done = list(self.miniport.send_net_buffer_lists(nbls))
        except Exception as err:  # the boundary: nothing crosses into NDIS
            why = f"miniport raised {type(err).__name__}: {err}"
            done = [SendCompletion(NdisStatus.FAILURE, detail=why) for _ in nbls]
        if len(done) != len(nbls):
            why = f"miniport completed {len(done)} of {len(nbls)} NBLs"
            done = done[: len(nbls)] + [
                SendCompletion(NdisStatus.FAILURE, detail=why) for _ in nbls[len(done) :]
            ]
        failed = sum(1 for c in done if c.status != NdisStatus.SUCCESS)
        self._record(
            "send",
            requester or "ndis",
            self.miniport.name,
            "MiniportSendNetBufferLists",
            extra={"nbls": len(nbls), "failed": failed, "frames": sum(len(c.frames) for c in done)},
        )
        return done

    def receive(self, frames: Sequence[bytes], now: float) -> list[ReceiveIndication]:
        """One receive DPC on the miniport: ``frames`` arrive from the wire, the NBLs it
        indicates go to every binding (``ProtocolReceiveNetBufferLists``) and are returned.
        A miniport that raises indicates nothing."""
        try:
            up = list(self.miniport.receive_dpc(list(frames), now))
        except Exception as err:  # the boundary
            self._record(
                "receive",
                self.miniport.name,
                "ndis",
                "receive DPC",
                detail=f"miniport raised {type(err).__name__}: {err}",
            )
            return []
        self._deliver(up, len(frames))
        return up

    def _deliver(self, up: list[ReceiveIndication], arrived: int | None) -> None:
        self.received.extend(up)
        extra: dict[str, Any] = {"indicated": len(up)}
        if arrived is not None:
            extra["frames"] = arrived
        self._record(
            "receive",
            self.miniport.name,
            "protocols",
            "NdisMIndicateReceiveNetBufferLists",
            to=tuple(self.bindings),
            extra=extra,
        )
        for binding in list(self.bindings.values()):
            binding.protocol.on_receive(up)

    # -- indications -------------------------------------------------------------------------
    def _indicate(self, indication: StatusIndication) -> None:
        if indication.StatusCode == NdisStatus.TASK_OFFLOAD_CURRENT_CONFIG:
            try:
                self.miniport_config = NdisOffload.decode(indication.StatusBuffer)
            except DecodeError as err:
                self._record(
                    "indication",
                    indication.source,
                    "ndis",
                    indication.StatusCode.c_name,
                    status=err.status.c_name,
                    detail=f"dropped: {err.detail}",
                )
                return
        up: StatusIndication | None = indication
        for flt in self.filters:
            assert up is not None
            up = flt.on_indication(up)
            if up is None:
                self._record(
                    "indication",
                    indication.source,
                    flt.name,
                    indication.StatusCode.c_name,
                    detail=f"dropped by {flt.name}",
                )
                return
        assert up is not None
        if up.StatusCode == NdisStatus.TASK_OFFLOAD_CURRENT_CONFIG:
            self.config = NdisOffload.decode(up.StatusBuffer, validate=False)
        receivers = tuple(self.bindings)
        self._record(
            "indication",
            indication.source,
            "protocols",
            up.StatusCode.c_name,
            payload=decode_payload(up.StatusCode, up.StatusBuffer),
            to=receivers,
        )
        for name in receivers:
            binding = self.bindings[name]
            binding.indications.append(up)
            binding.protocol.on_status(up)


class _Context:
    """The :class:`~ndis_offload.stack.miniport.MiniportContext` NDIS hands its miniport."""

    def __init__(self, stack: NdisStack) -> None:
        self._stack = stack

    def indicate_status(self, indication: StatusIndication) -> None:
        self._stack._indicate(indication)

    def complete_request(self, completion: OidCompletion) -> None:
        self._stack._complete_in_flight(completion, synchronous=False)
        self._stack._pump()

    def indicate_receive(self, indications: list[ReceiveIndication]) -> None:
        self._stack._deliver(list(indications), None)

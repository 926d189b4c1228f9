"""The miniport contract and the reference software miniport (the documented behaviour).

A miniport is the one thing users extend. NDIS (:class:`~ndis_offload.stack.core.NdisStack`)
calls four entry points, all synchronous and sans-IO (time arrives as ``now``):

===============================  ===============================================================
``initialize(context)``          ``MiniportInitializeEx``: keep ``context``, return
                                 :class:`OffloadAttributes` (``None`` parts: no task offload)
``oid_request(request)``         ``MiniportOidRequest``: an :class:`OidCompletion`, or
                                 ``NDIS_STATUS_PENDING`` and later ``context.complete_request``
``send_net_buffer_lists(nbls)``  ``MiniportSendNetBufferLists``: one :class:`SendCompletion` per
                                 NBL, in order (``NdisMSendNetBufferListsComplete``)
``receive_dpc(frames, now)``     one receive DPC: the NBLs indicated up
                                 (``NdisMIndicateReceiveNetBufferLists``)
===============================  ===============================================================

Any exception a miniport raises stops at the NDIS boundary: an OID completes with the
:class:`~ndis_offload.errors.NdisError`'s status (``NDIS_STATUS_FAILURE`` for any other
exception), a send completes every NBL with ``NDIS_STATUS_FAILURE``, a receive DPC indicates
nothing. :class:`ReferenceMiniport` follows the NDIS documentation (``oid-offload-encapsulation``,
``oid-tcp-offload-parameters``) and exposes override points (``docs/writing-a-miniport.md``);
real drivers' deviations are in :mod:`ndis_offload.lab.variants`.
"""

from __future__ import annotations

import struct
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from ndis_offload.constants import objects as o
from ndis_offload.constants.offload import (
    NdisEncapsulation,
    NdisOffloadSet,
)
from ndis_offload.constants.oid import Oid
from ndis_offload.constants.statistics import TRANSMIT, NdisStatisticsFlags
from ndis_offload.constants.status import NdisStatus
from ndis_offload.engine import rsc_aborts
from ndis_offload.errors import DecodeError, TruncatedError
from ndis_offload.stack.datapath import (
    NetBufferList,
    ReceiveIndication,
    SendCompletion,
    SoftwareDatapath,
    TransmitStatistics,
)
from ndis_offload.stack.features import (
    FAMILY_FEATURES,
    FEATURE_TABLE,
    FEATURES,
    build_offload,
    parameter_request,
)
from ndis_offload.stack.profiles import AdapterProfile, keywords_from_features
from ndis_offload.stack.requests import OidCompletion, OidRequest, RequestType, StatusIndication
from ndis_offload.structs.codec import NdisStruct
from ndis_offload.structs.encapsulation import NdisOffloadEncapsulation
from ndis_offload.structs.offload import NdisOffload
from ndis_offload.structs.parameters import NdisOffloadParameters
from ndis_offload.structs.statistics import NdisRscStatisticsInfo, NdisStatisticsInfo

PENDING = NdisStatus.PENDING


# -- how a miniport answers the set OIDs, as data ---------------------------------------------
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


def query_reply(request: OidRequest, value: NdisStruct) -> OidCompletion:
    """A query answered with ``value``: ``NDIS_STATUS_BUFFER_TOO_SHORT`` with ``BytesNeeded``
    when ``InformationBufferLength`` is smaller (``MiniportOidRequest``: "the buffer ... is
    too small to hold the requested data"), else SUCCESS with ``BytesWritten``."""
    data = value.encode()
    if request.InformationBufferLength < len(data):
        return complete(
            request,
            NdisStatus.BUFFER_TOO_SHORT,
            f"InformationBufferLength {request.InformationBufferLength} < {len(data)}",
            BytesNeeded=len(data),
        )
    return OidCompletion(
        request, NdisStatus.SUCCESS, BytesWritten=len(data), InformationBuffer=data
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


def transmit_statistics_info(tx: TransmitStatistics) -> NdisStatisticsInfo:
    """``NDIS_STATISTICS_INFO`` with the transmit members of ``tx`` (``SupportedStatistics``
    says which: the ``NDIS_STATISTICS_FLAGS_VALID_*_XMIT`` bits)."""
    return NdisStatisticsInfo(
        SupportedStatistics=int(TRANSMIT | NdisStatisticsFlags.VALID_XMIT_ERROR),
        ifHCOutOctets=tx.ifHCOutOctets,
        ifHCOutUcastPkts=tx.ifHCOutUcastPkts,
        ifHCOutMulticastPkts=tx.ifHCOutMulticastPkts,
        ifHCOutBroadcastPkts=tx.ifHCOutBroadcastPkts,
        ifOutErrors=tx.ifOutErrors,
        ifOutDiscards=tx.ifOutDiscards,
        ifHCOutUcastOctets=tx.ifHCOutUcastOctets,
        ifHCOutMulticastOctets=tx.ifHCOutMulticastOctets,
        ifHCOutBroadcastOctets=tx.ifHCOutBroadcastOctets,
    )


class MiniportContext(Protocol):
    """What NDIS gives a miniport at initialization."""

    def indicate_status(self, indication: StatusIndication) -> None:
        """``NdisMIndicateStatusEx``: e.g. ``NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG`` with
        the encoded current ``NDIS_OFFLOAD``; NDIS caches it and fans it out."""

    def complete_request(self, completion: OidCompletion) -> None:
        """``NdisMOidRequestComplete`` for the request the miniport pended."""

    def indicate_receive(self, indications: list[ReceiveIndication]) -> None:
        """``NdisMIndicateReceiveNetBufferLists`` outside a receive DPC (e.g. coalesced
        segments flushed before an RSC-disabling set completes)."""


@dataclass(frozen=True)
class OffloadAttributes:
    """``NDIS_MINIPORT_ADAPTER_OFFLOAD_ATTRIBUTES``: ``HardwareOffloadCapabilities`` and
    ``DefaultOffloadConfiguration`` (``None`` for a miniport without task offload)."""

    HardwareOffloadCapabilities: NdisOffload | None
    DefaultOffloadConfiguration: NdisOffload | None


class Miniport(ABC):
    """A miniport driver instance for one adapter (the public contract; see the module
    docstring and ``docs/writing-a-miniport.md``).

    Subclass it directly for a miniport of your own design, or subclass
    :class:`ReferenceMiniport` and override its hooks. ``name`` labels the trace.
    """

    name: str = "miniport"

    @abstractmethod
    def initialize(self, context: MiniportContext) -> OffloadAttributes:
        """``MiniportInitializeEx``: keep ``context``, report offload attributes. Called once,
        by :class:`~ndis_offload.stack.core.NdisStack`, before anything else."""

    @abstractmethod
    def oid_request(self, request: OidRequest) -> OidCompletion | NdisStatus:
        """``MiniportOidRequest``: a completion for ``request``, or ``NDIS_STATUS_PENDING``
        and later exactly one ``context.complete_request``. NDIS answers the queries it owns
        itself and sends one request at a time. May raise :class:`~ndis_offload.errors.NdisError`
        (completes with its status); anything else completes with ``NDIS_STATUS_FAILURE``."""

    def send_net_buffer_lists(self, nbls: Sequence[NetBufferList]) -> list[SendCompletion]:
        """``MiniportSendNetBufferLists``: do the offload work each NBL's info words ask for
        and return one :class:`SendCompletion` per NBL, in submission order, carrying the
        frames put on the wire. This default is an adapter without task offload: a plain
        frame goes out unchanged, an NBL asking for any offload fails."""
        out = []
        for nbl in nbls:
            if (
                nbl.TcpIpChecksumNetBufferListInfo
                or nbl.TcpLargeSendNetBufferListInfo
                or nbl.UdpSegmentationOffloadInfo
            ):
                out.append(SendCompletion(NdisStatus.FAILURE, detail="no task offload"))
            else:
                out.append(SendCompletion(NdisStatus.SUCCESS, [bytes(nbl.frame)]))
        return out

    def receive_dpc(self, frames: Sequence[bytes], now: float) -> list[ReceiveIndication]:
        """One receive DPC: the frames the NIC received (in order) in, the NBLs indicated up
        out, with their checksum and RSC info words. Nothing may be held back for a later DPC
        (``indicating-coalesced-segments``). This default indicates every frame as is."""
        return [ReceiveIndication(bytes(frame)) for frame in frames]


S = TypeVar("S", NdisOffloadEncapsulation, NdisOffloadParameters)


def decode_set(
    request: OidRequest,
    cls: type[S],
    *,
    validate: bool = True,
    invalid: NdisStatus | None = None,
) -> S | OidCompletion:
    """Decode a set's ``InformationBuffer`` as ``cls``: a short buffer is
    ``NDIS_STATUS_INVALID_LENGTH`` with ``BytesNeeded``; a bad header or field completes with
    ``invalid`` (default: the decoder's status, ``NDIS_STATUS_INVALID_PARAMETER``) naming the
    field."""
    short = short_buffer(request, cls.minimum_size(), NdisStatus.INVALID_LENGTH)
    if short is not None:
        return short
    try:
        return cls.decode(request.InformationBuffer, validate=validate)
    except TruncatedError as err:
        return complete(request, NdisStatus.INVALID_LENGTH, err.detail, BytesNeeded=err.needed)
    except DecodeError as err:
        return complete(request, invalid if invalid is not None else err.status, err.detail)


class FamilySwitches(MutableMapping[int, bool]):
    """``family_active``: the ``OID_OFFLOAD_ENCAPSULATION`` ON / OFF state per IP version, a
    mapping whose every change (item set or delete, and the ``update`` / ``pop`` / ``clear``
    built on them) calls ``changed``: the miniport's cached current configuration follows."""

    __slots__ = ("_data", "_changed")

    def __init__(self, data: Mapping[int, bool], changed: Callable[[], None]) -> None:
        self._data = dict(data)
        self._changed = changed

    def __getitem__(self, family: int) -> bool:
        return self._data[family]

    def __setitem__(self, family: int, active: bool) -> None:
        self._data[family] = active
        self._changed()

    def __delitem__(self, family: int) -> None:
        del self._data[family]
        self._changed()

    def __iter__(self) -> Iterator[int]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return repr(self._data)


class ReferenceMiniport(Miniport):
    """A software miniport that follows the NDIS documentation to the letter.

    State: ``hardware`` (what the NIC can do), ``configured`` (INF keywords, changed by
    ``OID_TCP_OFFLOAD_PARAMETERS``), ``family_active`` (``OID_OFFLOAD_ENCAPSULATION`` ON/OFF
    per IP version). The current configuration is ``configured & hardware`` minus the
    checksum/LSO/USO features of a family that is switched OFF.
    """

    variant = "reference"
    behaviour: Behaviour = DOCUMENTED
    """How it answers the offload set OIDs (the documented reading; variants change knobs)."""

    def __init__(self, profile: AdapterProfile, *, pend_requests: bool = False) -> None:
        self._current: frozenset[str] | None = None
        """:attr:`current_features`, cached until an input changes (``None``: recompute)."""
        self.profile = profile
        self.name = f"miniport({profile.name})"
        self.hardware = profile.hardware
        self.configured = profile.configured
        self.family_active = {4: True, 6: True}
        self.header_size = {4: 0, 6: 0}
        self.encapsulation_type = {4: 0, 6: 0}
        self.receive_checksum_started = False
        """The receive path validates checksums only after the first successful
        ``OID_OFFLOAD_ENCAPSULATION`` set (documented rule)."""
        self.registry: dict[str, int] = dict(profile.keywords)
        self.pend_requests = pend_requests
        self._pended: list[OidRequest] = []
        self._context: MiniportContext | None = None
        self.datapath = SoftwareDatapath(self)
        """The send and receive paths (the engine, gated by :attr:`current_features`)."""

    # -- the inputs of the current configuration: each write drops the cached one ---------
    def _config_changed(self) -> None:
        self._current = None

    @property
    def hardware(self) -> frozenset[str]:
        """What the NIC can do (``HardwareOffloadCapabilities``)."""
        return self._hardware

    @hardware.setter
    def hardware(self, features: frozenset[str]) -> None:
        self._hardware = features
        self._config_changed()

    @property
    def configured(self) -> frozenset[str]:
        """The offloads the INF keywords / ``OID_TCP_OFFLOAD_PARAMETERS`` switched on."""
        return self._configured

    @configured.setter
    def configured(self, features: frozenset[str]) -> None:
        self._configured = features
        self._config_changed()

    @property
    def family_active(self) -> FamilySwitches:
        """``OID_OFFLOAD_ENCAPSULATION`` ON / OFF per IP version (4, 6)."""
        return self._family_active

    @family_active.setter
    def family_active(self, active: Mapping[int, bool]) -> None:
        self._family_active = FamilySwitches(active, self._config_changed)
        self._config_changed()

    # -- reporting -------------------------------------------------------------------------
    @property
    def supports_offload(self) -> bool:
        """Whether the adapter has any task offload (else both set OIDs are NOT_SUPPORTED)."""
        return bool(self.hardware)

    @property
    def current_features(self) -> frozenset[str]:
        """The features on now: configured and in the hardware, minus the checksum, LSO and
        USO features of an IP version switched OFF. Reported, indicated and obeyed by the
        data path. Cached (read several times per send and receive DPC): every write of
        ``hardware``, ``configured`` or ``family_active`` drops it."""
        current = self._current
        if current is None:
            current = self._configured & self._hardware
            for family, active in self._family_active.items():
                if not active:
                    current -= FAMILY_FEATURES[family]
            self._current = current
        return current

    def hardware_capabilities(self) -> NdisOffload:
        """``HardwareOffloadCapabilities``."""
        return build_offload(self.hardware, self.profile.limits)

    def current_config(self) -> NdisOffload:
        """The current ``NDIS_OFFLOAD`` (initially ``DefaultOffloadConfiguration``)."""
        return build_offload(self.current_features, self.profile.limits)

    def initialize(self, context: MiniportContext) -> OffloadAttributes:
        """Keep ``context``; report both ``NDIS_OFFLOAD`` structures (none without task
        offload)."""
        self._context = context
        if not self.supports_offload:
            return OffloadAttributes(None, None)
        return OffloadAttributes(self.hardware_capabilities(), self.current_config())

    # -- data path -------------------------------------------------------------------------
    def send_net_buffer_lists(self, nbls: Sequence[NetBufferList]) -> list[SendCompletion]:
        """Each NBL through :meth:`SoftwareDatapath.send`: the offload work it asks for, or
        ``NDIS_STATUS_FAILURE`` when that offload is off in the current configuration."""
        return [self.datapath.send(nbl, index=i) for i, nbl in enumerate(nbls)]

    def receive_dpc(self, frames: Sequence[bytes], now: float) -> list[ReceiveIndication]:
        """Checksum verdicts for the Rx offloads that are on (only after the first successful
        ``OID_OFFLOAD_ENCAPSULATION`` set), RSC where it is on; every coalesced unit is
        indicated before the DPC ends."""
        return self.datapath.receive(list(frames), now) + self.datapath.flush()

    def indicate_current_config(self) -> None:
        """``NdisMIndicateStatusEx(NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG, NDIS_OFFLOAD)``."""
        assert self._context is not None, "miniport not initialized"
        self._context.indicate_status(
            StatusIndication(
                NdisStatus.TASK_OFFLOAD_CURRENT_CONFIG, self.current_config().encode(), self.name
            )
        )

    # -- dispatch --------------------------------------------------------------------------
    def handlers(self) -> dict[tuple[int, RequestType], Callable[[OidRequest], OidCompletion]]:
        """The OIDs this miniport handles (an explicit table, like NetKVM's OID table)."""
        return {
            (Oid.OFFLOAD_ENCAPSULATION, RequestType.SET): self.set_offload_encapsulation,
            (Oid.TCP_OFFLOAD_PARAMETERS, RequestType.SET): self.set_offload_parameters,
            (Oid.TCP_RSC_STATISTICS, RequestType.QUERY): self.query_rsc_statistics,
            (Oid.GEN_STATISTICS, RequestType.QUERY): self.query_statistics,
        }

    def oid_request(self, request: OidRequest) -> OidCompletion | NdisStatus:
        handler = self.handlers().get((request.Oid, request.RequestType))
        if handler is None:
            known = {oid for oid, _ in self.handlers()}
            if request.Oid in known:
                return complete(
                    request,
                    NdisStatus.NOT_SUPPORTED,
                    f"{request.RequestType.verb} of {request.oid_name} not supported",
                )
            return complete(request, NdisStatus.INVALID_OID, f"unknown OID {request.oid_name}")
        if self.pend_requests:
            self._pended.append(request)
            return PENDING
        return handler(request)

    def complete_pending(self) -> int:
        """Complete the requests pended so far, in order (as a DPC would); requests NDIS
        dispatches meanwhile wait for the next call. Returns how many were completed."""
        assert self._context is not None
        batch, self._pended = self._pended, []
        for request in batch:
            handler = self.handlers()[(request.Oid, request.RequestType)]
            self._context.complete_request(handler(request))
        return len(batch)

    # -- statistics --------------------------------------------------------------------------
    def query_rsc_statistics(self, request: OidRequest) -> OidCompletion:
        """``oid-tcp-rsc-statistics``: "miniport drivers that provide RSC services must
        support this OID"; an adapter without RSC recognizes it and answers
        ``NDIS_STATUS_NOT_SUPPORTED``. A set is ``NOT_SUPPORTED`` (query only)."""
        if not any(FEATURE_TABLE[f].offload_type == "rsc" for f in self.hardware):
            return complete(request, NdisStatus.NOT_SUPPORTED, "the adapter has no RSC")
        return query_reply(request, self.rsc_statistics())

    def rsc_statistics(self) -> NdisRscStatisticsInfo:
        """The ``NDIS_RSC_STATISTICS_INFO`` answered (hook): the data path's counts of the
        SCUs indicated and ``Aborts`` = every exception but E7 met by its coalescer."""
        counts = self.datapath.rsc_statistics
        return NdisRscStatisticsInfo(
            CoalescedPkts=counts.CoalescedPkts,
            CoalescedOctets=counts.CoalescedOctets,
            CoalesceEvents=counts.CoalesceEvents,
            Aborts=rsc_aborts(self.datapath.coalescer.exceptions),
        )

    def query_statistics(self, request: OidRequest) -> OidCompletion:
        """``OID_GEN_STATISTICS``: the transmit counters of :meth:`statistics`."""
        return query_reply(request, self.statistics())

    def statistics(self) -> NdisStatisticsInfo:
        """The ``NDIS_STATISTICS_INFO`` answered (hook): the data path's transmit counters,
        every segment of a segmented send counted with its own headers."""
        return transmit_statistics_info(self.datapath.transmit_statistics)

    # -- OID_OFFLOAD_ENCAPSULATION ------------------------------------------------------------
    def set_offload_encapsulation(self, request: OidRequest) -> OidCompletion:
        """``oid-offload-encapsulation``: NOT_SUPPORTED without task offload; validate the
        structure (:meth:`decode_encapsulation`, :meth:`check_request`); SUCCESS iff some
        supported offload type supports each requested encapsulation
        (:meth:`check_encapsulation`), else INVALID_PARAMETER; then :meth:`apply_family` and
        indicate the new current configuration (``behaviour.indicate_encapsulation``)."""
        if not self.supports_offload:
            return complete(request, NdisStatus.NOT_SUPPORTED, "adapter has no task offload")
        policy = self.behaviour.indicate_encapsulation
        parsed = self.decode_encapsulation(request)
        problem: tuple[NdisStatus, str] | None = None
        if isinstance(parsed, OidCompletion):
            if indicate(policy, succeeded=False, changed=False):
                self.indicate_current_config()
            return parsed
        problem = self.check_request(parsed)
        for family, part in ((4, parsed.IPv4), (6, parsed.IPv6)):
            if problem is None and part.Enabled == NdisOffloadSet.ON:
                problem = self.check_encapsulation(family, part.EncapsulationType, part.HeaderSize)
        if problem is not None:
            if indicate(policy, succeeded=False, changed=False):
                self.indicate_current_config()
            return complete(request, problem[0], problem[1])
        before = self.current_features
        for family, part in ((4, parsed.IPv4), (6, parsed.IPv6)):
            self.apply_family(family, part.Enabled, part.EncapsulationType, part.HeaderSize)
        self.receive_checksum_started = True
        if self.indicate_after_encapsulation(before != self.current_features):
            self.indicate_current_config()
        read = min(len(request.InformationBuffer), parsed.Header.Size)
        return complete(request, NdisStatus.SUCCESS, BytesRead=read)

    def decode_encapsulation(self, request: OidRequest) -> NdisOffloadEncapsulation | OidCompletion:
        """Length and header checks per ``behaviour`` (documented: a short buffer is
        ``INVALID_LENGTH`` with ``BytesNeeded``; a bad header or field value
        ``INVALID_PARAMETER`` naming the field)."""
        b = self.behaviour
        size = o.NDIS_SIZEOF_OFFLOAD_ENCAPSULATION_REVISION_1
        if b.exact_length:
            wrong = exact_length(request, size)
        elif b.encapsulation_header != "minimum":  # read_ndis_object checks the length
            wrong = short_buffer(request, size, b.short_buffer)
        else:
            wrong = None
        if wrong is not None:
            return wrong
        if b.encapsulation_header == "documented":
            return decode_set(request, NdisOffloadEncapsulation, invalid=b.invalid_header)
        buffer = request.InformationBuffer
        enc = NdisOffloadEncapsulation.decode_unchecked(buffer, size)
        h = enc.Header
        why = None
        if b.encapsulation_header == "minimum":
            why = read_ndis_object(buffer, o.NDIS_OBJECT_TYPE_OFFLOAD_ENCAPSULATION, 1, size)
        elif b.encapsulation_header == "exact":
            if (h.Type, h.Revision, h.Size) != (o.NDIS_OBJECT_TYPE_OFFLOAD_ENCAPSULATION, 1, size):
                why = f"Header {{0x{h.Type:X}, {h.Revision}, {h.Size}}} is not exactly "
                why += f"{{0xA8, 1, {size}}}"
        elif h.Revision != 1 or h.Type != o.NDIS_OBJECT_TYPE_OFFLOAD_ENCAPSULATION:
            why = "Header.Revision must be 1 and Type 0xA8"
        if why is not None:
            return complete(request, b.invalid_header, why)
        return enc

    def indicate_after_encapsulation(self, changed: bool) -> bool:
        """Whether a successful encapsulation set indicates (``changed``: the current
        configuration differs); default ``behaviour.indicate_encapsulation``."""
        return indicate(self.behaviour.indicate_encapsulation, succeeded=True, changed=changed)

    def indicate_after_parameters(self, changed: bool) -> bool:
        """Whether a successful parameters set indicates; default
        ``behaviour.indicate_parameters``."""
        return indicate(self.behaviour.indicate_parameters, succeeded=True, changed=changed)

    def check_request(self, enc: NdisOffloadEncapsulation) -> tuple[NdisStatus, str] | None:
        """A check across both families before any is applied (none documented)."""
        return None

    def encapsulations_supported(self) -> int:
        """OR of the ``Encapsulation`` masks of every offload type the adapter supports."""
        enc = self.profile.limits.encapsulations
        mask = 0
        for feature in self.hardware:
            mask |= enc.get(FEATURE_TABLE[feature].offload_type, 0)
        return mask

    def check_encapsulation(
        self, family: int, encapsulation: int, header_size: int
    ) -> tuple[NdisStatus, str] | None:
        """``None`` when an ON request for ``family`` can be honoured, else (status, why),
        per ``behaviour.encapsulation_match`` and ``behaviour.header_size``."""
        b = self.behaviour
        documented = (NdisEncapsulation.IEEE_802_3, NdisEncapsulation.IEEE_LLC_SNAP_ROUTED)
        if b.encapsulation_match == "documented" and encapsulation not in documented:
            return (
                b.invalid_header,
                f"IPv{family}.EncapsulationType 0x{encapsulation:X} is neither "
                "NDIS_ENCAPSULATION_IEEE_802_3 nor NDIS_ENCAPSULATION_IEEE_LLC_SNAP_ROUTED",
            )
        if b.encapsulation_match == "equality":
            supported = encapsulation == NdisEncapsulation.IEEE_802_3
        else:
            supported = bool(encapsulation & self.encapsulations_supported())
        if not supported or (b.header_size is not None and header_size != b.header_size):
            return (
                b.unsupported_encapsulation,
                f"IPv{family}: EncapsulationType 0x{encapsulation:X} with HeaderSize "
                f"{header_size} is not supported by any offload type of this adapter",
            )
        return None

    def apply_family(self, family: int, enabled: int, encapsulation: int, header_size: int) -> None:
        """ON activates the configured offloads of ``family``; OFF deactivates them all."""
        if enabled == NdisOffloadSet.ON:
            self.family_active[family] = True
            self.encapsulation_type[family] = encapsulation
            self.header_size[family] = header_size
        elif enabled == NdisOffloadSet.OFF:
            self.family_active[family] = False
            self.encapsulation_type[family] = 0
            self.header_size[family] = 0

    # -- OID_TCP_OFFLOAD_PARAMETERS -----------------------------------------------------------
    def set_offload_parameters(self, request: OidRequest) -> OidCompletion:
        """``oid-tcp-offload-parameters``: NOT_SUPPORTED without task offload (and no
        indication); :meth:`decode_parameters`; :meth:`plan_parameters` (invalid contents,
        e.g. an offload the hardware lacks, are ``NDIS_STATUS_INVALID_DATA``; NO_CHANGE
        keeps); commit atomically, rewrite the keywords unless
        ``NDIS_OFFLOAD_PARAMETERS_SKIP_REGISTRY_UPDATE``; flush held RSC units when RSC goes
        off; indicate the new current configuration (``behaviour.indicate_parameters``)."""
        if not self.supports_offload:
            return complete(request, NdisStatus.NOT_SUPPORTED, "adapter has no task offload")
        policy = self.behaviour.indicate_parameters
        params = self.decode_parameters(request)
        result = params if isinstance(params, OidCompletion) else self.plan_parameters(params)
        if not isinstance(result, frozenset):
            if indicate(policy, succeeded=False, changed=False):
                self.indicate_current_config()
            if isinstance(result, OidCompletion):
                return result
            return complete(request, result[0], result[1])
        assert isinstance(params, NdisOffloadParameters)
        before = self.current_features
        self.configured = result
        if not params.Flags & 1:  # NDIS_OFFLOAD_PARAMETERS_SKIP_REGISTRY_UPDATE
            self.registry.update(keywords_from_features(result))
        if any(FEATURE_TABLE[f].offload_type == "rsc" for f in before - self.current_features):
            # querying-and-changing-rsc-state: indicate held SCUs before completing the set
            held = self.datapath.flush()
            if held and self._context is not None:
                self._context.indicate_receive(held)
        if self.indicate_after_parameters(before != self.current_features):
            self.indicate_current_config()
        read = min(len(request.InformationBuffer), params.Header.Size)
        if self.behaviour.parameters_sizeof is not None:
            read = self.behaviour.parameters_sizeof
        return complete(request, NdisStatus.SUCCESS, BytesRead=read)

    def decode_parameters(self, request: OidRequest) -> NdisOffloadParameters | OidCompletion:
        """Length and header checks per ``behaviour`` (documented: a short buffer is
        ``INVALID_LENGTH`` with ``BytesNeeded``, a bad header or field ``INVALID_DATA``)."""
        b = self.behaviour
        minimum = o.NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_1
        sizeof = b.parameters_sizeof
        if b.exact_length:
            wrong = exact_length(request, sizeof or NdisOffloadParameters.sizeof())
        elif b.parameters_header != "minimum":  # read_ndis_object checks the length
            wrong = short_buffer(request, sizeof or minimum, b.short_buffer)
        else:
            wrong = None
        if wrong is not None:
            return wrong
        if b.parameters_header == "documented":
            return decode_set(request, NdisOffloadParameters, invalid=NdisStatus.INVALID_DATA)
        buffer = request.InformationBuffer
        limit = sizeof
        if b.parameters_header == "minimum":
            why = read_ndis_object(buffer, o.NDIS_OBJECT_TYPE_DEFAULT, 1, minimum)
            if why is not None:
                return complete(request, NdisStatus.INVALID_DATA, why)
            limit = struct.unpack_from("<H", buffer, 2)[0]
        return NdisOffloadParameters.decode_unchecked(buffer, limit)

    def plan_parameters(self, p: NdisOffloadParameters) -> frozenset[str] | tuple[NdisStatus, str]:
        """The new configured feature set, or (status, why) without changing anything: each
        field read through the feature table (``NO_CHANGE`` keeps). Per ``behaviour``: an
        undefined value, enabling what the hardware lacks, or IPsec / connection offload
        (this model has none) is ``NDIS_STATUS_INVALID_DATA`` (documented), or kept, or
        clamped."""
        return self.plan_fields(p)

    def plan_fields(
        self, p: NdisOffloadParameters, *, ignore: frozenset[str] = frozenset()
    ) -> frozenset[str] | tuple[NdisStatus, str]:
        """:meth:`plan_parameters` without the fields in ``ignore`` (besides
        ``behaviour.ignored_fields``): for a variant that reads some fields its own way."""
        b = self.behaviour
        skip = b.ignored_fields | ignore
        asked = parameter_request(p, revision_gate=b.parameters_header != "unchecked")
        ignored = {f for f in FEATURES if FEATURE_TABLE[f].parameters_field in skip}
        on, off = asked.on - ignored, asked.off - ignored
        if b.undefined_value == "reject":
            for feature, value in asked.undefined.items():
                if feature not in ignored:
                    field_name = FEATURE_TABLE[feature].parameters_field
                    return NdisStatus.INVALID_DATA, f"{field_name}: {value} is not defined"
        lacking = [f for f in FEATURES if f in on and f not in self.hardware]
        if lacking and b.unsupported_request is not None:
            field_name = FEATURE_TABLE[lacking[0]].parameters_field
            return (
                b.unsupported_request,
                f"{field_name}: {', '.join(lacking)} not supported by the hardware",
            )
        for field_name in UNSUPPORTED_FIELDS:
            if field_name not in skip and getattr(p, field_name) > 1:
                return (
                    b.unsupported_request or NdisStatus.INVALID_DATA,
                    f"{field_name}: this adapter has no IPsec or connection offload",
                )
        return frozenset((self.configured | (on & self.hardware)) - off)


UNSUPPORTED_FIELDS = ("IPsecV1", "TcpConnectionIPv4", "TcpConnectionIPv6", "IPsecV2", "IPsecV2IPv4")
"""``NDIS_OFFLOAD_PARAMETERS`` fields for offloads this model has none of (``> 1`` enables)."""

"""A protocol driver doing the documented flow: check support (bind snapshot or
``OID_TCP_OFFLOAD_CURRENT_CONFIG`` query), enable or disable with
``OID_OFFLOAD_ENCAPSULATION``, track ``NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG``, and use no
offload after a failed set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ndis_offload.constants.offload import NdisEncapsulation
from ndis_offload.constants.oid import Oid
from ndis_offload.constants.status import NdisStatus
from ndis_offload.errors import DecodeError
from ndis_offload.stack.core import Binding, BindParameters, ProtocolEdge, RequestHandle
from ndis_offload.stack.datapath import ReceiveIndication
from ndis_offload.stack.features import (
    FEATURE_TABLE,
    FEATURES,
    feature_encapsulations,
    supported_encapsulations,
)
from ndis_offload.stack.requests import OidCompletion, StatusIndication
from ndis_offload.structs.encapsulation import (
    NdisOffloadEncapsulation,
    NdisOffloadEncapsulationFamily,
)
from ndis_offload.structs.offload import NdisOffload


@dataclass(frozen=True)
class SupportCheck:
    """The outcome of a pre-check: where the config came from and what it says."""

    via: Literal["bind", "query"]
    supported: bool
    encapsulations: int
    status: NdisStatus = NdisStatus.SUCCESS


class ProtocolDriver(ProtocolEdge):
    """A TCP/IP-like protocol bound to one adapter.

    ``usable`` is the set of offload features it may rely on (send offloads, and RSC on
    receive): what the last current configuration says is on, for the IP versions it
    enabled, and nothing at all after a failed ``OID_OFFLOAD_ENCAPSULATION`` set
    (documented rule).
    """

    def __init__(
        self,
        name: str,
        encapsulation: int = NdisEncapsulation.IEEE_802_3,
        header_size: int = 14,
    ) -> None:
        self.name = name
        self.encapsulation = int(encapsulation)
        self.header_size = header_size
        self.binding: Binding | None = None
        self.bind_parameters: BindParameters | None = None
        self.current: NdisOffload | None = None
        self.enabled_families: set[int] = set()
        self.failed = False
        self.last_set: OidCompletion | None = None
        self.indications: list[StatusIndication] = []
        self.completions: list[OidCompletion] = []
        self.received: list[ReceiveIndication] = []
        self._pending_sets: dict[int, dict[int, bool]] = {}

    # -- ProtocolEdge ---------------------------------------------------------------------
    def on_bind(self, binding: Binding, parameters: BindParameters) -> None:
        self.binding = binding
        self.bind_parameters = parameters
        self.current = parameters.DefaultOffloadConfiguration

    def on_unbind(self) -> None:
        self.binding = None
        self.enabled_families.clear()

    def on_request_complete(self, completion: OidCompletion) -> None:
        self.completions.append(completion)
        families = self._pending_sets.pop(completion.request.RequestId, None)
        if families is not None:
            self._set_completed(completion, families)

    def on_receive(self, indications: list[ReceiveIndication]) -> None:
        self.received.extend(indications)

    def on_status(self, indication: StatusIndication) -> None:
        self.indications.append(indication)
        if indication.StatusCode == NdisStatus.TASK_OFFLOAD_CURRENT_CONFIG:
            try:
                self.current = NdisOffload.decode(indication.StatusBuffer)
            except DecodeError:
                pass

    # -- the documented flow --------------------------------------------------------------
    def check_support(self, via: Literal["bind", "query"] = "bind") -> SupportCheck:
        """Does the adapter support our encapsulation on at least one offload?"""
        if via == "bind":
            offload = (
                self.bind_parameters.DefaultOffloadConfiguration if self.bind_parameters else None
            )
            status = NdisStatus.SUCCESS
        else:
            handle = self._binding().query(Oid.TCP_OFFLOAD_CURRENT_CONFIG)
            status = handle.status
            offload = None
            if handle.completion is not None and handle.completion.ok:
                offload = NdisOffload.decode(handle.completion.InformationBuffer)
                self.current = offload
        mask = supported_encapsulations(offload) if offload is not None else 0
        return SupportCheck(via, bool(mask & self.encapsulation), mask, status)

    def enable(self, ipv4: bool = True, ipv6: bool = True) -> RequestHandle:
        """``OID_OFFLOAD_ENCAPSULATION`` set: ON with our encapsulation for each family asked."""
        on = NdisOffloadEncapsulationFamily.on(self.encapsulation, self.header_size)
        keep = NdisOffloadEncapsulationFamily.no_change()
        families = {family: True for family, asked in ((4, ipv4), (6, ipv6)) if asked}
        return self._set(
            NdisOffloadEncapsulation(IPv4=on if ipv4 else keep, IPv6=on if ipv6 else keep),
            families,
        )

    def disable(self, ipv4: bool = True, ipv6: bool = True) -> RequestHandle:
        """``OID_OFFLOAD_ENCAPSULATION`` set: OFF for each family asked."""
        off = NdisOffloadEncapsulationFamily.off()
        keep = NdisOffloadEncapsulationFamily.no_change()
        families = {family: False for family, asked in ((4, ipv4), (6, ipv6)) if asked}
        return self._set(
            NdisOffloadEncapsulation(IPv4=off if ipv4 else keep, IPv6=off if ipv6 else keep),
            families,
        )

    def _set(self, value: NdisOffloadEncapsulation, families: dict[int, bool]) -> RequestHandle:
        handle = self._binding().set(Oid.OFFLOAD_ENCAPSULATION, value.encode())
        if handle.completion is not None:
            self._set_completed(handle.completion, families)
        else:
            self._pending_sets[handle.request.RequestId] = families
        return handle

    def _set_completed(self, completion: OidCompletion, families: dict[int, bool]) -> None:
        """``families`` holds only the IP versions the set turned ON or OFF: a family left
        at ``NDIS_OFFLOAD_SET_NO_CHANGE`` keeps what the protocol could use before."""
        self.last_set = completion
        if completion.ok:
            self.failed = False
            for family, on in families.items():
                (self.enabled_families.add if on else self.enabled_families.discard)(family)
        else:
            self.failed = True
            self.enabled_families.clear()

    @property
    def usable(self) -> frozenset[str]:
        """Offload features this protocol may rely on now: on in the current configuration,
        of an IP version it turned ON, and of an offload type whose ``Encapsulation`` mask
        includes the protocol's encapsulation ("a protocol driver can issue send requests by
        using only those offload types that the miniport adapter supports with the required
        encapsulation type", ``oid-offload-encapsulation``). Nothing after a failed set."""
        if self.failed or self.current is None or self.binding is None:
            return frozenset()
        allowed = {f for f in FEATURES if FEATURE_TABLE[f].ip in self.enabled_families}
        masks = feature_encapsulations(self.current)
        return frozenset(f for f in allowed if masks.get(f, 0) & self.encapsulation)

    def _binding(self) -> Binding:
        if self.binding is None:
            raise RuntimeError(f"{self.name} is not bound")
        return self.binding

"""``StackHarness``: protocol -> filters -> miniport wired in memory for tests."""

from __future__ import annotations

from collections.abc import Sequence

from ndis_offload.stack.core import Binding, NdisStack
from ndis_offload.stack.filter import FilterDriver
from ndis_offload.stack.miniport import ReferenceMiniport
from ndis_offload.stack.profiles import get_profile
from ndis_offload.stack.protocol import ProtocolDriver


class StackHarness:
    """A stack on a built-in profile with named protocols bound."""

    def __init__(
        self,
        profile: str = "full",
        protocols: Sequence[str] = ("tcpip",),
        filters: Sequence[FilterDriver] = (),
        pend_requests: bool = False,
        miniport: ReferenceMiniport | None = None,
    ) -> None:
        self.miniport = miniport or ReferenceMiniport(
            get_profile(profile), pend_requests=pend_requests
        )
        self.stack = NdisStack(self.miniport, filters)
        self.protocols: dict[str, ProtocolDriver] = {}
        for name in protocols:
            self.bind(name)

    def bind(self, name: str, **kw: int) -> ProtocolDriver:
        protocol = ProtocolDriver(name, **kw)
        self.stack.bind(protocol)
        self.protocols[name] = protocol
        return protocol

    def binding(self, name: str = "tcpip") -> Binding:
        return self.stack.bindings[name]

    def kinds(self) -> list[str]:
        return [e.kind for e in self.stack.trace]

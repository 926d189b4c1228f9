"""The ``ndis-offload demo`` flow as values: the documented enable/disable sequence on one
in-memory adapter (the CLI and viz layers render it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ndis_offload.constants.offload import NdisEncapsulation
from ndis_offload.constants.status import NdisStatus
from ndis_offload.lab.scenario import AdapterSpec, ScenarioError, make_miniport, variant_names
from ndis_offload.stack.core import NdisStack
from ndis_offload.stack.features import FEATURES, features_of
from ndis_offload.stack.filter import RecordingFilter
from ndis_offload.stack.profiles import DEFAULT_PROFILE, AdapterProfile, get_profile
from ndis_offload.stack.protocol import ProtocolDriver, SupportCheck

LLC_SNAP_HEADER_SIZE = 8
"""RFC 1483 routed LLC/SNAP: LLC ``AA-AA-03``, OUI ``00-00-00``, EtherType."""


@dataclass
class DemoResult:
    """Everything ``ndis-offload demo`` shows, as values."""

    profile: AdapterProfile
    variant: str
    stack: NdisStack
    prechecks: list[tuple[str, SupportCheck]]
    config_before: frozenset[str] | None
    config_after_enable: frozenset[str] | None
    config_after_disable: frozenset[str] | None
    enable_status: str
    disable_status: str
    failing_status: str
    failing_detail: str
    usable: dict[str, dict[str, list[str]]]
    """phase -> protocol -> features it may use."""
    indications: dict[str, list[str]]
    """protocol -> statuses it received."""
    protocols: dict[str, ProtocolDriver]
    hardware: frozenset[str] | None
    receive_checksum_started: dict[str, bool] | None = None
    """phase -> whether the miniport validates receive checksums yet (it must not before
    the first successful ``OID_OFFLOAD_ENCAPSULATION`` set)."""

    def summary(self) -> dict[str, Any]:
        def feats(value: frozenset[str] | None) -> list[str] | None:
            return None if value is None else [f for f in FEATURES if f in value]

        return {
            "profile": self.profile.name,
            "variant": self.variant,
            "prechecks": [
                {
                    "protocol": name,
                    "via": check.via,
                    "supported": check.supported,
                    "encapsulations": encapsulation_names(check.encapsulations),
                    "status": check.status.c_name,
                }
                for name, check in self.prechecks
            ],
            "hardware": feats(self.hardware),
            "config_before": feats(self.config_before),
            "config_after_enable": feats(self.config_after_enable),
            "config_after_disable": feats(self.config_after_disable),
            "enable": self.enable_status,
            "disable": self.disable_status,
            "failing": {
                "protocol": "llcsnap",
                "encapsulation": "NDIS_ENCAPSULATION_IEEE_LLC_SNAP_ROUTED",
                "status": self.failing_status,
                "detail": self.failing_detail,
                "usable": self.usable["after failed set"]["llcsnap"],
                "failed": self.protocols["llcsnap"].failed,
            },
            "indications": self.indications,
            "usable": self.usable,
            "receive_checksum_started": self.receive_checksum_started,
        }


def encapsulation_names(mask: int) -> list[str]:
    """``NDIS_ENCAPSULATION_*`` names of the bits set in ``mask``."""
    return [
        f"NDIS_ENCAPSULATION_{m.name}"
        for m in NdisEncapsulation
        if m.value and mask & m.value and m.name
    ]


def run_demo(profile: AdapterProfile | None = None, variant: str = "reference") -> DemoResult:
    """The documented flow on one adapter, in memory: two protocols bind and pre-check (bind
    parameters / ``OID_TCP_OFFLOAD_CURRENT_CONFIG`` query); ``tcpip`` enables (ON, 802.3,
    14) and disables; then a protocol asks for LLC/SNAP routed and falls back to no offload."""
    profile = profile if profile is not None else get_profile(DEFAULT_PROFILE)
    if variant not in variant_names():
        raise ScenarioError(f"unknown variant {variant!r}; known: {', '.join(variant_names())}")
    stack = NdisStack(make_miniport(AdapterSpec(profile, variant)), [RecordingFilter()])

    def current() -> frozenset[str] | None:
        return None if stack.config is None else features_of(stack.config)

    tcpip = ProtocolDriver("tcpip", NdisEncapsulation.IEEE_802_3, 14)
    tcpip6 = ProtocolDriver("tcpip6", NdisEncapsulation.IEEE_802_3, 14)
    stack.bind(tcpip)
    stack.bind(tcpip6)
    prechecks = [("tcpip", tcpip.check_support("bind")), ("tcpip6", tcpip6.check_support("query"))]
    before = current()
    usable: dict[str, dict[str, list[str]]] = {}

    def snapshot(phase: str, protocols: list[ProtocolDriver]) -> None:
        usable[phase] = {p.name: [f for f in FEATURES if f in p.usable] for p in protocols}

    snapshot("before enable", [tcpip, tcpip6])
    rx_started: dict[str, bool] = {}

    def rx(phase: str) -> None:
        rx_started[phase] = bool(getattr(stack.miniport, "receive_checksum_started", False))

    rx("before enable")
    enabled = tcpip.enable()
    rx("after enable")
    after_enable = current()
    snapshot("after enable", [tcpip, tcpip6])
    disabled = tcpip.disable()
    after_disable = current()
    snapshot("after disable", [tcpip, tcpip6])
    llc = ProtocolDriver("llcsnap", NdisEncapsulation.IEEE_LLC_SNAP_ROUTED, LLC_SNAP_HEADER_SIZE)
    stack.bind(llc)
    failing = llc.enable()
    snapshot("after failed set", [tcpip, tcpip6, llc])
    protocols = {p.name: p for p in (tcpip, tcpip6, llc)}
    hardware = (
        None if stack.hardware_capabilities is None else features_of(stack.hardware_capabilities)
    )
    return DemoResult(
        profile=profile,
        variant=variant,
        stack=stack,
        prechecks=prechecks,
        config_before=before,
        config_after_enable=after_enable,
        config_after_disable=after_disable,
        enable_status=enabled.status.c_name,
        disable_status=disabled.status.c_name,
        failing_status=failing.status.c_name,
        failing_detail=failing.completion.detail if failing.completion else "",
        usable=usable,
        indications={
            name: [NdisStatus.name_of(i.StatusCode) for i in p.indications]
            for name, p in protocols.items()
        },
        protocols=protocols,
        hardware=hardware,
        receive_checksum_started=rx_started,
    )

"""A conformance battery: the documented task offload rules (SPEC §2-§3) as checks that run
against any miniport, so a driver author sees where a model deviates from the documentation.

Each check builds its own stack from a ``MiniportFactory`` (profile -> fresh miniport), drives
it through NDIS like a protocol driver, and reports what the documentation expects beside
what was observed. The reference miniport passes every check; the real-driver variants show
their documented deviations.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from ndis_offload.constants import objects as o
from ndis_offload.constants.offload import NdisEncapsulation
from ndis_offload.constants.oid import Oid
from ndis_offload.constants.status import NdisStatus
from ndis_offload.stack.core import Binding, NdisStack, RequestHandle
from ndis_offload.stack.features import FAMILY_FEATURES, features_of
from ndis_offload.stack.miniport import Miniport
from ndis_offload.stack.profiles import AdapterProfile, get_profile
from ndis_offload.stack.protocol import ProtocolDriver
from ndis_offload.structs.encapsulation import (
    NdisOffloadEncapsulation,
    NdisOffloadEncapsulationFamily,
)
from ndis_offload.structs.offload import NdisOffload
from ndis_offload.structs.parameters import NdisOffloadParameters

MiniportFactory = Callable[[AdapterProfile], Miniport]

ON = NdisOffloadEncapsulationFamily.on(NdisEncapsulation.IEEE_802_3, 14)
OFF = NdisOffloadEncapsulationFamily.off()
KEEP = NdisOffloadEncapsulationFamily.no_change()
SHORT = (NdisStatus.INVALID_LENGTH, NdisStatus.BUFFER_TOO_SHORT)


@dataclass(frozen=True)
class CheckResult:
    """One rule: what the documentation expects, what the miniport did."""

    name: str
    rule: str
    expected: str
    observed: str
    passed: bool


@dataclass
class _Rig:
    stack: NdisStack
    bindings: list[Binding]

    def set(self, oid: int, data: bytes) -> RequestHandle:
        return self.bindings[0].set(oid, data)

    def indications(self) -> list[int]:
        return [len(b.indications) for b in self.bindings]

    def features(self) -> frozenset[str]:
        return features_of(self.stack.config or NdisOffload())


def _rig(factory: MiniportFactory, profile: str, protocols: int = 1) -> _Rig:
    stack = NdisStack(factory(get_profile(profile)))
    bindings = []
    for index in range(protocols):
        stack.bind(ProtocolDriver(f"protocol{index}"))
        bindings.append(stack.bindings[f"protocol{index}"])
    return _Rig(stack, bindings)


def _encapsulation(v4: NdisOffloadEncapsulationFamily = ON,
                   v6: NdisOffloadEncapsulationFamily = ON) -> bytes:  # fmt: skip
    return NdisOffloadEncapsulation(IPv4=v4, IPv6=v6).encode()


def _status(handle: RequestHandle) -> str:
    return handle.status.c_name


def _needed(handle: RequestHandle) -> int:
    return handle.completion.BytesNeeded if handle.completion else 0


Check = Callable[[MiniportFactory], CheckResult]


def _result(name: str, rule: str, expected: str, observed: str, passed: bool) -> CheckResult:
    return CheckResult(name, rule, expected, observed, passed)


def short_encapsulation_buffer(factory: MiniportFactory) -> CheckResult:
    handle = _rig(factory, "full").set(Oid.OFFLOAD_ENCAPSULATION, _encapsulation()[:20])
    ok = handle.status in SHORT and _needed(handle) >= 28
    return _result(
        "short encapsulation buffer", "a short InformationBuffer fails with the bytes needed",
        "NDIS_STATUS_INVALID_LENGTH or _BUFFER_TOO_SHORT, BytesNeeded >= 28",
        f"{_status(handle)}, BytesNeeded {_needed(handle)}", ok,
    )  # fmt: skip


def _expect(
    factory: MiniportFactory, name: str, rule: str, data: bytes, status: NdisStatus, *,
    profile: str = "full", oid: int = Oid.OFFLOAD_ENCAPSULATION,
) -> CheckResult:  # fmt: skip
    """Send ``data`` as a set of ``oid`` on ``profile``; pass when it completes with ``status``."""
    handle = _rig(factory, profile).set(oid, data)
    return _result(name, rule, status.c_name, _status(handle), handle.status == status)


def _patched(offset: int, fmt: str, value: int) -> bytes:
    """A valid enable-802.3 ``NDIS_OFFLOAD_ENCAPSULATION`` with one field overwritten."""
    data = bytearray(_encapsulation())
    struct.pack_into(fmt, data, offset, value)
    return bytes(data)


def bad_header_type(factory: MiniportFactory) -> CheckResult:
    return _expect(
        factory, "bad Header.Type", "the header type must be NDIS_OBJECT_TYPE_OFFLOAD_"
        "ENCAPSULATION", _patched(0, "<B", o.NDIS_OBJECT_TYPE_OFFLOAD),
        NdisStatus.INVALID_PARAMETER,
    )  # fmt: skip


def bad_header_revision(factory: MiniportFactory) -> CheckResult:
    return _expect(
        factory, "bad Header.Revision", "revision 0 is no revision of NDIS_OFFLOAD_ENCAPSULATION",
        _patched(1, "<B", 0), NdisStatus.INVALID_PARAMETER,
    )  # fmt: skip


def bad_header_size(factory: MiniportFactory) -> CheckResult:
    return _expect(
        factory, "Header.Size too small", "Size must be at least NDIS_SIZEOF_..._REVISION_1 (28)",
        _patched(2, "<H", 20), NdisStatus.INVALID_PARAMETER,
    )  # fmt: skip


def bad_enabled_value(factory: MiniportFactory) -> CheckResult:
    return _expect(
        factory, "bad Enabled value", "Enabled is NDIS_OFFLOAD_SET_NO_CHANGE, _ON or _OFF",
        _patched(4, "<I", 7), NdisStatus.INVALID_PARAMETER,
    )  # fmt: skip


def supported_encapsulation_succeeds(factory: MiniportFactory) -> CheckResult:
    return _expect(
        factory, "supported encapsulation", "SUCCESS if any offload type supports the "
        "encapsulation", _encapsulation(), NdisStatus.SUCCESS,
    )  # fmt: skip


def unsupported_encapsulation_fails(factory: MiniportFactory) -> CheckResult:
    llc = NdisOffloadEncapsulationFamily.on(NdisEncapsulation.IEEE_LLC_SNAP_ROUTED, 8)
    return _expect(
        factory, "unsupported encapsulation", "INVALID_PARAMETER if no offload type supports it",
        _encapsulation(llc, llc), NdisStatus.INVALID_PARAMETER,
    )  # fmt: skip


def no_offload_not_supported(factory: MiniportFactory) -> CheckResult:
    return _expect(
        factory, "no task offload", "a miniport without task offload answers NOT_SUPPORTED",
        _encapsulation(), NdisStatus.NOT_SUPPORTED, profile="no-offload",
    )  # fmt: skip


def set_indicates_to_every_protocol(factory: MiniportFactory) -> CheckResult:
    rig = _rig(factory, "full", protocols=3)
    rig.set(Oid.OFFLOAD_ENCAPSULATION, _encapsulation())
    counts = rig.indications()
    return _result(
        "indication after set", "after the update, indicate NDIS_STATUS_TASK_OFFLOAD_CURRENT_"
        "CONFIG so every bound protocol learns the new state",
        "1 indication to each of 3 protocols", f"{counts}", counts == [1, 1, 1],
    )  # fmt: skip


def off_deactivates_family(factory: MiniportFactory) -> CheckResult:
    rig = _rig(factory, "full")
    rig.set(Oid.OFFLOAD_ENCAPSULATION, _encapsulation(OFF, KEEP))
    left = sorted(rig.features() & FAMILY_FEATURES[4])
    return _result(
        "OFF deactivates", "IPv4 OFF deactivates all checksum and LSO offloads of IPv4",
        "no IPv4 checksum/LSO/USO in the current config", ", ".join(left) or "none", not left,
    )  # fmt: skip


def on_activates_configured(factory: MiniportFactory) -> CheckResult:
    rig = _rig(factory, "full")
    rig.set(Oid.OFFLOAD_ENCAPSULATION, _encapsulation(OFF, OFF))
    rig.set(Oid.OFFLOAD_ENCAPSULATION, _encapsulation(ON, KEEP))
    wanted = get_profile("full").configured & FAMILY_FEATURES[4]
    missing = sorted(wanted - rig.features())
    return _result(
        "ON activates", "IPv4 ON activates every configured IPv4 offload again",
        "all configured IPv4 offloads on", "missing: " + (", ".join(missing) or "none"),
        not missing,
    )  # fmt: skip


def failed_set_changes_nothing(factory: MiniportFactory) -> CheckResult:
    rig = _rig(factory, "full")
    before = rig.features()
    llc = NdisOffloadEncapsulationFamily.on(NdisEncapsulation.IEEE_LLC_SNAP_ROUTED, 8)
    handle = rig.set(Oid.OFFLOAD_ENCAPSULATION, _encapsulation(OFF, llc))
    unchanged = rig.features() == before and rig.indications() == [0]
    return _result(
        "failed set is atomic", "a set that fails changes nothing and indicates nothing",
        "failure, config unchanged, 0 indications",
        f"{_status(handle)}, config {'unchanged' if rig.features() == before else 'changed'}, "
        f"{rig.indications()[0]} indications",
        handle.status != NdisStatus.SUCCESS and unchanged,
    )  # fmt: skip


def parameters_no_change_keeps(factory: MiniportFactory) -> CheckResult:
    rig = _rig(factory, "full")
    before = rig.features()
    params = NdisOffloadParameters(TCPIPv6Checksum=2)  # Tx on, Rx off; the rest NO_CHANGE
    handle = rig.set(Oid.TCP_OFFLOAD_PARAMETERS, params.encode())
    diff = sorted(before ^ rig.features())
    return _result(
        "NO_CHANGE keeps", "OID_TCP_OFFLOAD_PARAMETERS changes only what is not NO_CHANGE",
        "only tcp6_rx turned off", f"{_status(handle)}, changed: {', '.join(diff) or 'nothing'}",
        handle.status == NdisStatus.SUCCESS and diff == ["tcp6_rx"],
    )  # fmt: skip


def parameters_beyond_hardware_refused(factory: MiniportFactory) -> CheckResult:
    rig = _rig(factory, "checksum-only")
    before = rig.features()
    handle = rig.set(Oid.TCP_OFFLOAD_PARAMETERS, NdisOffloadParameters(LsoV2IPv4=2).encode())
    beyond = sorted(rig.features() - features_of(rig.stack.hardware_capabilities or NdisOffload()))
    ok = handle.status == NdisStatus.INVALID_DATA and rig.features() == before
    return _result(
        "never beyond hardware", "enabling an offload the hardware lacks is invalid "
        "NDIS_OFFLOAD_PARAMETERS contents (oid-tcp-offload-parameters): fails, nothing changes",
        "NDIS_STATUS_INVALID_DATA, config unchanged",
        f"{_status(handle)}, beyond hardware: {', '.join(beyond) or 'none'}", ok,
    )  # fmt: skip


def parameters_indicate(factory: MiniportFactory) -> CheckResult:
    rig = _rig(factory, "full", protocols=2)
    handle = rig.set(Oid.TCP_OFFLOAD_PARAMETERS, NdisOffloadParameters(LsoV2IPv6=1).encode())
    counts = rig.indications()
    return _result(
        "indication after parameters", "after an OID_TCP_OFFLOAD_PARAMETERS set, indicate the "
        "current configuration", "SUCCESS, 1 indication to each of 2 protocols",
        f"{_status(handle)}, {counts}", handle.status == NdisStatus.SUCCESS and counts == [1, 1],
    )  # fmt: skip


def short_parameters_buffer(factory: MiniportFactory) -> CheckResult:
    handle = _rig(factory, "full").set(Oid.TCP_OFFLOAD_PARAMETERS, bytes(12))
    ok = handle.status in SHORT and _needed(handle) >= o.NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_1
    return _result(
        "short parameters buffer", "a short NDIS_OFFLOAD_PARAMETERS fails with the bytes needed",
        "NDIS_STATUS_INVALID_LENGTH or _BUFFER_TOO_SHORT, BytesNeeded >= 20",
        f"{_status(handle)}, BytesNeeded {_needed(handle)}", ok,
    )  # fmt: skip


def unknown_oid(factory: MiniportFactory) -> CheckResult:
    return _expect(
        factory, "unknown OID", "an OID the miniport does not know is NDIS_STATUS_INVALID_OID",
        bytes(4), NdisStatus.INVALID_OID, oid=0x00010101,
    )  # fmt: skip


def config_within_hardware(factory: MiniportFactory) -> CheckResult:
    rig = _rig(factory, "checksum-only")
    rig.set(Oid.OFFLOAD_ENCAPSULATION, _encapsulation())
    rig.set(Oid.TCP_OFFLOAD_PARAMETERS, NdisOffloadParameters(LsoV2IPv4=2, RscIPv4=2).encode())
    hardware = features_of(rig.stack.hardware_capabilities or NdisOffload())
    beyond = sorted(rig.features() - hardware)
    return _result(
        "config within hardware", "the current configuration never exceeds the capabilities",
        "nothing beyond the hardware", ", ".join(beyond) or "nothing beyond", not beyond,
    )  # fmt: skip


CHECKS: tuple[Check, ...] = (
    short_encapsulation_buffer,
    bad_header_type,
    bad_header_revision,
    bad_header_size,
    bad_enabled_value,
    supported_encapsulation_succeeds,
    unsupported_encapsulation_fails,
    no_offload_not_supported,
    set_indicates_to_every_protocol,
    off_deactivates_family,
    on_activates_configured,
    failed_set_changes_nothing,
    config_within_hardware,
    parameters_no_change_keeps,
    parameters_beyond_hardware_refused,
    parameters_indicate,
    short_parameters_buffer,
    unknown_oid,
)
"""The battery, in SPEC order (an explicit registry)."""


def run_battery(factory: MiniportFactory) -> list[CheckResult]:
    """Run every check against fresh miniports from ``factory``. A check whose miniport
    raises is reported as failed with the exception, never raised."""
    results = []
    for check in CHECKS:
        try:
            results.append(check(factory))
        except Exception as err:  # the battery reports, it does not crash
            name = check.__name__.replace("_", " ")
            results.append(
                CheckResult(
                    name,
                    check.__doc__ or name,
                    "no exception",
                    f"{type(err).__name__}: {err}",
                    False,
                )  # fmt: skip
            )
    return results

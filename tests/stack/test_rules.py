"""One test per documented rule of the enable/disable flow (the NDIS pages cited in each
test: oid-offload-encapsulation, oid-tcp-offload-parameters, oid-tcp-offload-current-config,
ndis-status-task-offload-current-config), then one per README decision."""

from __future__ import annotations

import struct

import pytest
from harness import StackHarness

from ndis_offload.constants import objects as o
from ndis_offload.constants.offload import NdisEncapsulation, NdisOffloadSet
from ndis_offload.constants.oid import Oid
from ndis_offload.constants.status import NdisStatus
from ndis_offload.stack.features import (
    FAMILY_FEATURES,
    features_of,
    offload_types_without_802_3,
)
from ndis_offload.stack.filter import FailOidFilter, OffloadMaskFilter, RecordingFilter
from ndis_offload.stack.miniport import ReferenceMiniport
from ndis_offload.stack.profiles import NONCONFORMANT_LLC_ONLY, PROFILES, get_profile
from ndis_offload.stack.requests import RequestType
from ndis_offload.structs import NdisOffload, NdisOffloadEncapsulation, NdisOffloadParameters
from ndis_offload.structs.encapsulation import NdisOffloadEncapsulationFamily as Family

ON = Family.on(NdisEncapsulation.IEEE_802_3, 14)
LLC = Family.on(NdisEncapsulation.IEEE_LLC_SNAP_ROUTED, 14)


def enable_bytes(v4: Family = ON, v6: Family = ON) -> bytes:
    return NdisOffloadEncapsulation(IPv4=v4, IPv6=v6).encode()


def indications(h: StackHarness, name: str = "tcpip") -> list[NdisStatus]:
    return [i.StatusCode for i in h.binding(name).indications]


# --- oid-offload-encapsulation: the miniport's answer ---------------------------------------
def test_miniport_without_task_offload_returns_not_supported() -> None:
    h = StackHarness("no-offload")
    handle = h.binding().set(Oid.OFFLOAD_ENCAPSULATION, enable_bytes())
    assert handle.status == NdisStatus.NOT_SUPPORTED
    assert indications(h) == []


def test_miniport_without_task_offload_fabricates_no_config() -> None:
    """oid-tcp-offload-parameters: "If a miniport driver does not support this OID, the driver
    should return NDIS_STATUS_NOT_SUPPORTED"; oid-offload-encapsulation: the same for a
    miniport that "does not support offload and this OID". Neither set may indicate an
    NDIS_OFFLOAD, so OID_TCP_OFFLOAD_CURRENT_CONFIG stays NOT_SUPPORTED."""
    h = StackHarness("no-offload")
    for oid, data in (
        (Oid.TCP_OFFLOAD_PARAMETERS, NdisOffloadParameters().encode()),
        (Oid.TCP_OFFLOAD_PARAMETERS, NdisOffloadParameters(LsoV2IPv4=1).encode()),
        (Oid.OFFLOAD_ENCAPSULATION, enable_bytes()),
        (Oid.OFFLOAD_ENCAPSULATION, enable_bytes(Family.off(), Family.off())),
    ):
        assert h.binding().set(oid, data).status == NdisStatus.NOT_SUPPORTED
    assert indications(h) == []
    assert h.stack.config is None and h.stack.miniport_config is None
    query = h.binding().query(Oid.TCP_OFFLOAD_CURRENT_CONFIG)
    assert query.status == NdisStatus.NOT_SUPPORTED


def test_set_succeeds_when_any_offload_type_supports_the_encapsulation() -> None:
    h = StackHarness("checksum-only")  # only checksum supports 802.3: enough
    assert h.binding().set(Oid.OFFLOAD_ENCAPSULATION, enable_bytes()).status == NdisStatus.SUCCESS


def test_set_fails_invalid_parameter_when_no_offload_type_supports_the_encapsulation() -> None:
    """oid-offload-encapsulation: SUCCESS "if a miniport driver supports any offload type that
    supports the requested encapsulation type"; "otherwise ... NDIS_STATUS_INVALID_PARAMETER"."""
    h = StackHarness("checksum-only")  # 802.3 (with 802.1Q) only
    handle = h.binding().set(Oid.OFFLOAD_ENCAPSULATION, enable_bytes(LLC, LLC))
    assert handle.status == NdisStatus.INVALID_PARAMETER
    h = StackHarness("ethernet-llc-snap")  # checksum offload supports LLC/SNAP too
    ok = h.binding().set(Oid.OFFLOAD_ENCAPSULATION, enable_bytes(LLC, LLC))
    assert ok.status == NdisStatus.SUCCESS
    assert h.binding().set(Oid.OFFLOAD_ENCAPSULATION, enable_bytes()).status == NdisStatus.SUCCESS


def test_every_builtin_profile_but_the_negative_example_supports_802_3_everywhere() -> None:
    """oid-tcp-offload-current-config: "Miniport adapters must support Ethernet encapsulation
    for all of the types of task offload that they support." """
    for name, profile in PROFILES.items():
        caps = ReferenceMiniport(profile).hardware_capabilities()
        missing = offload_types_without_802_3(caps)
        if name == NONCONFORMANT_LLC_ONLY:
            assert missing == [
                "Checksum.IPv4Transmit", "Checksum.IPv4Receive", "Checksum.IPv6Transmit",
                "Checksum.IPv6Receive", "LsoV2.IPv4", "LsoV2.IPv6",
            ]  # fmt: skip
        else:
            assert missing == [], name


def test_failed_set_changes_nothing_and_indicates_nothing() -> None:
    h = StackHarness()
    before = h.miniport.current_config()
    h.binding().set(Oid.OFFLOAD_ENCAPSULATION, enable_bytes(LLC, LLC))
    assert h.miniport.current_config() == before
    assert indications(h) == []
    assert not h.miniport.receive_checksum_started


def test_off_deactivates_all_offloads_for_that_ip_version_only() -> None:
    h = StackHarness()
    handle = h.binding().set(
        Oid.OFFLOAD_ENCAPSULATION, enable_bytes(Family.off(), Family.no_change())
    )
    assert handle.status == NdisStatus.SUCCESS
    current = features_of(h.stack.config or NdisOffload())
    assert not current & FAMILY_FEATURES[4]
    assert FAMILY_FEATURES[6] & get_profile("full").configured <= current


def test_on_activates_all_configured_offloads_for_that_ip_version() -> None:
    h = StackHarness()
    h.binding().set(Oid.OFFLOAD_ENCAPSULATION, enable_bytes(Family.off(), Family.off()))
    h.binding().set(Oid.OFFLOAD_ENCAPSULATION, enable_bytes(ON, Family.no_change()))
    current = features_of(h.stack.config or NdisOffload())
    assert current & FAMILY_FEATURES[4] == get_profile("full").configured & FAMILY_FEATURES[4]
    assert not current & FAMILY_FEATURES[6]


def test_on_never_enables_what_the_inf_keywords_disabled() -> None:
    profile = get_profile("full").with_keywords({"*LsoV2IPv4": 0, "*TCPChecksumOffloadIPv4": 1})
    h = StackHarness(miniport=ReferenceMiniport(profile))
    h.binding().set(Oid.OFFLOAD_ENCAPSULATION, enable_bytes())
    current = features_of(h.stack.config or NdisOffload())
    assert "lsov2_4" not in current and "tcp4_rx" not in current and "tcp4_tx" in current


def test_no_change_keeps_the_family_as_it_is() -> None:
    h = StackHarness()
    h.binding().set(Oid.OFFLOAD_ENCAPSULATION, enable_bytes(Family.off(), Family.off()))
    nothing = enable_bytes(Family.no_change(), Family.no_change())
    assert h.binding().set(Oid.OFFLOAD_ENCAPSULATION, nothing).status == NdisStatus.SUCCESS
    assert not features_of(h.stack.config or NdisOffload()) - {"rsc4", "rsc6"}


def test_successful_set_indicates_current_config_to_every_bound_protocol() -> None:
    h = StackHarness(protocols=("tcpip", "tcpip6", "monitor"))
    h.binding().set(Oid.OFFLOAD_ENCAPSULATION, enable_bytes())
    for name in ("tcpip", "tcpip6", "monitor"):
        assert indications(h, name) == [NdisStatus.TASK_OFFLOAD_CURRENT_CONFIG]
    event = [e for e in h.stack.trace if e.kind == "indication"][0]
    assert event.to == ("tcpip", "tcpip6", "monitor")


def test_indication_precedes_the_completion_of_the_set() -> None:
    h = StackHarness()
    h.binding().set(Oid.OFFLOAD_ENCAPSULATION, enable_bytes())
    assert h.kinds()[-2:] == ["indication", "completion"]


def test_current_config_never_exceeds_hardware_capabilities() -> None:
    profile = get_profile("checksum-only").with_keywords({"*LsoV2IPv4": 1, "*RscIPv4": 1})
    h = StackHarness(miniport=ReferenceMiniport(profile))
    h.binding().set(Oid.OFFLOAD_ENCAPSULATION, enable_bytes())
    hw = features_of(h.stack.hardware_capabilities or NdisOffload())
    assert features_of(h.stack.config or NdisOffload()) <= hw
    assert "lsov2_4" not in hw


def test_receive_checksum_does_not_start_before_the_first_successful_set() -> None:
    h = StackHarness()
    assert not h.miniport.receive_checksum_started
    bad = bytearray(enable_bytes())
    bad[0] = 0x80
    h.binding().set(Oid.OFFLOAD_ENCAPSULATION, bytes(bad))
    assert not h.miniport.receive_checksum_started
    h.binding().set(Oid.OFFLOAD_ENCAPSULATION, enable_bytes())
    assert h.miniport.receive_checksum_started


# --- ddi:ndis_offload_encapsulation: validation of NDIS_OFFLOAD_ENCAPSULATION ---------------
def test_short_buffer_is_invalid_length_with_bytes_needed() -> None:
    h = StackHarness()
    handle = h.binding().set(Oid.OFFLOAD_ENCAPSULATION, enable_bytes()[:27])
    assert handle.completion is not None
    assert handle.status == NdisStatus.INVALID_LENGTH
    assert handle.completion.BytesNeeded == o.NDIS_SIZEOF_OFFLOAD_ENCAPSULATION_REVISION_1


def test_bad_header_type_is_invalid_parameter() -> None:
    data = bytearray(enable_bytes())
    data[0] = o.NDIS_OBJECT_TYPE_OFFLOAD
    assert StackHarness().binding().set(Oid.OFFLOAD_ENCAPSULATION, bytes(data)).status == (
        NdisStatus.INVALID_PARAMETER
    )


def test_bad_header_revision_is_invalid_parameter() -> None:
    data = bytearray(enable_bytes())
    data[1] = 0
    assert StackHarness().binding().set(Oid.OFFLOAD_ENCAPSULATION, bytes(data)).status == (
        NdisStatus.INVALID_PARAMETER
    )


def test_bad_header_size_is_invalid_parameter() -> None:
    data = bytearray(enable_bytes())
    struct.pack_into("<H", data, 2, 20)
    assert StackHarness().binding().set(Oid.OFFLOAD_ENCAPSULATION, bytes(data)).status == (
        NdisStatus.INVALID_PARAMETER
    )


def test_bad_enabled_value_is_invalid_parameter() -> None:
    data = bytearray(enable_bytes())
    struct.pack_into("<I", data, 4, 3)
    h = StackHarness()
    handle = h.binding().set(Oid.OFFLOAD_ENCAPSULATION, bytes(data))
    assert handle.status == NdisStatus.INVALID_PARAMETER
    assert handle.completion is not None and "IPv4.Enabled" in handle.completion.detail


def test_encapsulation_type_other_than_802_3_or_llc_snap_is_invalid_parameter() -> None:
    odd = Family(NdisOffloadSet.ON, NdisEncapsulation.IEEE_802_3_P_AND_Q, 18)
    h = StackHarness()
    assert h.binding().set(Oid.OFFLOAD_ENCAPSULATION, enable_bytes(odd, ON)).status == (
        NdisStatus.INVALID_PARAMETER
    )


# --- oid-offload-encapsulation: the protocol side and NDIS's own answers --------------------
def test_after_a_failed_set_the_protocol_uses_no_offload() -> None:
    h = StackHarness(protocols=())
    protocol = h.bind("atm", encapsulation=int(NdisEncapsulation.IEEE_LLC_SNAP_ROUTED))
    assert protocol.check_support("bind").supported is False
    protocol.enable()
    assert protocol.failed and protocol.usable == frozenset()


def test_protocol_checks_support_from_bind_parameters_or_by_query() -> None:
    h = StackHarness(protocols=("a", "b"))
    by_bind = h.protocols["a"].check_support("bind")
    by_query = h.protocols["b"].check_support("query")
    assert by_bind.supported and by_query.supported
    assert by_bind.encapsulations == by_query.encapsulations
    assert [e.what for e in h.stack.trace if e.kind == "request"] == [
        "query OID_TCP_OFFLOAD_CURRENT_CONFIG"
    ]


def test_protocol_tracks_usable_offloads_from_indications() -> None:
    h = StackHarness(protocols=("tcpip", "other"))
    tcpip, other = h.protocols["tcpip"], h.protocols["other"]
    tcpip.enable()
    other.enable(ipv4=True, ipv6=False)
    assert "tcp6_tx" in tcpip.usable and "tcp6_tx" not in other.usable
    tcpip.disable(ipv4=True, ipv6=False)  # the adapter's IPv4 offloads go off for everyone
    assert "tcp4_tx" not in other.usable and "tcp4_tx" not in tcpip.usable
    assert "tcp6_tx" in tcpip.usable


def test_enabling_one_ip_version_keeps_what_the_other_could_use() -> None:
    """ndis_offload_encapsulation (DDI): Enabled = NDIS_OFFLOAD_SET_NO_CHANGE "otherwise" --
    a family left at NO_CHANGE keeps its state, so the protocol keeps using it."""
    h = StackHarness()
    tcpip = h.protocols["tcpip"]
    tcpip.enable()
    before = tcpip.usable
    assert {"tcp4_tx", "tcp6_tx", "lsov2_6"} <= before
    assert tcpip.enable(ipv4=True, ipv6=False).status == NdisStatus.SUCCESS
    assert tcpip.usable == before
    tcpip.disable(ipv4=False, ipv6=True)
    assert "tcp6_tx" not in tcpip.usable and "tcp4_tx" in tcpip.usable


def test_protocol_uses_only_offload_types_that_support_its_encapsulation() -> None:
    """oid-offload-encapsulation: "a protocol driver can issue send requests by using only
    those offload types that the miniport adapter supports with the required encapsulation
    type" -- a successful set means *some* type supports it, not all of them."""
    llc, eth = NdisEncapsulation.IEEE_LLC_SNAP_ROUTED, NdisEncapsulation.IEEE_802_3
    profile = get_profile("full").with_encapsulations(
        {"checksum": int(eth), "lsov1": int(eth), "lsov2": int(eth | llc), "uso": int(eth)}
    )
    h = StackHarness(miniport=ReferenceMiniport(profile), protocols=())
    atm = h.bind("atm", encapsulation=int(llc), header_size=8)
    tcpip = h.bind("tcpip")
    assert atm.enable().status == NdisStatus.SUCCESS
    assert atm.usable == {"lsov2_4", "lsov2_6"}  # checksum offload is 802.3-only
    tcpip.enable()
    assert {"tcp4_tx", "lsov2_4", "uso6", "rsc4"} <= tcpip.usable


def test_encapsulation_query_fails_before_any_set() -> None:
    h = StackHarness()
    handle = h.binding().query(Oid.OFFLOAD_ENCAPSULATION)
    assert handle.status == NdisStatus.FAILURE


def test_encapsulation_query_is_answered_by_ndis_after_a_set() -> None:
    recorder = RecordingFilter()
    h = StackHarness(filters=[recorder])
    h.binding().set(Oid.OFFLOAD_ENCAPSULATION, enable_bytes(ON, Family.off()))
    h.binding().set(Oid.OFFLOAD_ENCAPSULATION, enable_bytes(Family.no_change(), ON))
    handle = h.binding().query(Oid.OFFLOAD_ENCAPSULATION)
    assert handle.completion is not None and handle.status == NdisStatus.SUCCESS
    value = NdisOffloadEncapsulation.decode(handle.completion.InformationBuffer)
    assert value.IPv4 == ON and value.IPv6 == ON  # NO_CHANGE kept IPv4 from the first set
    assert all(
        r.Oid != Oid.OFFLOAD_ENCAPSULATION or r.RequestType is RequestType.SET
        for r in recorder.requests
    )


def test_current_config_query_is_answered_by_ndis_from_its_cache() -> None:
    recorder = RecordingFilter()
    h = StackHarness(filters=[recorder])
    handle = h.binding().query(Oid.TCP_OFFLOAD_CURRENT_CONFIG)
    assert handle.completion is not None and handle.status == NdisStatus.SUCCESS
    assert NdisOffload.decode(handle.completion.InformationBuffer) == h.stack.config
    assert recorder.requests == []


def test_hardware_capabilities_query_is_answered_by_ndis() -> None:
    h = StackHarness()
    handle = h.binding().query(Oid.TCP_OFFLOAD_HARDWARE_CAPABILITIES)
    assert handle.completion is not None
    assert (
        NdisOffload.decode(handle.completion.InformationBuffer)
        == h.miniport.hardware_capabilities()
    )


def test_query_with_short_buffer_is_buffer_too_short_with_bytes_needed() -> None:
    h = StackHarness()
    handle = h.binding().query(Oid.TCP_OFFLOAD_CURRENT_CONFIG, length=100)
    assert handle.completion is not None
    assert handle.status == NdisStatus.BUFFER_TOO_SHORT
    assert handle.completion.BytesNeeded == o.NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_7


def test_set_of_a_query_only_oid_is_not_supported() -> None:
    h = StackHarness()
    for oid in (Oid.TCP_OFFLOAD_CURRENT_CONFIG, Oid.TCP_OFFLOAD_HARDWARE_CAPABILITIES):
        assert h.binding().set(oid, NdisOffload().encode()).status == NdisStatus.NOT_SUPPORTED


def test_unknown_oid_is_invalid_oid() -> None:
    h = StackHarness()
    assert h.binding().set(0x00010101, b"\0" * 4).status == NdisStatus.INVALID_OID


def test_bind_parameters_carry_the_cached_current_config() -> None:
    h = StackHarness(protocols=("first",))
    h.binding("first").set(Oid.OFFLOAD_ENCAPSULATION, enable_bytes(Family.off(), Family.off()))
    late = h.bind("late")
    assert late.bind_parameters is not None
    assert late.bind_parameters.DefaultOffloadConfiguration == h.stack.config
    assert h.stack.config == h.stack.miniport_config


# --- oid-tcp-offload-parameters ----------------------------------------------------------------
def test_parameters_set_indicates_current_config_after_success() -> None:
    h = StackHarness()
    params = NdisOffloadParameters(LsoV2IPv4=1)  # NDIS_OFFLOAD_PARAMETERS_LSOV2_DISABLED
    assert h.binding().set(Oid.TCP_OFFLOAD_PARAMETERS, params.encode()).status == NdisStatus.SUCCESS
    assert indications(h) == [NdisStatus.TASK_OFFLOAD_CURRENT_CONFIG]
    assert "lsov2_4" not in features_of(h.stack.config or NdisOffload())


def test_parameters_no_change_keeps_every_other_offload() -> None:
    h = StackHarness()
    before = features_of(h.stack.config or NdisOffload())
    h.binding().set(Oid.TCP_OFFLOAD_PARAMETERS, NdisOffloadParameters(TCPIPv6Checksum=2).encode())
    after = features_of(h.stack.config or NdisOffload())
    assert before - after == {"tcp6_rx"} and after <= before


def test_parameters_never_enable_beyond_hardware_and_are_atomic() -> None:
    """oid-tcp-offload-parameters: "If the contents of InformationBuffer are invalid, the
    miniport driver should return NDIS_STATUS_INVALID_DATA" (an offload the hardware lacks)."""
    h = StackHarness("checksum-only")
    before = h.miniport.current_config()
    params = NdisOffloadParameters(TCPIPv4Checksum=1, LsoV2IPv4=2)  # LSOv2 not in hardware
    handle = h.binding().set(Oid.TCP_OFFLOAD_PARAMETERS, params.encode())
    assert handle.status == NdisStatus.INVALID_DATA
    assert h.miniport.current_config() == before
    assert indications(h) == []


def _parameters_with(offset: int, fmt: str, value: int) -> bytes:
    data = bytearray(NdisOffloadParameters().encode())
    struct.pack_into(fmt, data, offset, value)
    return bytes(data)


@pytest.mark.parametrize(
    ("what", "data"),
    [
        ("Header.Type", _parameters_with(0, "<B", o.NDIS_OBJECT_TYPE_OFFLOAD)),
        ("Header.Revision", _parameters_with(1, "<B", 0)),
        ("Header.Size", _parameters_with(2, "<H", 12)),
        ("TCPIPv4Checksum", _parameters_with(5, "<B", 5)),  # 0..4 defined
        ("LsoV2IPv6", _parameters_with(12, "<B", 3)),  # 0..2 defined
        ("IPsecV1", _parameters_with(10, "<B", 2)),  # the adapter has no IPsec offload
        ("RscIPv4", _parameters_with(22, "<B", 9)),
    ],
)
def test_invalid_parameters_contents_are_invalid_data(what: str, data: bytes) -> None:
    """oid-tcp-offload-parameters: invalid NDIS_OFFLOAD_PARAMETERS contents ->
    NDIS_STATUS_INVALID_DATA (not INVALID_PARAMETER); nothing changes, nothing is indicated."""
    h = StackHarness()
    before = h.miniport.current_config()
    handle = h.binding().set(Oid.TCP_OFFLOAD_PARAMETERS, data)
    assert handle.status == NdisStatus.INVALID_DATA, handle.completion
    assert handle.completion is not None and what in handle.completion.detail
    assert h.miniport.current_config() == before and indications(h) == []


def test_parameters_short_buffer_is_invalid_length_with_bytes_needed() -> None:
    handle = StackHarness().binding().set(Oid.TCP_OFFLOAD_PARAMETERS, bytes(19))
    assert handle.completion is not None and handle.status == NdisStatus.INVALID_LENGTH
    assert handle.completion.BytesNeeded == o.NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_1


def test_parameters_revision_1_cannot_touch_rsc() -> None:
    h = StackHarness()
    rev1 = NdisOffloadParameters(Header=NdisOffloadParameters.header_for(1), LsoV2IPv6=1)
    assert h.binding().set(Oid.TCP_OFFLOAD_PARAMETERS, rev1.encode()).status == NdisStatus.SUCCESS
    assert "rsc4" in features_of(h.stack.config or NdisOffload())


def test_parameters_update_the_registry_unless_skip_registry_update() -> None:
    h = StackHarness()
    h.binding().set(Oid.TCP_OFFLOAD_PARAMETERS, NdisOffloadParameters(RscIPv4=1, Flags=1).encode())
    assert h.miniport.registry["*RscIPv4"] == 1
    h.binding().set(Oid.TCP_OFFLOAD_PARAMETERS, NdisOffloadParameters(RscIPv4=1).encode())
    assert h.miniport.registry["*RscIPv4"] == 0


def test_query_of_set_only_parameters_oid_is_not_supported() -> None:
    assert StackHarness().binding().query(Oid.TCP_OFFLOAD_PARAMETERS).status == (
        NdisStatus.NOT_SUPPORTED
    )


# --- NDIS mechanics: serialization, filters, the dispatch boundary ------------------------------
def test_requests_to_a_pending_miniport_are_serialized_in_order() -> None:
    h = StackHarness(pend_requests=True)
    first = h.protocols["tcpip"].disable()
    second = h.protocols["tcpip"].enable()
    statuses = [first.status, second.status]
    assert statuses == [NdisStatus.PENDING, NdisStatus.PENDING]
    assert len(h.miniport._pended) == 1  # the second waits in NDIS, not in the miniport
    assert h.miniport.complete_pending() == 1
    assert [first.status, second.status] == [NdisStatus.SUCCESS, NdisStatus.PENDING]
    assert h.miniport.complete_pending() == 1
    assert [first.status, second.status] == [NdisStatus.SUCCESS, NdisStatus.SUCCESS]
    assert [c.request.RequestId for c in h.protocols["tcpip"].completions] == [
        first.request.RequestId,
        second.request.RequestId,
    ]
    assert "tcp4_tx" in h.protocols["tcpip"].usable


def test_queries_ndis_owns_are_answered_while_a_set_is_pending() -> None:
    h = StackHarness(pend_requests=True)
    h.binding().set(Oid.OFFLOAD_ENCAPSULATION, enable_bytes())
    assert h.binding().query(Oid.TCP_OFFLOAD_CURRENT_CONFIG).status == NdisStatus.SUCCESS


def test_mask_filter_hides_an_offload_from_everything_above_it() -> None:
    h = StackHarness(filters=[OffloadMaskFilter({"lsov2_4", "lsov2_6"})])
    protocol = h.protocols["tcpip"]
    assert protocol.bind_parameters is not None
    assert "lsov2_4" not in features_of(
        protocol.bind_parameters.DefaultOffloadConfiguration or NdisOffload()
    )
    protocol.enable()
    assert "lsov2_4" not in protocol.usable and "tcp4_tx" in protocol.usable
    assert "lsov2_4" in features_of(h.stack.miniport_config or NdisOffload())


def test_filter_can_fail_a_request_before_the_miniport_sees_it() -> None:
    h = StackHarness(filters=[FailOidFilter(Oid.OFFLOAD_ENCAPSULATION, NdisStatus.RESOURCES)])
    assert h.binding().set(Oid.OFFLOAD_ENCAPSULATION, enable_bytes()).status == NdisStatus.RESOURCES
    assert not h.miniport.receive_checksum_started


def test_a_miniport_exception_becomes_a_failure_completion() -> None:
    class Broken(ReferenceMiniport):
        def set_offload_encapsulation(self, request):  # type: ignore[no-untyped-def]
            raise ZeroDivisionError("bug")

    h = StackHarness(miniport=Broken(get_profile("full")))
    handle = h.binding().set(Oid.OFFLOAD_ENCAPSULATION, enable_bytes())
    assert handle.status == NdisStatus.FAILURE
    assert handle.completion is not None and "ZeroDivisionError" in handle.completion.detail


def test_trace_records_every_request_completion_and_indication() -> None:
    h = StackHarness()
    h.binding().set(Oid.OFFLOAD_ENCAPSULATION, enable_bytes())
    kinds = h.kinds()
    assert kinds == ["bind", "request", "indication", "completion"]
    request = h.stack.trace[1].to_dict()
    assert request["payload"]["IPv4"]["HeaderSize"] == 14


# --- README "Decisions": one test per reading taken where the pages are silent --------------
def test_decision_a_set_that_changes_nothing_still_indicates() -> None:
    """oid-offload-encapsulation / oid-tcp-offload-parameters: "After the update, the
    miniport driver must report ..." -- read as after every successful set."""
    h = StackHarness()
    nothing = enable_bytes(Family.no_change(), Family.no_change())
    assert h.binding().set(Oid.OFFLOAD_ENCAPSULATION, nothing).status == NdisStatus.SUCCESS
    h.binding().set(Oid.TCP_OFFLOAD_PARAMETERS, NdisOffloadParameters().encode())
    assert indications(h) == [NdisStatus.TASK_OFFLOAD_CURRENT_CONFIG] * 2


def test_decision_encapsulation_off_leaves_rsc_to_the_parameters_oid() -> None:
    """querying-and-changing-rsc-state: RSC is changed with OID_TCP_OFFLOAD_PARAMETERS."""
    h = StackHarness()
    h.binding().set(Oid.OFFLOAD_ENCAPSULATION, enable_bytes(Family.off(), Family.off()))
    current = features_of(h.stack.config or NdisOffload())
    assert current == {"rsc4", "rsc6"}


@pytest.mark.parametrize("header_size", [0, 8, 14, 18, 22, 9999])
def test_decision_header_size_is_not_range_checked(header_size: int) -> None:
    """ddi:ndis/ns-ndis-_ndis_offload_encapsulation: HeaderSize is "the size of the Ethernet
    header that it uses" -- no range given; stored as the L2 header length."""
    h = StackHarness()
    on = Family.on(NdisEncapsulation.IEEE_802_3, header_size)
    assert h.binding().set(Oid.OFFLOAD_ENCAPSULATION, enable_bytes(on, on)).status == (
        NdisStatus.SUCCESS
    )
    assert h.miniport.header_size == {4: header_size, 6: header_size}


def test_decision_a_newer_revision_is_read_as_the_newest_known() -> None:
    """overview-of-ndis-support-for-header-versions: later revisions only append members."""
    h = StackHarness()
    data = bytearray(enable_bytes())
    data[1] = 2  # NDIS_OFFLOAD_ENCAPSULATION revision 2 (not defined yet)
    assert h.binding().set(Oid.OFFLOAD_ENCAPSULATION, bytes(data)).status == NdisStatus.SUCCESS
    params = bytearray(NdisOffloadParameters(LsoV2IPv6=1).encode() + bytes(8))
    struct.pack_into("<BH", params, 1, 9, len(params))  # revision 9, a longer Size
    assert h.binding().set(Oid.TCP_OFFLOAD_PARAMETERS, bytes(params)).status == (NdisStatus.SUCCESS)
    assert "lsov2_6" not in features_of(h.stack.config or NdisOffload())


def test_decision_fields_are_ignored_when_not_on() -> None:
    """ddi:ndis/ns-ndis-_ndis_offload_encapsulation: EncapsulationType and HeaderSize are
    zero when Enabled is not ON -- nonzero values are ignored, not rejected."""
    odd_off = Family(NdisOffloadSet.OFF, NdisEncapsulation.IEEE_802_3, 14)
    h = StackHarness()
    assert h.binding().set(Oid.OFFLOAD_ENCAPSULATION, enable_bytes(odd_off, ON)).status == (
        NdisStatus.SUCCESS
    )
    assert h.miniport.family_active == {4: False, 6: True}


def test_decision_unknown_flags_bits_are_ignored() -> None:
    """ddi:ntddndis/ns-ntddndis-_ndis_offload_parameters says Flags has no flags defined;
    ntddndis.h defines NDIS_OFFLOAD_PARAMETERS_SKIP_REGISTRY_UPDATE (1): bit 0 is honoured,
    other bits ignored."""
    h = StackHarness()
    params = NdisOffloadParameters(RscIPv4=1, Flags=0x6)
    assert h.binding().set(Oid.TCP_OFFLOAD_PARAMETERS, params.encode()).status == (
        NdisStatus.SUCCESS
    )
    assert h.miniport.registry["*RscIPv4"] == 0  # bit 0 clear: the keywords are rewritten


def test_decision_a_failed_parameters_set_leaves_the_keywords() -> None:
    """oid-tcp-offload-parameters: NDIS rewrites the keywords; the model only after success."""
    h = StackHarness("checksum-only")
    before = dict(h.miniport.registry)
    bad = NdisOffloadParameters(TCPIPv4Checksum=1, LsoV2IPv4=2)
    assert h.binding().set(Oid.TCP_OFFLOAD_PARAMETERS, bad.encode()).status == (
        NdisStatus.INVALID_DATA
    )
    assert h.miniport.registry == before


def test_decision_receive_checksum_waits_but_sends_may_use_offload_from_init() -> None:
    """oid-tcp-offload-current-config: "automatically enable all of the task offload
    capabilities during initialization"; oid-offload-encapsulation: receive checksum waits
    for the first set."""
    h = StackHarness()
    assert "tcp4_tx" in h.miniport.current_features
    assert not h.miniport.receive_checksum_started

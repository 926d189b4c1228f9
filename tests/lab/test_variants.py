"""Real-miniport variants (lab/variants.py): one test per documented difference from the
reference miniport, each driven through an :class:`NdisStack` (docs/real-miniports.md)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest

from ndis_offload.constants.offload import NdisEncapsulation, NdisOffloadSet
from ndis_offload.constants.oid import Oid
from ndis_offload.constants.status import NdisStatus
from ndis_offload.lab.variants import (
    SOURCE,
    SUMMARY,
    VARIANTS,
    GvnicMiniport,
    NetKvmMiniport,
    XennetMiniport,
    make_miniport,
)
from ndis_offload.stack.core import Binding, NdisStack, RequestHandle
from ndis_offload.stack.features import FAMILY_FEATURES
from ndis_offload.stack.miniport import ReferenceMiniport
from ndis_offload.stack.profiles import AdapterProfile, ProfileError, get_profile
from ndis_offload.stack.protocol import ProtocolDriver
from ndis_offload.structs.parameters import NdisOffloadParameters, UdpSegmentationParameters

ON, OFF, KEEP = int(NdisOffloadSet.ON), int(NdisOffloadSet.OFF), int(NdisOffloadSet.NO_CHANGE)
E8023 = int(NdisEncapsulation.IEEE_802_3)
PQ = int(NdisEncapsulation.IEEE_802_3_P_AND_Q)
S = NdisStatus
ALL_FAMILY = (FAMILY_FEATURES[4] | FAMILY_FEATURES[6]) - {"lsov1"}
"""Checksum, LSOv2 and USO of both families (LSOv1 is off in the "full" profile)."""


@dataclass
class Rig:
    stack: NdisStack
    miniport: ReferenceMiniport
    protocol: ProtocolDriver
    binding: Binding

    def set(self, oid: int, buffer: bytes) -> RequestHandle:
        return self.binding.set(oid, buffer)

    def encap(self, buffer: bytes) -> RequestHandle:
        return self.set(Oid.OFFLOAD_ENCAPSULATION, buffer)

    def params(self, buffer: bytes) -> RequestHandle:
        return self.set(Oid.TCP_OFFLOAD_PARAMETERS, buffer)

    @property
    def indications(self) -> int:
        return len(self.binding.indications)

    @property
    def features(self) -> frozenset[str]:
        return self.miniport.current_features


def rig(variant: str, profile: str | AdapterProfile = "full") -> Rig:
    prof = get_profile(profile) if isinstance(profile, str) else profile
    miniport = make_miniport(variant, prof)
    stack = NdisStack(miniport)
    protocol = ProtocolDriver("tcpip")
    binding = stack.bind(protocol)
    return Rig(stack, miniport, protocol, binding)


def encap(
    v4: tuple[int, int, int] = (ON, E8023, 14),
    v6: tuple[int, int, int] = (ON, E8023, 14),
    header: tuple[int, int, int] = (0xA8, 1, 28),
    length: int | None = None,
) -> bytes:
    """Raw NDIS_OFFLOAD_ENCAPSULATION bytes (any header, padded/truncated to ``length``)."""
    data = struct.pack("<BBH6I", *header, *v4, *v6)
    if length is None:
        return data
    return data[:length].ljust(length, b"\0")


def params(revision: int = 5, header: tuple[int, int, int] | None = None, **fields: Any) -> bytes:
    """NDIS_OFFLOAD_PARAMETERS of ``revision`` (optionally with a patched header)."""
    value = NdisOffloadParameters(Header=NdisOffloadParameters.header_for(revision), **fields)
    data = bytearray(value.encode())
    if header is not None:
        struct.pack_into("<BBH", data, 0, *header)
    return bytes(data)


def both(variant: str, profile: str | AdapterProfile = "full") -> tuple[Rig, Rig]:
    return rig("reference", profile), rig(variant, profile)


# -- registry ---------------------------------------------------------------------------------
def test_registry_lists_every_variant_with_summary_and_source() -> None:
    assert list(VARIANTS) == ["reference", "netkvm", "netvsp", "gvnic", "xennet"]
    for name, cls in VARIANTS.items():
        assert SUMMARY[name] and "\n" not in SUMMARY[name]
        assert SOURCE[name]
        assert cls.variant == name
        assert isinstance(make_miniport(name, get_profile("full")), cls)


def test_make_miniport_unknown_name_lists_known_names() -> None:
    with pytest.raises(ProfileError, match="netkvm, netvsp, gvnic, xennet"):
        make_miniport("e1000", get_profile("full"))


def test_make_miniport_passes_keywords() -> None:
    miniport = make_miniport("netkvm", get_profile("virtio-net"), pend_requests=True)
    assert miniport.pend_requests


def _knob_cell(value: object) -> str:
    if value is None:
        return "clamp"
    if isinstance(value, NdisStatus):
        return f"`{value.c_name.removeprefix('NDIS_STATUS_')}`"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def test_the_knob_table_in_docs_is_the_code() -> None:
    """docs/real-miniports.md lists every variant's Behaviour; keep it the code's."""
    doc = (Path(__file__).parents[2] / "docs" / "real-miniports.md").read_text()
    rows = [line.strip("|").split("|") for line in doc.splitlines() if line.startswith("| `")]
    table = {cells[0].strip().strip("`"): [c.strip() for c in cells[1:]] for cells in rows}
    columns = ["reference", "netkvm", "netvsp", "gvnic", "xennet"]
    knobs = [f.name for f in fields(VARIANTS["reference"].behaviour) if f.name != "ignored_fields"]
    assert sorted(table) == sorted(knobs)
    defaults = {"parameters_sizeof": "newest", "header_size": "any"}
    for knob in knobs:
        for column, cell in zip(columns, table[knob], strict=True):
            value = getattr(VARIANTS[column].behaviour, knob)
            expected = defaults[knob] if value is None and knob in defaults else _knob_cell(value)
            assert cell == expected, (knob, column)


# -- the documented happy path on every variant ---------------------------------------------
HAPPY = {
    # (enable status, indications after enable, disable status, indications after disable,
    #  family features still current after OFF/OFF)
    "reference": (S.SUCCESS, 1, S.SUCCESS, 2, frozenset[str]()),
    # NetKVM: no indication, reported config untouched by the encapsulation set.
    "netkvm": (S.SUCCESS, 0, S.SUCCESS, 0, ALL_FAMILY),
    # netvsp: a pure validator: nothing stored, nothing indicated.
    "netvsp": (S.SUCCESS, 0, S.SUCCESS, 0, ALL_FAMILY),
    # gVNIC: ON changes nothing on an all-on adapter (no indication); OFF switches only
    # TCP/UDP checksum + LSOv2, leaving the IPv4 header checksum and USO on.
    "gvnic": (S.SUCCESS, 0, S.SUCCESS, 1, frozenset({"ip4_tx", "ip4_rx", "uso4", "uso6"})),
    # xennet: both sets rebuild from the registry (OFF disables nothing) and indicate.
    "xennet": (S.SUCCESS, 1, S.SUCCESS, 2, ALL_FAMILY),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_documented_happy_path_enable_then_disable(variant: str) -> None:
    r = rig(variant)
    on = r.protocol.enable()
    after_on = r.indications
    off = r.protocol.disable()
    family = ALL_FAMILY & r.features
    outcome = (on.status, after_on, off.status, r.indications, frozenset(family))
    assert outcome == HAPPY[variant], f"{variant} differs from the reference: {outcome}"
    assert r.stack.encapsulation is not None  # every variant's set succeeded


# -- NetKVM -------------------------------------------------------------------------------------
def test_netkvm_short_encapsulation_buffer_is_buffer_too_short_with_bytes_needed() -> None:
    ref, kvm = both("netkvm")
    assert ref.encap(encap(length=20)).status == S.INVALID_LENGTH
    done = kvm.encap(encap(length=20)).completion
    assert done is not None
    assert done.status == S.BUFFER_TOO_SHORT and done.BytesNeeded == 28


def test_netkvm_rejects_header_size_larger_than_28() -> None:
    ref, kvm = both("netkvm")
    data = encap(header=(0xA8, 1, 32), length=32)
    assert ref.encap(data).status == S.SUCCESS
    assert kvm.encap(data).status == S.INVALID_PARAMETER


def test_netkvm_accepts_encapsulation_type_as_bit_mask() -> None:
    ref, kvm = both("netkvm")
    data = encap((ON, E8023 | PQ, 14), (ON, E8023 | PQ, 14))
    assert ref.encap(data).status == S.INVALID_PARAMETER
    assert kvm.encap(data).status == S.SUCCESS


def test_netkvm_rejects_no_change_in_enabled() -> None:
    ref, kvm = both("netkvm")
    data = encap((ON, E8023, 14), (KEEP, 0, 0))
    assert ref.encap(data).status == S.SUCCESS
    assert kvm.encap(data).status == S.INVALID_PARAMETER


def test_netkvm_rejects_both_on_with_different_header_sizes() -> None:
    ref, kvm = both("netkvm")
    data = encap((ON, E8023, 14), (ON, E8023, 18))
    assert ref.encap(data).status == S.SUCCESS
    assert kvm.encap(data).status == S.INVALID_PARAMETER


def test_netkvm_encapsulation_keeps_config_stores_header_size_and_sends_no_indication() -> None:
    kvm = rig("netkvm")
    before = kvm.features
    assert kvm.encap(encap((ON, E8023, 18), (OFF, 0, 0))).status == S.SUCCESS
    m = kvm.miniport
    assert isinstance(m, NetKvmMiniport)
    assert m.ip_header_offset == 18 and m.tx_offload_enabled == {4: True, 6: False}
    assert kvm.features == before and kvm.indications == 0


def test_netkvm_short_parameters_is_buffer_too_short() -> None:
    ref, kvm = both("netkvm")
    assert ref.params(params(1)[:16]).status == S.INVALID_LENGTH
    done = kvm.params(params(1)[:16]).completion
    assert done is not None and done.status == S.BUFFER_TOO_SHORT and done.BytesNeeded == 20


def test_netkvm_parameters_header_is_not_validated() -> None:
    ref, kvm = both("netkvm")
    data = params(1, header=(0x00, 1, 20), TCPIPv4Checksum=1)
    assert ref.params(data).status != S.SUCCESS
    assert kvm.params(data).status == S.SUCCESS
    assert not {"tcp4_tx", "tcp4_rx"} & kvm.features


def test_netkvm_out_of_range_checksum_value_is_no_change() -> None:
    ref, kvm = both("netkvm")
    data = params(1, TCPIPv4Checksum=9, LsoV2IPv6=7)
    assert ref.params(data).status == S.INVALID_DATA
    before = kvm.features
    assert kvm.params(data).status == S.SUCCESS
    assert kvm.features == before


def test_netkvm_rsc_is_applied_before_validation_non_atomic() -> None:
    ref, kvm = both("netkvm")
    bad = params(3, RscIPv4=1, LsoV1=2, LsoV2IPv4=1)  # contradiction fails after RSC
    assert ref.params(bad).status == S.SUCCESS  # reference: no contradiction rule
    assert kvm.params(bad).status == S.INVALID_PARAMETER
    assert "rsc4" not in kvm.features  # RSC change survived the failure
    assert kvm.indications == 0


def test_netkvm_rsc_is_atomic_in_reference() -> None:
    ref = rig("reference", "checksum-only")
    bad = params(3, TCPIPv4Checksum=1, RscIPv4=2)
    before = ref.features
    assert ref.params(bad).status == S.INVALID_DATA
    assert ref.features == before


def test_netkvm_unsupported_rsc_is_not_supported() -> None:
    ref, kvm = both("netkvm", "hyperv-netvsc")
    data = params(3, RscIPv4=2)
    assert ref.params(data).status == S.INVALID_DATA
    assert kvm.params(data).status == S.NOT_SUPPORTED


def test_netkvm_rsc_ignored_below_revision_3() -> None:
    kvm = rig("netkvm", "hyperv-netvsc")
    # Linux netvsc: Revision 3 claimed with a revision-2 Size (22): RSC fields read as zero.
    data = params(2, header=(0x80, 3, 22))
    assert kvm.params(data).status == S.SUCCESS


def test_netkvm_rejects_lsov1_lsov2ipv4_contradiction() -> None:
    ref, kvm = both("netkvm")
    data = params(1, LsoV1=2, LsoV2IPv4=1)
    assert ref.params(data).status == S.SUCCESS
    assert kvm.params(data).status == S.INVALID_PARAMETER


def test_netkvm_uso_only_with_revision_5_and_size_34() -> None:
    ref, kvm = both("netkvm")
    short = params(5, header=(0x80, 5, 32), UdpSegmentation=_uso(1))
    assert ref.params(short).status != S.SUCCESS  # Size < revision 5's size
    assert kvm.params(short).status == S.SUCCESS
    assert "uso4" in kvm.features  # gated off: USO untouched
    assert kvm.params(params(5, UdpSegmentation=_uso(1))).status == S.SUCCESS
    assert "uso4" not in kvm.features


def test_netkvm_ignores_ipsec_and_connection_fields() -> None:
    ref, kvm = both("netkvm")
    data = params(1, IPsecV1=2, TcpConnectionIPv4=2)
    assert ref.params(data).status == S.INVALID_DATA
    assert kvm.params(data).status == S.SUCCESS


def _uso(ipv4: int, ipv6: int = 0) -> UdpSegmentationParameters:
    return UdpSegmentationParameters(ipv4, ipv6)


# -- netvsp -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data",
    [
        encap(length=20),  # shorter than Size
        encap(header=(0xA7, 1, 28)),  # wrong Type
        encap(header=(0xA8, 0, 28)),  # Revision 0
        encap(header=(0xA8, 1, 24)),  # Size < 28
        encap(header=(0xA8, 1, 40), length=32),  # Size > sent length
    ],
)
def test_netvsp_bad_encapsulation_header_or_length_is_invalid_data(data: bytes) -> None:
    ref, vsp = both("netvsp")
    assert ref.encap(data).status != S.INVALID_DATA
    assert vsp.encap(data).status == S.INVALID_DATA


def test_netvsp_on_requires_exactly_802_3_and_header_size_14() -> None:
    ref, vsp = both("netvsp")
    mask = encap((ON, E8023 | PQ, 14), (OFF, 0, 0))
    size = encap((ON, E8023, 18), (OFF, 0, 0))
    assert ref.encap(mask).status == S.INVALID_PARAMETER
    assert ref.encap(size).status == S.SUCCESS
    assert vsp.encap(mask).status == S.NOT_SUPPORTED
    assert vsp.encap(size).status == S.NOT_SUPPORTED


def test_netvsp_encapsulation_stores_nothing_and_does_not_indicate() -> None:
    vsp = rig("netvsp")
    before = vsp.features
    assert vsp.encap(encap((OFF, 0, 0), (OFF, 0, 0))).status == S.SUCCESS
    assert vsp.encap(encap((OFF, 0, 0), (ON, E8023, 14))).status == S.SUCCESS
    assert vsp.features == before and vsp.indications == 0
    assert vsp.miniport.header_size == {4: 0, 6: 0}


def test_netvsp_lsov1_enabled_is_not_supported() -> None:
    ref, vsp = both("netvsp")
    assert ref.params(params(1, LsoV1=2)).status == S.SUCCESS
    assert vsp.params(params(1, LsoV1=2)).status == S.NOT_SUPPORTED


def test_netvsp_unsupported_request_is_clamped_without_error() -> None:
    ref, vsp = both("netvsp", "checksum-only")
    data = params(1, LsoV2IPv4=2)
    assert ref.params(data).status == S.INVALID_DATA
    assert vsp.params(data).status == S.SUCCESS
    assert "lsov2_4" not in vsp.features
    assert vsp.indications == 1  # modelled: indicated right after success


def test_netvsp_ignores_rsc_uso_and_ipsec() -> None:
    ref, vsp = both("netvsp")
    data = params(5, RscIPv4=1, IPsecV1=2, UdpSegmentation=_uso(1))
    assert ref.params(data).status == S.INVALID_DATA
    assert vsp.params(data).status == S.SUCCESS
    assert {"rsc4", "uso4"} <= vsp.features


def test_netvsp_bad_parameters_header_is_invalid_data() -> None:
    ref, vsp = both("netvsp")
    data = params(1, header=(0xA7, 1, 20))
    # the reference agrees here: invalid NDIS_OFFLOAD_PARAMETERS contents are INVALID_DATA
    # (oid-tcp-offload-parameters)
    assert ref.params(data).status == S.INVALID_DATA
    assert vsp.params(data).status == S.INVALID_DATA


def test_netvsp_out_of_range_checksum_is_no_change() -> None:
    ref, vsp = both("netvsp")
    data = params(1, TCPIPv4Checksum=9)
    assert ref.params(data).status == S.INVALID_DATA
    assert vsp.params(data).status == S.SUCCESS


# -- gVNIC ----------------------------------------------------------------------------------------
def test_gvnic_longer_encapsulation_buffer_is_buffer_overflow() -> None:
    ref, gv = both("gvnic")
    assert ref.encap(encap(length=32)).status == S.SUCCESS
    done = gv.encap(encap(length=32)).completion
    assert done is not None and done.status == S.BUFFER_OVERFLOW and done.BytesNeeded == 28


def test_gvnic_short_encapsulation_buffer_is_buffer_too_short() -> None:
    ref, gv = both("gvnic")
    assert ref.encap(encap(length=24)).status == S.INVALID_LENGTH
    done = gv.encap(encap(length=24)).completion
    assert done is not None and done.status == S.BUFFER_TOO_SHORT and done.BytesNeeded == 28


def test_gvnic_parameters_must_be_exactly_sizeof() -> None:
    ref, gv = both("gvnic")
    assert ref.params(params(1)).status == S.SUCCESS
    short = gv.params(params(1)).completion
    assert short is not None and short.status == S.BUFFER_TOO_SHORT
    assert short.BytesNeeded == GvnicMiniport.parameters_sizeof == 32
    assert gv.params(params(5)).status == S.BUFFER_OVERFLOW
    assert gv.params(params(4)).status == S.SUCCESS


def test_gvnic_does_not_check_encapsulation_header_size() -> None:
    ref, gv = both("gvnic")
    data = encap(header=(0xA8, 1, 0))
    assert ref.encap(data).status != S.SUCCESS
    assert gv.encap(data).status == S.SUCCESS


def test_gvnic_accepts_encapsulation_type_as_bit_mask() -> None:
    ref, gv = both("gvnic")
    data = encap((ON, E8023 | PQ, 14), (ON, E8023 | PQ, 14))
    assert ref.encap(data).status == S.INVALID_PARAMETER
    assert gv.encap(data).status == S.SUCCESS


def test_gvnic_on_is_validated_against_hardware() -> None:
    ref, gv = both("gvnic", "checksum-only")
    assert ref.encap(encap()).status == S.SUCCESS
    assert gv.encap(encap()).status == S.INVALID_PARAMETER  # LSO would be turned on
    assert gv.indications == 0


def test_gvnic_on_turns_on_checksum_and_lso_even_if_configured_off() -> None:
    profile = get_profile("full").with_keywords({"*TCPChecksumOffloadIPv4": 0})
    ref, gv = both("gvnic", profile)
    ref.encap(encap())
    gv.encap(encap())
    assert "tcp4_tx" not in ref.features
    assert {"tcp4_tx", "tcp4_rx"} <= gv.features


def test_gvnic_off_leaves_ipv4_header_checksum_and_uso_on() -> None:
    ref, gv = both("gvnic")
    off = encap((OFF, 0, 0), (OFF, 0, 0))
    ref.encap(off)
    gv.encap(off)
    assert not {"ip4_tx", "uso4"} & ref.features
    assert {"ip4_tx", "ip4_rx", "uso4", "uso6"} <= gv.features
    assert not {"tcp4_tx", "udp6_rx", "lsov2_4", "lsov2_6"} & gv.features


def test_gvnic_indicates_only_if_changed() -> None:
    ref, gv = both("gvnic")
    ref.encap(encap())
    gv.encap(encap())
    assert (ref.indications, gv.indications) == (1, 0)
    ref.params(params(4))
    gv.params(params(4))
    assert (ref.indications, gv.indications) == (2, 0)
    gv.params(params(4, TCPIPv6Checksum=1))
    assert gv.indications == 1


def test_gvnic_ors_lsov1_and_lsov2ipv4() -> None:
    ref, gv = both("gvnic")
    data = params(4, LsoV1=2, LsoV2IPv4=1)
    assert ref.params(data).status == S.SUCCESS and "lsov2_4" not in ref.features
    assert gv.params(data).status == S.SUCCESS and "lsov2_4" in gv.features
    assert "lsov1" not in gv.features


def test_gvnic_parameters_are_atomic_and_out_of_range_is_no_change() -> None:
    gv = rig("gvnic", "checksum-only")
    before = gv.features
    assert gv.params(params(4, TCPIPv4Checksum=1, LsoV2IPv6=2)).status == S.INVALID_PARAMETER
    assert gv.features == before
    assert gv.params(params(4, TCPIPv4Checksum=9)).status == S.SUCCESS
    assert gv.features == before and gv.indications == 0


def test_gvnic_stores_header_size_of_both_families_even_when_off() -> None:
    ref, gv = both("gvnic")
    data = encap((ON, E8023, 18), (OFF, 0, 22))
    ref.encap(data)
    gv.encap(data)
    assert ref.miniport.header_size == {4: 18, 6: 0}
    assert gv.miniport.header_size == {4: 18, 6: 22}


# -- xennet ---------------------------------------------------------------------------------------
def test_xennet_short_offload_parameters_is_invalid_length() -> None:
    xen = rig("xennet")
    done = xen.params(params(1)[:19]).completion
    assert done is not None and done.status == S.INVALID_LENGTH
    assert done.BytesNeeded == XennetMiniport.parameters_sizeof == 20


def test_xennet_short_encapsulation_is_success_and_no_op() -> None:
    ref, xen = both("xennet")
    assert ref.encap(encap(length=20)).status == S.INVALID_LENGTH
    before = xen.features
    assert xen.encap(encap(length=20)).status == S.SUCCESS
    assert xen.features == before and xen.indications == 0
    assert xen.protocol.enabled_families == set()  # raw set: the protocol enabled nothing


def test_xennet_on_without_exact_802_3_fails_but_still_indicates() -> None:
    ref, xen = both("xennet")
    data = encap((ON, E8023 | PQ, 14), (ON, E8023, 14))
    assert ref.encap(data).status == S.INVALID_PARAMETER and ref.indications == 0
    assert xen.encap(data).status == S.INVALID_PARAMETER
    assert xen.indications == 1


def test_xennet_encapsulation_resets_to_registry_and_off_disables_nothing() -> None:
    xen = rig("xennet")
    assert xen.params(params(1, TCPIPv4Checksum=1, UDPIPv4Checksum=4)).status == S.SUCCESS
    assert "tcp4_tx" not in xen.features
    assert xen.encap(encap((OFF, 0, 0), (OFF, 0, 0))).status == S.SUCCESS
    assert {"tcp4_tx", "tcp4_rx", "lsov2_4", "udp6_tx"} <= xen.features  # registry values back


@pytest.mark.parametrize("field", ["IPsecV1", "LsoV1", "TcpConnectionIPv4", "TcpConnectionIPv6"])
def test_xennet_rejects_ipsec_lsov1_and_connection_changes(field: str) -> None:
    ref, xen = both("xennet")
    fields: dict[str, Any] = {field: 1}
    data = params(1, **fields)
    assert ref.params(data).status == S.SUCCESS  # DISABLED is fine in the reference
    assert xen.params(data).status == S.INVALID_PARAMETER


def test_xennet_lsov2_without_backend_lso_rejected_even_when_disabling() -> None:
    ref, xen = both("xennet", "checksum-only")
    data = params(1, LsoV2IPv4=1)
    assert ref.params(data).status == S.SUCCESS
    assert xen.params(data).status == S.INVALID_PARAMETER


def test_xennet_checksum_no_change_is_treated_as_disable() -> None:
    ref, xen = both("xennet")
    data = params(1, TCPIPv4Checksum=4)  # every other checksum field NO_CHANGE
    assert ref.params(data).status == S.SUCCESS and "udp6_tx" in ref.features
    assert xen.params(data).status == S.SUCCESS
    assert {"tcp4_tx", "tcp4_rx"} <= xen.features
    assert not {"ip4_tx", "udp4_rx", "tcp6_tx", "udp6_rx"} & xen.features


def test_xennet_indicates_parameters_only_if_changed() -> None:
    ref, xen = both("xennet")
    all_on: dict[str, Any] = dict.fromkeys(
        ["IPv4Checksum", "TCPIPv4Checksum", "UDPIPv4Checksum", "TCPIPv6Checksum"], 4
    )
    data = params(1, UDPIPv6Checksum=4, **all_on)
    assert ref.params(data).status == S.SUCCESS and ref.indications == 1
    assert xen.params(data).status == S.SUCCESS and xen.indications == 0


def test_xennet_reads_only_revision_1_fields() -> None:
    ref, xen = both("xennet")
    all_on: dict[str, Any] = dict.fromkeys(
        ["IPv4Checksum", "TCPIPv4Checksum", "UDPIPv4Checksum", "TCPIPv6Checksum"], 4
    )
    data = params(3, UDPIPv6Checksum=4, RscIPv4=1, **all_on)
    assert ref.params(data).status == S.SUCCESS and "rsc4" not in ref.features
    assert xen.params(data).status == S.SUCCESS and "rsc4" in xen.features


def test_variants_do_not_leak_state_between_instances() -> None:
    a, b = rig("netkvm"), rig("netkvm")
    a.encap(encap((ON, E8023, 22), (OFF, 0, 0)))
    assert isinstance(b.miniport, NetKvmMiniport) and b.miniport.ip_header_offset == 0

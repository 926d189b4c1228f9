"""The one feature table: every path it names exists, its values are the documented ones,
and ``build_offload`` / ``features_of`` are inverses through it."""

from __future__ import annotations

from functools import reduce

from hypothesis import given
from hypothesis import strategies as st

from ndis_offload.constants.offload import NdisEncapsulation
from ndis_offload.stack.features import (
    FAMILY_FEATURES,
    FEATURE_TABLE,
    FEATURES,
    KEYWORDS,
    Feature,
    OffloadLimits,
    build_offload,
    feature_encapsulations,
    features_of,
    parameter_request,
)
from ndis_offload.structs import NdisOffload, NdisOffloadParameters
from ndis_offload.structs.parameters import UdpSegmentationParameters


def test_every_path_in_the_table_exists_in_the_structures() -> None:
    offload, params = NdisOffload(), NdisOffloadParameters()
    for row in FEATURE_TABLE.values():
        part = reduce(getattr, row.part.split("."), offload)
        for member in (row.member, *row.also):
            assert hasattr(part, member), (row.feature, member)
        assert isinstance(reduce(getattr, row.parameters_field.split("."), params), int)


def test_parameters_values_are_the_documented_ones() -> None:
    """ddi:ntddndis/ns-ntddndis-_ndis_offload_parameters: checksum fields take TX_RX_DISABLED
    (1), TX_ENABLED_RX_DISABLED (2), RX_ENABLED_TX_DISABLED (3), TX_RX_ENABLED (4); LSO, RSC
    and USO fields *_DISABLED (1) / *_ENABLED (2); 0 is NO_CHANGE."""
    for row in FEATURE_TABLE.values():
        if row.offload_type == "checksum":
            tx = row.direction == "Tx"
            assert row.parameters_on == ({2, 4} if tx else {3, 4})
            assert row.parameters_off == ({1, 3} if tx else {1, 2})
        else:
            assert row.parameters_on == {2} and row.parameters_off == {1}


def test_keywords_are_the_standardized_ones() -> None:
    """using-registry-values-to-enable-and-disable-task-offloading: checksum keywords 0..3
    (1 Tx, 2 Rx, 3 both), LSO/RSC/USO keywords 0/1."""
    assert set(KEYWORDS) == {
        "*IPChecksumOffloadIPv4", "*TCPChecksumOffloadIPv4", "*TCPChecksumOffloadIPv6",
        "*UDPChecksumOffloadIPv4", "*UDPChecksumOffloadIPv6", "*LsoV1IPv4", "*LsoV2IPv4",
        "*LsoV2IPv6", "*RscIPv4", "*RscIPv6", "*UsoIPv4", "*UsoIPv6",
    }  # fmt: skip
    for name, features in KEYWORDS.items():
        rows = [FEATURE_TABLE[f] for f in features]
        if "Checksum" in name:
            assert sorted((r.direction, r.keyword_bit) for r in rows) == [("Rx", 2), ("Tx", 1)]
            assert {r.keyword_max for r in rows} == {3}
        else:
            assert [(r.keyword_bit, r.keyword_max) for r in rows] == [(1, 1)]


def test_encapsulation_on_off_covers_checksum_lso_and_uso_not_rsc() -> None:
    assert FAMILY_FEATURES[4] == set(FEATURES[:6]) | {"lsov1", "lsov2_4", "uso4"}
    assert FAMILY_FEATURES[6] == set(FEATURES[6:10]) | {"lsov2_6", "uso6"}


REVISION_OF_PART = {"UdpSegmentation": 6, "Rsc": 3}


@given(
    st.frozensets(st.sampled_from(FEATURES)),
    st.sampled_from([1, 2, 3, 4, 5, 6, 7]),
    st.sampled_from([0x2, 0x6, 0x12, 0x10]),
)
def test_build_offload_and_features_of_are_inverses(
    features: frozenset[Feature], revision: int, mask: int
) -> None:
    limits = OffloadLimits(revision=revision, encapsulations=dict.fromkeys(
        ("checksum", "lsov1", "lsov2", "uso"), mask))  # fmt: skip
    offload = build_offload(features, limits)
    kept = {
        f for f in features
        if REVISION_OF_PART.get(FEATURE_TABLE[f].part.split(".")[0], 1) <= revision
    }  # fmt: skip
    assert features_of(offload) == kept
    assert NdisOffload.decode(offload.encode()) == offload
    masks = feature_encapsulations(offload)
    for feature in kept:
        expected = 0x2 if FEATURE_TABLE[feature].offload_type == "rsc" else mask
        assert masks[feature] == expected


def test_parameter_request_reads_every_field_through_the_table() -> None:
    assert parameter_request(NdisOffloadParameters()).on == frozenset()
    p = NdisOffloadParameters(
        TCPIPv4Checksum=4, UDPIPv6Checksum=3, LsoV2IPv6=1, RscIPv4=2,
        UdpSegmentation=UdpSegmentationParameters(IPv4=2),
    )  # fmt: skip
    asked = parameter_request(p)
    assert asked.on == {"tcp4_tx", "tcp4_rx", "udp6_rx", "rsc4", "uso4"}
    assert asked.off == {"udp6_tx", "lsov2_6"}
    rev1 = NdisOffloadParameters(Header=NdisOffloadParameters.header_for(1), RscIPv4=2)
    assert parameter_request(rev1).on == frozenset()  # RSC needs revision 3
    assert parameter_request(NdisOffloadParameters(LsoV1=7)).undefined == {Feature.LSOV1: 7}


def test_a_checksum_part_is_on_only_with_an_encapsulation() -> None:
    offload = build_offload(frozenset({Feature.TCP4_TX}), OffloadLimits())
    assert features_of(offload) == {"tcp4_tx"}
    cleared = offload.evolve(
        Checksum=offload.Checksum.evolve(
            IPv4Transmit=offload.Checksum.IPv4Transmit.evolve(
                Encapsulation=int(NdisEncapsulation.NOT_SUPPORTED)
            )
        )
    )
    assert features_of(cleared) == frozenset()

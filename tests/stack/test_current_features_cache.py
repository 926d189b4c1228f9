"""``ReferenceMiniport.current_features`` is cached: every writer of its inputs
(``hardware``, ``configured``, ``family_active``: OID sets of the reference and of every
variant, direct writes as planted-defect miniports make them) must be followed by it.

Oracle: the documented rule recomputed from the inputs after each step (``oid-offload-
encapsulation``: OFF deactivates the family's checksum / LSO / USO offloads;
``oid-tcp-offload-parameters``: the configured set), against the cached value.
"""

from __future__ import annotations

from typing import Any

from harness import StackHarness
from hypothesis import given, settings
from hypothesis import strategies as st

from ndis_offload.constants.offload import NdisEncapsulation
from ndis_offload.constants.oid import Oid
from ndis_offload.lab.variants import VARIANTS, make_miniport
from ndis_offload.stack.features import FAMILY_FEATURES, FEATURES
from ndis_offload.stack.miniport import ReferenceMiniport
from ndis_offload.stack.profiles import PROFILES, get_profile
from ndis_offload.structs import NdisOffloadEncapsulation, NdisOffloadParameters
from ndis_offload.structs.encapsulation import NdisOffloadEncapsulationFamily as Family


def uncached(m: ReferenceMiniport) -> frozenset[str]:
    out = m.configured & m.hardware
    for family, active in m.family_active.items():
        if not active:
            out -= FAMILY_FEATURES[family]
    return out


FEATURE_SETS = st.frozensets(st.sampled_from(sorted(FEATURES)))
FAMILIES = st.sampled_from(
    [
        Family.on(NdisEncapsulation.IEEE_802_3, 14),
        Family.on(NdisEncapsulation.IEEE_LLC_SNAP_ROUTED, 14),
        Family.off(),
        Family.no_change(),
    ]
)
PARAMETER_FIELDS = (
    "IPv4Checksum", "TCPIPv4Checksum", "UDPIPv4Checksum", "TCPIPv6Checksum",
    "UDPIPv6Checksum", "LsoV1", "LsoV2IPv4", "LsoV2IPv6", "RscIPv4", "RscIPv6",
)  # fmt: skip
PARAMETERS = st.fixed_dictionaries(
    {name: st.integers(0, 4 if "Checksum" in name else 2) for name in PARAMETER_FIELDS}
).map(lambda fields: NdisOffloadParameters().evolve(**fields))

STEPS = st.one_of(
    st.tuples(st.just("encapsulation"), st.tuples(FAMILIES, FAMILIES)),
    st.tuples(st.just("parameters"), PARAMETERS),
    st.tuples(st.just("hardware"), FEATURE_SETS),
    st.tuples(st.just("configured"), FEATURE_SETS),
    st.tuples(st.just("family item"), st.tuples(st.sampled_from([4, 6]), st.booleans())),
    st.tuples(st.just("family replace"), st.tuples(st.booleans(), st.booleans())),
    st.tuples(st.just("family update"), st.tuples(st.booleans(), st.booleans())),
    st.tuples(st.just("family pop"), st.sampled_from([4, 6])),
)


def apply(h: StackHarness, step: tuple[str, Any]) -> None:
    m = h.miniport
    kind, arg = step
    if kind == "encapsulation":
        v4, v6 = arg
        h.binding().set(
            Oid.OFFLOAD_ENCAPSULATION, NdisOffloadEncapsulation(IPv4=v4, IPv6=v6).encode()
        )
    elif kind == "parameters":
        h.binding().set(Oid.TCP_OFFLOAD_PARAMETERS, arg.encode())
    elif kind == "hardware":
        m.hardware = arg
    elif kind == "configured":
        m.configured = arg
    elif kind == "family item":
        family, active = arg
        m.family_active[family] = active
    elif kind == "family replace":
        v4, v6 = arg
        m.family_active = {4: v4, 6: v6}
    elif kind == "family update":
        v4, v6 = arg
        m.family_active.update({4: v4, 6: v6})
    else:
        m.family_active.pop(arg, None)


@settings(max_examples=60, deadline=None)
@given(
    variant=st.sampled_from(sorted(VARIANTS)),
    profile=st.sampled_from(sorted(PROFILES)),
    steps=st.lists(STEPS, max_size=12),
)
def test_the_cached_current_features_follow_every_writer(
    variant: str, profile: str, steps: list[tuple[str, Any]]
) -> None:
    h = StackHarness(miniport=make_miniport(variant, get_profile(profile)))
    assert h.miniport.current_features == uncached(h.miniport)
    for step in steps:
        cached = h.miniport.current_features  # held in the cache across the step
        assert cached == uncached(h.miniport)
        apply(h, step)
        assert h.miniport.current_features == uncached(h.miniport), step


def test_each_input_changes_the_cached_value() -> None:
    """One write per input, each changing the answer (so a stale cache would show)."""
    m = ReferenceMiniport(get_profile("full"))
    full = m.current_features
    assert "lsov2_4" in full and "tcp6_tx" in full
    m.family_active[4] = False
    assert "lsov2_4" not in m.current_features and "tcp6_tx" in m.current_features
    m.family_active = {4: True, 6: False}
    assert "lsov2_4" in m.current_features and "tcp6_tx" not in m.current_features
    m.family_active.update({6: True})
    assert m.current_features == full
    m.configured = m.configured - {"lsov2_4"}
    assert m.current_features == full - {"lsov2_4"}
    m.hardware = m.hardware - {"tcp6_tx"}
    assert m.current_features == full - {"lsov2_4", "tcp6_tx"}
    del m.family_active[6]
    assert m.current_features == full - {"lsov2_4", "tcp6_tx"}


def test_the_family_switches_compare_and_read_as_a_dict() -> None:
    m = ReferenceMiniport(get_profile("full"))
    assert m.family_active == {4: True, 6: True}
    assert dict(m.family_active.items()) == {4: True, 6: True}
    assert repr(m.family_active) == "{4: True, 6: True}"

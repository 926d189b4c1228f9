"""A hypothesis state machine over random binds, unbinds, queries and (valid or corrupted)
encapsulation and parameter sets, checking the stack's invariants after every step."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ndis_offload.constants.offload import NdisEncapsulation
from ndis_offload.constants.oid import Oid
from ndis_offload.constants.status import NdisStatus
from ndis_offload.stack.core import NdisStack
from ndis_offload.stack.features import FEATURE_TABLE, feature_encapsulations, features_of
from ndis_offload.stack.miniport import ReferenceMiniport
from ndis_offload.stack.profiles import PROFILES
from ndis_offload.stack.protocol import ProtocolDriver
from ndis_offload.structs import NdisOffload, NdisOffloadEncapsulation, NdisOffloadParameters
from ndis_offload.structs.encapsulation import NdisOffloadEncapsulationFamily as Family

NAMES = ("tcpip", "tcpip6", "monitor")
families = st.one_of(
    st.just(Family.no_change()),
    st.just(Family.off()),
    st.builds(
        Family.on,
        st.sampled_from(
            [
                NdisEncapsulation.IEEE_802_3,
                NdisEncapsulation.IEEE_LLC_SNAP_ROUTED,
                NdisEncapsulation.IEEE_802_3_P_AND_Q,
            ]
        ),
        st.sampled_from([14, 18, 22]),
    ),
)
ENCAP_802_3 = NdisEncapsulation.IEEE_802_3
param_values = st.integers(0, 4)
switch_values = st.integers(0, 2)


class StackMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.stack: NdisStack
        self.miniport: ReferenceMiniport
        self.expected_indications: dict[str, int] = {}
        self.families: dict[str, set[int]] = {}

    @initialize(
        profile=st.sampled_from(sorted(PROFILES)),
        llc=st.lists(st.booleans(), min_size=len(NAMES), max_size=len(NAMES)),
    )
    def start(self, profile: str, llc: list[bool]) -> None:
        self.miniport = ReferenceMiniport(PROFILES[profile])
        self.stack = NdisStack(self.miniport)
        for name, is_llc in zip(NAMES, llc, strict=True):
            self.bind(name, is_llc)

    @rule(name=st.sampled_from(NAMES), llc=st.booleans())
    def bind(self, name: str, llc: bool) -> None:
        if name not in self.stack.bindings:
            encapsulation = NdisEncapsulation.IEEE_LLC_SNAP_ROUTED if llc else ENCAP_802_3
            self.stack.bind(ProtocolDriver(name, encapsulation, 8 if llc else 14))
            self.expected_indications[name] = 0
            self.families[name] = set()

    @rule(pick=st.integers(0, 2), v4=st.sampled_from([None, True, False]),
          v6=st.sampled_from([None, True, False]))  # fmt: skip
    def protocol_sets(self, pick: int, v4: bool | None, v6: bool | None) -> None:
        """A bound protocol's own enable/disable (None: NO_CHANGE for that family)."""
        if not self.stack.bindings:
            return
        name = list(self.stack.bindings)[pick % len(self.stack.bindings)]
        protocol = self.stack.bindings[name].protocol
        assert isinstance(protocol, ProtocolDriver)
        if v4 is False or v6 is False:  # disable() sends NO_CHANGE for the family not asked
            v4, v6 = (False if v4 is False else None), (False if v6 is False else None)
            handle = protocol.disable(ipv4=v4 is False, ipv6=v6 is False)
        else:
            handle = protocol.enable(ipv4=bool(v4), ipv6=bool(v6))
        if handle.status != NdisStatus.SUCCESS:
            self.families[name] = set()
            return
        for family, value in ((4, v4), (6, v6)):
            if value is True:
                self.families[name].add(family)
            elif value is False:
                self.families[name].discard(family)

    @rule(name=st.sampled_from(NAMES))
    def unbind(self, name: str) -> None:
        if name in self.stack.bindings:
            self.stack.unbind(name)
            del self.expected_indications[name]
            del self.families[name]

    @rule(
        oid=st.sampled_from(
            [
                Oid.TCP_OFFLOAD_CURRENT_CONFIG,
                Oid.OFFLOAD_ENCAPSULATION,
                Oid.TCP_OFFLOAD_HARDWARE_CAPABILITIES,
            ]
        )
    )
    def query(self, oid: int) -> None:
        if self.stack.bindings:
            handle = next(iter(self.stack.bindings.values())).query(oid)
            if oid == Oid.TCP_OFFLOAD_CURRENT_CONFIG and handle.completion and handle.completion.ok:
                assert NdisOffload.decode(handle.completion.InformationBuffer) == self.stack.config

    def _set(self, oid: int, data: bytes) -> None:
        if not self.stack.bindings:
            return
        before = self.miniport.current_config()
        before_encapsulation = self.stack.encapsulation
        counts = {n: len(b.indications) for n, b in self.stack.bindings.items()}
        handle = next(iter(self.stack.bindings.values())).set(oid, data)
        assert handle.completion is not None
        if handle.status == NdisStatus.SUCCESS:
            for name, binding in self.stack.bindings.items():
                assert len(binding.indications) == counts[name] + 1, "one indication each"
                assert binding.indications[-1].StatusCode == NdisStatus.TASK_OFFLOAD_CURRENT_CONFIG
        else:
            assert self.miniport.current_config() == before, "a failed set changed the config"
            assert self.stack.encapsulation == before_encapsulation
            for name, binding in self.stack.bindings.items():
                assert len(binding.indications) == counts[name], "a failed set indicated"

    @rule(v4=families, v6=families)
    def set_encapsulation(self, v4: Family, v6: Family) -> None:
        self._set(Oid.OFFLOAD_ENCAPSULATION, NdisOffloadEncapsulation(IPv4=v4, IPv6=v6).encode())

    @rule(
        v4=families,
        v6=families,
        position=st.integers(0, 27),
        byte=st.integers(0, 255),
        cut=st.integers(0, 28),
    )
    def set_corrupted_encapsulation(
        self, v4: Family, v6: Family, position: int, byte: int, cut: int
    ) -> None:
        data = bytearray(NdisOffloadEncapsulation(IPv4=v4, IPv6=v6).encode())
        data[position] = byte
        self._set(Oid.OFFLOAD_ENCAPSULATION, bytes(data[:cut]))

    @rule(
        csum=st.lists(param_values, min_size=5, max_size=5),
        switches=st.lists(switch_values, min_size=5, max_size=5),
        revision=st.integers(1, 5),
    )
    def set_parameters(self, csum: list[int], switches: list[int], revision: int) -> None:
        fields = {
            "IPv4Checksum": csum[0],
            "TCPIPv4Checksum": csum[1],
            "UDPIPv4Checksum": csum[2],
            "TCPIPv6Checksum": csum[3],
            "UDPIPv6Checksum": csum[4],
            "LsoV1": switches[0],
            "LsoV2IPv4": switches[1],
            "LsoV2IPv6": switches[2],
        }
        if revision >= 3:
            fields.update(RscIPv4=switches[3], RscIPv6=switches[4])
        params = NdisOffloadParameters.from_dict(
            {**fields, "Header": NdisOffloadParameters.header_for(revision).to_dict()}
        )
        self._set(Oid.TCP_OFFLOAD_PARAMETERS, params.encode())

    @rule(data=st.binary(max_size=40))
    def set_garbage_parameters(self, data: bytes) -> None:
        self._set(Oid.TCP_OFFLOAD_PARAMETERS, data)

    @invariant()
    def protocols_use_only_what_their_encapsulation_and_families_allow(self) -> None:
        """oid-offload-encapsulation: only offload types that support the protocol's
        encapsulation; a NO_CHANGE family keeps what it had; nothing after a failed set."""
        config = self.stack.config
        for name, binding in self.stack.bindings.items():
            protocol = binding.protocol
            assert isinstance(protocol, ProtocolDriver)
            if config is None or protocol.failed:
                assert protocol.usable == frozenset()
                continue
            masks = feature_encapsulations(config)
            expected = {
                f for f, mask in masks.items()
                if FEATURE_TABLE[f].ip in self.families[name] and mask & protocol.encapsulation
            }  # fmt: skip
            assert protocol.usable == expected, name

    @invariant()
    def current_config_never_exceeds_hardware(self) -> None:
        hardware = self.stack.hardware_capabilities
        if hardware is None:
            assert self.stack.config is None
            return
        assert self.stack.config is not None
        assert features_of(self.stack.config) <= features_of(hardware)

    @invariant()
    def cached_config_equals_what_the_miniport_last_indicated(self) -> None:
        assert self.stack.config == self.stack.miniport_config
        if self.stack.config is not None:
            assert self.stack.config == self.miniport.current_config()


TestStackMachine = StackMachine.TestCase
TestStackMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)

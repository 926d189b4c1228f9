"""Control-path defects: the reference miniport with exactly one mistake a driver author
could make. Each class names the check that must catch it (``caught_by``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

from ndis_offload.constants.offload import NdisEncapsulation, NdisOffloadSet
from ndis_offload.constants.oid import Oid
from ndis_offload.constants.status import NdisStatus
from ndis_offload.stack.features import FAMILY_FEATURES
from ndis_offload.stack.miniport import ReferenceMiniport, complete
from ndis_offload.stack.profiles import AdapterProfile
from ndis_offload.stack.requests import OidCompletion, OidRequest, RequestType
from ndis_offload.structs.encapsulation import NdisOffloadEncapsulation
from ndis_offload.structs.parameters import NdisOffloadParameters


class Defect(ReferenceMiniport):
    caught_by: ClassVar[str] = ""
    """The check that must fail for this miniport."""


class InvalidParameterForInvalidData(Defect):
    """Answers invalid NDIS_OFFLOAD_PARAMETERS contents with INVALID_PARAMETER."""

    caught_by = "parameters-invalid-data-checksum-value"

    def set_offload_parameters(self, request: OidRequest) -> OidCompletion:
        done = super().set_offload_parameters(request)
        if done.status == NdisStatus.INVALID_DATA:
            return complete(request, NdisStatus.INVALID_PARAMETER, done.detail)
        return done


class NoIndicationAfterEncapsulation(Defect):
    caught_by = "encapsulation-supported-ipv4"

    def indicate_after_encapsulation(self, changed: bool) -> bool:
        return False


class NoIndicationAfterParameters(Defect):
    caught_by = "parameters-indicates-current-config"

    def indicate_after_parameters(self, changed: bool) -> bool:
        return False


class StaleIndication(Defect):
    """Indicates the configuration from before the set."""

    caught_by = "parameters-indicates-current-config"

    def set_offload_parameters(self, request: OidRequest) -> OidCompletion:
        stale = self.current_config()
        self._quiet = True
        done = super().set_offload_parameters(request)
        self._quiet = False
        if done.status == NdisStatus.SUCCESS:
            assert self._context is not None
            from ndis_offload.stack.requests import StatusIndication

            self._context.indicate_status(StatusIndication(
                NdisStatus.TASK_OFFLOAD_CURRENT_CONFIG, stale.encode(), self.name))  # fmt: skip
        return done

    def indicate_after_parameters(self, changed: bool) -> bool:
        return not getattr(self, "_quiet", False)


class ChecksumNoChangeAsOff(Defect):
    """Reads a checksum field of 0 (NO_CHANGE) as TX_RX_DISABLED (xennet's bug)."""

    caught_by = "parameters-field-LsoV2IPv4"

    def plan_parameters(self, p: NdisOffloadParameters) -> Any:
        fields = ("IPv4Checksum", "TCPIPv4Checksum", "UDPIPv4Checksum", "TCPIPv6Checksum",
                  "UDPIPv6Checksum")  # fmt: skip
        zeroed: dict[str, Any] = {name: 1 for name in fields if getattr(p, name) == 0}
        return super().plan_parameters(replace(p, **zeroed))


class NonAtomicParameters(Defect):
    """Applies the fields it can before failing on one it cannot."""

    caught_by = "parameters-atomic"

    def plan_parameters(self, p: NdisOffloadParameters) -> Any:
        result = super().plan_parameters(p)
        if isinstance(result, tuple):
            for name in ("TCPIPv4Checksum", "RscIPv4", "LsoV2IPv6"):
                part = super().plan_parameters(replace(NdisOffloadParameters(Header=p.Header),
                                                       **{name: getattr(p, name)}))  # fmt: skip
                if not isinstance(part, tuple):
                    self.configured = part
        return result


class ReceiveChecksumBeforeFirstSet(Defect):
    caught_by = "checksum-rx-gated-until-encapsulation"

    def __init__(self, profile: AdapterProfile, **kw: Any) -> None:
        super().__init__(profile, **kw)
        self.receive_checksum_started = True


class FailedEncapsulationChangesState(Defect):
    """A failed encapsulation set still applies the valid family's OFF, silently."""

    caught_by = "encapsulation-unsupported-ipv4"

    def set_offload_encapsulation(self, request: OidRequest) -> OidCompletion:
        done = super().set_offload_encapsulation(request)
        if done.status != NdisStatus.SUCCESS:
            enc = NdisOffloadEncapsulation.decode_unchecked(request.InformationBuffer, 28)
            for family, part in ((4, enc.IPv4), (6, enc.IPv6)):
                if part.Enabled == NdisOffloadSet.OFF:
                    self.family_active[family] = False
        return done


class OffIgnored(Defect):
    caught_by = "encapsulation-off-deactivates-ipv4"

    def apply_family(self, family: int, enabled: int, encapsulation: int, header_size: int) -> None:
        if enabled != NdisOffloadSet.OFF:
            super().apply_family(family, enabled, encapsulation, header_size)


class EncapsulationNoChangeAsOff(Defect):
    caught_by = "encapsulation-no-change-keeps-ipv4"

    def apply_family(self, family: int, enabled: int, encapsulation: int, header_size: int) -> None:
        if enabled == NdisOffloadSet.NO_CHANGE:
            enabled = NdisOffloadSet.OFF
        super().apply_family(family, enabled, encapsulation, header_size)


class SuccessWithoutOffload(Defect):
    """A NIC without task offload answers OID_TCP_OFFLOAD_PARAMETERS with SUCCESS."""

    caught_by = "parameters-not-supported-without-offload"

    def set_offload_parameters(self, request: OidRequest) -> OidCompletion:
        if not self.supports_offload:
            return complete(request, NdisStatus.SUCCESS)
        return super().set_offload_parameters(request)


class AcceptsAnyEncapsulation(Defect):
    caught_by = "encapsulation-unsupported-ipv4"

    def check_encapsulation(self, family: int, encapsulation: int, header_size: int) -> Any:
        return None


class IgnoresKeywords(Defect):
    """Starts with everything the hardware can do, whatever the INF keywords say."""

    caught_by = "config-keywords-select-initial-config"

    def __init__(self, profile: AdapterProfile, **kw: Any) -> None:
        super().__init__(profile, **kw)
        self.configured = self.hardware


class SkipRegistryUpdateIsNoOp(Defect):
    """Treats NDIS_OFFLOAD_PARAMETERS_SKIP_REGISTRY_UPDATE as "do nothing"."""

    caught_by = "parameters-skip-registry-update"

    def set_offload_parameters(self, request: OidRequest) -> OidCompletion:
        data = request.InformationBuffer
        if len(data) >= 20 and data[16] & 1:
            return complete(request, NdisStatus.SUCCESS)
        return super().set_offload_parameters(request)


class ReadsFieldsBeyondRevision(Defect):
    """Reads RSC/USO from a revision 1/2 buffer (newest-size local copy, header ignored)."""

    caught_by = "parameters-revision-gated-RscIPv4"

    def set_offload_parameters(self, request: OidRequest) -> OidCompletion:
        p = NdisOffloadParameters.decode_unchecked(request.InformationBuffer, None)
        p = replace(p, Header=NdisOffloadParameters.header_for(5))
        return super().set_offload_parameters(replace(request, InformationBuffer=p.encode()))


class ExceedsHardware(Defect):
    """Enables what the hardware cannot do."""

    caught_by = "parameters-never-beyond-hardware"

    @property
    def current_features(self) -> frozenset[str]:
        out = self.configured
        for family, active in self.family_active.items():
            if not active:
                out -= FAMILY_FEATURES[family]
        return out

    def plan_parameters(self, p: NdisOffloadParameters) -> Any:
        saved, self.hardware = self.hardware, frozenset(self.profile.hardware | {
            "lsov1", "lsov2_4", "lsov2_6", "rsc4", "rsc6", "uso4", "uso6"})  # fmt: skip
        try:
            return super().plan_parameters(p)
        finally:
            self.hardware = saved


class AnswersParametersQuery(Defect):
    caught_by = "parameters-query-not-supported"

    def handlers(self) -> Any:
        table = dict(super().handlers())
        table[(Oid.TCP_OFFLOAD_PARAMETERS, RequestType.QUERY)] = lambda r: complete(
            r, NdisStatus.SUCCESS
        )
        return table


class ShortEncapsulationSucceeds(Defect):
    caught_by = "encapsulation-short-buffer"

    def set_offload_encapsulation(self, request: OidRequest) -> OidCompletion:
        if len(request.InformationBuffer) < 28:
            return complete(request, NdisStatus.SUCCESS)
        return super().set_offload_encapsulation(request)


class EncapsulationHeaderUnchecked(Defect):
    caught_by = "encapsulation-bad-header-type"

    def decode_encapsulation(self, request: OidRequest) -> Any:
        enc = NdisOffloadEncapsulation.decode_unchecked(request.InformationBuffer, 28)
        return replace(enc, Header=NdisOffloadEncapsulation().Header)


class LsoV1BeyondSixtyFourK(Defect):
    caught_by = "config-lsov1-max-offload-size"

    def __init__(self, profile: AdapterProfile, **kw: Any) -> None:
        limits = replace(profile.limits, lso_max_offload_size=70000)
        super().__init__(replace(profile, limits=limits), **kw)


class LlcSnapOnly(Defect):
    """Advertises every offload for LLC/SNAP only."""

    caught_by = "config-ieee-802-3-for-every-offload"

    def __init__(self, profile: AdapterProfile, **kw: Any) -> None:
        if profile.hardware:
            profile = profile.with_encapsulations(int(NdisEncapsulation.IEEE_LLC_SNAP_ROUTED))
        super().__init__(profile, **kw)


class LsoWithoutTcpChecksum(Defect):
    caught_by = "config-lso-requires-checksum"

    def __init__(self, profile: AdapterProfile, **kw: Any) -> None:
        hardware = profile.hardware - {"tcp4_tx"}
        super().__init__(replace(profile, hardware=hardware), **kw)


CONTROL: tuple[type[Defect], ...] = (
    InvalidParameterForInvalidData,
    NoIndicationAfterEncapsulation,
    NoIndicationAfterParameters,
    StaleIndication,
    ChecksumNoChangeAsOff,
    NonAtomicParameters,
    ReceiveChecksumBeforeFirstSet,
    FailedEncapsulationChangesState,
    OffIgnored,
    EncapsulationNoChangeAsOff,
    SuccessWithoutOffload,
    AcceptsAnyEncapsulation,
    IgnoresKeywords,
    SkipRegistryUpdateIsNoOp,
    ReadsFieldsBeyondRevision,
    ExceedsHardware,
    AnswersParametersQuery,
    ShortEncapsulationSucceeds,
    EncapsulationHeaderUnchecked,
    LsoV1BeyondSixtyFourK,
    LlcSnapOnly,
    LsoWithoutTcpChecksum,
)

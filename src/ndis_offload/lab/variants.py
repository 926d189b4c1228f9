"""Real miniports' handling of ``OID_OFFLOAD_ENCAPSULATION`` and ``OID_TCP_OFFLOAD_PARAMETERS``.

Each class is a :class:`~ndis_offload.stack.miniport.ReferenceMiniport` whose
:class:`~ndis_offload.stack.miniport.Behaviour` sets the knobs on which that driver differs
from the documentation (header checks, bit-mask vs equality encapsulation tests, the status
of an unsupported request, when it indicates); only what no knob expresses (e.g. NetKVM's
ON/OFF combinations, gVNIC's per-family switch set, xennet's registry reset) overrides a
hook. ``docs/real-miniports.md`` gives the source of every deviation (repository, commit,
file, function).

:data:`VARIANTS` is the explicit registry; :func:`make_miniport` builds one by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from ndis_offload.constants import objects as o
from ndis_offload.constants.offload import (
    NdisEncapsulation,
    NdisOffloadParametersLsoV2,
    NdisOffloadSet,
)
from ndis_offload.constants.status import NdisStatus
from ndis_offload.stack.datapath import NetBufferList, SendCompletion, TransmitStatistics
from ndis_offload.stack.features import (
    FAMILY_FEATURES,
    FEATURE_TABLE,
    FEATURES,
    Feature,
)
from ndis_offload.stack.miniport import (
    Behaviour,
    ReferenceMiniport,
    complete,
    short_buffer,
    transmit_statistics_info,
)
from ndis_offload.stack.profiles import AdapterProfile, ProfileError
from ndis_offload.stack.requests import OidCompletion, OidRequest
from ndis_offload.structs.encapsulation import NdisOffloadEncapsulation
from ndis_offload.structs.parameters import NdisOffloadParameters
from ndis_offload.structs.statistics import NdisRscStatisticsInfo, NdisStatisticsInfo

ON, OFF = NdisOffloadSet.ON, NdisOffloadSet.OFF
IEEE_802_3 = int(NdisEncapsulation.IEEE_802_3)
ENCAPSULATION_SIZE = o.NDIS_SIZEOF_OFFLOAD_ENCAPSULATION_REVISION_1
DISABLED = int(NdisOffloadParametersLsoV2.LSOV2_DISABLED)
ENABLED = int(NdisOffloadParametersLsoV2.LSOV2_ENABLED)
"""``NDIS_OFFLOAD_PARAMETERS_{LSOV1,LSOV2,RSC,USO}_DISABLED`` / ``_ENABLED``."""
CHECKSUM = frozenset(f for f in FEATURES if FEATURE_TABLE[f].offload_type == "checksum")
IPSEC_FIELDS = frozenset({"IPsecV1", "IPsecV2", "IPsecV2IPv4"})
CONNECTION_FIELDS = frozenset({"TcpConnectionIPv4", "TcpConnectionIPv6"})


class _Variant(ReferenceMiniport):
    """A real driver: a one-line ``summary`` (the long story is in the class docstring and
    ``docs/real-miniports.md``)."""

    summary: ClassVar[str] = ""
    source: ClassVar[str] = ""


# --------------------------------------------------------------------------------------------
class NetKvmMiniport(_Variant):
    """virtio-win NetKVM (``OnSetOffloadEncapsulation``, ``OnSetOffloadParameters``,
    ``OnSetRSCParameters``, ``ApplyOffloadConfiguration``, ``ParaNdis_OidSetCopy``).

    Knobs: short buffers are BUFFER_TOO_SHORT; the encapsulation Header must be exactly
    {0xA8, 1, 28}; ``EncapsulationType`` is a bit mask; an encapsulation set never
    indicates; the parameters Header is not checked; undefined values keep the setting;
    unsupported requests are INVALID_PARAMETER; IPsec / connection fields are not read.
    Hooks: only the ON/OFF combinations are accepted (NO_CHANGE fails) and both ON need
    equal ``HeaderSize``; an encapsulation set only stores the L2 header length
    (``ipHeaderOffset``) and the TX switches, the reported configuration stays; RSC (rev >=
    3) is applied first, NOT_SUPPORTED when unsupported, and stays applied if the rest
    fails (non-atomic); LsoV1 and LsoV2IPv4 switch IPv4 LSO together (contradiction fails);
    USO needs rev >= 5 and Size >= 34. ``OID_TCP_RSC_STATISTICS`` (``ParaNdis6_OidQuery``,
    ``NBLSetRSCInfo``): ``CoalescedOctets`` adds each SCU's L2 payload (the IP datagram,
    headers included) instead of the TCP payload, and ``Aborts`` is always 0. Transmit
    statistics (``CTXVirtQueue::UpdateTXStats``) count each NET_BUFFER once with its
    length: an LSO / USO send is one packet of the large send's size, not its segments.
    """

    variant = "netkvm"
    behaviour = Behaviour(
        short_buffer=NdisStatus.BUFFER_TOO_SHORT,
        encapsulation_header="exact",
        encapsulation_match="bit-mask",
        indicate_encapsulation="never",
        parameters_header="unchecked",
        undefined_value="no change",
        unsupported_request=NdisStatus.INVALID_PARAMETER,
        ignored_fields=IPSEC_FIELDS | CONNECTION_FIELDS,
    )
    summary: ClassVar[str] = (
        "virtio-win NetKVM: exact encapsulation header, bit-mask 802.3, ON/OFF combos only, "
        "no config change or indication on encapsulation; RSC applied non-atomically"
    )
    source: ClassVar[str] = (
        "virtio-win/kvm-guest-drivers-windows@fbcc19d NetKVM/wlh/ParaNdis6_Oid.cpp, "
        "NetKVM/Common/ParaNdis_Oid.cpp"
    )

    def __init__(self, profile: AdapterProfile, **kw: Any) -> None:
        super().__init__(profile, **kw)
        self.ip_header_offset = 0
        """``pContext->Offload.ipHeaderOffset``: the L2 header length used by the TX path."""
        self.tx_offload_enabled = {4: True, 6: True}
        """``bOffloadv4Enabled`` / ``bOffloadv6Enabled`` (TX path only, never reported)."""
        self.nb_statistics = TransmitStatistics()
        """``pContext->Statistics`` as ``UpdateTXStats`` keeps it: per NET_BUFFER sent."""

    # -- transmit statistics -----------------------------------------------------------------
    def send_net_buffer_lists(self, nbls: Sequence[NetBufferList]) -> list[SendCompletion]:
        done = super().send_net_buffer_lists(nbls)
        for nbl, result in zip(nbls, done, strict=True):
            if result.status == NdisStatus.SUCCESS:
                self.nb_statistics.account([bytes(nbl.frame)])
        return done

    def statistics(self) -> NdisStatisticsInfo:
        """``UpdateTXStats``: one packet of ``NB.GetDataLength()`` bytes per NET_BUFFER."""
        return transmit_statistics_info(self.nb_statistics)

    # -- OID_TCP_RSC_STATISTICS --------------------------------------------------------------
    def rsc_statistics(self) -> NdisRscStatisticsInfo:
        """``NBLSetRSCInfo`` adds ``PacketInfo->L2PayloadLen`` (the IP datagram) to
        ``CoalescedOctets``; ``ParaNdis6_OidQuery`` answers ``Aborts = 0``."""
        counts = self.datapath.rsc_statistics
        return super().rsc_statistics().evolve(CoalescedOctets=counts.coalesced_ip_octets, Aborts=0)

    # -- OID_OFFLOAD_ENCAPSULATION -----------------------------------------------------------
    def check_request(self, enc: NdisOffloadEncapsulation) -> tuple[NdisStatus, str] | None:
        combo = (enc.IPv4.Enabled, enc.IPv6.Enabled)
        bad = NdisStatus.INVALID_PARAMETER
        if combo == (ON, ON) and enc.IPv4.HeaderSize != enc.IPv6.HeaderSize:
            return bad, "both ON with different HeaderSize"
        if combo not in ((ON, ON), (OFF, ON), (ON, OFF), (OFF, OFF)):
            return bad, f"Enabled combination {combo} is not ON/OFF"
        return None

    def apply_family(self, family: int, enabled: int, encapsulation: int, header_size: int) -> None:
        """Only the TX-path switches and ``ipHeaderOffset``; the reported config is unchanged."""
        self.tx_offload_enabled[family] = enabled == ON
        if enabled == ON:
            self.ip_header_offset = header_size
            self.header_size[family] = header_size
            self.encapsulation_type[family] = encapsulation

    # -- OID_TCP_OFFLOAD_PARAMETERS ----------------------------------------------------------
    def plan_parameters(self, p: NdisOffloadParameters) -> frozenset[str] | tuple[NdisStatus, str]:
        """``OnSetRSCParameters`` (applied at once), then ``ApplyOffloadConfiguration`` on a
        copy (``fPresent``)."""
        if p.Header.Revision >= o.NDIS_OFFLOAD_PARAMETERS_REVISION_3:
            rsc = ((Feature.RSC4, p.RscIPv4), (Feature.RSC6, p.RscIPv6))
            for feature, value in rsc:
                if value != 0 and feature not in self.hardware:
                    return NdisStatus.NOT_SUPPORTED, f"{feature}: RSC is not supported"
            new = set(self.configured)
            for feature, value in rsc:
                if value != 0:
                    (new.add if value == ENABLED else new.discard)(feature)
            self.configured = frozenset(new)  # before the rest is validated: non-atomic
        uso_gate = (
            p.Header.Revision >= o.NDIS_OFFLOAD_PARAMETERS_REVISION_5
            and p.Header.Size >= o.NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_5
        )
        lso4 = frozenset({Feature.LSOV1, Feature.LSOV2_4})
        if {p.LsoV1, p.LsoV2IPv4} == {DISABLED, ENABLED}:
            return NdisStatus.INVALID_PARAMETER, "LsoV1 and LsoV2IPv4 contradict each other"
        fields = {
            "RscIPv4", "RscIPv6", "LsoV1", "LsoV2IPv4",
            *(() if uso_gate else ("UdpSegmentation.IPv4", "UdpSegmentation.IPv6")),
        }  # fmt: skip
        planned = self.plan_fields(p, ignore=frozenset(fields))
        if isinstance(planned, tuple):
            return planned
        new = set(planned)
        if DISABLED in (p.LsoV1, p.LsoV2IPv4):
            new -= lso4
        elif ENABLED in (p.LsoV1, p.LsoV2IPv4):
            if not lso4 & self.hardware:
                return NdisStatus.INVALID_PARAMETER, "LSOv4 unsupported"
            new |= lso4 & self.hardware
        return frozenset(new)


# --------------------------------------------------------------------------------------------
class NetvspMiniport(_Variant):
    """openvmm netvsp, the host side of the Hyper-V synthetic NIC (``read_ndis_object``,
    ``mask_to_supported``).

    Knobs: ``read_ndis_object`` headers (Type, Revision >= 1, Size >= the minimum and <= the
    buffer) else INVALID_DATA, for both OIDs; an ON family needs ``EncapsulationType ==
    802_3`` and ``HeaderSize == 14`` else NOT_SUPPORTED; an encapsulation set never
    indicates; undefined parameter values keep the setting; unsupported requests are clamped
    silently; RSC, USO and IPsec fields are not read. Hooks: an encapsulation set stores
    nothing (a pure validator); ``LsoV1 == ENABLED`` is NOT_SUPPORTED. The real indication
    after a parameters set is deferred until the RNDIS device is operational; modelled as an
    indication right after success.
    """

    variant = "netvsp"
    behaviour = Behaviour(
        encapsulation_header="minimum",
        invalid_header=NdisStatus.INVALID_DATA,
        encapsulation_match="equality",
        unsupported_encapsulation=NdisStatus.NOT_SUPPORTED,
        header_size=14,
        indicate_encapsulation="never",
        parameters_header="minimum",
        undefined_value="no change",
        unsupported_request=None,
        ignored_fields=frozenset(
            {"LsoV1", "RscIPv4", "RscIPv6", "UdpSegmentation.IPv4", "UdpSegmentation.IPv6"}
        )
        | IPSEC_FIELDS
        | CONNECTION_FIELDS,
    )
    summary: ClassVar[str] = (
        "openvmm netvsp (Hyper-V): INVALID_DATA for bad headers, ON needs 802_3 == and "
        "HeaderSize 14, encapsulation stores nothing; parameters clamp silently"
    )
    source: ClassVar[str] = (
        "microsoft/openvmm@1488a37 vm/devices/net/netvsp/src/lib.rs, "
        "vm/devices/net/netvsp/src/rndisprot.rs"
    )

    def apply_family(self, family: int, enabled: int, encapsulation: int, header_size: int) -> None:
        """netvsp stores nothing."""

    def plan_parameters(self, p: NdisOffloadParameters) -> frozenset[str] | tuple[NdisStatus, str]:
        if p.LsoV1 == ENABLED:
            return NdisStatus.NOT_SUPPORTED, "LsoV1 is not supported"
        return super().plan_parameters(p)


# --------------------------------------------------------------------------------------------
GVNIC_ENCAPSULATION_FEATURES: dict[int, frozenset[str]] = {
    ip: frozenset(
        f for f in FAMILY_FEATURES[ip] if FEATURE_TABLE[f].member in ("TcpChecksum", "UdpChecksum")
    )
    | {Feature.LSOV2_4 if ip == 4 else Feature.LSOV2_6}
    for ip in (4, 6)
}
"""What gVNIC's ``UpdateOffloadConfigFromEncapsulation`` switches per family (not the IPv4
header checksum, not USO)."""


class GvnicMiniport(_Variant):
    """Google gVNIC (``CopyOidInformation``, ``ValidateOffloadEncapsulationRequest``,
    ``UpdateOffloadConfigFromEncapsulation``, ``UpdateOffloadConfigFromOffloadParameters``,
    ``UpdateOffloadConfig``).

    Knobs: both OIDs need ``InformationBufferLength == sizeof`` (shorter: BUFFER_TOO_SHORT,
    longer: BUFFER_OVERFLOW; ``NDIS_OFFLOAD_PARAMETERS`` is 32 bytes in its NDIS 6.50
    build); encapsulation Header Revision 1 and Type 0xA8 only (Size unchecked); bit-mask
    802.3; indication only on change; parameters Header unchecked, undefined values keep,
    unsupported requests INVALID_PARAMETER (validated on a copy: atomic); USO, IPsec and
    connection fields not read. Hooks: ON turns on Tx/Rx TCP+UDP checksum and LSO of the
    family, OFF turns them off, validated against the hardware; both HeaderSizes stored;
    LsoV1 ENABLED counts as LsoV2IPv4 ENABLED.
    """

    variant = "gvnic"
    parameters_sizeof: ClassVar[int] = 32
    behaviour = Behaviour(
        short_buffer=NdisStatus.BUFFER_TOO_SHORT,
        exact_length=True,
        parameters_sizeof=32,
        encapsulation_header="type-and-revision",
        encapsulation_match="bit-mask",
        indicate_encapsulation="on change",
        parameters_header="unchecked",
        undefined_value="no change",
        unsupported_request=NdisStatus.INVALID_PARAMETER,
        ignored_fields=frozenset({"LsoV1", "UdpSegmentation.IPv4", "UdpSegmentation.IPv6"})
        | IPSEC_FIELDS
        | CONNECTION_FIELDS,
        indicate_parameters="on change",
    )
    summary: ClassVar[str] = (
        "Google gVNIC: exact buffer length, bit-mask 802.3, encapsulation switches "
        "TCP/UDP checksum + LSO per family, indicates only on change"
    )
    source: ClassVar[str] = (
        "GoogleCloudPlatform/compute-virtual-ethernet-windows@cad1edf src/oid.cpp, "
        "src/offload.cpp, src/gvnic_pci_device.cpp"
    )

    def set_offload_encapsulation(self, request: OidRequest) -> OidCompletion:
        parsed = self.decode_encapsulation(request)
        if isinstance(parsed, OidCompletion):
            return parsed
        for family, part in ((4, parsed.IPv4), (6, parsed.IPv6)):
            problem = self.check_encapsulation(family, part.EncapsulationType, part.HeaderSize)
            if part.Enabled == ON and problem is not None:
                return complete(request, *problem)
        new = set(self.configured)
        for family, part in ((4, parsed.IPv4), (6, parsed.IPv6)):
            if part.Enabled == ON:
                new |= GVNIC_ENCAPSULATION_FEATURES[family]
            elif part.Enabled == OFF:
                new -= GVNIC_ENCAPSULATION_FEATURES[family]
        unsupported = new - self.hardware
        if unsupported:
            return complete(
                request,
                NdisStatus.INVALID_PARAMETER,
                f"ValidateOffloadConfig: {sorted(unsupported)} not supported by the hardware",
            )
        changed = frozenset(new) != self.configured
        self.configured = frozenset(new)
        self.header_size = {4: parsed.IPv4.HeaderSize, 6: parsed.IPv6.HeaderSize}
        self.receive_checksum_started = True
        if changed:
            self.indicate_current_config()
        return complete(request, NdisStatus.SUCCESS, BytesRead=ENCAPSULATION_SIZE)

    def plan_parameters(self, p: NdisOffloadParameters) -> frozenset[str] | tuple[NdisStatus, str]:
        if p.LsoV1 == ENABLED:
            p = p.evolve(LsoV2IPv4=ENABLED)
        return super().plan_parameters(p)


# --------------------------------------------------------------------------------------------
XENNET_FEATURES = CHECKSUM | {Feature.LSOV2_4, Feature.LSOV2_6}
"""What xennet's TX/RX offload options cover (no LSOv1, USO or RSC)."""


class XennetMiniport(_Variant):
    """XenServer win-xennet (``AdapterSetInformation``, ``AdapterIndicateOffloadChanged``;
    an NDIS 6.0 build, so ``sizeof(NDIS_OFFLOAD_PARAMETERS)`` is 20).

    Encapsulation (a hook: its control flow differs): a buffer shorter than 28 is SUCCESS
    and a no-op; ON with ``EncapsulationType != 802_3`` (exact) is INVALID_PARAMETER, but
    the driver still rebuilds its offload options from the registry read at init (OFF
    switches nothing off) and indicates, even on failure.

    Parameters: shorter than 20 -> INVALID_LENGTH (BytesNeeded 20); only revision-1 fields
    read; IPsecV1, LsoV1, TcpConnectionIPv4/IPv6 != NO_CHANGE -> INVALID_PARAMETER;
    LsoV2IPvX != NO_CHANGE without backend LSO -> INVALID_PARAMETER; checksum Tx = value in
    {2, 4}, Rx = value in {3, 4}, so NO_CHANGE (0) disables (deviation); indication only if
    something changed.
    """

    variant = "xennet"
    parameters_sizeof: ClassVar[int] = o.NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_1
    behaviour = Behaviour(
        parameters_sizeof=o.NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_1,
        encapsulation_match="equality",
        indicate_encapsulation="even on failure",
        parameters_header="unchecked",
        unsupported_request=NdisStatus.INVALID_PARAMETER,
        indicate_parameters="on change",
    )
    summary: ClassVar[str] = (
        "XenServer xennet: encapsulation resets offloads to the registry and indicates even "
        "on failure; parameters treat checksum NO_CHANGE as disable"
    )
    source: ClassVar[str] = "xenserver/win-xennet@21310b8 src/xennet/adapter.c"

    def set_offload_encapsulation(self, request: OidRequest) -> OidCompletion:
        buffer = request.InformationBuffer
        if len(buffer) < ENCAPSULATION_SIZE:
            return complete(
                request,
                NdisStatus.SUCCESS,
                "short buffer: xennet does nothing and returns SUCCESS",
                BytesNeeded=ENCAPSULATION_SIZE,
            )
        enc = NdisOffloadEncapsulation.decode_unchecked(buffer, ENCAPSULATION_SIZE)
        status, detail = NdisStatus.SUCCESS, ""
        for family, part in ((4, enc.IPv4), (6, enc.IPv6)):
            if part.Enabled == ON:
                problem = self.check_encapsulation(family, part.EncapsulationType, 0)
                if problem is not None:
                    status, detail = problem
        registry = self.profile.configured & XENNET_FEATURES
        self.configured = (self.configured - XENNET_FEATURES) | registry
        self.receive_checksum_started = True
        self.indicate_current_config()  # AdapterIndicateOffloadChanged, whatever the status
        if status != NdisStatus.SUCCESS:
            return complete(request, status, detail, BytesNeeded=ENCAPSULATION_SIZE)
        return complete(
            request, status, BytesRead=ENCAPSULATION_SIZE, BytesNeeded=ENCAPSULATION_SIZE
        )

    def decode_parameters(self, request: OidRequest) -> NdisOffloadParameters | OidCompletion:
        short = short_buffer(request, self.parameters_sizeof, NdisStatus.INVALID_LENGTH)
        if short is not None:
            return short
        return NdisOffloadParameters.decode_unchecked(
            request.InformationBuffer, self.parameters_sizeof
        )

    def plan_parameters(self, p: NdisOffloadParameters) -> frozenset[str] | tuple[NdisStatus, str]:
        for field_name in ("IPsecV1", "LsoV1", "TcpConnectionIPv4", "TcpConnectionIPv6"):
            if getattr(p, field_name) != 0:
                return NdisStatus.INVALID_PARAMETER, f"{field_name} must be NO_CHANGE"
        for field_name, feature in (("LsoV2IPv4", Feature.LSOV2_4), ("LsoV2IPv6", Feature.LSOV2_6)):
            if getattr(p, field_name) != 0 and feature not in self.hardware:
                return (
                    NdisStatus.INVALID_PARAMETER,
                    f"{field_name}: the backend has no large packet offload",
                )
        new = set(self.configured)
        for field_name, feature in (("LsoV2IPv4", Feature.LSOV2_4), ("LsoV2IPv6", Feature.LSOV2_6)):
            value = getattr(p, field_name)
            if value in (DISABLED, ENABLED):
                (new.add if value == ENABLED else new.discard)(feature)
        for feature in CHECKSUM:
            row = FEATURE_TABLE[feature]
            value = getattr(p, row.parameters_field)
            # tx_enabled(x) = x in {2, 4}, rx_enabled(x) = x in {3, 4}: 0 disables
            (new.add if value in row.parameters_on else new.discard)(feature)
        return frozenset(new)


# --------------------------------------------------------------------------------------------
REFERENCE_SUMMARY = "The NDIS documentation to the letter (stack/miniport.py ReferenceMiniport)"
REFERENCE_SOURCE = (
    "MicrosoftDocs windows-driver-docs network/oid-offload-encapsulation.md, "
    "network/oid-tcp-offload-parameters.md"
)

VARIANTS: dict[str, type[ReferenceMiniport]] = {
    "reference": ReferenceMiniport,
    "netkvm": NetKvmMiniport,
    "netvsp": NetvspMiniport,
    "gvnic": GvnicMiniport,
    "xennet": XennetMiniport,
}
"""The miniport variants by name (an explicit registry)."""


def _describe(cls: type[ReferenceMiniport], attribute: str, default: str) -> str:
    value = getattr(cls, attribute, "")
    return value if isinstance(value, str) and value else default


SUMMARY: dict[str, str] = {
    name: _describe(cls, "summary", REFERENCE_SUMMARY) for name, cls in VARIANTS.items()
}
"""One line per variant."""
SOURCE: dict[str, str] = {
    name: _describe(cls, "source", REFERENCE_SOURCE) for name, cls in VARIANTS.items()
}
"""Where each variant's behaviour comes from (repository@commit and repo-relative paths)."""


def make_miniport(variant: str, profile: AdapterProfile, **kw: Any) -> ReferenceMiniport:
    """A miniport of the named variant for ``profile``; :class:`ProfileError` lists the
    known variant names."""
    try:
        cls = VARIANTS[variant]
    except KeyError:
        raise ProfileError(
            f"unknown miniport variant {variant!r}; known: {', '.join(VARIANTS)}"
        ) from None
    return cls(profile, **kw)


__all__ = [
    "GvnicMiniport",
    "NetKvmMiniport",
    "NetvspMiniport",
    "SOURCE",
    "SUMMARY",
    "VARIANTS",
    "XennetMiniport",
    "make_miniport",
]

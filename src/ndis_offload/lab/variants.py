"""Real miniports' handling of ``OID_OFFLOAD_ENCAPSULATION`` and ``OID_TCP_OFFLOAD_PARAMETERS``.

Each class here is a :class:`~ndis_offload.stack.miniport.ReferenceMiniport` subclass that
reproduces one real driver's documented behaviour (``/work/shared/REAL-MINIPORTS.md`` §1 and
§3), overriding single decisions where it can and a whole set handler where the driver's
control flow differs (e.g. it indicates even after a failure). Source paths are
repository-relative, at the commit named in each class's ``source``.

:data:`VARIANTS` is the explicit registry; :func:`make_miniport` builds one by name.
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

from ndis_offload.constants import objects as o
from ndis_offload.constants.offload import (
    NdisEncapsulation,
    NdisOffloadParametersChecksum,
    NdisOffloadSet,
)
from ndis_offload.constants.status import NdisStatus
from ndis_offload.stack.miniport import ReferenceMiniport, complete, short_buffer
from ndis_offload.stack.profiles import AdapterProfile, ProfileError, keywords_from_features
from ndis_offload.stack.requests import OidCompletion, OidRequest
from ndis_offload.structs.encapsulation import NdisOffloadEncapsulation
from ndis_offload.structs.parameters import NdisOffloadParameters

ON, OFF, NO_CHANGE = NdisOffloadSet.ON, NdisOffloadSet.OFF, NdisOffloadSet.NO_CHANGE
IEEE_802_3 = int(NdisEncapsulation.IEEE_802_3)
ENCAPSULATION_SIZE = o.NDIS_SIZEOF_OFFLOAD_ENCAPSULATION_REVISION_1
PARAMETERS_REV1_SIZE = o.NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_1
DISABLED, ENABLED = 1, 2
"""``NDIS_OFFLOAD_PARAMETERS_{LSOV1,LSOV2,RSC,USO}_DISABLED`` / ``_ENABLED``."""

CHECKSUM_FIELDS: tuple[tuple[str, str], ...] = (
    ("IPv4Checksum", "ip4"),
    ("TCPIPv4Checksum", "tcp4"),
    ("UDPIPv4Checksum", "udp4"),
    ("TCPIPv6Checksum", "tcp6"),
    ("UDPIPv6Checksum", "udp6"),
)
"""``NDIS_OFFLOAD_PARAMETERS`` checksum fields and the feature prefix each controls."""

DIRECTIONS: dict[int, tuple[bool, bool]] = {
    NdisOffloadParametersChecksum.TX_RX_DISABLED: (False, False),
    NdisOffloadParametersChecksum.TX_ENABLED_RX_DISABLED: (True, False),
    NdisOffloadParametersChecksum.RX_ENABLED_TX_DISABLED: (False, True),
    NdisOffloadParametersChecksum.TX_RX_ENABLED: (True, True),
}
"""Checksum value -> (Tx on, Rx on); any other value is "no change" for most drivers."""


def raw_parameters(buffer: bytes, limit: int | None = None) -> NdisOffloadParameters:
    """Read ``NDIS_OFFLOAD_PARAMETERS`` the way a C driver reads a zero-filled local copy:
    the first ``limit`` bytes (default: the newest ``sizeof``), every field regardless of
    ``Header`` (which is kept as sent, unchecked), no value checks."""
    return NdisOffloadParameters.decode_unchecked(buffer, limit)


def raw_encapsulation(buffer: bytes) -> NdisOffloadEncapsulation:
    """Read the first 28 bytes as ``NDIS_OFFLOAD_ENCAPSULATION`` without any header check."""
    return NdisOffloadEncapsulation.decode_unchecked(buffer, ENCAPSULATION_SIZE)


class _Variant(ReferenceMiniport):
    """Shared helpers for the real-driver variants."""

    summary: ClassVar[str] = ""
    source: ClassVar[str] = ""

    def _commit(
        self,
        request: OidRequest,
        new: frozenset[str],
        *,
        indicate: bool,
        bytes_read: int,
        flags: int = 0,
    ) -> OidCompletion:
        """Store ``new`` as the configured set (and the registry, as the reference does),
        indicate if asked, complete with SUCCESS."""
        self.configured = new
        if not flags & 1:  # NDIS_OFFLOAD_PARAMETERS_SKIP_REGISTRY_UPDATE
            self.registry.update(keywords_from_features(new))
        if indicate:
            self.indicate_current_config()
        return complete(request, NdisStatus.SUCCESS, BytesRead=bytes_read)


# --------------------------------------------------------------------------------------------
class NetKvmMiniport(_Variant):
    """virtio-win NetKVM (``NetKVM/wlh/ParaNdis6_Oid.cpp`` ``OnSetOffloadEncapsulation`` /
    ``OnSetOffloadParameters`` / ``OnSetRSCParameters`` / ``ApplyOffloadConfiguration``;
    ``NetKVM/Common/ParaNdis_Oid.cpp`` ``ParaNdis_OidSetCopy``).

    Encapsulation: short buffer -> BUFFER_TOO_SHORT (BytesNeeded 28); Header must be exactly
    {0xA8, 1, 28}; ``EncapsulationType`` is tested as a bit mask for 802.3; only the
    ON/OFF combinations are accepted (NO_CHANGE fails), both ON need equal ``HeaderSize``.
    Success stores the L2 header length (``ipHeaderOffset``) and the per-family TX switch
    (``bOffloadv4Enabled``/``v6``) but leaves the reported configuration alone and sends no
    indication.

    Parameters: < 20 bytes -> BUFFER_TOO_SHORT; Header unchecked; RSC (rev >= 3) is applied
    first (NOT_SUPPORTED when unsupported) and stays applied if the rest fails; NO_CHANGE
    and out-of-range values keep the current setting; LsoV1/LsoV2IPv4 contradiction fails;
    USO only with rev >= 5 and Size >= 34; IPsec/connection fields ignored; success always
    indicates.
    """

    variant = "netkvm"
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

    # -- OID_OFFLOAD_ENCAPSULATION -----------------------------------------------------------
    def decode_encapsulation(self, request: OidRequest) -> NdisOffloadEncapsulation | OidCompletion:
        buffer = request.InformationBuffer
        short = short_buffer(request, ENCAPSULATION_SIZE, NdisStatus.BUFFER_TOO_SHORT)
        if short is not None:
            return short
        enc = raw_encapsulation(buffer)
        h = enc.Header
        bad = NdisStatus.INVALID_PARAMETER
        if (h.Type, h.Revision, h.Size) != (
            o.NDIS_OBJECT_TYPE_OFFLOAD_ENCAPSULATION,
            o.NDIS_OFFLOAD_ENCAPSULATION_REVISION_1,
            ENCAPSULATION_SIZE,
        ):
            return complete(
                request,
                bad,
                f"Header {{0x{h.Type:X}, {h.Revision}, {h.Size}}} is not exactly "
                f"{{0xA8, 1, {ENCAPSULATION_SIZE}}}",
            )
        for family, part in ((4, enc.IPv4), (6, enc.IPv6)):
            if part.Enabled == ON and not part.EncapsulationType & IEEE_802_3:
                return complete(request, bad, f"IPv{family}.EncapsulationType lacks the 802.3 bit")
        combo = (enc.IPv4.Enabled, enc.IPv6.Enabled)
        if combo == (ON, ON) and enc.IPv4.HeaderSize != enc.IPv6.HeaderSize:
            return complete(request, bad, "both ON with different HeaderSize")
        if combo not in ((ON, ON), (OFF, ON), (ON, OFF), (OFF, OFF)):
            return complete(request, bad, f"Enabled combination {combo} is not ON/OFF")
        return enc

    def check_encapsulation(
        self, family: int, encapsulation: int, header_size: int
    ) -> tuple[NdisStatus, str] | None:
        return None  # the 802.3 bit test in decode_encapsulation is all NetKVM checks

    def apply_family(self, family: int, enabled: int, encapsulation: int, header_size: int) -> None:
        """Only the TX-path switches and ``ipHeaderOffset``; the reported config is unchanged."""
        self.tx_offload_enabled[family] = enabled == ON
        if enabled == ON:
            self.ip_header_offset = header_size
            self.header_size[family] = header_size
            self.encapsulation_type[family] = encapsulation

    def indicate_after_encapsulation(self, changed: bool) -> bool:
        return False

    # -- OID_TCP_OFFLOAD_PARAMETERS ----------------------------------------------------------
    def set_offload_parameters(self, request: OidRequest) -> OidCompletion:
        buffer = request.InformationBuffer
        short = short_buffer(request, PARAMETERS_REV1_SIZE, NdisStatus.BUFFER_TOO_SHORT)
        if short is not None:
            return short
        p = raw_parameters(buffer)
        problem = self._apply_rsc(p)
        if problem is not None:
            return complete(request, NdisStatus.NOT_SUPPORTED, problem)
        result = self.plan_parameters(p)
        if isinstance(result, tuple):
            return complete(request, result[0], result[1])
        read = min(len(buffer), NdisOffloadParameters.sizeof())
        return self._commit(request, result, indicate=True, bytes_read=read, flags=p.Flags)

    def _apply_rsc(self, p: NdisOffloadParameters) -> str | None:
        """``OnSetRSCParameters``: check both families, then apply at once (before the rest
        of the request is validated)."""
        if p.Header.Revision < o.NDIS_OFFLOAD_PARAMETERS_REVISION_3:
            return None
        pairs = ((4, p.RscIPv4), (6, p.RscIPv6))
        for family, value in pairs:
            if value != 0 and f"rsc{family}" not in self.hardware:
                return f"RscIPv{family}: RSC is not supported"
        new = set(self.configured)
        for family, value in pairs:
            if value != 0:
                (new.add if value == ENABLED else new.discard)(f"rsc{family}")
        self.configured = frozenset(new)
        return None

    def plan_parameters(self, p: NdisOffloadParameters) -> frozenset[str] | tuple[NdisStatus, str]:
        """``ApplyOffloadConfiguration`` on a copy (``fPresent``)."""
        new = set(self.configured)
        failed: list[str] = []
        for field_name, prefix in CHECKSUM_FIELDS:
            value = getattr(p, field_name)
            if value not in DIRECTIONS:  # NO_CHANGE and out-of-range keep the current value
                continue
            for on, suffix in zip(DIRECTIONS[value], ("tx", "rx"), strict=True):
                feature = f"{prefix}_{suffix}"
                if on and feature not in self.hardware:
                    failed.append(f"{field_name}: {feature} unsupported")
                (new.add if on and feature in self.hardware else new.discard)(feature)
        lso4 = {"lsov1", "lsov2_4"} & self.hardware
        if DISABLED in (p.LsoV1, p.LsoV2IPv4):
            new -= {"lsov1", "lsov2_4"}
        elif ENABLED in (p.LsoV1, p.LsoV2IPv4):
            if lso4:
                new |= lso4
            else:
                failed.append("LSOv4 unsupported")
        if p.LsoV2IPv6 == DISABLED:
            new.discard("lsov2_6")
        elif p.LsoV2IPv6 == ENABLED:
            if "lsov2_6" in self.hardware:
                new.add("lsov2_6")
            else:
                failed.append("LsoV2IPv6 unsupported")
        if {p.LsoV1, p.LsoV2IPv4} == {DISABLED, ENABLED}:
            failed.append("LsoV1 and LsoV2IPv4 contradict each other")
        if (
            p.Header.Revision >= o.NDIS_OFFLOAD_PARAMETERS_REVISION_5
            and p.Header.Size >= o.NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_5
        ):
            for family, value in ((4, p.UdpSegmentation.IPv4), (6, p.UdpSegmentation.IPv6)):
                feature = f"uso{family}"
                if value == DISABLED:
                    new.discard(feature)
                elif value == ENABLED:
                    if feature in self.hardware:
                        new.add(feature)
                    else:
                        failed.append(f"UdpSegmentation.IPv{family} unsupported")
        if failed:
            return NdisStatus.INVALID_PARAMETER, "; ".join(failed)
        return frozenset(new)


# --------------------------------------------------------------------------------------------
def read_ndis_object(buffer: bytes, obj_type: int, min_revision: int, min_size: int) -> str | None:
    """openvmm ``read_ndis_object``: ``None`` if the header is acceptable, else why not."""
    if len(buffer) < 4:
        return f"buffer is {len(buffer)} bytes, too short for NDIS_OBJECT_HEADER"
    t, revision, size = struct.unpack_from("<BBH", buffer, 0)
    if t != obj_type:
        return f"Header.Type 0x{t:X} != 0x{obj_type:X}"
    if revision < min_revision:
        return f"Header.Revision {revision} < {min_revision}"
    if size < min_size:
        return f"Header.Size {size} < {min_size}"
    if len(buffer) < size:
        return f"buffer is {len(buffer)} bytes, Header.Size says {size}"
    return None


class NetvspMiniport(_Variant):
    """openvmm netvsp, the host side of the Hyper-V synthetic NIC
    (``vm/devices/net/netvsp/src/lib.rs``, ``vm/devices/net/netvsp/src/rndisprot.rs``).

    Encapsulation: ``read_ndis_object`` (Type 0xA8, Revision >= 1, Size >= 28 and <= the
    sent length) else INVALID_DATA; a family with ON must have ``EncapsulationType ==
    802_3`` exactly and ``HeaderSize == 14`` else NOT_SUPPORTED; OFF/NO_CHANGE ignored;
    nothing stored, no indication (a pure validator).

    Parameters: ``read_ndis_object`` (Type 0x80, Revision >= 1, Size >= 20) else
    INVALID_DATA; ``LsoV1 == ENABLED`` -> NOT_SUPPORTED; checksum 1..4 and LsoV2 1/2 apply,
    anything else is no change; unsupported requests are clamped silently
    (``mask_to_supported``); RSC/USO/IPsec ignored. The real indication is deferred until
    the RNDIS device is operational; modelled as an indication right after success.
    """

    variant = "netvsp"
    summary: ClassVar[str] = (
        "openvmm netvsp (Hyper-V): INVALID_DATA for bad headers, ON needs 802_3 == and "
        "HeaderSize 14, encapsulation stores nothing; parameters clamp silently"
    )
    source: ClassVar[str] = (
        "microsoft/openvmm@1488a37 vm/devices/net/netvsp/src/lib.rs, "
        "vm/devices/net/netvsp/src/rndisprot.rs"
    )

    def decode_encapsulation(self, request: OidRequest) -> NdisOffloadEncapsulation | OidCompletion:
        buffer = request.InformationBuffer
        problem = read_ndis_object(
            buffer, o.NDIS_OBJECT_TYPE_OFFLOAD_ENCAPSULATION, 1, ENCAPSULATION_SIZE
        )
        if problem is not None:
            return complete(request, NdisStatus.INVALID_DATA, problem)
        return raw_encapsulation(buffer)

    def check_encapsulation(
        self, family: int, encapsulation: int, header_size: int
    ) -> tuple[NdisStatus, str] | None:
        if encapsulation != IEEE_802_3 or header_size != 14:
            return (
                NdisStatus.NOT_SUPPORTED,
                f"IPv{family}: only EncapsulationType 802_3 with HeaderSize 14 "
                f"(got 0x{encapsulation:X}/{header_size})",
            )
        return None

    def apply_family(self, family: int, enabled: int, encapsulation: int, header_size: int) -> None:
        """netvsp stores nothing."""

    def indicate_after_encapsulation(self, changed: bool) -> bool:
        return False

    def set_offload_parameters(self, request: OidRequest) -> OidCompletion:
        buffer = request.InformationBuffer
        problem = read_ndis_object(buffer, o.NDIS_OBJECT_TYPE_DEFAULT, 1, PARAMETERS_REV1_SIZE)
        if problem is not None:
            return complete(request, NdisStatus.INVALID_DATA, problem)
        p = raw_parameters(buffer, struct.unpack_from("<H", buffer, 2)[0])
        if p.LsoV1 == ENABLED:
            return complete(request, NdisStatus.NOT_SUPPORTED, "LsoV1 is not supported")
        new = set(self.configured)
        for field_name, prefix in CHECKSUM_FIELDS:
            value = getattr(p, field_name)
            if value in DIRECTIONS:
                for on, suffix in zip(DIRECTIONS[value], ("tx", "rx"), strict=True):
                    (new.add if on else new.discard)(f"{prefix}_{suffix}")
        for value, feature in ((p.LsoV2IPv4, "lsov2_4"), (p.LsoV2IPv6, "lsov2_6")):
            if value in (DISABLED, ENABLED):
                (new.add if value == ENABLED else new.discard)(feature)
        clamped = frozenset(new) & self.hardware  # mask_to_supported: no error
        return self._commit(
            request, clamped, indicate=True, bytes_read=p.Header.Size, flags=p.Flags
        )


# --------------------------------------------------------------------------------------------
GVNIC_ENCAPSULATION_FEATURES: dict[int, frozenset[str]] = {
    4: frozenset({"tcp4_tx", "tcp4_rx", "udp4_tx", "udp4_rx", "lsov2_4"}),
    6: frozenset({"tcp6_tx", "tcp6_rx", "udp6_tx", "udp6_rx", "lsov2_6"}),
}
"""What gVNIC's ``UpdateOffloadConfigFromEncapsulation`` switches per family (not the IPv4
header checksum, not USO)."""


def exact_length(request: OidRequest, size: int) -> OidCompletion | None:
    """gVNIC ``CopyOidInformation``: the buffer must be exactly ``size`` bytes."""
    length = len(request.InformationBuffer)
    if length < size:
        return complete(
            request,
            NdisStatus.BUFFER_TOO_SHORT,
            f"InformationBufferLength {length} < sizeof {size}",
            BytesNeeded=size,
        )
    if length > size:
        return complete(
            request,
            NdisStatus.BUFFER_OVERFLOW,
            f"InformationBufferLength {length} > sizeof {size}",
            BytesNeeded=size,
        )
    return None


class GvnicMiniport(_Variant):
    """Google gVNIC (``src/oid.cpp`` ``CopyOidInformation`` /
    ``ValidateOffloadEncapsulationRequest``, ``src/offload.cpp``
    ``UpdateOffloadConfigFromEncapsulation`` / ``UpdateOffloadConfigFromOffloadParameters``,
    ``src/gvnic_pci_device.cpp`` ``UpdateOffloadConfig``).

    Both OIDs need ``InformationBufferLength == sizeof`` (shorter: BUFFER_TOO_SHORT, longer:
    BUFFER_OVERFLOW). Encapsulation: Revision 1 and Type 0xA8 (Size unchecked), bit-mask
    802.3; ON turns on Tx/Rx TCP+UDP checksum and LSO of the family, OFF turns them off,
    validated on a copy against the hardware (INVALID_PARAMETER); both HeaderSizes stored;
    indication only if the configuration changed. Parameters: copy, validate, apply
    atomically; LsoV1 and LsoV2IPv4 ORed; indication only if changed.
    """

    variant = "gvnic"
    summary: ClassVar[str] = (
        "Google gVNIC: exact buffer length, bit-mask 802.3, encapsulation switches "
        "TCP/UDP checksum + LSO per family, indicates only on change"
    )
    source: ClassVar[str] = (
        "GoogleCloudPlatform/compute-virtual-ethernet-windows@cad1edf src/oid.cpp, "
        "src/offload.cpp, src/gvnic_pci_device.cpp"
    )
    parameters_sizeof: ClassVar[int] = 32
    """``sizeof(NDIS_OFFLOAD_PARAMETERS)`` in the Win10 build (``NDIS650_MINIPORT``:
    revision 4 fields, 32 bytes)."""

    def decode_encapsulation(self, request: OidRequest) -> NdisOffloadEncapsulation | OidCompletion:
        wrong = exact_length(request, ENCAPSULATION_SIZE)
        if wrong is not None:
            return wrong
        enc = raw_encapsulation(request.InformationBuffer)
        bad = NdisStatus.INVALID_PARAMETER
        if enc.Header.Revision != 1 or enc.Header.Type != o.NDIS_OBJECT_TYPE_OFFLOAD_ENCAPSULATION:
            return complete(request, bad, "Header.Revision must be 1 and Type 0xA8")
        for family, part in ((4, enc.IPv4), (6, enc.IPv6)):
            if part.Enabled == ON and not part.EncapsulationType & IEEE_802_3:
                return complete(request, bad, f"IPv{family}.EncapsulationType lacks the 802.3 bit")
        return enc

    def set_offload_encapsulation(self, request: OidRequest) -> OidCompletion:
        parsed = self.decode_encapsulation(request)
        if isinstance(parsed, OidCompletion):
            return parsed
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

    def set_offload_parameters(self, request: OidRequest) -> OidCompletion:
        wrong = exact_length(request, self.parameters_sizeof)
        if wrong is not None:
            return wrong
        p = raw_parameters(request.InformationBuffer)
        result = self.plan_parameters(p)
        if isinstance(result, tuple):
            return complete(request, result[0], result[1])
        changed = result != self.configured
        return self._commit(
            request, result, indicate=changed, bytes_read=self.parameters_sizeof, flags=p.Flags
        )

    def plan_parameters(self, p: NdisOffloadParameters) -> frozenset[str] | tuple[NdisStatus, str]:
        new = set(self.configured)
        for field_name, prefix in CHECKSUM_FIELDS:
            value = getattr(p, field_name)
            if value in DIRECTIONS:  # NO_CHANGE and out-of-range: current
                for on, suffix in zip(DIRECTIONS[value], ("tx", "rx"), strict=True):
                    (new.add if on else new.discard)(f"{prefix}_{suffix}")
        if ENABLED in (p.LsoV2IPv4, p.LsoV1):
            new.add("lsov2_4")
        elif p.LsoV2IPv4 == DISABLED:
            new.discard("lsov2_4")
        if p.LsoV2IPv6 == ENABLED:
            new.add("lsov2_6")
        elif p.LsoV2IPv6 == DISABLED:
            new.discard("lsov2_6")
        for family, value in ((4, p.RscIPv4), (6, p.RscIPv6)):
            if value in (DISABLED, ENABLED):
                (new.add if value == ENABLED else new.discard)(f"rsc{family}")
        unsupported = new - self.hardware
        if unsupported:
            return (
                NdisStatus.INVALID_PARAMETER,
                f"ValidateOffloadConfig: {sorted(unsupported)} not supported by the hardware",
            )
        return frozenset(new)


# --------------------------------------------------------------------------------------------
XENNET_FEATURES = frozenset(
    {f"{p}_{d}" for _, p in CHECKSUM_FIELDS for d in ("tx", "rx")} | {"lsov2_4", "lsov2_6"}
)
"""What xennet's TX/RX offload options cover (no LSOv1, USO or RSC)."""


class XennetMiniport(_Variant):
    """XenServer win-xennet (``src/xennet/adapter.c`` ``AdapterSetInformation``,
    ``AdapterIndicateOffloadChanged``; NDIS 6.0 build, so ``sizeof(NDIS_OFFLOAD_PARAMETERS)``
    is 20).

    Encapsulation: a buffer shorter than 28 is SUCCESS and a no-op; ON with
    ``EncapsulationType != 802_3`` (exact) is INVALID_PARAMETER, but the driver still
    rebuilds its offload options from the registry properties read at init (OFF does not
    switch anything off) and indicates the current configuration, even on failure.

    Parameters: shorter than 20 -> INVALID_LENGTH (BytesNeeded 20); IPsecV1, LsoV1,
    TcpConnectionIPv4/IPv6 != NO_CHANGE -> INVALID_PARAMETER; LsoV2IPvX != NO_CHANGE
    without backend LSO -> INVALID_PARAMETER; checksum Tx = value in {2, 4}, Rx = value in
    {3, 4}, so NO_CHANGE (0) disables (deviation); indication only if something changed.
    """

    variant = "xennet"
    summary: ClassVar[str] = (
        "XenServer xennet: encapsulation resets offloads to the registry and indicates even "
        "on failure; parameters treat checksum NO_CHANGE as disable"
    )
    source: ClassVar[str] = "xenserver/win-xennet@21310b8 src/xennet/adapter.c"
    parameters_sizeof: ClassVar[int] = PARAMETERS_REV1_SIZE

    def set_offload_encapsulation(self, request: OidRequest) -> OidCompletion:
        buffer = request.InformationBuffer
        if len(buffer) < ENCAPSULATION_SIZE:
            return complete(
                request,
                NdisStatus.SUCCESS,
                "short buffer: xennet does nothing and returns SUCCESS",
                BytesNeeded=ENCAPSULATION_SIZE,
            )
        enc = raw_encapsulation(buffer)
        status = NdisStatus.SUCCESS
        detail = ""
        for family, part in ((4, enc.IPv4), (6, enc.IPv6)):
            if part.Enabled == ON and part.EncapsulationType != IEEE_802_3:
                status = NdisStatus.INVALID_PARAMETER
                detail = f"IPv{family}.EncapsulationType 0x{part.EncapsulationType:X} != 802_3"
        registry = self.profile.configured & XENNET_FEATURES
        self.configured = (self.configured - XENNET_FEATURES) | registry
        self.receive_checksum_started = True
        self.indicate_current_config()  # AdapterIndicateOffloadChanged, whatever the status
        if status != NdisStatus.SUCCESS:
            return complete(request, status, detail, BytesNeeded=ENCAPSULATION_SIZE)
        return complete(
            request, status, BytesRead=ENCAPSULATION_SIZE, BytesNeeded=ENCAPSULATION_SIZE
        )

    def set_offload_parameters(self, request: OidRequest) -> OidCompletion:
        buffer = request.InformationBuffer
        size = self.parameters_sizeof
        short = short_buffer(request, size, NdisStatus.INVALID_LENGTH)
        if short is not None:
            return short
        p = raw_parameters(buffer, size)
        for field_name in ("IPsecV1", "LsoV1", "TcpConnectionIPv4", "TcpConnectionIPv6"):
            if getattr(p, field_name) != 0:
                return complete(
                    request,
                    NdisStatus.INVALID_PARAMETER,
                    f"{field_name} must be NO_CHANGE",
                    BytesNeeded=size,
                )
        for field_name, feature in (("LsoV2IPv4", "lsov2_4"), ("LsoV2IPv6", "lsov2_6")):
            if getattr(p, field_name) != 0 and feature not in self.hardware:
                return complete(
                    request,
                    NdisStatus.INVALID_PARAMETER,
                    f"{field_name}: the backend has no large packet offload",
                    BytesNeeded=size,
                )
        new = set(self.configured)
        for value, feature in ((p.LsoV2IPv4, "lsov2_4"), (p.LsoV2IPv6, "lsov2_6")):
            if value in (DISABLED, ENABLED):
                (new.add if value == ENABLED else new.discard)(feature)
        for field_name, prefix in CHECKSUM_FIELDS:
            value = getattr(p, field_name)
            tx = value in (2, 4)
            rx = value in (3, 4)
            for on, suffix in ((tx, "tx"), (rx, "rx")):
                (new.add if on else new.discard)(f"{prefix}_{suffix}")
        result = frozenset(new)
        changed = result != self.configured
        return self._commit(request, result, indicate=changed, bytes_read=size, flags=p.Flags)


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

"""Filter drivers: they see every OID request going down and every indication going up,
and may pass, modify or fail them (``FilterOidRequest`` / ``FilterStatus``)."""

from __future__ import annotations

from ndis_offload.constants.status import NdisStatus
from ndis_offload.errors import DecodeError
from ndis_offload.stack.features import (
    FEATURE_TABLE,
    FEATURES,
    OffloadLimits,
    build_offload,
    features_of,
    read_member,
)
from ndis_offload.stack.requests import OidCompletion, OidRequest, StatusIndication
from ndis_offload.structs.offload import NdisOffload


class FilterDriver:
    """Base filter: passes everything through unchanged. Override what you need."""

    def __init__(self, name: str) -> None:
        self.name = name

    def on_request(self, request: OidRequest) -> OidRequest | OidCompletion:
        """A request going down: return it (maybe modified) or complete it here."""
        return request

    def on_completion(self, completion: OidCompletion) -> OidCompletion:
        """A completion coming back up."""
        return completion

    def on_indication(self, indication: StatusIndication) -> StatusIndication | None:
        """An indication going up: return it (maybe modified), or ``None`` to drop it."""
        return indication

    def on_attach(self, current: NdisOffload | None) -> NdisOffload | None:
        """``FilterAttach``: the offload configuration the modules above will see."""
        return current


class RecordingFilter(FilterDriver):
    """Pass-through filter that records what crossed it (a lightweight ndiscap)."""

    def __init__(self, name: str = "recorder") -> None:
        super().__init__(name)
        self.requests: list[OidRequest] = []
        self.completions: list[OidCompletion] = []
        self.indications: list[StatusIndication] = []

    def on_request(self, request: OidRequest) -> OidRequest | OidCompletion:
        self.requests.append(request)
        return request

    def on_completion(self, completion: OidCompletion) -> OidCompletion:
        self.completions.append(completion)
        return completion

    def on_indication(self, indication: StatusIndication) -> StatusIndication | None:
        self.indications.append(indication)
        return indication


class OffloadMaskFilter(FilterDriver):
    """Hides chosen offload features from everything above it, as real filters (e.g. a
    firewall that cannot handle LSO) do: it rewrites ``NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG``
    indications and the attach-time configuration so those features read as off."""

    def __init__(self, hide: frozenset[str] | set[str], name: str = "mask") -> None:
        super().__init__(name)
        unknown = set(hide) - set(FEATURES)
        if unknown:
            raise ValueError(f"unknown features {sorted(unknown)}; known: {', '.join(FEATURES)}")
        self.hide = frozenset(hide)

    def mask(self, offload: NdisOffload) -> NdisOffload:
        """``offload`` with the hidden features off (encapsulation masks and sizes kept)."""
        encapsulations: dict[str, int] = {}
        for row in FEATURE_TABLE.values():
            if row.encapsulation_member is not None:
                mask = int(read_member(offload, row.encapsulation_member))
                encapsulations[row.offload_type] = encapsulations.get(row.offload_type, 0) | mask
        lso = offload.LsoV2.IPv4 if offload.LsoV2.IPv4.Encapsulation else offload.LsoV2.IPv6
        uso = offload.UdpSegmentation.IPv4
        limits = OffloadLimits(
            lso_max_offload_size=lso.MaxOffLoadSize or offload.LsoV1.IPv4.MaxOffLoadSize,
            lso_min_segment_count=lso.MinSegmentCount or offload.LsoV1.IPv4.MinSegmentCount,
            uso_max_offload_size=uso.MaxOffLoadSize,
            uso_min_segment_count=uso.MinSegmentCount,
            revision=min(offload.Header.Revision, 7),
            encapsulations=encapsulations,
        )
        return build_offload(features_of(offload) - self.hide, limits)

    def on_attach(self, current: NdisOffload | None) -> NdisOffload | None:
        return None if current is None else self.mask(current)

    def on_indication(self, indication: StatusIndication) -> StatusIndication | None:
        if indication.StatusCode != NdisStatus.TASK_OFFLOAD_CURRENT_CONFIG:
            return indication
        try:
            offload = NdisOffload.decode(indication.StatusBuffer)
        except DecodeError:
            return indication
        return StatusIndication(indication.StatusCode, self.mask(offload).encode(), self.name)


class FailOidFilter(FilterDriver):
    """Fails every request for one OID with a chosen status (fault injection)."""

    def __init__(self, oid: int, status: NdisStatus, name: str = "fail") -> None:
        super().__init__(name)
        self.oid = oid
        self.status = status

    def on_request(self, request: OidRequest) -> OidRequest | OidCompletion:
        if request.Oid == self.oid:
            return OidCompletion(request, self.status, detail=f"failed by filter {self.name}")
        return request

"""Adapter profiles: what a NIC's hardware can do, plus its standardized INF keyword values.

The keywords (``*TCPChecksumOffloadIPv4`` ...) are the registry values that set a miniport's
initial configuration (``using-registry-values-to-enable-and-disable-task-offloading``):
checksum keywords take 0 disabled, 1 Tx, 2 Rx, 3 Tx and Rx; LSO, RSC and USO keywords 0/1.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ndis_offload.constants.offload import NdisEncapsulation
from ndis_offload.constants.status import NdisStatus
from ndis_offload.errors import NdisError
from ndis_offload.stack.features import (
    FEATURE_TABLE,
    FEATURES,
    KEYWORDS,
    OFFLOAD_TYPES,
    Feature,
    OffloadLimits,
)


class ProfileError(NdisError):
    """A profile, keyword or encapsulation given by the user is not valid."""

    default_status = NdisStatus.INVALID_PARAMETER


def features_from_keywords(keywords: dict[str, int]) -> frozenset[Feature]:
    """The features the keyword values ask for (before masking with the hardware)."""
    out: set[Feature] = set()
    for name, value in keywords.items():
        for feature in KEYWORDS.get(name, ()):
            if value & FEATURE_TABLE[feature].keyword_bit:
                out.add(feature)
    return frozenset(out)


def keywords_from_features(features: frozenset[str]) -> dict[str, int]:
    """The keyword values that describe ``features`` (what the registry would hold)."""
    out = dict.fromkeys(KEYWORDS, 0)
    for feature in FEATURES:
        if feature in features:
            row = FEATURE_TABLE[feature]
            out[row.keyword] |= row.keyword_bit
    return out


def validate_keywords(keywords: dict[str, int]) -> None:
    """Raise :class:`ProfileError` for an unknown keyword or an out-of-range value."""
    for name, value in keywords.items():
        if name not in KEYWORDS:
            raise ProfileError(f"unknown INF keyword {name!r}; known: {', '.join(KEYWORDS)}")
        top = FEATURE_TABLE[KEYWORDS[name][0]].keyword_max
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
            raise ProfileError(f"{name} = {value!r}: must be an integer 0..{top}")


@dataclass(frozen=True)
class AdapterProfile:
    """A NIC model: hardware features, reported limits and encapsulations, INF keywords."""

    name: str
    description: str
    hardware: frozenset[str]
    keywords: dict[str, int]
    limits: OffloadLimits = field(default_factory=OffloadLimits)

    def __post_init__(self) -> None:
        validate_keywords(self.keywords)
        unknown = self.hardware - set(FEATURES)
        if unknown:
            raise ProfileError(f"unknown features {sorted(unknown)}")
        object.__setattr__(self, "hardware", frozenset(Feature(f) for f in self.hardware))

    @property
    def configured(self) -> frozenset[str]:
        """Initial configuration: what the keywords enable and the hardware can do."""
        return features_from_keywords(self.keywords) & self.hardware

    def with_keywords(self, overrides: dict[str, int]) -> AdapterProfile:
        """A copy with some keyword values replaced (validated)."""
        validate_keywords(overrides)
        return replace(self, keywords={**self.keywords, **overrides})

    def with_encapsulations(self, encapsulations: int | dict[str, int]) -> AdapterProfile:
        """A copy whose offload types support other ``NDIS_ENCAPSULATION_*`` masks: one mask
        for every type, or a dict per type (``checksum``, ``lsov1``, ``lsov2``, ``uso``)."""
        if isinstance(encapsulations, int):
            table: dict[str, int] = dict.fromkeys(OFFLOAD_TYPES, encapsulations)
        else:
            unknown = set(encapsulations) - set(OFFLOAD_TYPES)
            if unknown:
                raise ProfileError(f"unknown offload types {sorted(unknown)}")
            table = {**self.limits.encapsulations, **encapsulations}
        for kind, mask in table.items():
            if mask & ~NdisEncapsulation.mask() or mask < 0:
                raise ProfileError(f"{kind}: 0x{mask:X} is not an NDIS_ENCAPSULATION_* mask")
        return replace(self, limits=replace(self.limits, encapsulations=table))


ALL_ON = {name: FEATURE_TABLE[features[0]].keyword_max for name, features in KEYWORDS.items()}
CHECKSUM_KEYWORDS = tuple(
    name
    for name, features in KEYWORDS.items()
    if FEATURE_TABLE[features[0]].offload_type == "checksum"
)
ETHERNET = int(
    NdisEncapsulation.IEEE_802_3
    | NdisEncapsulation.IEEE_802_3_P_AND_Q
    | NdisEncapsulation.IEEE_802_3_P_AND_Q_IN_OOB
)
CHECKSUM_ONLY = frozenset(f for f in FEATURES if FEATURE_TABLE[f].offload_type == "checksum")
NONCONFORMANT_LLC_ONLY = "nonconformant-llc-only"
"""The one built-in profile that breaks a documented rule on purpose (a negative example)."""


def _builtin() -> dict[str, AdapterProfile]:
    full = AdapterProfile(
        "full",
        "Full-featured Ethernet NIC: every checksum, LSOv1/LSOv2, USO and RSC; 802.3 with "
        "802.1Q (in frame and out of band); all INF keywords on (LSOv1 off, as inboxes ship)",
        frozenset(FEATURES),
        {**ALL_ON, "*LsoV1IPv4": 0},
        OffloadLimits(encapsulations=dict.fromkeys(OFFLOAD_TYPES, ETHERNET)),
    )
    return {
        p.name: p
        for p in (
            full,
            AdapterProfile(
                "checksum-only",
                "Ethernet NIC with Tx/Rx IP, TCP and UDP checksum offload and nothing else",
                CHECKSUM_ONLY,
                dict.fromkeys(CHECKSUM_KEYWORDS, 3),
                OffloadLimits(encapsulations={"checksum": ETHERNET}),
            ),
            AdapterProfile(
                "ethernet-llc-snap",
                "Ethernet NIC whose checksum offload also supports LLC/SNAP-routed "
                "encapsulation (RFC 1483) and whose LSOv2 is 802.3 only: both encapsulation "
                "sets succeed, and an LLC/SNAP protocol may use checksum offload but not LSO",
                CHECKSUM_ONLY | {Feature.LSOV2_4, Feature.LSOV2_6},
                {**dict.fromkeys(CHECKSUM_KEYWORDS, 3), "*LsoV2IPv4": 1, "*LsoV2IPv6": 1},
                OffloadLimits(
                    encapsulations={
                        "checksum": ETHERNET | int(NdisEncapsulation.IEEE_LLC_SNAP_ROUTED),
                        "lsov2": ETHERNET,
                    }
                ),
            ),
            AdapterProfile(
                NONCONFORMANT_LLC_ONLY,
                "NEGATIVE EXAMPLE, not a conformant adapter: its offloads advertise only "
                "LLC/SNAP-routed encapsulation, but every offload type must support 802.3 "
                "(oid-tcp-offload-current-config); an 802.3 encapsulation set fails with "
                "NDIS_STATUS_INVALID_PARAMETER",
                CHECKSUM_ONLY | {Feature.LSOV2_4, Feature.LSOV2_6},
                {**dict.fromkeys(CHECKSUM_KEYWORDS, 3), "*LsoV2IPv4": 1, "*LsoV2IPv6": 1},
                OffloadLimits(
                    encapsulations={
                        "checksum": int(NdisEncapsulation.IEEE_LLC_SNAP_ROUTED),
                        "lsov2": int(NdisEncapsulation.IEEE_LLC_SNAP_ROUTED),
                    }
                ),
            ),
            AdapterProfile(
                "no-offload",
                "Adapter with no task offload at all: both set OIDs are "
                "NDIS_STATUS_NOT_SUPPORTED and no NDIS_OFFLOAD is reported or indicated",
                frozenset(),
                {},
                OffloadLimits(encapsulations={}),
            ),
            AdapterProfile(
                "virtio-net",
                "virtio-net NIC as NetKVM reports it: checksums (IPv4 header checksum too), "
                "LSOv2 up to 0xF800, USO up to 34304, RSC, 802.3 only, NDIS_OFFLOAD rev 7",
                frozenset(FEATURES) - {Feature.LSOV1},
                {**ALL_ON, "*LsoV1IPv4": 0},
                OffloadLimits(lso_max_offload_size=0xF800, uso_max_offload_size=34304),
            ),
            AdapterProfile(
                "hyperv-netvsc",
                "Hyper-V synthetic NIC as vmswitch/netvsp reports it: checksums, LSOv2 up to "
                "0xF53C, 802.3 only, NDIS_OFFLOAD rev 3 (no USO, no RSC offered)",
                frozenset(FEATURES)
                - {Feature.LSOV1, Feature.USO4, Feature.USO6, Feature.RSC4, Feature.RSC6},
                {**ALL_ON, "*LsoV1IPv4": 0, "*UsoIPv4": 0, "*UsoIPv6": 0},
                OffloadLimits(lso_max_offload_size=0xF53C, revision=3),
            ),
        )
    }


PROFILES: dict[str, AdapterProfile] = _builtin()
"""The built-in profiles by name (an explicit registry)."""
DEFAULT_PROFILE = "full"


def get_profile(name: str) -> AdapterProfile:
    """A built-in profile by name; :class:`ProfileError` lists the known names."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ProfileError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}") from None

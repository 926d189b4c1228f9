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
from ndis_offload.stack.features import FEATURES, OFFLOAD_TYPES, OffloadLimits

CHECKSUM_KEYWORDS: dict[str, str] = {
    "*IPChecksumOffloadIPv4": "ip4",
    "*TCPChecksumOffloadIPv4": "tcp4",
    "*TCPChecksumOffloadIPv6": "tcp6",
    "*UDPChecksumOffloadIPv4": "udp4",
    "*UDPChecksumOffloadIPv6": "udp6",
}
SWITCH_KEYWORDS: dict[str, str] = {
    "*LsoV1IPv4": "lsov1",
    "*LsoV2IPv4": "lsov2_4",
    "*LsoV2IPv6": "lsov2_6",
    "*RscIPv4": "rsc4",
    "*RscIPv6": "rsc6",
    "*UsoIPv4": "uso4",
    "*UsoIPv6": "uso6",
}
KEYWORDS: tuple[str, ...] = (*CHECKSUM_KEYWORDS, *SWITCH_KEYWORDS)


class ProfileError(NdisError):
    """A profile, keyword or encapsulation given by the user is not valid."""

    default_status = NdisStatus.INVALID_PARAMETER


def features_from_keywords(keywords: dict[str, int]) -> frozenset[str]:
    """The features the keyword values ask for (before masking with the hardware)."""
    out: set[str] = set()
    for name, value in keywords.items():
        if name in CHECKSUM_KEYWORDS:
            prefix = CHECKSUM_KEYWORDS[name]
            if value & 1:
                out.add(f"{prefix}_tx")
            if value & 2:
                out.add(f"{prefix}_rx")
        elif name in SWITCH_KEYWORDS and value:
            out.add(SWITCH_KEYWORDS[name])
    return frozenset(out)


def keywords_from_features(features: frozenset[str]) -> dict[str, int]:
    """The keyword values that describe ``features`` (what the registry would hold)."""
    out: dict[str, int] = {}
    for name, prefix in CHECKSUM_KEYWORDS.items():
        out[name] = (1 if f"{prefix}_tx" in features else 0) | (
            2 if f"{prefix}_rx" in features else 0
        )
    for name, feature in SWITCH_KEYWORDS.items():
        out[name] = 1 if feature in features else 0
    return out


def validate_keywords(keywords: dict[str, int]) -> None:
    """Raise :class:`ProfileError` for an unknown keyword or an out-of-range value."""
    for name, value in keywords.items():
        if name not in KEYWORDS:
            raise ProfileError(f"unknown INF keyword {name!r}; known: {', '.join(KEYWORDS)}")
        top = 3 if name in CHECKSUM_KEYWORDS else 1
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
            table = dict.fromkeys(OFFLOAD_TYPES[:4], encapsulations)
        else:
            unknown = set(encapsulations) - set(OFFLOAD_TYPES)
            if unknown:
                raise ProfileError(f"unknown offload types {sorted(unknown)}")
            table = {**self.limits.encapsulations, **encapsulations}
        for kind, mask in table.items():
            if mask & ~NdisEncapsulation.mask() or mask < 0:
                raise ProfileError(f"{kind}: 0x{mask:X} is not an NDIS_ENCAPSULATION_* mask")
        return replace(self, limits=replace(self.limits, encapsulations=table))


ALL_ON = {**dict.fromkeys(CHECKSUM_KEYWORDS, 3), **dict.fromkeys(SWITCH_KEYWORDS, 1)}
ETHERNET = int(
    NdisEncapsulation.IEEE_802_3
    | NdisEncapsulation.IEEE_802_3_P_AND_Q
    | NdisEncapsulation.IEEE_802_3_P_AND_Q_IN_OOB
)
CHECKSUM_ONLY = frozenset(f for f in FEATURES if f.endswith(("_tx", "_rx")))
NONCONFORMANT_LLC_ONLY = "nonconformant-llc-only"
"""The one built-in profile that breaks a documented rule on purpose (a negative example)."""


def _builtin() -> dict[str, AdapterProfile]:
    full = AdapterProfile(
        "full",
        "Full-featured Ethernet NIC: every checksum, LSOv1/LSOv2, USO and RSC; 802.3 with "
        "802.1Q (in frame and out of band); all INF keywords on (LSOv1 off, as inboxes ship)",
        frozenset(FEATURES),
        {**ALL_ON, "*LsoV1IPv4": 0},
        OffloadLimits(encapsulations=dict.fromkeys(OFFLOAD_TYPES[:4], ETHERNET)),
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
                CHECKSUM_ONLY | {"lsov2_4", "lsov2_6"},
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
                CHECKSUM_ONLY | {"lsov2_4", "lsov2_6"},
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
                "Adapter with no task offload at all: OID_OFFLOAD_ENCAPSULATION is "
                "NDIS_STATUS_NOT_SUPPORTED",
                frozenset(),
                {},
                OffloadLimits(encapsulations={}),
            ),
            AdapterProfile(
                "virtio-net",
                "virtio-net NIC as NetKVM reports it: checksums (IPv4 header checksum too), "
                "LSOv2 up to 0xF800, USO up to 34304, RSC, 802.3 only, NDIS_OFFLOAD rev 7",
                frozenset(FEATURES) - {"lsov1"},
                {**ALL_ON, "*LsoV1IPv4": 0},
                OffloadLimits(lso_max_offload_size=0xF800, uso_max_offload_size=34304),
            ),
            AdapterProfile(
                "hyperv-netvsc",
                "Hyper-V synthetic NIC as vmswitch/netvsp reports it: checksums, LSOv2 up to "
                "0xF53C, 802.3 only, NDIS_OFFLOAD rev 3 (no USO, no RSC offered)",
                frozenset(FEATURES) - {"lsov1", "uso4", "uso6", "rsc4", "rsc6"},
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

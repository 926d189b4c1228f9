"""Control path: what a miniport reports (``NDIS_OFFLOAD``) at initialization and from its
INF keywords (``oid-tcp-offload-current-config``, ``using-registry-values-to-enable-and-
disable-task-offloading``, the LSO/RSC/USO capability pages, ``combining-types-of-task-
offloads``)."""

from __future__ import annotations

from collections.abc import Iterator

from ndis_offload.lab.conformance.check import Check, Context, page, verdict, with_traffic
from ndis_offload.lab.conformance.oids import diff
from ndis_offload.lab.conformance.result import Family, Verdict
from ndis_offload.stack.features import (
    FEATURE_TABLE,
    KEYWORDS,
    features_of,
    offload_types_without_802_3,
)
from ndis_offload.stack.profiles import ALL_ON, get_profile
from ndis_offload.structs.offload import NdisOffload

PROFILES = ("full", "checksum-only", "virtio-net", "hyperv-netvsc")
"""The built-in profiles the capability checks build the miniport with."""
ON_PROFILES = f"initialize on {', '.join(PROFILES)}"


def _advertised(ctx: Context) -> Iterator[tuple[str, str, NdisOffload]]:
    """``(profile, "hardware" | "current", NDIS_OFFLOAD)`` for every profile's initialized
    miniport: what it advertised at initialization (one that reported none is skipped)."""
    for name in PROFILES:
        rig = ctx.rig(name, observe=False)
        for label, offload in (("hardware", rig.stack.hardware_capabilities),
                               ("current", rig.stack.config)):  # fmt: skip
            if offload is not None:
                yield name, label, offload


def ieee_802_3_everywhere(ctx: Context) -> Verdict:
    bad = [
        f"{name} {label} {part}"
        for name, label, offload in _advertised(ctx)
        for part in offload_types_without_802_3(offload)
    ]
    return verdict(
        not bad,
        f"initialize on profiles {', '.join(PROFILES)}",
        "every advertised offload type includes NDIS_ENCAPSULATION_IEEE_802_3",
        "without 802.3: " + "; ".join(bad) if bad else "all include 802.3",
    )


def enabled_at_init(ctx: Context) -> Verdict:
    rig = ctx.rig("full", keywords=ALL_ON)
    rig.check_traffic("at initialization")
    hardware, current = rig.hardware(), rig.features()
    return with_traffic(rig, verdict(
        current == hardware, "initialize with every keyword at its default (enabled)",
        "current configuration = hardware capabilities (every task offload on)",
        diff(hardware, current) + " relative to the hardware",
    ))  # fmt: skip


def keywords_select(ctx: Context) -> Verdict:
    """Every keyword at every value gives the initial configuration the page describes."""
    full = get_profile("full")
    bad = []
    tried = 0
    for keyword, features in KEYWORDS.items():
        for value in range(FEATURE_TABLE[features[0]].keyword_max + 1):
            rig = ctx.rig(full, observe=False, keywords={**ALL_ON, keyword: value})
            want = {f for f in features if value & FEATURE_TABLE[f].keyword_bit}
            want &= rig.hardware()
            got = set(features) & rig.features()
            tried += 1
            if got != want:
                bad.append(f"{keyword}={value}: {sorted(got)} on, expected {sorted(want)}")
    return verdict(
        not bad,
        f"initialize {tried} times, one keyword changed each time",
        "checksum keywords 0 off / 1 Tx / 2 Rx / 3 Tx+Rx; LSO, RSC, USO keywords 0 off / 1 on",
        "; ".join(bad) or "every keyword honoured",
    )


def uso_independent(ctx: Context) -> Verdict:
    keywords = {**ALL_ON, "*UDPChecksumOffloadIPv4": 0, "*UDPChecksumOffloadIPv6": 0}
    rig = ctx.rig("full", keywords=keywords)
    rig.check_traffic("at initialization")
    on = rig.features()
    missing = sorted({"uso4", "uso6"} - on)
    return with_traffic(rig, verdict(
        not missing, "*UsoIPv4=1, *UsoIPv6=1 with *UDPChecksumOffloadIPv4/IPv6=0",
        "USO on: the *Uso keywords are independent of the UDP checksum keywords",
        f"USO missing: {', '.join(missing) or 'none'}",
    ))  # fmt: skip


def revision_for_rsc_uso(ctx: Context) -> Verdict:
    bad = []
    for name, label, offload in _advertised(ctx):
        rev, on = offload.Header.Revision, features_of(offload)
        if on & {"rsc4", "rsc6"} and rev < 3:
            bad.append(f"{name} {label}: RSC with revision {rev}")
        if on & {"uso4", "uso6"} and rev < 6:
            bad.append(f"{name} {label}: USO with revision {rev}")
    return verdict(
        not bad,
        ON_PROFILES,
        "NDIS_OFFLOAD revision >= 3 where RSC is advertised, >= 6 where USO is",
        "; ".join(bad) or "revisions fit",
    )


def lsov1_max(ctx: Context) -> Verdict:
    bad = [
        f"{name} {label}: MaxOffLoadSize {offload.LsoV1.IPv4.MaxOffLoadSize}"
        for name, label, offload in _advertised(ctx)
        if offload.LsoV1.IPv4.Encapsulation and offload.LsoV1.IPv4.MaxOffLoadSize > 65536
    ]
    return verdict(
        not bad,
        ON_PROFILES,
        "LsoV1.IPv4.MaxOffLoadSize <= 64K",
        "; ".join(bad) or "within 64K",
    )


def lso_needs_checksum(ctx: Context) -> Verdict:
    bad = []
    for name in PROFILES:
        rig = ctx.rig(name, observe=False)
        hw = rig.hardware()
        if "lsov1" in hw and not {"tcp4_tx", "ip4_tx"} <= hw:
            bad.append(f"{name}: LSOv1 without TCP/IPv4 and IPv4 Tx checksum")
        if "lsov2_4" in hw and not {"tcp4_tx", "ip4_tx"} <= hw:
            bad.append(f"{name}: LSOv2 IPv4 without TCP/IP Tx checksum")
        if "lsov2_6" in hw and "tcp6_tx" not in hw:
            bad.append(f"{name}: LSOv2 IPv6 without TCP/IPv6 Tx checksum")
        offload = rig.stack.hardware_capabilities
        if offload is not None and offload.IPsecV1.Supported.Encapsulation and hw & {"lsov1"}:
            bad.append(f"{name}: IPsec and LSO advertised together")
    return verdict(
        not bad,
        ON_PROFILES,
        "LSOv1 => TCP/IPv4 + IPv4 Tx checksum; LSOv2 => TCP + IP Tx checksum; never IPsec "
        "and LSO together",
        "; ".join(bad) or "combinations fit",
    )


def config_within_hardware(ctx: Context) -> Verdict:
    bad = []
    for name in PROFILES:
        rig = ctx.rig(name, observe=False, keywords=ALL_ON)
        beyond = rig.features() - rig.hardware()
        if beyond:
            bad.append(f"{name}: {sorted(beyond)}")
    return verdict(
        not bad,
        f"{ON_PROFILES} with every keyword on",
        "current configuration within the hardware capabilities",
        "; ".join(bad) or "within",
    )


def checks() -> list[Check]:
    current = page("oid-tcp-offload-current-config")
    keywords = page("using-registry-values-to-enable-and-disable-task-offloading")
    return [
        Check("config-ieee-802-3-for-every-offload", Family.CONTROL, current,
              "IEEE 802.3 encapsulation is supported by every advertised offload",
              ieee_802_3_everywhere),
        Check("config-all-enabled-at-initialization", Family.CONTROL, current,
              "all task offloads are enabled by default at initialization", enabled_at_init,
              reading="with every standardized keyword at its default; checked by traffic too"),
        Check("config-within-hardware-at-initialization", Family.CONTROL,
              page("oid-tcp-offload-hardware-capabilities"),
              "the current configuration never exceeds the hardware capabilities",
              config_within_hardware),
        Check("config-keywords-select-initial-config", Family.CONTROL, keywords,
              "standardized keywords: checksum 0/1/2/3, LSO/RSC/USO 0/1", keywords_select),
        Check("config-uso-keywords-independent", Family.CONTROL,
              page("udp-segmentation-offload-uso-"),
              "*UsoIPv4/*UsoIPv6 do not depend on the UDP checksum keywords", uso_independent,
              needs=frozenset({"uso4", "uso6"})),
        Check("config-revision-for-rsc-and-uso", Family.CONTROL,
              page("determining-the-rsc-capabilities-of-a-network-adapter"),
              "NDIS_OFFLOAD revision >= 3 with RSC, >= 6 with USO", revision_for_rsc_uso,
              reading="USO's revision from udp-segmentation-offload-uso-"),
        Check("config-lsov1-max-offload-size", Family.CONTROL,
              page("reporting-a-nic-s-lsov1-tcp-packet-segmentation-capabilities"),
              "LSOv1 MaxOffLoadSize cannot exceed 64K bytes", lsov1_max,
              reading="64K read as 65536"),
        Check("config-lso-requires-checksum", Family.CONTROL,
              page("combining-types-of-task-offloads"),
              "LSO requires the matching Tx checksum offloads; IPsec and LSO never together",
              lso_needs_checksum),
    ]  # fmt: skip

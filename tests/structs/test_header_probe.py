"""Every value printed by ``ndis-offload spec --json`` against the real Windows headers.

The headers are those shipped by MinGW-w64 (``ntddndis.h`` and ``ddk/ndis.h``), measured by
compiling a C probe with ``x86_64-w64-mingw32-gcc -S`` (see ``probe_support``; nothing runs).

MinGW-w64 10 stops at NDIS 6.30, so the structures and constants added later are absent there.
A key may only be absent if an ``EXPECTED_ABSENT`` rule below names it, so that a misspelt
name or member cannot pass as "absent". What MinGW cannot verify is compared with a table of
values from the WDK headers instead (``WDK_*``, each citing its header).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from probe_support import ContextResult, ProbeError, ProbeRequest, find_toolchain, probe_context
from rich.console import Console

from ndis_offload.cli.main import main
from ndis_offload.structs import NdisOffload, NdisOffloadParameters, NdisStruct
from ndis_offload.structs.describe import describe

# --------------------------------------------------------------------------------------------
# What MinGW-w64 10.0.0 lacks. Rule kinds:
#   "T:TYPE"        the whole structure: S:TYPE and every O:/B: key of it
#   "F:TYPE.member" one member and everything nested in it (O:/B: keys)
#   "C:NAME"        one constant;  "R:TYPE.n" the NDIS_SIZEOF_*_REVISION_n size of revision n
# --------------------------------------------------------------------------------------------
EXPECTED_ABSENT: dict[str, tuple[str, ...]] = {
    # Structures newer than NDIS 6.30, or declared only in kernel headers MinGW does not ship
    # (km/ndis/encapsulationconfig.h, nblchecksum.h, nbllso.h, nbluso.h, nblrsc.h).
    "structures MinGW does not declare": (
        "T:NDIS_OFFLOAD_ENCAPSULATION",
        "T:NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_V2",
        "T:NDIS_RFC6877_464XLAT_OFFLOAD",
        "T:NDIS_UDP_SEGMENTATION_OFFLOAD",
        "T:NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO",
        "T:NDIS_TCP_LARGE_SEND_OFFLOAD_NET_BUFFER_LIST_INFO",
        "T:NDIS_UDP_SEGMENTATION_OFFLOAD_NET_BUFFER_LIST_INFO",
        "T:NDIS_RSC_NBL_INFO",
    ),
    # MinGW's NDIS_OFFLOAD ends with EncapsulatedPacketTaskOffloadGre (revision 3).
    "NDIS_OFFLOAD members of revisions 4-7": (
        "F:NDIS_OFFLOAD.EncapsulatedPacketTaskOffloadVxlan",
        "F:NDIS_OFFLOAD.EncapsulationTypes",
        "F:NDIS_OFFLOAD.Rfc6877Xlat",
        "F:NDIS_OFFLOAD.UdpSegmentation",
        "R:NDIS_OFFLOAD.4",
        "R:NDIS_OFFLOAD.5",
        "R:NDIS_OFFLOAD.6",
        "R:NDIS_OFFLOAD.7",
    ),
    # MinGW's NDIS_OFFLOAD_PARAMETERS ends with EncapsulationTypes (revision 3).
    "NDIS_OFFLOAD_PARAMETERS members of revisions 4-5": (
        "F:NDIS_OFFLOAD_PARAMETERS.EncapsulationProtocolParameters",
        "F:NDIS_OFFLOAD_PARAMETERS.UdpSegmentation",
        "R:NDIS_OFFLOAD_PARAMETERS.4",
        "R:NDIS_OFFLOAD_PARAMETERS.5",
    ),
    # MinGW's NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD has no UsoSupported:4 / Reserved:8 bits.
    "USO bits of NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD": (
        "F:NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD.UsoSupported",
        "F:NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD.Reserved",
        "F:NDIS_OFFLOAD.EncapsulatedPacketTaskOffloadGre.UsoSupported",
        "F:NDIS_OFFLOAD.EncapsulatedPacketTaskOffloadGre.Reserved",
    ),
    "NDIS_OFFLOAD_ENCAPSULATION revision size": ("R:NDIS_OFFLOAD_ENCAPSULATION.1",),
    # Constants newer than NDIS 6.30 or from the kernel NBL headers MinGW does not ship.
    "constants MinGW does not define": (
        "C:NDIS_OFFLOAD_REVISION_4",
        "C:NDIS_OFFLOAD_REVISION_5",
        "C:NDIS_OFFLOAD_REVISION_6",
        "C:NDIS_OFFLOAD_REVISION_7",
        "C:NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_4",
        "C:NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_5",
        "C:NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_6",
        "C:NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_7",
        "C:NDIS_OFFLOAD_PARAMETERS_REVISION_4",
        "C:NDIS_OFFLOAD_PARAMETERS_REVISION_5",
        "C:NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_4",
        "C:NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_5",
        "C:NDIS_OFFLOAD_PARAMETERS_USO_DISABLED",
        "C:NDIS_OFFLOAD_PARAMETERS_USO_ENABLED",
        "C:NDIS_OFFLOAD_ENCAPSULATION_REVISION_1",
        "C:NDIS_SIZEOF_OFFLOAD_ENCAPSULATION_REVISION_1",
        "C:NDIS_ENCAPSULATION_TYPE_VXLAN",
        "C:NDIS_RFC6877_464XLAT_OFFLOAD_NOT_SUPPORTED",
        "C:NDIS_RFC6877_464XLAT_OFFLOAD_DISABLED",
        "C:NDIS_RFC6877_464XLAT_OFFLOAD_ENABLED",
        "C:NDIS_RFC6877_464XLAT_OFFLOAD_ON_DEMAND",
        "C:NDIS_TCP_LARGE_SEND_OFFLOAD_V1_TYPE",
        "C:NDIS_TCP_LARGE_SEND_OFFLOAD_V2_TYPE",
        "C:NDIS_TCP_LARGE_SEND_OFFLOAD_IPv4",
        "C:NDIS_TCP_LARGE_SEND_OFFLOAD_IPv6",
        "C:NDIS_LARGE_SEND_OFFLOAD_MAX_HEADER_LENGTH",
        "C:NDIS_UDP_SEGMENTATION_OFFLOAD_IPV4",
        "C:NDIS_UDP_SEGMENTATION_OFFLOAD_IPV6",
        # NDIS_NET_BUFFER_LIST_INFO enumerators (km/ndis/nblinfo.h)
        "C:TcpIpChecksumNetBufferListInfo",
        "C:TcpLargeSendNetBufferListInfo",
        "C:TcpRecvSegCoalesceInfo",
        "C:RscTcpTimestampDelta",
        "C:UdpRecvSegCoalesceOffloadInfo",
        "C:UdpSegmentationOffloadInfo",
        # RSS hash types added in NDIS 6.80
        "C:NDIS_HASH_UDP_IPV4",
        "C:NDIS_HASH_UDP_IPV6",
        "C:NDIS_HASH_UDP_IPV6_EX",
    ),
}

# MinGW declares the NDIS 6.30 (revision 3) form of these structures, so its sizeof is the
# package's revision-3 layout padded to the structure alignment, not the package's full size.
MINGW_STRUCT_REVISION: dict[str, tuple[type[NdisStruct], int]] = {
    "NDIS_OFFLOAD": (NdisOffload, 3),
    "NDIS_OFFLOAD_PARAMETERS": (NdisOffloadParameters, 3),
}

# spec "revisions" {TYPE: {n: size}} is checked against these header macros.
REVISION_SIZE_MACROS: dict[str, str] = {
    "NDIS_OFFLOAD": "NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_{}",
    "NDIS_OFFLOAD_PARAMETERS": "NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_{}",
    "NDIS_OFFLOAD_ENCAPSULATION": "NDIS_SIZEOF_OFFLOAD_ENCAPSULATION_REVISION_{}",
    "NDIS_RSC_STATISTICS_INFO": "NDIS_SIZEOF_RSC_STATISTICS_REVISION_{}",
    "NDIS_STATISTICS_INFO": "NDIS_SIZEOF_STATISTICS_INFO_REVISION_{}",
}

MIN_VERIFIED = {"C": 90, "S": 10, "O": 130, "B": 75, "R": 6}

# --------------------------------------------------------------------------------------------
# WDK values for what MinGW lacks: the WDK headers published in microsoft/xdp-for-windows at
# commit fb5f8ec392f360c535924c3b7a58e5b51f65835f, published/wdkdeps/ (x64). Bits are
# (absolute bit position from the start of the structure, width).
# --------------------------------------------------------------------------------------------
WDK_CONSTANTS: dict[str, int] = {
    # shared/ntddndis.h
    "NDIS_OFFLOAD_REVISION_4": 4,
    "NDIS_OFFLOAD_REVISION_5": 5,
    "NDIS_OFFLOAD_REVISION_6": 6,
    "NDIS_OFFLOAD_REVISION_7": 7,
    "NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_4": 177,  # RTL_SIZEOF_THROUGH_FIELD(.., EncapsulationTypes)
    "NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_5": 188,  # .. Rfc6877Xlat
    "NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_6": 216,  # .. UdpSegmentation
    "NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_7": 216,  # .. UdpSegmentation
    "NDIS_OFFLOAD_PARAMETERS_REVISION_4": 4,
    "NDIS_OFFLOAD_PARAMETERS_REVISION_5": 5,
    "NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_4": 32,  # .. EncapsulationProtocolParameters
    "NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_5": 34,  # .. UdpSegmentation
    "NDIS_OFFLOAD_PARAMETERS_USO_DISABLED": 1,
    "NDIS_OFFLOAD_PARAMETERS_USO_ENABLED": 2,
    "NDIS_ENCAPSULATION_TYPE_VXLAN": 2,
    "NDIS_RFC6877_464XLAT_OFFLOAD_NOT_SUPPORTED": 0,  # enum NDIS_RFC6877_464XLAT_OFFLOAD_OPTIONS
    "NDIS_RFC6877_464XLAT_OFFLOAD_DISABLED": 1,
    "NDIS_RFC6877_464XLAT_OFFLOAD_ENABLED": 2,
    "NDIS_RFC6877_464XLAT_OFFLOAD_ON_DEMAND": 3,
    "NDIS_HASH_UDP_IPV4": 0x00004000,  # #if (NDIS_SUPPORT_NDIS680)
    "NDIS_HASH_UDP_IPV6": 0x00008000,
    "NDIS_HASH_UDP_IPV6_EX": 0x00010000,
    # km/ndis/encapsulationconfig.h
    "NDIS_OFFLOAD_ENCAPSULATION_REVISION_1": 1,
    "NDIS_SIZEOF_OFFLOAD_ENCAPSULATION_REVISION_1": 28,
    # km/ndis/nbllso.h
    "NDIS_TCP_LARGE_SEND_OFFLOAD_V1_TYPE": 0,
    "NDIS_TCP_LARGE_SEND_OFFLOAD_V2_TYPE": 1,
    "NDIS_TCP_LARGE_SEND_OFFLOAD_IPv4": 0,
    "NDIS_TCP_LARGE_SEND_OFFLOAD_IPv6": 1,
    "NDIS_LARGE_SEND_OFFLOAD_MAX_HEADER_LENGTH": 128,
    # km/ndis/nbluso.h
    "NDIS_UDP_SEGMENTATION_OFFLOAD_IPV4": 0,
    "NDIS_UDP_SEGMENTATION_OFFLOAD_IPV6": 1,
    # km/ndis/nblinfo.h, enum NDIS_NET_BUFFER_LIST_INFO with _AMD64_
    "TcpIpChecksumNetBufferListInfo": 0,
    "TcpLargeSendNetBufferListInfo": 2,
    "UdpRecvSegCoalesceOffloadInfo": 17,  # = TcpReceiveBytesTransferred
    "TcpRecvSegCoalesceInfo": 22,
    "UdpSegmentationOffloadInfo": 22,  # = TcpRecvSegCoalesceInfo
    "RscTcpTimestampDelta": 23,  # the member after TcpRecvSegCoalesceInfo
    # km/ndis.h (MinGW's ddk/ndis.h has these too; the WDK spelling "ENCASPULATION" is real)
    "NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG": 0x40020006,
    "NDIS_STATUS_TASK_OFFLOAD_HARDWARE_CAPABILITIES": 0x40020007,
    "NDIS_STATUS_OFFLOAD_ENCASPULATION_CHANGE": 0x40020008,
}

WDK_SIZEOF: dict[str, int] = {
    "NDIS_OFFLOAD": 216,  # shared/ntddndis.h (revision 7)
    "NDIS_OFFLOAD_PARAMETERS": 36,  # shared/ntddndis.h (revision 5)
    "NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_V2": 20,  # shared/ntddndis.h
    "NDIS_RFC6877_464XLAT_OFFLOAD": 8,  # shared/ntddndis.h
    "NDIS_UDP_SEGMENTATION_OFFLOAD": 28,  # shared/ntddndis.h
    "NDIS_OFFLOAD_ENCAPSULATION": 28,  # km/ndis/encapsulationconfig.h
    "NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO": 8,  # km/ndis/nblchecksum.h
    "NDIS_TCP_LARGE_SEND_OFFLOAD_NET_BUFFER_LIST_INFO": 8,  # km/ndis/nbllso.h
    "NDIS_UDP_SEGMENTATION_OFFLOAD_NET_BUFFER_LIST_INFO": 8,  # km/ndis/nbluso.h
    "NDIS_RSC_NBL_INFO": 8,  # km/ndis/nblrsc.h
}

WDK_OFFSETOF: dict[str, int] = {
    # shared/ntddndis.h
    "NDIS_OFFLOAD.EncapsulatedPacketTaskOffloadVxlan": 156,
    "NDIS_OFFLOAD.EncapsulationTypes": 176,
    "NDIS_OFFLOAD.Rfc6877Xlat": 180,
    "NDIS_OFFLOAD.UdpSegmentation": 188,
    "NDIS_OFFLOAD.UdpSegmentation.IPv6": 200,
    "NDIS_OFFLOAD_PARAMETERS.EncapsulationProtocolParameters": 28,
    "NDIS_OFFLOAD_PARAMETERS.UdpSegmentation": 32,
    "NDIS_OFFLOAD_PARAMETERS.UdpSegmentation.IPv6": 33,
    # km/ndis/encapsulationconfig.h
    "NDIS_OFFLOAD_ENCAPSULATION.IPv4.HeaderSize": 12,
    "NDIS_OFFLOAD_ENCAPSULATION.IPv6": 16,
    # km/ndis/nblrsc.h
    "NDIS_RSC_NBL_INFO.Info.CoalescedSegCount": 0,
    "NDIS_RSC_NBL_INFO.Info.DupAckCount": 2,
}

_CSUM = "NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO"
_LSO = "NDIS_TCP_LARGE_SEND_OFFLOAD_NET_BUFFER_LIST_INFO"
_USO = "NDIS_UDP_SEGMENTATION_OFFLOAD_NET_BUFFER_LIST_INFO"
WDK_BITS: dict[str, tuple[int, int]] = {
    # shared/ntddndis.h
    "NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD.UsoSupported": (20, 4),
    "NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD.Reserved": (24, 8),
    "NDIS_OFFLOAD.EncapsulatedPacketTaskOffloadGre.UsoSupported": (148 * 8 + 20, 4),
    # km/ndis/nblchecksum.h
    f"{_CSUM}.Transmit.IsIPv4": (0, 1),
    f"{_CSUM}.Transmit.IsIPv6": (1, 1),
    f"{_CSUM}.Transmit.TcpChecksum": (2, 1),
    f"{_CSUM}.Transmit.UdpChecksum": (3, 1),
    f"{_CSUM}.Transmit.IpHeaderChecksum": (4, 1),
    f"{_CSUM}.Transmit.TcpHeaderOffset": (16, 10),
    f"{_CSUM}.Receive.TcpChecksumFailed": (0, 1),
    f"{_CSUM}.Receive.UdpChecksumFailed": (1, 1),
    f"{_CSUM}.Receive.IpChecksumFailed": (2, 1),
    f"{_CSUM}.Receive.TcpChecksumSucceeded": (3, 1),
    f"{_CSUM}.Receive.UdpChecksumSucceeded": (4, 1),
    f"{_CSUM}.Receive.IpChecksumSucceeded": (5, 1),
    f"{_CSUM}.Receive.Loopback": (6, 1),
    f"{_CSUM}.Receive.TcpChecksumValueInvalid": (7, 1),
    f"{_CSUM}.Receive.IpChecksumValueInvalid": (8, 1),
    # km/ndis/nbllso.h
    f"{_LSO}.Transmit.Type": (30, 1),
    f"{_LSO}.LsoV1Transmit.MSS": (0, 20),
    f"{_LSO}.LsoV1Transmit.TcpHeaderOffset": (20, 10),
    f"{_LSO}.LsoV1Transmit.Type": (30, 1),
    f"{_LSO}.LsoV1TransmitComplete.TcpPayload": (0, 30),
    f"{_LSO}.LsoV2Transmit.MSS": (0, 20),
    f"{_LSO}.LsoV2Transmit.TcpHeaderOffset": (20, 10),
    f"{_LSO}.LsoV2Transmit.Type": (30, 1),
    f"{_LSO}.LsoV2Transmit.IPVersion": (31, 1),
    f"{_LSO}.LsoV2TransmitComplete.Type": (30, 1),
    # km/ndis/nbluso.h
    f"{_USO}.Transmit.MSS": (0, 20),
    f"{_USO}.Transmit.UdpHeaderOffset": (20, 10),
    f"{_USO}.Transmit.IPVersion": (31, 1),
}


# --------------------------------------------------------------------------------------------


def spec_from_cli() -> dict[str, Any]:
    """What ``ndis-offload spec --json`` prints, parsed."""
    out = io.StringIO()
    code = main(["spec", "--json"], console=Console(file=out, width=200))
    assert code == 0, out.getvalue()
    loaded: dict[str, Any] = json.loads(out.getvalue())
    return loaded


def expected_values(spec: dict[str, Any]) -> dict[str, int | tuple[int, int]]:
    """Every spec value under its probe key, as the headers should report it."""
    want: dict[str, int | tuple[int, int]] = {}
    for name, value in spec["constants"].items():
        want[f"C:{name}"] = value
    for name, size in spec["sizeof"].items():
        want[f"S:{name}"] = size
    for type_name, (cls, rev) in MINGW_STRUCT_REVISION.items():
        layout = cls.layout()
        through = layout.size_through(rev)
        want[f"S:{type_name}"] = -(-through // layout.alignment) * layout.alignment
    for path, offset in spec["offsetof"].items():
        want[f"O:{path}"] = offset
    for path, (byte, bit, width) in spec["bits"].items():
        want[f"B:{path}"] = (byte * 8 + bit, width)
    for type_name, sizes in spec["revisions"].items():
        for rev, size in sizes.items():
            want[f"R:{type_name}.{rev}"] = size
    return want


def probe_request(spec: dict[str, Any]) -> ProbeRequest:
    unknown = set(spec["revisions"]) - set(REVISION_SIZE_MACROS)
    assert not unknown, f"no NDIS_SIZEOF_* macro known for the revisions of {sorted(unknown)}"
    return ProbeRequest(
        constants=tuple(spec["constants"]),
        types=tuple(spec["sizeof"]),
        offsets=tuple(spec["offsetof"]),
        bits=tuple(spec["bits"]),
        revision_macros={
            f"{t}.{rev}": REVISION_SIZE_MACROS[t].format(rev)
            for t, sizes in spec["revisions"].items()
            for rev in sizes
        },
    )


def rule_matches(rule: str, key: str) -> bool:
    kind, _, name = rule.partition(":")
    key_kind, _, path = key.partition(":")
    if kind == "T":
        return (key_kind == "S" and path == name) or (
            key_kind in ("O", "B") and path.startswith(f"{name}.")
        )
    if kind == "F":
        return key_kind in ("O", "B") and (path == name or path.startswith(f"{name}."))
    return key == rule


def absent_rule(key: str) -> str | None:
    for reason, rules in EXPECTED_ABSENT.items():
        if any(rule_matches(rule, key) for rule in rules):
            return reason
    return None


def header_value(key: str, ctx: ContextResult) -> int | tuple[int, int] | None:
    if key.startswith("B:"):
        return ctx.bits.get(key)
    value = ctx.values.get(key)
    if value is not None and key.startswith("C:NDIS_STATUS_"):
        # NDIS_STATUS is a signed 32-bit int in C; the package spells the codes unsigned.
        value &= 0xFFFFFFFF
    return value


@dataclass
class Verification:
    spec: dict[str, Any]
    expected: dict[str, int | tuple[int, int]]
    measured: dict[str, int | tuple[int, int]]
    absent: set[str]
    mismatches: list[str] = field(default_factory=list)

    def verified(self, kind: str) -> set[str]:
        return {k for k in self.measured if k.startswith(f"{kind}:")}


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Verification:
    toolchain = find_toolchain()
    if isinstance(toolchain, str):
        pytest.skip(toolchain)
    spec = spec_from_cli()
    request = probe_request(spec)
    workdir: Path = tmp_path_factory.mktemp("header_probe")
    try:
        um = probe_context(toolchain, workdir, "um", request)
        ddk = probe_context(toolchain, workdir, "ddk", request)
    except ProbeError as exc:
        pytest.fail(f"header probe failed (probe sources in {workdir}): {exc}")
    expected = expected_values(spec)
    result = Verification(spec, expected, {}, set())
    for key, want in expected.items():
        found: dict[str, int | tuple[int, int]] = {}
        for name, ctx in (("um", um), ("ddk", ddk)):
            value = header_value(key, ctx)
            if value is not None:
                found[name] = value
        if not found:
            result.absent.add(key)
            continue
        if len(set(found.values())) > 1:
            result.mismatches.append(f"{key}: header contexts disagree {found}")
        got = next(iter(found.values()))
        result.measured[key] = got
        if got != want:
            result.mismatches.append(f"{key}: spec={want!r} header={got!r}")
    for key, size in um.object_sizes.items():
        type_name = key[2:].partition(".")[0]
        if um.values.get(f"S:{type_name}") != size:
            result.mismatches.append(f"{key}: probe object is {size} bytes, not sizeof {type_name}")
    return result


def test_cli_spec_json_is_describe() -> None:
    assert spec_from_cli() == describe()


@pytest.mark.probe
def test_spec_matches_mingw_headers(probe: Verification) -> None:
    assert not probe.mismatches, (
        f"{len(probe.mismatches)} spec value(s) differ from the MinGW-w64 headers:\n"
        + "\n".join(probe.mismatches)
    )


@pytest.mark.probe
def test_only_expected_keys_are_absent(probe: Verification) -> None:
    unexpected = sorted(k for k in probe.absent if absent_rule(k) is None)
    assert not unexpected, (
        "not found in the MinGW-w64 headers and not in EXPECTED_ABSENT "
        "(misspelt name or member?):\n" + "\n".join(unexpected)
    )


@pytest.mark.probe
def test_required_items_are_verified(probe: Verification) -> None:
    spec = probe.spec
    required = {f"C:{n}" for n in spec["constants"] if n.startswith(("OID_", "NDIS_STATUS_"))}
    for type_name, (cls, last) in MINGW_STRUCT_REVISION.items():
        old = {m.name for m in cls.layout().members if m.since <= last}
        for kind, paths in (("O", spec["offsetof"]), ("B", spec["bits"])):
            required |= {
                f"{kind}:{p}"
                for p in paths
                if p.split(".")[1] in old and absent_rule(f"{kind}:{p}") is None
            }
        required |= {f"R:{type_name}.{rev}" for rev in range(1, last + 1)}
        required |= {f"S:{type_name}"}
    missing = sorted(required - set(probe.measured))
    assert not missing, "required but not verified against MinGW:\n" + "\n".join(missing)
    assert any(k.startswith("C:NDIS_STATUS_") for k in required)
    assert any(k.startswith("C:OID_") for k in required)
    counts = {kind: len(probe.verified(kind)) for kind in MIN_VERIFIED}
    low = {k: (n, MIN_VERIFIED[k]) for k, n in counts.items() if n < MIN_VERIFIED[k]}
    assert not low, f"too few verified items (got, minimum): {low}"


def test_spec_matches_wdk_table() -> None:
    spec = describe()
    tables: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        ("constants", WDK_CONSTANTS, spec["constants"]),
        ("sizeof", WDK_SIZEOF, spec["sizeof"]),
        ("offsetof", WDK_OFFSETOF, spec["offsetof"]),
        (
            "bits",
            WDK_BITS,
            {k: (b * 8 + o, w) for k, (b, o, w) in spec["bits"].items()},
        ),
    ]
    bad = [
        f"{kind} {key}: spec={have.get(key, '<missing>')!r} WDK={want!r}"
        for kind, table, have in tables
        for key, want in table.items()
        if have.get(key) != want
    ]
    for type_name, sizes in spec["revisions"].items():
        for rev, size in sizes.items():
            macro = REVISION_SIZE_MACROS[type_name].format(rev)
            if spec["constants"].get(macro) != size:
                bad.append(f"revisions {type_name}.{rev}: {size} != {macro}")
    assert not bad, "spec differs from the WDK headers:\n" + "\n".join(bad)


def test_wdk_table_covers_what_mingw_lacks() -> None:
    """Every constant and structure size MinGW cannot check is in the WDK table."""
    spec = describe()
    constants = [r[2:] for rules in EXPECTED_ABSENT.values() for r in rules if r[:2] == "C:"]
    types = [r[2:] for rules in EXPECTED_ABSENT.values() for r in rules if r[:2] == "T:"]
    missing = [c for c in constants if c in spec["constants"] and c not in WDK_CONSTANTS]
    missing += [t for t in types if t in spec["sizeof"] and t not in WDK_SIZEOF]
    missing += [t for t in MINGW_STRUCT_REVISION if t not in WDK_SIZEOF]
    assert not missing, f"absent in MinGW and not in the WDK table: {missing}"


@pytest.mark.probe
def test_statistics_structures_verified(probe: Verification) -> None:
    """``NDIS_RSC_STATISTICS_INFO`` (``OID_TCP_RSC_STATISTICS``) and ``NDIS_STATISTICS_INFO``
    (``OID_GEN_STATISTICS``): OID values, header constants, size, revision size and every
    member offset measured in MinGW's ``ntddndis.h`` (NDIS 6.30), none taken on trust."""
    required = {
        "C:OID_TCP_RSC_STATISTICS",
        "C:OID_GEN_STATISTICS",
        "C:NDIS_RSC_STATISTICS_REVISION_1",
        "C:NDIS_SIZEOF_RSC_STATISTICS_REVISION_1",
        "C:NDIS_STATISTICS_INFO_REVISION_1",
        "C:NDIS_SIZEOF_STATISTICS_INFO_REVISION_1",
        "C:NDIS_OBJECT_TYPE_DEFAULT",
        "C:NDIS_STATISTICS_FLAGS_VALID_DIRECTED_FRAMES_XMIT",
        "C:NDIS_STATISTICS_FLAGS_VALID_BYTES_XMIT",
        "S:NDIS_RSC_STATISTICS_INFO",
        "S:NDIS_STATISTICS_INFO",
        "R:NDIS_RSC_STATISTICS_INFO.1",
        "R:NDIS_STATISTICS_INFO.1",
    }
    for name in ("NDIS_RSC_STATISTICS_INFO", "NDIS_STATISTICS_INFO"):
        required |= {f"O:{p}" for p in probe.spec["offsetof"] if p.startswith(f"{name}.")}
    missing = sorted(required - set(probe.measured))
    assert not missing, "not verified against MinGW:\n" + "\n".join(missing)
    assert probe.measured["S:NDIS_RSC_STATISTICS_INFO"] == 40
    assert probe.measured["O:NDIS_RSC_STATISTICS_INFO.Aborts"] == 32

"""Control path: ``OID_TCP_OFFLOAD_PARAMETERS`` (``oid-tcp-offload-parameters``, the
``_NDIS_OFFLOAD_PARAMETERS`` DDI page), every field on its own, the invalid contents, the
revisions, the registry and atomicity."""

from __future__ import annotations

from dataclasses import replace

from ndis_offload.constants.offload import NDIS_OFFLOAD_PARAMETERS_SKIP_REGISTRY_UPDATE
from ndis_offload.constants.oid import Oid
from ndis_offload.constants.status import NdisStatus
from ndis_offload.lab.conformance import oids
from ndis_offload.lab.conformance.check import (
    Check,
    CheckFn,
    Context,
    ddi,
    page,
    verdict,
    with_traffic,
)
from ndis_offload.lab.conformance.oids import FIELDS, Field, diff, status_text
from ndis_offload.lab.conformance.result import Family, Verdict
from ndis_offload.lab.conformance.rig import Rig
from ndis_offload.stack.profiles import get_profile
from ndis_offload.stack.requests import OidRequest, RequestType

PAGE = page("oid-tcp-offload-parameters")
STRUCT = ddi("ntddndis/ns-ntddndis-_ndis_offload_parameters")
PARAMS = Oid.TCP_OFFLOAD_PARAMETERS
SHORT = (NdisStatus.INVALID_LENGTH, NdisStatus.BUFFER_TOO_SHORT)


def _set(ctx: Context, values: dict[str, int], *, revision: int = 5, flags: int = 0,
         profile: str = "full", protocols: int = 1) -> tuple[Rig, str, bytes]:  # fmt: skip
    rig = ctx.rig(profile, protocols=protocols)
    what = oids.describe_parameters(values, revision, flags)
    data = oids.encode_parameters(oids.parameters(values, revision=revision, flags=flags))
    return rig, what, data


def query_not_supported(ctx: Context) -> Verdict:
    """Sent straight to ``MiniportOidRequest`` (NDIS would answer a query itself)."""
    rig = ctx.rig(observe=False)
    request = OidRequest(PARAMS, RequestType.QUERY, b"", 4096, 9999, "battery")
    result = rig.miniport.oid_request(request)
    status = result if isinstance(result, NdisStatus) else result.status
    return verdict(
        status == NdisStatus.NOT_SUPPORTED,
        "query OID_TCP_OFFLOAD_PARAMETERS to the miniport",
        "NDIS_STATUS_NOT_SUPPORTED (set-only OID)",
        status.c_name,
    )


def invalid_value(values: dict[str, int]) -> CheckFn:
    def run(ctx: Context) -> Verdict:
        rig = ctx.rig()
        before = rig.features()
        what = oids.describe_parameters(values)
        handle = rig.set(PARAMS, oids.raw_parameters(values), what)
        after = rig.features()
        return with_traffic(rig, verdict(
            handle.status == NdisStatus.INVALID_DATA and after == before, what,
            "NDIS_STATUS_INVALID_DATA, configuration unchanged",
            f"{status_text(handle)}, configuration {diff(before, after)}",
        ))  # fmt: skip

    return run


def bad_header(offset: int, fmt: str, value: int, what: str) -> CheckFn:
    def run(ctx: Context) -> Verdict:
        rig = ctx.rig()
        before = rig.features()
        data = oids.encode_parameters(oids.parameters({"LsoV2IPv4": 1}))
        handle = rig.set(PARAMS, oids.patched(data, offset, fmt, value), what)
        after = rig.features()
        return with_traffic(rig, verdict(
            handle.status == NdisStatus.INVALID_DATA and after == before,
            what + " (LsoV2IPv4 DISABLED)", "NDIS_STATUS_INVALID_DATA, configuration unchanged",
            f"{status_text(handle)}, configuration {diff(before, after)}",
        ))  # fmt: skip

    return run


def short_buffer(ctx: Context) -> Verdict:
    rig = ctx.rig()
    handle = rig.set(PARAMS, bytes(12), "12 zero bytes")
    need = handle.completion.BytesNeeded if handle.completion else 0
    return verdict(
        handle.status in SHORT and need >= oids.SIZEOF_PARAMETERS_REV1, "12-byte buffer",
        "NDIS_STATUS_INVALID_LENGTH or _BUFFER_TOO_SHORT, BytesNeeded >= 20", status_text(handle),
    )  # fmt: skip


def not_supported_without_offload(ctx: Context) -> Verdict:
    rig, what, data = _set(ctx, {"TCPIPv4Checksum": 4}, profile="no-offload")
    handle = rig.set(PARAMS, data, what)
    query = rig.query(Oid.TCP_OFFLOAD_CURRENT_CONFIG)
    return with_traffic(rig, verdict(
        handle.status == NdisStatus.NOT_SUPPORTED and rig.indications() == [0]
        and query.status == NdisStatus.NOT_SUPPORTED,
        what + " on a NIC without task offload; then query OID_TCP_OFFLOAD_CURRENT_CONFIG",
        "NDIS_STATUS_NOT_SUPPORTED, no indication, the query stays NDIS_STATUS_NOT_SUPPORTED",
        f"{status_text(handle)}, {rig.indications()[0]} indications, query {status_text(query)}",
    ))  # fmt: skip


def _cycle(f: Field, start_on: bool) -> list[int]:
    if f.checksum:
        return [1, 2, 3, 4]
    return [1, 2] if start_on else [2, 1]


def field_check(f: Field) -> CheckFn:
    """Every value of one field, the others NO_CHANGE: only that field's features move."""

    def run(ctx: Context) -> Verdict:
        rig = ctx.rig(protocols=2)
        hardware = rig.hardware()
        seen, ok = [], True
        for value in _cycle(f, bool(rig.features() & f.features)):
            before, counts = rig.features(), rig.indications()
            values = {f.name: value}
            handle = rig.set(PARAMS, oids.encode_parameters(oids.parameters(values)),
                             oids.describe_parameters(values))  # fmt: skip
            want = oids.apply_parameters(before, values, hardware)
            got, now = rig.features(), rig.indications()
            indicated = all(b > a for a, b in zip(counts, now, strict=True))
            good = handle.status == NdisStatus.SUCCESS and got == want and indicated
            ok &= good
            seen.append(
                f"{f.name}={value}: {status_text(handle)}, {diff(before, got)}"
                + ("" if got == want else f" (expected {diff(before, want)})")
                + ("" if indicated else ", not indicated to every protocol")
            )
        return with_traffic(rig, verdict(
            ok, f"{f.name} = each of {_cycle(f, True)} in turn, every other field NO_CHANGE",
            f"SUCCESS and an indication each time; only {', '.join(sorted(f.features))} change",
            "; ".join(seen),
        ))  # fmt: skip

    return run


def revision_gated(f: Field) -> CheckFn:
    """A field of a newer revision in a buffer whose header says an older one is not read."""

    def run(ctx: Context) -> Verdict:
        rig = ctx.rig()
        before = rig.features()
        value = 1 if before & f.features else 2
        revision = f.revision - 1
        what = (f"NDIS_OFFLOAD_PARAMETERS Header.Revision {revision} (newest-size buffer) with "
                f"{f.name}={value} poked in")  # fmt: skip
        handle = rig.set(PARAMS, oids.raw_parameters({f.name: value}, revision), what)
        after = rig.features()
        return with_traffic(rig, verdict(
            handle.status == NdisStatus.SUCCESS and not (before ^ after) & f.features, what,
            f"SUCCESS; {f.name} (revision {f.revision}) ignored", f"{status_text(handle)}, "
            f"configuration {diff(before, after)}",
        ))  # fmt: skip

    return run


def beyond_hardware(ctx: Context) -> Verdict:
    rig, what, data = _set(ctx, {"LsoV2IPv4": 2, "RscIPv4": 2}, profile="checksum-only")
    before = rig.features()
    handle = rig.set(PARAMS, data, what + " on a checksum-only NIC")
    after, hardware = rig.features(), rig.hardware()
    beyond = sorted(after - hardware)
    ok = not beyond and (handle.status == NdisStatus.SUCCESS or after == before)
    return with_traffic(rig, verdict(
        ok, what + " on a checksum-only NIC",
        "the current configuration never exceeds the hardware capabilities; a failed set "
        "changes nothing", f"{status_text(handle)}, beyond hardware: {', '.join(beyond) or 'none'}"
        f", configuration {diff(before, after)}",
    ))  # fmt: skip


def atomic(ctx: Context) -> Verdict:
    """Valid changes next to one the hardware cannot do: all or nothing."""
    hw = get_profile("full").hardware - {"uso4"}
    profile = replace(get_profile("full"), name="full-without-uso4", hardware=hw)
    rig = ctx.rig(profile, protocols=2)
    before, counts = rig.features(), rig.indications()
    values = {"TCPIPv4Checksum": 1, "RscIPv4": 1, "LsoV2IPv6": 1, "UdpSegmentation.IPv4": 2}
    what = oids.describe_parameters(values) + " on a NIC without USO IPv4"
    handle = rig.set(PARAMS, oids.encode_parameters(oids.parameters(values)), what)
    after, now = rig.features(), rig.indications()
    ok = handle.status != NdisStatus.SUCCESS and after == before and now == counts
    ok |= (
        handle.status == NdisStatus.SUCCESS
        and after == oids.apply_parameters(before, values, rig.hardware())
        and all(b > a for a, b in zip(counts, now, strict=True))
    )
    return with_traffic(rig, verdict(
        ok, what, "either a failure that changes nothing and indicates nothing, or (clamped) a "
        "success that applies every valid field and indicates",
        f"{status_text(handle)}, configuration {diff(before, after)}, "
        f"indications {counts} -> {now}",
    ))  # fmt: skip


def indicates_current(ctx: Context) -> Verdict:
    """The indication carries the current configuration (not the hardware capabilities)."""
    rig = ctx.rig(protocols=2)
    before = rig.features()
    values = {"LsoV2IPv4": 1, "TCPIPv6Checksum": 2}
    handle = rig.set(PARAMS, oids.encode_parameters(oids.parameters(values)),
                     oids.describe_parameters(values))  # fmt: skip
    indicated = [b.indications[-1] for b in rig.bindings if b.indications]
    from ndis_offload.stack.features import features_of
    from ndis_offload.structs.offload import NdisOffload

    want = oids.apply_parameters(before, values, rig.hardware())
    got = [features_of(NdisOffload.decode(i.StatusBuffer)) for i in indicated]
    ok = (
        handle.status == NdisStatus.SUCCESS
        and len(got) == 2
        and all(g & want == want and not g - want for g in got)
    )
    return with_traffic(rig, verdict(
        ok, oids.describe_parameters(values),
        "NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG to both protocols carrying the full current "
        "NDIS_OFFLOAD: lsov2_4 and tcp6_rx off, everything else as before",
        f"{status_text(handle)}, {len(got)} indications: "
        + "; ".join(diff(before, g) for g in got),
    ))  # fmt: skip


def skip_registry(ctx: Context) -> Verdict:
    rig = ctx.rig()
    values = {"LsoV2IPv4": 1, "UDPIPv4Checksum": 2}
    flags = NDIS_OFFLOAD_PARAMETERS_SKIP_REGISTRY_UPDATE
    before = rig.features()
    handle = rig.set(PARAMS, oids.encode_parameters(oids.parameters(values, flags=flags)),
                     oids.describe_parameters(values, flags=flags))  # fmt: skip
    applied = rig.features()
    rig.reload()
    reloaded = rig.features()
    ok = (
        handle.status == NdisStatus.SUCCESS
        and applied == oids.apply_parameters(before, values, rig.hardware())
        and reloaded == before
    )
    return with_traffic(rig, verdict(
        ok, oids.describe_parameters(values, flags=flags) + ", then reload the driver",
        "applied now; after the reload the keywords (not written) give the old configuration",
        f"{status_text(handle)}, now {diff(before, applied)}, "
        f"after reload {diff(before, reloaded)}",
    ))  # fmt: skip


def flip_and_restore(ctx: Context) -> Verdict:
    """NDISTest OffloadMisc: flip every setting, reload, compare; restore, reload, compare."""
    rig = ctx.rig()
    hardware = rig.hardware()
    original = rig.features()
    flip: dict[str, int] = {}
    for f in FIELDS:
        if not f.features & hardware:
            continue
        if f.checksum:
            tx = any(x.endswith("_tx") and x in original for x in f.features)
            rx = any(x.endswith("_rx") and x in original for x in f.features)
            flip[f.name] = {(False, False): 4, (True, True): 1, (True, False): 3, (False, True): 2}[
                (tx, rx)
            ]
        else:
            flip[f.name] = 1 if f.features & original else 2
    restore = {name: {1: 4, 4: 1, 2: 3, 3: 2}[v] if FIELDS_BY_NAME[name].checksum else 3 - v
               for name, v in flip.items()}  # fmt: skip
    steps = []
    ok = True
    for label, values in (("flip", flip), ("restore", restore)):
        before = rig.features()
        handle = rig.set(PARAMS, oids.encode_parameters(oids.parameters(values)), label)
        want = oids.apply_parameters(before, values, hardware)
        rig.reload()
        got = rig.features()
        ok &= handle.status == NdisStatus.SUCCESS and got == want
        steps.append(f"{label}: {status_text(handle)}, after reload {diff(want, got)} vs expected")
    ok &= rig.features() == original
    return with_traffic(rig, verdict(
        ok, "flip every current setting (" + oids.describe_parameters(flip) + "), reload; "
        "restore, reload", "after each reload the current configuration equals the one set",
        "; ".join(steps),
    ))  # fmt: skip


FIELDS_BY_NAME = {f.name: f for f in FIELDS}


def checks() -> list[Check]:
    out = [
        Check("parameters-query-not-supported", Family.CONTROL, PAGE,
              "OID_TCP_OFFLOAD_PARAMETERS is set-only; query requests are not supported",
              query_not_supported, reading="the query is sent to MiniportOidRequest directly; "
              "NDIS itself never forwards it"),
        Check("parameters-short-buffer", Family.CONTROL, PAGE,
              "a short NDIS_OFFLOAD_PARAMETERS fails with the bytes needed", short_buffer),
        Check("parameters-not-supported-without-offload", Family.CONTROL, PAGE,
              "a miniport without TCP offload returns NDIS_STATUS_NOT_SUPPORTED and indicates "
              "nothing", not_supported_without_offload),
        Check("parameters-invalid-data-checksum-value", Family.CONTROL, PAGE,
              "invalid NDIS_OFFLOAD_PARAMETERS contents -> NDIS_STATUS_INVALID_DATA",
              invalid_value({"TCPIPv4Checksum": 5})),
        Check("parameters-invalid-data-lso-value", Family.CONTROL, PAGE,
              "invalid NDIS_OFFLOAD_PARAMETERS contents -> NDIS_STATUS_INVALID_DATA",
              invalid_value({"LsoV2IPv6": 3})),
        Check("parameters-invalid-data-rsc-value", Family.CONTROL, PAGE,
              "invalid NDIS_OFFLOAD_PARAMETERS contents -> NDIS_STATUS_INVALID_DATA",
              invalid_value({"RscIPv4": 3})),
        Check("parameters-invalid-data-uso-value", Family.CONTROL, PAGE,
              "invalid NDIS_OFFLOAD_PARAMETERS contents -> NDIS_STATUS_INVALID_DATA",
              invalid_value({"UdpSegmentation.IPv6": 3})),
        Check("parameters-invalid-data-header-type", Family.CONTROL, PAGE,
              "Header.Type must be NDIS_OBJECT_TYPE_DEFAULT",
              bad_header(0, "<B", 0xA8, "Header.Type 0xA8"),
              reading="a bad header is invalid contents: NDIS_STATUS_INVALID_DATA"),
        Check("parameters-invalid-data-header-revision", Family.CONTROL, PAGE,
              "Header.Revision must be 1..5", bad_header(1, "<B", 0, "Header.Revision 0"),
              reading="a bad header is invalid contents: NDIS_STATUS_INVALID_DATA"),
        Check("parameters-invalid-data-header-size", Family.CONTROL, PAGE,
              "Header.Size must be at least NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_1",
              bad_header(2, "<H", 12, "Header.Size 12"),
              reading="a bad header is invalid contents: NDIS_STATUS_INVALID_DATA"),
        Check("parameters-never-beyond-hardware", Family.CONTROL,
              page("oid-tcp-offload-hardware-capabilities"),
              "the current configuration never exceeds the hardware capabilities",
              beyond_hardware, reading="the page names no status for enabling what the "
              "hardware lacks: a failure that changes nothing, or a clamping success"),
        Check("parameters-atomic", Family.CONTROL, STRUCT,
              "a set is applied whole or not at all", atomic,
              reading="the pages do not say; a partial update leaves protocols and miniport "
              "disagreeing, so all-or-nothing (or clamp-and-indicate) is required"),
        Check("parameters-indicates-current-config", Family.CONTROL,
              page("ndis-status-task-offload-current-config"),
              "after a successful set, NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG carries the "
              "full current NDIS_OFFLOAD (not the hardware capabilities)", indicates_current,
              needs=frozenset({"tcp6_tx"})),
        Check("parameters-skip-registry-update", Family.CONTROL, STRUCT,
              "NDIS_OFFLOAD_PARAMETERS_SKIP_REGISTRY_UPDATE: applied, not persisted",
              skip_registry, needs=frozenset({"udp4_tx"}),
              reading="NDIS writes the keywords (oid-tcp-offload-parameters); the miniport "
              "must build its initial configuration from them"),
        Check("parameters-flip-and-restore-persists", Family.CONTROL, STRUCT,
              "the configuration survives a driver reload (NDISTest OffloadMisc)",
              flip_and_restore),
    ]  # fmt: skip
    for f in FIELDS:
        out.append(Check(
            f"parameters-field-{f.name.replace('.', '-')}", Family.CONTROL, STRUCT,
            f"{f.name}: every value does what the page says, every NO_CHANGE field is untouched",
            field_check(f), needs=f.features,
            reading="checksum 1..4 = TX_RX_DISABLED, TX_ENABLED_RX_DISABLED, "
            "RX_ENABLED_TX_DISABLED, TX_RX_ENABLED; LSO/RSC/USO 1 = disabled, 2 = enabled "
            "(ntddndis.h)",
        ))  # fmt: skip
        if f.revision > 1:
            out.append(Check(
                f"parameters-revision-gated-{f.name.replace('.', '-')}", Family.CONTROL, STRUCT,
                f"{f.name} exists from revision {f.revision}: an older revision does not set it",
                revision_gated(f), needs=f.features,
            ))  # fmt: skip
    return out

"""Control path: ``OID_OFFLOAD_ENCAPSULATION`` (``oid-offload-encapsulation``), on IPv4 and
IPv6, observed through completions, indications and traffic."""

from __future__ import annotations

from ndis_offload.constants import objects as o
from ndis_offload.constants.oid import Oid
from ndis_offload.constants.status import NdisStatus
from ndis_offload.lab.conformance import oids
from ndis_offload.lab.conformance.check import Check, CheckFn, Context, page, verdict, with_traffic
from ndis_offload.lab.conformance.oids import KEEP, LLC, OFF, ON, diff, status_text
from ndis_offload.lab.conformance.result import Family, Verdict
from ndis_offload.stack.features import FAMILY_FEATURES
from ndis_offload.structs.encapsulation import NdisOffloadEncapsulationFamily as Part

PAGE = page("oid-offload-encapsulation")
CONFIG_PAGE = page("oid-tcp-offload-current-config")
SHORT = (NdisStatus.INVALID_LENGTH, NdisStatus.BUFFER_TOO_SHORT)
ENC = Oid.OFFLOAD_ENCAPSULATION


def _pair(family: int, this: Part, other: Part) -> tuple[Part, Part]:
    return (this, other) if family == 4 else (other, this)


def _expect_status(data: bytes, what: str, status: NdisStatus, profile: str = "full") -> CheckFn:
    def run(ctx: Context) -> Verdict:
        rig = ctx.rig(profile)
        before = rig.features()
        handle = rig.set(ENC, data, what)
        changed = rig.features() != before and status != NdisStatus.SUCCESS
        return with_traffic(rig, verdict(
            handle.status == status and not changed, what,
            status.c_name + ("" if status == NdisStatus.SUCCESS else ", configuration unchanged"),
            status_text(handle) + (", configuration changed" if changed else ""),
        ))  # fmt: skip

    return run


def short_buffer(ctx: Context) -> Verdict:
    rig = ctx.rig()
    handle = rig.set(ENC, oids.encapsulation()[:20], "20 of 28 bytes")
    need = handle.completion.BytesNeeded if handle.completion else 0
    return verdict(
        handle.status in SHORT and need >= oids.SIZEOF_ENCAPSULATION, "20-byte InformationBuffer",
        "NDIS_STATUS_INVALID_LENGTH or _BUFFER_TOO_SHORT, BytesNeeded >= 28", status_text(handle),
    )  # fmt: skip


def supported(family: int) -> CheckFn:
    def run(ctx: Context) -> Verdict:
        rig = ctx.rig(protocols=3)
        v4, v6 = _pair(family, ON, KEEP)
        what = oids.describe_encapsulation(v4, v6)
        handle = rig.set(ENC, oids.encapsulation(v4, v6), what)
        counts = rig.indications()
        return with_traffic(rig, verdict(
            handle.status == NdisStatus.SUCCESS and all(c >= 1 for c in counts), what,
            "NDIS_STATUS_SUCCESS, then NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG to each of 3 "
            "protocols", f"{status_text(handle)}, indications per protocol {counts}",
        ))  # fmt: skip

    return run


def unsupported(family: int) -> CheckFn:
    def run(ctx: Context) -> Verdict:
        rig = ctx.rig()
        before = rig.features()
        v4, v6 = _pair(family, LLC, OFF)
        what = oids.describe_encapsulation(v4, v6) + " (the adapter supports 802.3 only)"
        handle = rig.set(ENC, oids.encapsulation(v4, v6), what)
        after, counts = rig.features(), rig.indications()
        return with_traffic(rig, verdict(
            handle.status == NdisStatus.INVALID_PARAMETER and after == before and counts == [0],
            what, "NDIS_STATUS_INVALID_PARAMETER; nothing changes (the OFF of the other family "
            "included), no indication, traffic as before",
            f"{status_text(handle)}, configuration {diff(before, after)}, indications {counts}",
        ))  # fmt: skip

    return run


def off_deactivates(family: int) -> CheckFn:
    def run(ctx: Context) -> Verdict:
        rig = ctx.rig()
        rig.set(ENC, oids.encapsulation(), "both ON")
        before = rig.features()
        v4, v6 = _pair(family, OFF, KEEP)
        what = oids.describe_encapsulation(v4, v6)
        handle = rig.set(ENC, oids.encapsulation(v4, v6), what)
        after = rig.features()
        left = sorted(after & FAMILY_FEATURES[family])
        other = FAMILY_FEATURES[10 - family]
        kept = (before & other) == (after & other)
        return with_traffic(rig, verdict(
            handle.status == NdisStatus.SUCCESS and not left and kept, what,
            f"SUCCESS; no IPv{family} checksum/LSO/USO in the indicated configuration and none "
            f"in traffic; IPv{10 - family} untouched",
            f"{status_text(handle)}, IPv{family} still on: {', '.join(left) or 'none'}, "
            f"IPv{10 - family} {'untouched' if kept else 'changed'} ({diff(before, after)})",
        ))  # fmt: skip

    return run


def on_reactivates(family: int) -> CheckFn:
    def run(ctx: Context) -> Verdict:
        rig = ctx.rig()
        initial = rig.features() & FAMILY_FEATURES[family]
        rig.set(ENC, oids.encapsulation(OFF, OFF), "both OFF")
        v4, v6 = _pair(family, ON, KEEP)
        what = oids.describe_encapsulation(v4, v6)
        handle = rig.set(ENC, oids.encapsulation(v4, v6), what)
        after = rig.features()
        missing = sorted(initial - after)
        other_on = sorted(after & FAMILY_FEATURES[10 - family])
        return with_traffic(rig, verdict(
            handle.status == NdisStatus.SUCCESS and not missing and not other_on,
            "both OFF, then " + what,
            f"every configured IPv{family} offload on again, IPv{10 - family} still off",
            f"{status_text(handle)}, missing: {', '.join(missing) or 'none'}, "
            f"IPv{10 - family} on: {', '.join(other_on) or 'none'}",
        ))  # fmt: skip

    return run


def no_change_keeps(family: int) -> CheckFn:
    def run(ctx: Context) -> Verdict:
        rig = ctx.rig()
        mine = FAMILY_FEATURES[family]
        rig.set(ENC, oids.encapsulation(), "both ON")
        before = rig.features() & mine
        steps = [_pair(family, KEEP, OFF), _pair(family, KEEP, ON)]
        seen = []
        for v4, v6 in steps:
            handle = rig.set(ENC, oids.encapsulation(v4, v6), oids.describe_encapsulation(v4, v6))
            seen.append(f"{status_text(handle)}: IPv{family} {diff(before, rig.features() & mine)}")
        ok = all(s.endswith("no change") and s.startswith("NDIS_STATUS_SUCCESS") for s in seen)
        return with_traffic(rig, verdict(
            ok, f"both ON, then IPv{family} NO_CHANGE with IPv{10 - family} OFF, then ON",
            f"SUCCESS; IPv{family} offloads untouched both times", "; ".join(seen),
        ))  # fmt: skip

    return run


def failed_set_atomic(family: int) -> CheckFn:
    """A set whose ``family`` part is invalid fails as a whole, including the other part."""

    def run(ctx: Context) -> Verdict:
        rig = ctx.rig()
        rig.set(ENC, oids.encapsulation(), "both ON")
        before, counts = rig.features(), rig.indications()
        v4, v6 = _pair(family, Part(7, 2, 14), OFF)
        what = f"IPv{family}.Enabled = 7 (invalid), IPv{10 - family} OFF"
        handle = rig.set(ENC, oids.encapsulation(v4, v6), what)
        after, now = rig.features(), rig.indications()
        return with_traffic(rig, verdict(
            handle.status == NdisStatus.INVALID_PARAMETER and after == before and now == counts,
            "both ON, then " + what,
            "NDIS_STATUS_INVALID_PARAMETER; nothing changes, no indication, traffic as before",
            f"{status_text(handle)}, configuration {diff(before, after)}, "
            f"indications {counts} -> {now}",
        ))  # fmt: skip

    return run


def query_after_set(ctx: Context) -> Verdict:
    rig = ctx.rig(observe=False)
    rig.set(ENC, oids.encapsulation(ON, ON), "both ON")
    rig.set(ENC, oids.encapsulation(KEEP, OFF), "IPv4 NO_CHANGE, IPv6 OFF")
    handle = rig.query(ENC)
    data = handle.completion.InformationBuffer if handle.completion else b""
    from ndis_offload.structs.encapsulation import NdisOffloadEncapsulation

    got = NdisOffloadEncapsulation.decode(data) if data else None
    ok = (
        got is not None
        and got.IPv4.Enabled == 1
        and got.IPv4.HeaderSize == 14
        and got.IPv6.Enabled == 2
    )
    return verdict(
        ok, "both ON; IPv4 NO_CHANGE + IPv6 OFF; query OID_OFFLOAD_ENCAPSULATION",
        "NDIS answers: IPv4 ON (HeaderSize 14, kept by NO_CHANGE), IPv6 OFF",
        f"{status_text(handle)} {got.to_dict() if got else ''}",
    )  # fmt: skip


def _header(offset: int, fmt: str, value: int) -> bytes:
    return oids.patched(oids.encapsulation(), offset, fmt, value)


def checks() -> list[Check]:
    rule10 = ("OID_OFFLOAD_ENCAPSULATION set: SUCCESS if any offload supports the "
              "encapsulation, else NDIS_STATUS_INVALID_PARAMETER; then a CURRENT_CONFIG "
              "indication")  # fmt: skip
    out = [
        Check(
            "encapsulation-short-buffer",
            Family.CONTROL,
            PAGE,
            "a short InformationBuffer fails with the bytes needed",
            short_buffer,
            reading="the page names no status; INVALID_LENGTH or BUFFER_TOO_SHORT with "
            "BytesNeeded, as for every NDIS set",
        ),
        Check(
            "encapsulation-bad-header-type",
            Family.CONTROL,
            PAGE,
            "Header.Type must be NDIS_OBJECT_TYPE_OFFLOAD_ENCAPSULATION",
            _expect_status(
                _header(0, "<B", o.NDIS_OBJECT_TYPE_OFFLOAD),
                "Header.Type 0xA7",
                NdisStatus.INVALID_PARAMETER,
            ),
        ),
        Check(
            "encapsulation-bad-header-revision",
            Family.CONTROL,
            PAGE,
            "Header.Revision 0 is no revision",
            _expect_status(_header(1, "<B", 0), "Header.Revision 0", NdisStatus.INVALID_PARAMETER),
        ),
        Check(
            "encapsulation-bad-header-size",
            Family.CONTROL,
            PAGE,
            "Header.Size below NDIS_SIZEOF_OFFLOAD_ENCAPSULATION_REVISION_1",
            _expect_status(_header(2, "<H", 20), "Header.Size 20", NdisStatus.INVALID_PARAMETER),
        ),
        Check(
            "encapsulation-not-supported-without-offload",
            Family.CONTROL,
            PAGE,
            "a miniport without task offload answers NDIS_STATUS_NOT_SUPPORTED",
            _expect_status(
                oids.encapsulation(),
                "both ON on a NIC without offload",
                NdisStatus.NOT_SUPPORTED,
                "no-offload",
            ),
        ),
        Check(
            "encapsulation-query-after-set",
            Family.CONTROL,
            PAGE,
            "the query is answered by NDIS from the last successful set",
            query_after_set,
            reading="checks NDIS's part (what protocols see); NO_CHANGE keeps the family",
        ),
    ]
    for fam in (4, 6):
        out += [
            Check(f"encapsulation-bad-enabled-ipv{fam}", Family.CONTROL, PAGE,
                  "Enabled is NO_CHANGE, ON or OFF", _expect_status(
                      _header(4 if fam == 4 else 16, "<I", 7), f"IPv{fam}.Enabled 7",
                      NdisStatus.INVALID_PARAMETER)),
            Check(f"encapsulation-supported-ipv{fam}", Family.CONTROL, PAGE, rule10,
                  supported(fam)),
            Check(f"encapsulation-unsupported-ipv{fam}", Family.CONTROL, PAGE, rule10,
                  unsupported(fam), reading="a failed set changes nothing and indicates "
                  "nothing (the page: SUCCESS or INVALID_PARAMETER; state changes only on "
                  "success)"),
            Check(f"encapsulation-off-deactivates-ipv{fam}", Family.CONTROL, PAGE,
                  "Enabled = NDIS_OFFLOAD_SET_OFF deactivates all offloads of that IP version",
                  off_deactivates(fam), reading="checksum, LSO and USO; RSC stays under "
                  "OID_TCP_OFFLOAD_PARAMETERS"),
            Check(f"encapsulation-on-reactivates-ipv{fam}", Family.CONTROL, PAGE,
                  "Enabled = NDIS_OFFLOAD_SET_ON activates the configured offloads",
                  on_reactivates(fam)),
            Check(f"encapsulation-no-change-keeps-ipv{fam}", Family.CONTROL, PAGE,
                  "NDIS_OFFLOAD_SET_NO_CHANGE leaves that IP version as it is",
                  no_change_keeps(fam)),
            Check(f"encapsulation-failed-set-atomic-ipv{fam}", Family.CONTROL, PAGE,
                  "a set that fails changes nothing, indicates nothing", failed_set_atomic(fam)),
        ]  # fmt: skip
    return out

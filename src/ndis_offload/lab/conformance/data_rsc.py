"""RSC data path: ``rules-for-coalescing-tcp-ip-packets``, ``exception-conditions-that-
terminate-coalescing``, ``updating-the-ip-headers-for-coalesced-segments``,
``indicating-coalesced-segments``; observed on what the miniport indicates per receive DPC."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import replace

from ndis_offload.constants.oid import Oid
from ndis_offload.errors import PacketError
from ndis_offload.lab.conformance import frames as fr
from ndis_offload.lab.conformance import oids
from ndis_offload.lab.conformance.check import (
    Check,
    CheckFn,
    Context,
    page,
    verdict,
    with_traffic,
)
from ndis_offload.lab.conformance.result import Family, Verdict
from ndis_offload.lab.conformance.rig import Rig
from ndis_offload.stack.datapath import ReceiveIndication
from ndis_offload.stack.profiles import ALL_ON

RULES = page("rules-for-coalescing-tcp-ip-packets")
EXCEPTIONS = page("exception-conditions-that-terminate-coalescing")
HEADERS = page("updating-the-ip-headers-for-coalesced-segments")
INDICATING = page("indicating-coalesced-segments")
SEG = 1000


def _rig(ctx: Context, **keywords: int) -> Rig:
    rig = ctx.rig("full", keywords={**ALL_ON, **keywords})
    return rig


def seg(version: int, k: int, *, size: int = SEG, flags: int = fr.TCP_ACK, **kw: object) -> bytes:
    """Data segment ``k`` of the test flow (contiguous with segment k-1 at ``size`` bytes)."""
    tcp_kw = {key: kw.pop(key) for key in ("options", "ack", "window") if key in kw}
    tcp = fr.Tcp(seq=1000 + size * k, flags=flags, **tcp_kw)  # type: ignore[arg-type]
    return fr.build(version, tcp, fr.payload_bytes(size, salt=k), **kw)  # type: ignore[arg-type]


def describe(got: list[ReceiveIndication]) -> str:
    out = []
    for ind in got:
        try:
            lay = fr.layout(ind.frame)
            size = lay.payload_len
        except PacketError:
            size = -1
        out.append(f"[{size} B, count {ind.rsc.CoalescedSegCount}]")
    return " ".join(out) or "nothing"


def payload_of(got: list[ReceiveIndication]) -> bytes:
    return b"".join(fr.tcp_of(i.frame, fr.layout(i.frame)).payload for i in got)


def coalesces(version: int) -> CheckFn:
    def run(ctx: Context) -> Verdict:
        rig = _rig(ctx)
        frames = [seg(version, k) for k in range(4)]
        got = rig.receive(frames)
        want_payload = b"".join(fr.payload_bytes(SEG, salt=k) for k in range(4))
        ok = len(got) == 1 and got[0].rsc.CoalescedSegCount == 4 and payload_of(got) == want_payload
        return verdict(
            ok,
            f"4 in-order 1000-byte TCP/IPv{version} segments in one receive DPC",
            "one SCU, CoalescedSegCount 4, the 4000 bytes in order",
            describe(got),
        )

    return run


def not_before_enabled(ctx: Context) -> Verdict:
    rig = _rig(ctx, **{"*RscIPv4": 0, "*RscIPv6": 0})
    frames = [seg(4, k) for k in range(3)]
    before = rig.receive(frames)
    values = {"RscIPv4": 2}
    rig.set(Oid.TCP_OFFLOAD_PARAMETERS, oids.encode_parameters(oids.parameters(values)),
            oids.describe_parameters(values))  # fmt: skip
    after = rig.receive(frames)
    ok = len(before) == 3 and all(i.rsc.CoalescedSegCount == 0 for i in before)
    ok &= sum(i.rsc.CoalescedSegCount for i in after) == 3 and payload_of(after) == payload_of(
        before
    )
    return with_traffic(rig, verdict(
        ok, "*RscIPv4=0: 3 contiguous segments; then RscIPv4 ENABLED; the same 3 again",
        "no coalescing before RSC is enabled; everything indicated within its DPC; coalesced "
        "after", f"before: {describe(before)}; after: {describe(after)}",
    ))  # fmt: skip


Variant = Callable[[int], bytes]


def exception(
    name: str, make: Variant, *, restarts: bool, version: int = 4, size: int = SEG
) -> CheckFn:
    """seg0, seg1, the exception segment (index 2), seg3: the SCU of 0+1 ends; E7/E8 start a
    new SCU with the triggering segment, the others indicate it alone."""

    def run(ctx: Context) -> Verdict:
        rig = _rig(ctx)
        last = make(3) if restarts else seg(version, 3, size=size)  # E8: seg3 shares seg2's ECN
        frames = [seg(version, 0, size=size), seg(version, 1, size=size), make(2), last]
        got = rig.receive(frames)
        counts = [i.rsc.CoalescedSegCount for i in got]
        first_ok = bool(got) and got[0].rsc.CoalescedSegCount == 2
        if restarts:
            ok = first_ok and len(got) == 2 and counts[1] == 2
            want = "[seg0+seg1 as one SCU] [seg2+seg3 (same ECN) as a new SCU]"
        else:
            alone = (
                len(got) >= 2 and got[1].frame == frames[2] and got[1].rsc.CoalescedSegCount <= 1
            )
            ok = first_ok and alone and len(got) == 3
            want = "[seg0+seg1 as one SCU] [seg2 alone, unmodified] [seg3]"
        return verdict(
            ok,
            f"TCP/IPv{version}: 2 segments, then {name}, then a contiguous one",
            want,
            describe(got),
        )

    return run


def _bad_checksum(k: int) -> bytes:
    frame = bytearray(seg(4, k))
    frame[-1] ^= 0x5A
    return bytes(frame)


def _fragment(k: int) -> bytes:
    frame = bytearray(seg(4, k, ip_checksum="zero"))
    struct.pack_into("!H", frame, fr.ETH_LEN + 6, 0x2000)  # MF, offset 0
    from ndis_offload.packet.checksum import internet_checksum

    struct.pack_into("!H", frame, fr.ETH_LEN + 10, 0)
    struct.pack_into("!H", frame, fr.ETH_LEN + 10, internet_checksum(frame[14:34]))
    return bytes(frame)


BIG = 9000


def too_big(ctx: Context) -> Verdict:
    rig = _rig(ctx)
    got = rig.receive([seg(4, k, size=BIG) for k in range(9)])
    counts = [i.rsc.CoalescedSegCount for i in got]
    sizes = []
    for ind in got:
        lay = fr.layout(ind.frame)
        sizes.append(lay.ip_end - lay.l3_offset)
    ok = counts == [7, 2] and all(size <= 0xFFFF for size in sizes)
    return verdict(
        ok,
        f"9 contiguous {BIG}-byte TCP/IPv4 segments",
        "an SCU never exceeds 65535 bytes: [7 segments] then a new SCU [2 segments]",
        f"counts {counts}, IP datagram sizes {sizes}",
    )


def ip_headers(version: int) -> CheckFn:
    def run(ctx: Context) -> Verdict:
        rig = _rig(ctx)
        ttls = (64, 57, 61)
        frames = [seg(version, k, ttl=ttls[k], ip_id=500 + k) for k in range(3)]
        got = rig.receive(frames)
        if len(got) != 1:
            return verdict(False, "3 contiguous segments", "one SCU", describe(got))
        f = got[0].frame
        lay = fr.layout(f)
        bad = []
        if version == 4:
            ihl = (f[lay.l3_offset] & 0xF) * 4
            if fr.ip_id(f, lay) != 500:
                bad.append(f"IP ID {fr.ip_id(f, lay)} (first segment's is 500)")
            if f[lay.l3_offset + 8] != 57:
                bad.append(f"TTL {f[lay.l3_offset + 8]} (minimum is 57)")
            if ihl != 20:
                bad.append(f"IHL {ihl // 4}")
            if not fr.ipv4_header_ok(f, lay) and not got[0].checksum.IpChecksumValueInvalid:
                bad.append("IPv4 header checksum invalid without IpChecksumValueInvalid")
        elif f[lay.l3_offset + 7] != 57:
            bad.append(f"Hop Limit {f[lay.l3_offset + 7]} (minimum is 57)")
        want_len = lay.ip_end - lay.l3_offset - (0 if version == 4 else 40)
        if fr.ip_total_length(f, lay) != want_len or lay.payload_len != 3 * SEG:
            bad.append(
                f"IP length {fr.ip_total_length(f, lay)} for {lay.payload_len} payload bytes"
            )
        return verdict(
            not bad,
            f"3 contiguous TCP/IPv{version} segments, TTL/Hop Limit {ttls}, IDs 500..502",
            "IPv4: ID of the first, TTL = min, IHL 5, Total Length recomputed, valid checksum; "
            "IPv6: Hop Limit = min, Payload Length recomputed",
            "; ".join(bad) or "as documented",
        )

    return run


def psh_and_count(ctx: Context) -> Verdict:
    rig = _rig(ctx)
    frames = [seg(4, 0), seg(4, 1), seg(4, 2, flags=fr.TCP_ACK | fr.TCP_PSH)]
    got = rig.receive(frames)
    ok = len(got) == 1 and got[0].rsc.CoalescedSegCount == 3 and got[0].rsc.DupAckCount == 0
    flags = fr.tcp_of(got[0].frame, fr.layout(got[0].frame)).flags if got else 0
    ok &= bool(flags & fr.TCP_PSH)
    return verdict(
        ok,
        "3 contiguous segments, PSH on the last",
        "one SCU with PSH set (ORed), CoalescedSegCount 3, DupAckCount 0",
        f"{describe(got)}, flags 0x{flags:02X}",
    )


def checksum_flags(ctx: Context) -> Verdict:
    rig = _rig(ctx)
    got = rig.receive([seg(4, k) for k in range(3)])
    bad = []
    for ind in got:
        if ind.rsc.CoalescedSegCount > 0:
            c = ind.checksum
            lay = fr.layout(ind.frame)
            if not (c.IpChecksumSucceeded and c.TcpChecksumSucceeded):
                bad.append("IpChecksumSucceeded / TcpChecksumSucceeded not both set")
            if not fr.l4_checksum_ok(ind.frame, lay) and not c.TcpChecksumValueInvalid:
                bad.append("TCP checksum not recomputed and TcpChecksumValueInvalid not set")
    return verdict(
        not bad and bool(got),
        "3 contiguous TCP/IPv4 segments",
        "the SCU has IpChecksumSucceeded + TcpChecksumSucceeded; checksums valid or "
        "the ...ValueInvalid flags set",
        "; ".join(bad) or describe(got),
    )


def gap(ctx: Context) -> Verdict:
    rig = _rig(ctx)
    frames = [seg(4, 0), seg(4, 1), seg(4, 3), seg(4, 4)]
    got = rig.receive(frames)
    starts = [fr.tcp_of(i.frame, fr.layout(i.frame)).seq for i in got]
    ok = len(got) == 2 and starts == [1000, 1000 + 3 * SEG]
    return verdict(
        ok,
        "segments 0, 1, 3, 4 (segment 2 missing)",
        "SEG.SEQ != H.NXT starts a new SCU: [0+1] [3+4]",
        f"{describe(got)}, first sequence numbers {starts}",
    )


def pure_ack_alone(ctx: Context) -> Verdict:
    rig = _rig(ctx)
    ack = fr.build(4, fr.Tcp(seq=1000 + 2 * SEG, ack=9000, flags=fr.TCP_ACK), b"")
    frames = [seg(4, 0), seg(4, 1), ack]
    got = rig.receive(frames)
    ok = len(got) == 2 and got[1].frame == ack and got[0].rsc.CoalescedSegCount == 2
    return verdict(
        ok,
        "2 data segments, then a pure ACK that acknowledges new data (no window change)",
        "the pure ACK (neither duplicate ACK nor window update) is indicated alone, unmodified",
        describe(got),
    )


def disable_flushes(ctx: Context) -> Verdict:
    rig = _rig(ctx)
    frames = [seg(4, k) for k in range(3)]
    start = len(rig.stack.received)
    rig.receive(frames)
    values = {"RscIPv4": 1}
    rig.observe = False  # the traffic probes come after the reading below
    handle = rig.set(Oid.TCP_OFFLOAD_PARAMETERS, oids.encode_parameters(oids.parameters(values)),
                     oids.describe_parameters(values))  # fmt: skip
    indicated = payload_of(list(rig.stack.received[start:]))
    rig.observe = True
    rig.check_traffic("after set OID_TCP_OFFLOAD_PARAMETERS RscIPv4=1")
    want = b"".join(fr.payload_bytes(SEG, salt=k) for k in range(3))
    return with_traffic(rig, verdict(
        indicated == want, "3 contiguous segments in one DPC, then RscIPv4 DISABLED",
        "every segment received so far is indicated by the time the set completes",
        f"{handle.status.c_name}, {len(indicated)} of {len(want)} payload bytes indicated",
    ))  # fmt: skip


def _ts(tsval: int, tsecr: int = 7) -> bytes:
    return bytes([1, 1, 8, 10]) + struct.pack("!II", tsval, tsecr)


def window_update(ctx: Context) -> Verdict:
    rig = _rig(ctx)
    update = fr.build(4, fr.Tcp(seq=1000 + 2 * SEG, window=4096), b"")
    got = rig.receive([seg(4, 0), seg(4, 1), update])
    window = fr.tcp_of(got[0].frame, fr.layout(got[0].frame)).window if got else 0
    ok = len(got) == 1 and got[0].rsc.CoalescedSegCount == 2 and window == 4096
    return verdict(
        ok, "2 data segments (window 1024), then a pure ACK with the same ACK and window 4096",
        "a window update is merged: one SCU, CoalescedSegCount 2 (pure ACKs not counted), "
        "window 4096", f"{describe(got)}, window {window}",
    )  # fmt: skip


def timestamps(ctx: Context) -> Verdict:
    rig = _rig(ctx)
    frames = [seg(4, k, options=_ts(100 + 10 * k)) for k in range(3)]
    got = rig.receive(frames)
    opts = fr.tcp_of(got[0].frame, fr.layout(got[0].frame)).options if got else b""
    ok = len(got) == 1 and got[0].rsc.CoalescedSegCount == 3 and opts == _ts(120)
    return verdict(
        ok,
        "3 contiguous segments with TSval 100, 110, 120",
        "coalesced (the timestamp is the one option allowed); the SCU carries the latest TSval",
        f"{describe(got)}, options {opts.hex()}",
    )


def timestamp_back(ctx: Context) -> Verdict:
    rig = _rig(ctx)
    frames = [seg(4, 0, options=_ts(200)), seg(4, 1, options=_ts(210)),
              seg(4, 2, options=_ts(150)), seg(4, 3, options=_ts(220))]  # fmt: skip
    got = rig.receive(frames)
    counts = [i.rsc.CoalescedSegCount for i in got]
    ok = bool(got) and counts[0] == 2 and sum(max(c, 1) for c in counts) == 4
    return verdict(
        ok,
        "segments with TSval 200, 210, 150 (older), 220",
        "SEG.TSval < H.TSval finalizes the SCU: [200+210] then a new unit from 150",
        f"{describe(got)}",
    )


def checks() -> list[Check]:
    out = [
        Check("rsc-not-before-enabled", Family.RSC, INDICATING, "no coalescing before RSC is "
              "enabled; no holding segments across DPCs", not_before_enabled),
        Check("rsc-disable-indicates-pending", Family.RSC, page("querying-and-changing-rsc-"
              "state"), "disabling RSC indicates pending SCUs before the OID completes",
              disable_flushes),
        Check("rsc-ip-header-update-ipv4", Family.RSC, HEADERS, "IPv4 SCU: ID of the first, "
              "TTL min, IHL 5, length and checksum recomputed", ip_headers(4)),
        Check("rsc-ip-header-update-ipv6", Family.RSC, HEADERS, "IPv6 SCU: Hop Limit min, "
              "Payload Length recomputed", ip_headers(6)),
        Check("rsc-psh-and-coalesced-count", Family.RSC, RULES, "PSH ORed; CoalescedSegCount "
              "counts data segments; DupAckCount 0 without duplicate ACKs", psh_and_count,
              reading="RscTcpTimestampDelta has checks of its own (rsc-timestamp-delta*)"),
        Check("rsc-checksum-flags", Family.RSC, INDICATING, "an SCU always has "
              "IpChecksumSucceeded + TcpChecksumSucceeded; ...ValueInvalid if not recomputed",
              checksum_flags),
        Check("rsc-new-scu-on-gap", Family.RSC, RULES, "SEG.SEQ != H.NXT starts a new SCU", gap),
        Check("rsc-pure-ack-alone", Family.RSC, RULES, "a pure ACK that is neither a duplicate "
              "ACK nor a window update is indicated alone", pure_ack_alone),
        Check("rsc-window-update-merged", Family.RSC, RULES, "a window update (pure ACK, same "
              "ACK, new window) is merged into the SCU, not counted", window_update),
        Check("rsc-timestamps-coalesce", Family.RSC, RULES, "the TCP timestamp option does not "
              "stop coalescing; the SCU carries the latest TSval", timestamps),
        Check("rsc-timestamp-going-back-ends-scu", Family.RSC, RULES, "SEG.TSval older than "
              "H.TSval (mod 2^32) finalizes the SCU", timestamp_back),
    ]  # fmt: skip
    for v in (4, 6):
        out.append(Check(f"rsc-coalesces-ipv{v}", Family.RSC, RULES, "in-order data segments "
                         "of one flow are coalesced into one SCU", coalesces(v)))  # fmt: skip
    exc = [
        ("E2-bad-checksum", "a segment with a bad TCP checksum", _bad_checksum, False),
        (
            "E3-flags",
            "a segment with URG",
            lambda k: seg(4, k, flags=fr.TCP_ACK | fr.TCP_URG),
            False,
        ),
        (
            "E4-tcp-option",
            "a segment with a TCP option other than timestamps",
            lambda k: seg(4, k, options=fr.TCP_OPTIONS["mss-sack-ws"]),
            False,
        ),
        (
            "E5-ip-options",
            "a segment with IPv4 options",
            lambda k: seg(4, k, ip_options=fr.IP_OPTIONS["router-alert"]),
            False,
        ),
        ("E6-fragment", "an IPv4 first fragment (MF set)", _fragment, False),
        ("E8-ecn", "a segment whose IP ECN field is ECT(0)", lambda k: seg(4, k, tos=2), True),
    ]
    for name, what, make, restarts in exc:
        out.append(Check(f"rsc-exception-{name}", Family.RSC, EXCEPTIONS,
                         f"exception {name.split('-')[0]}: {what} ends the SCU", exception(
                             what, make, restarts=restarts)))  # fmt: skip
    out.append(Check(
        "rsc-exception-E7-size", Family.RSC, EXCEPTIONS, "exception E7: an SCU would exceed the "
        "largest IP datagram; the triggering segment starts a new SCU", too_big,
    ))  # fmt: skip
    return [replace(c, needs=frozenset({"rsc6" if c.name.endswith("ipv6") else "rsc4"}))
            for c in out]  # fmt: skip

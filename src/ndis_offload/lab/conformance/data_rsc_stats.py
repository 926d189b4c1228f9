"""RSC statistics and the timestamp delta, observed from outside: ``OID_TCP_RSC_STATISTICS``
queried before and after the battery's own traffic (``oid-tcp-rsc-statistics``,
``ddi:ntddndis/ns-ntddndis-_ndis_rsc_statistics_info``), the ``Aborts`` each numbered
exception adds (``exception-conditions-that-terminate-coalescing``), and
``NetBufferListInfo[RscTcpTimestampDelta]`` of every SCU (``rules-for-coalescing-tcp-ip-
packets``)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, replace

from ndis_offload.constants.objects import (
    NDIS_OBJECT_TYPE_DEFAULT,
    NDIS_RSC_STATISTICS_REVISION_1,
    NDIS_SIZEOF_RSC_STATISTICS_REVISION_1,
)
from ndis_offload.constants.oid import Oid
from ndis_offload.constants.status import NdisStatus
from ndis_offload.errors import PacketError
from ndis_offload.lab.conformance import data_rsc as rsc
from ndis_offload.lab.conformance import frames as fr
from ndis_offload.lab.conformance.check import Check, CheckFn, Context, ddi, page, verdict
from ndis_offload.lab.conformance.oids import answer, grown
from ndis_offload.lab.conformance.result import Family, Verdict
from ndis_offload.lab.conformance.rig import Rig
from ndis_offload.packet.headers import IPPROTO_TCP
from ndis_offload.stack.datapath import ReceiveIndication
from ndis_offload.structs.statistics import NdisRscStatisticsInfo

STATS = page("oid-tcp-rsc-statistics")
STRUCT = ddi("ntddndis/ns-ntddndis-_ndis_rsc_statistics_info")
SIZE = NDIS_SIZEOF_RSC_STATISTICS_REVISION_1
COUNTERS = ("CoalescedPkts", "CoalescedOctets", "CoalesceEvents", "Aborts")


def query_statistics(rig: Rig) -> NdisRscStatisticsInfo | str:
    """The miniport's ``NDIS_RSC_STATISTICS_INFO``, or why it could not be read."""
    return answer(rig.query(Oid.TCP_RSC_STATISTICS), NdisRscStatisticsInfo)


def observed(got: list[ReceiveIndication]) -> dict[str, int]:
    """What the indications themselves say the counters must have grown by (``Aborts``
    excepted): one event per SCU indicated (``CoalescedSegCount > 0``), its segments, its
    TCP payload."""
    scus = [i for i in got if i.rsc.CoalescedSegCount > 0]
    octets = 0
    for ind in scus:
        try:
            octets += fr.layout(ind.frame).payload_len
        except PacketError:
            octets = -1
            break
    return {
        "CoalescedPkts": sum(i.rsc.CoalescedSegCount for i in scus),
        "CoalescedOctets": octets,
        "CoalesceEvents": len(scus),
    }


def show(values: dict[str, int]) -> str:
    return ", ".join(f"{name} {value:+d}" for name, value in values.items())


def supported(ctx: Context) -> Verdict:
    """Rule 20: an adapter that advertises RSC answers the query with a well-formed
    ``NDIS_RSC_STATISTICS_INFO``; a short buffer gets ``BUFFER_TOO_SHORT`` with the bytes
    needed; a set is refused."""
    rig = rsc._rig(ctx)
    bad: list[str] = []
    handle = rig.query(Oid.TCP_RSC_STATISTICS)
    done = handle.completion
    if done is None or done.status != NdisStatus.SUCCESS:
        bad.append(f"query: {handle.status.c_name}")
    else:
        header = struct.unpack_from("<BBH", done.InformationBuffer.ljust(4, b"\0"))
        want = (NDIS_OBJECT_TYPE_DEFAULT, NDIS_RSC_STATISTICS_REVISION_1, SIZE)
        if header != want:
            bad.append(f"Header {{0x{header[0]:X}, {header[1]}, {header[2]}}}, not "
                       f"{{0x80, 1, {SIZE}}}")  # fmt: skip
        if done.BytesWritten != SIZE or len(done.InformationBuffer) < SIZE:
            bad.append(f"BytesWritten {done.BytesWritten} ({len(done.InformationBuffer)} "
                       f"bytes returned), not {SIZE}")  # fmt: skip
    short = rig.query(Oid.TCP_RSC_STATISTICS, length=SIZE - 8)
    if short.status != NdisStatus.BUFFER_TOO_SHORT or (
        short.completion is not None and short.completion.BytesNeeded != SIZE
    ):
        needed = short.completion.BytesNeeded if short.completion else "-"
        bad.append(f"{SIZE - 8}-byte query: {short.status.c_name}, BytesNeeded {needed}")
    written = rig.bindings[0].set(Oid.TCP_RSC_STATISTICS, bytes(SIZE))
    if written.status == NdisStatus.SUCCESS:
        bad.append("a set succeeded (the OID is query-only)")
    return verdict(
        not bad,
        f"OID_TCP_RSC_STATISTICS query (4096 bytes), query ({SIZE - 8} bytes), set",
        f"SUCCESS with Header {{NDIS_OBJECT_TYPE_DEFAULT, NDIS_RSC_STATISTICS_REVISION_1, "
        f"{SIZE}}} and BytesWritten {SIZE}; NDIS_STATUS_BUFFER_TOO_SHORT with BytesNeeded "
        f"{SIZE}; the set refused",
        "; ".join(bad) or "as documented",
    )


@dataclass(frozen=True)
class _Flow:
    version: int
    port: int
    sizes: tuple[int, ...]

    def frames(self) -> list[bytes]:
        out, seq = [], 1000
        for k, size in enumerate(self.sizes):
            tcp = fr.Tcp(sport=self.port, seq=seq)
            out.append(fr.build(self.version, tcp, fr.payload_bytes(size, salt=k)))
            seq += size
        return out


def counts(ctx: Context) -> Verdict:
    """Rule 20 (and 48: no exception, no abort): random in-order flows, a lone segment and a
    UDP datagram in one receive DPC; the counters grow by exactly what was coalesced."""
    rig = rsc._rig(ctx)
    rng = ctx.rng
    versions = [4, 6] if "rsc6" in rig.hardware() else [4]
    flows = [
        _Flow(v, 42000 + i, tuple(rng.randrange(1, 1461) for _ in range(rng.randrange(2, 9))))
        for i, v in enumerate(versions * rng.randrange(1, 3))
    ]
    lone = _Flow(4, 43000, (rng.randrange(1, 1461),))
    frames = [f for flow in flows for f in flow.frames()] + lone.frames()
    frames.append(fr.build(4, fr.Udp(sport=43001), fr.payload_bytes(200)))
    before = query_statistics(rig)
    got = rig.receive(frames)
    after = query_statistics(rig)
    sent = (
        f"one receive DPC: {len(flows)} in-order TCP flows of "
        f"{', '.join(str(len(f.sizes)) for f in flows)} segments (random sizes 1..1460), a lone "
        "segment and a UDP datagram; OID_TCP_RSC_STATISTICS before and after"
    )
    want = {
        "CoalescedPkts": sum(len(f.sizes) for f in flows),
        "CoalescedOctets": sum(sum(f.sizes) for f in flows),
        "CoalesceEvents": len(flows),
        "Aborts": 0,
    }
    expected = f"{show(want)} (one event per flow; the lone segment and UDP count nothing)"
    grew = grown(before, after, COUNTERS)
    if isinstance(grew, str):
        return verdict(False, sent, expected, grew)
    seen = observed(got)
    ok = grew == want and all(grew[k] == v for k, v in seen.items())
    return verdict(ok, sent, expected,
                   f"{show(grew)}; the indications show {show(seen)}")  # fmt: skip


def aborts(make: Callable[[], list[bytes]], what: str, want: int) -> CheckFn:
    """Rule 48: one numbered exception while an SCU is held adds ``want`` to ``Aborts``
    (1; 0 for E7), and the other counters follow the SCUs indicated."""

    def run(ctx: Context) -> Verdict:
        rig = rsc._rig(ctx)
        frames = make()
        before = query_statistics(rig)
        got = rig.receive(frames)
        after = query_statistics(rig)
        sent = f"{what}; OID_TCP_RSC_STATISTICS before and after"
        expected = f"Aborts {want:+d}; CoalesceEvents / CoalescedPkts grow by the SCUs "
        expected += "indicated (CoalescedOctets is rsc-statistics-counts' business)"
        grew = grown(before, after, COUNTERS)
        if isinstance(grew, str):
            return verdict(False, sent, expected, grew)
        seen = observed(got)
        ok = grew["Aborts"] == want and all(
            grew[k] == v for k, v in seen.items() if k != "CoalescedOctets"
        )
        return verdict(ok, sent, expected, f"{show(grew)}; indicated {rsc.describe(got)}")

    return run


RESOURCE_FLOWS = 300


def resources(ctx: Context) -> Verdict:
    """Rule 48, E1: more flows at once than a NIC keeps SCUs for. A flow whose contiguous
    segments come up in more than one unit (nothing else here ends a unit) was split for want
    of resources, which ``Aborts`` "should include"."""
    rig = rsc._rig(ctx)
    frames = [
        fr.build(4, fr.Tcp(sport=20000 + f, dport=8080, seq=1000 + 500 * k),
                 fr.payload_bytes(500, salt=k))
        for k in range(3)
        for f in range(RESOURCE_FLOWS)
    ]  # fmt: skip
    before = query_statistics(rig)
    got = rig.receive(frames)
    after = query_statistics(rig)
    sent = (f"one receive DPC: {RESOURCE_FLOWS} flows x 3 contiguous 500-byte segments, "
            "round robin; OID_TCP_RSC_STATISTICS before and after")  # fmt: skip
    expected = ("every flow as one SCU, or, where a flow was split for want of SCU contexts, "
                "Aborts grown; the other counters follow the SCUs indicated")  # fmt: skip
    grew = grown(before, after, COUNTERS)
    if isinstance(grew, str):
        return verdict(False, sent, expected, grew)
    units: dict[int, int] = {}
    for ind in got:
        try:
            port = _port(ind.frame)
        except PacketError:
            continue
        units[port] = units.get(port, 0) + 1
    split = sum(n - 1 for n in units.values())
    seen = observed(got)
    consistent = all(grew[k] == v for k, v in seen.items() if k != "CoalescedOctets")
    ok = consistent and (split == 0 or grew["Aborts"] >= 1)
    why = "E1 not met: every flow came up whole" if split == 0 else f"{split} splits"
    return verdict(ok, sent, expected, f"{why}; {show(grew)}")


def _exception_frames(make: Callable[[int], bytes], restarts: bool) -> Callable[[], list[bytes]]:
    def frames() -> list[bytes]:
        last = make(3) if restarts else rsc.seg(4, 3)
        return [rsc.seg(4, 0), rsc.seg(4, 1), make(2), last]

    return frames


# --- RscTcpTimestampDelta -------------------------------------------------------------------
def _ts(tsval: int, tsecr: int = 7) -> bytes:
    return bytes([1, 1, 8, 10]) + struct.pack("!II", tsval, tsecr)


def _ts_flow(port: int, stamps: list[int], sizes: list[int]) -> list[bytes]:
    out, seq = [], 5000
    for k, (stamp, size) in enumerate(zip(stamps, sizes, strict=True)):
        tcp = fr.Tcp(sport=port, seq=seq, options=_ts(stamp))
        out.append(fr.build(4, tcp, fr.payload_bytes(size, salt=k)))
        seq += size
    return out


def _tsval(frame: bytes) -> int | None:
    try:
        opts = fr.tcp_of(frame, fr.layout(frame)).options
    except PacketError:
        return None
    at = opts.find(bytes([8, 10]))
    return struct.unpack_from("!I", opts, at + 2)[0] if at >= 0 and at + 10 <= len(opts) else None


def _port(frame: bytes) -> int:
    lay = fr.layout(frame)
    if lay.l4_proto != IPPROTO_TCP:
        raise PacketError("not a TCP frame")
    port: int = struct.unpack_from("!H", frame, lay.l4_offset)[0]
    return port


Expect = list[tuple[int, int, int]]
"""Per SCU expected, in indication order of its flow: (segments, TSval, delta)."""


def _judge(got: list[ReceiveIndication], want: dict[int, Expect]) -> list[str]:
    """Every SCU of each flow: its count, its (latest) TSval and its RscTcpTimestampDelta."""
    bad: list[str] = []
    by_port: dict[int, list[tuple[int, int | None, int]]] = {}
    for ind in got:
        try:
            port = _port(ind.frame)
        except PacketError:
            continue
        count = ind.rsc.CoalescedSegCount
        by_port.setdefault(port, []).append(
            (max(count, 1), _tsval(ind.frame), ind.RscTcpTimestampDelta if count else 0)
        )
    for port, units in want.items():
        seen = by_port.get(port, [])
        if [u[0] for u in seen] != [u[0] for u in units]:
            bad.append(f"port {port}: units of {[u[0] for u in seen]} segments, expected "
                       f"{[u[0] for u in units]}")  # fmt: skip
            continue
        for (count, tsval, dt), (_, want_ts, want_dt) in zip(seen, units, strict=True):
            if count > 1 and (tsval != want_ts or dt != want_dt):
                bad.append(f"port {port}: SCU of {count} with TSval {tsval} and "
                           f"RscTcpTimestampDelta {dt}, expected TSval {want_ts}, delta "
                           f"{want_dt}")  # fmt: skip
    return bad


M32 = 0xFFFFFFFF
_CASES: tuple[tuple[str, list[int], Expect], ...] = (
    ("TSval 100, 110, 125", [100, 110, 125], [(3, 125, 25)]),
    ("TSval 0xFFFFFFF0, 0xFFFFFFFA, 0x4, 0x10 (wraps)", [0xFFFFFFF0, 0xFFFFFFFA, 4, 0x10],
     [(4, 0x10, 0x20)]),
    ("TSval 500, 500, 500", [500, 500, 500], [(3, 500, 0)]),
    ("TSval 200, 210, 150 (older), 160", [200, 210, 150, 160], [(2, 210, 10), (2, 160, 10)]),
)  # fmt: skip


def timestamp_delta(ctx: Context) -> Verdict:
    """Rule 50, a fixed frame set: each case in its own receive DPC."""
    rig = rsc._rig(ctx)
    bad: list[str] = []
    for index, (_, stamps, units) in enumerate(_CASES):
        port = 44000 + index
        got = rig.receive(_ts_flow(port, stamps, [1000] * len(stamps)))
        bad += _judge(got, {port: units})
    return verdict(
        not bad,
        "4 receive DPCs of 1000-byte segments with timestamps: "
        + "; ".join(name for name, _, _ in _CASES),
        "each SCU carries the latest TSval and RscTcpTimestampDelta = latest - earliest "
        "(mod 2^32): 25; 0x20; 0; 10 and 10 (the older TSval starts a new SCU)",
        "; ".join(bad) or "as documented",
    )


def timestamp_delta_random(ctx: Context) -> Verdict:
    """Rule 50, randomized: interleaved flows with random TSval starts, steps (0 included)
    and segment sizes in one receive DPC; the first flow's TSvals, and half the others',
    cross 2^32."""
    rig = rsc._rig(ctx)
    rng = ctx.rng
    flows: dict[int, list[bytes]] = {}
    want: dict[int, Expect] = {}
    for index in range(rng.randrange(1, 4)):
        port = 45000 + index
        count = rng.randrange(2, 9)
        steps = [rng.randrange(1, 1000) if rng.getrandbits(1) else 0 for _ in range(count - 1)]
        if index == 0 and not any(steps):
            steps[-1] = rng.randrange(1, 1000)
        total = sum(steps)
        if index == 0 or (total and rng.getrandbits(1)):  # across 2^32 (always the first)
            start = (1 << 32) - rng.randrange(1, total + 1)
        else:
            start = rng.getrandbits(32)
        stamps = [start]
        for step in steps:
            stamps.append((stamps[-1] + step) & M32)
        flows[port] = _ts_flow(port, stamps, [rng.randrange(1, 1461) for _ in stamps])
        want[port] = [(count, stamps[-1], (stamps[-1] - stamps[0]) & M32)]
    cursors = dict.fromkeys(flows, 0)
    frames = []
    while live := [p for p in flows if cursors[p] < len(flows[p])]:
        port = live[rng.randrange(len(live))]  # a random interleaving, each flow in order
        frames.append(flows[port][cursors[port]])
        cursors[port] += 1
    got = rig.receive(frames)
    bad = _judge(got, want)
    return verdict(
        not bad,
        f"one receive DPC, {len(flows)} interleaved flows: "
        + "; ".join(f"{u[0][0]} segments, TSval +{u[0][2]}" for u in want.values()),
        "one SCU per flow with the latest TSval and RscTcpTimestampDelta = latest - earliest "
        "TSval (mod 2^32)",
        "; ".join(bad) or "as documented",
    )


def checks() -> list[Check]:
    out = [
        Check("rsc-statistics-supported", Family.RSC, STATS, "OID_TCP_RSC_STATISTICS is "
              "supported by an adapter that advertises RSC: a well-formed "
              "NDIS_RSC_STATISTICS_INFO, BUFFER_TOO_SHORT with the bytes needed", supported,
              reading=f"the header is the structure page's ({STRUCT}); an adapter without "
              "RSC may answer anything (the OID is optional for it); a set must not succeed"),
        Check("rsc-statistics-counts", Family.RSC, STATS, "CoalescedPkts, CoalescedOctets "
              "(TCP payload) and CoalesceEvents grow by what was coalesced; a segment "
              "indicated alone counts nothing", counts,
              reading="counted per SCU indicated with CoalescedSegCount > 0 (the packets "
              "CoalescedSegCount counts); the traffic has no exception, so Aborts stays"),
    ]  # fmt: skip
    exc = [
        ("E2-bad-checksum", "a segment with a bad TCP checksum", rsc._bad_checksum, False),
        ("E3-flags", "a segment with URG", lambda k: rsc.seg(4, k, flags=fr.TCP_ACK | fr.TCP_URG),
         False),
        ("E4-tcp-option", "a segment with an MSS/SACK/window-scale option",
         lambda k: rsc.seg(4, k, options=fr.TCP_OPTIONS["mss-sack-ws"]), False),
        ("E5-ip-options", "a segment with IPv4 options",
         lambda k: rsc.seg(4, k, ip_options=fr.IP_OPTIONS["router-alert"]), False),
        ("E6-fragment", "an IPv4 first fragment", rsc._fragment, False),
        ("E8-ecn", "a segment whose IP ECN field is ECT(0)", lambda k: rsc.seg(4, k, tos=2),
         True),
    ]  # fmt: skip
    for name, what, make, restarts in exc:
        out.append(Check(
            f"rsc-aborts-{name}", Family.RSC, STATS, f"exception {name.split('-')[0]} adds one "
            "to Aborts", aborts(_exception_frames(make, restarts),
                                f"TCP/IPv4: 2 segments, then {what}, then a contiguous one", 1),
            reading="the exception arrives while an SCU is held, where every reading of "
            "'encounters an exception' counts it once",
        ))  # fmt: skip
    out.append(Check(
        "rsc-aborts-E1-resources", Family.RSC, STATS, "a flow split for want of SCU contexts "
        "(exception E1) adds to Aborts", resources,
        reading=f"{RESOURCE_FLOWS} flows at once; a NIC with room for all of them never meets "
        "E1 and passes; otherwise any split must show in Aborts (how many per split is "
        "the NIC's: per SCU given up or per packet not coalesced)",
    ))  # fmt: skip
    out.append(Check(
        "rsc-aborts-E7-not-counted", Family.RSC, STATS, "exception E7 (the IP datagram length) "
        "is not an abort", aborts(lambda: [rsc.seg(4, k, size=rsc.BIG) for k in range(9)],
                                  f"9 contiguous {rsc.BIG}-byte TCP/IPv4 segments", 0),
    ))  # fmt: skip
    out += [
        Check("rsc-timestamp-delta", Family.RSC, rsc.RULES, "RscTcpTimestampDelta = latest - "
              "earliest TSval of the SCU; the SCU carries the latest TSval (fixed cases)",
              timestamp_delta),
        Check("rsc-timestamp-delta-random", Family.RSC, rsc.RULES, "RscTcpTimestampDelta and "
              "the latest TSval on random interleaved flows", timestamp_delta_random,
              reading="TSvals never go back within a flow here, so each flow is one SCU"),
    ]  # fmt: skip
    return [replace(c, needs=frozenset({"rsc4"})) for c in out]

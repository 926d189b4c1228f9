"""LSO data path (``offloading-the-segmentation-of-large-tcp-packets``; the
``NDIS_TCP_LARGE_SEND_OFFLOAD_NET_BUFFER_LIST_INFO`` DDI page), NDISTest OffloadLSO style:
TCP options x IP options x MSS x segment count, random TCP flags and urgent pointer, for
LSOv1/IPv4, LSOv2/IPv4 and LSOv2/IPv6; every segment is checked independently."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ndis_offload.constants.oid import Oid
from ndis_offload.constants.status import NdisStatus
from ndis_offload.errors import PacketError
from ndis_offload.lab.conformance import frames as fr
from ndis_offload.lab.conformance import oids
from ndis_offload.lab.conformance.check import (
    Check,
    CheckFn,
    Context,
    ddi,
    page,
    skipped,
    verdict,
    with_traffic,
)
from ndis_offload.lab.conformance.result import Family, Verdict
from ndis_offload.lab.conformance.rig import Rig
from ndis_offload.packet.headers import FrameLayout
from ndis_offload.stack.datapath import NetBufferList, SendCompletion
from ndis_offload.stack.profiles import ALL_ON
from ndis_offload.structs.nbl_info import (
    NdisLsoV1Transmit,
    NdisLsoV1TransmitComplete,
    NdisLsoV2Transmit,
    NdisLsoV2TransmitComplete,
    NdisTcpIpChecksumNetBufferListInfoTransmit,
)

PAGE = page("offloading-the-segmentation-of-large-tcp-packets")
INFO = ddi("nbllso/ns-nbllso-ndis_tcp_large_send_offload_net_buffer_list_info")
KINDS = ("lsov1", "lsov2_4", "lsov2_6")
MSS_VALUES = (536, 1000, 1448)
COUNTS = (2, 5)
SPECIAL = fr.TCP_FIN | fr.TCP_PSH | fr.TCP_CWR


@dataclass(frozen=True)
class Case:
    kind: str
    tcp_options: str
    ip_options: str
    mss: int
    payload: bytes
    tcp: fr.Tcp
    ip_id: int
    frame: bytes
    nbl: NetBufferList

    @property
    def version(self) -> int:
        return 6 if self.kind == "lsov2_6" else 4

    def label(self) -> str:
        csum = " +checksum" if self.nbl.TcpIpChecksumNetBufferListInfo else ""
        return (f"{self.kind}{csum} tcp:{self.tcp_options} ip:{self.ip_options} MSS {self.mss} "
                f"{len(self.payload)} B flags 0x{self.tcp.flags:02X}")  # fmt: skip


def make_case(ctx: Context, kind: str, tcp_opt: str, ip_opt: str, mss: int, count: int) -> Case:
    rng = ctx.rng
    version = 6 if kind == "lsov2_6" else 4
    size = mss * (count - 1) + rng.randrange(1, mss + 1)
    flags = fr.TCP_ACK
    for bit in (fr.TCP_FIN, fr.TCP_PSH, fr.TCP_CWR, fr.TCP_ECE, fr.TCP_URG):
        if rng.getrandbits(1):
            flags |= bit
    tcp = fr.Tcp(
        sport=rng.randrange(1024, 65536), seq=rng.getrandbits(32), ack=rng.getrandbits(32),
        flags=flags, window=rng.randrange(1, 65536),
        urgent=rng.randrange(1, 65536) if flags & fr.TCP_URG else 0,
        options=fr.TCP_OPTIONS[tcp_opt],
    )  # fmt: skip
    ip_options = (fr.IP_OPTIONS if version == 4 else fr.IPV6_EXTENSIONS)[ip_opt]
    ip_id = rng.randrange(0, 0x7FFF - count)
    if kind == "lsov2_4" and rng.getrandbits(1):  # the LSOv2 wrap from 0x7FFF to 0x0000
        ip_id = rng.randrange(0x8000 - count, 0x8000)
    payload = fr.payload_bytes(size, rng)
    frame = fr.build(version, tcp, payload, ip_options=ip_options, ip_id=ip_id,
                     l4_checksum="pseudo-nolen", zero_length=kind != "lsov1")  # fmt: skip
    offset = fr.ETH_LEN + (20 if version == 4 else 40) + len(ip_options)
    word: NdisLsoV1Transmit | NdisLsoV2Transmit
    if kind == "lsov1":
        word = NdisLsoV1Transmit(MSS=mss, TcpHeaderOffset=offset)
    else:
        word = NdisLsoV2Transmit(MSS=mss, TcpHeaderOffset=offset, IPVersion=int(version == 6))
    checksum = 0
    if rng.getrandbits(1):  # NDISTest also combines LSO with a checksum request
        checksum = NdisTcpIpChecksumNetBufferListInfoTransmit(
            IsIPv4=int(version == 4), IsIPv6=int(version == 6), TcpChecksum=1,
            IpHeaderChecksum=int(version == 4), TcpHeaderOffset=offset,
        ).to_int()  # fmt: skip
    nbl = NetBufferList(frame, TcpIpChecksumNetBufferListInfo=checksum,
                        TcpLargeSendNetBufferListInfo=word.to_int())  # fmt: skip
    return Case(kind, tcp_opt, ip_opt, mss, payload, tcp, ip_id, frame, nbl)


def matrix(ctx: Context, kinds: tuple[str, ...] = KINDS) -> list[Case]:
    cases = []
    for kind in kinds:
        ip_opts = ("none", "router-alert") if kind != "lsov2_6" else ("none", "hop-by-hop")
        for tcp_opt in fr.TCP_OPTIONS:
            for ip_opt in ip_opts:
                for mss in MSS_VALUES:
                    for count in COUNTS:
                        cases.append(make_case(ctx, kind, tcp_opt, ip_opt, mss, count))
    return cases


def lso_rig(ctx: Context) -> Rig:
    rig = ctx.rig("full", keywords=ALL_ON)
    return rig


Property = Callable[[Case, SendCompletion], str | None]
"""What is wrong with one case's result, or None."""


def run_matrix(ctx: Context, prop: Property, what: str, expected: str) -> Verdict:
    rig = lso_rig(ctx)
    kinds = tuple(k for k in KINDS if k in rig.hardware())
    if not kinds:
        return skipped(f"not advertised: {', '.join(KINDS)}")
    cases = matrix(ctx, kinds)
    bad = []
    for case in cases:
        done = rig.send(case.nbl)
        if done.status != NdisStatus.SUCCESS or not done.frames:
            bad.append(f"{case.label()}: {done.status.c_name}, {len(done.frames)} frames")
            continue
        try:
            problem = prop(case, done)
        except PacketError as err:
            problem = f"malformed segment: {err}"
        if problem:
            bad.append(f"{case.label()}: {problem}")
    return verdict(
        not bad,
        f"{len(cases)} LSO sends: {', '.join(kinds)} x TCP options "
        f"{list(fr.TCP_OPTIONS)} x IP options/extension headers x MSS {list(MSS_VALUES)} x "
        f"{list(COUNTS)} segments, random flags/urgent pointer/IP ID/payload, half of them "
        "with a checksum request too",
        expected,
        f"{len(bad)} of {len(cases)} wrong" + (": " + "; ".join(bad[:4]) if bad else ""),
    )


def _segments(done: SendCompletion) -> list[tuple[bytes, FrameLayout]]:
    return [(f, fr.layout(f)) for f in done.frames]


def payload_per_mss(case: Case, done: SendCompletion) -> str | None:
    sizes = [lay.payload_len for _, lay in _segments(done)]
    want = [case.mss] * (len(case.payload) // case.mss)
    if len(case.payload) % case.mss:
        want.append(len(case.payload) % case.mss)
    return None if sizes == want else f"payload sizes {sizes}, expected {want}"


def payload_intact(case: Case, done: SendCompletion) -> str | None:
    data = b"".join(f[lay.payload_offset : lay.ip_end] for f, lay in _segments(done))
    return None if data == case.payload else "the segments' payload is not the NBL's payload"


def flags(case: Case, done: SendCompletion) -> str | None:
    segs = _segments(done)
    base = case.tcp.flags & ~SPECIAL
    for k, (f, lay) in enumerate(segs):
        want = base | (case.tcp.flags & fr.TCP_CWR if k == 0 else 0)
        if k == len(segs) - 1:
            want |= case.tcp.flags & (fr.TCP_FIN | fr.TCP_PSH)
        got = fr.tcp_of(f, lay).flags
        if got != want:
            return f"segment {k}: flags 0x{got:02X}, expected 0x{want:02X}"
    return None


def options_copied(case: Case, done: SendCompletion) -> str | None:
    lay0 = fr.layout(case.frame if case.kind == "lsov1" else done.frames[0])
    ip_opts = fr.ip_options_of(case.frame, lay0) if case.kind == "lsov1" else None
    for k, (f, lay) in enumerate(_segments(done)):
        t = fr.tcp_of(f, lay)
        if t.options != case.tcp.options:
            return f"segment {k}: TCP options {t.options.hex()} != {case.tcp.options.hex()}"
        if (
            t.urgent != case.tcp.urgent
            or t.window != case.tcp.window
            or t.ack != case.tcp.ack & 0xFFFFFFFF
        ):
            return f"segment {k}: window / ACK / urgent pointer not copied"
        want = (
            ip_opts
            if ip_opts is not None
            else fr.ip_options_of(done.frames[0], fr.layout(done.frames[0]))
        )
        if fr.ip_options_of(f, lay) != want:
            return f"segment {k}: IP options / extension headers differ"
    first = fr.layout(done.frames[0])
    sent = (fr.IP_OPTIONS if case.version == 4 else fr.IPV6_EXTENSIONS)[case.ip_options]
    if len(fr.ip_options_of(done.frames[0], first)) != len(sent):
        return "IP options / extension headers not copied"
    return None


def sequence(case: Case, done: SendCompletion) -> str | None:
    for k, (f, lay) in enumerate(_segments(done)):
        want = (case.tcp.seq + k * case.mss) & 0xFFFFFFFF
        got = fr.tcp_of(f, lay).seq
        if got != want:
            return f"segment {k}: seq {got}, expected {want}"
    return None


def checksums(case: Case, done: SendCompletion) -> str | None:
    for k, (f, lay) in enumerate(_segments(done)):
        if lay.ip_version == 4 and not fr.ipv4_header_ok(f, lay):
            return f"segment {k}: bad IPv4 header checksum"
        if not fr.l4_checksum_ok(f, lay):
            return f"segment {k}: TCP checksum does not verify with its own TCP length"
    return None


def ip_id(case: Case, done: SendCompletion) -> str | None:
    if case.version != 4:
        return None
    wrap = LSOV2_IP_ID_WRAP if case.kind == "lsov2_4" else 0xFFFF
    for k, (f, lay) in enumerate(_segments(done)):
        want = (case.ip_id + k) & wrap
        if fr.ip_id(f, lay) != want:
            return f"segment {k}: IP ID 0x{fr.ip_id(f, lay):04X}, expected 0x{want:04X}"
    return None


LSOV2_IP_ID_WRAP = 0x7FFF
"""LSOv2: "Use IP identification (IP ID) values in the range from 0x0000 to 0x7FFF ... if the
template IP header starts with an Identification field value of 0x7FFE, the first TCP segment
packet must have an IP ID value of 0x7FFE, followed by 0x7FFF, 0x0000, 0x0001, and so on"
(``offloading-the-segmentation-of-large-tcp-packets``)."""


def ip_id_wrap(ctx: Context) -> Verdict:
    """The page's own example: a template ID of 0x7FFE, and 0x7FFD with 5 segments."""
    rig = lso_rig(ctx)
    bad = []
    for first, count in ((0x7FFE, 4), (0x7FFD, 5)):
        frame = fr.build(4, fr.Tcp(seq=77), fr.payload_bytes(1000 * count), ip_id=first,
                         l4_checksum="pseudo-nolen", zero_length=True)  # fmt: skip
        word = NdisLsoV2Transmit(MSS=1000, TcpHeaderOffset=fr.ETH_LEN + 20).to_int()
        done = rig.send(NetBufferList(frame, TcpLargeSendNetBufferListInfo=word))
        want = [(first + k) & LSOV2_IP_ID_WRAP for k in range(count)]
        try:
            seen = [fr.ip_id(f, fr.layout(f)) for f in done.frames]
            sums = all(fr.ipv4_header_ok(f, fr.layout(f)) for f in done.frames)
        except PacketError as err:
            seen, sums = [], False
            bad.append(f"template 0x{first:04X}: {err}")
        if seen != want or not sums:
            bad.append(
                f"template 0x{first:04X}: {done.status.c_name}, IDs "
                f"{[hex(i) for i in seen]}" + ("" if sums else ", bad header checksum")
            )
    return verdict(
        not bad,
        "LSOv2 IPv4 sends of 4 and 5 MSS-sized segments with template IP IDs 0x7FFE, 0x7FFD",
        "IDs 0x7FFE, 0x7FFF, 0x0, 0x1 and 0x7FFD, 0x7FFE, 0x7FFF, 0x0, 0x1 (never >= 0x8000), "
        "each header checksum valid",
        "; ".join(bad) or "as documented",
    )


def lengths(case: Case, done: SendCompletion) -> str | None:
    for k, (f, lay) in enumerate(_segments(done)):
        want = lay.ip_end - lay.l3_offset - (0 if lay.ip_version == 4 else 40)
        if fr.ip_total_length(f, lay) != want or len(f) < lay.ip_end:
            return f"segment {k}: IP length {fr.ip_total_length(f, lay)}, expected {want}"
    return None


def completion(case: Case, done: SendCompletion) -> str | None:
    word = done.TcpLargeSendNetBufferListInfo
    if case.kind == "lsov1":
        got = NdisLsoV1TransmitComplete.from_int(word)
        if got.TcpPayload != len(case.payload) or got.Type != 0:
            return (
                f"LsoV1TransmitComplete.TcpPayload {got.TcpPayload}, expected {len(case.payload)}"
            )
        return None
    v2 = NdisLsoV2TransmitComplete.from_int(word)
    if v2.Type != 1 or v2.Reserved != 0:
        return f"LsoV2TransmitComplete Type {v2.Type} Reserved {v2.Reserved}, expected Type 1, 0"
    return None


def oversize(ctx: Context) -> Verdict:
    rig = lso_rig(ctx)
    offload = rig.stack.config
    limit = offload.LsoV2.IPv4.MaxOffLoadSize if offload else 64000
    frame = fr.build(4, fr.Tcp(), fr.payload_bytes(min(limit + 1000, 65400)),
                     l4_checksum="pseudo-nolen", zero_length=True)  # fmt: skip
    word = NdisLsoV2Transmit(MSS=1448, TcpHeaderOffset=34).to_int()
    try:
        done = rig.send(NetBufferList(frame, TcpLargeSendNetBufferListInfo=word))
        seen = f"{done.status.c_name}, {len(done.frames)} frames"
        ok = True
    except Exception as err:  # noqa: BLE001 -- a crash is exactly what this check looks for
        seen, ok = f"raised {type(err).__name__}: {err}", False
    small = fr.build(
        4, fr.Tcp(), fr.payload_bytes(3000), l4_checksum="pseudo-nolen", zero_length=True
    )
    done = rig.send(NetBufferList(small, TcpLargeSendNetBufferListInfo=word))
    count = len(done.frames)
    min_count = offload.LsoV2.IPv4.MinSegmentCount if offload else 2
    ok &= done.status == NdisStatus.SUCCESS and count >= min_count
    return verdict(
        ok,
        f"LSOv2 IPv4 NBL beyond MaxOffLoadSize ({limit}); then one of 3000 bytes, MSS 1448",
        f"the oversize send may fail but never crashes; the small one gives >= MinSegmentCount "
        f"({min_count}) segments",
        f"{seen}; then {done.status.c_name}, {count} segments",
    )


def order(ctx: Context) -> Verdict:
    rig = lso_rig(ctx)
    nbls = []
    for index in range(4):
        payload = bytes([index + 1]) * (2500 if index % 2 == 0 else 300)
        frame = fr.build(4, fr.Tcp(seq=index * 100000), payload, l4_checksum="pseudo-nolen",
                         zero_length=index % 2 == 0)  # fmt: skip
        word = NdisLsoV2Transmit(MSS=1000, TcpHeaderOffset=34).to_int() if index % 2 == 0 else 0
        nbls.append(NetBufferList(frame, TcpLargeSendNetBufferListInfo=word))
    marks = [[f[-1] for f in done.frames] for done in rig.stack.send(nbls)]
    ok = marks == [[1, 1, 1], [2], [3, 3, 3], [4]]
    return verdict(
        ok,
        "one MiniportSendNetBufferLists call with 4 NBLs: LSO (2500 B), plain, LSO, plain; "
        "each payload marked with its index",
        "each completion carries its own NBL's frames, in submission order: "
        "[[1,1,1],[2],[3,3,3],[4]]",
        str(marks),
    )


def dropped_when_disabled(ctx: Context) -> Verdict:
    rig = lso_rig(ctx)
    values = {"LsoV1": 1, "LsoV2IPv4": 1, "LsoV2IPv6": 1}
    handle = rig.set(Oid.TCP_OFFLOAD_PARAMETERS, oids.encode_parameters(oids.parameters(values)),
                     oids.describe_parameters(values))  # fmt: skip
    sent = []
    for kind in (k for k in KINDS if k in rig.hardware()):
        case = make_case(ctx, kind, "none", "none", 1000, 3)
        done = rig.send(case.nbl)
        if done.frames or done.status == NdisStatus.SUCCESS:
            sent.append(f"{kind}: {done.status.c_name}, {len(done.frames)} frames")
    return with_traffic(rig, verdict(
        handle.status == NdisStatus.SUCCESS and not sent,
        oids.describe_parameters(values) + ", then one LSO NBL of each kind",
        "every NBL with nonzero LSO OOB data is dropped (completed with a failure, nothing sent)",
        "; ".join(sent) or "all dropped",
    ))  # fmt: skip


def checks() -> list[Check]:
    def m(prop: Property, expected: str) -> CheckFn:
        return lambda ctx: run_matrix(ctx, prop, "", expected)

    return [
        Check("lso-payload-per-mss", Family.LSO, PAGE, "each segment carries MSS bytes except "
              "the last", m(payload_per_mss, "payload == MSS except the last (<= MSS)")),
        Check("lso-payload-intact", Family.LSO, INFO, "the one NET_BUFFER's payload goes out "
              "exactly once, in order", m(payload_intact, "concatenated segment payloads == "
              "the NBL's payload"), reading="an LSO NBL has exactly one NET_BUFFER: the segments "
              "are its bytes, nothing else"),
        Check("lso-segment-count-and-oversize", Family.LSO, PAGE,
              ">= MinSegmentCount segments; beyond MaxOffLoadSize may fail, never crash", oversize,
              needs=frozenset({"lsov2_4"})),
        Check("lso-flags-first-last", Family.LSO, PAGE, "FIN and PSH only on the last segment, "
              "CWR only on the first; other flags on every segment",
              m(flags, "FIN/PSH only last, CWR only first, the rest copied")),
        Check("lso-options-copied", Family.LSO, PAGE, "IP and TCP options copied unchanged into "
              "every segment (the timestamp is not incremented)",
              m(options_copied, "options, window, ACK and urgent pointer identical in "
                "every segment"),
              reading="the urgent pointer is copied as sent (the page says nothing about URG)"),
        Check("lso-sequence-contiguous", Family.LSO, PAGE, "segment k has seq = base + k*MSS",
              m(sequence, "contiguous sequence numbers")),
        Check("lso-checksums-per-segment", Family.LSO, PAGE, "valid IPv4 header checksum and TCP "
              "checksum computed with each segment's own TCP length",
              m(checksums, "every segment's checksums verify")),
        Check("lso-ip-id-increments", Family.LSO, PAGE, "IPv4 ID starts at the template's and "
              "grows by one per segment", m(ip_id, "IP ID = template + k (LSOv2: modulo "
              "0x8000)"), reading="LSOv1 templates stay below 0x7FFF - count (the page states "
              "the 0x7FFF wrap for LSOv2 only); half the LSOv2 IPv4 templates cross it"),
        Check("lso-ip-id-wraps-at-0x7fff", Family.LSO, PAGE, "LSOv2 IP IDs stay in "
              "0x0000..0x7FFF: 0x7FFE, 0x7FFF, 0x0000, 0x0001", ip_id_wrap,
              needs=frozenset({"lsov2_4"})),
        Check("lso-ip-length-rewritten", Family.LSO, PAGE, "LSOv2 templates carry total length 0; "
              "every segment's IP length is its own", m(lengths, "IPv4 Total Length / IPv6 "
              "Payload Length of each segment = its size")),
        Check("lso-completion-info", Family.LSO, INFO, "LSOv1 completion TcpPayload = bytes "
              "sent; LSOv2 completion Type=V2, Reserved=0", m(completion,
              "LsoV1TransmitComplete.TcpPayload / LsoV2TransmitComplete as documented")),
        Check("lso-submission-order", Family.LSO, page("sending-net-buffer-list-structures"),
              "NBLs are transmitted in submission order", order, needs=frozenset({"lsov2_4"})),
        Check("lso-dropped-after-disable", Family.LSO, PAGE, "after LSO is turned off and the OID "
              "completed, NBLs with nonzero LSO OOB data are dropped", dropped_when_disabled),
    ]  # fmt: skip

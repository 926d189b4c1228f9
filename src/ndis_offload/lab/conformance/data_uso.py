"""USO data path (``udp-segmentation-offload-uso-``)."""

from __future__ import annotations

import struct
from dataclasses import replace

from ndis_offload.constants.oid import Oid
from ndis_offload.constants.statistics import NdisStatisticsFlags
from ndis_offload.constants.status import NdisStatus
from ndis_offload.errors import PacketError
from ndis_offload.lab.conformance import frames as fr
from ndis_offload.lab.conformance.check import Check, CheckFn, Context, page, verdict
from ndis_offload.lab.conformance.oids import answer, grown
from ndis_offload.lab.conformance.result import Family, Verdict
from ndis_offload.lab.conformance.rig import Rig
from ndis_offload.stack.datapath import NetBufferList, SendCompletion
from ndis_offload.stack.profiles import ALL_ON
from ndis_offload.structs.nbl_info import NdisUsoTransmit
from ndis_offload.structs.statistics import NdisStatisticsInfo

PAGE = page("udp-segmentation-offload-uso-")


def _rig(ctx: Context) -> Rig:
    rig = ctx.rig("full", keywords=ALL_ON)
    return rig


def _send(rig: Rig, version: int, payload: bytes, mss: int, *, ip_options: bytes = b"",
          ip_id: int = 0x100, l4_checksum: str = "pseudo-nolen",
          offset: int | None = None) -> tuple[bytes, SendCompletion]:  # fmt: skip
    frame = fr.build(version, fr.Udp(), payload, ip_options=ip_options, ip_id=ip_id,
                     l4_checksum=l4_checksum, zero_length=True)  # fmt: skip
    if offset is None:
        offset = fr.ETH_LEN + (20 if version == 4 else 40) + len(ip_options)
    word = NdisUsoTransmit(MSS=mss, UdpHeaderOffset=offset, IPVersion=int(version == 6))
    return frame, rig.send(NetBufferList(frame, UdpSegmentationOffloadInfo=word.to_int()))


def _sub_mss(rig: Rig, version: int) -> bool:
    offload = rig.stack.config
    if offload is None:
        return False
    part = offload.UdpSegmentation.IPv4 if version == 4 else offload.UdpSegmentation.IPv6
    return bool(part.SubMssFinalSegmentSupported)


def segments(version: int) -> CheckFn:
    """Payload per MSS, per-segment UDP and IP length, every checksum verifies."""

    def run(ctx: Context) -> Verdict:
        rig = _rig(ctx)
        bad, sent = [], []
        for _ in range(6):
            mss = ctx.rng.randrange(200, 1473)
            count = ctx.rng.randrange(2, 8)
            size = mss * count - (ctx.rng.randrange(1, mss) if _sub_mss(rig, version) else 0)
            sent.append(f"{size} B / MSS {mss}")
            payload = fr.payload_bytes(size, ctx.rng)
            _, done = _send(rig, version, payload, mss)
            if done.status != NdisStatus.SUCCESS:
                bad.append(f"{size}/{mss}: {done.status.c_name}")
                continue
            try:
                sizes = []
                data = b""
                for f in done.frames:
                    lay = fr.layout(f)
                    udp_len = struct.unpack_from("!H", f, lay.l4_offset + 4)[0]
                    sizes.append(lay.payload_len)
                    data += f[lay.payload_offset : lay.ip_end]
                    if udp_len != 8 + lay.payload_len:
                        bad.append(f"{size}/{mss}: UDP length {udp_len} != {8 + lay.payload_len}")
                    if not fr.l4_checksum_ok(f, lay) or (
                        version == 4 and not fr.ipv4_header_ok(f, lay)
                    ):
                        bad.append(f"{size}/{mss}: a segment's checksum does not verify")
                want = [mss] * (size // mss) + ([size % mss] if size % mss else [])
                if sizes != want or data != payload:
                    bad.append(f"{size}/{mss}: payload sizes {sizes}, expected {want}")
            except PacketError as err:
                bad.append(f"{size}/{mss}: malformed segment: {err}")
        return verdict(
            not bad,
            f"6 USO IPv{version} sends ({', '.join(sent)})",
            "payload == MSS except the last; each datagram its own UDP and IP length and "
            "valid checksums; the payload intact",
            "; ".join(bad[:4]) or "all as documented",
        )

    return run


def ip_id_wraps(ctx: Context) -> Verdict:
    rig = _rig(ctx)
    _, done = _send(rig, 4, fr.payload_bytes(5 * 500), 500, ip_id=0xFFFE)
    ids = [fr.ip_id(f, fr.layout(f)) for f in done.frames]
    want = [0xFFFE, 0xFFFF, 0x0000, 0x0001, 0x0002]
    return verdict(
        ids == want,
        "USO IPv4 send, 5 x 500 B, template IP ID 0xFFFE",
        "IP ID +1 per segment over the full 16 bits: FFFE FFFF 0000 0001 0002",
        " ".join(f"{i:04X}" for i in ids) or done.status.c_name,
    )


def zero_checksum(ctx: Context) -> Verdict:
    rig = _rig(ctx)
    _, done = _send(rig, 4, fr.payload_bytes(3000), 1000, l4_checksum="zero")
    fields = [fr.l4_checksum_field(f, fr.layout(f)) for f in done.frames]
    ok = done.status == NdisStatus.SUCCESS and len(fields) == 3 and not any(fields)
    return verdict(
        ok,
        "USO IPv4 send with UDP checksum field 0 (3 x 1000 B)",
        "no UDP checksum computed: every segment's UDP checksum is 0",
        f"{done.status.c_name}, UDP checksums {[hex(x) for x in fields]}",
    )


def failure_completes(ctx: Context) -> Verdict:
    rig = _rig(ctx)
    _, done = _send(rig, 4, fr.payload_bytes(3000), 1000, offset=fr.ETH_LEN + 4)
    ok = done.status != NdisStatus.SUCCESS and not done.frames
    return verdict(
        ok,
        "USO IPv4 send whose UdpHeaderOffset points into the IP header",
        "completed with a failure status, no segment sent",
        f"{done.status.c_name}, {len(done.frames)} frames sent",
    )


def options_replicated(ctx: Context) -> Verdict:
    rig = _rig(ctx)
    opts = fr.IP_OPTIONS["router-alert"]
    _, done = _send(rig, 4, fr.payload_bytes(2500), 1000, ip_options=opts)
    got = [fr.ip_options_of(f, fr.layout(f)) for f in done.frames]
    ok = done.status == NdisStatus.SUCCESS and len(got) == 3 and all(g == opts for g in got)
    return verdict(
        ok,
        "USO IPv4 send with a Router Alert option, UdpHeaderOffset 38",
        "the IPv4 options in every segment",
        f"{done.status.c_name}, options {[g.hex() for g in got]}",
    )


_TX_COUNTERS = ("ifHCOutUcastPkts", "ifHCOutUcastOctets", "ifHCOutOctets")
_TX_FLAGS = (
    NdisStatisticsFlags.VALID_DIRECTED_FRAMES_XMIT | NdisStatisticsFlags.VALID_DIRECTED_BYTES_XMIT
)


def transmit_statistics(ctx: Context) -> Verdict:
    """Rule 45: "Increment transmit statistics based on the segmented packets ... include the
    count of Ethernet, IP, and UDP header bytes for each packet segment, and the packet count
    is the number of MSS-sized segments, not 1"."""
    rig = _rig(ctx)
    versions = [4, 6] if "uso6" in rig.hardware() else [4]
    before = answer(rig.query(Oid.GEN_STATISTICS), NdisStatisticsInfo)
    sent, frames = [], []
    for version in versions:
        mss = ctx.rng.randrange(200, 1473)
        count = ctx.rng.randrange(2, 21)
        _, done = _send(rig, version, fr.payload_bytes(mss * count, ctx.rng), mss)
        sent.append(f"USO IPv{version} {mss * count} B / MSS {mss} -> {done.status.c_name}")
        frames += done.frames
    after = answer(rig.query(Oid.GEN_STATISTICS), NdisStatisticsInfo)
    want = {
        "ifHCOutUcastPkts": len(frames),
        "ifHCOutUcastOctets": sum(map(len, frames)),
        "ifHCOutOctets": sum(map(len, frames)),
    }
    expected = (
        "OID_GEN_STATISTICS reports directed transmit frames and bytes and they grow by the "
        "segments on the wire, each with its Ethernet, IP and UDP header: "
        + ", ".join(f"{k} +{v}" for k, v in want.items())
    )
    text = "; ".join(sent) + "; OID_GEN_STATISTICS before and after"
    grew = grown(before, after, _TX_COUNTERS)
    if isinstance(grew, str) or isinstance(after, str):  # after is read when grew is not
        return verdict(False, text, expected, str(grew))
    flags = after.SupportedStatistics & _TX_FLAGS == _TX_FLAGS
    return verdict(
        grew == want and flags and len(frames) > len(versions),
        text,
        expected,
        ", ".join(f"{k} {v:+d}" for k, v in grew.items())
        + f"; SupportedStatistics 0x{after.SupportedStatistics:08X}",
    )


def checks() -> list[Check]:
    out = [
        Check("uso-segments-ipv4", Family.USO, PAGE, "payload == MSS except last; per-segment "
              "UDP length and IP length", segments(4), reading="a final segment shorter than "
              "MSS is sent only when SubMssFinalSegmentSupported is reported"),
        Check("uso-segments-ipv6", Family.USO, PAGE, "payload == MSS except last; per-segment "
              "UDP length and IP length", segments(6)),
        Check("uso-ip-id-wraps", Family.USO, PAGE, "IPv4 ID +1 per segment over 0x0000..0xFFFF "
              "with wrap", ip_id_wraps),
        Check("uso-zero-checksum-not-computed", Family.USO, PAGE, "a UDP checksum field of 0 "
              "from the stack means no UDP checksum", zero_checksum,
              reading="IPv4 only (IPv6 forbids a zero UDP checksum)"),
        Check("uso-failure-completes-nbl", Family.USO, PAGE, "a failed segmentation completes "
              "the NBL with a failure, after all segments", failure_completes),
        Check("uso-ipv4-options-replicated", Family.USO, PAGE, "IPv4 options replicated into "
              "each segment; UdpHeaderOffset locates the UDP header", options_replicated),
        Check("uso-transmit-statistics", Family.USO, PAGE, "transmit statistics count every "
              "segment with its own headers, not one packet per send", transmit_statistics,
              reading="the transmit statistics are those of OID_GEN_STATISTICS "
              "(NDIS_STATISTICS_INFO; 'NDIS 6.0 and later miniport drivers: Mandatory', "
              "network/oid-gen-statistics); octets are frame bytes without the FCS"),
    ]  # fmt: skip
    return [replace(c, needs=frozenset({"uso6" if c.name.endswith("ipv6") else "uso4"}))
            for c in out]  # fmt: skip

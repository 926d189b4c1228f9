"""Checksum data path (``offloading-checksum-tasks``; the
``NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO`` DDI page), checked on the frames the miniport
sends and the verdicts it indicates."""

from __future__ import annotations

import struct

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
    verdict,
    with_traffic,
)
from ndis_offload.lab.conformance.result import Family, Verdict
from ndis_offload.lab.conformance.rig import Rig
from ndis_offload.stack.datapath import NetBufferList, ReceiveIndication
from ndis_offload.stack.profiles import ALL_ON
from ndis_offload.structs.nbl_info import (
    NdisLsoV2Transmit,
)
from ndis_offload.structs.nbl_info import (
    NdisTcpIpChecksumNetBufferListInfoTransmit as TxInfo,
)

PAGE = page("offloading-checksum-tasks")
INFO = ddi("nblchecksum/ns-nblchecksum-ndis_tcp_ip_checksum_net_buffer_list_info")


def _rig(ctx: Context) -> Rig:
    rig = ctx.rig("full", keywords=ALL_ON)
    return rig


def _info(version: int, *, tcp: bool = False, udp: bool = False, ip: bool = False) -> int:
    return TxInfo(
        IsIPv4=int(version == 4), IsIPv6=int(version == 6), TcpChecksum=int(tcp),
        UdpChecksum=int(udp), IpHeaderChecksum=int(ip),
        TcpHeaderOffset=fr.ETH_LEN + (20 if version == 4 else 40) if (tcp or udp) else 0,
    ).to_int()  # fmt: skip


def no_ip_flag(ctx: Context) -> Verdict:
    rig = _rig(ctx)
    frame = fr.build(4, fr.Tcp(), fr.payload_bytes(50), l4_checksum="pseudo", ip_checksum="zero")
    word = TxInfo(TcpChecksum=1, IpHeaderChecksum=1, TcpHeaderOffset=34).to_int()
    done = rig.send(NetBufferList(frame, TcpIpChecksumNetBufferListInfo=word))
    ok = done.status == NdisStatus.SUCCESS and done.frames == [frame]
    return verdict(
        ok,
        "TCP/IPv4 NBL: TcpChecksum=1, IpHeaderChecksum=1, neither IsIPv4 nor IsIPv6",
        "sent unchanged (no checksum work)",
        f"{done.status.c_name}, {'unchanged' if done.frames == [frame] else 'modified or dropped'}",
    )


def only_flagged(version: int) -> CheckFn:
    def run(ctx: Context) -> Verdict:
        rig = _rig(ctx)
        bad = []
        frame = fr.build(version, fr.Udp(), fr.payload_bytes(61), l4_checksum="pseudo",
                         ip_checksum="zero")  # fmt: skip
        lay = fr.layout(frame)
        seed = fr.l4_checksum_field(frame, lay)
        if version == 4:
            done = rig.send(NetBufferList(frame, TcpIpChecksumNetBufferListInfo=_info(4, ip=True)))
            out = done.frames[0] if done.frames else b""
            if not out or not fr.ipv4_header_ok(out, lay) or fr.l4_checksum_field(out, lay) != seed:
                bad.append("IpHeaderChecksum only: " + ("dropped" if not out else
                           "UDP checksum field touched or IP header wrong"))  # fmt: skip
        done = rig.send(
            NetBufferList(frame, TcpIpChecksumNetBufferListInfo=_info(version, udp=True))
        )
        out = done.frames[0] if done.frames else b""
        if not out or not fr.l4_checksum_ok(out, lay):
            bad.append("UdpChecksum only: UDP checksum wrong or dropped")
        elif version == 4 and out[lay.l3_offset + 10 : lay.l3_offset + 12] != b"\0\0":
            bad.append("UdpChecksum only: the IPv4 header checksum was filled in too")
        return verdict(
            not bad,
            f"UDP/IPv{version} NBLs asking for one checksum each",
            "only the requested checksum is computed; the others stay as the protocol sent them",
            "; ".join(bad) or "as requested",
        )

    return run


def pseudo_seed(version: int, proto: str) -> CheckFn:
    def run(ctx: Context) -> Verdict:
        rig = _rig(ctx)
        bad, sizes = [], []
        for _ in range(12):
            size = ctx.rng.randrange(0, 1400)
            sizes.append(size)
            l4: fr.Tcp | fr.Udp = (
                fr.Tcp(sport=ctx.rng.randrange(1, 65536), seq=ctx.rng.getrandbits(32),
                       options=fr.TCP_OPTIONS["timestamps"])
                if proto == "tcp" else fr.Udp(sport=ctx.rng.randrange(1, 65536))
            )  # fmt: skip
            frame = fr.build(version, l4, fr.payload_bytes(size, ctx.rng), l4_checksum="pseudo")
            word = _info(version, tcp=proto == "tcp", udp=proto == "udp")
            done = rig.send(NetBufferList(frame, TcpIpChecksumNetBufferListInfo=word))
            try:
                ok = done.status == NdisStatus.SUCCESS and fr.l4_checksum_ok(
                    done.frames[0], fr.layout(done.frames[0])
                )
            except (IndexError, PacketError):
                ok = False
            if not ok:
                bad.append(f"payload {size}: {done.status.c_name}")
        return verdict(
            not bad,
            f"12 {proto.upper()}/IPv{version} NBLs (payload sizes {sizes}), checksum "
            "field seeded with the pseudo-header sum (addresses, protocol, L4 length)",
            "each checksum = ~(seed + header + payload): verifies over the real pseudo-header",
            "; ".join(bad) or "all verify",
        )

    return run


def ip_field_ignored(ctx: Context) -> Verdict:
    rig = _rig(ctx)
    frame = bytearray(fr.build(4, fr.Tcp(), fr.payload_bytes(33), l4_checksum="pseudo"))
    struct.pack_into("!H", frame, fr.ETH_LEN + 10, 0xBEEF)
    word = _info(4, tcp=True, ip=True)
    done = rig.send(NetBufferList(bytes(frame), TcpIpChecksumNetBufferListInfo=word))
    out = done.frames[0] if done.frames else b""
    ok = bool(out) and fr.ipv4_header_ok(out, fr.layout(out))
    return verdict(
        ok,
        "TCP/IPv4 NBL with IpHeaderChecksum=1 and 0xBEEF in the header checksum",
        "the field's content is ignored: a valid IPv4 header checksum goes out",
        "valid" if ok else f"{done.status.c_name}, header checksum invalid or dropped",
    )


def tunnel_outer_only(ctx: Context) -> Verdict:
    rig = _rig(ctx)
    inner = fr.build(4, fr.Udp(), fr.payload_bytes(40))[fr.ETH_LEN :]
    inner_bad = bytearray(inner)
    struct.pack_into("!H", inner_bad, 10, 0x1111)  # a wrong inner checksum must stay wrong
    outer = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(inner_bad), 7, 0x4000, 64, 4,
                                  0, fr.SRC4, fr.DST4))  # fmt: skip
    frame = fr.ETH + b"\x08\x00" + bytes(outer) + bytes(inner_bad)
    done = rig.send(NetBufferList(frame, TcpIpChecksumNetBufferListInfo=_info(4, ip=True)))
    out = done.frames[0] if done.frames else b""
    outer_ok = bool(out) and fr.ipv4_header_ok(out, fr.layout(out))
    inner_kept = bool(out) and out[34:] == bytes(inner_bad)
    return verdict(
        outer_ok and inner_kept,
        "IPv4-in-IPv4 NBL with IpHeaderChecksum=1",
        "only the outer (tunnel) IPv4 header checksum is computed; the inner packet untouched",
        f"outer {'valid' if outer_ok else 'invalid'}, "
        f"inner {'untouched' if inner_kept else 'changed'}",
    )


def rx_verdicts(version: int) -> CheckFn:
    def run(ctx: Context) -> Verdict:
        rig = _rig(ctx)
        rig.set(Oid.OFFLOAD_ENCAPSULATION, oids.encapsulation(), "both ON")
        bad = []
        for proto in ("tcp", "udp"):
            l4: fr.Tcp | fr.Udp = fr.Tcp() if proto == "tcp" else fr.Udp()
            good = fr.build(version, l4, fr.payload_bytes(80))
            corrupt = bytearray(good)
            corrupt[-1] ^= 0xFF
            for label, frame, want in (
                ("good", good, "Succeeded"),
                ("corrupt", bytes(corrupt), "Failed"),
            ):
                got = rig.receive([frame])
                info = got[0].checksum if got else None
                flag = f"{proto.capitalize()}Checksum{want}"
                if info is None or not getattr(info, flag):
                    bad.append(f"{proto} {label}: {flag} not set")
            if version == 4:
                broken = bytearray(good)
                broken[fr.ETH_LEN + 8] ^= 1  # TTL: IP header checksum now wrong
                got = rig.receive([bytes(broken)])
                if not got or not got[0].checksum.IpChecksumFailed:
                    bad.append(f"{proto} with a bad IPv4 header: IpChecksumFailed not set")
        return with_traffic(rig, verdict(
            not bad,
            f"after an encapsulation ON: receive good and corrupted TCP/UDP over IPv{version}",
            "the applicable ...ChecksumSucceeded / ...ChecksumFailed flags",
            "; ".join(bad) or "all set",
        ))  # fmt: skip

    return run


def rx_gated(ctx: Context) -> Verdict:
    rig = _rig(ctx)
    frame = fr.build(4, fr.Tcp(), fr.payload_bytes(80))
    first = rig.receive([frame])
    values = {"TCPIPv4Checksum": 4}
    rig.set(Oid.TCP_OFFLOAD_PARAMETERS, oids.encode_parameters(oids.parameters(values)),
            oids.describe_parameters(values))  # fmt: skip
    second = rig.receive([frame])
    rig.set(Oid.OFFLOAD_ENCAPSULATION, oids.encapsulation(), "both ON")
    third = rig.receive([frame])

    def word(got: list[ReceiveIndication]) -> int:
        return got[0].TcpIpChecksumNetBufferListInfo if got else -1

    ok = word(first) == 0 and word(second) == 0 and word(third) > 0
    return with_traffic(rig, verdict(
        ok, "receive TCP/IPv4 at initialization, after OID_TCP_OFFLOAD_PARAMETERS "
        "TCPIPv4Checksum=TX_RX_ENABLED, and after OID_OFFLOAD_ENCAPSULATION ON",
        "no verdicts until the first encapsulation set (PARAMETERS only configures Rx "
        "checksum); verdicts after it", f"checksum info words: {word(first):#x}, "
        f"{word(second):#x}, {word(third):#x}",
    ))  # fmt: skip


def lso_without_checksum_offload(ctx: Context) -> Verdict:
    rig = _rig(ctx)
    values = {"TCPIPv4Checksum": 1, "IPv4Checksum": 1}
    rig.set(Oid.TCP_OFFLOAD_PARAMETERS, oids.encode_parameters(oids.parameters(values)),
            oids.describe_parameters(values))  # fmt: skip
    frame = fr.build(
        4, fr.Tcp(), fr.payload_bytes(4000), l4_checksum="pseudo-nolen", zero_length=True
    )
    word = NdisLsoV2Transmit(MSS=1000, TcpHeaderOffset=34).to_int()
    done = rig.send(NetBufferList(frame, TcpLargeSendNetBufferListInfo=word))
    bad = [i for i, f in enumerate(done.frames)
           if not (fr.l4_checksum_ok(f, fr.layout(f))
                   and fr.ipv4_header_ok(f, fr.layout(f)))]  # fmt: skip
    ok = done.status == NdisStatus.SUCCESS and len(done.frames) == 4 and not bad
    return with_traffic(rig, verdict(
        ok, oids.describe_parameters(values) + ", then an LSOv2 IPv4 NBL (4000 bytes, MSS 1000)",
        "4 segments, each with valid IPv4 and TCP checksums",
        f"{done.status.c_name}, {len(done.frames)} segments, bad checksums in {bad or 'none'}",
    ))  # fmt: skip


def checks() -> list[Check]:
    out = [
        Check("checksum-tx-no-ip-version-no-work", Family.CHECKSUM, INFO,
              "neither IsIPv4 nor IsIPv6: no checksum work", no_ip_flag),
        Check("checksum-tx-ipv4-header-field-ignored", Family.CHECKSUM, PAGE,
              "the IPv4 header checksum field's content is ignored", ip_field_ignored,
              needs=frozenset({"ip4_tx", "tcp4_tx"}),
              reading="the page says the field arrives as zero; garbage is sent to prove it "
              "is not summed in"),
        Check("checksum-tx-tunnel-outer-ip-only", Family.CHECKSUM, PAGE,
              "for tunnel packets only the outer IP header checksum is offloaded",
              tunnel_outer_only, needs=frozenset({"ip4_tx"})),
        Check("checksum-rx-gated-until-encapsulation", Family.CHECKSUM,
              page("oid-tcp-offload-parameters"),
              "Rx checksum works only after an OID_OFFLOAD_ENCAPSULATION set", rx_gated,
              needs=frozenset({"tcp4_rx"})),
        Check("checksum-lso-segments-without-checksum-offload", Family.CHECKSUM, PAGE,
              "disabling checksum offload does not stop checksums on LSO segments",
              lso_without_checksum_offload, needs=frozenset({"lsov2_4"})),
    ]  # fmt: skip
    for v in (4, 6):
        out += [
            Check(
                f"checksum-tx-only-flagged-ipv{v}",
                Family.CHECKSUM,
                INFO,
                "compute only the checksums the NBL asks for",
                only_flagged(v),
                needs=frozenset({f"udp{v}_tx"} | ({"ip4_tx"} if v == 4 else set())),
            ),
            Check(
                f"checksum-rx-verdicts-ipv{v}",
                Family.CHECKSUM,
                INFO,
                "Rx: set the applicable Succeeded / Failed flags",
                rx_verdicts(v),
                needs=frozenset({f"tcp{v}_rx", f"udp{v}_rx"} | ({"ip4_rx"} if v == 4 else set())),
            ),
        ]
        for proto in ("tcp", "udp"):
            out.append(
                Check(
                    f"checksum-tx-pseudo-header-seed-{proto}{v}",
                    Family.CHECKSUM,
                    PAGE,
                    "the field holds the pseudo-header sum; result = ~(seed + header + payload)",
                    pseudo_seed(v, proto),
                    needs=frozenset({f"{proto}{v}_tx"}),
                )
            )
    return out

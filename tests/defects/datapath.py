"""Data-path defects: the reference miniport whose send or receive path makes exactly one
mistake. Each post-processes what the reference data path produced."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from defects.control import Defect
from ndis_offload.constants.status import NdisStatus
from ndis_offload.engine import insert_checksums
from ndis_offload.engine.rss import Toeplitz
from ndis_offload.packet.checksum import internet_checksum, pseudo_header_sum_ipv4
from ndis_offload.packet.headers import parse_frame
from ndis_offload.stack.datapath import (
    NetBufferList,
    ReceiveIndication,
    SendCompletion,
    SoftwareDatapath,
)
from ndis_offload.structs.nbl_info import (
    NdisLsoV1TransmitComplete,
    NdisTcpIpChecksumNetBufferListInfoReceive,
)

TCP_FIN, TCP_PSH = 0x01, 0x08


def _refill(frame: bytes) -> bytes:
    """IPv4 header and TCP/UDP checksums recomputed after an edit."""
    return insert_checksums(frame)


class SendDefect(Defect):
    """A defect in the send path: ``mangle`` rewrites each completion."""

    def send_net_buffer_lists(self, nbls: Sequence[NetBufferList]) -> list[SendCompletion]:
        return [
            self.mangle(nbl, done)
            for nbl, done in zip(nbls, super().send_net_buffer_lists(nbls), strict=True)
        ]

    def mangle(self, nbl: NetBufferList, done: SendCompletion) -> SendCompletion:
        return done


class ReceiveDefect(Defect):
    """A defect in the receive path: ``mangle`` rewrites each DPC's indications."""

    def receive_dpc(self, frames: Sequence[bytes], now: float) -> list[ReceiveIndication]:
        return self.mangle(super().receive_dpc(frames, now))

    def mangle(self, up: list[ReceiveIndication]) -> list[ReceiveIndication]:
        return up


def _lso(done: SendCompletion, nbl: NetBufferList) -> bool:
    return bool(nbl.TcpLargeSendNetBufferListInfo) and done.status == NdisStatus.SUCCESS


class FinOnEverySegment(SendDefect):
    caught_by = "lso-flags-first-last"

    def mangle(self, nbl: NetBufferList, done: SendCompletion) -> SendCompletion:
        if not _lso(done, nbl):
            return done
        flags = parse_frame(nbl.frame, zero_length_ok=True)
        fin = nbl.frame[flags.l4_offset + 13] & (TCP_FIN | TCP_PSH)
        out = []
        for frame in done.frames:
            lay = parse_frame(frame)
            edited = bytearray(frame)
            edited[lay.l4_offset + 13] |= fin
            out.append(_refill(bytes(edited)))
        return SendCompletion(done.status, out, done.TcpLargeSendNetBufferListInfo)


class IpIdNotIncremented(SendDefect):
    caught_by = "lso-ip-id-increments"

    def mangle(self, nbl: NetBufferList, done: SendCompletion) -> SendCompletion:
        if not _lso(done, nbl):
            return done
        first = done.frames[0]
        lay = parse_frame(first)
        if lay.ip_version != 4:
            return done
        out = [_refill(f[: lay.l3_offset + 4] + first[lay.l3_offset + 4 : lay.l3_offset + 6]
                       + f[lay.l3_offset + 6 :]) for f in done.frames]  # fmt: skip
        return SendCompletion(done.status, out, done.TcpLargeSendNetBufferListInfo)


class LsoPseudoHeaderTotalLength(SendDefect):
    """Each segment's TCP checksum uses the large packet's TCP length, not its own."""

    caught_by = "lso-checksums-per-segment"

    def mangle(self, nbl: NetBufferList, done: SendCompletion) -> SendCompletion:
        if not _lso(done, nbl):
            return done
        total = sum(parse_frame(f).payload_len for f in done.frames)
        out = []
        for frame in done.frames:
            lay = parse_frame(frame)
            if lay.ip_version != 4:
                out.append(frame)
                continue
            edited = bytearray(frame)
            struct.pack_into("!H", edited, lay.l4_offset + 16, 0)
            seg = edited[lay.l4_offset : lay.ip_end]
            pseudo = pseudo_header_sum_ipv4(lay.pseudo_src, lay.pseudo_dst, 6, lay.l4_len + total)
            struct.pack_into("!H", edited, lay.l4_offset + 16, internet_checksum(seg, pseudo))
            out.append(bytes(edited))
        return SendCompletion(done.status, out, done.TcpLargeSendNetBufferListInfo)


class ChecksumSeedLengthOffByOne(SendDefect):
    """Tx checksum offload that sums the pseudo-header with length + 1."""

    caught_by = "checksum-tx-pseudo-header-seed-tcp4"

    def mangle(self, nbl: NetBufferList, done: SendCompletion) -> SendCompletion:
        if not nbl.TcpIpChecksumNetBufferListInfo or done.status != NdisStatus.SUCCESS:
            return done
        lay = parse_frame(done.frames[0])
        if lay.ip_version != 4 or lay.l4_proto != 6:
            return done
        edited = bytearray(done.frames[0])
        struct.pack_into("!H", edited, lay.l4_offset + 16, 0)
        seg = edited[lay.l4_offset : lay.ip_end]
        pseudo = pseudo_header_sum_ipv4(lay.pseudo_src, lay.pseudo_dst, 6, len(seg) + 1)
        struct.pack_into("!H", edited, lay.l4_offset + 16, internet_checksum(seg, pseudo))
        return SendCompletion(done.status, [bytes(edited)])


class LsoNotDroppedWhenOff(Defect):
    """Keeps segmenting after LSO was turned off."""

    caught_by = "lso-dropped-after-disable"

    def send_net_buffer_lists(self, nbls: Sequence[NetBufferList]) -> list[SendCompletion]:
        saved = self.configured
        self.configured = self.configured | {"lsov1", "lsov2_4", "lsov2_6"}
        try:
            return super().send_net_buffer_lists(nbls)
        finally:
            self.configured = saved


class LsoCompletionCountsFrameBytes(SendDefect):
    caught_by = "lso-completion-info"

    def mangle(self, nbl: NetBufferList, done: SendCompletion) -> SendCompletion:
        word = NdisLsoV1TransmitComplete.from_int(done.TcpLargeSendNetBufferListInfo)
        if not _lso(done, nbl) or word.Type != 0:
            return done
        wrong = NdisLsoV1TransmitComplete(TcpPayload=sum(len(f) for f in done.frames))
        return SendCompletion(done.status, done.frames, wrong.to_int())


class TunnelInnerChecksumToo(SendDefect):
    caught_by = "checksum-tx-tunnel-outer-ip-only"

    def mangle(self, nbl: NetBufferList, done: SendCompletion) -> SendCompletion:
        if not done.frames or done.frames[0][23:24] != b"\x04":
            return done
        edited = bytearray(done.frames[0])
        struct.pack_into("!H", edited, 44, 0)
        struct.pack_into("!H", edited, 44, internet_checksum(edited[34:54]))
        return SendCompletion(done.status, [bytes(edited)])


class UsoIpIdSaturates(SendDefect):
    """USO IP ID stops at 0xFFFF instead of wrapping."""

    caught_by = "uso-ip-id-wraps"

    def mangle(self, nbl: NetBufferList, done: SendCompletion) -> SendCompletion:
        if not nbl.UdpSegmentationOffloadInfo or done.status != NdisStatus.SUCCESS:
            return done
        out = []
        last = -1
        for frame in done.frames:
            lay = parse_frame(frame)
            if lay.ip_version != 4:
                return done
            ident = struct.unpack_from("!H", frame, lay.l3_offset + 4)[0]
            if last == 0xFFFF:
                ident = 0xFFFF
            last = ident
            edited = bytearray(frame)
            struct.pack_into("!H", edited, lay.l3_offset + 4, ident)
            struct.pack_into("!H", edited, lay.l3_offset + 10, 0)
            struct.pack_into("!H", edited, lay.l3_offset + 10,
                             internet_checksum(edited[lay.l3_offset : lay.l4_offset]))  # fmt: skip
            out.append(bytes(edited))
        return SendCompletion(done.status, out)


class UsoChecksumAlways(SendDefect):
    """Computes a UDP checksum although the stack sent 0 (no checksum)."""

    caught_by = "uso-zero-checksum-not-computed"

    def mangle(self, nbl: NetBufferList, done: SendCompletion) -> SendCompletion:
        if not nbl.UdpSegmentationOffloadInfo or done.status != NdisStatus.SUCCESS:
            return done
        return SendCompletion(done.status, [_refill(f) for f in done.frames])


class RxCorruptPassesAsGood(ReceiveDefect):
    """Reports TcpChecksumSucceeded for every TCP frame, valid or not."""

    caught_by = "checksum-rx-verdicts-ipv4"

    def mangle(self, up: list[ReceiveIndication]) -> list[ReceiveIndication]:
        out = []
        for ind in up:
            info = ind.checksum
            if info.TcpChecksumFailed:
                info = NdisTcpIpChecksumNetBufferListInfoReceive(
                    TcpChecksumSucceeded=1, IpChecksumSucceeded=info.IpChecksumSucceeded
                )
            out.append(ReceiveIndication(ind.frame, info.to_int(), ind.TcpRecvSegCoalesceInfo))
        return out


def _merge(a: ReceiveIndication, b: ReceiveIndication) -> ReceiveIndication:
    """``b``'s payload appended to ``a`` (one SCU), headers fixed, counts added."""
    la, lb = parse_frame(a.frame), parse_frame(b.frame)
    frame = bytearray(a.frame[: la.ip_end] + b.frame[lb.payload_offset : lb.ip_end])
    if la.ip_version == 4:
        struct.pack_into("!H", frame, la.l3_offset + 2, len(frame) - la.l3_offset)
    else:
        struct.pack_into("!H", frame, la.l3_offset + 4, len(frame) - la.l3_offset - 40)
    count = max(a.rsc.CoalescedSegCount, 1) + max(b.rsc.CoalescedSegCount, 1)
    from ndis_offload.structs.nbl_info import NdisRscNblInfoInfo

    return ReceiveIndication(_refill(bytes(frame)), a.TcpIpChecksumNetBufferListInfo,
                             NdisRscNblInfoInfo(CoalescedSegCount=count).to_int())  # fmt: skip


def _tcp_flow(ind: ReceiveIndication) -> tuple[int, bytes] | None:
    try:
        lay = parse_frame(ind.frame)
    except Exception:
        return None
    if lay.l4_proto != 6 or lay.payload_len == 0:
        return None
    return lay.ip_version, ind.frame[lay.l4_offset : lay.l4_offset + 4]


class RscAcrossGaps(ReceiveDefect):
    """Coalesces every data segment of a flow in a DPC, in order of arrival, gaps or not."""

    caught_by = "rsc-new-scu-on-gap"

    def mangle(self, up: list[ReceiveIndication]) -> list[ReceiveIndication]:
        out: list[ReceiveIndication] = []
        for ind in up:
            if out and ind.rsc.CoalescedSegCount and _tcp_flow(ind) == _tcp_flow(out[-1]) \
                    and out[-1].rsc.CoalescedSegCount:  # fmt: skip
                out[-1] = _merge(out[-1], ind)
            else:
                out.append(ind)
        return out


class RscDropsPsh(ReceiveDefect):
    caught_by = "rsc-psh-and-coalesced-count"

    def mangle(self, up: list[ReceiveIndication]) -> list[ReceiveIndication]:
        out = []
        for ind in up:
            if ind.rsc.CoalescedSegCount > 1:
                lay = parse_frame(ind.frame)
                edited = bytearray(ind.frame)
                edited[lay.l4_offset + 13] &= ~TCP_PSH & 0xFF
                ind = ReceiveIndication(_refill(bytes(edited)), ind.TcpIpChecksumNetBufferListInfo,
                                        ind.TcpRecvSegCoalesceInfo)  # fmt: skip
            out.append(ind)
        return out


class RscTtlOfFirst(ReceiveDefect):
    """The SCU keeps the first segment's TTL instead of the minimum."""

    caught_by = "rsc-ip-header-update-ipv4"

    def receive_dpc(self, frames: Sequence[bytes], now: float) -> list[ReceiveIndication]:
        self._first_ttl = frames[0][22] if frames and frames[0][12:14] == b"\x08\x00" else None
        return super().receive_dpc(frames, now)

    def mangle(self, up: list[ReceiveIndication]) -> list[ReceiveIndication]:
        out = []
        for ind in up:
            if ind.rsc.CoalescedSegCount > 1 and self._first_ttl is not None:
                edited = bytearray(ind.frame)
                edited[22] = self._first_ttl
                ind = ReceiveIndication(_refill(bytes(edited)), ind.TcpIpChecksumNetBufferListInfo,
                                        ind.TcpRecvSegCoalesceInfo)  # fmt: skip
            out.append(ind)
        return out


class RscWithoutChecksumFlags(ReceiveDefect):
    caught_by = "rsc-checksum-flags"

    def mangle(self, up: list[ReceiveIndication]) -> list[ReceiveIndication]:
        return [ReceiveIndication(i.frame, 0, i.TcpRecvSegCoalesceInfo)
                if i.rsc.CoalescedSegCount else i for i in up]  # fmt: skip


class _RscAlwaysOn:
    """What the data path sees: the miniport's state with RSC forced on."""

    def __init__(self, miniport: Defect) -> None:
        self._miniport = miniport

    @property
    def current_features(self) -> frozenset[str]:
        return self._miniport.current_features | {"rsc4", "rsc6"}

    @property
    def receive_checksum_started(self) -> bool:
        return self._miniport.receive_checksum_started


class RscBeforeEnabled(Defect):
    caught_by = "rsc-not-before-enabled"

    def __init__(self, profile: Any, **kw: Any) -> None:
        super().__init__(profile, **kw)
        self.datapath = SoftwareDatapath(_RscAlwaysOn(self))


class HoldsSegmentsAcrossDpcs(Defect):
    """Indicates coalesced units at the next DPC instead of this one."""

    caught_by = "rsc-coalesces-ipv4"

    def receive_dpc(self, frames: Sequence[bytes], now: float) -> list[ReceiveIndication]:
        return self.datapath.receive(list(frames), now + 1e9 if not frames else now)


class RssDestinationFirst(Defect):
    """Hashes destination before source (the order the verification table lists them)."""

    caught_by = "rss-toeplitz-verification-table"

    def rss_hash(self, key: bytes, frame: bytes) -> int:
        lay = parse_frame(frame)
        data = lay.pseudo_dst + lay.pseudo_src
        if lay.l4_proto == 6:
            data += (
                frame[lay.l4_offset + 2 : lay.l4_offset + 4]
                + frame[lay.l4_offset : lay.l4_offset + 2]
            )
        return Toeplitz(key).hash(data)


class AdvertisesLsoWithoutDoingIt(Defect):
    """Reports LSO in its capabilities but fails every LSO send."""

    caught_by = "lso-payload-per-mss"

    def send_net_buffer_lists(self, nbls: Sequence[NetBufferList]) -> list[SendCompletion]:
        done = super().send_net_buffer_lists(nbls)
        return [SendCompletion(NdisStatus.FAILURE) if nbl.TcpLargeSendNetBufferListInfo else d
                for nbl, d in zip(nbls, done, strict=True)]  # fmt: skip


DATAPATH: tuple[type[Defect], ...] = (
    AdvertisesLsoWithoutDoingIt,
    FinOnEverySegment,
    IpIdNotIncremented,
    LsoPseudoHeaderTotalLength,
    ChecksumSeedLengthOffByOne,
    LsoNotDroppedWhenOff,
    LsoCompletionCountsFrameBytes,
    TunnelInnerChecksumToo,
    UsoIpIdSaturates,
    UsoChecksumAlways,
    RxCorruptPassesAsGood,
    RscAcrossGaps,
    RscDropsPsh,
    RscTtlOfFirst,
    RscWithoutChecksumFlags,
    RscBeforeEnabled,
    HoldsSegmentsAcrossDpcs,
    RssDestinationFirst,
)

"""Defects in what the battery learned to see last: ``OID_TCP_RSC_STATISTICS`` and its
``Aborts`` (``oid-tcp-rsc-statistics``), ``RscTcpTimestampDelta``
(``rules-for-coalescing-tcp-ip-packets``), USO transmit statistics
(``udp-segmentation-offload-uso-``) and the LSOv2 IP ID wrap at 0x7FFF
(``offloading-the-segmentation-of-large-tcp-packets``). Each names the check that must
catch it (``caught_by``) and every check it may fail (``fails``): the whole battery is run
against each, so a defect caught by a check that should not see it is a test failure too."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import ClassVar

from defects.control import Defect
from defects.datapath import ReceiveDefect, SendDefect, _refill
from ndis_offload.constants.status import NdisStatus
from ndis_offload.packet.headers import parse_frame
from ndis_offload.stack.datapath import NetBufferList, ReceiveIndication, SendCompletion
from ndis_offload.stack.miniport import complete
from ndis_offload.stack.requests import OidCompletion, OidRequest
from ndis_offload.structs.statistics import NdisRscStatisticsInfo

RSC_QUERIES = frozenset(
    {"rsc-statistics-supported", "rsc-statistics-counts"}
    | {f"rsc-aborts-{e}" for e in ("E1-resources", "E2-bad-checksum", "E3-flags", "E4-tcp-option",
                                   "E5-ip-options", "E6-fragment", "E8-ecn", "E7-not-counted")}
)  # fmt: skip
"""Every check that reads OID_TCP_RSC_STATISTICS."""


class StatsDefect(Defect):
    fails: ClassVar[frozenset[str]] = frozenset()
    """Every check this defect fails (``caught_by`` among them)."""


class RscStatisticsOidUnknown(StatsDefect):
    """Advertises RSC but never added OID_TCP_RSC_STATISTICS to its OID table."""

    caught_by = "rsc-statistics-supported"
    fails = RSC_QUERIES

    def query_rsc_statistics(self, request: OidRequest) -> OidCompletion:
        return complete(request, NdisStatus.INVALID_OID, "unknown OID")


class RscStatisticsShortBufferTruncated(StatsDefect):
    """Copies what fits into a short buffer and says SUCCESS."""

    caught_by = "rsc-statistics-supported"
    fails = frozenset({caught_by})

    def query_rsc_statistics(self, request: OidRequest) -> OidCompletion:
        data = self.rsc_statistics().encode()
        if request.InformationBufferLength < len(data):
            cut = data[: request.InformationBufferLength]
            return OidCompletion(
                request, NdisStatus.SUCCESS, BytesWritten=len(cut), InformationBuffer=cut
            )
        return super().query_rsc_statistics(request)


class RscOctetsWithHeaders(StatsDefect):
    """Adds each SCU's IP datagram (headers included) to CoalescedOctets."""

    caught_by = "rsc-statistics-counts"
    fails = frozenset({caught_by})

    def rsc_statistics(self) -> NdisRscStatisticsInfo:
        ip = self.datapath.rsc_statistics.coalesced_ip_octets
        return super().rsc_statistics().evolve(CoalescedOctets=ip)


class RscAbortsCountE7(StatsDefect):
    """Counts exception 7 (the IP datagram length) as an abort."""

    caught_by = "rsc-aborts-E7-not-counted"
    fails = frozenset({caught_by})

    def rsc_statistics(self) -> NdisRscStatisticsInfo:
        out = super().rsc_statistics()
        return out.evolve(Aborts=out.Aborts + self.datapath.coalescer.exceptions[7])


class RscAbortsMissResources(StatsDefect):
    """Counts only the exceptions segments carry: an SCU given up for want of contexts
    (exception 1) is not an abort."""

    caught_by = "rsc-aborts-E1-resources"
    fails = frozenset({caught_by})

    def rsc_statistics(self) -> NdisRscStatisticsInfo:
        out = super().rsc_statistics()
        return out.evolve(Aborts=out.Aborts - self.datapath.coalescer.exceptions[1])


class RscAbortsMissEcn(StatsDefect):
    """Does not count exception 8 (an ECN change) as an abort."""

    caught_by = "rsc-aborts-E8-ecn"
    fails = frozenset({caught_by})

    def rsc_statistics(self) -> NdisRscStatisticsInfo:
        out = super().rsc_statistics()
        return out.evolve(Aborts=out.Aborts - self.datapath.coalescer.exceptions[8])


def _with_delta(ind: ReceiveIndication, delta: int) -> ReceiveIndication:
    return ReceiveIndication(
        ind.frame, ind.TcpIpChecksumNetBufferListInfo, ind.TcpRecvSegCoalesceInfo, delta
    )


class RscNoTimestampDelta(ReceiveDefect, StatsDefect):
    """Never fills NetBufferListInfo[RscTcpTimestampDelta]."""

    caught_by = "rsc-timestamp-delta"
    fails = frozenset({caught_by, "rsc-timestamp-delta-random"})

    def mangle(self, up: list[ReceiveIndication]) -> list[ReceiveIndication]:
        return [_with_delta(i, 0) for i in up]


class RscTimestampDeltaNoWrap(ReceiveDefect, StatsDefect):
    """Computes the delta as a plain difference of the TSvals, so a TSval that wraps past
    2^32 inside an SCU gives a huge delta (|latest - earliest| without modulo 2^32)."""

    caught_by = "rsc-timestamp-delta"
    fails = frozenset({caught_by, "rsc-timestamp-delta-random"})

    def mangle(self, up: list[ReceiveIndication]) -> list[ReceiveIndication]:
        out = []
        for ind in up:
            delta = ind.RscTcpTimestampDelta
            if ind.rsc.CoalescedSegCount > 1 and delta:
                lay = parse_frame(ind.frame)
                opts = ind.frame[lay.l4_offset + 20 : lay.payload_offset]
                at = opts.find(bytes([8, 10]))
                latest = struct.unpack_from("!I", opts, at + 2)[0] if at >= 0 else delta
                earliest = (latest - delta) & 0xFFFFFFFF
                delta = abs(latest - earliest)
            out.append(_with_delta(ind, delta))
        return out


class UsoStatisticsCountOnePacket(StatsDefect):
    """Counts a USO send as one packet of the large datagram's size (what the stack
    handed down), not its segments."""

    caught_by = "uso-transmit-statistics"
    fails = frozenset({caught_by})

    def send_net_buffer_lists(self, nbls: Sequence[NetBufferList]) -> list[SendCompletion]:
        tx = self.datapath.transmit_statistics
        done = super().send_net_buffer_lists(nbls)
        for nbl, result in zip(nbls, done, strict=True):
            if nbl.UdpSegmentationOffloadInfo and result.status == NdisStatus.SUCCESS:
                tx.ifHCOutUcastPkts -= len(result.frames) - 1
                tx.ifHCOutUcastOctets -= sum(map(len, result.frames)) - len(nbl.frame)
        return done


class LsoIpIdWrapsAt16Bits(SendDefect, StatsDefect):
    """LSOv2 IP IDs run past 0x7FFF into the range reserved for chimney offload."""

    caught_by = "lso-ip-id-wraps-at-0x7fff"
    fails = frozenset({caught_by, "lso-ip-id-increments"})  # its random templates cross too

    def mangle(self, nbl: NetBufferList, done: SendCompletion) -> SendCompletion:
        if not nbl.TcpLargeSendNetBufferListInfo or done.status != NdisStatus.SUCCESS:
            return done
        lay = parse_frame(nbl.frame, zero_length_ok=True)
        if lay.ip_version != 4:
            return done
        first = struct.unpack_from("!H", nbl.frame, lay.l3_offset + 4)[0]
        out = []
        for k, frame in enumerate(done.frames):
            edited = bytearray(frame)
            struct.pack_into("!H", edited, lay.l3_offset + 4, (first + k) & 0xFFFF)
            out.append(_refill(bytes(edited)))
        return SendCompletion(done.status, out, done.TcpLargeSendNetBufferListInfo)


STATISTICS: tuple[type[StatsDefect], ...] = (
    RscStatisticsOidUnknown,
    RscStatisticsShortBufferTruncated,
    RscOctetsWithHeaders,
    RscAbortsCountE7,
    RscAbortsMissResources,
    RscAbortsMissEcn,
    RscNoTimestampDelta,
    RscTimestampDeltaNoWrap,
    UsoStatisticsCountOnePacket,
    LsoIpIdWrapsAt16Bits,
)

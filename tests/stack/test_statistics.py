"""The reference miniport's statistics OIDs, against the pages: ``OID_TCP_RSC_STATISTICS``
(``network/oid-tcp-rsc-statistics``, ``ddi:ntddndis/ns-ntddndis-_ndis_rsc_statistics_info``),
``OID_GEN_STATISTICS`` transmit counters with USO (``network/udp-segmentation-offload-uso-``:
"the packet count is the number of MSS-sized segments, not 1"), the statuses of
``ddi:ndis/nc-ndis-miniport_oid_request`` (INVALID_OID: "invalid or not recognized";
NOT_SUPPORTED: "recognized, but not supported"; BUFFER_TOO_SHORT), and
``RscTcpTimestampDelta`` in the receive indication (``network/rules-for-coalescing-tcp-ip-
packets``)."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from harness import StackHarness
from scapy.layers.inet import IP, TCP, UDP, IPOption_Router_Alert
from scapy.layers.l2 import Ether

from ndis_offload.constants.oid import Oid
from ndis_offload.constants.statistics import NdisStatisticsFlags
from ndis_offload.constants.status import NdisStatus
from ndis_offload.lab.variants import NetKvmMiniport
from ndis_offload.stack.datapath import NetBufferList
from ndis_offload.stack.profiles import ALL_ON, get_profile
from ndis_offload.structs import NdisRscStatisticsInfo, NdisStatisticsInfo, NdisUsoTransmit

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def segment(k: int, size: int = 1000, tsval: int | None = None, **ip: Any) -> bytes:
    options = [("NOP", None), ("NOP", None), ("Timestamp", (tsval, 9))] if tsval is not None else []
    tcp = TCP(sport=4000, dport=80, seq=1000 + size * k, ack=1, flags="A", options=options)
    return bytes(ETH / IP(src="10.0.0.1", dst="10.0.0.2", **ip) / tcp / (bytes([k]) * size))


def rsc_harness() -> StackHarness:
    from ndis_offload.stack.miniport import ReferenceMiniport

    return StackHarness(miniport=ReferenceMiniport(get_profile("full").with_keywords(ALL_ON)))


def rsc_statistics(h: StackHarness) -> NdisRscStatisticsInfo:
    handle = h.binding().query(Oid.TCP_RSC_STATISTICS)
    assert handle.status == NdisStatus.SUCCESS
    assert handle.completion is not None
    return NdisRscStatisticsInfo.decode(handle.completion.InformationBuffer)


def test_rsc_statistics_answer_is_the_documented_structure() -> None:
    h = rsc_harness()
    handle = h.binding().query(Oid.TCP_RSC_STATISTICS)
    assert handle.completion is not None
    assert handle.completion.BytesWritten == 40
    assert handle.completion.InformationBuffer[:4] == struct.pack("<BBH", 0x80, 1, 40)


def test_rsc_statistics_short_buffer_is_buffer_too_short_with_bytes_needed() -> None:
    handle = rsc_harness().binding().query(Oid.TCP_RSC_STATISTICS, length=39)
    assert handle.status == NdisStatus.BUFFER_TOO_SHORT
    assert handle.completion is not None and handle.completion.BytesNeeded == 40


def test_rsc_statistics_set_is_not_supported() -> None:
    assert rsc_harness().binding().set(Oid.TCP_RSC_STATISTICS, bytes(40)).status == (
        NdisStatus.NOT_SUPPORTED
    )


@pytest.mark.parametrize("profile", ["checksum-only", "no-offload"])
def test_rsc_statistics_without_rsc_is_recognized_but_not_supported(profile: str) -> None:
    h = StackHarness(profile)
    assert h.binding().query(Oid.TCP_RSC_STATISTICS).status == NdisStatus.NOT_SUPPORTED


def test_an_unknown_oid_is_invalid_oid() -> None:
    assert StackHarness().binding().query(0x0002021E).status == NdisStatus.INVALID_OID


def test_counters_follow_the_coalesced_units() -> None:
    h = rsc_harness()
    before = rsc_statistics(h)
    up = h.stack.receive([segment(k) for k in range(5)] + [segment(9, size=300)], 0.0)
    after = rsc_statistics(h)
    assert [i.rsc.CoalescedSegCount for i in up] == [5, 0]  # the gap: segment 9 alone
    assert after.CoalescedPkts - before.CoalescedPkts == 5
    assert after.CoalescedOctets - before.CoalescedOctets == 5000
    assert after.CoalesceEvents - before.CoalesceEvents == 1
    assert after.Aborts == before.Aborts  # a gap is a rule outcome, not a numbered exception


@pytest.mark.parametrize(
    ("third", "aborts"),
    [
        (lambda: segment(2, flags="MF"), 1),  # E6
        (lambda: segment(2, options=[IPOption_Router_Alert()]), 1),  # E5
        (lambda: segment(2, tos=4), 0),  # DSCP change: not a numbered exception
    ],
)
def test_aborts_count_the_numbered_exceptions(third: object, aborts: int) -> None:
    h = rsc_harness()
    before = rsc_statistics(h)
    assert callable(third)
    h.stack.receive([segment(0), segment(1), third(), segment(3)], 0.0)
    assert rsc_statistics(h).Aborts - before.Aborts == aborts


def test_each_ecn_change_is_an_abort() -> None:
    """E8: ECT(1) on segment 2 (an abort), back to not-ECT on segment 3 (another)."""
    h = rsc_harness()
    up = h.stack.receive([segment(0), segment(1), segment(2, tos=1), segment(3)], 0.0)
    assert [i.rsc.CoalescedSegCount for i in up] == [2, 0, 0]
    assert rsc_statistics(h).Aborts == 2


def test_e7_is_not_an_abort() -> None:
    h = rsc_harness()
    h.stack.receive([segment(k, size=9000) for k in range(9)], 0.0)
    stats = rsc_statistics(h)
    assert (stats.CoalesceEvents, stats.CoalescedPkts, stats.Aborts) == (2, 9, 0)
    assert h.miniport.datapath.coalescer.exceptions[7] == 1


def test_netkvm_counts_ip_datagrams_and_no_aborts() -> None:
    h = StackHarness(miniport=NetKvmMiniport(get_profile("full").with_keywords(ALL_ON)))
    h.stack.receive([segment(0), segment(1), segment(2, flags="MF"), segment(3)], 0.0)
    stats = rsc_statistics(h)
    assert (stats.CoalescedPkts, stats.CoalescedOctets, stats.Aborts) == (2, 2040, 0)


def test_the_indication_carries_rsc_tcp_timestamp_delta() -> None:
    h = rsc_harness()
    stamps = [(0xFFFFFFF0 + 9 * k) & 0xFFFFFFFF for k in range(4)]
    up = h.stack.receive([segment(k, tsval=stamps[k]) for k in range(4)], 0.0)
    assert [i.rsc.CoalescedSegCount for i in up] == [4]
    assert up[0].RscTcpTimestampDelta == 27
    assert TCP(bytes(Ether(up[0].frame)[TCP])).options[2][1][0] == (0xFFFFFFF0 + 27) & 0xFFFFFFFF


def test_uso_transmit_statistics_count_every_segment_with_its_headers() -> None:
    h = StackHarness()
    frame = bytes(ETH / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / bytes(4000))
    word = NdisUsoTransmit(MSS=1000, UdpHeaderOffset=34).to_int()
    done = h.stack.send([NetBufferList(frame, UdpSegmentationOffloadInfo=word)])[0]
    assert done.status == NdisStatus.SUCCESS and len(done.frames) == 4
    handle = h.binding().query(Oid.GEN_STATISTICS)
    assert handle.completion is not None
    stats = NdisStatisticsInfo.decode(handle.completion.InformationBuffer)
    assert stats.ifHCOutUcastPkts == 4
    assert stats.ifHCOutUcastOctets == stats.ifHCOutOctets == 4 * (14 + 20 + 8 + 1000)
    assert stats.SupportedStatistics & NdisStatisticsFlags.VALID_DIRECTED_FRAMES_XMIT


def test_transmit_statistics_sort_destinations_and_count_refusals() -> None:
    h = StackHarness()
    for dst in ("ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01"):
        frame = bytes(Ether(dst=dst) / IP() / UDP() / b"x")
        h.stack.send([NetBufferList(frame)])
    off = StackHarness("checksum-only")
    giant = bytes(ETH / IP() / TCP() / bytes(5000))
    word = NdisUsoTransmit(MSS=1000, UdpHeaderOffset=34).to_int()
    off.stack.send([NetBufferList(giant, UdpSegmentationOffloadInfo=word)])
    tx = h.miniport.datapath.transmit_statistics
    assert (tx.ifHCOutBroadcastPkts, tx.ifHCOutMulticastPkts, tx.ifHCOutUcastPkts) == (1, 1, 0)
    assert off.miniport.datapath.transmit_statistics.ifOutDiscards == 1

"""Which exception of ``network/exception-conditions-that-terminate-coalescing`` the
coalescer met (``RscCoalescer.exceptions``, behind ``OID_TCP_RSC_STATISTICS.Aborts``), per
frame and per batch; and the LSOv2 IP ID range of ``network/offloading-the-segmentation-of-
large-tcp-packets`` ("0x7FFE ... followed by 0x7FFF, 0x0000, 0x0001"), checked with scapy."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, IPOption_Router_Alert
from scapy.layers.l2 import Ether

from ndis_offload.engine import RscCoalescer, RscStatistics, rsc_aborts, transmit_lso
from ndis_offload.structs import NdisLsoV2Transmit

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def seg(k: int, *, sport: int = 4000, size: int = 1000, flags: str = "A", **ip: Any) -> bytes:
    tcp = TCP(sport=sport, dport=80, seq=1000 + size * k, ack=1, flags=flags)
    return bytes(ETH / IP(src="10.0.0.1", dst="10.0.0.2", **ip) / tcp / (bytes([k]) * size))


def corrupt(frame: bytes) -> bytes:
    return frame[:-1] + bytes([frame[-1] ^ 0x20])


THIRD = {
    2: lambda: corrupt(seg(2)),
    3: lambda: seg(2, flags="AU"),
    4: lambda: bytes(
        ETH / IP(src="10.0.0.1", dst="10.0.0.2")
        / TCP(sport=4000, dport=80, seq=3000, ack=1, flags="A", options=[("MSS", 1400)])
        / (bytes([2]) * 1000)
    ),  # fmt: skip
    5: lambda: seg(2, options=[IPOption_Router_Alert()]),
    6: lambda: bytes(
        ETH / IP(src="10.0.0.1", dst="10.0.0.2", flags="MF")
        / TCP(sport=4000, dport=80, seq=3000, ack=1, flags="A") / (bytes([2]) * 1000)
    ),
}  # fmt: skip


def run(frames: list[bytes], batch: bool, **kw: int) -> RscCoalescer:
    rsc = RscCoalescer(**kw)  # type: ignore[arg-type]
    if batch:
        rsc.push_batch(frames, 0.0)
    else:
        for frame in frames:
            rsc.push(frame, 0.0)
    rsc.flush()
    return rsc


@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("number", sorted(THIRD))
def test_each_segment_intrinsic_exception_is_named(number: int, batch: bool) -> None:
    rsc = run([seg(0), seg(1), THIRD[number](), seg(3)], batch)
    assert rsc.exceptions == [1 if n == number else 0 for n in range(9)]
    assert rsc_aborts(rsc.exceptions) == 1


@pytest.mark.parametrize("batch", [False, True])
def test_e7_and_e8_are_counted_and_only_e8_aborts(batch: bool) -> None:
    rsc = run([seg(k, size=9000) for k in range(9)], batch)
    assert rsc.exceptions[7] == 1 and rsc_aborts(rsc.exceptions) == 0
    rsc = run([seg(0), seg(1), seg(2, tos=3), seg(3, tos=3)], batch)  # CE from segment 2 on
    assert rsc.exceptions[8] == 1 and rsc_aborts(rsc.exceptions) == 1


@pytest.mark.parametrize("batch", [False, True])
def test_a_segment_without_an_scu_still_meets_its_exception(batch: bool) -> None:
    """'every time it encounters an exception': a SYN or FIN counts though nothing is held."""
    rsc = run([seg(0, flags="S"), seg(1, sport=4001, flags="FA")], batch)
    assert rsc.exceptions[3] == 2


def test_e1_is_an_scu_given_up_for_want_of_flow_slots() -> None:
    rsc = run([seg(0, sport=4000 + f) for f in range(5)], False, max_flows=2)
    assert rsc.exceptions[1] == 3 and rsc_aborts(rsc.exceptions) == 3


def test_statistics_count_scus_only() -> None:
    rsc = RscCoalescer()
    stats = RscStatistics()
    for item in rsc.push_batch([seg(k) for k in range(4)] + [seg(0, sport=5000)], 0.0):
        stats.account(item)
    for item in rsc.flush():
        stats.account(item)
    assert (stats.CoalescedPkts, stats.CoalescedOctets, stats.CoalesceEvents) == (4, 4000, 1)
    assert stats.coalesced_ip_octets == 4000 + 40


@settings(max_examples=200, deadline=None)
@given(first=st.integers(0, 0x7FFF), count=st.integers(1, 40), mss=st.integers(64, 1460))
def test_lsov2_ip_ids_stay_below_0x8000(first: int, count: int, mss: int) -> None:
    payload = bytes(range(256)) * (mss * count // 256 + 1)
    tcp = TCP(sport=1, dport=2, flags="A", chksum=0) / payload[: mss * count]
    frame = bytes(ETH / IP(src="10.0.0.1", dst="10.0.0.2", id=first, len=0) / tcp)
    result, _ = transmit_lso(frame, NdisLsoV2Transmit(MSS=mss, TcpHeaderOffset=34))
    assert len(result.frames) == count
    for k, out in enumerate(result.frames):
        ip = Ether(out)[IP]
        assert ip.id == (first + k) & 0x7FFF
        sent = ip.chksum
        del ip.chksum
        assert IP(bytes(ip)).chksum == sent  # scapy recomputes the header checksum

"""The reference miniport's send path uses the engine and obeys the current NDIS_OFFLOAD."""

from __future__ import annotations

from harness import StackHarness
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from ndis_offload.constants.oid import Oid
from ndis_offload.constants.status import NdisStatus
from ndis_offload.stack.datapath import NetBufferList, SoftwareDatapath
from ndis_offload.structs import (
    NdisLsoV1TransmitComplete,
    NdisLsoV2Transmit,
    NdisOffloadParameters,
    NdisTcpIpChecksumNetBufferListInfoTransmit,
)


def giant_tcp(payload: int = 10_000) -> bytes:
    frame = Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=2, flags="PA")
    return bytes(frame / (b"x" * payload))


def lso_word(mss: int = 1448) -> int:
    return NdisLsoV2Transmit(MSS=mss, TcpHeaderOffset=34, IPVersion=0).to_int()


def test_lso_send_is_segmented_when_lsov2_is_on() -> None:
    h = StackHarness()
    done = SoftwareDatapath(h.miniport).send(
        NetBufferList(giant_tcp(), TcpLargeSendNetBufferListInfo=lso_word())
    )
    assert done.status == NdisStatus.SUCCESS
    assert len(done.frames) == 7
    for frame in done.frames:
        parsed = Ether(frame)
        tcp_sum, ip_sum = parsed[TCP].chksum, parsed[IP].chksum
        del parsed[TCP].chksum, parsed[IP].chksum
        rebuilt = Ether(bytes(parsed))
        assert (rebuilt[TCP].chksum, rebuilt[IP].chksum) == (tcp_sum, ip_sum)


def test_lso_send_is_refused_and_counted_after_lso_is_turned_off() -> None:
    h = StackHarness()
    path = SoftwareDatapath(h.miniport)
    h.binding().set(Oid.TCP_OFFLOAD_PARAMETERS, NdisOffloadParameters(LsoV2IPv4=1).encode())
    done = path.send(NetBufferList(giant_tcp(), TcpLargeSendNetBufferListInfo=lso_word()))
    assert done.status == NdisStatus.FAILURE and done.frames == []
    assert path.counters["refused_lsov2_4"] == 1


def test_lsov1_completion_reports_tcp_payload_bytes() -> None:
    from ndis_offload.structs import NdisLsoV1Transmit

    h = StackHarness()
    h.binding().set(Oid.TCP_OFFLOAD_PARAMETERS, NdisOffloadParameters(LsoV1=2).encode())
    word = NdisLsoV1Transmit(MSS=1000, TcpHeaderOffset=34).to_int()
    done = SoftwareDatapath(h.miniport).send(
        NetBufferList(giant_tcp(4321), TcpLargeSendNetBufferListInfo=word)
    )
    assert done.status == NdisStatus.SUCCESS and len(done.frames) == 5
    assert NdisLsoV1TransmitComplete.from_int(done.TcpLargeSendNetBufferListInfo).TcpPayload == 4321


def test_checksum_send_fills_checksums_only_when_tx_checksum_is_on() -> None:
    h = StackHarness()
    path = SoftwareDatapath(h.miniport)
    frame = bytes(Ether() / IP() / UDP(sport=5, dport=6, chksum=0) / b"data")
    info = NdisTcpIpChecksumNetBufferListInfoTransmit(
        IsIPv4=1, UdpChecksum=1, IpHeaderChecksum=1, TcpHeaderOffset=34
    )
    done = path.send(NetBufferList(frame, TcpIpChecksumNetBufferListInfo=info.to_int()))
    assert done.status == NdisStatus.SUCCESS and Ether(done.frames[0])[UDP].chksum != 0
    h.protocols["tcpip"].disable(ipv4=True, ipv6=False)
    refused = path.send(NetBufferList(frame, TcpIpChecksumNetBufferListInfo=info.to_int()))
    assert refused.status == NdisStatus.FAILURE
    assert path.counters["refused"] == 1


def test_malformed_frame_is_invalid_parameter_naming_the_frame() -> None:
    h = StackHarness()
    done = SoftwareDatapath(h.miniport).send(
        NetBufferList(b"\x00" * 20, TcpLargeSendNetBufferListInfo=lso_word()), index=7
    )
    assert done.status == NdisStatus.INVALID_PARAMETER
    assert "frame 7" in done.detail


# --- receive path ----------------------------------------------------------------------------
def received_segments(count: int = 4, corrupt: int | None = None) -> list[bytes]:
    from ndis_offload.engine import segment_tcp

    giant = bytes(
        Ether()
        / IP(src="10.0.0.2", dst="10.0.0.1")
        / TCP(sport=80, dport=5555, flags="A")
        / (b"r" * (1448 * count))
    )
    frames = segment_tcp(giant, 1448).frames
    if corrupt is not None:
        bad = bytearray(frames[corrupt])
        bad[-1] ^= 0xFF
        frames[corrupt] = bytes(bad)
    return frames


def test_receive_gives_no_checksum_verdict_before_the_first_encapsulation_set() -> None:
    h = StackHarness()
    path = SoftwareDatapath(h.miniport)
    h.binding().set(Oid.TCP_OFFLOAD_PARAMETERS, NdisOffloadParameters(RscIPv4=1).encode())
    out = path.receive(received_segments(2), now=0.0)
    assert [i.TcpIpChecksumNetBufferListInfo for i in out] == [0, 0]


def test_receive_validates_checksums_the_configuration_has_on() -> None:
    h = StackHarness()
    h.protocols["tcpip"].enable()
    h.binding().set(Oid.TCP_OFFLOAD_PARAMETERS, NdisOffloadParameters(RscIPv4=1).encode())
    path = SoftwareDatapath(h.miniport)
    out = path.receive(received_segments(3, corrupt=1), now=0.0)
    flags = [(i.checksum.TcpChecksumSucceeded, i.checksum.TcpChecksumFailed) for i in out]
    assert flags == [(1, 0), (0, 1), (1, 0)]
    assert all(i.checksum.IpChecksumSucceeded for i in out)
    # TCP/IPv4 Rx checksum off: no TCP verdict any more, the IP one stays
    h.binding().set(
        Oid.TCP_OFFLOAD_PARAMETERS, NdisOffloadParameters(TCPIPv4Checksum=2).encode()
    )  # Tx only
    out = path.receive(received_segments(1), now=1.0)
    assert out[0].checksum.TcpChecksumSucceeded == 0 and out[0].checksum.IpChecksumSucceeded


def test_receive_coalesces_only_while_rsc_is_on() -> None:
    h = StackHarness()
    h.protocols["tcpip"].enable()
    path = SoftwareDatapath(h.miniport)
    out = path.receive(received_segments(4), now=0.0) + path.flush()
    assert len(out) == 1 and out[0].rsc.CoalescedSegCount == 4
    assert out[0].checksum.TcpChecksumSucceeded and out[0].checksum.IpChecksumSucceeded
    parsed = Ether(out[0].frame)
    assert len(bytes(parsed[TCP].payload)) == 4 * 1448
    h.binding().set(Oid.TCP_OFFLOAD_PARAMETERS, NdisOffloadParameters(RscIPv4=1).encode())
    out = path.receive(received_segments(4), now=1.0) + path.flush()
    assert len(out) == 4 and all(i.rsc.CoalescedSegCount == 0 for i in out)


def test_a_frame_of_no_ip_family_is_indicated_alone_and_leaves_the_scu_held() -> None:
    """rules-for-coalescing-tcp-ip-packets: RSC holds the segments of one TCP flow; an ARP
    frame arriving among them is indicated alone, without checksum verdicts, as it arrives,
    and the flow's four segments still make one SCU (RSC on for both families: the whole
    DPC goes to the coalescer as it came)."""
    from scapy.layers.l2 import ARP

    h = StackHarness()
    h.protocols["tcpip"].enable()
    path = SoftwareDatapath(h.miniport)
    arp = bytes(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst="10.0.0.2"))
    segments = received_segments(4)
    out = path.receive([*segments[:2], arp, *segments[2:]], now=0.0) + path.flush()
    assert [i.rsc.CoalescedSegCount for i in out] == [0, 4]
    assert out[0].frame == arp and out[0].TcpIpChecksumNetBufferListInfo == 0
    assert out[1].checksum.TcpChecksumSucceeded
    assert path.counters["received"] == 5


# --- the data path as miniport hooks, driven through NDIS -------------------------------------
def test_ndis_send_goes_through_the_miniport_hook_in_order() -> None:
    h = StackHarness()
    nbls = [
        NetBufferList(giant_tcp(3000), TcpLargeSendNetBufferListInfo=lso_word(1000)),
        NetBufferList(bytes(Ether() / IP() / UDP() / b"plain")),
    ]
    done = h.stack.send(nbls, "tcpip")
    assert [c.status for c in done] == [NdisStatus.SUCCESS, NdisStatus.SUCCESS]
    assert [len(c.frames) for c in done] == [3, 1]
    event = h.stack.trace[-1]
    assert (event.kind, event.extra["nbls"], event.extra["frames"]) == ("send", 2, 4)


def test_a_send_hook_that_raises_or_loses_nbls_fails_them_without_crashing() -> None:
    from ndis_offload.stack.datapath import SendCompletion
    from ndis_offload.stack.miniport import ReferenceMiniport
    from ndis_offload.stack.profiles import get_profile

    class Raises(ReferenceMiniport):
        def send_net_buffer_lists(self, nbls):  # type: ignore[no-untyped-def]
            raise ValueError("bug")

    class LosesOne(ReferenceMiniport):
        def send_net_buffer_lists(self, nbls):  # type: ignore[no-untyped-def]
            return [SendCompletion(NdisStatus.SUCCESS, [nbls[0].frame])]

    nbls = [NetBufferList(b"\x00" * 60), NetBufferList(b"\x01" * 60)]
    raised = StackHarness(miniport=Raises(get_profile("full"))).stack.send(nbls)
    assert [c.status for c in raised] == [NdisStatus.FAILURE] * 2
    assert "ValueError" in raised[0].detail
    lost = StackHarness(miniport=LosesOne(get_profile("full"))).stack.send(nbls)
    assert [c.status for c in lost] == [NdisStatus.SUCCESS, NdisStatus.FAILURE]
    assert "completed 1 of 2" in lost[1].detail


def test_ndis_receive_runs_one_dpc_and_holds_nothing_back() -> None:
    """indicating-coalesced-segments: no holding segments across DPCs."""
    h = StackHarness()
    h.protocols["tcpip"].enable()
    up = h.stack.receive(received_segments(4), now=0.0)
    assert len(up) == 1 and up[0].rsc.CoalescedSegCount == 4
    assert h.stack.received == up
    assert h.miniport.datapath.flush() == []


def test_rsc_disable_indicates_held_segments_before_the_set_completes() -> None:
    """querying-and-changing-rsc-state: with RSC_DISABLED the driver "must indicate any
    existing coalesced segments up the stack before completing the OID request"."""
    h = StackHarness()
    h.protocols["tcpip"].enable()
    assert h.miniport.datapath.receive(received_segments(3), now=0.0) == []  # held
    h.binding().set(Oid.TCP_OFFLOAD_PARAMETERS, NdisOffloadParameters(RscIPv4=1).encode())
    assert len(h.stack.received) == 1 and h.stack.received[0].rsc.CoalescedSegCount == 3
    kinds = [e.kind for e in h.stack.trace]
    assert kinds[-3:] == ["receive", "indication", "completion"]


def test_default_hooks_are_an_adapter_without_task_offload() -> None:
    from ndis_offload.stack.miniport import Miniport, ReferenceMiniport
    from ndis_offload.stack.profiles import get_profile

    class Plain(ReferenceMiniport):
        send_net_buffer_lists = Miniport.send_net_buffer_lists

    h = StackHarness(miniport=Plain(get_profile("full")))
    done = h.stack.send(
        [NetBufferList(giant_tcp(), TcpLargeSendNetBufferListInfo=lso_word()), NetBufferList(b"x")]
    )
    assert [c.status for c in done] == [NdisStatus.FAILURE, NdisStatus.SUCCESS]

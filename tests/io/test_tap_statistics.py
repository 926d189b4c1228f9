"""The control channel's ``stats`` carries the miniport's statistics OIDs (no root needed):
``OID_GEN_STATISTICS`` (``ddi:ntddndis/ns-ntddndis-_ndis_statistics_info``: transmit frames
and octets per destination kind, each segment of a large send counted on its own) and
``OID_TCP_RSC_STATISTICS`` (``oid-tcp-rsc-statistics``: ``CoalescedPkts`` segments
coalesced, ``CoalescedOctets`` their TCP payload, ``CoalesceEvents`` SCUs, ``Aborts``),
queried through the NDIS stack of TAP NICs over fake devices. The expected numbers are
counted from the frames themselves, not from the data path's counters."""

from __future__ import annotations

import io
import json

from rich.console import Console
from test_tap_nic import FakeDevice, nic, tso

from ndis_offload.cli.oid import _stats_view
from ndis_offload.io.tap.control import handle_request, nic_statistics
from ndis_offload.io.tap.nic import TapNic
from ndis_offload.io.tap.pcapng import OUTBOUND
from ndis_offload.io.tap.vnet_hdr import VirtioNetHdr
from ndis_offload.io.tap.wire import Loop, Side
from ndis_offload.packet.headers import parse_frame
from ndis_offload.stack.profiles import get_profile

RSC = "OID_TCP_RSC_STATISTICS"
GEN = "OID_GEN_STATISTICS"


def _send_and_coalesce(a: TapNic, b: TapNic, payload: int = 8000) -> list[bytes]:
    frames = a.transmit(memoryview(bytearray(tso(payload))))
    written = b.receive(frames, 0.0)
    assert len(written) == 1  # one SCU
    return frames


def test_statistics_count_the_wire_frames_and_the_coalesced_segments() -> None:
    a, _ = nic()
    b, _ = nic()
    before = nic_statistics(a)
    assert before[GEN]["status"] == "NDIS_STATUS_SUCCESS"
    assert before[GEN]["value"]["ifHCOutUcastPkts"] == 0
    frames = _send_and_coalesce(a, b)
    plain = a.transmit(VirtioNetHdr().encode() + frames[0])  # a plain send is counted too
    assert plain == [frames[0]]
    sent = nic_statistics(a)[GEN]["value"]
    assert sent["ifHCOutUcastPkts"] == len(frames) + 1 == 7
    assert sent["ifHCOutUcastOctets"] == sum(map(len, frames)) + len(frames[0])
    assert sent["ifHCOutOctets"] == sent["ifHCOutUcastOctets"]
    assert sent["ifHCOutBroadcastPkts"] == sent["ifHCOutMulticastPkts"] == 0
    rsc = nic_statistics(b)[RSC]
    assert rsc["status"] == "NDIS_STATUS_SUCCESS"
    payload = sum(parse_frame(f).payload_len for f in frames)
    assert rsc["value"]["CoalescedPkts"] == len(frames)
    assert rsc["value"]["CoalescedOctets"] == payload == 8000
    assert rsc["value"]["CoalesceEvents"] == 1
    assert rsc["value"]["Aborts"] == 0
    assert nic_statistics(a)[RSC]["value"]["CoalescedPkts"] == 0  # a coalesced nothing


def test_a_variant_answers_with_its_own_statistics() -> None:
    """netkvm's ``UpdateTXStats`` counts one packet of the whole large send per NET_BUFFER
    (``lab/variants.py``): the TAP NIC sends through the variant's own send path."""
    device = FakeDevice()
    a = TapNic("a", get_profile("full"), variant="netkvm", device=device)  # type: ignore[arg-type]
    a.transmit(memoryview(bytearray(tso(8000))))
    sent = nic_statistics(a)[GEN]["value"]
    assert sent["ifHCOutUcastPkts"] == 1
    assert sent["ifHCOutUcastOctets"] == len(tso(8000)) - 10  # the frame without its header


def test_an_adapter_without_rsc_says_not_supported() -> None:
    a, _ = nic("no-offload")
    stats = nic_statistics(a)
    assert stats[RSC] == {"status": "NDIS_STATUS_NOT_SUPPORTED", "value": None}
    assert stats[GEN]["status"] == "NDIS_STATUS_SUCCESS"


def test_stats_json_and_view() -> None:
    a, _ = nic()
    b, _ = nic()
    a_loop = Loop([Side(a, None, OUTBOUND)], mode="segment", control=None, pcap=None, batch=8)
    b_loop = Loop([Side(b, None, OUTBOUND)], mode="segment", control=None, pcap=None, batch=8)
    try:
        _send_and_coalesce(a, b)
        answer = handle_request({"a": b}, {"op": "stats"}, b_loop.stats)
        assert answer["ok"]
        stats = json.loads(json.dumps(answer["stats"]))  # what the socket carries
        side = stats["sides"]["a"]["statistics"]  # both fake NICs are named "a"
        assert side[RSC]["value"]["CoalescedPkts"] == 6
        assert a_loop.stats()["sides"]["a"]["statistics"][GEN]["value"]["ifHCOutUcastPkts"] == 6
        out = io.StringIO()
        Console(file=out, width=200).print(_stats_view(stats))
        text = out.getvalue()
        for member in ("CoalescedPkts", "CoalescedOctets", "CoalesceEvents", "Aborts"):
            assert member in text
        assert "8,000" in text  # CoalescedOctets
        assert "ifHCOutUcastPkts" in text and "ifHCOutOctets" in text
        assert "ifHCInUcastPkts" not in text  # not vouched for by SupportedStatistics
    finally:
        a.device.close()
        b.device.close()

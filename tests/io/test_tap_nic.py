"""The TAP NIC's send path, receive path and TUNSETOFFLOAD recomputation over a fake device
(no root needed): malformed headers are counted and dropped, offloads that are off are
refused, LSO sends become MTU-sized frames that the receive path coalesces back."""

from __future__ import annotations

from typing import Any

from tap_frames import ipv4_tcp

from ndis_offload.constants.status import NdisStatus
from ndis_offload.io.tap.control import handle_request
from ndis_offload.io.tap.linux import TunOffload, tun_offload_flags
from ndis_offload.io.tap.nic import TapNic
from ndis_offload.io.tap.vnet_hdr import VirtioNetHdr, VirtioNetHdrFlags, VirtioNetHdrGso
from ndis_offload.packet.headers import parse_frame
from ndis_offload.stack.datapath import SendCompletion
from ndis_offload.stack.profiles import get_profile


class FakeDevice:
    name = "fake0"
    namespace = None
    uso_supported = True

    def __init__(self) -> None:
        self.offload = -1
        self.history: list[int] = []

    def set_offload(self, flags: int) -> None:
        self.offload = flags
        self.history.append(flags)

    def close(self) -> None:
        pass


def nic(profile: str = "full") -> tuple[TapNic, FakeDevice]:
    device = FakeDevice()
    return TapNic("a", get_profile(profile), device=device), device  # type: ignore[arg-type]


def tso(payload: int = 8000) -> bytes:
    hdr = VirtioNetHdr(VirtioNetHdrFlags.NEEDS_CSUM, VirtioNetHdrGso.TCPV4, 54, 1448, 34, 16)
    return hdr.encode() + ipv4_tcp(payload)


def test_bind_sets_offload_from_current_config() -> None:
    n, device = nic()
    assert device.offload == tun_offload_flags(n.usable)
    assert device.offload & TunOffload.TSO4
    n2, device2 = nic("no-offload")
    assert device2.offload == 0


def test_malformed_counted_and_dropped() -> None:
    n, _ = nic()
    assert n.transmit(b"\x01\x02") == []  # shorter than the header
    bad = VirtioNetHdr(0x80, 0, 0, 0, 0, 0).encode() + ipv4_tcp()
    assert n.transmit(bad) == []
    ufo = VirtioNetHdr(1, VirtioNetHdrGso.UDP, 0, 100, 34, 6).encode() + ipv4_tcp()
    assert not n.admit(ufo)
    assert n.counters.rows["malformed"][4] == 3
    assert n.counters.events["malformed_vnet_hdr"] == 2
    assert n.transmit(tso())  # the loop goes on


def test_segment_then_coalesce() -> None:
    a, _ = nic()
    b, _ = nic()
    raw = bytearray(tso(8000))
    frames = a.transmit(memoryview(raw))
    raw[:] = bytes(len(raw))  # the read buffer is reused: the wire frames must not alias it
    assert len(frames) == 6
    assert max(map(len, frames)) == 1448 + 54
    written = b.receive(frames, 0.0)
    assert len(written) == 1
    header, frame = written[0]
    hdr = VirtioNetHdr.decode(header)
    assert hdr.gso_type == VirtioNetHdrGso.TCPV4 and hdr.gso_size == 1460
    assert hdr.flags & VirtioNetHdrFlags.DATA_VALID
    assert parse_frame(frame).payload_len == 8000
    assert b.counters.rows["rsc4"][3] == 6


def test_refused_when_off_and_tunsetoffload_recomputed() -> None:
    n, device = nic()
    answer = handle_request(
        {"a": n},
        {"op": "set", "oid": "OID_TCP_OFFLOAD_PARAMETERS", "value": {"LsoV2IPv4": 1}},
        lambda **_: {},
    )
    result = answer["results"][0]
    assert result["status"] == "NDIS_STATUS_SUCCESS"
    assert "NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG" in result["indications"]
    assert not device.offload & TunOffload.TSO4 and device.offload & TunOffload.TSO6
    assert not n.admit(tso())
    assert n.counters.rows["lsov2_4"][4] == 1


def test_bad_requests_get_ndis_status() -> None:
    n, _ = nic()
    cases: list[tuple[Any, str]] = [
        ([1, 2], "NDIS_STATUS_INVALID_DATA"),
        ({"op": "set", "oid": "OID_NOPE", "value": {}}, "NDIS_STATUS_INVALID_OID"),
        ({"op": "set", "oid": "OID_OFFLOAD_ENCAPSULATION", "value": {"IPv4": {"Nope": 1}}},
         "NDIS_STATUS_INVALID_DATA"),
        ({"op": "frobnicate"}, "NDIS_STATUS_NOT_SUPPORTED"),
        ({"op": "caps", "side": "z"}, "NDIS_STATUS_INVALID_PARAMETER"),
    ]  # fmt: skip
    for request, status in cases:
        answer = handle_request({"a": n}, request, lambda **_: {})
        assert answer["ok"] is False and answer["status"] == status, request
    short = handle_request(
        {"a": n}, {"op": "set", "oid": "OID_OFFLOAD_ENCAPSULATION", "raw": "0102"}, lambda **_: {}
    )
    assert short["results"][0]["status"] == "NDIS_STATUS_INVALID_LENGTH"


def test_sent_sizes_are_the_frames() -> None:
    """``sent_bytes`` / ``sent_largest`` (what the wire counts per DPC without a pass over
    the frames) are the returned frames' total and largest length: from the engine's cut
    (LSO, checksum, plain) and, for a send path that builds its own completions (a variant),
    from the frames themselves."""
    n, _ = nic()
    for raw in (tso(8000), tso(1448 * 3), tso(100), bytes(10) + ipv4_tcp(300)):
        frames = n.transmit(raw)
        assert frames
        assert n.sent_bytes == sum(map(len, frames))
        assert n.sent_largest == max(map(len, frames))
    ack = VirtioNetHdr(VirtioNetHdrFlags.NEEDS_CSUM, 0, 0, 0, 34, 16).encode() + ipv4_tcp(0)
    assert n.transmit(ack) and n.sent_bytes == n.sent_largest == 54
    assert n.transmit(b"\x01\x02") == [] and n.sent_bytes == n.sent_largest == 0

    def own(nbls: Any) -> list[SendCompletion]:  # frames of any sizes, no wire_bytes
        return [SendCompletion(NdisStatus.SUCCESS, [b"x" * 60, b"y" * 900, b"z" * 70])]

    n.miniport.send_net_buffer_lists = own  # type: ignore[method-assign]
    assert len(n.transmit(tso())) == 3
    assert (n.sent_bytes, n.sent_largest) == (1030, 900)

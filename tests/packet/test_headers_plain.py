"""The plain-TCP shortcut of ``parse_frame`` (untagged Ethernet II + IPv4 without options
or IPv6 without extension headers + TCP) answers exactly what the frame locator's full walk
answers, or leaves the frame to it: the walk is the oracle, on frames mutated at every byte
the shortcut reads (lengths, version / IHL, protocol, fragment bits, data offset, size)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from ndis_offload.errors import PacketError
from ndis_offload.packet.headers import FrameLayout, _parse_located, _plain_tcp, parse_frame

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
V4 = bytes(ETH / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(options=[("Timestamp", (1, 2))]))
V6 = bytes(ETH / IPv6(src="fd00::1", dst="fd00::2") / TCP())

# offsets the shortcut reads: Ethertype, version/IHL, lengths, fragment bits, protocol /
# next header, TCP data offset
HOT = [12, 13, 14, 16, 17, 18, 19, 20, 21, 23, 46, 66]


def walk(view: bytes) -> FrameLayout | str:
    try:
        return _parse_located(memoryview(view), False)
    except PacketError as err:
        return f"error: {err}"


def outcome(frame: bytes) -> FrameLayout | str:
    try:
        return parse_frame(frame)
    except PacketError as err:
        return f"error: {err}"


@settings(max_examples=600, deadline=None)
@given(
    base=st.sampled_from([V4, V6]),
    edits=st.lists(st.tuples(st.sampled_from(HOT), st.integers(0, 255)), max_size=4),
    payload=st.integers(0, 64),
    cut=st.integers(-8, 0),
    pad=st.integers(0, 12),
)
def test_shortcut_agrees_with_the_walk(
    base: bytes, edits: list[tuple[int, int]], payload: int, cut: int, pad: int
) -> None:
    frame = bytearray(base + bytes(range(payload)))
    # keep the IP length consistent before mutating it (a length the walk accepts)
    if frame[12:14] == b"\x08\x00":
        struct.pack_into("!H", frame, 16, len(frame) - 14)
    else:
        struct.pack_into("!H", frame, 18, len(frame) - 54)
    for offset, value in edits:
        if offset < len(frame):
            frame[offset] = value
    data = bytes(frame[: len(frame) + cut] if cut else frame) + bytes(pad)
    assert outcome(data) == walk(data)


@pytest.mark.parametrize("base", [V4, V6], ids=["ipv4", "ipv6"])
def test_shortcut_takes_the_plain_frames(base: bytes) -> None:
    assert _plain_tcp(memoryview(base)) == walk(base)

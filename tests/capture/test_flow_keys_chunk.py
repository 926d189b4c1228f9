"""``flow_keys_chunk`` (numpy gathers for the commonest frames) equals ``flow_keys`` (the
header locator, frame by frame) on every record: intact, cut, with header bytes spoiled,
tagged, tunnelled, of other link types."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt
from scapy.layers.l2 import ARP, Dot1Q, Ether

from coalesce_frames import MAC, receive_frames
from ndis_offload.capture.flows import flow_keys, flow_keys_chunk
from ndis_offload.engine.rss import FlowKeys

BASE = [f for f, _ in receive_frames(flows=12, rounds=1)] + [
    bytes(Ether(**MAC) / Dot1Q(vlan=3) / IP(src="1.2.3.4", dst="5.6.7.8") / TCP() / b"x"),
    bytes(Ether(**MAC) / IP(src="1.2.3.4", dst="5.6.7.8", flags="MF") / TCP() / (b"x" * 40)),
    bytes(Ether(**MAC) / IP(src="1.2.3.4", dst="5.6.7.8", options=b"\x01" * 4) / TCP()),
    bytes(Ether(**MAC) / IPv6(src="::1", dst="::2") / IPv6ExtHdrDestOpt() / TCP() / b"y"),
    bytes(Ether(**MAC) / IPv6(src="::1", dst="::2") / UDP() / b"z"),
    bytes(Ether(**MAC) / ARP()),
]
FIELDS = FlowKeys.__slots__


@settings(max_examples=60)
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(BASE) - 1),
            st.integers(0, 80),
            st.integers(0, 255),
            st.integers(0, 1600),
            st.sampled_from([1, 1, 1, 101, 113]),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_equals_the_locator(picks: list[tuple[int, int, int, int, int]]) -> None:
    records: list[tuple[int, bytes]] = []
    for which, spoil_at, value, cut, linktype in picks:
        frame = bytearray(BASE[which])
        if spoil_at < len(frame) and value % 3 == 0:
            frame[spoil_at] = value
        frame = frame[: max(cut, 0)] if value % 5 == 0 else frame
        records.append((linktype, bytes(frame[14:] if linktype == 101 else frame)))
    buffer = b"".join(b"\xee" * 3 + data for _, data in records)  # gaps between records
    starts, at = [], 0
    for _, data in records:
        starts.append(at + 3)
        at += 3 + len(data)
    got = flow_keys_chunk(buffer, np.array(starts, np.int64),
                          np.array([len(d) for _, d in records], np.int64),
                          np.array([t for t, _ in records], np.int64))  # fmt: skip
    want = flow_keys(records)
    for name in FIELDS:
        assert np.array_equal(getattr(got, name), getattr(want, name)), name

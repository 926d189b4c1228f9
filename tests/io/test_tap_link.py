"""The inter-process wire of ``wire --processes 2``: batches of frames cross a socket pair
intact and in order, as one message each; the messages waiting when the receiver wakes
make one receive DPC up to the link's budget (whole messages only); an oversized batch is
split, never truncated; a full link drops and counts instead of blocking; a malformed
message is an error naming its size, after the whole messages before it were handed on.
No root needed (a plain socket pair)."""

from __future__ import annotations

import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ndis_offload.errors import BackendError
from ndis_offload.io.tap.link import DPC_BUDGET, MAX_MESSAGE, ControlPipe, WireLink, pair


def _drain(link: WireLink) -> list[list[bytes]]:
    got: list[list[bytes]] = []
    link.receive(lambda frames: got.append([bytes(f) for f in frames]))
    return got


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.binary(min_size=0, max_size=1600), min_size=1, max_size=50), max_size=6)
)
def test_batches_cross_intact_and_in_order(batches: list[list[bytes]]) -> None:
    a, b, ca, cb = pair()
    try:
        for batch in batches:
            assert a.send(batch)
        got = _drain(b)
        assert [f for dpc in got for f in dpc] == [f for batch in batches for f in batch]
        assert len(got) == (1 if batches else 0)  # all of it waiting: one DPC (< budget)
        assert a.dropped_frames == 0 and not b.closed
    finally:
        for end in (a, b, ca, cb):
            end.close()


@settings(max_examples=40, deadline=None)
@given(
    st.integers(min_value=1, max_value=20_000),
    st.lists(st.lists(st.binary(min_size=0, max_size=3000), min_size=1, max_size=8), max_size=12),
)
def test_a_dpc_takes_whole_messages_up_to_the_budget(
    budget: int, batches: list[list[bytes]]
) -> None:
    x, y = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    a, b = WireLink(x), WireLink(y, budget=budget)
    try:
        for batch in batches:
            assert a.send(batch)
        got = _drain(b)
        assert [f for dpc in got for f in dpc] == [f for batch in batches for f in batch]
        # replay the budget rule: messages join a DPC while it holds fewer than budget bytes
        expected: list[list[bytes]] = []
        size = budget
        for batch in batches:
            if size >= budget:
                expected.append([])
                size = 0
            expected[-1] += batch
            size += 4 + 4 * len(batch) + sum(map(len, batch))
        assert got == expected
    finally:
        a.close()
        b.close()


def test_a_busy_receiver_gets_bigger_dpcs() -> None:
    """Four 64 KB sends cut to the MTU, waiting together: one DPC (the default budget)."""
    a, b, ca, cb = pair()
    try:
        sends = [[bytes([k]) * 1514] * 45 for k in range(4)]
        for frames in sends:
            assert a.send(frames)
        assert 3 * (4 + 4 * 45 + 45 * 1514) < DPC_BUDGET  # the fourth starts within it
        got = _drain(b)
        assert len(got) == 1 and len(got[0]) == 180
    finally:
        for end in (a, b, ca, cb):
            end.close()


def test_an_oversized_batch_is_split_not_truncated() -> None:
    a, b, ca, cb = pair()
    try:
        frames = [bytes([i % 256]) * 65000 for i in range(MAX_MESSAGE // 65000 + 2)]
        assert sum(map(len, frames)) > MAX_MESSAGE
        assert a.send(frames)
        b.budget = 1  # a DPC per message: the split shows
        got = _drain(b)
        assert len(got) > 1 and [f for batch in got for f in batch] == frames
    finally:
        for end in (a, b, ca, cb):
            end.close()


def test_a_batch_larger_than_the_socket_buffer_is_split() -> None:
    a, b, ca, cb = pair()
    try:
        a.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)  # the kernel doubles it
        frames = [bytes([i]) * 60000 for i in range(3)]  # 180 KB: one message would not fit
        assert a.send(frames)
        b.budget = 1  # a DPC per message: the split shows
        got = _drain(b)
        assert len(got) > 1 and [f for batch in got for f in batch] == frames
    finally:
        for end in (a, b, ca, cb):
            end.close()


def test_a_full_link_drops_and_counts() -> None:
    a, b, ca, cb = pair()
    try:
        frame = bytes(60000)
        sent = 0
        while a.send([frame]):  # nobody reads: the link fills up
            sent += 1
            assert sent < 10_000
        assert a.dropped_batches == 1 and a.dropped_frames == 1
        got = _drain(b)
        assert [f for dpc in got for f in dpc] == [frame] * sent  # what was sent is intact
    finally:
        for end in (a, b, ca, cb):
            end.close()


def test_closed_peer_and_malformed_message() -> None:
    a, b, ca, cb = pair()
    try:
        assert a.send([b"whole"])
        a.sock.send(b"\xff\xff\x00\x00")  # claims 65535 frames in 4 bytes
        got: list[list[bytes]] = []
        with pytest.raises(BackendError, match="4 bytes is malformed"):
            b.receive(lambda frames: got.append([bytes(f) for f in frames]))
        assert got == [[b"whole"]]  # the message before it was handed on
        a.sock.send(b"\x01\x00")  # shorter than its count
        with pytest.raises(BackendError, match="2 bytes is malformed"):
            _drain(b)
        a.close()
        assert _drain(b) == [] and b.closed
    finally:
        for end in (b, ca, cb):
            end.close()


def test_control_pipe_round_trip() -> None:
    x, y = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    parent, child = ControlPipe(x), ControlPipe(y)
    try:
        parent.sock.sendall(b'{"op": "stats"}\n')
        assert child.next_request() == {"op": "stats"}
        child.answer({"ok": True})
        assert parent._line() == b'{"ok": true}'
        child.close()
        with pytest.raises(BackendError, match="NIC process"):
            parent.call({"op": "caps"})
    finally:
        parent.close()

"""A long-running stack (a live TAP NIC polled for statistics) keeps a bounded trace whose
event numbers still count every event; without a limit every event is kept."""

from __future__ import annotations

from ndis_offload.constants.oid import Oid
from ndis_offload.constants.status import NdisStatus
from ndis_offload.stack.core import NdisStack
from ndis_offload.stack.miniport import ReferenceMiniport
from ndis_offload.stack.profiles import get_profile
from ndis_offload.stack.protocol import ProtocolDriver


def polled_stack(limit: int | None, polls: int) -> NdisStack:
    stack = NdisStack(ReferenceMiniport(get_profile("full")), trace_limit=limit)
    stack.bind(ProtocolDriver("tcpip"))
    for _ in range(polls):
        handle = stack.bindings["tcpip"].query(Oid.TCP_OFFLOAD_CURRENT_CONFIG)
        assert handle.status == NdisStatus.SUCCESS
    return stack


def test_trace_is_bounded_and_numbers_keep_counting() -> None:
    bounded = polled_stack(50, 500)
    full = polled_stack(None, 500)
    assert len(full.trace) > 1000
    assert 50 <= len(bounded.trace) <= 100
    # the newest events are kept, numbered as in the unbounded trace
    kept = [(e.seq, e.kind, e.what) for e in bounded.trace]
    assert kept == [(e.seq, e.kind, e.what) for e in full.trace[-len(kept) :]]


def test_without_a_limit_every_event_is_kept_in_order() -> None:
    stack = polled_stack(None, 10)
    assert [e.seq for e in stack.trace] == list(range(1, len(stack.trace) + 1))

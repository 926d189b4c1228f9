"""What an RSC miniport counts for ``OID_TCP_RSC_STATISTICS`` (``network/oid-tcp-rsc-
statistics``): per finalized SCU (``CoalescedSegCount > 0``) ``CoalescedPkts`` += its
segments, ``CoalescedOctets`` += their TCP payload, ``CoalesceEvents`` += 1; ``Aborts`` =
every exception but E7 (``RscCoalescer.exceptions``, E1 hardware resources included)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ndis_offload.engine.rsc_rules import ABORT_EXCEPTIONS
from ndis_offload.engine.rsc_unit import CoalescedFrame
from ndis_offload.packet.headers import parse_frame


@dataclass
class RscStatistics:
    """The counters of the SCUs a coalescer indicated (the ``NDIS_RSC_STATISTICS_INFO``
    member names). A segment indicated alone (``CoalescedSegCount`` 0) counts nothing; the
    pure ACKs merged as window updates are not counted, as ``CoalescedSegCount`` does not
    count them."""

    CoalescedPkts: int = 0
    CoalescedOctets: int = 0
    """TCP payload bytes of the coalesced segments."""
    CoalesceEvents: int = 0
    coalesced_ip_octets: int = 0
    """IP datagram bytes of the SCUs, headers included (what NetKVM adds to
    ``CoalescedOctets``: ``PacketInfo->L2PayloadLen``)."""

    def account(self, item: CoalescedFrame) -> None:
        """Count ``item`` if it is an SCU."""
        count = item.rsc.CoalescedSegCount
        if not count:
            return
        layout = parse_frame(item.frame)
        self.CoalescedPkts += count
        self.CoalescedOctets += layout.payload_len
        self.CoalesceEvents += 1
        self.coalesced_ip_octets += layout.ip_end - layout.l3_offset


def rsc_aborts(exceptions: Sequence[int]) -> int:
    """``Aborts``: the exceptions met, E7 (the IP datagram length) excepted."""
    return sum(exceptions[n] for n in ABORT_EXCEPTIONS)


__all__ = ["RscStatistics", "rsc_aborts"]

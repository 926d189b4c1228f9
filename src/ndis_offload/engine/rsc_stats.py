"""What an RSC miniport counts for ``OID_TCP_RSC_STATISTICS`` (``network/oid-tcp-rsc-
statistics``): per finalized SCU (``CoalescedSegCount > 0``) ``CoalescedPkts`` += its
segments, ``CoalescedOctets`` += their TCP payload, ``CoalesceEvents`` += 1; ``Aborts`` =
every exception but E7 (``RscCoalescer.exceptions``, E1 hardware resources included)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ndis_offload.engine.rsc_rules import ABORT_EXCEPTIONS
from ndis_offload.engine.rsc_unit import CoalescedFrame

_VLAN_TPIDS = (b"\x81\x00", b"\x88\xa8", b"\x91\x00")


def _sizes(frame: bytes) -> tuple[int, int]:
    """(IP datagram bytes, TCP payload bytes) of an SCU the coalescer built: Ethernet II,
    VLAN tags, IPv4 with a 20-byte header or IPv6 directly followed by TCP (exceptions E5 /
    E6 keep every other shape out of an SCU)."""
    l3 = 12
    while frame[l3 : l3 + 2] in _VLAN_TPIDS:
        l3 += 4
    l3 += 2
    if frame[l3] >> 4 == 4:
        datagram = int.from_bytes(frame[l3 + 2 : l3 + 4])
        l4 = l3 + (frame[l3] & 0xF) * 4
    else:
        datagram = 40 + int.from_bytes(frame[l3 + 4 : l3 + 6])
        l4 = l3 + 40
    return datagram, datagram - (l4 - l3) - (frame[l4 + 12] >> 4) * 4


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
        datagram, payload = _sizes(item.frame)
        self.CoalescedPkts += count
        self.CoalescedOctets += payload
        self.CoalesceEvents += 1
        self.coalesced_ip_octets += datagram


def rsc_aborts(exceptions: Sequence[int]) -> int:
    """``Aborts``: the exceptions met, E7 (the IP datagram length) excepted."""
    return sum(exceptions[n] for n in ABORT_EXCEPTIONS)


__all__ = ["RscStatistics", "rsc_aborts"]

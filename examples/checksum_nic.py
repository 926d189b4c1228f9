"""A custom miniport run through the conformance battery.

``ChecksumNic`` keeps the reference (documented) control path and plugs in a send path of
its own for checksum offload: it decides from the NBL's info word and the current
configuration, and inserts the checksums itself; segmentation (LSO, USO) still goes to the
reference's engine path. Run it with::

    PYTHONPATH=examples ndis-offload conformance --miniport checksum_nic:ChecksumNic
    python3 examples/checksum_nic.py

``docs/writing-a-miniport.md`` describes the contract and every hook.
"""

from __future__ import annotations

from collections.abc import Sequence

from ndis_offload import (
    NdisStatus,
    NetBufferList,
    PacketError,
    ReferenceMiniport,
    SendCompletion,
)
from ndis_offload.engine import transmit_checksum
from ndis_offload.structs.nbl_info import NdisTcpIpChecksumNetBufferListInfoTransmit as TxInfo


class ChecksumNic(ReferenceMiniport):
    """The documented OID handling; its own transmit checksum path."""

    def send_net_buffer_lists(self, nbls: Sequence[NetBufferList]) -> list[SendCompletion]:
        return [self.send_one(nbl, i) for i, nbl in enumerate(nbls)]

    def send_one(self, nbl: NetBufferList, index: int) -> SendCompletion:
        if nbl.TcpLargeSendNetBufferListInfo or nbl.UdpSegmentationOffloadInfo:
            return self.datapath.send(nbl, index=index)  # segmentation: the reference's
        info = TxInfo.from_int(nbl.TcpIpChecksumNetBufferListInfo)
        if not (info.IsIPv4 or info.IsIPv6):  # no checksum work asked (nblchecksum)
            return SendCompletion(NdisStatus.SUCCESS, [bytes(nbl.frame)])
        ip = "4" if info.IsIPv4 else "6"
        wanted = [
            feature
            for feature, asked in (
                ("ip4_tx", info.IpHeaderChecksum and info.IsIPv4),
                (f"tcp{ip}_tx", info.TcpChecksum),
                (f"udp{ip}_tx", info.UdpChecksum),
            )
            if asked
        ]
        if any(feature not in self.current_features for feature in wanted):
            return SendCompletion(NdisStatus.FAILURE, detail="checksum offload is off")
        try:
            frame = transmit_checksum(nbl.frame, info) if wanted else bytes(nbl.frame)
        except PacketError as err:  # a malformed frame fails this NBL only
            return SendCompletion(err.status, detail=str(err.for_frame(index)))
        return SendCompletion(NdisStatus.SUCCESS, [frame])


if __name__ == "__main__":
    from ndis_offload.cli.main import main

    raise SystemExit(main(["conformance", "--miniport", "checksum_nic:ChecksumNic"]))

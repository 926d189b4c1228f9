"""A custom miniport run through the conformance battery.

``ChecksumNic`` keeps the reference (documented) control path and brings its own data path:
it inserts transmit checksums itself and has no segmentation offload. Run it with::

    PYTHONPATH=examples ndis-offload conformance --miniport checksum_nic:ChecksumNic
    python3 examples/checksum_nic.py

``docs/writing-a-miniport.md`` describes the contract and every hook.
"""

from __future__ import annotations

from collections.abc import Sequence

from ndis_offload import NdisStatus, NetBufferList, ReferenceMiniport, SendCompletion
from ndis_offload.engine import transmit_checksum
from ndis_offload.structs.nbl_info import NdisTcpIpChecksumNetBufferListInfoTransmit as TxInfo


class ChecksumNic(ReferenceMiniport):
    """The documented OID handling; a send path of its own that does checksums only."""

    def send_net_buffer_lists(self, nbls: Sequence[NetBufferList]) -> list[SendCompletion]:
        on = self.current_features
        out = []
        for nbl in nbls:
            if nbl.TcpLargeSendNetBufferListInfo or nbl.UdpSegmentationOffloadInfo:
                out.append(SendCompletion(NdisStatus.FAILURE, detail="no segmentation offload"))
                continue
            info = TxInfo.from_int(nbl.TcpIpChecksumNetBufferListInfo)
            ip = "4" if info.IsIPv4 else "6"
            wanted = {
                "ip4_tx": info.IpHeaderChecksum,
                f"tcp{ip}_tx": info.TcpChecksum,
                f"udp{ip}_tx": info.UdpChecksum,
            }
            if any(asked and feature not in on for feature, asked in wanted.items()):
                out.append(SendCompletion(NdisStatus.FAILURE, detail="checksum offload is off"))
            elif any(wanted.values()):
                out.append(SendCompletion(NdisStatus.SUCCESS, [transmit_checksum(nbl.frame, info)]))
            else:
                out.append(SendCompletion(NdisStatus.SUCCESS, [bytes(nbl.frame)]))
        return out


if __name__ == "__main__":
    from ndis_offload.lab.conformance import run_battery

    results = run_battery(ChecksumNic)
    for result in results:
        print(f"{'PASS' if result.passed else 'FAIL'}  {result.name}: {result.observed}")
    raise SystemExit(0 if all(r.passed for r in results) else 1)

"""A custom miniport run through the conformance battery.

``ChecksumNic`` keeps the reference (documented) control path and brings its own data path:
it inserts transmit checksums itself and has no segmentation offload. Run it with::

    PYTHONPATH=examples ndis-offload conformance --miniport checksum_nic:ChecksumNic
    python3 examples/checksum_nic.py

``docs/writing-a-miniport.md`` describes the contract and every hook.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ndis_offload import NdisStatus, NetBufferList, ReferenceMiniport, SendCompletion
from ndis_offload.engine import transmit_checksum
from ndis_offload.stack.profiles import CHECKSUM_ONLY, AdapterProfile
from ndis_offload.structs.nbl_info import NdisTcpIpChecksumNetBufferListInfoTransmit as TxInfo


class ChecksumNic(ReferenceMiniport):
    """The documented OID handling; a send path of its own that does checksums only, so it
    advertises checksum offloads only (a miniport must not report an offload it does not do:
    the battery sends traffic after every set and compares)."""

    def __init__(self, profile: AdapterProfile, **kw: Any) -> None:
        super().__init__(replace(profile, hardware=profile.hardware & CHECKSUM_ONLY), **kw)

    def send_net_buffer_lists(self, nbls: Sequence[NetBufferList]) -> list[SendCompletion]:
        on = self.current_features
        out = []
        for nbl in nbls:
            if nbl.TcpLargeSendNetBufferListInfo or nbl.UdpSegmentationOffloadInfo:
                out.append(SendCompletion(NdisStatus.FAILURE, detail="no segmentation offload"))
                continue
            info = TxInfo.from_int(nbl.TcpIpChecksumNetBufferListInfo)
            if not info.IsIPv4 and not info.IsIPv6:  # offloading-checksum-tasks: no work
                out.append(SendCompletion(NdisStatus.SUCCESS, [bytes(nbl.frame)]))
                continue
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
    import random

    from ndis_offload.lab.conformance import run_battery

    report = run_battery(ChecksumNic, lambda name: random.Random(f"0:{name}"))
    for result in report.results:
        print(f"{result.status.value.upper():7} {result.name}: {result.seen}")
    raise SystemExit(1 if report.failed else 0)

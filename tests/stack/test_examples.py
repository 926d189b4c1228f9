"""examples/checksum_nic.py: a custom miniport (own data path) through the battery and NDIS."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest
from harness import StackHarness
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from ndis_offload.constants.status import NdisStatus
from ndis_offload.engine import transmit_checksum
from ndis_offload.stack.datapath import NetBufferList, SendCompletion
from ndis_offload.stack.features import features_of
from ndis_offload.stack.profiles import get_profile
from ndis_offload.structs import (
    NdisLsoV2Transmit,
    NdisOffload,
    NdisTcpIpChecksumNetBufferListInfoTransmit,
)

EXAMPLES = Path(__file__).parents[2] / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def udp_nbl() -> NetBufferList:
    frame = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5, dport=6, chksum=0)
                  / b"payload")  # fmt: skip
    info = NdisTcpIpChecksumNetBufferListInfoTransmit(IsIPv4=1, UdpChecksum=1, TcpHeaderOffset=34)
    return NetBufferList(frame, TcpIpChecksumNetBufferListInfo=info.to_int())


def udp_checksum_ok(frame: bytes) -> bool:
    parsed = Ether(frame)
    sent = int(parsed[UDP].chksum)
    del parsed[UDP].chksum
    return sent != 0 and int(Ether(bytes(parsed))[UDP].chksum) == sent  # scapy recomputes


def test_the_example_data_path_runs_behind_ndis_and_obeys_the_configuration() -> None:
    nic = load("checksum_nic").ChecksumNic
    h = StackHarness(miniport=nic(get_profile("full")))
    giant = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(flags="A") / (b"x" * 3000))
    word = NdisLsoV2Transmit(MSS=1000, TcpHeaderOffset=34).to_int()
    lso = NetBufferList(giant, TcpLargeSendNetBufferListInfo=word)
    bad = NetBufferList(b"\x00" * 20, udp_nbl().TcpIpChecksumNetBufferListInfo)
    done = h.stack.send([udp_nbl(), lso, bad])
    assert done[0].status == NdisStatus.SUCCESS and udp_checksum_ok(done[0].frames[0])
    assert done[1].status == NdisStatus.SUCCESS and len(done[1].frames) == 3  # the engine's
    assert done[2].status == NdisStatus.INVALID_PARAMETER and "frame 2" in done[2].detail
    h.protocols["tcpip"].disable(ipv4=True, ipv6=False)
    assert h.stack.send([udp_nbl()])[0].status == NdisStatus.FAILURE


def test_a_planted_data_path_defect_is_visible_from_outside() -> None:
    """A send path that ignores the current configuration still offloads after OFF: what the
    miniport indicated (no IPv4 checksum) and what it does on the wire disagree."""
    nic = load("checksum_nic").ChecksumNic

    class IgnoresOff(nic):  # type: ignore[misc,valid-type]
        def send_net_buffer_lists(self, nbls: Sequence[NetBufferList]) -> list[SendCompletion]:
            out = []
            for nbl in nbls:  # the defect: never looks at the current configuration
                info = NdisTcpIpChecksumNetBufferListInfoTransmit.from_int(
                    nbl.TcpIpChecksumNetBufferListInfo
                )
                out.append(SendCompletion(NdisStatus.SUCCESS, [transmit_checksum(nbl.frame, info)]))
            return out

    for cls, caught in ((nic, False), (IgnoresOff, True)):
        h = StackHarness(miniport=cls(get_profile("full")))
        h.protocols["tcpip"].disable()
        indicated_off = "udp4_tx" not in features_of(h.stack.config or NdisOffload())
        done = h.stack.send([udp_nbl()])[0]
        assert indicated_off
        assert (done.status == NdisStatus.SUCCESS) is caught


def test_the_example_passes_the_battery(monkeypatch: pytest.MonkeyPatch) -> None:
    """``ndis-offload conformance --miniport checksum_nic:ChecksumNic`` exits 0: every
    check passes."""
    from ndis_offload.cli.main import main

    monkeypatch.syspath_prepend(str(EXAMPLES))
    sys.modules.pop("checksum_nic", None)
    assert main(["conformance", "--miniport", "checksum_nic:ChecksumNic"]) == 0

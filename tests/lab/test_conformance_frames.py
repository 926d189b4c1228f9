"""The battery's own frame builder and verifiers, checked against scapy (an independent
dissector) and the NDIS keyword mapping against the registry page
(https://learn.microsoft.com/windows-hardware/drivers/network/using-registry-values-to-enable-and-disable-task-offloading)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from ndis_offload.lab.conformance import frames as fr
from ndis_offload.lab.conformance.oids import parameters
from ndis_offload.lab.conformance.rig import keywords_written


@given(
    version=st.sampled_from([4, 6]),
    tcp=st.booleans(),
    size=st.integers(0, 300),
    tcp_opt=st.sampled_from(sorted(fr.TCP_OPTIONS)),
    ip_opt=st.sampled_from(["none", "router-alert", "hop-by-hop", "destination-16"]),
    seq=st.integers(0, 2**32 - 1),
    flags=st.integers(0, 255),
)
def test_built_frames_verify_with_scapy(version: int, tcp: bool, size: int, tcp_opt: str,
                                        ip_opt: str, seq: int, flags: int) -> None:  # fmt: skip
    table = fr.IP_OPTIONS if version == 4 else fr.IPV6_EXTENSIONS
    options = table.get(ip_opt, b"")
    l4: fr.Tcp | fr.Udp = (
        fr.Tcp(seq=seq, flags=flags, options=fr.TCP_OPTIONS[tcp_opt]) if tcp else fr.Udp()
    )
    payload = fr.payload_bytes(size)
    frame = fr.build(version, l4, payload, ip_options=options)
    lay = fr.layout(frame)
    assert fr.l4_checksum_ok(frame, lay)
    assert version == 6 or fr.ipv4_header_ok(frame, lay)
    parsed = Ether(frame)
    layer = parsed[TCP] if tcp else parsed[UDP]
    ip_layer = parsed[IP] if version == 4 else parsed[IPv6]
    sent = layer.chksum
    del layer.chksum
    if version == 4:
        ip_sum = ip_layer.chksum
        del ip_layer.chksum
    rebuilt = Ether(bytes(parsed))
    assert (rebuilt[TCP] if tcp else rebuilt[UDP]).chksum == sent
    if version == 4:
        assert rebuilt[IP].chksum == ip_sum
    assert bytes(layer.payload) == payload
    if tcp:
        view = fr.tcp_of(frame, lay)
        assert (view.seq, view.flags, view.options, view.payload) == (
            seq, flags, fr.TCP_OPTIONS[tcp_opt], payload)  # fmt: skip


def test_a_corrupted_frame_does_not_verify() -> None:
    frame = bytearray(fr.build(4, fr.Tcp(), fr.payload_bytes(50)))
    frame[-1] ^= 1
    assert not fr.l4_checksum_ok(bytes(frame), fr.layout(bytes(frame)))


def test_the_pseudo_header_seed_is_the_folded_sum_with_length() -> None:
    frame = fr.build(4, fr.Udp(), b"abc", l4_checksum="pseudo")
    lay = fr.layout(frame)
    # RFC 768 pseudo-header: src, dst, zero+protocol, UDP length (11)
    words = [0xC000, 0x0201, 0xC633, 0x6402, 17, 11]
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    assert fr.l4_checksum_field(frame, lay) == total


def test_ndis_writes_keywords_as_the_registry_page_says() -> None:
    registry = {"*TCPChecksumOffloadIPv4": 3, "*LsoV2IPv4": 1, "*RscIPv4": 1}
    # TX_ENABLED_RX_DISABLED -> 1 (Tx); LSOV2_DISABLED -> 0; RSC NO_CHANGE -> untouched
    p = parameters({"TCPIPv4Checksum": 2, "LsoV2IPv4": 1})
    assert keywords_written(p, registry) == {
        "*TCPChecksumOffloadIPv4": 1, "*LsoV2IPv4": 0, "*RscIPv4": 1}  # fmt: skip
    p = parameters({"TCPIPv4Checksum": 3, "UdpSegmentation.IPv6": 2, "RscIPv4": 1}, revision=2)
    # revision 2 has no RscIPv4 / UdpSegmentation: only the checksum field is written
    assert keywords_written(p, registry)["*TCPChecksumOffloadIPv4"] == 2
    assert keywords_written(p, registry)["*RscIPv4"] == 1 and "*UsoIPv6" not in keywords_written(
        p, registry
    )

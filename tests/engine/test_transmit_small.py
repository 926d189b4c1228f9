"""The small-frame checksum path of ``transmit_checksum`` (ACKs) against the general path
(parse + insert), and the general path's output against scapy's checksums."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet

from ndis_offload.engine.transmit import (
    _SMALL_FRAME,
    _checksum_small_tcp,
    _transmit_checksum,
    transmit_checksum,
)
from ndis_offload.errors import PacketError
from ndis_offload.structs.nbl_info import NdisTcpIpChecksumNetBufferListInfoTransmit

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def _frame(v6: bool, payload: bytes, options: int, src: int, pad: int) -> bytes:
    tcp = TCP(sport=5201, dport=40000, flags="A", options=[("NOP", None)] * options)
    ip: Packet
    if v6:
        ip = IPv6(src=f"2001:db8::{src & 0xFFFF:x}", dst="2001:db8::2")
    else:
        ip = IP(src=f"10.{src >> 16 & 255}.{src >> 8 & 255}.{src & 255}", dst="10.0.0.2")
    return bytes(ETH / ip / tcp / payload) + bytes(pad)


def _info(
    v6: bool, ip: bool, tcp: bool, udp: bool, offset: int
) -> NdisTcpIpChecksumNetBufferListInfoTransmit:
    return NdisTcpIpChecksumNetBufferListInfoTransmit(
        IsIPv4=int(not v6), IsIPv6=int(v6), IpHeaderChecksum=int(ip), TcpChecksum=int(tcp),
        UdpChecksum=int(udp), TcpHeaderOffset=offset,
    )  # fmt: skip


def _general(frame: bytes, info: NdisTcpIpChecksumNetBufferListInfoTransmit) -> bytes | str:
    """The general path's bytes, or its error."""
    try:
        return _transmit_checksum(frame, info)
    except PacketError as err:
        return f"error: {err}"


def _public(frame: bytes, info: NdisTcpIpChecksumNetBufferListInfoTransmit) -> bytes | str:
    """``transmit_checksum``'s bytes, or its error."""
    try:
        return transmit_checksum(frame, info)
    except PacketError as err:
        return f"error: {err}"


@settings(max_examples=300, deadline=None)
@given(
    v6=st.booleans(),
    payload=st.binary(max_size=200),
    options=st.integers(0, 12),
    src=st.integers(0, 0xFFFFFF),
    pad=st.integers(0, 8),
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    garbage=st.binary(min_size=4, max_size=4),
    pokes=st.lists(st.tuples(st.integers(0, 80), st.integers(0, 255)), max_size=3),
)
def test_small_path_is_the_general_path(
    v6: bool,
    payload: bytes,
    options: int,
    src: int,
    pad: int,
    flags: tuple[bool, bool, bool],
    garbage: bytes,
    pokes: list[tuple[int, int]],
) -> None:
    """Whenever the small path answers, its bytes are the general path's; it answers every
    well-formed small frame; a frame it declines (mutated headers) goes the general way."""
    ip, tcp, udp = flags
    frame = bytearray(_frame(v6, payload, options, src, pad))
    tcp_at = 54 if v6 else 34
    frame[tcp_at + 16 : tcp_at + 18] = garbage[:2]  # checksum fields: anything on a send
    if not v6:
        frame[24:26] = garbage[2:]
    info = _info(v6, ip, tcp, udp, tcp_at)
    small = _checksum_small_tcp(bytes(frame), ip, tcp, not v6, tcp_at)
    assert (small is not None) == (len(frame) <= _SMALL_FRAME)
    if small is not None:
        assert small == _general(bytes(frame), info)
        if ip and tcp:  # the oracle: scapy recomputes both checksums to the same bytes
            pkt = Ether(small)
            for layer in (IP, TCP):
                if layer in pkt:
                    del pkt[layer].chksum
            assert bytes(Ether(bytes(pkt))) == small
    for at, value in pokes:
        if at < len(frame):
            frame[at] = value
    mutated = bytes(frame)
    small = _checksum_small_tcp(mutated, ip, tcp, not v6, tcp_at)
    if small is not None:
        assert small == _general(mutated, info)
    assert _public(mutated, info) == _general(mutated, info)


def test_small_path_declines_what_the_general_path_rejects() -> None:
    frame = _frame(False, b"ack", 0, 1, 0)
    # a TcpHeaderOffset that does not match: the general path names the mismatch
    assert _checksum_small_tcp(frame, True, True, True, 38) is None
    assert _checksum_small_tcp(frame, True, True, False, 54) is None  # not IPv6
    fragment = bytearray(frame)
    fragment[20] |= 0x20  # MF
    assert _checksum_small_tcp(bytes(fragment), True, True, True, 34) is None
    assert _checksum_small_tcp(frame + bytes(_SMALL_FRAME), True, True, True, 34) is None
    # odd TCP lengths are padded with a zero byte (RFC 1071), both families
    for v6 in (False, True):
        odd = _frame(v6, b"abc", 0, 7, 0)
        at = 54 if v6 else 34
        assert _checksum_small_tcp(odd, True, True, not v6, at) == _general(
            odd, _info(v6, True, True, False, at)
        )

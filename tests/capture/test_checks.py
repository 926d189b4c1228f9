"""The vectorized chunk checks equal the scalar path and scapy's own checksum verdicts."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Packet

from ndis_offload.capture.analyze import Analyzer, Diagnosis, syn_mss
from ndis_offload.capture.checks import Checks, Kind, Sum, check_chunk
from ndis_offload.packet.checksum import pseudo_header_sum_ipv4, pseudo_header_sum_ipv6

V4: dict[str, Any] = {"src": "192.0.2.1", "dst": "198.51.100.2"}
V6: dict[str, Any] = {"src": "2001:db8::1", "dst": "2001:db8::2"}
MAC: dict[str, Any] = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}


def partial_v4(payload_len: int, with_len: bool = True) -> int:
    src, dst = bytes([192, 0, 2, 1]), bytes([198, 51, 100, 2])
    return pseudo_header_sum_ipv4(src, dst, 6, 20 + payload_len if with_len else None)


def sample_frames() -> list[bytes]:
    data = b"p" * 300
    plen = len(data)
    src6 = bytes.fromhex("20010db8000000000000000000000001")
    dst6 = bytes.fromhex("20010db8000000000000000000000002")
    frames: list[Packet] = [
        Ether(**MAC) / IP(**V4) / TCP(flags="A") / data,
        Ether(**MAC) / IP(**V4, chksum=0) / TCP(flags="A", chksum=partial_v4(plen)) / data,
        Ether(**MAC) / IP(**V4) / TCP(flags="A", chksum=partial_v4(plen, False)) / data,
        Ether(**MAC) / Dot1Q(vlan=5) / IP(**V4) / TCP(flags="A", chksum=partial_v4(plen)) / data,
        Ether(**MAC) / IPv6(**V6) / UDP(sport=1, dport=2, chksum=0) / data,
        Ether(**MAC)
        / IPv6(**V6)
        / IPv6ExtHdrDestOpt()
        / TCP(flags="A", chksum=pseudo_header_sum_ipv6(src6, dst6, 6, 20 + plen))
        / data,
        Ether(**MAC) / IPv6(**V6) / TCP(flags="A", chksum=0xBEEF) / data,
        Ether(**MAC) / IP(**V4) / UDP(sport=5, dport=6, chksum=0) / data,
        Ether(**MAC) / IP(**V4) / UDP(sport=5, dport=6, chksum=0x1234) / data,
        Ether(**MAC) / IP(**V4, flags="MF") / UDP(sport=5, dport=6) / data,
        Ether(**MAC) / ARP(),
    ]
    out = [bytes(f) for f in frames]
    out.append(out[0][:30])  # a runt IPv4 frame: malformed
    return out


SAMPLE = sample_frames()


def chunk_of(frames: list[bytes], vectorized: bool) -> Checks:
    buffer = b"".join(frames)
    lengths = np.array([len(f) for f in frames], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    links = np.ones(len(frames), dtype=np.int64)
    return check_chunk(buffer, offsets, lengths, lengths, links, vectorized=vectorized)


def assert_same(a: Checks, b: Checks) -> None:
    for name in ("kind", "ip_state", "l4_state", "ip_len", "ip_field", "l4_field", "flow"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    fixable = a.l4_field >= 0
    assert np.array_equal(a.l4_value[fixable], b.l4_value[fixable])
    fixable = a.ip_field >= 0
    assert np.array_equal(a.ip_value[fixable], b.ip_value[fixable])


def test_vectorized_equals_scalar_and_diagnoses() -> None:
    frames = SAMPLE
    fast, slow = chunk_of(frames, True), chunk_of(frames, False)
    assert_same(fast, slow)
    assert fast.slow < len(frames)
    expect_l4 = [Sum.OK, Sum.OFFLOAD, Sum.OFFLOAD, Sum.OFFLOAD, Sum.OFFLOAD, Sum.OFFLOAD,
                 Sum.WRONG, Sum.NONE, Sum.WRONG, Sum.NONE, Sum.NONE, Sum.NONE]  # fmt: skip
    assert fast.l4_state.tolist() == [int(s) for s in expect_l4]
    assert fast.ip_state[1] == Sum.OFFLOAD
    assert fast.kind[10] == Kind.OTHER and fast.kind[11] == Kind.MALFORMED
    diag = Analyzer().feed(b"".join(frames), fast, np.array([len(f) for f in frames]), 0)
    assert diag[0] == Diagnosis.CORRECT and diag[1] == Diagnosis.OFFLOAD
    assert diag[6] == Diagnosis.WRONG and diag[11] == Diagnosis.MALFORMED


@given(st.binary(min_size=0, max_size=120), st.integers(0, 11), st.integers(0, 400))
def test_garbage_never_crashes_and_paths_agree(noise: bytes, which: int, cut: int) -> None:
    frames = SAMPLE
    mangled = bytearray(frames[which][:cut] if cut < len(frames[which]) else frames[which])
    mangled[14 : 14 + len(noise)] = noise
    sample = [bytes(mangled), frames[0]]
    assert_same(chunk_of(sample, True), chunk_of(sample, False))


def test_syn_mss_option() -> None:
    syn = bytes(TCP(flags="S", options=[("NOP", None), ("MSS", 1380), ("WScale", 7)]))
    assert syn_mss(syn, 0, (syn[12] >> 4) * 4) == 1380
    assert syn_mss(bytes(TCP(flags="S")), 0, 20) is None
    assert struct.calcsize("!H") == 2

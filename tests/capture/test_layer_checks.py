"""Per-layer checks: tunnels inner and outer, cut frames, malformed UDP lengths, direction
flags, raw IP links, ``fix`` of inner and outer checksums."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from frame_recipes import MAC, TRANSPORTS, inner_ip, ip4, link, tunnel
from ndis_offload.capture.analyze import Analyzer, Diagnosis
from ndis_offload.capture.checks import Checks, Kind, Sum, check_chunk, layer_names
from ndis_offload.capture.report import frame_records
from ndis_offload.capture.rewrite import fix_chunk
from ndis_offload.io.pcap_jobs import Options, verify
from ndis_offload.packet.checksum import pseudo_header_sum_ipv4
from ndis_offload.packet.locate import Layer, locate
from ndis_offload.packet.proto import LINKTYPE_ETHERNET


def run(records: list[tuple[bytes, int]], linktype: int = LINKTYPE_ETHERNET) -> Checks:
    buffer = b"".join(data for data, _ in records)
    caps = np.array([len(d) for d, _ in records], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(caps)[:-1]]).astype(np.int64)
    wires = np.array([w for _, w in records], dtype=np.int64)
    links = np.full(len(records), linktype, dtype=np.int64)
    fast = check_chunk(buffer, offsets, caps, wires, links)
    slow = check_chunk(buffer, offsets, caps, wires, links, vectorized=False)
    for name in ("kind", "layer_state", "layer_field", "layer_value", "flow", "zero_length"):
        assert np.array_equal(getattr(fast, name), getattr(slow, name)), name
    # What checksum completion reads is the same without the per-frame analysis.
    lean = check_chunk(buffer, offsets, caps, wires, links, analysis=False)
    for name in ("kind", "layer_state", "layer_field", "layer_value", "zero_length"):
        assert np.array_equal(getattr(fast, name), getattr(lean, name)), name
    assert {r: e.reason for r, e in lean.errors.items()} == {
        r: e.reason for r, e in fast.errors.items()
    }
    return fast


def states(checks: Checks, row: int) -> list[tuple[str, str]]:
    names = layer_names(checks.loc, row)
    return [(names[c], Sum(int(checks.layer_state[row, c])).name) for c in range(len(names))
            if checks.layer_state[row, c] != Sum.NONE]  # fmt: skip


def field_of(data: bytes, kind: Layer, nth: int) -> int:
    hops = [h for h in locate(data).hops if h.kind == kind]
    return hops[nth].offset + {Layer.IPV4: 10, Layer.TCP: 16, Layer.UDP: 6}[kind]


def test_tunnel_layers_are_checked_inner_and_outer() -> None:
    _, good = link("eth", tunnel("vxlan", inner_ip("ip4", TRANSPORTS["tcp"](100)), "ip4"))
    bad = bytearray(good)
    at = field_of(good, Layer.TCP, 0)
    bad[at : at + 2] = b"\xde\xad"
    checks = run([(good, len(good)), (bytes(bad), len(bad))])
    assert states(checks, 0) == [("IPv4", "OK"), ("UDP", "OK"), ("inner IPv4", "OK"),
                                 ("inner TCP", "OK")]  # fmt: skip
    # The outer UDP checksum covers the inner TCP checksum field: both are wrong now.
    assert states(checks, 1) == [("IPv4", "OK"), ("UDP", "WRONG"), ("inner IPv4", "OK"),
                                 ("inner TCP", "WRONG")]  # fmt: skip
    fixed, count = fix_chunk(b"".join([good, bytes(bad)]), checks, everything=True)
    # Fixing the inner checksum restores the outer one by itself: one field changes.
    assert count == 1 and bytes(fixed) == good + good


def test_fix_completes_inner_first_and_keeps_a_correct_outer_udp_correct() -> None:
    """A tunnelled GSO-style frame: inner TCP holds the pseudo-header sum, outer UDP was
    correct over those bytes; ``fix`` (offload only) completes the inner checksum and
    updates the outer one by the change (RFC 1624)."""
    _, good = link("eth", tunnel("geneve", inner_ip("ip4", TRANSPORTS["tcp"](300)), "ip4"))
    partial = bytearray(good)
    at = field_of(good, Layer.TCP, 0)
    inner = [h for h in locate(good).hops if h.kind == Layer.IPV4][1]
    tcp_len = inner.end - (inner.offset + inner.hlen)
    src, dst = (
        good[inner.offset + 12 : inner.offset + 16],
        good[inner.offset + 16 : inner.offset + 20],
    )
    struct.pack_into("!H", partial, at, pseudo_header_sum_ipv4(src, dst, 6, tcp_len))
    outer_udp = [h for h in locate(good).hops if h.kind == Layer.UDP][0]
    partial[outer_udp.offset + 6 : outer_udp.offset + 8] = b"\0\0"
    # recompute the outer UDP checksum over the partial frame with scapy, as a NIC would not
    frame = Ether(bytes(partial))
    del frame[UDP].chksum
    frame = Ether(bytes(frame))
    partial = bytearray(bytes(frame))
    checks = run([(bytes(partial), len(partial))])
    assert dict(states(checks, 0))["inner TCP"] == "OFFLOAD"
    assert dict(states(checks, 0))["UDP"] == "OK"
    fixed, count = fix_chunk(bytes(partial), checks)
    assert count == 2 and bytes(fixed) == good


def test_cut_frames_check_what_is_captured() -> None:
    frame = bytearray(bytes(Ether(**MAC) / ip4() / UDP() / (b"x" * 200)))
    frame[24:26] = b"\x12\x34"  # a bad IPv4 header checksum
    cut = bytes(frame[:60])
    checks = run([(cut, len(frame)), (bytes(frame), len(frame))])
    assert states(checks, 0) == [("IPv4", "WRONG"), ("UDP", "CUT")]
    diag = Analyzer().feed(cut, checks, np.array([60, len(frame)]), 0)
    assert diag[0] == Diagnosis.WRONG
    good = bytes(Ether(**MAC) / ip4() / UDP() / (b"x" * 200))
    checks = run([(good[:60], len(good))])
    assert states(checks, 0) == [("IPv4", "OK"), ("UDP", "CUT")]
    diag = Analyzer().feed(good[:60], checks, np.array([60]), 0)
    assert diag[0] == Diagnosis.SNAPPED


def test_udp_length_beyond_the_ip_payload_is_malformed() -> None:
    frame = bytearray(bytes(Ether(**MAC) / ip4() / UDP() / b"abcd"))
    frame[38:40] = (100).to_bytes(2, "big")
    checks = run([(bytes(frame), len(frame))])
    assert checks.kind[0] == Kind.MALFORMED
    assert "UDP length 100" in checks.errors[0].reason and checks.errors[0].offset == 38


def test_oversized_wrong_checksum_is_an_error_not_a_coalesced_receive() -> None:
    big = bytearray(bytes(Ether(**MAC) / ip4() / TCP(flags="A") / (b"y" * 8000)))
    big[50:52] = b"\xab\xcd"
    checks = run([(bytes(big), len(big))])
    diag = Analyzer().feed(bytes(big), checks, np.array([len(big)]), 0)
    assert diag[0] == Diagnosis.WRONG


def test_icmp_with_zero_ip_length_is_not_a_send() -> None:
    frame = bytearray(bytes(Ether(**MAC) / IP(src="10.0.0.1", dst="10.0.0.2", proto=1)
                            / (b"\x08\x00\xf7\xff" + bytes(2000))))  # fmt: skip
    frame[16:18] = b"\0\0"
    checks = run([(bytes(frame), len(frame))])
    assert not checks.zero_length[0]
    tcp = bytearray(bytes(Ether(**MAC) / ip4() / TCP() / bytes(2000)))
    tcp[16:18] = b"\0\0"
    assert run([(bytes(tcp), len(tcp))]).zero_length[0]


def pcapng(frames: list[tuple[bytes, int | None]]) -> bytes:
    """SHB + IDB (Ethernet) + one EPB per frame, with an ``epb_flags`` direction if given."""

    def block(btype: int, body: bytes) -> bytes:
        body += bytes(-len(body) % 4)
        size = 12 + len(body)
        return struct.pack("<II", btype, size) + body + struct.pack("<I", size)

    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack("<HHI", 1, 0, 262144))
    for data, direction in frames:
        opts = b""
        if direction is not None:
            opts = struct.pack("<HHI", 2, 4, direction) + struct.pack("<HH", 0, 0)
        body = struct.pack("<IIIII", 0, 0, 0, len(data), len(data))
        out += block(6, body + data + bytes(-len(data) % 4) + opts)
    return out


def test_pcapng_direction_flags_decide_send_or_receive(tmp_path: Path) -> None:
    big = bytes(Ether(**MAC) / ip4() / TCP(flags="A") / (b"y" * 8000))  # correct checksums
    path = tmp_path / "dir.pcapng"
    path.write_bytes(pcapng([(big, 2), (big, 1), (big, None)]))
    result = verify(path, Options())
    assert result.analyzer.totals[Diagnosis.GIANT] == 1
    assert result.analyzer.totals[Diagnosis.COALESCED] == 2


def test_raw_ip_link_types_and_frame_records() -> None:
    for name in ("raw", "rawip"):
        linktype, data = link(name, inner_ip("ip6", TRANSPORTS["udp"](30)))
        checks = run([(data, len(data))], linktype)
        assert states(checks, 0) == [("UDP", "OK")]
        diag = np.array([Diagnosis.CORRECT], dtype=np.int8)
        (record,) = frame_records(checks, diag, 0)
        assert record["frame"] == 1 and record["diagnosis"] == "correct"
        assert [x["protocol"] for x in record["layers"]] == ["IPv6", "UDP"]
        assert record["layers"][1] == {"protocol": "UDP", "kind": "UDP", "offset": 40,
                                       "checksum_field": 46, "state": "ok"}  # fmt: skip


def test_raw_ip_records_are_segmented_as_raw_ip() -> None:
    from ndis_offload.capture.rewrite import segment_record
    from ndis_offload.packet.proto import LINKTYPE_IPV4, LINKTYPE_RAW

    send = bytes(ip4() / TCP(flags="PA") / (b"s" * 4000))
    for linktype in (LINKTYPE_RAW, LINKTYPE_IPV4):
        frames = segment_record(linktype, send, 1000)
        assert len(frames) == 4
        for frame in frames:
            found = locate(frame, linktype)
            assert [h.kind for h in found.hops] == [Layer.IPV4, Layer.TCP]
            assert IP(frame).len == len(frame) <= 1040


def test_macsec_is_said_to_be_unchecked() -> None:
    from scapy.contrib.macsec import MACsec

    frame = bytes(Ether(**MAC) / MACsec() / (b"\0" * 60))
    checks = run([(frame, len(frame))])
    assert checks.kind[0] == Kind.OTHER
    diag = Analyzer().feed(frame, checks, np.array([len(frame)]), 0)
    assert diag[0] == Diagnosis.UNCHECKED
    (record,) = frame_records(checks, diag, 0)
    assert record["stop"] == "opaque" and "MACsec" in record["reason"]


def test_first_fragment_udp_length_is_the_whole_datagrams() -> None:
    """A first fragment carries the UDP Length of the reassembled datagram (tcpdump's
    afs.pcap): not malformed, and no UDP checksum to check."""
    whole = bytes(Ether(**MAC) / ip4() / UDP(sport=7000, dport=7001) / (b"f" * 3000))
    first = bytearray(whole[:1514])
    first[16:18] = (1500).to_bytes(2, "big")
    first[20:22] = b"\x20\x00"  # MF
    ip = IP(bytes(first[14:]))
    del ip.chksum
    fixed = bytes(first[:14]) + bytes(IP(bytes(ip)))
    checks = run([(fixed, len(fixed))])
    assert checks.kind[0] == Kind.IP
    assert states(checks, 0) == [("IPv4", "OK")]

"""The frame locator: every shape of issue 8, and the batch locator equal to the scalar walk."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.contrib.macsec import MACsec
from scapy.layers.inet import TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether

from frame_recipes import (
    LINKS,
    MAC,
    TRANSPORTS,
    TUNNELS,
    damaged_frames,
    inner_ip,
    ip4,
    link,
    recipe_frames,
    tunnel,
)
from ndis_offload.packet.headers import _plain_tcp
from ndis_offload.packet.locate import (
    F_BAD_LENGTH,
    F_FRAGMENT,
    F_JUMBO,
    F_LATER_FRAGMENT,
    F_ZERO_LENGTH,
    Layer,
    Located,
    Stop,
    locate,
)
from ndis_offload.packet.locate_batch import locate_batch, plain_tcp_rows
from ndis_offload.packet.proto import LINKTYPE_ETHERNET

L = Layer


def kinds(found: Located) -> list[Layer]:
    return [hop.kind for hop in found.hops]


def test_every_tunnel_is_opened_to_the_inner_transport() -> None:
    expect = {
        "vxlan": [L.UDP, L.VXLAN, L.ETHERNET], "geneve": [L.UDP, L.GENEVE],
        "geneve-eth": [L.UDP, L.GENEVE, L.ETHERNET], "gre": [L.GRE], "gre-key": [L.GRE],
        "gre-csum": [L.GRE], "gre-eth": [L.GRE, L.ETHERNET],
        "erspan2": [L.GRE, L.ERSPAN, L.ETHERNET], "erspan3": [L.GRE, L.ERSPAN, L.ETHERNET],
        "ipip": [], "l2tp": [L.UDP, L.L2TP],
    }  # fmt: skip
    assert set(expect) == set(TUNNELS)
    for name, middle in expect.items():
        for outer in ("ip4", "ip6"):
            inner = inner_ip("ip6", TRANSPORTS["tcp"](10))
            linktype, data = link("eth", tunnel(name, inner, outer))
            found = locate(data, linktype)
            outer_kind = L.IPV4 if outer == "ip4" else L.IPV6
            assert kinds(found) == [L.ETHERNET, outer_kind, *middle, L.IPV6, L.TCP], name
            assert found.stop == Stop.END
            tcp = found.hops[-1]
            assert data[tcp.offset + tcp.hlen :] == bytes((i * 7) & 0xFF for i in range(10))


def test_links_vlan_stacks_mpls_llc() -> None:
    heads = {
        "eth": [L.ETHERNET], "vlan": [L.ETHERNET, L.VLAN], "qinq": [L.ETHERNET, L.VLAN],
        "vlan3": [L.ETHERNET, L.VLAN], "mpls": [L.ETHERNET, L.MPLS],
        "llc": [L.ETHERNET, L.LLC_SNAP], "sll": [L.SLL], "sll2": [L.SLL2], "raw": [],
        "rawip": [],
    }  # fmt: skip
    assert set(heads) == set(LINKS)
    for name, head in heads.items():
        linktype, data = link(name, ip4() / UDP() / b"x")
        found = locate(data, linktype)
        assert kinds(found) == [*head, L.IPV4, L.UDP], name
    _, data = link("vlan3", ip4() / TCP())
    eth, vlan = locate(data).hops[:2]
    assert (eth.hlen, vlan.offset, vlan.hlen) == (26, 12, 12)


def test_stops() -> None:
    arp = locate(bytes(Ether() / ARP()))
    assert arp.stop == Stop.NOT_IP and "0x0806" in arp.reason
    sec = locate(bytes(Ether(**MAC) / MACsec() / (b"\0" * 40)))
    assert sec.stop == Stop.OPAQUE and "MACsec" in sec.reason
    frame = bytes(Ether(**MAC) / ip4() / TCP() / (b"x" * 100))
    cut = locate(frame[:40], wire_len=len(frame))
    assert cut.stop == Stop.CUT and kinds(cut) == [L.ETHERNET, L.IPV4]
    short = locate(frame[:40])  # a whole frame that is too short: malformed
    assert short.stop == Stop.MALFORMED and "total length 140 exceeds" in short.reason
    later = locate(bytes(Ether() / ip4(frag=8) / (b"y" * 30)))
    assert later.stop == Stop.FRAGMENT and later.hops[-1].flags == F_FRAGMENT | F_LATER_FRAGMENT


def test_lengths_zero_jumbo_and_bad_udp_length() -> None:
    big = bytearray(bytes(Ether(**MAC) / ip4() / TCP() / (b"z" * 3000)))
    big[16:18] = b"\0\0"
    ip = locate(big).hops[1]
    assert ip.flags == F_ZERO_LENGTH and ip.end == len(big)
    udp = bytearray(bytes(Ether(**MAC) / ip4() / UDP() / b"abc"))
    udp[38:40] = (50).to_bytes(2, "big")
    hop = locate(udp).hops[-1]
    assert hop.kind == L.UDP and hop.flags == F_BAD_LENGTH
    vx = bytearray(bytes(Ether(**MAC) / ip6() / UDP(dport=4789) / (b"\0" * 8) / Ether() / ip4()
                         / TCP()))  # fmt: skip
    vx[18:20] = b"\0\0"  # BIG TCP over VXLAN: IPv6 payload length 0, outer UDP length 0
    vx[58:60] = b"\0\0"
    found = locate(vx)
    assert kinds(found)[-1] == L.TCP and found.hops[1].flags == F_ZERO_LENGTH
    assert found.hops[2].flags == F_ZERO_LENGTH and found.hops[2].end == len(vx)


def ip6(**kw: Any) -> IPv6:
    return IPv6(src="fd00::1", dst="fd00::2", **kw)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(recipe_frames())
def test_recipes_reach_their_transport(frame: tuple[int, bytes]) -> None:
    linktype, data = frame
    found = locate(data, linktype)
    assert found.stop in (Stop.END, Stop.FRAGMENT), found.reason
    assert kinds(found)[-1] in (L.TCP, L.UDP, L.ICMP, L.ICMPV6, L.IPV4, L.IPV6)
    for hop in found.hops:
        assert 0 <= hop.offset and hop.offset + hop.hlen <= len(data) and hop.end <= len(data)
    jumbo = [h for h in found.hops if h.flags & F_JUMBO]
    assert all(h.end <= len(data) for h in jumbo)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(damaged_frames(), min_size=1, max_size=12), st.integers(0, 7))
def test_batch_equals_scalar(frames: list[tuple[int, bytes, int]], gap: int) -> None:
    """The vectorized locator and the scalar walk agree on every row, for any bytes."""
    buffer = bytearray()
    starts, caps, wires, lts = [], [], [], []
    for linktype, data, wire in frames:
        buffer += bytes(gap)
        starts.append(len(buffer))
        buffer += data
        caps.append(len(data))
        wires.append(wire)
        lts.append(linktype)
    loc = locate_batch(bytes(buffer), starts, caps, wires, np.array(lts))
    for row, (linktype, data, wire) in enumerate(frames):
        assert loc.located(row) == locate(data, linktype, wire_len=wire), row


PLAIN = [link("eth", inner_ip(ip, TRANSPORTS["tcp"](n))) for ip in ("ip4", "ip6") for n in (0, 9)]
PLAIN += [
    (lt, data[:at] + b"\x60" + data[at + 1 :])  # a TCP data offset past the datagram
    for (lt, data), at in zip(PLAIN[::2], (46, 66), strict=True)
]


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(damaged_frames(), st.sampled_from(PLAIN)), max_size=12),
       st.integers(0, 7))  # fmt: skip
def test_plain_tcp_rows_are_the_scalar_plain_frames(
    frames: list[tuple[int, bytes] | tuple[int, bytes, int]], gap: int
) -> None:
    """The batch's plain-frame rows are exactly the frames ``headers._plain_tcp`` answers for,
    and the full walk puts their IP and TCP headers at the shape's fixed offsets."""
    buffer = bytearray()
    starts, caps, lts = [], [], []
    for linktype, data, *_ in frames:
        buffer += bytes(gap)
        starts.append(len(buffer))
        buffer += data
        caps.append(len(data))
        lts.append(linktype)
    found = {}
    for plain, rows in plain_tcp_rows(np.frombuffer(bytes(buffer), np.uint8),
                                      np.array(starts, np.int64), np.array(caps, np.int64),
                                      np.array(lts, np.int64)):  # fmt: skip
        found.update(dict.fromkeys(rows.tolist(), plain))
    for row, (linktype, data, *_) in enumerate(frames):
        layout = _plain_tcp(memoryview(data)) if linktype == LINKTYPE_ETHERNET else None
        shape = found.get(row)
        assert (shape is None) == (layout is None), row
        if shape is None or layout is None:
            continue
        assert (layout.ip_version, layout.l4_offset) == (shape.ip_version, shape.l4)
        assert layout.pseudo_src == data[shape.src : shape.src + shape.addr_len]
        hops = locate(data, linktype).hops
        assert [(h.kind, h.offset) for h in hops] == [
            (L.ETHERNET, 0), (L.IPV4 if shape.ip_version == 4 else L.IPV6, 14), (L.TCP, shape.l4)
        ]  # fmt: skip


def test_batch_takes_the_common_shapes_without_the_scalar_walk() -> None:
    frames = []
    for name in ("eth", "vlan", "qinq", "sll", "sll2", "raw", "rawip"):
        for ip in ("ip4", "ip4-opts", "ip6"):
            for transport in sorted(TRANSPORTS):
                frames.append(link(name, inner_ip(ip, TRANSPORTS[transport](20))))
    for name in ("vxlan", "geneve", "geneve-eth", "gre", "gre-key", "ipip"):
        frames.append(link("eth", tunnel(name, inner_ip("ip4", TRANSPORTS["tcp"](5)), "ip6")))
    buffer = b"".join(data for _, data in frames)
    starts = np.cumsum([0] + [len(d) for _, d in frames[:-1]])
    lens = [len(d) for _, d in frames]
    loc = locate_batch(buffer, starts, lens, None, np.array([lt for lt, _ in frames]))
    assert not loc.slow.any()
    for row, (linktype, data) in enumerate(frames):
        assert loc.located(row) == locate(data, linktype)
    assert LINKTYPE_ETHERNET in {lt for lt, _ in frames}

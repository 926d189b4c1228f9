"""Frames the battery sends and receives, and independent checks of what comes back.

Builders write every header field by hand (``struct``); the checks re-derive checksums from
the RFC 1071 primitives in ``packet.checksum`` and never call the engine, so a defect in the
engine the reference miniport uses is caught too. Randomness (TCP flags, urgent pointer,
payload bytes) arrives as an :class:`Rng` argument; nothing here draws it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Protocol

from ndis_offload.errors import PacketError
from ndis_offload.packet.checksum import (
    fold,
    internet_checksum,
    ones_complement_sum,
    pseudo_header_sum_ipv4,
    pseudo_header_sum_ipv6,
)
from ndis_offload.packet.headers import IPPROTO_TCP, IPPROTO_UDP, FrameLayout, parse_frame

ETH = bytes.fromhex("020000000002020000000001")
"""Destination and source MAC (locally administered)."""
SRC4, DST4 = bytes([192, 0, 2, 1]), bytes([198, 51, 100, 2])
SRC6 = bytes.fromhex("20010db8000000000000000000000001")
DST6 = bytes.fromhex("20010db8000000000000000000000002")
ETH_LEN = 14

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG, TCP_ECE, TCP_CWR = (
    0x01,
    0x02,
    0x04,
    0x08,
    0x10,
    0x20,
    0x40,
    0x80,
)

IP_OPTIONS: dict[str, bytes] = {
    "none": b"",
    "router-alert": bytes([148, 4, 0, 0]),
    "nop-pad-8": bytes([1, 1, 1, 1, 1, 1, 1, 0]),
}
"""IPv4 options an LSO test template carries (each a multiple of 4 bytes)."""
IPV6_HOP_BY_HOP, IPV6_DEST_OPTS = 0, 60
IPV6_EXTENSIONS: dict[str, bytes] = {
    "none": b"",
    "hop-by-hop": bytes([IPV6_HOP_BY_HOP, 0, 5, 2, 0, 0, 1, 0]),  # Router Alert, PadN
    "destination-16": bytes([IPV6_DEST_OPTS, 1, 1, 12]) + bytes(12),  # PadN, 16 bytes
}
"""IPv6 extension headers, each one header whose first byte names its own type (the
builder moves it into the previous Next Header and chains the real Next Header)."""
TCP_OPTIONS: dict[str, bytes] = {
    "none": b"",
    "timestamps": bytes([1, 1, 8, 10]) + struct.pack("!II", 0x01020304, 0x0A0B0C0D),
    "mss-sack-ws": bytes([2, 4, 5, 0xB4, 4, 2, 3, 3, 7, 0, 0, 0]),
}
"""TCP options an LSO template carries (each a multiple of 4 bytes)."""


class Rng(Protocol):
    """The randomness a check may use (``random.Random`` fits); the executor seeds it."""

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int: ...

    def getrandbits(self, k: int) -> int: ...


def payload_bytes(size: int, rng: Rng | None = None, salt: int = 0) -> bytes:
    """``size`` payload bytes: random when ``rng`` is given, else a counting pattern."""
    if rng is not None and size:
        return rng.getrandbits(8 * size).to_bytes(size, "little")
    return bytes((i * 7 + salt) & 0xFF for i in range(size))


@dataclass(frozen=True)
class Tcp:
    sport: int = 40000
    dport: int = 443
    seq: int = 1000
    ack: int = 5000
    flags: int = TCP_ACK
    window: int = 1024
    urgent: int = 0
    options: bytes = b""


@dataclass(frozen=True)
class Udp:
    sport: int = 40001
    dport: int = 53


def _ipv6_chain(extensions: bytes, proto: int) -> tuple[bytes, int]:
    """The extension header bytes with Next Header chained to ``proto``; the first Next Header."""
    if not extensions:
        return b"", proto
    ext = bytearray(extensions)
    own_type, ext[0] = ext[0], proto
    return bytes(ext), own_type


def build(
    version: int,
    l4: Tcp | Udp,
    payload: bytes,
    *,
    ip_options: bytes = b"",
    ip_id: int = 0x1234,
    ttl: int = 64,
    tos: int = 0,
    df: bool = True,
    l4_checksum: str = "valid",
    ip_checksum: str = "valid",
    zero_length: bool = False,
) -> bytes:
    """One Ethernet frame. ``l4_checksum``: ``valid``, ``zero``, ``pseudo`` (the NDIS Tx
    seed: the folded pseudo-header sum with the L4 length) or ``pseudo-nolen`` (the LSO seed,
    without the length); ``ip_checksum``: ``valid`` or ``zero``; ``zero_length`` writes IPv4
    Total Length / IPv6 Payload Length 0 (the LSOv2 template)."""
    proto = IPPROTO_TCP if isinstance(l4, Tcp) else IPPROTO_UDP
    if isinstance(l4, Tcp):
        offset = (20 + len(l4.options)) // 4
        header = struct.pack(
            "!HHIIBBHHH", l4.sport, l4.dport, l4.seq & 0xFFFFFFFF, l4.ack & 0xFFFFFFFF,
            offset << 4, l4.flags, l4.window, 0, l4.urgent,
        ) + l4.options  # fmt: skip
        csum_at = 16
    else:
        header = struct.pack("!HHHH", l4.sport, l4.dport, 8 + len(payload), 0)
        csum_at = 6
    segment = bytearray(header + payload)
    length = len(segment)
    if version == 4:
        src, dst = SRC4, DST4
        pseudo = pseudo_header_sum_ipv4(src, dst, proto, length)
        pseudo_nolen = pseudo_header_sum_ipv4(src, dst, proto, None)
    else:
        src, dst = SRC6, DST6
        pseudo = pseudo_header_sum_ipv6(src, dst, proto, length)
        pseudo_nolen = pseudo_header_sum_ipv6(src, dst, proto, None)
    if l4_checksum == "valid":
        value = internet_checksum(segment, pseudo)
        value = value or (0xFFFF if proto == IPPROTO_UDP else 0)
    elif l4_checksum == "pseudo":
        value = pseudo
    elif l4_checksum == "pseudo-nolen":
        value = pseudo_nolen
    else:
        value = 0
    struct.pack_into("!H", segment, csum_at, value)
    if version == 4:
        ihl = (20 + len(ip_options)) // 4
        total = 0 if zero_length else ihl * 4 + length
        ip = bytearray(
            struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, total, ip_id & 0xFFFF,
                        0x4000 if df else 0, ttl, proto, 0, src, dst) + ip_options
        )  # fmt: skip
        if ip_checksum == "valid":
            struct.pack_into("!H", ip, 10, internet_checksum(ip))
        return ETH + b"\x08\x00" + bytes(ip) + bytes(segment)
    ext, first = _ipv6_chain(ip_options, proto)
    plen = 0 if zero_length else len(ext) + length
    ip6 = struct.pack("!IHBB16s16s", 0x60000000 | (tos << 20), plen, first, ttl, src, dst)
    return ETH + b"\x86\xdd" + ip6 + ext + bytes(segment)


# --- independent verification --------------------------------------------------------------
def layout(frame: bytes) -> FrameLayout:
    return parse_frame(frame)


def ipv4_header_ok(frame: bytes, lay: FrameLayout) -> bool:
    l3 = lay.l3_offset
    return ones_complement_sum(frame[l3 : l3 + lay.l3_len]) == 0xFFFF


def l4_checksum_ok(frame: bytes, lay: FrameLayout) -> bool:
    """The TCP / UDP checksum of ``frame`` verifies over its own pseudo-header and length."""
    seg = frame[lay.l4_offset : lay.ip_end]
    if lay.ip_version == 4:
        pseudo = pseudo_header_sum_ipv4(lay.pseudo_src, lay.pseudo_dst, lay.l4_proto, len(seg))
    else:
        pseudo = pseudo_header_sum_ipv6(lay.pseudo_src, lay.pseudo_dst, lay.l4_proto, len(seg))
    return fold(ones_complement_sum(seg) + pseudo) == 0xFFFF


def l4_checksum_field(frame: bytes, lay: FrameLayout) -> int:
    at = lay.l4_offset + (16 if lay.l4_proto == IPPROTO_TCP else 6)
    return int(struct.unpack_from("!H", frame, at)[0])


def ip_id(frame: bytes, lay: FrameLayout) -> int:
    return int(struct.unpack_from("!H", frame, lay.l3_offset + 4)[0])


def ip_total_length(frame: bytes, lay: FrameLayout) -> int:
    """IPv4 Total Length, or IPv6 Payload Length."""
    return int(
        struct.unpack_from("!H", frame, lay.l3_offset + (2 if lay.ip_version == 4 else 4))[0]
    )


@dataclass(frozen=True)
class TcpView:
    seq: int
    ack: int
    flags: int
    window: int
    urgent: int
    options: bytes
    payload: bytes


def tcp_of(frame: bytes, lay: FrameLayout) -> TcpView:
    if lay.l4_proto != IPPROTO_TCP:
        raise PacketError("not a TCP frame")
    at = lay.l4_offset
    seq, ack, _, flags, window, _, urgent = struct.unpack_from("!IIBBHHH", frame, at + 4)
    return TcpView(
        seq, ack, flags, window, urgent,
        frame[at + 20 : at + lay.l4_len], frame[lay.payload_offset : lay.ip_end],
    )  # fmt: skip


def ip_options_of(frame: bytes, lay: FrameLayout) -> bytes:
    """IPv4 options, or the IPv6 extension headers."""
    fixed = 20 if lay.ip_version == 4 else 40
    return frame[lay.l3_offset + fixed : lay.l3_offset + lay.l3_len]

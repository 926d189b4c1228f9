"""Software transmit offload: checksum insertion, TCP LSO (v1/v2) and UDP USO on one frame.

Every function takes frame bytes and returns new bytes; the input is never modified. Checksums
are always recomputed from the headers (field zeroed, pseudo-header + L4 summed), so both the
NDIS convention (field seeded with a pseudo-header sum, or garbage) and fully formed frames
work. Segmentation follows Linux ``tcp_gso_segment``: IPv4 ID +1 per segment, sequence
advanced by the bytes sent, CWR only on the first segment, FIN/PSH only on the last.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ndis_offload.errors import PacketError
from ndis_offload.packet.checksum import (
    batch_sums,
    finish,
    finish_udp,
    ones_complement_sum,
    pseudo_header_sum_ipv4,
    pseudo_header_sum_ipv6,
)
from ndis_offload.packet.headers import FrameLayout, parse_frame
from ndis_offload.packet.proto import IPPROTO_TCP, IPPROTO_UDP, TCP_CWR, TCP_FIN, TCP_PSH, Frame
from ndis_offload.structs.nbl_info import (
    NdisLsoV1Transmit,
    NdisLsoV1TransmitComplete,
    NdisLsoV2Transmit,
    NdisLsoV2TransmitComplete,
    NdisTcpIpChecksumNetBufferListInfoTransmit,
    NdisUsoTransmit,
)

U64Array = npt.NDArray[np.uint64]

IPV4_MAX_TOTAL = 0xFFFF

_U64 = np.uint64
_H = struct.Struct("!H")
_I = struct.Struct("!I")


@dataclass(frozen=True, slots=True)
class Segmentation:
    """The frames an LSO / USO send became, and the L4 payload bytes they carry."""

    frames: list[bytes]
    payload_bytes: int
    """The LSOv1 completion ``TcpPayload`` value."""


def _check_offset(layout: FrameLayout, header_offset: int | None, proto: int, name: str) -> None:
    if layout.l4_proto != proto or layout.l4_len == 0:
        want = "TCP" if proto == IPPROTO_TCP else "UDP"
        raise PacketError(f"{name} requested but the frame carries no {want} header")
    if header_offset is not None and header_offset != layout.l4_offset:
        raise PacketError(
            f"{name} header offset {header_offset} does not match the parsed offset "
            f"{layout.l4_offset}",
            offset=header_offset,
        )


def _pseudo(layout: FrameLayout, length: int | None) -> int:
    if layout.ip_version == 4:
        return pseudo_header_sum_ipv4(layout.pseudo_src, layout.pseudo_dst, layout.l4_proto, length)
    return pseudo_header_sum_ipv6(layout.pseudo_src, layout.pseudo_dst, layout.l4_proto, length)


def _fill_ipv4_checksum(out: bytearray, l3: int, ihl: int) -> None:
    out[l3 + 10 : l3 + 12] = b"\0\0"
    _H.pack_into(out, l3 + 10, finish(ones_complement_sum(memoryview(out)[l3 : l3 + ihl])))


def _fill_l4_checksum(out: bytearray, layout: FrameLayout) -> None:
    l4, end = layout.l4_offset, layout.ip_end
    field = l4 + (16 if layout.l4_proto == IPPROTO_TCP else 6)
    out[field : field + 2] = b"\0\0"
    total = ones_complement_sum(memoryview(out)[l4:end], _pseudo(layout, end - l4))
    value = finish_udp(total) if layout.l4_proto == IPPROTO_UDP else finish(total)
    _H.pack_into(out, field, value)


def insert_checksums(
    frame: Frame,
    *,
    ip_header: bool = True,
    tcp: bool = True,
    udp: bool = True,
    l4_header_offset: int | None = None,
) -> bytes:
    """Fill the requested IPv4 header / TCP / UDP checksums of ``frame``.

    ``l4_header_offset`` (NDIS ``TcpHeaderOffset``, from the frame start) is cross-checked
    against the parsed headers when given. A UDP length of 0 is set from the IP length.
    """
    layout = parse_frame(frame)
    out = bytearray(frame)
    if ip_header and layout.ip_version == 4:
        _fill_ipv4_checksum(out, layout.l3_offset, layout.l3_len)
    want_l4 = (tcp and layout.l4_proto == IPPROTO_TCP) or (udp and layout.l4_proto == IPPROTO_UDP)
    if want_l4:
        _check_offset(layout, l4_header_offset, layout.l4_proto, "checksum")
        if layout.is_fragment:
            raise PacketError("cannot insert an L4 checksum into an IP fragment")
        if layout.l4_proto == IPPROTO_UDP:
            _fix_udp_length(out, layout)
        _fill_l4_checksum(out, layout)
    return bytes(out)


def _fix_udp_length(out: bytearray, layout: FrameLayout) -> None:
    actual = layout.ip_end - layout.l4_offset
    (declared,) = _H.unpack_from(out, layout.l4_offset + 4)
    if declared == 0 and actual <= 0xFFFF:
        _H.pack_into(out, layout.l4_offset + 4, actual)
    elif declared != actual:
        raise PacketError(
            f"UDP length {declared} does not match the {actual} bytes after the UDP header",
            offset=layout.l4_offset + 4,
        )


def _complement(totals: U64Array) -> U64Array:
    """Checksum fields for positive unfolded sums: ``~fold(x) == 0xFFFE - (x - 1) % 0xFFFF``."""
    return _U64(0xFFFE) - (totals - _U64(1)) % _U64(0xFFFF)


def _payload_rows(
    view: memoryview, start: int, size: int, mss: int, count: int
) -> tuple[U64Array, npt.NDArray[np.uint8]]:
    """The payload cut into zero-padded rows of ``mss`` bytes, and a sum per row.

    The sums are congruent (mod 0xFFFF) to each slice's big-endian ones' complement sum.
    """
    width = mss if count > 1 else size
    flat = np.zeros(count * width, dtype=np.uint8)
    flat[:size] = np.frombuffer(view, dtype=np.uint8, count=size, offset=start)
    rows = flat.reshape(count, width)
    if count == 1:
        return np.array([ones_complement_sum(view[start : start + size])], dtype=_U64), rows
    if mss % 4 == 0:
        return flat.view(">u4").reshape(count, mss // 4).sum(axis=1, dtype=_U64), rows
    offsets = start + mss * np.arange(count, dtype=np.int64)
    return batch_sums(view, offsets, np.minimum(mss, start + size - offsets)), rows


def _segment(frame: Frame, layout: FrameLayout, mss: int) -> Segmentation:
    """Split the L4 payload of a TCP or UDP frame into ``mss``-sized frames (vectorized).

    Each checksum is a per-frame constant (headers with the varying fields zeroed) plus the
    varying fields plus the payload slice sum; fields are written through a big-endian
    16-bit view of the output rows (every field sits at an even offset).
    """
    if mss <= 0:
        raise PacketError(f"MSS {mss} must be positive")
    if layout.is_fragment:
        raise PacketError("cannot segment an IP fragment")
    view = memoryview(frame)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    l3, l4, hdr = layout.l3_offset, layout.l4_offset, layout.payload_offset
    size = layout.payload_len
    count = max(1, -(-size // mss))
    is_tcp = layout.l4_proto == IPPROTO_TCP
    ip_fixed = hdr - l3  # IP header(s) + L4 header bytes
    if layout.ip_version == 4 and ip_fixed + min(size, mss) > IPV4_MAX_TOTAL:
        raise PacketError(f"segment of MSS {mss} exceeds the IPv4 total length limit")
    if l3 % 2:
        raise PacketError("IP header at an odd offset", offset=l3)
    last_len = size - (count - 1) * mss
    per_len = np.full(count, mss, dtype=_U64)
    per_len[-1] = last_len

    template = bytearray(view[:hdr])
    csum_field = l4 + (16 if is_tcp else 6)
    template[csum_field : csum_field + 2] = b"\0\0"
    # L4 constant: pseudo-header without length, plus the length once (pseudo-header) or
    # twice (UDP also carries it in its header): hdr - l4 per copy.
    l4_const = _pseudo(layout, None)
    if is_tcp:
        seq0 = _I.unpack_from(template, l4 + 4)[0]
        flags0 = template[l4 + 13]
        template[l4 + 4 : l4 + 8] = b"\0\0\0\0"
        template[l4 + 13] = 0
        seq = (_U64(seq0) + np.arange(count, dtype=_U64) * _U64(mss)) & _U64(0xFFFFFFFF)
        flags = np.full(count, flags0 & ~(TCP_FIN | TCP_PSH | TCP_CWR), dtype=_U64)
        flags[0] |= flags0 & TCP_CWR
        flags[-1] |= flags0 & (TCP_FIN | TCP_PSH)
        l4_const += hdr - l4
        varying = per_len + seq + flags  # seq as two 16-bit words is congruent to seq
    else:
        template[l4 + 4 : l4 + 6] = b"\0\0"
        l4_const += 2 * (hdr - l4)
        varying = per_len + per_len
    l4_const += ones_complement_sum(memoryview(template)[l4:hdr])

    payload_sums, payload_rows = _payload_rows(view, hdr, size, mss, count)
    l4_csum = _complement(payload_sums + varying + _U64(l4_const))
    if not is_tcp:
        l4_csum[l4_csum == 0] = 0xFFFF

    seg_w = payload_rows.shape[1]
    width = hdr + seg_w + ((hdr + seg_w) & 1)
    rows = np.empty((count, width), dtype=np.uint8)
    rows[:, :hdr] = np.frombuffer(template, dtype=np.uint8)
    rows[:, hdr : hdr + seg_w] = payload_rows
    words = rows.view(">u2")
    if layout.ip_version == 4:
        ip_id0 = _H.unpack_from(template, l3 + 4)[0]
        template[l3 + 2 : l3 + 6] = b"\0\0\0\0"
        template[l3 + 10 : l3 + 12] = b"\0\0"
        ip_const = ones_complement_sum(memoryview(template)[l3 : l3 + layout.l3_len]) + ip_fixed
        ip_id = (_U64(ip_id0) + np.arange(count, dtype=_U64)) & _U64(0xFFFF)
        words[:, (l3 + 2) // 2] = per_len + _U64(ip_fixed)
        words[:, (l3 + 4) // 2] = ip_id
        words[:, (l3 + 10) // 2] = _complement(per_len + ip_id + _U64(ip_const))
    else:
        words[:, (l3 + 4) // 2] = per_len + _U64(ip_fixed - 40)
    if layout.llc_snap:  # 802.3 length: the bytes after the length field
        words[:, (l3 - 10) // 2] = per_len + _U64(hdr - l3 + 8)
    if is_tcp:
        words[:, (l4 + 4) // 2] = seq >> _U64(16)
        words[:, (l4 + 6) // 2] = seq
        rows[:, l4 + 13] = flags
    else:
        words[:, (l4 + 4) // 2] = per_len + _U64(8)
    words[:, csum_field // 2] = l4_csum

    frames = [row.tobytes() for row in rows[:-1, : hdr + mss]]
    frames.append(rows[-1, : hdr + last_len].tobytes())
    return Segmentation(frames, size)


def segment_tcp(frame: Frame, mss: int, *, tcp_header_offset: int | None = None) -> Segmentation:
    """TCP large send offload (LSOv1 / LSOv2, IPv4 / IPv6) of one large frame.

    IPv4 Total Length / IPv6 Payload Length may be 0 (NDIS LSO: derived from the frame
    length); the TCP checksum field's content is ignored. A zero-length payload yields the
    frame as is with checksums filled; a payload up to ``mss`` yields one segment.
    """
    layout = parse_frame(frame, zero_length_ok=True)
    _check_offset(layout, tcp_header_offset, IPPROTO_TCP, "LSO")
    return _segment(frame, layout, mss)


def segment_udp(frame: Frame, mss: int, *, udp_header_offset: int | None = None) -> Segmentation:
    """UDP segmentation offload: one datagram per ``mss`` bytes of UDP payload.

    Each datagram gets its own UDP length, IP length, IPv4 ID (+1 each) and checksums.
    """
    layout = parse_frame(frame, zero_length_ok=True)
    _check_offset(layout, udp_header_offset, IPPROTO_UDP, "USO")
    return _segment(frame, layout, mss)


# --- NET_BUFFER_LIST info entry points ---------------------------------------------------


def _check_ip_version(layout: FrameLayout, want: int, name: str) -> None:
    if layout.ip_version != want:
        raise PacketError(f"{name} says IPv{want} but the frame is IPv{layout.ip_version}")


def transmit_checksum(frame: Frame, info: NdisTcpIpChecksumNetBufferListInfoTransmit) -> bytes:
    """Checksum offload as requested by ``NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO.Transmit``."""
    layout = parse_frame(frame)
    if info.IsIPv4 == info.IsIPv6:
        raise PacketError("checksum info must set exactly one of IsIPv4 / IsIPv6")
    _check_ip_version(layout, 4 if info.IsIPv4 else 6, "checksum info")
    l4_wanted = info.TcpChecksum or info.UdpChecksum
    return insert_checksums(
        frame,
        ip_header=bool(info.IpHeaderChecksum),
        tcp=bool(info.TcpChecksum),
        udp=bool(info.UdpChecksum),
        l4_header_offset=info.TcpHeaderOffset if l4_wanted else None,
    )


def transmit_lso(
    frame: Frame, info: NdisLsoV1Transmit | NdisLsoV2Transmit
) -> tuple[Segmentation, NdisLsoV1TransmitComplete | NdisLsoV2TransmitComplete]:
    """LSOv1 (IPv4) or LSOv2 (IPv4 / IPv6) send; returns the frames and the completion info."""
    layout = parse_frame(frame, zero_length_ok=True)
    _check_offset(layout, info.TcpHeaderOffset, IPPROTO_TCP, "LSO")
    if isinstance(info, NdisLsoV1Transmit):
        _check_ip_version(layout, 4, "LSOv1")
        result = _segment(frame, layout, info.MSS)
        return result, NdisLsoV1TransmitComplete(TcpPayload=result.payload_bytes)
    _check_ip_version(layout, 6 if info.IPVersion else 4, "LSOv2 IPVersion")
    return _segment(frame, layout, info.MSS), NdisLsoV2TransmitComplete()


def transmit_uso(frame: Frame, info: NdisUsoTransmit) -> Segmentation:
    """USO as requested by ``NDIS_UDP_SEGMENTATION_OFFLOAD_NET_BUFFER_LIST_INFO.Transmit``."""
    layout = parse_frame(frame, zero_length_ok=True)
    _check_offset(layout, info.UdpHeaderOffset, IPPROTO_UDP, "USO")
    _check_ip_version(layout, 6 if info.IPVersion else 4, "USO IPVersion")
    return _segment(frame, layout, info.MSS)


__all__ = [
    "Segmentation",
    "insert_checksums",
    "segment_tcp",
    "segment_udp",
    "transmit_checksum",
    "transmit_lso",
    "transmit_uso",
]

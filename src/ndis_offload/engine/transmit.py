"""Software transmit offload: checksum insertion, TCP LSO (v1/v2) and UDP USO on one frame.

Every function takes frame bytes and returns new bytes; the input is never modified. Checksums
are always recomputed from the headers (field zeroed, pseudo-header + L4 summed), so both the
NDIS convention (field seeded with a pseudo-header sum, or garbage) and fully formed frames
work. Segmentation follows Linux ``tcp_gso_segment``: IPv4 ID +1 per segment, sequence
advanced by the bytes sent, CWR only on the first segment, FIN/PSH only on the last.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from ndis_offload.engine.gso import (
    ByteView,
    Cutter,
    GsoPlan,
    Segmentation,
    SegmentRows,
    cutter_for,
    shape_for,
)
from ndis_offload.engine.gso_send import latest_plain, plain_cutter, plan_plain, plan_send
from ndis_offload.errors import PacketError
from ndis_offload.packet.checksum import (
    finish,
    finish_udp,
    ones_complement_sum,
    pseudo_header_sum_ipv4,
    pseudo_header_sum_ipv6,
)
from ndis_offload.packet.headers import FrameLayout, parse_frame, plain_tcp
from ndis_offload.packet.locate import locate
from ndis_offload.packet.proto import (
    IPPROTO_TCP,
    IPPROTO_UDP,
    LINKTYPE_ETHERNET,
    Frame,
    byte_view,
)
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
    return _insert_checksums(frame, parse_frame(frame), ip_header, tcp, udp, l4_header_offset)


def _insert_checksums(
    frame: Frame,
    layout: FrameLayout,
    ip_header: bool,
    tcp: bool,
    udp: bool,
    l4_header_offset: int | None,
) -> bytes:
    """:func:`insert_checksums` on a frame already parsed into ``layout``."""
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


def _planned(
    frame: Frame, proto: int, header_offset: int | None, name: str, mss: int
) -> tuple[ByteView, GsoPlan, Cutter | None]:
    """The bytes and plan of a plain (untunnelled) LSO / USO send, its L4 offset
    cross-checked, and the cached cutter of its cut at ``mss`` when the send is a common
    one (:func:`~ndis_offload.engine.gso_send.plain_cutter`; else None: :func:`_cutter`)."""
    view = frame if type(frame) is bytes else byte_view(frame)
    cutter = plain_cutter(view, proto, mss) if mss > 0 else None
    if cutter is not None:
        plan = cutter.plan
    else:  # an MSS <= 0 raises at the cut, after the checks below
        plan = plan_plain(view, proto) or plan_send(
            view, locate(view, LINKTYPE_ETHERNET, tunnels=False, giant_llc=True), proto
        )
    if header_offset is not None and header_offset != plan.l4_offset:
        raise PacketError(
            f"{name} header offset {header_offset} does not match the parsed offset "
            f"{plan.l4_offset}",
            offset=header_offset,
        )
    return view, plan, cutter


def _cutter(plan: GsoPlan, cutter: Cutter | None, mss: int) -> Cutter:
    """``cutter``, or the one of ``plan`` cut at ``mss`` (an MSS <= 0 raises here)."""
    return cutter or cutter_for(plan, shape_for(plan, mss))


_Cut = TypeVar("_Cut", Segmentation, SegmentRows)


def _segment(
    frame: Frame, mss: int, proto: int, header_offset: int | None, name: str,
    cut: Callable[[Cutter, ByteView], _Cut],
) -> _Cut:  # fmt: skip
    """The LSO / USO send ``frame`` cut at ``mss`` by ``cut`` (:meth:`Cutter.segments` or
    :meth:`Cutter.rows`): the next send of a flow by the latest cutter (one ``struct`` read,
    :func:`~ndis_offload.engine.gso_send.latest_plain`), else by the plan of :func:`_planned`
    (an MSS <= 0 raises at :func:`_cutter`)."""
    if type(frame) is bytes and header_offset is None:
        latest = latest_plain(frame, proto, mss)
        if latest is not None:
            return cut(latest, frame)
    view, plan, cutter = _planned(frame, proto, header_offset, name, mss)
    return cut(_cutter(plan, cutter, mss), view)


def segment_tcp(frame: Frame, mss: int, *, tcp_header_offset: int | None = None) -> Segmentation:
    """TCP large send offload (LSOv1 / LSOv2, IPv4 / IPv6) of one large frame.

    IPv4 Total Length / IPv6 Payload Length may be 0 (NDIS LSO: derived from the frame
    length); the TCP checksum field's content is ignored. A zero-length payload yields the
    frame as is with checksums filled; a payload up to ``mss`` yields one segment.
    """
    return _segment(frame, mss, IPPROTO_TCP, tcp_header_offset, "LSO", Cutter.segments)


def segment_udp(frame: Frame, mss: int, *, udp_header_offset: int | None = None) -> Segmentation:
    """UDP segmentation offload: one datagram per ``mss`` bytes of UDP payload.

    Each datagram gets its own UDP length, IP length, IPv4 ID (+1 each) and checksums.
    """
    return _segment(frame, mss, IPPROTO_UDP, udp_header_offset, "USO", Cutter.segments)


def segment_tcp_rows(
    frame: Frame, mss: int, *, tcp_header_offset: int | None = None
) -> SegmentRows:
    """:func:`segment_tcp` without a ``bytes`` object per segment: the segments as rows of
    one new buffer (:class:`~ndis_offload.engine.gso.SegmentRows`), byte for byte the same."""
    return _segment(frame, mss, IPPROTO_TCP, tcp_header_offset, "LSO", Cutter.rows)


def segment_udp_rows(
    frame: Frame, mss: int, *, udp_header_offset: int | None = None
) -> SegmentRows:
    """:func:`segment_udp` as rows of one buffer (see :func:`segment_tcp_rows`)."""
    return _segment(frame, mss, IPPROTO_UDP, udp_header_offset, "USO", Cutter.rows)


# --- NET_BUFFER_LIST info entry points ---------------------------------------------------


def _check_ip_version(layout: FrameLayout, want: int, name: str) -> None:
    if layout.ip_version != want:
        raise PacketError(f"{name} says IPv{want} but the frame is IPv{layout.ip_version}")


_SMALL_FRAME = 640
"""Frames up to this size (ACKs, small requests) may take :func:`_checksum_small_tcp`: one
``int.from_bytes`` and one ``%`` per checksum beat a parse plus numpy-free general path."""


def _checksum_small_tcp(
    frame: Frame, ip_header: bool, tcp: bool, is_ipv4: bool, tcp_offset: int
) -> bytes | None:
    """:func:`transmit_checksum` of a small frame in the layout
    :func:`~ndis_offload.packet.headers.plain_tcp` recognises, byte for byte what the general
    path makes; ``None`` for any other frame or request (the general path then decides, and
    explains what is wrong). The frame is read as big-endian integers:
    ``2**16 == 1 (mod 0xFFFF)``, so ``int.from_bytes(data) % 0xFFFF`` is the ones' complement
    sum of its 16-bit words (a non-zero multiple of 0xFFFF folds to 0xFFFF, as with
    end-around carry; the sums below are never 0: the IPv4 header and the pseudo-header
    carry non-zero words)."""
    if len(frame) > _SMALL_FRAME:
        return None
    found = plain_tcp(frame)
    if found is None:
        return None
    l4, end, _ = found
    if (l4 == 34) != is_ipv4 or (tcp and tcp_offset != l4):
        return None
    out = bytearray(frame)
    if is_ipv4 and ip_header:
        out[24] = out[25] = 0
        s = int.from_bytes(out[14:34]) % 0xFFFF or 0xFFFF
        out[24], out[25] = divmod(0xFFFF - s, 256)
    if tcp:
        check = l4 + 16
        out[check] = out[check + 1] = 0
        length = end - l4
        data = int.from_bytes(out[l4:end])
        if length & 1:
            data <<= 8  # an odd last byte is the high byte of a zero-padded word
        addresses = int.from_bytes(out[26:34] if is_ipv4 else out[22:54])
        s = (addresses + IPPROTO_TCP + length + data) % 0xFFFF or 0xFFFF
        out[check], out[check + 1] = divmod(0xFFFF - s, 256)
    return bytes(out)


def transmit_checksum(frame: Frame, info: NdisTcpIpChecksumNetBufferListInfoTransmit) -> bytes:
    """Checksum offload as requested by ``NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO.Transmit``."""
    if info.IsIPv4 != info.IsIPv6:
        done = _checksum_small_tcp(
            frame,
            bool(info.IpHeaderChecksum),
            bool(info.TcpChecksum),
            bool(info.IsIPv4),
            info.TcpHeaderOffset,
        )
        if done is not None:
            return done
    return _transmit_checksum(frame, info)


def _transmit_checksum(frame: Frame, info: NdisTcpIpChecksumNetBufferListInfoTransmit) -> bytes:
    """:func:`transmit_checksum` through the frame parser (any frame; every error)."""
    layout = parse_frame(frame)
    if info.IsIPv4 == info.IsIPv6:
        raise PacketError("checksum info must set exactly one of IsIPv4 / IsIPv6")
    _check_ip_version(layout, 4 if info.IsIPv4 else 6, "checksum info")
    l4_wanted = info.TcpChecksum or info.UdpChecksum
    return _insert_checksums(
        frame,
        layout,
        bool(info.IpHeaderChecksum),
        bool(info.TcpChecksum),
        bool(info.UdpChecksum),
        info.TcpHeaderOffset if l4_wanted else None,
    )


def _check_plan_version(plan: GsoPlan, want: int, name: str) -> None:
    have = plan.ips[-1].version
    if have != want:
        raise PacketError(f"{name} says IPv{want} but the frame is IPv{have}")


def transmit_lso(
    frame: Frame, info: NdisLsoV1Transmit | NdisLsoV2Transmit
) -> tuple[Segmentation, NdisLsoV1TransmitComplete | NdisLsoV2TransmitComplete]:
    """LSOv1 (IPv4) or LSOv2 (IPv4 / IPv6) send; returns the frames and the completion info."""
    view, plan, cutter = _planned(frame, IPPROTO_TCP, info.TcpHeaderOffset, "LSO", info.MSS)
    if isinstance(info, NdisLsoV1Transmit):
        _check_plan_version(plan, 4, "LSOv1")
        result = _cutter(plan, cutter, info.MSS).segments(view)
        return result, NdisLsoV1TransmitComplete(TcpPayload=result.payload_bytes)
    _check_plan_version(plan, 6 if info.IPVersion else 4, "LSOv2 IPVersion")
    result = _cutter(plan, cutter, info.MSS).segments(view)
    if not info.IPVersion:
        result = _lsov2_ip_ids(result, plan.ips[-1].offset)
    return result, _LSOV2_COMPLETE


_LSOV2_COMPLETE = NdisLsoV2TransmitComplete()
"""Every LSOv2 send completes with the same (immutable) ``LsoV2TransmitComplete``: one
instance, so callers memoizing its word by identity skip hashing it per send."""


LSOV2_MAX_IP_ID = 0x7FFF
"""``offloading-the-segmentation-of-large-tcp-packets``: LSOv2 "Use IP identification (IP ID)
values in the range from 0x0000 to 0x7FFF. (The range from 0x8000 to 0xFFFF is reserved for
TCP chimney offload-capable devices.)"."""


def _lsov2_ip_ids(result: Segmentation, ip_offset: int) -> Segmentation:
    """LSOv2 IPv4 IDs wrap from 0x7FFF to 0x0000 ("0x7FFE, followed by 0x7FFF, 0x0000,
    0x0001"); the header checksum follows (RFC 1624). A template ID above 0x7FFF (never
    sent by the stack) keeps the 16-bit count ``cut`` gives (Linux GSO's)."""
    frames = result.frames
    at = ip_offset + 4
    first = int.from_bytes(frames[0][at : at + 2]) if frames else LSOV2_MAX_IP_ID + 1
    wrap = LSOV2_MAX_IP_ID + 1 - first
    if first > LSOV2_MAX_IP_ID or wrap >= len(frames):
        return result
    out = frames[:wrap]
    for k in range(wrap, len(frames)):
        edited = bytearray(frames[k])
        old = int.from_bytes(edited[at : at + 2])
        new = (first + k) & LSOV2_MAX_IP_ID
        edited[at : at + 2] = new.to_bytes(2)
        total = (~int.from_bytes(edited[ip_offset + 10 : ip_offset + 12]) & 0xFFFF) + (
            ~old & 0xFFFF
        ) + new  # fmt: skip
        total = (total & 0xFFFF) + (total >> 16)
        total = (total & 0xFFFF) + (total >> 16)
        edited[ip_offset + 10 : ip_offset + 12] = (~total & 0xFFFF).to_bytes(2)
        out.append(bytes(edited))
    return Segmentation(out, result.payload_bytes, result.wire_bytes)


def transmit_uso(frame: Frame, info: NdisUsoTransmit) -> Segmentation:
    """USO as requested by ``NDIS_UDP_SEGMENTATION_OFFLOAD_NET_BUFFER_LIST_INFO.Transmit``."""
    view, plan, cutter = _planned(frame, IPPROTO_UDP, info.UdpHeaderOffset, "USO", info.MSS)
    _check_plan_version(plan, 6 if info.IPVersion else 4, "USO IPVersion")
    return _cutter(plan, cutter, info.MSS).segments(view)


__all__ = [
    "SegmentRows",
    "Segmentation",
    "insert_checksums",
    "segment_tcp",
    "segment_tcp_rows",
    "segment_udp",
    "segment_udp_rows",
    "transmit_checksum",
    "transmit_lso",
    "transmit_uso",
]

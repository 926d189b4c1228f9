"""Turning captured frames into what was on the wire: checksum completion, segmentation."""

from __future__ import annotations

import numpy as np

from ndis_offload.capture.checks import Checks, Kind, Sum
from ndis_offload.capture.linktype import from_ethernet, to_ethernet
from ndis_offload.engine import segment_gso


def fix_chunk(
    buffer: bytes, checks: Checks, *, everything: bool = False
) -> tuple[bytes | bytearray, int]:
    """``buffer`` with every checksum left for offload completed (``everything``: also the
    wrong ones); returns the bytes and how many fields changed. Lengths never change."""
    states = (Sum.OFFLOAD, Sum.WRONG) if everything else (Sum.OFFLOAD,)
    ip_rows = np.isin(checks.ip_state, states) & (checks.ip_field >= 0) & ~checks.zero_length
    l4_rows = np.isin(checks.l4_state, states) & (checks.l4_field >= 0) & ~checks.zero_length
    ip_rows &= checks.kind == Kind.IP
    l4_rows &= checks.kind == Kind.IP
    count = int(ip_rows.sum() + l4_rows.sum())
    if not count:
        return buffer, 0
    out = bytearray(buffer)
    data = np.frombuffer(out, dtype=np.uint8)
    for rows, pos, value in (
        (ip_rows, checks.ip_field, checks.ip_value),
        (l4_rows, checks.l4_field, checks.l4_value),
    ):
        at = pos[rows]
        val = value[rows]
        data[at] = (val >> 8).astype(np.uint8)
        data[at + 1] = (val & 0xFF).astype(np.uint8)
    return out, count


def segment_record(linktype: int, data: bytes, mss: int) -> list[bytes]:
    """The wire frames of one oversized TCP (LSO) or UDP (USO) record, link header kept;
    VXLAN / Geneve tunnelled sends and BIG TCP sends are cut as Linux GSO cuts them
    (``mss``: bytes of innermost payload per segment)."""
    header, eth = to_ethernet(linktype, data)
    frames = segment_gso(eth, mss).frames
    if not header:  # Ethernet: the frames as they are
        return frames
    return [from_ethernet(linktype, header, frame) for frame in frames]


__all__ = ["fix_chunk", "segment_record"]

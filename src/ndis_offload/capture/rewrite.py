"""Turning captured frames into what was on the wire: checksum completion, segmentation."""

from __future__ import annotations

import numpy as np

from ndis_offload.capture.checks import Checks, Kind, Sum, fold64
from ndis_offload.capture.linktype import from_ethernet, to_ethernet
from ndis_offload.engine import segment_gso
from ndis_offload.packet.locate import Layer
from ndis_offload.packet.proto import LINKTYPE_ETHERNET


def fix_chunk(
    buffer: bytes | bytearray, checks: Checks, *, everything: bool = False,
    in_place: bool = False,
) -> tuple[bytes | bytearray, int]:  # fmt: skip
    """``buffer`` with every checksum left for offload completed (``everything``: also the
    wrong ones), inner layers first; returns the bytes and how many fields changed. With
    ``in_place`` a ``bytearray`` buffer is patched itself instead of a copy.

    A checksum that covers a changed inner field (an outer UDP or GRE checksum over a
    tunnel) is updated by the change (RFC 1624) when it is completed, or when it was
    correct before. Lengths never change; frames with a zero length field are left alone.
    """
    live = (checks.kind == Kind.IP) & ~checks.zero_length
    fields = checks.layer_field
    state = checks.layer_state
    picked = (state == Sum.OFFLOAD) | ((state == Sum.WRONG) if everything else False)
    want = picked & (fields >= 0) & live[:, None]
    if not want.any():
        return buffer, 0
    out = buffer if in_place and isinstance(buffer, bytearray) else bytearray(buffer)
    data = np.frombuffer(out, dtype=np.uint8)
    kind = checks.loc.kind
    acc = np.zeros(len(live), dtype=np.uint64)
    """Per frame: the ones' complement sum of the changes made deeper in the frame."""
    count = 0
    for col in range(int(checks.loc.depth.max(initial=0)) - 1, -1, -1):
        hop = kind[:, col]
        covers = (hop == Layer.TCP) | (hop == Layer.UDP) | (hop == Layer.GRE)
        moved = (acc % _U64(0xFFFF)) != 0
        ok = checks.layer_state[:, col] == Sum.OK
        rows = np.flatnonzero((want[:, col] | (covers & moved & ok)) & (fields[:, col] >= 0))
        if not len(rows):
            continue
        at = fields[rows, col]
        stored = (data[at].astype(np.uint64) << _U64(8)) | data[at + 1]
        value = checks.layer_value[rows, col].astype(np.uint64)
        adjust = covers[rows]
        summed = fold64((~value & _U64(0xFFFF)) + acc[rows])
        adjusted = ~summed & _U64(0xFFFF)
        udp = kind[rows, col] == Layer.UDP
        adjusted = np.where(udp & (adjusted == 0), _U64(0xFFFF), adjusted)
        new = np.where(adjust, adjusted, value)
        data[at] = (new >> _U64(8)).astype(np.uint8)
        data[at + 1] = (new & _U64(0xFF)).astype(np.uint8)
        acc[rows] = fold64(acc[rows] + new + (~stored & _U64(0xFFFF)))
        count += int((new != stored).sum())
    return out, count


_U64 = np.uint64


def segment_record(linktype: int, data: bytes, mss: int) -> list[bytes]:
    """The wire frames of one oversized TCP (LSO) or UDP (USO) record, link header kept;
    VXLAN / Geneve tunnelled sends and BIG TCP sends are cut as Linux GSO cuts them
    (``mss``: bytes of innermost payload per segment)."""
    header, eth = to_ethernet(linktype, data)
    frames = segment_gso(eth, mss).frames
    if linktype == LINKTYPE_ETHERNET:  # the frames as they are
        return frames
    return [from_ethernet(linktype, header, frame) for frame in frames]


__all__ = ["fix_chunk", "segment_record"]

"""RSS flow keys of captured frames: what a NIC would feed its Toeplitz hash.

Frames a NIC cannot interpret (not IPv4/IPv6, malformed, cut before the transport ports)
get ``ip_version`` 0 and no hash, as "RSS hashing types" requires.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ndis_offload.capture.linktype import to_ethernet
from ndis_offload.engine.rss import FlowKeys
from ndis_offload.errors import PacketError
from ndis_offload.packet.headers import IPPROTO_TCP, IPPROTO_UDP, parse_frame
from ndis_offload.packet.locate_batch import plain_tcp_rows


def flow_keys(records: Sequence[tuple[int, bytes]]) -> FlowKeys:
    """The flow keys of ``(linktype, record bytes)`` pairs, one row each."""
    keys = FlowKeys.empty(len(records))
    for row, (linktype, data) in enumerate(records):
        try:
            _, frame = to_ethernet(linktype, data)
            layout = parse_frame(frame)
        except PacketError:
            continue
        width = 4 if layout.ip_version == 4 else 16
        l3 = layout.l3_offset
        if layout.ip_version == 4:
            src, dst = frame[l3 + 12 : l3 + 16], frame[l3 + 16 : l3 + 20]
        else:
            src, dst = frame[l3 + 8 : l3 + 24], frame[l3 + 24 : l3 + 40]
        keys.ip_version[row] = layout.ip_version
        keys.src[row, :width] = np.frombuffer(src, np.uint8)
        keys.dst[row, :width] = np.frombuffer(dst, np.uint8)
        keys.src_ex[row, :width] = np.frombuffer(layout.pseudo_src[:width], np.uint8)
        keys.dst_ex[row, :width] = np.frombuffer(layout.pseudo_dst[:width], np.uint8)
        keys.is_fragment[row] = layout.is_fragment
        if layout.l4_proto in (IPPROTO_TCP, IPPROTO_UDP) and layout.l4_len:
            keys.l4_proto[row] = layout.l4_proto
            l4 = layout.l4_offset
            keys.sport[row] = int.from_bytes(frame[l4 : l4 + 2], "big")
            keys.dport[row] = int.from_bytes(frame[l4 + 2 : l4 + 4], "big")
        else:
            keys.l4_proto[row] = layout.l4_proto
    return keys


def flow_keys_chunk(
    buffer: bytes | bytearray, starts: npt.NDArray[np.int64], caplens: npt.NDArray[np.int64],
    linktypes: npt.NDArray[np.int64],
) -> FlowKeys:  # fmt: skip
    """:func:`flow_keys` of the records ``buffer[starts[i] : starts[i] + caplens[i]]``: the
    commonest frames (:func:`~ndis_offload.packet.locate_batch.plain_tcp_rows`) read at their
    fixed offsets with numpy gathers, every other record through :func:`flow_keys` (a
    property test holds the two equal)."""
    count = len(starts)
    data = np.frombuffer(buffer, dtype=np.uint8)
    keys = FlowKeys.empty(count)
    other = np.ones(count, dtype=np.bool_)
    for shape, rows in plain_tcp_rows(data, starts, caplens, linktypes):
        if not rows.size:
            continue
        other[rows] = False
        base = starts[rows][:, None]
        width = shape.addr_len
        keys.ip_version[rows] = shape.ip_version
        keys.l4_proto[rows] = IPPROTO_TCP
        for table, offset in ((keys.src, shape.src), (keys.dst, shape.src + width)):
            table[rows, :width] = data[base + offset + np.arange(width)]
        keys.src_ex[rows] = keys.src[rows]
        keys.dst_ex[rows] = keys.dst[rows]
        ports = data[base + shape.l4 + np.arange(4)].astype(np.uint16)
        keys.sport[rows] = (ports[:, 0] << 8) | ports[:, 1]
        keys.dport[rows] = (ports[:, 2] << 8) | ports[:, 3]
    rest_rows = np.flatnonzero(other)
    if rest_rows.size:
        view = memoryview(buffer)
        rest = flow_keys([
            (int(linktypes[r]), bytes(view[int(starts[r]) : int(starts[r]) + int(caplens[r])]))
            for r in rest_rows.tolist()
        ])  # fmt: skip
        for name in FlowKeys.__slots__:
            getattr(keys, name)[rest_rows] = getattr(rest, name)
    return keys

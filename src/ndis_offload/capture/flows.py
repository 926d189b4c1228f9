"""RSS flow keys of captured frames: what a NIC would feed its Toeplitz hash.

Frames a NIC cannot interpret (not IPv4/IPv6, malformed, cut before the transport ports)
get ``ip_version`` 0 and no hash, as "RSS hashing types" requires.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ndis_offload.capture.linktype import to_ethernet
from ndis_offload.engine.rss import FlowKeys
from ndis_offload.errors import PacketError
from ndis_offload.packet.headers import IPPROTO_TCP, IPPROTO_UDP, parse_frame


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

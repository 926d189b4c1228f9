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
from ndis_offload.packet.proto import ETHERTYPE_IPV4, ETHERTYPE_IPV6, LINKTYPE_ETHERNET


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
    """:func:`flow_keys` of the records ``buffer[starts[i] : starts[i] + caplens[i]]``, the
    commonest frames read with numpy gathers: complete untagged Ethernet II + IPv4 without
    options or IPv6 without extension headers + TCP, by the tests of
    ``packet.headers._plain_tcp`` (whose answers are the locator's); every other record
    through :func:`flow_keys` (a property test holds the two equal)."""
    count = len(starts)
    data = np.frombuffer(buffer, dtype=np.uint8)
    if count == 0 or data.size == 0:
        return flow_keys([(int(t), b"") for t in linktypes.tolist()])
    last = data.size - 1

    def at(offset: int, width: int = 1) -> npt.NDArray[np.uint8]:
        index = np.minimum(starts[:, None] + offset + np.arange(width), last)
        got: npt.NDArray[np.uint8] = data[index] if width > 1 else data[index[:, 0]]
        return got

    def be16(offset: int) -> npt.NDArray[np.int64]:
        pair = at(offset, 2).astype(np.int64)
        return (pair[:, 0] << 8) | pair[:, 1]

    eth = linktypes == LINKTYPE_ETHERNET
    ethertype = be16(12)
    v4 = eth & (caplens >= 54) & (ethertype == ETHERTYPE_IPV4) & (at(14) == 0x45)
    v4 &= at(23) == IPPROTO_TCP
    total = be16(16)
    doff4 = (at(46).astype(np.int64) >> 4) * 4
    v4 &= (total >= 40) & (14 + total <= caplens) & ((be16(20) & 0x3FFF) == 0)
    v4 &= (doff4 >= 20) & (20 + doff4 <= total)
    v6 = eth & (caplens >= 74) & (ethertype == ETHERTYPE_IPV6) & ((at(14) >> 4) == 6)
    v6 &= at(20) == IPPROTO_TCP
    payload = be16(18)
    doff6 = (at(66).astype(np.int64) >> 4) * 4
    v6 &= (payload >= 20) & (54 + payload <= caplens) & (doff6 >= 20) & (doff6 <= payload)
    keys = FlowKeys.empty(count)
    for rows, version, src, width, l4 in ((np.flatnonzero(v4), 4, 26, 4, 34),
                                          (np.flatnonzero(v6), 6, 22, 16, 54)):  # fmt: skip
        if not rows.size:
            continue
        base = starts[rows][:, None]
        keys.ip_version[rows] = version
        keys.l4_proto[rows] = IPPROTO_TCP
        for table, offset in ((keys.src, src), (keys.dst, src + width)):
            table[rows, :width] = data[base + offset + np.arange(width)]
        keys.src_ex[rows] = keys.src[rows]
        keys.dst_ex[rows] = keys.dst[rows]
        ports = data[base + l4 + np.arange(4)].astype(np.uint16)
        keys.sport[rows] = (ports[:, 0] << 8) | ports[:, 1]
        keys.dport[rows] = (ports[:, 2] << 8) | ports[:, 3]
    other = np.flatnonzero(~(v4 | v6))
    if other.size:
        view = memoryview(buffer)
        rest = flow_keys([
            (int(linktypes[r]), bytes(view[int(starts[r]) : int(starts[r]) + int(caplens[r])]))
            for r in other.tolist()
        ])  # fmt: skip
        for name in FlowKeys.__slots__:
            getattr(keys, name)[other] = getattr(rest, name)
    return keys

"""RSS hash of a received frame (``rss-hashing-functions``): Toeplitz over source address,
destination address and, for TCP, source port and destination port."""

from __future__ import annotations

from ndis_offload.packet.headers import IPPROTO_TCP, parse_frame
from ndis_offload.packet.rss import toeplitz


def rss_hash(key: bytes, frame: bytes | bytearray | memoryview) -> int:
    """``NdisHashFunctionToeplitz`` with every hash type on: ``NDIS_HASH_TCP_IPV4`` /
    ``_TCP_IPV6`` for TCP (not for non-first fragments), ``NDIS_HASH_IPV4`` / ``_IPV6``
    for anything else."""
    lay = parse_frame(frame)
    data = bytes(lay.pseudo_src) + bytes(lay.pseudo_dst)
    if lay.l4_proto == IPPROTO_TCP and lay.l4_len:
        data += bytes(frame[lay.l4_offset : lay.l4_offset + 4])
    return toeplitz(key, data)

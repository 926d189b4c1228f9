"""Plain Ethernet/IP/TCP/UDP bytes: header location and RFC 1071 checksums (no NDIS here)."""

from ndis_offload.packet.checksum import (
    batch_checksums,
    batch_sums,
    internet_checksum,
    ones_complement_sum,
    pseudo_header_sum_ipv4,
    pseudo_header_sum_ipv6,
    update_checksum,
)
from ndis_offload.packet.headers import FrameLayout, parse_frame

__all__ = [
    "FrameLayout",
    "batch_checksums",
    "batch_sums",
    "internet_checksum",
    "ones_complement_sum",
    "parse_frame",
    "pseudo_header_sum_ipv4",
    "pseudo_header_sum_ipv6",
    "update_checksum",
]

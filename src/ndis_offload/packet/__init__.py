"""Plain Ethernet/IP/TCP/UDP bytes: the frame locator, header layouts and RFC 1071 checksums
(no NDIS here)."""

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
from ndis_offload.packet.locate import Hop, Layer, Located, Stop, locate
from ndis_offload.packet.locate_batch import Locations, locate_batch
from ndis_offload.packet.proto import Frame

__all__ = [
    "Frame",
    "FrameLayout",
    "Hop",
    "Layer",
    "Located",
    "Locations",
    "Stop",
    "batch_checksums",
    "batch_sums",
    "internet_checksum",
    "locate",
    "locate_batch",
    "ones_complement_sum",
    "parse_frame",
    "pseudo_header_sum_ipv4",
    "pseudo_header_sum_ipv6",
    "update_checksum",
]

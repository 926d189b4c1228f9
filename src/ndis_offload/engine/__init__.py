"""Software offload engine: transmit checksum insertion, LSO and USO; receive checksum
validation and RSC, on frame bytes."""

from ndis_offload.engine.batch import ip_versions, validate_batch, validate_batch_words
from ndis_offload.engine.receive import validate_receive
from ndis_offload.engine.rsc import CoalescedFrame, RscCoalescer
from ndis_offload.engine.rss import rss_hash
from ndis_offload.engine.transmit import (
    Segmentation,
    insert_checksums,
    segment_tcp,
    segment_udp,
    transmit_checksum,
    transmit_lso,
    transmit_uso,
)

__all__ = [
    "CoalescedFrame",
    "RscCoalescer",
    "Segmentation",
    "insert_checksums",
    "ip_versions",
    "rss_hash",
    "segment_tcp",
    "segment_udp",
    "transmit_checksum",
    "transmit_lso",
    "transmit_uso",
    "validate_batch",
    "validate_batch_words",
    "validate_receive",
]

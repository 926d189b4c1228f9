"""Software offload engine: transmit checksum insertion, LSO and USO, Linux GSO of captured
sends (tunnelled, BIG TCP); receive checksum validation and RSC, on frame bytes.

Zero-copy segmentation: ``segment_tcp_rows`` / ``segment_udp_rows`` return the segments as
rows of one numpy buffer (:class:`SegmentRows`: ``frame(i)`` / iteration give memoryviews,
``frames()`` the ``bytes``), byte for byte what ``segment_tcp`` / ``segment_udp`` return,
without making an object per segment; the buffer is the caller's to keep."""

from ndis_offload.engine.batch import (
    ip_version,
    ip_versions,
    validate_batch,
    validate_batch_words,
)
from ndis_offload.engine.gso_send import segment_gso
from ndis_offload.engine.receive import validate_receive
from ndis_offload.engine.rsc import CoalescedFrame, RscCoalescer
from ndis_offload.engine.rsc_stats import RscStatistics, rsc_aborts
from ndis_offload.engine.rss import rss_hash
from ndis_offload.engine.transmit import (
    Segmentation,
    SegmentRows,
    insert_checksums,
    segment_tcp,
    segment_tcp_rows,
    segment_udp,
    segment_udp_rows,
    transmit_checksum,
    transmit_lso,
    transmit_uso,
)

__all__ = [
    "CoalescedFrame",
    "RscCoalescer",
    "RscStatistics",
    "SegmentRows",
    "Segmentation",
    "insert_checksums",
    "ip_version",
    "ip_versions",
    "rsc_aborts",
    "rss_hash",
    "segment_gso",
    "segment_tcp",
    "segment_tcp_rows",
    "segment_udp",
    "segment_udp_rows",
    "transmit_checksum",
    "transmit_lso",
    "transmit_uso",
    "validate_batch",
    "validate_batch_words",
    "validate_receive",
]

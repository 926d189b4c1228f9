"""Software offload engine: transmit checksum insertion, LSO and USO, Linux GSO of captured
sends (tunnelled, BIG TCP); receive checksum validation and RSC, on frame bytes.

Zero-copy segmentation: ``segment_tcp_rows`` / ``segment_udp_rows`` return the segments as
rows of one numpy buffer (:class:`SegmentRows`: ``frame(i)`` / iteration give memoryviews,
``frames()`` the ``bytes``), byte for byte what ``segment_tcp`` / ``segment_udp`` return,
without making an object per segment; the buffer is the caller's to keep."""

from typing import TYPE_CHECKING

from ndis_offload._lazy import lazy_exports

if TYPE_CHECKING:
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

_EXPORTS = {
    "ip_version": "ndis_offload.engine.batch",
    "ip_versions": "ndis_offload.engine.batch",
    "validate_batch": "ndis_offload.engine.batch",
    "validate_batch_words": "ndis_offload.engine.batch",
    "segment_gso": "ndis_offload.engine.gso_send",
    "validate_receive": "ndis_offload.engine.receive",
    "CoalescedFrame": "ndis_offload.engine.rsc",
    "RscCoalescer": "ndis_offload.engine.rsc",
    "RscStatistics": "ndis_offload.engine.rsc_stats",
    "rsc_aborts": "ndis_offload.engine.rsc_stats",
    "rss_hash": "ndis_offload.engine.rss",
    "Segmentation": "ndis_offload.engine.transmit",
    "SegmentRows": "ndis_offload.engine.transmit",
    "insert_checksums": "ndis_offload.engine.transmit",
    "segment_tcp": "ndis_offload.engine.transmit",
    "segment_tcp_rows": "ndis_offload.engine.transmit",
    "segment_udp": "ndis_offload.engine.transmit",
    "segment_udp_rows": "ndis_offload.engine.transmit",
    "transmit_checksum": "ndis_offload.engine.transmit",
    "transmit_lso": "ndis_offload.engine.transmit",
    "transmit_uso": "ndis_offload.engine.transmit",
}
"""Each public name and its module, imported on first use (PEP 562)."""

__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)

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

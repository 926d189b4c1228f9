"""Public names of ``ndis_offload.engine``, listed once: type checkers read them here,
and ``__init__.py`` imports each on first use (``lazy_loader.attach_stub``)."""

from .batch import (
    ip_version as ip_version,
    ip_versions as ip_versions,
    validate_batch as validate_batch,
    validate_batch_words as validate_batch_words,
)
from .gso_send import segment_gso as segment_gso
from .receive import validate_receive as validate_receive
from .rsc import CoalescedFrame as CoalescedFrame, RscCoalescer as RscCoalescer
from .rsc_stats import RscStatistics as RscStatistics, rsc_aborts as rsc_aborts
from .rss import rss_hash as rss_hash
from .transmit import (
    Segmentation as Segmentation,
    SegmentRows as SegmentRows,
    insert_checksums as insert_checksums,
    segment_tcp as segment_tcp,
    segment_tcp_rows as segment_tcp_rows,
    segment_udp as segment_udp,
    segment_udp_rows as segment_udp_rows,
    transmit_checksum as transmit_checksum,
    transmit_lso as transmit_lso,
    transmit_uso as transmit_uso,
)

"""Software offload engine: transmit checksum insertion, LSO and USO on frame bytes."""

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
    "Segmentation",
    "insert_checksums",
    "segment_tcp",
    "segment_udp",
    "transmit_checksum",
    "transmit_lso",
    "transmit_uso",
]

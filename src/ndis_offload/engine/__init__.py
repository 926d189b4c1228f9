"""Software offload engine: transmit checksum insertion, LSO and USO, Linux GSO of captured
sends (tunnelled, BIG TCP); receive checksum validation and RSC, on frame bytes.

Zero-copy segmentation: ``segment_tcp_rows`` / ``segment_udp_rows`` return the segments as
rows of one numpy buffer (:class:`SegmentRows`: ``frame(i)`` / iteration give memoryviews,
``frames()`` the ``bytes``), byte for byte what ``segment_tcp`` / ``segment_udp`` return,
without making an object per segment; the buffer is the caller's to keep."""

import lazy_loader

# The public names are listed once, in ``__init__.pyi``; each is imported on first use.
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)

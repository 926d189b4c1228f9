"""The counters of a capture job, declared once (:class:`Counts`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ndis_offload.capture.linktype import add_frames_per_linktype


@dataclass(slots=True, kw_only=True)
class Counts:
    """The counters of a job, declared once: kept by
    :class:`~ndis_offload.io.pcap_jobs.JobResult`, by the forked pieces of ``pcap fix``
    (:class:`~ndis_offload.io.local_fix.PieceDone`) and, along a chain of pieces, by
    :class:`~ndis_offload.io.pieces.Carry`."""

    frames_out: int = 0
    changed: int = 0
    """Checksum fields completed (fix), frames cut (segment), frames merged away (coalesce)."""
    unsupported: dict[int, int] = field(default_factory=dict)
    """Frames per link type the checks cannot decode (see
    :func:`~ndis_offload.io.pcap_jobs.unsupported_linktypes`)."""
    slow_frames: int = 0
    """Frames the vectorized header walk left to the per-frame one."""

    def add_counts(self, other: Counts) -> None:
        """Add ``other``'s counters to these."""
        self.frames_out += other.frames_out
        self.changed += other.changed
        self.slow_frames += other.slow_frames
        add_frames_per_linktype(self.unsupported, other.unsupported)


__all__ = ["Counts"]

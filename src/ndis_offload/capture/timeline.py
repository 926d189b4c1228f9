"""A capture over time, in bounded memory: frames by diagnosis and bytes per flow, per time bin.

The capture's length is unknown while it streams, so the bins start narrow
(:data:`FIRST_WIDTH`) and double whenever a frame falls past the last one (two neighbours
merge; the total is unchanged). Memory is ``bins`` x (diagnoses + ``max_flows``) counters,
whatever the capture size. Frames time-stamped before the first frame (a capture that is
not in time order) count in the first bin. Time arrives as arguments (seconds since the
capture's first frame are computed here from the timestamps given).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ndis_offload.capture.analyze import N_DIAG

FIRST_WIDTH = 0.001
"""Seconds per bin to begin with (doubled as the capture grows)."""


class Timeline:
    """Per-bin counters: frames and bytes by :class:`~ndis_offload.capture.analyze.Diagnosis`,
    bytes by flow (the first ``max_flows`` flows seen; later ones add to ``other_bytes``)."""

    def __init__(self, bins: int = 240, max_flows: int = 1024) -> None:
        if bins < 2 or bins % 2:
            raise ValueError("bins must be an even number >= 2")
        self.bins = bins
        self.max_flows = max_flows
        self.width = FIRST_WIDTH
        self.origin: float | None = None
        self.last = 0.0
        """Seconds from the first frame to the latest frame seen."""
        self.frames = np.zeros((bins, N_DIAG), dtype=np.int64)
        self.bytes = np.zeros((bins, N_DIAG), dtype=np.int64)
        self.flow_bytes: dict[int, npt.NDArray[np.int64]] = {}
        self.other_bytes = np.zeros(bins, dtype=np.int64)

    def feed(
        self,
        seconds: npt.NDArray[np.float64],
        flows: npt.NDArray[np.uint64],
        sizes: npt.NDArray[np.int64],
        diagnoses: npt.NDArray[np.int8],
    ) -> None:
        """Account one chunk: per frame its timestamp (seconds, any origin), flow hash
        (0: no flow), captured length and diagnosis."""
        if len(seconds) == 0:
            return
        if self.origin is None:
            self.origin = float(seconds[0])
        rel = np.maximum(seconds - self.origin, 0.0)
        self.last = max(self.last, float(rel.max()))
        while self.last >= self.width * self.bins:
            self._double()
        index = np.minimum((rel / self.width).astype(np.int64), self.bins - 1)
        diag = diagnoses.astype(np.int64)
        cells = index * N_DIAG + diag
        size = self.bins * N_DIAG
        self.frames += np.bincount(cells, minlength=size).reshape(self.bins, N_DIAG)
        self.bytes += (
            np.bincount(cells, weights=sizes, minlength=size)
            .astype(np.int64)
            .reshape(self.bins, N_DIAG)
        )
        uniq, inverse = np.unique(flows, return_inverse=True)
        per = np.zeros((len(uniq), self.bins), dtype=np.int64)
        np.add.at(per, (inverse, index), sizes)
        for u, flow in enumerate(uniq.tolist()):
            if flow == 0:
                continue
            series = self.flow_bytes.get(flow)
            if series is None:
                if len(self.flow_bytes) >= self.max_flows:
                    self.other_bytes += per[u]
                    continue
                series = self.flow_bytes[flow] = np.zeros(self.bins, dtype=np.int64)
            series += per[u]

    def _double(self) -> None:
        """Halve the resolution: bin ``i`` becomes bins ``2i`` and ``2i + 1`` added."""
        half = self.bins // 2

        def merged(a: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
            out = np.zeros_like(a)
            out[:half] = a.reshape(half, 2, *a.shape[1:]).sum(axis=1)
            return out

        self.frames = merged(self.frames)
        self.bytes = merged(self.bytes)
        self.other_bytes = merged(self.other_bytes)
        self.flow_bytes = {k: merged(v) for k, v in self.flow_bytes.items()}
        self.width *= 2

    @property
    def used(self) -> int:
        """Bins from the first frame to the last (the rest are empty)."""
        return 0 if self.origin is None else min(self.bins, int(self.last / self.width) + 1)

    def starts(self) -> npt.NDArray[np.float64]:
        """Start of each used bin, in seconds from the first frame."""
        return np.arange(self.used, dtype=np.float64) * self.width


__all__ = ["FIRST_WIDTH", "Timeline"]

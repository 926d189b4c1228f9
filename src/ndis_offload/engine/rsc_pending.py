"""Units' growth held as arrays across the bulk DPCs of one mix of flows (``push_batch``).

In a bulk DPC of many flows every flow is one block that continues its unit as it stands
(``rsc_batch``'s bulk path). Once a DPC of a mix of flows has gone that way, the next ones
of the same mix (the scan's shared ``heads`` and ``keys``) are checked with array operations
against the units' tails and sizes kept here (a row per flow), and their growth -- payload
views, bytes, sums, segments, minimum TTL, the last segment's fields and window -- is added
to arrays instead of to the units one by one. :func:`settle` joins the held growth to the
units with one :func:`~ndis_offload.engine.rsc_unit.extend_units` call (the one place units
grow: the sums, counts, minimum and latest fields of several blocks are those of one block
of them all) before anything else reads a unit: a batch of another kind, a block that does
not continue its unit as it stands, ``push``, ``flush``, an expiry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ndis_offload.engine.rsc_unit import Scu, extend_units
from ndis_offload.packet.proto import Frame

IntArray = npt.NDArray[np.int64]


@dataclass(slots=True, eq=False)
class Pending:
    """The growth held for the units of one mix of flows (arrays: one entry per flow)."""

    heads: list[int]
    """The scan's flow heads of the mix (shared by its batches)."""
    keys: list[bytes]
    """The scan's flow keys of the mix (shared by its batches)."""
    scus: list[Scu]
    """The flows' units, in ``keys`` order."""
    tail: IntArray
    """``rsc_rules.UNIT_FIELDS`` rows: each unit's tail with the growth held."""
    size: IntArray
    """Each unit's IP datagram bytes with the growth held."""
    length: IntArray
    psum: IntArray
    ttl: IntArray
    win: IntArray
    batches: int
    """Batches held (each adds ``heads[f + 1] - heads[f]`` segments to flow ``f``)."""
    views: list[list[Frame]]
    """Per batch held: the payload view of each scanned segment, in table order."""


def hold(heads: list[int], keys: list[bytes], scus: list[Scu], tail: IntArray) -> Pending:
    """Start holding growth for ``scus``, whose tails are the rows of ``tail``."""
    count = len(scus)
    size = np.array([scu.size for scu in scus], dtype=np.int64)
    zeros = np.zeros(count, dtype=np.int64)
    return Pending(heads, keys, scus, tail, size, zeros, zeros.copy(),
                   np.full(count, 0x100, dtype=np.int64), zeros.copy(), 0, [])  # fmt: skip


def settle(pending: Pending) -> None:
    """Join the held growth to the units: a block of every held segment of each flow."""
    if not pending.batches:
        return
    heads, views = pending.heads, pending.views
    spans = list(zip(heads, heads[1:], strict=False))
    # Flow f's pieces: its columns of the first batch, then of the second... (slicing each
    # batch's views is as fast as any gather of them).
    pieces = [[view for batch in views for view in batch[h0:h1]] for h0, h1 in spans]
    segs = [(h1 - h0) * pending.batches for h0, h1 in spans]
    extend_units(
        zip(
            pending.scus, pieces, pending.length.tolist(), segs, segs, [0] * len(segs),
            pending.ttl.tolist(), pending.tail.T.tolist(), pending.win.tolist(),
            pending.psum.tolist(), strict=True,
        )
    )  # fmt: skip
    pending.batches = 0
    pending.views = []


__all__ = ["Pending", "hold", "settle"]

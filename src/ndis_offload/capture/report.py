"""Per-frame records for ``pcap verify --frames``: one JSON-ready dict per frame.

Each record names the frame (1-based, as Wireshark numbers it), its diagnosis, and every
layer the locator found, outermost first, with its offset in the record, the offset of its
checksum field (``null`` when it has none to check) and the checksum state (``ok``,
``wrong``, ``offload``, ``cut``, ``none``), why the walk stopped (``stop``, with a ``reason``
when something was left unchecked: MACsec, a cut header, a non-IP payload) and any
``error``, so results can be joined with tshark's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from ndis_offload.capture.analyze import Diagnosis
from ndis_offload.capture.checks import Checks, Sum, layer_names
from ndis_offload.packet.locate import Layer, Stop


def frame_records(
    checks: Checks, diag: npt.NDArray[np.int8], first_index: int
) -> Iterator[dict[str, Any]]:
    """The records of one chunk's frames, in order."""
    loc = checks.loc
    for row in range(len(diag)):
        base = int(loc.starts[row])
        layers = []
        for col, name in enumerate(layer_names(loc, row)):
            fld = int(checks.layer_field[row, col])
            state = Sum(int(checks.layer_state[row, col]))
            layers.append(
                {
                    "protocol": name,
                    "kind": Layer(int(loc.kind[row, col])).name,
                    "offset": int(loc.offset[row, col]) - base,
                    "checksum_field": fld - base if fld >= 0 else None,
                    "state": state.name.lower(),
                }
            )
        record: dict[str, Any] = {
            "frame": first_index + row + 1,
            "diagnosis": Diagnosis(int(diag[row])).label,
            "layers": layers,
            "stop": Stop(int(loc.stop[row])).name.lower(),
        }
        error = checks.errors.get(row)
        if error is not None:
            record["error"] = error.reason
        elif loc.stop[row] != Stop.END:  # why the rest is unchecked (MACsec, cut, not IP)
            record["reason"] = loc.reasons.get(row) or loc.located(row).reason
        yield record


__all__ = ["frame_records"]

"""Frame-size histogram pictures (matplotlib, the optional ``plot`` extra), written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from ndis_offload.capture.analyze import size_bin_labels
from ndis_offload.errors import BackendError
from ndis_offload.io.atomic import atomic_output


def save_size_plot(
    path: str | Path,
    edges: tuple[int, ...],
    before: npt.NDArray[np.int64],
    after: npt.NDArray[np.int64],
) -> None:
    """Bar chart of frame sizes as captured and as on the wire (oversized frames cut)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise BackendError("--plot needs matplotlib: pip install 'ndis-offload[plot]'") from exc
    labels = size_bin_labels(edges)
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.bar(x - 0.2, before, 0.4, label="captured")
    ax.bar(x + 0.2, after, 0.4, label="on the wire (LSO / RSC undone)")
    ax.set_xticks(x, labels, rotation=45, ha="right")
    ax.set_yscale("symlog")
    ax.set_xlabel("frame size (bytes)")
    ax.set_ylabel("frames")
    ax.legend()
    fig.tight_layout()
    suffix = Path(path).suffix.lstrip(".") or "png"
    try:
        with atomic_output(path) as out:
            fig.savefig(out, format=suffix)
    finally:
        plt.close(fig)


__all__ = ["save_size_plot"]

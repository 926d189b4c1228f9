"""The machine-readable description behind ``ndis-offload spec --json``.

``{"constants": {NAME: int}, "sizeof": {TYPE: int}, "offsetof": {"TYPE.Field.Sub": int},
"bits": {"TYPE.Field.Sub.Bit": [byte_offset, bit_offset, bit_width]},
"revisions": {TYPE: {revision: size}}}``. ``byte_offset`` is that of the bit field's
little-endian storage unit; ``bit_offset`` counts from its least significant bit.
"""

from __future__ import annotations

from typing import Any

from ndis_offload.constants.registry import CONSTANTS
from ndis_offload.structs import STRUCTS


def describe() -> dict[str, Any]:
    """Every constant, structure size, field offset and bit field the package defines."""
    sizeof: dict[str, int] = {}
    offsetof: dict[str, int] = {}
    bits: dict[str, list[int]] = {}
    revisions: dict[str, dict[str, int]] = {}
    for cls in STRUCTS:
        layout = cls.layout()
        name = cls.C_NAME
        assert name is not None
        sizeof[name] = layout.size
        for path, offset in layout.offsets():
            offsetof[f"{name}.{path}"] = offset
        for path, byte_offset, bit_offset, width in layout.bit_fields():
            bits[f"{name}.{path}"] = [byte_offset, bit_offset, width]
        if cls.REVISION_SIZES:
            revisions[name] = {str(rev): size for rev, size in cls.REVISION_SIZES.items()}
    return {
        "constants": dict(CONSTANTS),
        "sizeof": sizeof,
        "offsetof": offsetof,
        "bits": bits,
        "revisions": revisions,
    }

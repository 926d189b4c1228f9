"""``CNamedEnum``: an IntEnum whose members print as their verbatim C macro names."""

from __future__ import annotations

from enum import IntEnum


class CNamedEnum(IntEnum):
    """Members are C names without a prefix; ``c_prefix()`` gives it back."""

    @classmethod
    def c_prefix(cls) -> str:
        """The C prefix of every member (``NDIS_STATUS_``, ``OID_``)."""
        raise NotImplementedError

    @property
    def c_name(self) -> str:
        """The verbatim C macro name, e.g. ``NDIS_STATUS_INVALID_LENGTH``."""
        return f"{self.c_prefix()}{self.name}"

    @classmethod
    def name_of(cls, value: int) -> str:
        """The C name of ``value``, or its 32-bit hex spelling when this enum lacks it."""
        try:
            return cls(value).c_name
        except ValueError:
            return f"0x{value & 0xFFFFFFFF:08X}"

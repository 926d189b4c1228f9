"""The exception hierarchy: every error carries the NDIS status a real component would return.

``NdisError`` is the root. Decoders raise only ``DecodeError`` (or its ``TruncatedError``
subclass); the stack turns exceptions into OID completions at its dispatch boundary; the
packet engine raises ``PacketError`` naming the frame.
"""

from __future__ import annotations

from ndis_offload.constants.status import NdisStatus


class NdisError(Exception):
    """Root error: ``status`` is the ``NDIS_STATUS`` a real stack would complete with."""

    default_status: NdisStatus = NdisStatus.FAILURE

    def __init__(self, detail: str, status: NdisStatus | None = None) -> None:
        self.status: NdisStatus = self.default_status if status is None else status
        self.detail = detail
        super().__init__(f"{self.status.c_name}: {detail}")


class DecodeError(NdisError):
    """A structure failed to decode or validate (``struct`` C name, dotted ``field_path``)."""

    default_status = NdisStatus.INVALID_PARAMETER

    def __init__(
        self,
        detail: str,
        *,
        struct: str,
        field_path: str = "",
        offset: int | None = None,
        status: NdisStatus | None = None,
    ) -> None:
        self.struct = struct
        self.field_path = field_path
        self.offset = offset
        where = f"{struct}.{field_path}" if field_path else struct
        at = f" at offset {offset}" if offset is not None else ""
        super().__init__(f"{where}{at}: {detail}", status)


class TruncatedError(DecodeError):
    """The buffer is shorter than required; ``needed`` is the byte count (``BytesNeeded``)."""

    default_status = NdisStatus.BUFFER_TOO_SHORT

    def __init__(
        self,
        detail: str,
        *,
        struct: str,
        needed: int,
        field_path: str = "",
        offset: int | None = None,
        status: NdisStatus | None = None,
    ) -> None:
        self.needed = needed
        super().__init__(detail, struct=struct, field_path=field_path, offset=offset, status=status)


class EncodeError(NdisError):
    """A value cannot be encoded into its field (out of range for its C type or bit width)."""

    default_status = NdisStatus.INVALID_PARAMETER


class RequestError(NdisError):
    """An OID request failed (``oid`` is the numeric OID)."""

    default_status = NdisStatus.INVALID_PARAMETER

    def __init__(self, detail: str, *, oid: int, status: NdisStatus | None = None) -> None:
        self.oid = oid
        super().__init__(detail, status)


class StateError(NdisError):
    """An operation is not valid in the current state (e.g. query before set)."""

    default_status = NdisStatus.FAILURE


class PacketError(NdisError):
    """A frame is malformed or cannot be processed; ``frame_index`` names it (0-based)."""

    default_status = NdisStatus.INVALID_PARAMETER

    def __init__(
        self,
        detail: str,
        *,
        frame_index: int | None = None,
        offset: int | None = None,
        status: NdisStatus | None = None,
    ) -> None:
        self.frame_index = frame_index
        self.offset = offset
        self.reason = detail
        where = f"frame {frame_index}" if frame_index is not None else "frame"
        at = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"{where}{at}: {detail}", status)

    def for_frame(self, frame_index: int) -> PacketError:
        """The same error, naming ``frame_index``."""
        return PacketError(
            self.reason, frame_index=frame_index, offset=self.offset, status=self.status
        )


class BackendError(NdisError):
    """An I/O backend (capture file, TAP device, namespace) failed."""

    default_status = NdisStatus.FAILURE


STATUS_OF_ERROR: dict[type[NdisError], NdisStatus] = {
    cls: cls.default_status
    for cls in (
        NdisError,
        DecodeError,
        TruncatedError,
        EncodeError,
        RequestError,
        StateError,
        PacketError,
        BackendError,
    )
}
"""The one map from error class to the status it carries by default."""

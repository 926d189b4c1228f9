"""A pcapng writer for what crosses the wire: one Ethernet interface, Enhanced Packet Blocks
with the ``epb_flags`` direction bits (A -> B outbound, B -> A inbound) and an
``opt_comment`` on the first frame after the offload state changes."""

from __future__ import annotations

import struct
from typing import BinaryIO

SHB = 0x0A0D0D0A
IDB = 0x00000001
EPB = 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D
LINKTYPE_ETHERNET = 1
OPT_ENDOFOPT = 0
OPT_COMMENT = 1
EPB_FLAGS = 2
IF_NAME = 2
IF_TSRESOL = 9
INBOUND = 0b01
OUTBOUND = 0b10
SNAPLEN = 262144

_EPB_HEAD = struct.Struct("<IIIIIII")


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + bytes(-len(value) % 4)


def _block(kind: int, body: bytes) -> bytes:
    size = 12 + len(body)
    return struct.pack("<II", kind, size) + body + struct.pack("<I", size)


class PcapngWriter:
    """Frames are written as they cross; nanosecond timestamps."""

    def __init__(self, stream: BinaryIO, *, comment: str = "", interface: str = "wire") -> None:
        self.stream = stream
        self.frames = 0
        self._comment = b""
        options = _option(OPT_COMMENT, comment.encode()) if comment else b""
        shb = struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + options
        if options:
            shb += _option(OPT_ENDOFOPT, b"")
        stream.write(_block(SHB, shb))
        idb_opts = _option(IF_NAME, interface.encode()) + _option(IF_TSRESOL, b"\x09")
        stream.write(
            _block(IDB, struct.pack("<HHI", LINKTYPE_ETHERNET, 0, SNAPLEN) + idb_opts
                   + _option(OPT_ENDOFOPT, b""))
        )  # fmt: skip

    def comment_next(self, text: str) -> None:
        """Attach ``text`` to the next frame written."""
        self._comment = text.encode()

    def write(self, frames: list[bytes], ts_ns: int, direction: int) -> None:
        """``frames`` (bare Ethernet) crossing at ``ts_ns`` in ``direction``."""
        out = []
        high, low = (ts_ns >> 32) & 0xFFFFFFFF, ts_ns & 0xFFFFFFFF
        flags = _option(EPB_FLAGS, struct.pack("<I", direction))
        for frame in frames:
            size = len(frame)
            captured = min(size, SNAPLEN)
            options = flags
            if self._comment:
                options = _option(OPT_COMMENT, self._comment) + flags
                self._comment = b""
            options += _option(OPT_ENDOFOPT, b"")
            pad = -captured % 4
            total = 32 + captured + pad + len(options)
            out.append(_EPB_HEAD.pack(EPB, total, 0, high, low, captured, size))
            out.append(bytes(frame[:captured]))
            out.append(bytes(pad) + options + struct.pack("<I", total))
        self.stream.write(b"".join(out))
        self.frames += len(frames)


__all__ = ["INBOUND", "OUTBOUND", "PcapngWriter"]

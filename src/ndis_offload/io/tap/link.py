"""The wire between two NIC processes (``wire --processes 2``): one ``AF_UNIX``
``SOCK_SEQPACKET`` socket pair, one message per receive DPC.

A message is a batch of frames: ``<I count>`` then ``count`` ``<I length>`` words, then the
frames back to back. The sender gathers them with one ``sendmsg`` (no copy in Python), the
receiver takes messages with one ``recv_into`` each into a reused buffer. Every message
waiting when the receiver wakes, up to :data:`DPC_BUDGET` bytes, makes one batch (one
receive DPC), as a NIC's DPC takes whatever its ring holds up to a budget (NDIS receive
DPCs; Linux NAPI's ``budget``): when the receiver falls behind, its batches grow and the
per-DPC work (the coalescer's vectorized scan, the receive path's set-up) is shared by
more frames; when it keeps up, nothing waits for a batch to fill. A full link (the peer
process is behind) is waited on for at most :data:`FULL_WAIT` seconds, then the batch is
dropped and counted, as a NIC drops a send when its transmit ring stays full: both
processes may be sending at once, so an unbounded wait could deadlock them.

The control channel between the processes is a second (stream) socket pair carrying one
JSON request and one JSON answer per line (see :class:`ControlPipe`).
"""

from __future__ import annotations

import errno
import json
import select
import socket
import struct
from collections.abc import Callable, Sequence
from typing import Any

from ndis_offload.errors import BackendError

MAX_MESSAGE = 1 << 20
"""Largest message (bytes): a DPC's worth of frames (``DPC_BYTES`` plus one 64 KB frame) is
below it; a larger batch, or one the socket buffer cannot take, is split."""
DPC_BUDGET = 1 << 19
"""Bytes of waiting messages the receiver takes into one batch (about eight 64 KB LSO sends
cut to the MTU, as the one-process wire's ``DPC_BYTES``); a message that starts below the
budget is taken whole."""
SOCKET_BUFFER = 4 << 20
FULL_WAIT = 0.005
"""Seconds a sender waits for room on a full link before it drops the batch."""

_COUNT = struct.Struct("<I")
Buffer = bytes | bytearray | memoryview


def _force_buffers(sock: socket.socket) -> None:
    """Room for several DPCs in flight (root may exceed ``net.core.wmem_max``)."""
    for force, plain in ((32, socket.SO_SNDBUF), (33, socket.SO_RCVBUF)):  # SO_*BUFFORCE
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, SOCKET_BUFFER)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, plain, SOCKET_BUFFER)


class WireLink:
    """One end of the inter-process wire."""

    def __init__(self, sock: socket.socket, *, budget: int = DPC_BUDGET) -> None:
        self.sock = sock
        _force_buffers(sock)
        sock.setblocking(False)
        self.budget = budget
        self.buffer = bytearray(budget + MAX_MESSAGE)
        self.view = memoryview(self.buffer)
        self.dropped_batches = 0
        self.dropped_frames = 0
        self.closed = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, frames: Sequence[Buffer]) -> bool:
        """Send one batch; ``False`` when it was dropped (link full, or the peer is gone)."""
        if not frames or self.closed:
            return not frames
        header = struct.pack(f"<I{len(frames)}I", len(frames), *map(len, frames))
        parts = [header, *frames]
        size = len(header) + sum(map(len, frames))
        if size > MAX_MESSAGE:
            half = len(frames) // 2
            first = self.send(frames[:half])
            return self.send(frames[half:]) and first
        waited = False
        while True:
            try:
                self.sock.sendmsg(parts)
                return True
            except BlockingIOError:
                if waited:
                    break
                waited = True
                select.select([], [self.sock], [], FULL_WAIT)
            except (BrokenPipeError, ConnectionResetError):
                self.closed = True
                break
            except OSError as exc:  # EMSGSIZE: more than the socket buffer holds at once
                if exc.errno != errno.EMSGSIZE or len(frames) == 1:
                    raise
                half = len(frames) // 2
                first = self.send(frames[:half])
                return self.send(frames[half:]) and first
        self.dropped_batches += 1
        self.dropped_frames += len(frames)
        return False

    def receive(self, handle: Callable[[list[memoryview]], None]) -> int:
        """Hand the messages waiting now to ``handle``, those that start within
        :attr:`budget` bytes of a batch together, as views into the link's buffer (valid
        only until ``handle`` returns: nothing is copied); the number of messages. Sets
        :attr:`closed` on EOF."""
        view = self.view
        messages = 0
        frames: list[memoryview] = []
        at = 0
        while True:
            try:
                size = self.sock.recv_into(view[at : at + MAX_MESSAGE])
            except BlockingIOError:
                break
            except ConnectionResetError:
                size = 0
            if size == 0:
                self.closed = True
                break
            message = view[at : at + size]
            count = _COUNT.unpack_from(message, 0)[0] if size >= 4 else MAX_MESSAGE
            start = 4 + 4 * count
            lengths = struct.unpack_from(f"<{count}I", message, 4) if start <= size else ()
            if start + sum(lengths) != size:
                if frames:  # the messages before it are whole: they are indicated
                    handle(frames)
                raise BackendError(f"wire link: message of {size} bytes is malformed")
            for length in lengths:
                frames.append(message[start : start + length])
                start += length
            messages += 1
            at += size
            if at >= self.budget:  # the batch is full: one DPC, then the buffer again
                handle(frames)
                frames, at = [], 0
        if frames:
            handle(frames)
        return messages

    def close(self) -> None:
        self.sock.close()


class ControlPipe:
    """One end of the control channel between the processes (JSON lines, blocking)."""

    def __init__(self, sock: socket.socket, timeout: float = 10.0) -> None:
        self.sock = sock
        self.sock.settimeout(timeout)
        self.pending = b""

    def fileno(self) -> int:
        return self.sock.fileno()

    def _line(self) -> bytes | None:
        while b"\n" not in self.pending:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return line

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send a request and wait for its answer."""
        try:
            self.sock.sendall(json.dumps(request).encode() + b"\n")
            line = self._line()
        except OSError as exc:
            raise BackendError(f"NIC process: {exc.strerror or exc}") from exc
        if line is None:
            raise BackendError("NIC process: the other side has gone")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def next_request(self) -> Any:
        """The next request (``None`` when the other side has gone)."""
        try:
            line = self._line()
        except OSError:
            return None
        return None if line is None else json.loads(line)

    def answer(self, answer: dict[str, Any]) -> None:
        try:
            self.sock.sendall(json.dumps(answer).encode() + b"\n")
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()


def pair() -> tuple[WireLink, WireLink, ControlPipe, ControlPipe]:
    """(wire end A, wire end B, control end A, control end B)."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ca, cb = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return WireLink(a), WireLink(b), ControlPipe(ca), ControlPipe(cb)


__all__ = ["DPC_BUDGET", "FULL_WAIT", "MAX_MESSAGE", "ControlPipe", "WireLink", "pair"]

"""The two-namespace wire: namespaces A and B, one TAP NIC each, joined by the engine.

``passthrough``: a frame the kernel hands NIC A crosses with its virtio_net_hdr intact (a
64 KB GSO send stays one frame, a partial checksum stays partial), as a virtual switch does
between two vNICs on one host; the only work is NIC A's send-path check that the offload it
asks for is on. ``segment``: NIC A's send path does the offload work with the engine (LSO /
USO cut to the MSS, checksums filled), MTU-sized frames cross, and NIC B's receive path
validates checksums and coalesces (RSC) before handing frames to its kernel, as real NICs
do. The same loop, with one NIC and no peer, serves ``tap up``.

The loop is one thread: ``poll`` over both TAPs, the control socket and a signal wake-up
pipe; each ready TAP is drained up to ``batch`` frames per turn, and a turn's frames go
through the send and receive paths as one batch (one receive DPC).
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import signal
import time
import traceback
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, BinaryIO

from ndis_offload.constants.status import NdisStatus
from ndis_offload.errors import BackendError
from ndis_offload.io import netns
from ndis_offload.io.atomic import atomic_output
from ndis_offload.io.tap.cleanup import (
    RUN_DIR,
    Record,
    capture_temp_pattern,
    kill_inside,
    release,
)
from ndis_offload.io.tap.control import ControlServer, handle_request, nic_state, nic_statistics
from ndis_offload.io.tap.device import TapDevice
from ndis_offload.io.tap.link import ControlPipe, WireLink, pair
from ndis_offload.io.tap.linux import describe_flags
from ndis_offload.io.tap.nic import TapNic
from ndis_offload.io.tap.pcapng import INBOUND, OUTBOUND, PcapngWriter
from ndis_offload.io.tap.vnet_hdr import VIRTIO_NET_HDR_LEN
from ndis_offload.stack.features import FEATURES
from ndis_offload.stack.profiles import AdapterProfile

MODES = ("passthrough", "segment")
READ_SIZE = VIRTIO_NET_HDR_LEN + 65536 + 64
"""Largest read: the header, a 64 KB GSO frame and its Ethernet / VLAN headers."""

WRITE_ERRORS = (errno.EINVAL, errno.EAGAIN, errno.EIO, errno.ENOBUFS)
"""A write the kernel refuses (a header it rejects, a full queue) is counted, not fatal."""
DPC_BYTES = 524288
"""Segment mode, one process: bytes read before their wire frames go to the peer's receive
path as one receive DPC: up to eight 64 KB LSO sends (about 65,240 bytes read each) when the
kernel has queued them, one when it has not (a turn reads only what is waiting, up to
``batch`` frames; it never waits for more). Bigger DPCs are cheaper per send for the
coalescer (the offline receive + RSC stage: 50-56 us per 64 KB send in DPCs of four sends,
43 of eight; ``bench_wire.py --stages --dpc-sends N``). Measured live, one process,
segment on, rounds interleaved at load 4.5-5.8: 512 KB 2.03-2.06 wire CPU s/GB (2.82-2.91
Gbit/s) against 2.13-2.14 (2.38-2.71) at 256 KB; 1 MB 1.95 s/GB but 2.67 Gbit/s. Earlier
(load 4-6): 256 KB carried 2.36 Gbit/s at 2.46 s/GB, 32 KB (a DPC per send) 1.80 at 3.36."""
LINK_BYTES = 524288
"""``--processes 2``: bytes read before their frames go on the link as one message (up to
eight LSO sends; the receiving NIC merges the messages waiting up to ``link.DPC_BUDGET``).
Measured quiet, segment on, two processes: 512 KB 5.47-5.66 Gbit/s at 2.31-2.34 wire CPU
s/GB against 5.24-5.30 at 2.36-2.39 with 256 KB."""

DEFAULT_PROCESSES = 1
"""NIC processes of a wire without ``--processes`` (a capture always runs one). Measured on
the shared 2-vCPU machine (load 5-7, rounds interleaved), segment mode with offloads on:
one process 2.83 Gbit/s at 2.33 wire CPU s/GB, two 2.05-2.27 at 3.0-3.1 (the link's
copies and wake-ups cost more than the second core gave while other work held it);
passthrough 10.7 vs 8.3-9.6 Gbit/s."""

SIDE_ADDRESSES = {
    "a": ("10.77.0.1/24", "fd77::1/64", "02:00:00:77:00:0a"),
    "b": ("10.77.0.2/24", "fd77::2/64", "02:00:00:77:00:0b"),
}
"""Addresses inside the wire's own namespaces (nothing outside them sees them)."""


@dataclass
class Side:
    """A NIC, where its frames go, and the wire direction flag of frames it sends."""

    nic: TapNic
    peer: TapNic | None
    direction: int
    wire_frames: int = 0
    wire_bytes: int = 0
    largest: int = 0
    """The largest frame put on the wire since the last ``stats`` with ``reset_largest``."""
    link: WireLink | None = None
    """``--processes 2``: the peer NIC runs in another process, reached over this link
    (``peer`` is then ``None``); frames from it arrive on the same link."""
    buffer: bytearray = field(default_factory=lambda: bytearray(READ_SIZE))
    """Every read lands here (no allocation per frame)."""
    view: memoryview = field(init=False)

    def __post_init__(self) -> None:
        self.view = memoryview(self.buffer)


@dataclass
class WireOptions:
    profile_a: AdapterProfile
    profile_b: AdapterProfile
    variant_a: str = "reference"
    variant_b: str = "reference"
    mode: str = "passthrough"
    pcap: str | None = None
    socket: str | None = None
    mtu: int = 1500
    batch: int = 64
    processes: int = 1
    """2: each NIC runs in its own process (both cores used), joined by a socket pair;
    a capture (``pcap``) needs 1 (one writer sees both directions)."""
    tag: str = field(default_factory=lambda: str(os.getpid()))


class Loop:
    """The forwarding loop over ``sides`` (one or two), a control server and signals."""

    def __init__(
        self,
        sides: list[Side],
        *,
        mode: str,
        control: ControlServer | None,
        pcap: PcapngWriter | None,
        batch: int,
        handlers: dict[int, Callable[[], None]] | None = None,
    ) -> None:
        if mode not in MODES:
            raise BackendError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")
        self.sides = sides
        self.mode = mode
        self.control = control
        self.pcap = pcap
        self.batch = batch
        self.handlers = dict(handlers or {})
        """Other descriptors the loop polls, and what to do when one is readable."""
        self.started = time.monotonic()
        self.stopping = False
        self.peer_gone = False
        """The link to the peer NIC's process closed (it ended)."""
        self.write_errors = 0
        self.turns = 0
        for side in sides:
            side.nic.listeners.append(self._offload_changed)
        self._offload_changed(None)

    def _offload_changed(self, _nic: TapNic | None) -> None:
        if self.pcap is not None:
            state = "; ".join(
                f"{s.nic.name}: TUNSETOFFLOAD {describe_flags(s.nic.device.offload)}, NDIS "
                + (",".join(f for f in FEATURES if f in s.nic.usable) or "none")
                for s in self.sides
            )
            self.pcap.comment_next(f"offload state ({self.mode}): {state}")

    def stop(self, *_: object) -> None:
        self.stopping = True

    def stats(self, *, reset_largest: bool = False) -> dict[str, Any]:
        out = self._stats()
        if reset_largest:
            for side in self.sides:
                side.largest = 0
        return out

    def _stats(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "uptime": round(time.monotonic() - self.started, 3),
            "write_errors": self.write_errors,
            "link_dropped_frames": sum(
                s.link.dropped_frames for s in self.sides if s.link is not None
            ),
            "sides": {
                s.nic.name: {
                    **nic_state(s.nic),
                    "wire_frames": s.wire_frames,
                    "wire_bytes": s.wire_bytes,
                    "largest_frame": s.largest,
                    "counters": s.nic.counters.to_dict(),
                    "datapath": dict(s.nic.datapath.counters),
                    "statistics": nic_statistics(s.nic),
                    "last_error": s.nic.last_error,
                }
                for s in self.sides
            },
        }

    def _write(self, fd: int, data: bytes | bytearray | memoryview) -> None:
        try:
            os.write(fd, data)
        except OSError as exc:
            if exc.errno not in WRITE_ERRORS:
                raise
            self.write_errors += 1

    def _writev(self, fd: int, parts: tuple[bytes, bytes]) -> None:
        try:
            os.writev(fd, parts)
        except OSError as exc:
            if exc.errno not in WRITE_ERRORS:
                raise
            self.write_errors += 1

    def _pump(self, side: Side) -> None:
        """Drain up to ``batch`` frames from ``side``'s TAP into its reused buffer. Each
        frame is forwarded right after it is read (still in the cache, no allocation);
        segment mode hands the peer's receive path up to DPC_BYTES of wire frames at a time
        (one receive DPC; LINK_BYTES per link message to a peer process), so small frames
        share the per-DPC work."""
        fd = side.nic.device.fd
        nic, peer, pcap = side.nic, side.peer, self.pcap
        out_fd = peer.device.fd if peer is not None else -1
        buffer, view = side.buffer, side.view
        readv = os.readv
        link = side.link
        if self.mode == "passthrough":
            crossed: list[bytes] = []
            outgoing: list[bytes] = []
            pending = 0
            for _ in range(self.batch):
                try:
                    n = readv(fd, (buffer,))
                except BlockingIOError:
                    break
                raw = view[:n]
                if not nic.admit(raw):
                    continue
                size = n - VIRTIO_NET_HDR_LEN
                side.wire_frames += 1
                side.wire_bytes += size
                if size > side.largest:
                    side.largest = size
                if pcap is not None:
                    crossed.append(bytes(raw[VIRTIO_NET_HDR_LEN:]))
                if peer is not None:
                    self._write(out_fd, peer.receive_passthrough(raw))
                elif link is not None:
                    outgoing.append(bytes(raw))
                    pending += n
                    if pending >= LINK_BYTES:
                        link.send(outgoing)
                        outgoing, pending = [], 0
            if outgoing and link is not None:
                link.send(outgoing)
            if crossed and pcap is not None:
                pcap.write(crossed, time.time_ns(), side.direction)
            return
        wire: list[bytes] = []
        pending = octets = 0
        limit = DPC_BYTES if peer is not None else LINK_BYTES
        for _ in range(self.batch):
            try:
                n = readv(fd, (buffer,))
            except BlockingIOError:
                break
            frames = nic.transmit(view[:n])
            if frames:  # their sizes come with them: no pass over the DPC's frames
                wire += frames
                octets += nic.sent_bytes
                if nic.sent_largest > side.largest:
                    side.largest = nic.sent_largest
                pending += n
                if pending >= limit:
                    self._deliver(side, wire, octets, out_fd)
                    wire, pending, octets = [], 0, 0
        if wire:
            self._deliver(side, wire, octets, out_fd)

    def _deliver(self, side: Side, wire: list[bytes], octets: int, out_fd: int) -> None:
        """Wire frames from ``side`` (``octets`` bytes) reach its peer's receive path (one
        receive DPC)."""
        side.wire_frames += len(wire)
        side.wire_bytes += octets
        if self.pcap is not None:
            self.pcap.write(wire, time.time_ns(), side.direction)
        if side.peer is not None:
            for parts in side.peer.receive(wire, time.monotonic()):
                self._writev(out_fd, parts)
        elif side.link is not None:
            side.link.send(wire)

    def _arrive(self, side: Side) -> None:
        """Frames the peer process put on the link reach ``side``'s receive path: in
        segment mode, the messages waiting now (up to the link's ``DPC_BUDGET``) are one
        receive DPC, so a NIC that falls behind coalesces bigger batches."""
        assert side.link is not None
        nic, fd = side.nic, side.nic.device.fd

        def dpc(frames: list[memoryview]) -> None:
            if self.mode == "passthrough":
                for raw in frames:
                    self._write(fd, nic.receive_passthrough(raw))
            else:  # everything leaves the DPC (written or copied) before the next batch
                for parts in nic.receive(frames, time.monotonic()):  # type: ignore[arg-type]
                    self._writev(fd, parts)

        side.link.receive(dpc)
        if side.link.closed:
            self.stopping = self.peer_gone = True  # the peer process has gone: so has the wire

    def run(self, *, duration: float | None = None, tick: Callable[[], None] | None = None) -> None:
        """Forward until :meth:`stop` (SIGTERM / SIGINT) or ``duration`` seconds."""
        poller = select.poll()
        by_fd: dict[int, Side] = {}
        links: dict[int, Side] = {}
        for side in self.sides:
            by_fd[side.nic.device.fd] = side
            poller.register(side.nic.device.fd, select.POLLIN)
            if side.link is not None:
                links[side.link.fileno()] = side
                poller.register(side.link.fileno(), select.POLLIN)
        for fd in self.handlers:
            poller.register(fd, select.POLLIN)
        control_fd = self.control.fileno() if self.control is not None else -1
        if self.control is not None:
            poller.register(control_fd, select.POLLIN)
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        poller.register(wake_r, select.POLLIN)
        old_wakeup = signal.set_wakeup_fd(wake_w)
        old_handlers = {s: signal.signal(s, self.stop) for s in (signal.SIGTERM, signal.SIGINT)}
        deadline = None if duration is None else time.monotonic() + duration
        try:
            while not self.stopping:
                if deadline is not None and time.monotonic() >= deadline:
                    break
                for fd, _event in poller.poll(250):
                    ready = by_fd.get(fd)
                    if ready is not None:
                        self.turns += 1
                        self._pump(ready)
                    elif fd in links:
                        self._arrive(links[fd])
                    elif fd in self.handlers:
                        self.handlers[fd]()
                    elif fd == control_fd and self.control is not None:
                        self.control.service()
                    elif fd == wake_r:
                        try:
                            os.read(wake_r, 512)
                        except BlockingIOError:
                            pass
                if tick is not None:
                    tick()
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
            os.close(wake_r)
            os.close(wake_w)


CHILD_GRACE = 5.0
"""Seconds NIC B's process has to stop after SIGTERM before it is killed."""
PR_SET_PDEATHSIG = 1


def _nic_process(
    wire: Wire, nic: TapNic, link: WireLink, control: ControlPipe, parent: int
) -> None:
    """The body of NIC B's process: its own loop, serving the requests the parent forwards;
    it ends with SIGTERM, when the link closes, or when the parent dies (``PR_SET_PDEATHSIG``)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
    if os.getppid() != parent:  # the parent died before the line above
        return
    if wire.control is not None:
        wire.control.sock.close()  # the socket file is the parent's to remove
    for other in wire.nics.values():
        if other is not nic:
            other.device.close()
    loop = Loop(
        [Side(nic, None, INBOUND, link=link)], mode=wire.options.mode, control=None, pcap=None,
        batch=wire.options.batch,
    )  # fmt: skip

    def serve() -> None:
        request = control.next_request()
        if request is None:
            loop.stop()
            return
        control.answer(handle_request({nic.name: nic}, request, loop.stats))

    loop.handlers[control.fileno()] = serve
    loop.run()


def _handler_ignore(_sig: int, _frame: FrameType | None) -> None:
    """SIGINT / SIGTERM during teardown are ignored: teardown runs to its end."""


class Wire:
    """Build the namespaces, NICs, control socket and capture; :meth:`run`; :meth:`close`
    removes everything (also when setup fails half-way)."""

    def __init__(self, options: WireOptions, *, sides: tuple[str, ...] = ("a", "b")) -> None:
        self.options = options
        why = netns.preflight()
        if why is not None:
            raise BackendError(why)
        self.record = Record(os.getpid())
        self.namespaces = {side: f"{netns.PREFIX}{options.tag}{side}" for side in sides}
        self.socket_path = options.socket or os.path.join(RUN_DIR, f"wire-{options.tag}.sock")
        self.nics: dict[str, TapNic] = {}
        self._exit = ExitStack()
        self.control: ControlServer | None = None
        self.pcap: PcapngWriter | None = None
        self.loop: Loop | None = None
        self.child = 0
        """``processes=2``: the pid of NIC B's process while it runs."""
        self.remote: ControlPipe | None = None
        self._link: WireLink | None = None
        if options.processes not in (1, 2):
            raise BackendError(f"processes must be 1 or 2, not {options.processes}")
        if options.processes == 2 and options.pcap:
            raise BackendError("a capture (--pcap) needs --processes 1: one writer for both sides")
        try:
            self._build(sides)
        except BaseException:
            self.close()
            raise

    def _build(self, sides: tuple[str, ...]) -> None:
        o = self.options
        os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
        self.record.namespaces = list(self.namespaces.values())
        self.record.sockets = [self.socket_path]
        if o.pcap:
            self.record.files = [capture_temp_pattern(o.pcap)]
        self.record.save()  # before anything exists: a crash from here on is sweepable
        profiles = {"a": (o.profile_a, o.variant_a), "b": (o.profile_b, o.variant_b)}
        for side, namespace in self.namespaces.items():
            netns.add(namespace)
            profile, variant = profiles[side]
            device = TapDevice(f"ndo{side}", namespace=namespace)
            nic = TapNic(side, profile, variant=variant, mtu=o.mtu, device=device)
            self.nics[side] = nic
            v4, v6, mac = SIDE_ADDRESSES[side]
            nic.device.configure(v4, mtu=o.mtu, mac=mac)
            netns.ip(namespace, "addr", "add", v6, "dev", nic.device.name, "nodad")
        if o.pcap:
            stream: BinaryIO = self._exit.enter_context(atomic_output(o.pcap))
            self.pcap = PcapngWriter(
                stream,
                comment=f"ndis-offload wire, mode {o.mode}, MTU {o.mtu}: A->B outbound, "
                "B->A inbound",
            )
        self.control = ControlServer(self.socket_path, self.nics, self.stats)
        names = list(self.nics)
        sides_list = [
            Side(self.nics[n], self.nics[names[1 - i]] if len(names) == 2 else None,
                 OUTBOUND if i == 0 else INBOUND)
            for i, n in enumerate(names)
        ]  # fmt: skip
        self.loop = Loop(
            sides_list, mode=o.mode, control=self.control, pcap=self.pcap, batch=o.batch
        )

    def stats(self, *, reset_largest: bool = False) -> dict[str, Any]:
        assert self.loop is not None
        out = self.loop.stats(reset_largest=reset_largest)
        if self.remote is not None:
            other = self.remote.call({"op": "stats", "reset_largest": reset_largest})["stats"]
            out["sides"].update(other["sides"])
            out["write_errors"] += other["write_errors"]
            out["link_dropped_frames"] += other["link_dropped_frames"]
        return {
            **out,
            "processes": 2 if self.child else 1,
            "namespaces": self.namespaces,
            "socket": self.socket_path,
        }

    def _split_request(self, request: Any) -> dict[str, Any]:
        """A control request while NIC B runs in its own process: its part goes there (an
        answer with ``NDIS_STATUS_FAILURE`` when that process does not answer)."""
        try:
            return self._forward(request)
        except BackendError as err:
            return {"ok": False, "status": NdisStatus.FAILURE.c_name, "error": err.detail}

    def _forward(self, request: Any) -> dict[str, Any]:
        op = request.get("op") if isinstance(request, dict) else None
        side = request.get("side", "all") if isinstance(request, dict) else None
        if op not in ("query", "set", "caps") or side not in ("all", "a", "b"):
            return handle_request(self.nics, request, self.stats)  # stats, or the error
        assert self.remote is not None
        results: list[dict[str, Any]] = []
        for name in ("a", "b") if side == "all" else (side,):
            one = {**request, "side": name}
            if name == "a":
                answer = handle_request({"a": self.nics["a"]}, one, self.stats)
            else:
                answer = self.remote.call(one)
            if "results" not in answer:
                return answer
            results += answer["results"]
        return {"ok": all(r.get("ok", True) for r in results), "results": results}

    def describe(self) -> dict[str, Any]:
        """What a user needs to send traffic over the wire."""
        return {
            "mode": self.options.mode,
            "namespaces": self.namespaces,
            "socket": self.socket_path,
            "addresses": {s: SIDE_ADDRESSES[s][:2] for s in self.namespaces},
            "devices": {s: nic.device.name for s, nic in self.nics.items()},
            "tunsetoffload": {s: describe_flags(n.device.offload) for s, n in self.nics.items()},
            "pid": os.getpid(),
            "processes": self.options.processes,
        }

    def run(self, *, duration: float | None = None, tick: Callable[[], None] | None = None) -> None:
        assert self.loop is not None
        if self.options.processes == 2 and len(self.nics) == 2:
            self._run_split(duration, tick)
        else:
            self.loop.run(duration=duration, tick=tick)

    def _run_split(self, duration: float | None, tick: Callable[[], None] | None) -> None:
        """NIC B goes to a child process; this one keeps NIC A and the control socket."""
        end_a, end_b, ctl_a, ctl_b = pair()
        nic_a, nic_b = self.nics["a"], self.nics["b"]
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # NIC B's process: never returns
            code = 1
            try:
                end_a.close()
                ctl_a.close()
                _nic_process(self, nic_b, end_b, ctl_b, parent)
                code = 0
            except BaseException:  # noqa: BLE001 - a child reports and exits, never unwinds
                traceback.print_exc()
            finally:
                os._exit(code)
        self.child = pid
        end_b.close()
        ctl_b.close()
        nic_b.device.close()  # NIC B's TAP belongs to its process now
        self._link, self.remote = end_a, ctl_a
        assert self.control is not None
        self.control.handler = self._split_request
        self.loop = Loop(
            [Side(nic_a, None, OUTBOUND, link=end_a)], mode=self.options.mode,
            control=self.control, pcap=None, batch=self.options.batch,
        )  # fmt: skip
        self.loop.run(duration=duration, tick=tick)
        if self.loop.peer_gone:
            code = self._stop_child(signal_first=False)
            if code != 0:  # 0: it stopped on a signal of its own (SIGINT to the group)
                raise BackendError(f"NIC B's process (pid {pid}) failed, exit status {code}")

    def _stop_child(self, *, signal_first: bool = True) -> int:
        """Stop NIC B's process (SIGTERM, SIGKILL after :data:`CHILD_GRACE`); its exit code."""
        if not self.child:
            return 0
        if signal_first:
            try:
                os.kill(self.child, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + CHILD_GRACE
        while True:
            done, status = os.waitpid(self.child, os.WNOHANG)
            if done:
                break
            if time.monotonic() >= deadline:
                os.kill(self.child, signal.SIGKILL)
                _, status = os.waitpid(self.child, 0)
                break
            time.sleep(0.01)
        self.child = 0
        for end in (self._link, self.remote):
            if end is not None:
                end.close()
        self._link = self.remote = None
        return os.waitstatus_to_exitcode(status)

    def close(self, *, commit_capture: bool = True) -> None:
        """Tear everything down; idempotent. Signals are deferred while it runs."""
        old = {s: signal.signal(s, _handler_ignore) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self._stop_child()
            if self.control is not None:
                self.control.close()
                self.control = None
            for name in self.namespaces.values():
                if netns.exists(name):
                    kill_inside(name)
            for nic in self.nics.values():
                nic.close()
            self.nics.clear()
            try:
                if commit_capture:
                    self._exit.close()
                else:
                    self._exit.__exit__(KeyboardInterrupt, KeyboardInterrupt(), None)
            finally:
                release(self.record)
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)


class TapUp:
    """``tap up``: one TAP NIC (optionally in a namespace, created if missing and then owned)
    with the control socket; what the kernel sends goes through the send path to the
    capture, if any (the wire is unplugged)."""

    def __init__(
        self,
        name: str,
        profile: AdapterProfile,
        *,
        variant: str = "reference",
        namespace: str | None = None,
        socket: str | None = None,
        pcap: str | None = None,
        mtu: int = 1500,
        mode: str = "segment",
    ) -> None:
        why = netns.preflight()
        if why is not None:
            raise BackendError(why)
        self.record = Record(os.getpid())
        self.namespace = namespace
        self.socket_path = socket or os.path.join(RUN_DIR, f"tap-{name}-{os.getpid()}.sock")
        self.nics: dict[str, TapNic] = {}
        self._exit = ExitStack()
        self.control: ControlServer | None = None
        self.loop: Loop | None = None
        try:
            os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
            self.record.sockets = [self.socket_path]
            if pcap:
                self.record.files = [capture_temp_pattern(pcap)]
            if namespace and not netns.exists(namespace):
                self.record.namespaces = [namespace]
                self.record.save()
                netns.add(namespace)
            else:
                self.record.save()
            nic = TapNic(name, profile, variant=variant, namespace=namespace, mtu=mtu)
            self.nics[name] = nic
            netns.ip(namespace, "link", "set", "dev", name, "mtu", str(mtu), "up")
            writer = None
            if pcap:
                stream: BinaryIO = self._exit.enter_context(atomic_output(pcap))
                writer = PcapngWriter(stream, comment=f"ndis-offload tap {name}: sent frames")
            self.control = ControlServer(self.socket_path, self.nics, self.stats)
            self.loop = Loop(
                [Side(nic, None, OUTBOUND)], mode=mode, control=self.control, pcap=writer,
                batch=64,
            )  # fmt: skip
        except BaseException:
            self.close()
            raise

    def stats(self, *, reset_largest: bool = False) -> dict[str, Any]:
        assert self.loop is not None
        return {**self.loop.stats(reset_largest=reset_largest), "socket": self.socket_path}

    def describe(self) -> dict[str, Any]:
        nic = next(iter(self.nics.values()))
        return {
            "device": nic.device.name,
            "namespace": self.namespace,
            "socket": self.socket_path,
            "tunsetoffload": describe_flags(nic.device.offload),
            "pid": os.getpid(),
        }

    def run(self, *, duration: float | None = None) -> None:
        assert self.loop is not None
        self.loop.run(duration=duration)

    def close(self) -> None:
        old = {s: signal.signal(s, _handler_ignore) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            if self.control is not None:
                self.control.close()
                self.control = None
            for nic in self.nics.values():
                nic.close()
            self.nics.clear()
            try:
                self._exit.close()
            finally:
                release(self.record)
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)


__all__ = [
    "DEFAULT_PROCESSES",
    "MODES",
    "SIDE_ADDRESSES",
    "Loop",
    "Side",
    "TapUp",
    "Wire",
    "WireOptions",
]

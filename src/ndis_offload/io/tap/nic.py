"""A TAP "NIC": a TAP device bound to a software miniport whose offloads follow the NDIS
model.

The Linux kernel plays the bound protocol driver (it enables offload for IPv4 and IPv6 with
``OID_OFFLOAD_ENCAPSULATION`` at bind, as TCP/IP does); every
``NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG`` indication it receives recomputes
``TUNSETOFFLOAD`` from the offloads it may use. Frames the kernel transmits (TAP reads) take
the miniport's send path; frames for the kernel (TAP writes) come out of its receive path.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from ndis_offload.constants.status import NdisStatus
from ndis_offload.errors import PacketError
from ndis_offload.io.tap.device import TapDevice
from ndis_offload.io.tap.linux import describe_flags, tun_offload_flags
from ndis_offload.io.tap.vnet_hdr import (
    VALID_HDR,
    VIRTIO_NET_HDR_LEN,
    ZERO_HDR,
    VirtioNetHdr,
    VirtioNetHdrGso,
    receive_header,
    send_info,
)
from ndis_offload.lab.scenario import AdapterSpec, make_miniport
from ndis_offload.stack.core import NdisStack
from ndis_offload.stack.datapath import NetBufferList, ReceiveIndication, SoftwareDatapath
from ndis_offload.stack.miniport import ReferenceMiniport
from ndis_offload.stack.profiles import AdapterProfile
from ndis_offload.stack.protocol import ProtocolDriver
from ndis_offload.stack.requests import StatusIndication
from ndis_offload.structs.nbl_info import NdisTcpIpChecksumNetBufferListInfoReceive

COUNTER_COLUMNS = ("frames", "bytes", "segments", "coalesced", "refused")
"""Per-offload counters: frames handled, their bytes, segments made (LSO/USO), segments
coalesced (RSC), frames refused (asked for an offload that is off, or malformed)."""

_SUCCEEDED = NdisTcpIpChecksumNetBufferListInfoReceive(
    TcpChecksumSucceeded=1, UdpChecksumSucceeded=1
).to_int()
_FAILED = NdisTcpIpChecksumNetBufferListInfoReceive(
    TcpChecksumFailed=1, UdpChecksumFailed=1, IpChecksumFailed=1
).to_int()
_SUCCESS = NdisStatus.SUCCESS
_RSC_ROWS = {4: "rsc4", 6: "rsc6"}
"""The counter row of coalesced units per IP version."""
_CACHE_LIMIT = 4096
_PLAIN = ("", 0, 0, 0)
_GSO_HEADERS: dict[tuple[bool, int, int, int], bytes] = {}
"""``receive_header`` of coalesced units per (validated, IP version, header length, MSS)."""
Buffer = bytes | bytearray | memoryview


@dataclass
class Counters:
    """``rows[offload] = [frames, bytes, segments, coalesced, refused]`` plus named events."""

    rows: dict[str, list[int]] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)

    def row(self, name: str) -> list[int]:
        found = self.rows.get(name)
        if found is None:
            found = self.rows[name] = [0] * len(COUNTER_COLUMNS)
        return found

    def event(self, name: str, count: int = 1) -> None:
        self.events[name] = self.events.get(name, 0) + count

    def to_dict(self) -> dict[str, Any]:
        return {
            "offloads": {
                name: dict(zip(COUNTER_COLUMNS, values, strict=True))
                for name, values in sorted(self.rows.items())
            },
            "events": dict(sorted(self.events.items())),
        }


TRACE_LIMIT = 4096
"""Trace events a live NIC keeps: it runs for days and every control request (``oid stats``
polls included) records a few."""


class KernelProtocol(ProtocolDriver):
    """The Linux kernel as the protocol bound to the adapter; calls ``on_config`` after every
    current-configuration indication."""

    def __init__(self, on_config: Callable[[], None]) -> None:
        super().__init__("linux")
        self._on_config = on_config

    def on_status(self, indication: StatusIndication) -> None:
        super().on_status(indication)
        if indication.StatusCode == NdisStatus.TASK_OFFLOAD_CURRENT_CONFIG:
            self._on_config()


class TapNic:
    """One TAP device + NDIS stack + software datapath. ``mtu`` is the wire MTU."""

    def __init__(
        self,
        name: str,
        profile: AdapterProfile,
        *,
        variant: str = "reference",
        namespace: str | None = None,
        mtu: int = 1500,
        device: TapDevice | None = None,
    ) -> None:
        self.name = name
        self.mtu = mtu
        self.profile = profile
        self.variant = variant
        self.counters = Counters()
        self.offload_log: deque[tuple[float, int, str]] = deque(maxlen=256)
        """``(time, TUNSETOFFLOAD value, reason)`` of the latest recomputations."""
        self.listeners: list[Callable[[TapNic], None]] = []
        self.last_error = ""
        self.current: frozenset[str] = frozenset()
        self._send_cache: dict[bytes, tuple[str, int, int, int]] = {}
        self._row: list[int] = []
        self.sent_bytes = 0
        """Bytes of the frames the last :meth:`transmit` returned (0 when none)."""
        self.sent_largest = 0
        """The largest of them."""
        """The counter row of the frame :meth:`_admit` admitted last."""
        self.device = device if device is not None else TapDevice(name, namespace=namespace)
        try:
            self.miniport = cast(ReferenceMiniport, make_miniport(AdapterSpec(profile, variant)))
            self.datapath: SoftwareDatapath = self.miniport.datapath
            """The miniport's own data path: what it sends and indicates is what its
            ``OID_GEN_STATISTICS`` / ``OID_TCP_RSC_STATISTICS`` answers count."""
            self.stack = NdisStack(self.miniport, trace_limit=TRACE_LIMIT)
            self.protocol = KernelProtocol(self._on_indication)
            self.stack.bind(self.protocol)
            self.apply_offload("bind")
            if self.miniport.supports_offload:
                self.protocol.enable()  # TCP/IP enables offload at bind
            self.apply_offload("enable")
        except BaseException:
            self.device.close()
            raise

    # -- control ----------------------------------------------------------------------------
    @property
    def usable(self) -> frozenset[str]:
        """What the kernel (the protocol) may use now."""
        return self.protocol.usable

    def _on_indication(self) -> None:
        self.apply_offload("indication")

    def apply_offload(self, reason: str) -> int:
        """Recompute ``TUNSETOFFLOAD`` from the offloads the kernel may use."""
        flags = tun_offload_flags(self.usable, uso_supported=self.device.uso_supported)
        changed = flags != self.device.offload or not self.offload_log
        self.device.set_offload(flags)
        self.offload_log.append((time.time(), flags, reason))
        self.counters.event("tunsetoffload")
        self.current = self.miniport.current_features
        if changed:
            for listener in self.listeners:
                listener(self)
        return flags

    def describe_offload(self) -> str:
        return describe_flags(self.device.offload)

    # -- send path: the kernel transmits ----------------------------------------------------
    def _classify(self, raw: Buffer) -> tuple[str, int, int, int]:
        """``(feature, checksum word, LSO word, USO word)`` for a frame read with its header;
        :class:`PacketError` when malformed or without an NDIS counterpart."""
        key = bytes(raw[:24])  # the header and the Ethernet header up to its type field
        found = self._send_cache.get(key)
        if found is None:
            info = send_info(VirtioNetHdr.decode(raw), memoryview(raw)[VIRTIO_NET_HDR_LEN:])
            found = (
                info.feature,
                info.TcpIpChecksumNetBufferListInfo,
                info.TcpLargeSendNetBufferListInfo,
                info.UdpSegmentationOffloadInfo,
            )
            if len(self._send_cache) >= _CACHE_LIMIT:
                self._send_cache.clear()
            self._send_cache[key] = found
        return found

    def _admit(self, raw: Buffer) -> tuple[str, int, int, int] | None:
        """Classify and count a frame read with its header (its counter row is then
        :attr:`_row`); ``None`` when it is refused (an offload that is off) or malformed
        (counted, dropped)."""
        size = len(raw) - VIRTIO_NET_HDR_LEN
        if size < 14:
            self.counters.row("malformed")[4] += 1
            self.counters.event("malformed_short_frame")
            return None
        if raw[0] == 0 and raw[1] == 0:
            row = self._row = self.counters.row("plain")
            row[0] += 1
            row[1] += size
            return _PLAIN
        try:
            found = self._classify(raw)
        except PacketError as err:
            self.counters.row("malformed")[4] += 1
            self.counters.event("malformed_vnet_hdr")
            self.last_error = err.detail
            return None
        row = self._row = self.counters.row(found[0])
        if found[0] not in self.current:
            row[4] += 1
            self.counters.event(f"refused_{found[0]}")
            return None
        row[0] += 1
        row[1] += size
        return found

    def admit(self, raw: Buffer) -> bool:
        """Passthrough: may this frame (read with its header) cross as it is? Its offload
        request must be well formed and on in the current configuration."""
        return self._admit(raw) is not None

    def transmit(self, raw: Buffer) -> list[bytes]:
        """The miniport's send path for one frame read with its header: the engine completes
        checksums and cuts LSO / USO sends to the MSS. Returns the bare wire frames (new
        objects: ``raw`` may be reused afterwards); ``[]`` when refused or malformed."""
        found = self._admit(raw)
        if found is None:
            self.sent_bytes = self.sent_largest = 0
            return []
        feature, csum, lso, uso = found
        frame = memoryview(raw)[VIRTIO_NET_HDR_LEN:]
        if not feature:
            # nothing to offload: the frame as it is, counted in the miniport's transmit
            # statistics without the cost of a send-path round trip (a variant's own
            # send_net_buffer_lists does not see these frames)
            out = bytes(frame)
            self.datapath.transmit_statistics.account([out], len(out))
            self.sent_bytes = self.sent_largest = len(out)
            return [out]
        row = self._row  # the feature's row, counted by _admit
        completion = self.miniport.send_net_buffer_lists([NetBufferList(frame, csum, lso, uso)])[0]
        frames = completion.frames
        if completion.status != _SUCCESS:
            self.sent_bytes = self.sent_largest = 0
            row[4] += 1
            self.counters.event("send_failed")
            self.last_error = completion.detail
            return []
        if completion.wire_bytes >= 0 and frames:  # the engine's: the first is the largest
            self.sent_bytes, self.sent_largest = completion.wire_bytes, len(frames[0])
        else:  # a variant's own send path: every frame looked at
            sizes = list(map(len, frames))
            self.sent_bytes, self.sent_largest = sum(sizes), max(sizes, default=0)
        if lso or uso:
            row[2] += len(frames)
        return frames

    # -- receive path: frames for the kernel ------------------------------------------------
    def receive(self, frames: list[bytes], now: float) -> list[tuple[bytes, bytes]]:
        """One receive DPC: the miniport's receive path (checksum validation, RSC) over bare
        wire frames; returns ``(virtio_net_hdr, frame)`` per indicated frame, to write with
        ``writev`` (no copy of the frame)."""
        indications = self.miniport.receive_dpc(frames, now)  # every SCU indicated by its end
        return [self._to_kernel(ind) for ind in indications]

    def _to_kernel(self, ind: ReceiveIndication) -> tuple[bytes, bytes]:
        frame = ind.frame
        segs = ind.TcpRecvSegCoalesceInfo & 0xFFFF
        word = ind.TcpIpChecksumNetBufferListInfo
        validated = bool(word & _SUCCEEDED) and not word & _FAILED
        if segs:
            version = 6 if frame[12:14] == b"\x86\xdd" else 4
            hdr_len = _tcp_header_end(frame, version)
            row = self.counters.row(_RSC_ROWS[version])
            row[0] += 1
            row[1] += len(frame)
            row[3] += segs
            mss = max(1, self.mtu - (hdr_len - 14))
            if len(frame) - hdr_len <= mss:
                return (VALID_HDR if validated else ZERO_HDR), frame
            key = (validated, version, hdr_len, mss)
            header = _GSO_HEADERS.get(key)
            if header is None:
                if len(_GSO_HEADERS) >= _CACHE_LIMIT:
                    _GSO_HEADERS.clear()
                header = _GSO_HEADERS[key] = receive_header(
                    validated=validated, coalesced_mss=mss, ip_version=version, hdr_len=hdr_len
                )
            return header, frame
        row = self.counters.row("rx_checksum_ok" if validated else "rx")
        row[0] += 1
        row[1] += len(frame)
        return (VALID_HDR if validated else ZERO_HDR), frame

    def receive_passthrough(self, raw: Buffer) -> Buffer:
        """A frame that crossed the wire with its header (passthrough): counted, written as
        is (a partial checksum stays partial, a GSO frame stays one frame)."""
        row = self.counters.row("rx_passthrough")
        row[0] += 1
        row[1] += len(raw) - VIRTIO_NET_HDR_LEN
        if raw[1] & ~VirtioNetHdrGso.ECN:
            row[3] += 1
        return raw

    def close(self) -> None:
        self.device.close()


def _tcp_header_end(frame: bytes, version: int) -> int:
    l4 = 14 + ((frame[14] & 0xF) * 4 if version == 4 else 40)
    return l4 + (frame[l4 + 12] >> 4) * 4


__all__ = ["COUNTER_COLUMNS", "Counters", "KernelProtocol", "TapNic"]

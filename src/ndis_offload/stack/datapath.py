"""The reference software miniport's send and receive paths: where the NDIS stack model
meets the packet engine.

Receive: checksum verdicts only for the Rx checksum offloads the current configuration has
on, and only after the first successful ``OID_OFFLOAD_ENCAPSULATION`` set; RSC only where
``Rsc.IPv4/IPv6.Enabled``.

A send is a frame plus its ``NET_BUFFER_LIST`` info words. The data path does the offload
work the frame asks for with the engine, but only what the miniport's current
``NDIS_OFFLOAD`` has on: a frame asking for an offload that is off is refused with
``NDIS_STATUS_FAILURE`` and counted (NetKVM fails such an NBL: ``CNBL::ParseLSO`` /
``ParseCSO`` in ``NetKVM/Common/ParaNdis_TX.cpp``; the NDIS docs require a miniport to
drop LSO sends after LSO was turned off).
"""

from __future__ import annotations

import operator
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, cast

from ndis_offload.constants.offload import NdisLsoIpVersion, NdisLsoType
from ndis_offload.constants.status import NdisStatus
from ndis_offload.engine import (
    CoalescedFrame,
    RscCoalescer,
    RscStatistics,
    ip_version,
    ip_versions,
    rss_hash,
    transmit_checksum,
    transmit_lso,
    transmit_uso,
    validate_batch_words,
    validate_receive,
)
from ndis_offload.errors import PacketError
from ndis_offload.stack.features import feature_for
from ndis_offload.structs.codec import NdisStruct
from ndis_offload.structs.nbl_info import (
    NdisLsoTransmit,
    NdisLsoV1Transmit,
    NdisLsoV2Transmit,
    NdisRscNblInfoInfo,
    NdisTcpIpChecksumNetBufferListInfoReceive,
    NdisTcpIpChecksumNetBufferListInfoTransmit,
    NdisUsoTransmit,
)


@dataclass(frozen=True, slots=True)
class NetBufferList:
    """One send: the frame and its ``NET_BUFFER_LIST_INFO`` words (0 = none requested).
    ``frame`` may be a view of a buffer the caller reuses after :meth:`SoftwareDatapath.send`
    returns (the completion's frames never alias it)."""

    frame: bytes | bytearray | memoryview
    TcpIpChecksumNetBufferListInfo: int = 0
    TcpLargeSendNetBufferListInfo: int = 0
    UdpSegmentationOffloadInfo: int = 0


@dataclass(frozen=True, slots=True)
class SendCompletion:
    """``NdisMSendNetBufferListsComplete`` for one NBL: status, the wire frames, and the
    ``TcpLargeSendNetBufferListInfo`` word written back (LSOv1 ``TcpPayload``)."""

    status: NdisStatus
    frames: list[bytes] = field(default_factory=list)
    TcpLargeSendNetBufferListInfo: int = 0
    detail: str = ""
    wire_bytes: int = -1
    """``sum(map(len, frames))`` when the send path knows it without a pass over the frames
    (the engine's LSO / USO cut, a single frame), else -1. Set only for frames the engine
    cut or sent whole: every frame but the last is full-sized, so the first is the largest."""


@dataclass
class TransmitStatistics:
    """The transmit members of ``NDIS_STATISTICS_INFO`` (``OID_GEN_STATISTICS``), counted
    on the frames put on the wire: a segmented send counts every segment with its own
    Ethernet, IP and L4 headers (``udp-segmentation-offload-uso-``: "the packet count is the
    number of MSS-sized segments, not 1"). Octets are frame bytes without the FCS."""

    ifHCOutUcastPkts: int = 0
    ifHCOutMulticastPkts: int = 0
    ifHCOutBroadcastPkts: int = 0
    ifHCOutUcastOctets: int = 0
    ifHCOutMulticastOctets: int = 0
    ifHCOutBroadcastOctets: int = 0
    ifOutDiscards: int = 0
    """Sends refused (the offload asked for is off, an MSS of 0)."""
    ifOutErrors: int = 0
    """Sends failed on a malformed frame."""

    @property
    def ifHCOutOctets(self) -> int:
        return self.ifHCOutUcastOctets + self.ifHCOutMulticastOctets + self.ifHCOutBroadcastOctets

    def account(self, frames: list[bytes], octets: int = -1) -> None:
        """Count the wire frames of one send (they share the destination address);
        ``octets``: their total length when the caller knows it (an LSO / USO cut's
        ``wire_bytes``), else summed here."""
        if not frames:
            return
        first = frames[0]
        if octets < 0:
            octets = len(first) if len(frames) == 1 else sum(map(len, frames))
        if not first or not first[0] & 1:  # the I/G bit clear: unicast (nearly every send)
            self.ifHCOutUcastPkts += len(frames)
            self.ifHCOutUcastOctets += octets
        elif first[:6] == b"\xff" * 6:
            self.ifHCOutBroadcastPkts += len(frames)
            self.ifHCOutBroadcastOctets += octets
        else:
            self.ifHCOutMulticastPkts += len(frames)
            self.ifHCOutMulticastOctets += octets


@dataclass(frozen=True, slots=True)
class ReceiveIndication:
    """One NBL indicated up (``NdisMIndicateReceiveNetBufferLists``) with its info words."""

    frame: bytes
    TcpIpChecksumNetBufferListInfo: int = 0
    """The ``Receive`` view: checksum verdicts (0 while receive checksum offload is off)."""
    TcpRecvSegCoalesceInfo: int = 0
    """``NDIS_RSC_NBL_INFO``: ``CoalescedSegCount`` / ``DupAckCount`` (0 when not coalesced)."""
    RscTcpTimestampDelta: int = 0
    """``NetBufferListInfo[RscTcpTimestampDelta]``: latest minus earliest TCP TSval of the
    coalesced segments (read only when ``CoalescedSegCount > 0``)."""

    @property
    def checksum(self) -> NdisTcpIpChecksumNetBufferListInfoReceive:
        return NdisTcpIpChecksumNetBufferListInfoReceive.from_int(
            self.TcpIpChecksumNetBufferListInfo
        )

    @property
    def rsc(self) -> NdisRscNblInfoInfo:
        return NdisRscNblInfoInfo.from_int(self.TcpRecvSegCoalesceInfo)


_BATCH_FROM = 4
"""Receive batches this large go through ``RscCoalescer.push_batch`` (same output as
``push`` per frame, cheaper from a few frames on; one frame costs ~4x more that way)..."""
_BATCH_BYTES = 4096
"""... when they carry at least this many bytes: a DPC of pure ACKs (66 bytes each, nothing
to coalesce) costs more in the batch scan than frame by frame at any size (measured, per
ACK: 13.8 us by ``push`` in DPCs of 3, 29.8 / 21.4 / 17.8 us by ``push_batch`` in DPCs of
4 / 8 / 16; a 1448-byte segment costs ~1 us by ``push_batch`` in a DPC of 45)."""

_SUCCESS = NdisStatus.SUCCESS

_IP_BITS = NdisTcpIpChecksumNetBufferListInfoReceive(
    IpChecksumFailed=1, IpChecksumSucceeded=1, IpChecksumValueInvalid=1
).to_int()
_TCP_BITS = NdisTcpIpChecksumNetBufferListInfoReceive(
    TcpChecksumFailed=1, TcpChecksumSucceeded=1, TcpChecksumValueInvalid=1
).to_int()
_UDP_BITS = NdisTcpIpChecksumNetBufferListInfoReceive(
    UdpChecksumFailed=1, UdpChecksumSucceeded=1
).to_int()


def _verdict_mask(on: frozenset[str], version: int) -> int:
    """The ``Receive`` bits the current configuration lets the miniport report."""
    ip = version == 4 and feature_for("checksum", 4, "Rx", "IpChecksum") in on
    mask = _IP_BITS if ip else 0
    if feature_for("checksum", version, "Rx", "TcpChecksum") in on:
        mask |= _TCP_BITS
    if feature_for("checksum", version, "Rx", "UdpChecksum") in on:
        mask |= _UDP_BITS
    return mask


_CACHE_LIMIT = 1024
"""Entries kept by each decode / encode memo (there are few distinct info words)."""

_ETHERTYPE_VERSION = {(0x08, 0x00): 4, (0x86, 0xDD): 6}
_TYPE_HIGH = operator.itemgetter(12)
_TYPE_LOW = operator.itemgetter(13)
"""The two bytes of the Ethernet II type field, read in C as small ints (no object made per
frame): two passes cost about half of one ``struct`` unpack per frame (12 against 22 us for
a DPC of 360 frames)."""

_S = TypeVar("_S", bound=NdisStruct)
_WORDS: dict[NdisStruct, int] = {}
_DECODED: dict[tuple[type, int], object] = {}


_BY_ID: dict[int, tuple[NdisStruct, int]] = {}
"""``id(info) -> (info, word)``: the engine hands back a few cached info instances (one
per verdict), found here without hashing their fields; holding ``info`` keeps its id from
being reused while the entry lives."""


def _word(info: NdisStruct) -> int:
    """``info.to_int()``, memoized by identity, then by value (the structures are frozen
    and hashable)."""
    found = _BY_ID.get(id(info))
    if found is not None and found[0] is info:
        return found[1]
    word = _WORDS.get(info)
    if word is None:
        if len(_WORDS) >= _CACHE_LIMIT:
            _WORDS.clear()
        word = _WORDS[info] = info.to_int()
    if len(_BY_ID) >= _CACHE_LIMIT:
        _BY_ID.clear()
    _BY_ID[id(info)] = (info, word)
    return word


def _decoded(cls: type[_S], word: int) -> _S:
    """``cls.from_int(word)``, memoized per (structure, word)."""
    key = (cls, word)
    found = _DECODED.get(key)
    if found is None:
        if len(_DECODED) >= _CACHE_LIMIT:
            _DECODED.clear()
        found = _DECODED[key] = cls.from_int(word)
    return cast(_S, found)


_LSO_REQUESTS: dict[int, tuple[NdisLsoV1Transmit | NdisLsoV2Transmit, str]] = {}
_CHECKSUM_REQUESTS: dict[
    int, tuple[NdisTcpIpChecksumNetBufferListInfoTransmit, tuple[str, ...]]
] = {}


def _lso_request(word: int) -> tuple[NdisLsoV1Transmit | NdisLsoV2Transmit, str]:
    """The ``TcpLargeSendNetBufferListInfo`` word decoded (LSOv1 or LSOv2 by its ``Type``)
    and the feature it needs, memoized per word."""
    found = _LSO_REQUESTS.get(word)
    if found is None:
        lso: NdisLsoV1Transmit | NdisLsoV2Transmit
        if _decoded(NdisLsoTransmit, word).Type == NdisLsoType.V1_TYPE:
            lso = _decoded(NdisLsoV1Transmit, word)
            feature = feature_for("lsov1", 4)
        else:
            lso = _decoded(NdisLsoV2Transmit, word)
            feature = feature_for("lsov2", 6 if lso.IPVersion == NdisLsoIpVersion.IPv6 else 4)
        if len(_LSO_REQUESTS) >= _CACHE_LIMIT:
            _LSO_REQUESTS.clear()
        found = _LSO_REQUESTS[word] = (lso, feature)
    return found


def _checksum_request(
    word: int,
) -> tuple[NdisTcpIpChecksumNetBufferListInfoTransmit, tuple[str, ...]]:
    """The ``TcpIpChecksumNetBufferListInfo`` ``Transmit`` word decoded and the features
    of the checksums it asks for, memoized per word."""
    found = _CHECKSUM_REQUESTS.get(word)
    if found is None:
        info = _decoded(NdisTcpIpChecksumNetBufferListInfoTransmit, word)
        family = 4 if info.IsIPv4 else 6
        asked = (
            ("IpChecksum", info.IpHeaderChecksum and info.IsIPv4),
            ("TcpChecksum", info.TcpChecksum),
            ("UdpChecksum", info.UdpChecksum),
        )
        wanted = tuple(feature_for("checksum", family, "Tx", m) for m, on_ in asked if on_)
        if len(_CHECKSUM_REQUESTS) >= _CACHE_LIMIT:
            _CHECKSUM_REQUESTS.clear()
        found = _CHECKSUM_REQUESTS[word] = (info, wanted)
    return found


def _one_version(frames: list[bytes]) -> int:
    """4 or 6 when every frame is untagged Ethernet II with that one IP Ethertype, else 0
    (then :func:`ip_versions` walks each frame)."""
    try:
        high = set(map(_TYPE_HIGH, frames))
        if len(high) != 1:
            return 0
        low = set(map(_TYPE_LOW, frames))
    except IndexError:  # a frame too short for an Ethernet header
        return 0
    if len(low) != 1:
        return 0
    return _ETHERTYPE_VERSION.get((high.pop(), low.pop()), 0)


@dataclass(frozen=True)
class _ReceivePlan:
    rsc: dict[int, bool]
    checks: dict[int, tuple[bool, bool, bool]]
    """(IPv4 header, TCP, UDP) checksum validation on, per IP version."""
    masks: dict[int, int]
    rsc_both: bool
    """RSC on for IPv4 and IPv6: the whole DPC goes to the coalescer as it came, with no
    per-frame look at the EtherType (a frame of neither family is indicated alone, its
    verdict masked to none, as the per-family path indicates it)."""


class OffloadState(Protocol):
    """What a data path reads from its miniport: the features on now, and whether receive
    checksum offload may run yet (after the first ``OID_OFFLOAD_ENCAPSULATION`` set)."""

    @property
    def current_features(self) -> frozenset[str]: ...

    @property
    def receive_checksum_started(self) -> bool: ...


class SoftwareDatapath:
    """Send and receive paths of a miniport (the reference's, or any :class:`OffloadState`)
    done with the engine; ``counters`` counts what they did and refused."""

    def __init__(self, miniport: OffloadState, *, rsc_timeout: float = 0.0005) -> None:
        self.miniport = miniport
        self.counters: Counter[str] = Counter()
        self.coalescer = RscCoalescer(timeout=rsc_timeout)
        self.rsc_statistics = RscStatistics()
        """``OID_TCP_RSC_STATISTICS`` counters of the SCUs indicated (``Aborts``: from
        ``coalescer.exceptions``)."""
        self.transmit_statistics = TransmitStatistics()
        """``OID_GEN_STATISTICS`` transmit counters."""
        self._masks: dict[int, int] = {4: 0, 6: 0}
        """The ``Receive`` bits the configuration lets us report, per IP version (frames the
        coalescer indicates alone carry its verdicts, masked by these)."""
        self._plans: dict[tuple[frozenset[str], bool], _ReceivePlan] = {}

    # -- receive ---------------------------------------------------------------------------
    def receive(self, frames: list[bytes], now: float) -> list[ReceiveIndication]:
        """One receive DPC: validate checksums the current configuration has on (only after
        the first successful ``OID_OFFLOAD_ENCAPSULATION`` set), coalesce with RSC where it
        is on, and return the NBLs to indicate. Malformed frames are indicated without
        verdicts (a NIC does not drop them for the protocol's sake) and counted."""
        on = self.miniport.current_features
        started = self.miniport.receive_checksum_started
        plan = self._plan(on, started)
        self._masks = plan.masks
        self.counters["received"] += len(frames)
        if plan.rsc_both:  # every frame to the coalescer, in arrival order: it indicates
            return self._coalesce(frames, now)  # what it cannot hold (not TCP, not IP) alone
        version = _one_version(frames)
        if version and plan.rsc[version]:  # one family, all to the coalescer
            return self._coalesce(frames, now)
        versions = [version] * len(frames) if version else ip_versions(frames)
        words = [0] * len(frames)
        if started:
            for v in (4, 6):
                ip, tcp, udp = plan.checks[v]
                if plan.rsc[v] or not (ip or tcp or udp):  # the coalescer validates (E2)
                    continue
                picked = [i for i, have in enumerate(versions) if have == v]
                if not picked:
                    continue
                subset = [frames[i] for i in picked]
                if len(subset) < _BATCH_FROM:  # the vectorized pass has a large fixed cost
                    batch = [self._validate_one(f, ip, tcp, udp) for f in subset]
                else:
                    try:
                        batch = validate_batch_words(subset, ip=ip, tcp=tcp, udp=udp).tolist()
                    except PacketError:
                        batch = [self._validate_one(f, ip, tcp, udp) for f in subset]
                for i, word in zip(picked, batch, strict=True):
                    words[i] = int(word)
        out: list[ReceiveIndication] = []
        to_coalesce: list[bytes] = []
        for frame, v, word in zip(frames, versions, words, strict=True):
            if plan.rsc.get(v, False):
                to_coalesce.append(frame)
            else:
                out.append(ReceiveIndication(frame, word))
        if to_coalesce:
            out += self._coalesce(to_coalesce, now)
        return out

    def _coalesce(self, frames: list[bytes], now: float) -> list[ReceiveIndication]:
        if len(frames) >= _BATCH_FROM and (
            sum(map(len, frames[:_BATCH_FROM])) >= _BATCH_BYTES
            or sum(map(len, frames)) >= _BATCH_BYTES
        ):  # the first frames decide when they are full-sized: no pass over the DPC
            items = self.coalescer.push_batch(frames, now)
        else:  # ACKs: the per-frame path skips the vectorized scan's fixed cost
            items = [item for frame in frames for item in self.coalescer.push(frame, now)]
        return self._indications(items)

    def _plan(self, on: frozenset[str], started: bool) -> _ReceivePlan:
        """What the receive path does per IP version under ``on`` (cached per configuration:
        it changes only with an OID set)."""
        key = (on, started)
        plan = self._plans.get(key)
        if plan is None:
            checks = {
                v: (
                    v == 4 and feature_for("checksum", 4, "Rx", "IpChecksum") in on,
                    feature_for("checksum", v, "Rx", "TcpChecksum") in on,
                    feature_for("checksum", v, "Rx", "UdpChecksum") in on,
                )
                for v in (4, 6)
            }
            rsc = {v: feature_for("rsc", v, "Rx") in on for v in (4, 6)}
            plan = _ReceivePlan(
                rsc=rsc, checks=checks, masks=self._current_masks(on, started),
                rsc_both=rsc[4] and rsc[6],
            )  # fmt: skip
            if len(self._plans) >= _CACHE_LIMIT:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    @staticmethod
    def _current_masks(on: frozenset[str], started: bool) -> dict[int, int]:
        if not started:
            return {4: 0, 6: 0}
        return {4: _verdict_mask(on, 4), 6: _verdict_mask(on, 6)}

    def flush(self, now: float | None = None) -> list[ReceiveIndication]:
        """End of the DPC: indicate every coalesced unit still held."""
        if not self.coalescer.flow_count:  # nothing held (every DPC of ACKs, most others)
            return []
        self._masks = self._plan(
            self.miniport.current_features, self.miniport.receive_checksum_started
        ).masks
        return self._indications(self.coalescer.flush(now))

    def _indications(self, items: list[CoalescedFrame]) -> list[ReceiveIndication]:
        """The NBLs of what the coalescer indicated. A coalesced unit carries the
        coalescer's verdicts (it validated every segment); a frame it indicates alone
        carries them as far as the configuration lets us report."""
        out: list[ReceiveIndication] = []
        append = out.append
        masks = self._masks
        account = self.rsc_statistics.account
        units = segments = 0
        for item in items:
            rsc = item.rsc
            count = rsc.CoalescedSegCount
            if count > 0:
                units += 1
                segments += count
                account(item)
                append(
                    ReceiveIndication(
                        item.frame, _word(item.checksum), _word(rsc), item.timestamp_delta
                    )
                )
            else:
                word = _word(item.checksum) & masks.get(ip_version(item.frame), 0)
                append(ReceiveIndication(item.frame, word, _word(rsc)))
        if units:
            self.counters["rsc_units"] += units
            self.counters["rsc_segments"] += segments
        return out

    def _validate_one(self, frame: bytes, ip: bool, tcp: bool, udp: bool) -> int:
        try:
            return _word(validate_receive(frame, ip=ip, tcp=tcp, udp=udp))
        except PacketError:
            self.counters["malformed_received"] += 1
            return 0

    def rss_hash(self, key: bytes, frame: bytes) -> int:
        """The RSS hash the NIC reports with ``frame`` (Toeplitz, every hash type on)."""
        return rss_hash(key, frame)

    # -- send ------------------------------------------------------------------------------

    def _refuse(self, why: str, counter: str) -> SendCompletion:
        self.counters[counter] += 1
        self.counters["refused"] += 1
        return SendCompletion(NdisStatus.FAILURE, detail=why)

    def send(self, nbl: NetBufferList, *, index: int | None = None) -> SendCompletion:
        """Do the offload work ``nbl`` asks for; never raises for a bad frame. The frames
        put on the wire are counted in :attr:`transmit_statistics`."""
        done = self._send(nbl, index)  # a success has counted its frames
        if done.status != _SUCCESS:
            if done.status == NdisStatus.INVALID_PARAMETER:
                self.transmit_statistics.ifOutErrors += 1
            else:
                self.transmit_statistics.ifOutDiscards += 1
        return done

    def _send(self, nbl: NetBufferList, index: int | None) -> SendCompletion:
        on = self.miniport.current_features
        try:
            if nbl.TcpLargeSendNetBufferListInfo:
                return self._send_lso(nbl, on)
            if nbl.UdpSegmentationOffloadInfo:
                info = _decoded(NdisUsoTransmit, nbl.UdpSegmentationOffloadInfo)
                feature = feature_for("uso", 6 if info.IPVersion else 4)
                if feature not in on:
                    return self._refuse(
                        f"USO IPv{6 if info.IPVersion else 4} is off", f"refused_{feature}"
                    )
                result = transmit_uso(nbl.frame, info)
                frames = result.frames
                at = info.UdpHeaderOffset + 6
                if not info.IPVersion and nbl.frame[at : at + 2] == b"\0\0":
                    # udp-segmentation-offload-uso-: a zero UDP checksum from the stack means
                    # no UDP checksum (IPv4; IPv6 has no such datagrams)
                    frames = [f[:at] + b"\0\0" + f[at + 2 :] for f in frames]
                self.counters["uso_sends"] += 1
                self.counters["frames"] += len(frames)
                self.transmit_statistics.account(frames, result.wire_bytes)
                return SendCompletion(_SUCCESS, frames, wire_bytes=result.wire_bytes)
            if nbl.TcpIpChecksumNetBufferListInfo:
                return self._send_checksum(nbl, on)
            return self._sent_as_is(nbl)
        except PacketError as err:
            self.counters["malformed"] += 1
            error = err.for_frame(index) if index is not None else err
            return SendCompletion(NdisStatus.INVALID_PARAMETER, detail=str(error))

    def _send_lso(self, nbl: NetBufferList, on: frozenset[str]) -> SendCompletion:
        lso, feature = _lso_request(nbl.TcpLargeSendNetBufferListInfo)
        if feature not in on:
            return self._refuse(
                f"{feature} is off in the current configuration", f"refused_{feature}"
            )
        if lso.MSS == 0:
            return self._refuse("LSO info word with MSS 0", "refused_bad_mss")
        result, completion = transmit_lso(nbl.frame, lso)
        frames = result.frames
        counters = self.counters
        counters["lso_sends"] += 1
        counters["frames"] += len(frames)
        wire_bytes = result.wire_bytes
        self.transmit_statistics.account(frames, wire_bytes)
        return SendCompletion(_SUCCESS, frames, _word(completion), wire_bytes=wire_bytes)

    def _sent_as_is(self, nbl: NetBufferList) -> SendCompletion:
        """A send with no offload work: the frame goes out unchanged."""
        frame = bytes(nbl.frame)
        self.counters["frames"] += 1
        self.transmit_statistics.account([frame], len(frame))
        return SendCompletion(_SUCCESS, [frame], wire_bytes=len(frame))

    def _send_checksum(self, nbl: NetBufferList, on: frozenset[str]) -> SendCompletion:
        info, wanted = _checksum_request(nbl.TcpIpChecksumNetBufferListInfo)
        if not (info.IsIPv4 or info.IsIPv6):  # nblchecksum: no checksum work, sent as is
            return self._sent_as_is(nbl)
        for feature in wanted:
            if feature not in on:
                return self._refuse(
                    f"{feature} is off in the current configuration", f"refused_{feature}"
                )
        frame = transmit_checksum(nbl.frame, info)
        counters = self.counters
        counters["checksum_sends"] += 1
        counters["frames"] += 1
        self.transmit_statistics.account([frame], len(frame))
        return SendCompletion(_SUCCESS, [frame], wire_bytes=len(frame))

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

from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from ndis_offload.constants.offload import NdisLsoIpVersion, NdisLsoType
from ndis_offload.constants.status import NdisStatus
from ndis_offload.engine import (
    CoalescedFrame,
    RscCoalescer,
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
from ndis_offload.structs.nbl_info import (
    NdisLsoTransmit,
    NdisLsoV1Transmit,
    NdisLsoV2Transmit,
    NdisRscNblInfoInfo,
    NdisTcpIpChecksumNetBufferListInfoReceive,
    NdisTcpIpChecksumNetBufferListInfoTransmit,
    NdisUsoTransmit,
)


@dataclass(frozen=True)
class NetBufferList:
    """One send: the frame and its ``NET_BUFFER_LIST_INFO`` words (0 = none requested)."""

    frame: bytes
    TcpIpChecksumNetBufferListInfo: int = 0
    TcpLargeSendNetBufferListInfo: int = 0
    UdpSegmentationOffloadInfo: int = 0


@dataclass(frozen=True)
class SendCompletion:
    """``NdisMSendNetBufferListsComplete`` for one NBL: status, the wire frames, and the
    ``TcpLargeSendNetBufferListInfo`` word written back (LSOv1 ``TcpPayload``)."""

    status: NdisStatus
    frames: list[bytes] = field(default_factory=list)
    TcpLargeSendNetBufferListInfo: int = 0
    detail: str = ""


@dataclass(frozen=True)
class ReceiveIndication:
    """One NBL indicated up (``NdisMIndicateReceiveNetBufferLists``) with its info words."""

    frame: bytes
    TcpIpChecksumNetBufferListInfo: int = 0
    """The ``Receive`` view: checksum verdicts (0 while receive checksum offload is off)."""
    TcpRecvSegCoalesceInfo: int = 0
    """``NDIS_RSC_NBL_INFO``: ``CoalescedSegCount`` / ``DupAckCount`` (0 when not coalesced)."""

    @property
    def checksum(self) -> NdisTcpIpChecksumNetBufferListInfoReceive:
        return NdisTcpIpChecksumNetBufferListInfoReceive.from_int(
            self.TcpIpChecksumNetBufferListInfo
        )

    @property
    def rsc(self) -> NdisRscNblInfoInfo:
        return NdisRscNblInfoInfo.from_int(self.TcpRecvSegCoalesceInfo)


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
        self._verdicts: dict[bytes, int] = {}
        """Checksum verdicts of frames the coalescer still holds (indicated at a later
        ``receive`` or at ``flush``)."""

    # -- receive ---------------------------------------------------------------------------
    def receive(self, frames: list[bytes], now: float) -> list[ReceiveIndication]:
        """One receive DPC: validate checksums the current configuration has on (only after
        the first successful ``OID_OFFLOAD_ENCAPSULATION`` set), coalesce with RSC where it
        is on, and return the NBLs to indicate. Malformed frames are indicated without
        verdicts (a NIC does not drop them for the protocol's sake) and counted."""
        on = self.miniport.current_features
        versions = ip_versions(frames)
        words = [0] * len(frames)
        if self.miniport.receive_checksum_started:
            for version in (4, 6):
                ip = version == 4 and feature_for("checksum", 4, "Rx", "IpChecksum") in on
                tcp = feature_for("checksum", version, "Rx", "TcpChecksum") in on
                udp = feature_for("checksum", version, "Rx", "UdpChecksum") in on
                picked = [i for i, v in enumerate(versions) if v == version]
                if not picked or not (ip or tcp or udp):
                    continue
                subset = [frames[i] for i in picked]
                try:
                    batch = validate_batch_words(subset, ip=ip, tcp=tcp, udp=udp).tolist()
                except PacketError:
                    batch = [self._validate_one(f, ip, tcp, udp) for f in subset]
                for i, word in zip(picked, batch, strict=True):
                    words[i] = int(word)
        self.counters["received"] += len(frames)
        rsc_on = {v: feature_for("rsc", v, "Rx") in on for v in (4, 6)}
        out: list[ReceiveIndication] = []
        to_coalesce: list[bytes] = []
        verdicts = self._verdicts
        for frame, version, word in zip(frames, versions, words, strict=True):
            if rsc_on.get(version, False):
                to_coalesce.append(frame)
                verdicts[frame] = word
            else:
                out.append(ReceiveIndication(frame, word))
        if to_coalesce:
            for item in self.coalescer.push_batch(to_coalesce, now):
                out.append(self._from_coalescer(item, verdicts))
        return out

    def flush(self, now: float | None = None) -> list[ReceiveIndication]:
        """End of the DPC: indicate every coalesced unit still held."""
        return [self._from_coalescer(item, self._verdicts) for item in self.coalescer.flush(now)]

    def _from_coalescer(
        self, item: CoalescedFrame, verdicts: dict[bytes, int]
    ) -> ReceiveIndication:
        if item.rsc.CoalescedSegCount > 0:
            self.counters["rsc_units"] += 1
            self.counters["rsc_segments"] += item.rsc.CoalescedSegCount
            return ReceiveIndication(item.frame, item.checksum.to_int(), item.rsc.to_int())
        return ReceiveIndication(item.frame, verdicts.pop(item.frame, 0), item.rsc.to_int())

    def _validate_one(self, frame: bytes, ip: bool, tcp: bool, udp: bool) -> int:
        try:
            return validate_receive(frame, ip=ip, tcp=tcp, udp=udp).to_int()
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
        """Do the offload work ``nbl`` asks for; never raises for a bad frame."""
        on = self.miniport.current_features
        try:
            if nbl.TcpLargeSendNetBufferListInfo:
                return self._send_lso(nbl, on)
            if nbl.UdpSegmentationOffloadInfo:
                info = NdisUsoTransmit.from_int(nbl.UdpSegmentationOffloadInfo)
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
                return SendCompletion(NdisStatus.SUCCESS, frames)
            if nbl.TcpIpChecksumNetBufferListInfo:
                return self._send_checksum(nbl, on)
            self.counters["frames"] += 1
            return SendCompletion(NdisStatus.SUCCESS, [bytes(nbl.frame)])
        except PacketError as err:
            self.counters["malformed"] += 1
            error = err.for_frame(index) if index is not None else err
            return SendCompletion(NdisStatus.INVALID_PARAMETER, detail=str(error))

    def _send_lso(self, nbl: NetBufferList, on: frozenset[str]) -> SendCompletion:
        word = nbl.TcpLargeSendNetBufferListInfo
        lso: NdisLsoV1Transmit | NdisLsoV2Transmit
        if NdisLsoTransmit.from_int(word).Type == NdisLsoType.V1_TYPE:
            lso = NdisLsoV1Transmit.from_int(word)
            feature = feature_for("lsov1", 4)
        else:
            lso = NdisLsoV2Transmit.from_int(word)
            feature = feature_for("lsov2", 6 if lso.IPVersion == NdisLsoIpVersion.IPv6 else 4)
        if feature not in on:
            return self._refuse(
                f"{feature} is off in the current configuration", f"refused_{feature}"
            )
        if lso.MSS == 0:
            return self._refuse("LSO info word with MSS 0", "refused_bad_mss")
        result, completion = transmit_lso(nbl.frame, lso)
        self.counters["lso_sends"] += 1
        self.counters["frames"] += len(result.frames)
        return SendCompletion(NdisStatus.SUCCESS, result.frames, completion.to_int())

    def _send_checksum(self, nbl: NetBufferList, on: frozenset[str]) -> SendCompletion:
        info = NdisTcpIpChecksumNetBufferListInfoTransmit.from_int(
            nbl.TcpIpChecksumNetBufferListInfo
        )
        family = 4 if info.IsIPv4 else 6
        asked = (
            ("IpChecksum", info.IpHeaderChecksum and info.IsIPv4),
            ("TcpChecksum", info.TcpChecksum),
            ("UdpChecksum", info.UdpChecksum),
        )
        wanted = [feature_for("checksum", family, "Tx", m) for m, on_ in asked if on_]
        if not (info.IsIPv4 or info.IsIPv6):  # nblchecksum: no checksum work, sent as is
            self.counters["frames"] += 1
            return SendCompletion(NdisStatus.SUCCESS, [bytes(nbl.frame)])
        for feature in wanted:
            if feature not in on:
                return self._refuse(
                    f"{feature} is off in the current configuration", f"refused_{feature}"
                )
        frame = transmit_checksum(nbl.frame, info)
        self.counters["checksum_sends"] += 1
        self.counters["frames"] += 1
        return SendCompletion(NdisStatus.SUCCESS, [frame])

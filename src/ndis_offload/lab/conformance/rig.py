"""The test rig: one adapter stack driven the way NDISTest drives a miniport, from outside.

A :class:`Rig` plays NDIS and the protocol drivers: it sends OID requests through
:class:`~ndis_offload.stack.core.NdisStack`, keeps the INF keywords NDIS writes on an
``OID_TCP_OFFLOAD_PARAMETERS`` set (``oid-tcp-offload-parameters``: "NDIS updates the
miniport adapter's offload standardized keywords with the new settings"), reloads the
driver from them, and -- after every set -- sends one NBL per transmit offload and receives
one frame per receive offload, so what the miniport *does* is compared with what it
*indicated* (:meth:`Rig.traffic_mismatches`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache, reduce
from typing import Any

from ndis_offload.constants.offload import NDIS_OFFLOAD_PARAMETERS_SKIP_REGISTRY_UPDATE
from ndis_offload.constants.status import NdisStatus
from ndis_offload.errors import PacketError
from ndis_offload.lab.conformance import frames as fr
from ndis_offload.stack.core import Binding, NdisStack, RequestHandle
from ndis_offload.stack.datapath import NetBufferList, ReceiveIndication, SendCompletion
from ndis_offload.stack.features import FEATURE_TABLE, features_of
from ndis_offload.stack.miniport import Miniport
from ndis_offload.stack.profiles import AdapterProfile, get_profile
from ndis_offload.stack.protocol import ProtocolDriver
from ndis_offload.structs.nbl_info import (
    NdisLsoV1Transmit,
    NdisLsoV2Transmit,
    NdisTcpIpChecksumNetBufferListInfoTransmit,
    NdisUsoTransmit,
)
from ndis_offload.structs.offload import NdisOffload
from ndis_offload.structs.parameters import NdisOffloadParameters

MiniportFactory = Callable[[AdapterProfile], Miniport]


# --- what NDIS writes to the registry on OID_TCP_OFFLOAD_PARAMETERS -----------------------
def _field(p: NdisOffloadParameters, path: str) -> int:
    value: Any = reduce(getattr, path.split("."), p)
    return int(value)


def keywords_written(p: NdisOffloadParameters, registry: dict[str, int]) -> dict[str, int]:
    """The standardized keywords after NDIS writes a set of ``p`` into ``registry``: each
    non-``NO_CHANGE`` field sets or clears its feature's bit of its keyword (the feature
    table); fields newer than ``p.Header.Revision`` are not there."""
    out = dict(registry)
    for row in FEATURE_TABLE.values():
        if row.parameters_since > p.Header.Revision:
            continue
        value = _field(p, row.parameters_field)
        current = out.get(row.keyword, 0)
        if value in row.parameters_on:
            out[row.keyword] = current | row.keyword_bit
        elif value in row.parameters_off:
            out[row.keyword] = current & ~row.keyword_bit
    return out


# --- traffic probes --------------------------------------------------------------------------
TX_CHECKSUM = ("ip4_tx", "tcp4_tx", "udp4_tx", "tcp6_tx", "udp6_tx")
RX_CHECKSUM = ("ip4_rx", "tcp4_rx", "udp4_rx", "tcp6_rx", "udp6_rx")
SEGMENTATION = ("lsov1", "lsov2_4", "lsov2_6", "uso4", "uso6")
RSC = ("rsc4", "rsc6")
STRICT_WHEN_OFF = frozenset({"lsov1", "lsov2_4", "lsov2_6", *RX_CHECKSUM, *RSC})
"""Features whose use while reported off is itself a violation: LSO (a miniport "should drop
all NET_BUFFER_LISTs that contain nonzero LSOv1 or LSOv2 OOB data" after LSO is turned off,
``offloading-the-segmentation-of-large-tcp-packets``), receive verdicts and RSC (only for
offloads that are on). A checksum or USO request the miniport honours although reported off
is tolerated (the protocol should not have asked)."""


def _tx_probe(feature: str) -> NetBufferList:
    version = 6 if "6" in feature else 4
    l4: fr.Tcp | fr.Udp = fr.Udp() if feature.startswith(("udp", "ip4")) else fr.Tcp()
    frame = fr.build(version, l4, fr.payload_bytes(100), l4_checksum="pseudo", ip_checksum="zero")
    info = NdisTcpIpChecksumNetBufferListInfoTransmit(
        IsIPv4=int(version == 4), IsIPv6=int(version == 6),
        TcpChecksum=int(feature.startswith("tcp")), UdpChecksum=int(feature.startswith("udp")),
        IpHeaderChecksum=int(feature == "ip4_tx"),
        TcpHeaderOffset=0 if feature == "ip4_tx" else fr.ETH_LEN + (20 if version == 4 else 40),
    )  # fmt: skip
    return NetBufferList(frame, TcpIpChecksumNetBufferListInfo=info.to_int())


def _segmentation_probe(feature: str) -> NetBufferList:
    version = 6 if feature.endswith("6") else 4
    offset = fr.ETH_LEN + (20 if version == 4 else 40)
    if feature.startswith("uso"):
        frame = fr.build(version, fr.Udp(), fr.payload_bytes(3000), zero_length=True)
        word = NdisUsoTransmit(MSS=1000, UdpHeaderOffset=offset, IPVersion=int(version == 6))
        return NetBufferList(frame, UdpSegmentationOffloadInfo=word.to_int())
    frame = fr.build(version, fr.Tcp(), fr.payload_bytes(3000), l4_checksum="pseudo-nolen",
                     zero_length=feature != "lsov1")  # fmt: skip
    lso: NdisLsoV1Transmit | NdisLsoV2Transmit
    if feature == "lsov1":
        lso = NdisLsoV1Transmit(MSS=1000, TcpHeaderOffset=offset)
    else:
        lso = NdisLsoV2Transmit(MSS=1000, TcpHeaderOffset=offset, IPVersion=int(version == 6))
    return NetBufferList(frame, TcpLargeSendNetBufferListInfo=lso.to_int())


def _frames_ok(frames: list[bytes], feature: str) -> bool:
    """Every frame parses and every checksum the feature covers verifies."""
    try:
        for frame in frames:
            lay = fr.layout(frame)
            if lay.ip_version == 4 and feature in ("ip4_tx", "lsov1", "lsov2_4", "uso4"):
                if not fr.ipv4_header_ok(frame, lay):
                    return False
            if feature != "ip4_tx" and not fr.l4_checksum_ok(frame, lay):
                return False
    except PacketError:
        return False
    return bool(frames)


def _rx_probe(feature: str) -> bytes:
    """A valid frame for one receive offload, on a port of its own (all probes of a DPC
    differ)."""
    version = 6 if "6" in feature else 4
    port = 30000 + RX_CHECKSUM.index(feature)
    l4: fr.Tcp | fr.Udp = (
        fr.Udp(sport=port) if feature.startswith(("udp", "ip4")) else fr.Tcp(sport=port)
    )
    return fr.build(version, l4, fr.payload_bytes(64))


_RX_FLAG = {
    "ip": "IpChecksumSucceeded",
    "tcp": "TcpChecksumSucceeded",
    "udp": "UdpChecksumSucceeded",
}


def rsc_probe(version: int, count: int = 3) -> list[bytes]:
    """``count`` in-order full-size data segments of one flow (coalescible), on ports of
    their own (the Rx checksum probes use the defaults)."""
    return [
        fr.build(version, fr.Tcp(sport=41000, dport=8080, seq=1000 + 1000 * k),
                 fr.payload_bytes(1000, salt=k))
        for k in range(count)
    ]  # fmt: skip


@lru_cache(maxsize=1)
def _probes() -> tuple[
    tuple[tuple[str, NetBufferList], ...],
    tuple[tuple[str, bytes], ...],
    tuple[tuple[str, list[bytes]], ...],
]:
    """The probe NBLs and frames (built once; they never change)."""
    tx = tuple((f, _tx_probe(f)) for f in TX_CHECKSUM) + tuple(
        (f, _segmentation_probe(f)) for f in SEGMENTATION
    )
    rx = tuple((f, _rx_probe(f)) for f in RX_CHECKSUM)
    rsc = tuple((f, rsc_probe(6 if f == "rsc6" else 4)) for f in RSC)
    return tx, rx, rsc


@dataclass
class Traffic:
    """What the miniport did with the probes: ``on`` = honoured correctly, ``wrong`` = sent
    or indicated something incorrect."""

    on: set[str] = field(default_factory=set)
    wrong: dict[str, str] = field(default_factory=dict)


@dataclass
class Rig:
    """One stack on one profile; the battery's hands and eyes."""

    factory: MiniportFactory
    profile: AdapterProfile
    protocols: int = 1
    observe: bool = True
    """Run the traffic probes after every set."""
    stack: NdisStack = field(init=False)
    bindings: list[Binding] = field(init=False)
    registry: dict[str, int] = field(init=False)
    encapsulation_set: bool = field(init=False, default=False)
    """A successful ``OID_OFFLOAD_ENCAPSULATION`` set has happened since (re)initialization."""
    mismatches: list[str] = field(init=False, default_factory=list)
    """Every disagreement between traffic and the indicated configuration, after each set."""
    log: list[str] = field(init=False, default_factory=list)
    """What the rig sent, one line per request (for the report)."""
    now: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.registry = dict(self.profile.keywords)
        self._start(self.profile)

    def _start(self, profile: AdapterProfile) -> None:
        self.miniport = self.factory(profile)
        self.stack = NdisStack(self.miniport)
        self.bindings = []
        for index in range(self.protocols):
            self.bindings.append(self.stack.bind(ProtocolDriver(f"protocol{index}")))
        self.encapsulation_set = False

    def reload(self) -> None:
        """Halt and re-initialize the driver: a new miniport built from the keywords NDIS wrote."""
        self.log.append("reload the driver (MiniportHaltEx, MiniportInitializeEx)")
        self._start(self.profile.with_keywords(self.registry))

    # -- control path ------------------------------------------------------------------------
    def set(self, oid: int, data: bytes, what: str = "") -> RequestHandle:
        handle = self.bindings[0].set(oid, data)
        self.log.append(
            f"set {handle.request.oid_name} {what or data.hex()} -> {handle.status.c_name}"
        )
        if handle.status == NdisStatus.SUCCESS:
            from ndis_offload.constants.oid import Oid  # local: keeps the module map short

            if oid == Oid.OFFLOAD_ENCAPSULATION:
                self.encapsulation_set = True
            elif oid == Oid.TCP_OFFLOAD_PARAMETERS:
                self._write_keywords(data)
        if self.observe:
            self.check_traffic(f"after set {handle.request.oid_name} {what}".rstrip())
        return handle

    def _write_keywords(self, data: bytes) -> None:
        try:
            params = NdisOffloadParameters.decode(data)
        except Exception:  # a set that succeeded with contents NDIS cannot read: nothing written
            return
        if not params.Flags & NDIS_OFFLOAD_PARAMETERS_SKIP_REGISTRY_UPDATE:
            self.registry = keywords_written(params, self.registry)

    def query(self, oid: int, *, length: int = 4096) -> RequestHandle:
        """A query with an ``InformationBufferLength`` of ``length`` bytes."""
        handle = self.bindings[0].query(oid, length=length)
        self.log.append(f"query {handle.request.oid_name} ({length} bytes) -> "
                        f"{handle.status.c_name}")  # fmt: skip
        return handle

    def indications(self) -> list[int]:
        return [len(b.indications) for b in self.bindings]

    def features(self) -> frozenset[str]:
        """What the protocols see: the configuration NDIS serves (fed by indications)."""
        return features_of(self.stack.config or NdisOffload())

    def hardware(self) -> frozenset[str]:
        return features_of(self.stack.hardware_capabilities or NdisOffload())

    # -- data path ----------------------------------------------------------------------------
    def send(self, nbl: NetBufferList) -> SendCompletion:
        """``NdisSendNetBufferLists`` with one NBL; its completion."""
        return self.stack.send([nbl])[0]

    def receive(self, frames: list[bytes]) -> list[ReceiveIndication]:
        """One receive DPC: the frames in, everything indicated by its end out."""
        self.now += 0.001
        return self.stack.receive(frames, self.now)

    def traffic(self) -> Traffic:
        """Run every probe: one ``MiniportSendNetBufferLists`` call with one NBL per transmit
        offload, one receive DPC with one frame per receive offload and two RSC flows."""
        seen = Traffic()
        tx, rx, rsc = _probes()
        for (feature, _), done in zip(tx, self.stack.send([nbl for _, nbl in tx]), strict=True):
            if done.status == NdisStatus.SUCCESS:
                if _frames_ok(done.frames, feature):
                    seen.on.add(feature)
                else:
                    seen.wrong[feature] = "sent with a wrong checksum or malformed"
        got = self.receive([frame for _, frame in rx] + [f for _, flow in rsc for f in flow])
        verdicts = {i.frame: i.checksum for i in got if not i.rsc.CoalescedSegCount}
        for feature, frame in rx:
            flags = verdicts.get(frame)
            if flags is None:
                seen.wrong[feature] = "the frame was not indicated (unmodified)"
            elif getattr(flags, _RX_FLAG[feature[:-4].rstrip("46")]):
                seen.on.add(feature)
        for feature, flow in rsc:
            ethertype = flow[0][12:14]
            if any(i.rsc.CoalescedSegCount > 1 and i.frame[12:14] == ethertype for i in got):
                seen.on.add(feature)
        return seen

    def expected_traffic(self) -> frozenset[str]:
        """What the indicated configuration promises; Rx checksum only after the first
        successful ``OID_OFFLOAD_ENCAPSULATION`` set (``oid-offload-encapsulation``)."""
        on = self.features()
        if not self.encapsulation_set:
            on -= frozenset(RX_CHECKSUM)
        return on

    def check_traffic(self, when: str) -> list[str]:
        """Compare traffic with the indicated configuration; record and return mismatches."""
        seen = self.traffic()
        expected = self.expected_traffic()
        found = []
        for feature in TX_CHECKSUM + SEGMENTATION + RX_CHECKSUM + RSC:
            promised, did = feature in expected, feature in seen.on
            if feature in seen.wrong:
                found.append(f"{feature}: {seen.wrong[feature]}")
            elif promised and not did:
                found.append(f"{feature}: indicated on, but the miniport did not do it")
            elif did and not promised and feature in STRICT_WHEN_OFF:
                found.append(f"{feature}: indicated off, but the miniport did it")
        out = [f"{when}: {m}" for m in found]
        self.mismatches += out
        return out


def make_rig(
    factory: MiniportFactory,
    profile: str | AdapterProfile = "full",
    *,
    protocols: int = 1,
    observe: bool = True,
    keywords: dict[str, int] | None = None,
) -> Rig:
    prof = get_profile(profile) if isinstance(profile, str) else profile
    if keywords:
        prof = prof.with_keywords(keywords)
    return Rig(factory, prof, protocols, observe)

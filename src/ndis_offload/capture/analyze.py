"""Diagnosis of every frame and flow of a capture, streamed chunk by chunk (sans-IO).

Every checksum of every layer (tunnels included) is checked where its bytes are captured; a
wrong one makes the frame an error, even when it is oversized or cut. A frame is *oversized*
when its TCP payload exceeds the MSS its peer announced in a SYN, or, with no SYN seen, when
its outer IP datagram is longer than ``mtu`` (``--mtu``, default 1500), or when an IP or UDP
length field is 0 in front of TCP / UDP (NDIS LSO, Linux BIG TCP; an ICMP datagram with
length 0 is not a send). An oversized frame is an *unsegmented LSO send* if the capture says
the host sent it (SLL / SLL2 packet type, pcapng ``epb_flags``) or, without a direction, if a
checksum was left for offload; otherwise a *coalesced receive*. Per-flow state is bounded by
``max_flows``; memory does not grow with the frame count.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from ndis_offload.capture.checks import Checks, Kind, Sum, layer_names
from ndis_offload.packet.proto import TCP_SYN

IntArray = npt.NDArray[np.int64]


class Diagnosis(IntEnum):
    """The verdict for one frame."""

    CORRECT = 0
    OFFLOAD = 1
    WRONG = 2
    GIANT = 3
    COALESCED = 4
    SNAPPED = 5
    UNCHECKED = 6
    MALFORMED = 7

    @property
    def label(self) -> str:
        """Human wording."""
        return _LABELS[self]

    @property
    def is_error(self) -> bool:
        """A real error (not an offload artifact)."""
        return self in (Diagnosis.WRONG, Diagnosis.MALFORMED)


_LABELS = {
    Diagnosis.CORRECT: "correct",
    Diagnosis.OFFLOAD: "left for offload",
    Diagnosis.WRONG: "wrong checksum",
    Diagnosis.GIANT: "unsegmented LSO send",
    Diagnosis.COALESCED: "coalesced receive",
    Diagnosis.SNAPPED: "cut by snap length",
    Diagnosis.UNCHECKED: "not checked",
    Diagnosis.MALFORMED: "malformed",
}
N_DIAG = len(Diagnosis)
SIZE_BINS = (0, 64, 128, 256, 512, 1024, 1519, 2048, 4096, 9019, 16384, 32768, 65536, 1 << 30)
"""Histogram edges for frame sizes (1519 / 9019: a full 1500 / 9000 MTU Ethernet frame)."""


def size_bin_labels(edges: tuple[int, ...] = SIZE_BINS) -> list[str]:
    """``0-63``, ``64-127``, ..., ``>= 65536``: one label per bin of ``edges``."""
    pairs = zip(edges, edges[1:], strict=False)
    return [f"{lo}-{hi - 1}" if hi < 1 << 20 else f">= {lo}" for lo, hi in pairs]


@dataclass(slots=True)
class FlowStats:
    """Counters for one direction of one TCP / UDP flow."""

    key: str
    frames: int = 0
    bytes: int = 0
    counts: list[int] = field(default_factory=lambda: [0] * N_DIAG)
    max_payload: int = 0
    """The largest payload of a frame that was not oversized (an MSS estimate)."""


@dataclass(frozen=True, slots=True)
class Notable:
    """A frame worth naming in a report."""

    index: int
    diagnosis: Diagnosis
    detail: str
    offset: int | None = None


def flow_key(words: npt.NDArray[np.uint64]) -> str:
    """``proto src:port > dst:port`` from a row of flow words."""
    version, proto = int(words[0]), int(words[1])
    ws = [int(w) for w in words[2:10]]
    if version == 4:
        src: str = str(ipaddress.IPv4Address(ws[0]))
        dst = str(ipaddress.IPv4Address(ws[4]))
    else:
        src = f"[{ipaddress.IPv6Address(b''.join(struct.pack('!I', w) for w in ws[0:4]))}]"
        dst = f"[{ipaddress.IPv6Address(b''.join(struct.pack('!I', w) for w in ws[4:8]))}]"
    ports = int(words[10])
    name = {6: "TCP", 17: "UDP"}.get(proto, f"proto {proto}")
    if proto in (6, 17):
        return f"{name} {src}:{ports >> 16} > {dst}:{ports & 0xFFFF}"
    return f"{name} {src} > {dst}"


def syn_mss(buffer: bytes | bytearray, l4: int, l4_len: int) -> int | None:
    """The MSS option of a TCP header at ``l4`` in ``buffer``, if present."""
    pos, stop = l4 + 20, l4 + l4_len
    while pos < stop:
        kind = buffer[pos]
        if kind == 0:
            return None
        if kind == 1:
            pos += 1
            continue
        if pos + 1 >= stop:
            return None
        size = buffer[pos + 1]
        if size < 2:
            return None
        if kind == 2 and size == 4 and pos + 4 <= stop:
            return int(struct.unpack_from("!H", buffer, pos + 2)[0])
        pos += size
    return None


SynEvents = tuple[list[int], list[int]]
"""The rows of a chunk that are TCP SYNs carrying an MSS option, and those MSS values."""


def syn_events(buffer: bytes | bytearray, checks: Checks) -> SynEvents:
    """Read the MSS option of every TCP SYN of a checked chunk."""
    tcp = (checks.kind == Kind.IP) & (checks.proto == 6) & (checks.l4_len >= 20)
    rows, values = [], []
    for row in np.flatnonzero(tcp & ((checks.flags & TCP_SYN) != 0)).tolist():
        mss = syn_mss(buffer, int(checks.l4_pos[row]), int(checks.l4_len[row]))
        if mss:
            rows.append(row)
            values.append(mss)
    return rows, values


def _latest_before(
    query_groups: npt.NDArray[np.uint64],
    event_groups: npt.NDArray[np.uint64],
    event_rows: IntArray,
    event_values: IntArray,
) -> IntArray:
    """For every row ``i``: the value of the latest event of the same group at a row before
    ``i`` (0 if none). Events and rows interleave in one sort by (group, row, query first)."""
    n = len(query_groups)
    if len(event_rows) == 0:
        return np.zeros(n, dtype=np.int64)
    groups = np.concatenate([query_groups, event_groups])
    rows = np.concatenate([np.arange(n, dtype=np.int64), event_rows])
    is_event = np.concatenate([np.zeros(n, np.int8), np.ones(len(event_rows), np.int8)])
    values = np.concatenate([np.zeros(n, np.int64), event_values])
    order = np.lexsort((is_event, rows, groups))
    sorted_groups = groups[order]
    marks = np.where(is_event[order] == 1, np.arange(order.size), -1)
    last = np.maximum.accumulate(marks)
    valid = (last >= 0) & (sorted_groups[np.maximum(last, 0)] == sorted_groups)
    found = np.where(valid, values[order][np.maximum(last, 0)], 0)
    out = np.zeros(order.size, dtype=np.int64)
    out[order] = found
    return out[:n]


def _max_before(group_of_row: IntArray, values: IntArray) -> IntArray:
    """For every row: the largest value of an earlier row of the same group (0 if none)."""
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((np.arange(n), group_of_row))
    groups = group_of_row[order]
    starts = np.concatenate([[True], groups[1:] != groups[:-1]])
    rank = np.cumsum(starts) - 1
    big = int(values.max()) + 1
    inclusive = np.maximum.accumulate(values[order] + rank * big) - rank * big
    exclusive = np.concatenate([[0], inclusive[:-1]])
    exclusive[starts] = 0
    out = np.zeros(n, dtype=np.int64)
    out[order] = exclusive
    return out


class Analyzer:
    """Feeds on chunks of checked frames; keeps per-flow counters and MSS knowledge."""

    def __init__(self, *, mtu: int = 1500, max_flows: int = 100_000, max_notable: int = 1000):
        self.mtu = mtu
        self.max_flows = max_flows
        self.max_notable = max_notable
        self.flows: dict[int, FlowStats] = {}
        self.other_flows = FlowStats("(other flows)")
        self.peer_mss: dict[int, int] = {}
        """Flow hash -> the MSS the other end announced (limits this flow's segments)."""
        self.cut_mss: IntArray = np.zeros(0, dtype=np.int64)
        """Per frame of the last chunk fed: the MSS to cut it at (0: none known)."""
        self.totals = [0] * N_DIAG
        self.frames = 0
        self.bytes = 0
        self.notable: list[Notable] = []
        self.sizes_before = np.zeros(len(SIZE_BINS) - 1, dtype=np.int64)
        self.sizes_after = np.zeros(len(SIZE_BINS) - 1, dtype=np.int64)

    def __getstate__(self) -> dict[str, Any]:
        """The state as arrays, not one object per flow: a scale-out run passes it from piece
        to piece, and 100,000 flows pickle in milliseconds this way (seconds as objects)."""
        state = dict(self.__dict__)
        flows = list(self.flows.values())
        state["flows"] = (
            np.fromiter(self.flows.keys(), dtype=np.uint64, count=len(flows)),
            [f.key for f in flows],
            np.array([(f.frames, f.bytes, f.max_payload) for f in flows], np.int64).reshape(-1, 3),
            np.array([f.counts for f in flows], np.int64).reshape(-1, N_DIAG),
        )
        state["peer_mss"] = (
            np.fromiter(self.peer_mss.keys(), dtype=np.uint64, count=len(self.peer_mss)),
            np.fromiter(self.peer_mss.values(), dtype=np.int64, count=len(self.peer_mss)),
        )
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        hashes, keys, numbers, counts = state.pop("flows")
        peers, mss = state.pop("peer_mss")
        self.__dict__.update(state)
        self.flows = {
            h: FlowStats(key, n[0], n[1], c, n[2])
            for h, key, n, c in zip(
                hashes.tolist(), keys, numbers.tolist(), counts.tolist(), strict=True
            )
        }
        self.peer_mss = dict(zip(peers.tolist(), mss.tolist(), strict=True))

    @property
    def errors(self) -> int:
        """Frames with a real error."""
        return self.totals[Diagnosis.WRONG] + self.totals[Diagnosis.MALFORMED]

    def feed(
        self, buffer: bytes | bytearray, checks: Checks, caplens: IntArray, first_index: int
    ) -> npt.NDArray[np.int8]:
        """Diagnose a chunk; returns the :class:`Diagnosis` of every frame.

        Every decision depends on the frames before it only, never on where the chunk ends:
        an MSS announced by a SYN applies to the frames after that SYN, and the MSS inferred
        for cutting a frame counts the ordinary payloads before it. So feeding a capture in
        chunks of any size, or in pieces with their state carried over, gives one answer.
        """
        return self.feed_checked(checks, caplens, first_index, syn_events(buffer, checks))

    def feed_checked(
        self, checks: Checks, caplens: IntArray, first_index: int, syns: SynEvents
    ) -> npt.NDArray[np.int8]:
        """:meth:`feed` with the chunk's SYN MSS announcements already read out of its bytes
        (:func:`syn_events`), so a chunk can be checked in one process and fed in another."""
        n = len(caplens)
        kind = checks.kind
        is_ip = kind == Kind.IP
        tcp = is_ip & (checks.proto == 6) & (checks.l4_len >= 20)
        syn_rows, syn_values = syns
        uniq, inverse = np.unique(checks.flow, return_inverse=True)
        inverse = inverse.reshape(-1)
        start_mss = np.array([self.peer_mss.get(int(h), 0) for h in uniq.tolist()], np.int64)
        rows = np.array(syn_rows, dtype=np.int64)
        announced = checks.reverse[rows] if len(syn_rows) else checks.reverse[:0]
        row_mss = _latest_before(checks.flow, announced, rows, np.array(syn_values, np.int64))
        row_mss = np.where(row_mss > 0, row_mss, start_mss[inverse])
        for row, mss in zip(syn_rows, syn_values, strict=True):
            self.peer_mss[int(checks.reverse[row])] = mss
        oversize = np.where(
            tcp & (row_mss > 0), checks.payload_len > row_mss, checks.ip_len > self.mtu
        )
        oversize = is_ip & (oversize | checks.zero_length)
        states = checks.layer_state
        any_wrong = (states == Sum.WRONG).any(axis=1)
        any_offload = (states == Sum.OFFLOAD).any(axis=1)
        any_ok = (states == Sum.OK).any(axis=1)
        any_cut = (states == Sum.CUT).any(axis=1)
        sent = (checks.direction == 1) | ((checks.direction == -1) & any_offload)
        diag = np.select(
            [
                kind == Kind.MALFORMED,
                kind == Kind.SNAPPED,
                ~is_ip,
                any_wrong,
                oversize & sent,
                oversize,
                any_offload,
                any_cut,
                any_ok,
            ],
            [
                Diagnosis.MALFORMED,
                Diagnosis.SNAPPED,
                Diagnosis.UNCHECKED,
                Diagnosis.WRONG,
                Diagnosis.GIANT,
                Diagnosis.COALESCED,
                Diagnosis.OFFLOAD,
                Diagnosis.SNAPPED,
                Diagnosis.CORRECT,
            ],
            Diagnosis.UNCHECKED,
        ).astype(np.int8)
        tracked = self._admit(checks, uniq, inverse)
        normal_payload = np.where(oversize, 0, checks.payload_len).astype(np.int64)
        start_max = np.array(
            [
                self.flows[h].max_payload if ok else 0
                for h, ok in zip(uniq.tolist(), tracked, strict=True)
            ],
            dtype=np.int64,
        )
        prior_max = np.maximum(_max_before(inverse, normal_payload), start_max[inverse])
        prior_max[~np.asarray(tracked, dtype=np.bool_)[inverse]] = 0
        self.cut_mss = np.where(row_mss > 0, row_mss, prior_max)
        self._account(diag, checks, caplens, uniq, inverse, oversize, first_index)
        self.frames += n
        self.bytes += int(caplens.sum())
        return diag

    def cut_mss_of(self, row: int) -> int | None:
        """The MSS to cut frame ``row`` of the last chunk fed at: the one its peer announced
        before it, else the largest ordinary payload its flow carried before it."""
        mss = int(self.cut_mss[row])
        return mss or None

    def _admit(self, checks: Checks, uniq: npt.NDArray[np.uint64], inverse: IntArray) -> list[bool]:
        """Start tracking the flows first seen in this chunk, in order of first appearance,
        while there is room; whether each flow of ``uniq`` is tracked."""
        first_row = np.full(len(uniq), len(inverse), dtype=np.int64)
        np.minimum.at(first_row, inverse, np.arange(len(inverse)))
        for u in np.argsort(first_row, kind="stable").tolist():
            h = int(uniq[u])
            if h and h not in self.flows and len(self.flows) < self.max_flows:
                self.flows[h] = FlowStats(flow_key(checks.words[int(first_row[u])]))
        return [bool(h) and int(h) in self.flows for h in uniq.tolist()]

    def _account(
        self, diag: npt.NDArray[np.int8], checks: Checks, caplens: IntArray,
        uniq: npt.NDArray[np.uint64], inverse: IntArray, oversize: npt.NDArray[np.bool_],
        first_index: int,
    ) -> None:  # fmt: skip
        counts = np.bincount(diag, minlength=N_DIAG)
        for d in range(N_DIAG):
            self.totals[d] += int(counts[d])
        edges = np.array(SIZE_BINS)
        self.sizes_before += np.histogram(caplens, bins=edges)[0]
        after = caplens[~oversize]
        self.sizes_after += np.histogram(after, bins=edges)[0]
        nu = len(uniq)
        per = np.bincount(inverse * N_DIAG + diag, minlength=nu * N_DIAG).reshape(nu, N_DIAG)
        frames = np.bincount(inverse, minlength=nu)
        nbytes = np.bincount(inverse, weights=caplens, minlength=nu)
        normal_payload = np.where(oversize, 0, checks.payload_len)
        max_pay = np.zeros(nu, dtype=np.int64)
        np.maximum.at(max_pay, inverse, normal_payload)
        for u, h in enumerate(uniq.tolist()):
            if h == 0:
                continue
            stats = self.flows.get(h, self.other_flows)
            stats.frames += int(frames[u])
            stats.bytes += int(nbytes[u])
            stats.max_payload = max(stats.max_payload, int(max_pay[u]))
            for d in np.flatnonzero(per[u]).tolist():
                stats.counts[d] += int(per[u, d])
        # The wire sizes of oversized frames: cut at the MSS known when each was sent.
        for row in np.flatnonzero(oversize).tolist():
            payload = int(checks.payload_len[row])
            mss = self.cut_mss_of(row) or max(1, self.mtu - 40)
            hdr = int(caplens[row]) - payload
            count, last = divmod(payload, mss)
            sizes = [hdr + mss] * count + ([hdr + last] if last else [])
            self.sizes_after += np.histogram(np.array(sizes or [hdr]), bins=edges)[0]
        if len(self.notable) < self.max_notable:
            rows = np.flatnonzero(
                (diag == Diagnosis.WRONG) | (diag == Diagnosis.MALFORMED)
                | (diag == Diagnosis.GIANT) | (diag == Diagnosis.COALESCED)
            )  # fmt: skip
            for row in rows[: self.max_notable - len(self.notable)].tolist():
                d = Diagnosis(int(diag[row]))
                error = checks.errors.get(row)
                detail = error.reason if error is not None else self._detail(checks, row, d)
                offset = error.offset if error is not None else None
                self.notable.append(Notable(first_index + row, d, detail, offset))

    @staticmethod
    def _detail(checks: Checks, row: int, d: Diagnosis) -> str:
        parts = [f"{name} {state}" for name, state in layer_verdicts(checks, row)]
        if d in (Diagnosis.GIANT, Diagnosis.COALESCED):
            parts.insert(0, f"IP length {int(checks.ip_len[row])}")
        return ", ".join(parts)


def layer_verdicts(checks: Checks, row: int) -> list[tuple[str, str]]:
    """(layer name, checksum state) for every checked layer of a frame, outermost first."""
    names = layer_names(checks.loc, row)
    out = []
    for col, name in enumerate(names):
        state = int(checks.layer_state[row, col])
        if state != Sum.NONE:
            out.append((name, Sum(state).name.lower()))
    return out


__all__ = [
    "SIZE_BINS", "Analyzer", "Diagnosis", "FlowStats", "Notable", "SynEvents", "flow_key",
    "layer_verdicts", "size_bin_labels", "syn_events", "syn_mss",
]  # fmt: skip

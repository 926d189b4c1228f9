"""A stack trace as a sequence diagram's model: lanes and the messages between them.

Lanes, left to right: each protocol binding (in order of appearance), NDIS, the filters from
the top of the stack (nearest the protocols) down, and the miniport. One
:class:`~ndis_offload.stack.requests.TraceEvent` becomes one or more :class:`Message`:

- ``bind`` / ``unbind``: NDIS -> protocol (``ProtocolBindAdapterEx`` / ``...UnbindAdapterEx``);
- ``request``: protocol -> the module that completes it (NDIS, a filter or the miniport, the
  completion's ``completed_by``), crossing the filters on the way down;
- ``pending``: miniport -> NDIS (``NDIS_STATUS_PENDING``);
- ``completion``: the completing module -> the protocol, with its status;
- ``indication``: source -> NDIS (``NdisMIndicateStatusEx``), then NDIS -> every binding it
  was fanned out to (``ProtocolStatusEx``); an indication a filter or NDIS dropped ends there.

The SVG and Mermaid renderings draw this model; neither re-reads the trace.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ndis_offload.constants.offload import NdisEncapsulation, NdisOffloadSet
from ndis_offload.stack.features import FEATURES, features_of
from ndis_offload.stack.requests import TraceEvent
from ndis_offload.structs.offload import NdisOffload
from ndis_offload.viz.tables import SHORT_ENCAPSULATION, compact_features

NDIS = "NDIS"
COUNTS = ("BytesRead", "BytesWritten", "BytesNeeded")


@dataclass(frozen=True, slots=True)
class Lane:
    """One participant: ``role`` is ``protocol``, ``ndis``, ``filter`` or ``miniport``."""

    name: str
    role: str


@dataclass(frozen=True, slots=True)
class Message:
    """One arrow: lane indexes, label, tone and the decoded payload."""

    seq: int
    source: int
    target: int
    label: str
    tone: str
    """``call`` (request, bind), ``ok``, ``pending``, ``fail``, ``indication``."""
    status: str = ""
    note: str = ""
    """A one-line reading of the payload (features on, encapsulation settings, detail)."""
    payload: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Flow:
    """The lanes and the messages, in trace order."""

    lanes: tuple[Lane, ...]
    messages: tuple[Message, ...]

    def index(self, name: str) -> int:
        """The lane of ``name`` (``ndis`` is NDIS)."""
        name = NDIS if name == "ndis" else name
        for i, lane in enumerate(self.lanes):
            if lane.name == name:
                return i
        raise KeyError(name)


def status_tone(status: str) -> str:
    """``ok``, ``pending`` or ``fail`` for an ``NDIS_STATUS_*`` name."""
    if not status or status == "NDIS_STATUS_SUCCESS":
        return "ok"
    if status == "NDIS_STATUS_PENDING":
        return "pending"
    return "fail"


def _protocols(events: Sequence[TraceEvent], others: set[str]) -> list[str]:
    names: list[str] = []

    def add(name: str) -> None:
        if name and name not in names and name not in others and name != "protocols":
            names.append(name)

    for e in events:
        if e.kind in ("bind", "unbind", "completion"):
            add(e.target)
        elif e.kind == "request":
            add(e.source)
        elif e.kind == "indication":
            for name in e.to:
                add(name)
    return names


def _miniport_name(events: Sequence[TraceEvent], filters: set[str]) -> str:
    for e in events:
        if e.kind in ("pending", "indication") and e.source not in filters | {"ndis"}:
            return e.source
        by = e.extra.get("completed_by")
        if e.kind == "completion" and by and by not in filters | {"ndis"}:
            return str(by)
    return "miniport"


def build_flow(
    events: Iterable[TraceEvent], filters: Sequence[str] = (), miniport: str | None = None
) -> Flow:
    """The diagram model of a trace. ``filters`` in stack order (index 0 just above the
    miniport, as ``NdisStack.filters``); ``miniport`` defaults to the name the trace uses."""
    trace = list(events)
    filter_set = set(filters)
    mini = miniport or _miniport_name(trace, filter_set)
    protocols = _protocols(trace, filter_set | {mini, "ndis"})
    lanes = (
        [Lane(p, "protocol") for p in protocols]
        + [Lane(NDIS, "ndis")]
        + [Lane(f, "filter") for f in reversed(filters)]
        + [Lane(mini, "miniport")]
    )
    flow = Flow(tuple(lanes), ())
    completer = {
        e.extra.get("request_id"): _completer(e, filter_set, mini)
        for e in trace
        if e.kind == "completion"
    }
    out: list[Message] = []
    for e in trace:
        out += _messages(flow, e, completer, filter_set, mini)
    return Flow(flow.lanes, tuple(out))


def _completer(e: TraceEvent, filters: set[str], miniport: str) -> str:
    by = e.extra.get("completed_by")
    if isinstance(by, str) and by:
        return NDIS if by == "ndis" else by
    for name in filters:  # traces from before ``completed_by``: the filter's own words
        if e.detail == f"failed by filter {name}":
            return name
    return miniport


def _lane(flow: Flow, name: str, fallback: str) -> int:
    try:
        return flow.index(name)
    except KeyError:
        return flow.index(fallback)


def _messages(
    flow: Flow, e: TraceEvent, completer: dict[Any, str], filters: set[str], miniport: str
) -> list[Message]:
    ndis = flow.index(NDIS)
    note = describe_payload(e.payload)
    if e.kind in ("bind", "unbind"):
        return [Message(e.seq, ndis, flow.index(e.target), e.what, "call", "", note, e.payload)]
    if e.kind == "request":
        end = _lane(flow, completer.get(e.extra.get("request_id"), miniport), miniport)
        return [Message(e.seq, flow.index(e.source), end, e.what, "call", "", note, e.payload)]
    if e.kind == "pending":
        start = _lane(flow, e.source, miniport)
        label = f"{e.status} ({e.what})"
        return [Message(e.seq, start, ndis, label, "pending", e.status, "", e.payload)]
    if e.kind == "completion":
        start = _lane(flow, completer.get(e.extra.get("request_id"), miniport), miniport)
        counts = ", ".join(f"{k} {e.extra[k]}" for k in COUNTS if k in e.extra)
        text = "; ".join(part for part in (e.detail, counts, note) if part)
        label = f"{e.status} ({e.what})"
        tone = status_tone(e.status)
        return [Message(e.seq, start, flow.index(e.target), label, tone, e.status, text, e.payload)]
    if e.kind == "indication":
        start = _lane(flow, e.source, miniport)
        if e.target != "protocols":  # dropped by a filter, or by NDIS (undecodable)
            end = _lane(flow, e.target, NDIS)
            text = "; ".join(part for part in (e.detail, e.status) if part)
            return [Message(e.seq, start, end, e.what, "fail", e.status, text, e.payload)]
        receivers = ", ".join(e.to) if e.to else "nobody"
        out = [Message(e.seq, start, ndis, f"{e.what} → {receivers}", "indication", "", note,
                       e.payload)]  # fmt: skip
        out += [
            Message(e.seq, ndis, flow.index(name), f"ProtocolStatusEx {e.what}", "indication")
            for name in e.to
        ]
        return out
    return [Message(e.seq, ndis, ndis, f"{e.kind} {e.what}", "call", e.status, e.detail)]


def describe_payload(payload: dict[str, Any] | None) -> str:
    """One line for a decoded InformationBuffer / StatusBuffer / bind parameters."""
    if payload is None:
        return ""
    if "undecodable" in payload:
        return f"undecodable: {payload['undecodable']}"
    if "DefaultOffloadConfiguration" in payload:
        inner = payload["DefaultOffloadConfiguration"]
        return "bind parameters: " + (describe_payload(inner) if inner else "no task offload")
    if "Checksum" in payload:
        try:
            on = features_of(NdisOffload.from_dict(payload))
        except Exception:  # a value we cannot re-read: say so rather than guess
            return "NDIS_OFFLOAD (not re-readable)"
        return "on: " + (compact_features([f for f in FEATURES if f in on]) or "none")
    if "IPv4" in payload and isinstance(payload["IPv4"], dict):
        families = [f for f in ("IPv4", "IPv6") if f in payload]
        return "; ".join(f"{f} {_family(payload[f])}" for f in families)
    fields = _nonzero({k: v for k, v in payload.items() if k != "Header"})
    return ", ".join(f"{k}={v}" for k, v in fields) or "all NO_CHANGE"


def _nonzero(value: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``(dotted.name, value)`` of every member that is not 0 (nested structures flattened)."""
    out: list[tuple[str, Any]] = []
    for key, item in value.items():
        if isinstance(item, dict):
            out += _nonzero(item, f"{prefix}{key}.")
        elif item:
            out.append((f"{prefix}{key}", item))
    return out


def _family(part: dict[str, Any]) -> str:
    enabled = part.get("Enabled", 0)
    try:
        name = NdisOffloadSet(enabled).name
    except ValueError:
        return f"Enabled={enabled}"
    if name != "ON":
        return name
    kind = part.get("EncapsulationType", 0)
    try:
        spelled = SHORT_ENCAPSULATION.get(f"NDIS_ENCAPSULATION_{NdisEncapsulation(kind).name}")
    except ValueError:
        spelled = None
    return f"ON {spelled or hex(kind)} header {part.get('HeaderSize', 0)}"


def payload_json(payload: dict[str, Any] | None) -> str:
    """The full decoded payload, indented (hover titles, collapsible sections)."""
    return "" if payload is None else json.dumps(payload, indent=1)

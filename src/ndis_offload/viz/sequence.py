"""A terminal sequence diagram of an :class:`~ndis_offload.stack.core.NdisStack` trace.

Four lanes, left to right: protocols | NDIS | filters | miniport. Each trace event is two
lines: a label (who, what, status) and an arrow between the lanes it crosses. A request
goes as far as the module that completed it (the trace's ``completed_by``: NDIS answers some
queries itself, a filter may fail a request), and its completion comes back from there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.text import Text

from ndis_offload.stack.requests import TraceEvent

LANES = ("protocols", "NDIS", "filters", "miniport")


@dataclass(frozen=True)
class Arrow:
    """One arrow of the diagram: lane indexes, label and style."""

    start: int
    end: int
    label: str
    style: str
    seq: int


def _lane_of(name: str, filters: Sequence[str]) -> int:
    if name == "ndis":
        return 1
    if name in filters:
        return 2
    if name.startswith("miniport") or name == "miniport":
        return 3
    return 0


def _status_style(status: str) -> str:
    if not status or status == "NDIS_STATUS_SUCCESS":
        return "green"
    if status == "NDIS_STATUS_PENDING":
        return "yellow"
    return "bold red"


def _completer_lane(by: object, filters: Sequence[str]) -> int:
    """The lane of whoever completed a request (the trace's ``completed_by``)."""
    if by == "ndis":
        return 1
    return 2 if by in filters else 3


def arrows(events: Iterable[TraceEvent], filters: Sequence[str] = ()) -> list[Arrow]:
    """Map trace events to arrows between lanes."""
    trace = list(events)
    completed_by = {
        e.extra.get("request_id"): e.extra.get("completed_by")
        for e in trace
        if e.kind == "completion"
    }
    out: list[Arrow] = []
    for e in trace:
        if e.kind == "bind" or e.kind == "unbind":
            out.append(Arrow(1, 0, f"{e.what} → {e.target}", "cyan", e.seq))
        elif e.kind == "request":
            end = _completer_lane(completed_by.get(e.extra.get("request_id"), "miniport"), filters)
            out.append(Arrow(0, end, f"{e.source}: {e.what}", "white", e.seq))
        elif e.kind == "pending":
            out.append(Arrow(3, 1, f"{e.what}: {e.status}", "yellow", e.seq))
        elif e.kind == "completion":
            start = _completer_lane(e.extra.get("completed_by", "miniport"), filters)
            label = f"{e.status} ({e.what}) → {e.target}"
            if e.detail and e.status != "NDIS_STATUS_SUCCESS":
                label += f"  [{e.detail}]"
            out.append(Arrow(start, 0, label, _status_style(e.status), e.seq))
        elif e.kind == "indication":
            start = _lane_of(e.source, filters)
            if e.target == "protocols":
                to = ", ".join(e.to) if e.to else "nobody"
                out.append(Arrow(start, 0, f"{e.what} → {to}", "magenta", e.seq))
            else:
                end = _lane_of(e.target, filters)
                out.append(Arrow(start, end, f"{e.what} ({e.detail})", "red", e.seq))
    return out


def render_sequence(
    events: Iterable[TraceEvent], filters: Sequence[str] = (), *, width: int = 100
) -> Text:
    """The diagram as rich :class:`Text` (print it with a console)."""
    lane_width = max(20, (width - 6) // len(LANES))
    centers = [6 + lane_width * i + lane_width // 2 for i in range(len(LANES))]
    total = centers[-1] + 2
    out = Text(no_wrap=True)
    header = [" "] * total
    titles = list(LANES)
    titles[2] = f"filters ({', '.join(filters)})" if filters else "filters (none)"
    line = "".join(header)
    for center, title in zip(centers, titles, strict=True):
        begin = max(0, center - len(title) // 2)
        line = line[:begin] + title + line[begin + len(title) :]
    out.append(line.rstrip() + "\n", style="bold")
    out.append(_bars(centers, total) + "\n", style="dim")
    for arrow in arrows(events, filters):
        lo, hi = sorted((arrow.start, arrow.end))
        left, right = centers[lo], centers[hi]
        label_line = list(_bars(centers, total))
        label = f"{arrow.seq:>3} {arrow.label}"
        begin = left + 2
        prefix = "".join(label_line[:begin])
        suffix = "".join(label_line[begin + len(label) :])
        out.append(prefix, style="dim")
        out.append(label, style=arrow.style)
        out.append(suffix.rstrip() + "\n", style="dim")
        chars = list(_bars(centers, total))
        for x in range(left, right + 1):
            chars[x] = "─"
        for center in centers[lo + 1 : hi]:
            chars[center] = "┼"
        if arrow.end > arrow.start:
            chars[left] = "├"
            chars[right] = "▶"
        else:
            chars[left] = "◀"
            chars[right] = "┤"
        text = "".join(chars).rstrip()
        out.append(text[:left], style="dim")
        out.append(text[left : right + 1], style=arrow.style)
        out.append(text[right + 1 :] + "\n", style="dim")
    return out


def _bars(centers: Sequence[int], total: int) -> str:
    chars = [" "] * total
    for center in centers:
        chars[center] = "│"
    return "".join(chars)

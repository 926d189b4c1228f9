"""``pcap stats --html`` / ``--svg``: a capture's offload artifacts as pictures.

Three charts (inline SVG): the frame-size distribution as captured beside the sizes on the
wire (what ``pcap segment`` writes: LSO sends and coalesced receives cut at the flow's MSS;
``pcap fix`` changes no size) and after RSC (what ``pcap coalesce`` writes), the throughput
of the busiest flows over time, and the offload artifacts over time (checksums left for
offload, unsegmented LSO sends, coalesced receives, wrong checksums); then the summary and
the per-flow table.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from html import escape

import numpy as np
import numpy.typing as npt

from ndis_offload.capture.analyze import (
    SIZE_BINS,
    Analyzer,
    Diagnosis,
    FlowStats,
    size_bin_labels,
)
from ndis_offload.capture.checks import Checks
from ndis_offload.capture.linktype import from_ethernet, to_ethernet
from ndis_offload.capture.timeline import Timeline
from ndis_offload.engine.rsc import CoalescedFrame, RscCoalescer
from ndis_offload.errors import PacketError
from ndis_offload.io.capture import Chunk, Packet
from ndis_offload.io.pcap_jobs import JobResult
from ndis_offload.viz import html
from ndis_offload.viz.charts import bar_chart, line_chart
from ndis_offload.viz.outputs import Pictures
from ndis_offload.viz.svg import svg_root, to_inline, to_string

TOP_FLOWS = 8
"""Flows drawn in the throughput chart (the busiest by bytes)."""

TABLE_FLOWS = 500
"""Flows listed in the page's table (by bytes; the rest are summed in one row)."""

POINTS = 60
"""At most this many points per line: finer bins are summed in groups for drawing."""

ARTIFACTS = (Diagnosis.OFFLOAD, Diagnosis.GIANT, Diagnosis.COALESCED, Diagnosis.WRONG)


def chunk_seconds(chunk: Chunk) -> npt.NDArray[np.float64]:
    """Each packet's timestamp in seconds (whole seconds kept apart from the fraction, so
    nanosecond timestamps lose nothing that matters to a chart)."""
    ticks = np.asarray(chunk.ts_ticks, dtype=np.int64)
    tps = np.asarray(chunk.ticks_per_second, dtype=np.int64)
    whole, part = np.divmod(ticks, tps)
    return whole.astype(np.float64) + part / tps


class RscSizes:
    """Frame sizes after the NDIS RSC rules, as ``pcap coalesce`` would write them: every
    frame goes through the engine's :class:`~ndis_offload.engine.rsc.RscCoalescer` at its
    capture time (a frame it cannot parse counts as it is)."""

    def __init__(self, timeout: float = 0.0005) -> None:
        self.rsc = RscCoalescer(timeout=timeout)
        self.sizes = np.zeros(len(SIZE_BINS) - 1, dtype=np.int64)
        self._link: tuple[int, bytes] | None = None
        self._done = False
        self.missing = ""
        """Why there are no sizes after RSC (empty when there are)."""

    def _count(self, sizes: list[int]) -> None:
        if sizes:
            self.sizes += np.histogram(np.array(sizes), bins=np.array(SIZE_BINS))[0]

    def _sizes(self, frames: list[CoalescedFrame]) -> list[int]:
        if self._link is None:
            return [len(c.frame) for c in frames]
        linktype, header = self._link
        return [len(from_ethernet(linktype, header, c.frame)) for c in frames]

    def feed(self, chunk: Chunk) -> None:
        """Push every good packet of ``chunk``. A chunk without its bytes (a cluster run
        ships only the checks back) makes the sizes unknown: :attr:`missing` says why."""
        if len(chunk) and not chunk.buffer:
            self.missing = "not computed on a cluster (it sends no frame bytes back)"
        if self.missing:
            return
        out: list[int] = []
        for item in chunk.packets():
            if not isinstance(item, Packet) or item.index - chunk.first_index in chunk.bad:
                continue
            now = item.ts_ticks / item.ticks_per_second
            try:
                header, eth = to_ethernet(item.linktype, item.data)
                indicated = self.rsc.push(eth, now)
            except PacketError:
                out.append(len(item.data))
                continue
            self._link = (item.linktype, header)
            out += self._sizes(indicated)
        self._count(out)

    def finish(self) -> npt.NDArray[np.int64]:
        """Indicate what the coalescer still holds; the histogram (idempotent)."""
        if not self._done:
            self._count(self._sizes(self.rsc.flush()))
            self._done = True
        return self.sizes


class CaptureRecorder:
    """What the pictures need beyond the analyzer, gathered in the same pass over the file:
    the :class:`~ndis_offload.capture.timeline.Timeline` and the sizes after RSC."""

    def __init__(self) -> None:
        self.timeline = Timeline()
        self.rsc = RscSizes()

    def observe(self, chunk: Chunk, checks: Checks, diagnoses: npt.NDArray[np.int8]) -> None:
        """The :data:`~ndis_offload.io.pcap_jobs.Observer` to hand the job."""
        self.timeline.feed(chunk_seconds(chunk), checks.flow, chunk.caplens, diagnoses)
        self.rsc.feed(chunk)


def _grouping(timeline: Timeline) -> int:
    """How many timeline bins make one drawn point (a power of two)."""
    group = 1
    while timeline.used > group * POINTS:
        group *= 2
    return group


def _coarse(values: npt.NDArray[np.int64], used: int, group: int) -> npt.NDArray[np.int64]:
    """The first ``used`` bins summed in groups of ``group`` (the last group may be short)."""
    padded = np.zeros((-(-used // group) * group, *values.shape[1:]), dtype=np.int64)
    padded[:used] = values[:used]
    out: npt.NDArray[np.int64] = padded.reshape(-1, group, *values.shape[1:]).sum(axis=1)
    return out


def _x(timeline: Timeline, group: int) -> list[float]:
    count = -(-timeline.used // group)
    return [i * timeline.width * group for i in range(count)]


def _flow_names(analyzer: Analyzer) -> dict[int, str]:
    return {h: s.key for h, s in analyzer.flows.items()}


def size_chart(analyzer: Analyzer, rsc: RscSizes) -> ET.Element:
    """Frames per size bin: captured; on the wire (``pcap segment``: LSO sends and coalesced
    receives cut at the MSS; ``pcap fix`` changes no size); after RSC (``pcap coalesce``),
    unless :attr:`RscSizes.missing` says why not."""
    labels = size_bin_labels()
    series = {
        "captured": analyzer.sizes_before.tolist(),
        "on the wire (segment)": analyzer.sizes_after.tolist(),
    }
    if not rsc.missing:
        series["after RSC (coalesce)"] = rsc.finish().tolist()
    keep = [i for i in range(len(labels)) if any(v[i] for v in series.values())] or [0]
    title = "Frame sizes: as captured, cut to the wire (segment), merged by RSC (coalesce)"
    if rsc.missing:
        title = f"Frame sizes: as captured, cut to the wire; after RSC {rsc.missing}"
    return bar_chart(
        title,
        [labels[i] for i in keep],
        {name: [values[i] for i in keep] for name, values in series.items()},
        y_label="frames (log)",
        log=True,
    )


def throughput_chart(timeline: Timeline, analyzer: Analyzer) -> ET.Element:
    """Bits per second of the busiest flows, per time bin."""
    names = _flow_names(analyzer)
    used, group = timeline.used, _grouping(timeline)
    seconds = timeline.width * group
    busiest = sorted(timeline.flow_bytes.items(), key=lambda kv: -int(kv[1].sum()))[:TOP_FLOWS]
    series = {
        names.get(flow, f"flow {flow:016x}"): (_coarse(values, used, group) * 8 / seconds).tolist()
        for flow, values in busiest
    }
    return line_chart(
        f"Throughput of the {len(series)} busiest flow(s), averaged over {_span(seconds)}",
        _x(timeline, group),
        series,
        x_label="seconds from the first frame",
        y_label="bit/s",
    )


def artifacts_chart(timeline: Timeline) -> ET.Element:
    """Frames per time bin for each offload artifact the capture shows."""
    used, group = timeline.used, _grouping(timeline)
    frames = _coarse(timeline.frames, used, group)
    series = {d.label: frames[:, d].tolist() for d in ARTIFACTS if frames[:, d].any()}
    return line_chart(
        f"Offload artifacts over time, frames per {_span(timeline.width * group)}",
        _x(timeline, group),
        series,
        x_label="seconds from the first frame",
        y_label="frames",
    )


def _span(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.3g} ms"
    return f"{seconds:.3g} s"


def _flow_rows(analyzer: Analyzer, shown: list[Diagnosis]) -> list[list[html.Cell]]:
    flows: list[FlowStats] = sorted(analyzer.flows.values(), key=lambda s: -s.bytes)
    rest = flows[TABLE_FLOWS:]
    flows = flows[:TABLE_FLOWS]
    if analyzer.other_flows.frames:
        flows.append(analyzer.other_flows)
    rows: list[list[html.Cell]] = []
    for s in flows:
        row: list[html.Cell] = [s.key, (f"{s.frames:,}", "num"), (f"{s.bytes:,}", "num")]
        row += [(f"{s.counts[d]:,}", "num fail" if d.is_error and s.counts[d] else "num")
                for d in shown]  # fmt: skip
        rows.append(row)
    if rest:
        last: list[html.Cell] = [f"({len(rest):,} smaller flows)",
                                 (f"{sum(s.frames for s in rest):,}", "num"),
                                 (f"{sum(s.bytes for s in rest):,}", "num")]  # fmt: skip
        last += [(f"{sum(s.counts[d] for s in rest):,}", "num") for d in shown]
        rows.append(last)
    return rows


def capture_html(name: str, result: JobResult, recorder: CaptureRecorder) -> str:
    """The whole page."""
    a, timeline = result.analyzer, recorder.timeline
    shown = [d for d in Diagnosis if a.totals[d]]
    summary = html.table(
        ["diagnosis", "frames"],
        [
            [
                (
                    d.label,
                    "fail" if d.is_error else ("ok" if d == Diagnosis.CORRECT else "pending"),
                ),
                (f"{a.totals[d]:,}", "num"),
            ]
            for d in shown
        ],  # fmt: skip
    )
    totals = (f"<p>{a.frames:,} frames, {result.total_bytes:,} bytes, {len(a.flows):,} flows, "
              f"{timeline.last:.6g} s from the first frame to the last.</p>")  # fmt: skip
    flows = html.table(["flow", "frames", "bytes", *(d.label for d in shown)],
                       _flow_rows(a, shown))  # fmt: skip
    notable = html.table(
        ["frame", "diagnosis", "detail"],
        [
            [
                (str(n.index + 1), "num"),
                (n.diagnosis.label, "fail" if n.diagnosis.is_error else "pending"),
                n.detail,
            ]
            for n in a.notable
        ],  # fmt: skip
    )
    errors = [f"<li>{escape(str(e))}</li>" for e in result.errors]
    body = [
        html.section("Frame sizes", html.figure(to_inline(size_chart(a, recorder.rsc))),
                     anchor="sizes"),
        html.section("Throughput per flow",
                     html.figure(to_inline(throughput_chart(timeline, a))), anchor="throughput"),
        html.section("Offload artifacts over time",
                     html.figure(to_inline(artifacts_chart(timeline))), anchor="artifacts"),
        html.section("Summary", totals, summary, anchor="summary"),
        html.section("Flows (by bytes)", flows, anchor="flows"),
        html.section(
            f"Frames to look at ({len(a.notable):,})",
            html.details("first frames with a real error or an offload artifact", notable),
            anchor="frames",
        ),
    ]  # fmt: skip
    if errors:
        body.append(html.section("Capture errors", f"<ul>{''.join(errors)}</ul>"))
    return html.page(
        f"Capture statistics: {name}",
        body,
        "checksums, segmentation and coalescing as the capture shows them",
    )


def capture_svg(name: str, result: JobResult, recorder: CaptureRecorder) -> str:
    """The three charts stacked in one standalone SVG."""
    timeline = recorder.timeline
    charts = [size_chart(result.analyzer, recorder.rsc),
              throughput_chart(timeline, result.analyzer), artifacts_chart(timeline)]  # fmt: skip
    heights = [float(c.get("height", "0")) for c in charts]
    width = max(float(c.get("width", "0")) for c in charts)
    root = svg_root(width, sum(heights), f"Capture statistics: {name}")
    y = 0.0
    for chart, height in zip(charts, heights, strict=True):
        chart.set("y", f"{y:g}")
        root.append(chart)
        y += height
    return to_string(root)


def capture_pictures(name: str, result: JobResult, recorder: CaptureRecorder) -> Pictures:
    """``pcap stats --svg/--html``."""
    return Pictures(
        svg=lambda: capture_svg(name, result, recorder),
        html=lambda: capture_html(name, result, recorder),
    )

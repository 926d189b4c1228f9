"""HTML reports of a stack run (``demo``, ``run SCENARIO``): the sequence diagram, the offload
configuration before and after, and the full trace as collapsible JSON."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape as html_escape

from ndis_offload.lab.demo import DemoResult, encapsulation_names
from ndis_offload.lab.scenario_run import ScenarioRun, start
from ndis_offload.stack.features import features_of
from ndis_offload.stack.requests import TraceEvent
from ndis_offload.structs.offload import NdisOffload
from ndis_offload.viz import html
from ndis_offload.viz.flow import Flow, build_flow, status_tone
from ndis_offload.viz.mermaid import to_mermaid
from ndis_offload.viz.outputs import Pictures
from ndis_offload.viz.svg_sequence import sequence_inline, sequence_svg
from ndis_offload.viz.tables import COLUMNS, GRID, compact_features

EVENT = "event-"
"""Prefix of the trace entries' ids: the diagram's arrows link to ``#event-<seq>``."""


@dataclass(frozen=True)
class ConfigView:
    """One configuration to show: which features are on (``None``: no task offload)."""

    title: str
    on: frozenset[str] | None
    hardware: frozenset[str] | None = None


def offload_grid(view: ConfigView) -> str:
    """The ``caps``/``demo`` feature grid (offload type x IP version and direction) as HTML:
    ``on``, ``off``, ``off [fixed]`` (the hardware cannot), ``·`` (no such offload)."""
    rows = []
    for label, names in GRID:
        cells: list[html.Cell] = [label]
        for name in names:
            if name is None:
                cells.append(("·", "none"))
            elif view.hardware is not None and name not in view.hardware:
                cells.append(("off [fixed]", "fixed"))
            elif view.on is not None and name in view.on:
                cells.append(("on", "ok"))
            else:
                cells.append(("off", "off"))
        rows.append(cells)
    title = view.title + (" (adapter reports no task offload)" if view.on is None else "")
    return html.table(["offload", *COLUMNS], rows, caption=title)


def trace_table(events: Sequence[TraceEvent]) -> str:
    """Every trace event: one row each, the decoded payload collapsible under it."""
    rows = []
    for e in events:
        status: html.Cell = (e.status, status_tone(e.status)) if e.status else ""
        to = f" → {', '.join(e.to)}" if e.to else ""
        rows.append([str(e.seq), e.kind, e.source, f"{e.target}{to}", e.what, status, e.detail])
    body = html.table(["#", "kind", "from", "to", "what", "status", "detail"], rows)
    payloads = "\n".join(
        html.details(f"{e.seq} {e.kind} {e.what}", html.pre_json(e.to_dict(), f"{EVENT}{e.seq}"))
        for e in events
    )
    return body + html.details(f"every event as JSON ({len(events)})", payloads)


def stack_report(
    title: str,
    subtitle: str,
    flow: Flow,
    events: Sequence[TraceEvent],
    configs: Iterable[ConfigView],
    extra: Iterable[str] = (),
) -> str:
    """The whole page. ``extra`` are further sections (already HTML) after the tables."""
    grids = '<div class="tables">' + "".join(offload_grid(c) for c in configs) + "</div>"
    body = [
        html.section(
            "Sequence diagram",
            html.figure(sequence_inline(flow, link=EVENT)),
            "<p>Select an arrow for its event in the trace below.</p>",
            anchor="sequence",
        ),  # fmt: skip
        html.section("Offload configuration", grids, anchor="config"),
        *extra,
        html.section("Trace", trace_table(events), anchor="trace"),
    ]
    return html.page(title, body, subtitle)


def demo_pictures(demo: DemoResult) -> Pictures:
    """``demo --svg/--mermaid/--html``."""
    stack = demo.stack
    flow = build_flow(stack.trace, [f.name for f in stack.filters], stack.miniport.name)
    title = f"ndis-offload demo: profile {demo.profile.name}, miniport {demo.variant}"

    def page() -> str:
        configs = [
            ConfigView("Current config before", demo.config_before, demo.hardware),
            ConfigView(f"After enable ({demo.enable_status})", demo.config_after_enable,
                       demo.hardware),
            ConfigView(f"After disable ({demo.disable_status})", demo.config_after_disable,
                       demo.hardware),
        ]  # fmt: skip
        return stack_report(title, demo.profile.description, flow, stack.trace, configs,
                            demo_sections(demo))  # fmt: skip

    return Pictures(
        svg=lambda: sequence_svg(flow, title),
        mermaid=lambda: to_mermaid(flow, title),
        html=page,
    )


def demo_sections(demo: DemoResult) -> list[str]:
    """What the demo's terminal tables say, as HTML: pre-checks, indications received, the
    offloads each protocol may rely on, the failing case; then the summary as JSON."""
    checks = html.table(
        ["protocol", "checked via", "status", "Encapsulation (OR)", "802.3?"],
        [[name, "bind parameters" if c.via == "bind" else "query CURRENT_CONFIG",
          (c.status.c_name, status_tone(c.status.c_name)),
          ", ".join(n.removeprefix("NDIS_ENCAPSULATION_")
                    for n in encapsulation_names(c.encapsulations)) or "NOT_SUPPORTED",
          ("yes", "ok") if c.supported else ("no", "fail")] for name, c in demo.prechecks],
        caption="Pre-checks: does the adapter support our encapsulation?",
    )  # fmt: skip
    received = html.table(
        ["protocol", "count", "statuses"],
        [[name, (str(len(s)), "num"), ", ".join(s) or "-"] for name, s in demo.indications.items()],
        caption="Status indications each protocol received",
    )
    protocols = list(dict.fromkeys(p for per in demo.usable.values() for p in per))
    usable = html.table(
        ["when", *protocols],
        [[phase, *((compact_features(per[p]) or "none") if p in per else ("(not bound)", "none")
                   for p in protocols)] for phase, per in demo.usable.items()],
        caption="Offloads each protocol may rely on (send offloads; RSC on receive)",
    )  # fmt: skip
    llc = demo.protocols["llcsnap"]
    verdict = "uses no offload" if llc.failed and not llc.usable else "still uses offload (!)"
    status, detail = html_escape(demo.failing_status), html_escape(demo.failing_detail)
    failing = (f"<p>Failing case: llcsnap asked for NDIS_ENCAPSULATION_IEEE_LLC_SNAP_ROUTED → "
               f'<span class="fail">{status}</span> ({detail}); it {verdict} on this '
               "adapter.</p>")  # fmt: skip
    return [
        html.section("What the protocols saw", checks, received, usable, failing, anchor="saw"),
        html.section("Summary (JSON)", html.details("demo --json summary",
                                                    html.pre_json(demo.summary())),
                     anchor="summary"),
    ]  # fmt: skip


def run_pictures(run: ScenarioRun, name: str) -> Pictures:
    """``run SCENARIO --svg/--mermaid/--html``: the configuration before is the miniport's
    at initialization (a fresh stack built from the same scenario), after is the stack's
    after the last step."""
    stack = run.stack
    flow = build_flow(stack.trace, [f.name for f in stack.filters], stack.miniport.name)
    adapter = run.scenario.adapter
    title = f"ndis-offload run {name}"
    subtitle = f"profile {adapter.profile.name}, miniport {adapter.variant}"

    def page() -> str:
        hardware = features_or_none(stack.hardware_capabilities)
        configs = [
            ConfigView("Configuration at initialization",
                       features_or_none(start(run.scenario).stack.config), hardware),
            ConfigView("Configuration after the last step", features_or_none(stack.config),
                       hardware),
        ]  # fmt: skip
        steps = html.table(
            ["step", "action", "by", "OID", "status", "detail", "expect failed"],
            [[str(r.index), r.action, r.by, r.oid, (r.status, status_tone(r.status)), r.detail,
              ("; ".join(r.failures), "fail") if r.failures else ""] for r in run.results],
        )  # fmt: skip
        extra = [html.section("Steps", steps, anchor="steps")]
        return stack_report(title, subtitle, flow, stack.trace, configs, extra)

    return Pictures(
        svg=lambda: sequence_svg(flow, title),
        mermaid=lambda: to_mermaid(flow, title),
        html=page,
    )


def features_or_none(offload: NdisOffload | None) -> frozenset[str] | None:
    """The features an ``NDIS_OFFLOAD`` turns on (``None`` stays ``None``)."""
    return None if offload is None else features_of(offload)

"""The diagram model (viz.flow) against the trace it reads: every event becomes the arrows
the NDIS flow prescribes (requests down to whoever completes them, completions back to the
requester, indications through NDIS to every binding)."""

from __future__ import annotations

from typing import Any

from ndis_offload.lab.demo import run_demo
from ndis_offload.lab.scenario import load_scenario
from ndis_offload.lab.scenario_run import run_step, start
from ndis_offload.viz.flow import NDIS, Flow, build_flow, describe_payload


def scenario_flow(doc: dict[str, Any]) -> tuple[Flow, Any]:
    scenario = load_scenario(doc)
    run = start(scenario)
    for step in scenario.steps:
        run_step(run, step)
    stack = run.stack
    return build_flow(stack.trace, [f.name for f in stack.filters], stack.miniport.name), run


def names(flow: Flow, index: int) -> str:
    return flow.lanes[index].name


def test_demo_lanes_protocols_ndis_filters_miniport() -> None:
    demo = run_demo()
    stack = demo.stack
    flow = build_flow(stack.trace, [f.name for f in stack.filters])
    assert [(lane.name, lane.role) for lane in flow.lanes] == [
        ("tcpip", "protocol"),
        ("tcpip6", "protocol"),
        ("llcsnap", "protocol"),
        (NDIS, "ndis"),
        ("recorder", "filter"),
        (stack.miniport.name, "miniport"),
    ]


def test_every_event_becomes_its_arrows() -> None:
    demo = run_demo()
    stack = demo.stack
    flow = build_flow(stack.trace, [f.name for f in stack.filters])
    by_seq: dict[int, list[Any]] = {}
    for m in flow.messages:
        by_seq.setdefault(m.seq, []).append(m)
    assert sorted(by_seq) == [e.seq for e in stack.trace]
    for e in stack.trace:
        arrows = by_seq[e.seq]
        if e.kind == "indication" and e.target == "protocols":
            # one to NDIS, then one per binding it reached
            assert len(arrows) == 1 + len(e.to)
            assert names(flow, arrows[0].target) == NDIS
            assert [names(flow, a.target) for a in arrows[1:]] == list(e.to)
        elif e.kind == "completion":
            (arrow,) = arrows
            assert names(flow, arrow.target) == e.target
            assert arrow.status == e.status
        elif e.kind == "request":
            (arrow,) = arrows
            assert names(flow, arrow.source) == e.source


def test_ndis_answers_queries_itself_and_forwards_sets_to_the_miniport() -> None:
    stack = run_demo().stack
    flow = build_flow(stack.trace, [f.name for f in stack.filters])
    query = next(m for m in flow.messages if m.label == "query OID_TCP_OFFLOAD_CURRENT_CONFIG")
    assert names(flow, query.target) == NDIS  # NDIS answers from its cached configuration
    sets = [m for m in flow.messages if m.label == "set OID_OFFLOAD_ENCAPSULATION"]
    assert sets and all(names(flow, m.target) == stack.miniport.name for m in sets)
    failed = [m for m in flow.messages if m.tone == "fail"]
    assert [m.status for m in failed] == ["NDIS_STATUS_INVALID_PARAMETER"]
    completion = next(e for e in stack.trace if e.seq == failed[0].seq)
    assert completion.detail and completion.detail in failed[0].note


def test_a_filter_that_fails_a_request_completes_it_from_its_own_lane() -> None:
    flow, _ = scenario_flow({
        "filters": [{"type": "recording"},
                    {"type": "fail", "oid": "OID_TCP_OFFLOAD_PARAMETERS",
                     "status": "NDIS_STATUS_RESOURCES"}],
        "steps": [{"bind": "tcpip"},
                  {"set": "OID_TCP_OFFLOAD_PARAMETERS", "value": {"LsoV2IPv4": 2}}],
    })  # fmt: skip
    # stack order: recorder lowest, fail above it -> lanes NDIS, fail, recorder, miniport
    assert [lane.name for lane in flow.lanes][1:4] == [NDIS, "fail", "recorder"]
    request = next(m for m in flow.messages if m.label == "set OID_TCP_OFFLOAD_PARAMETERS")
    completion = next(m for m in flow.messages if m.status == "NDIS_STATUS_RESOURCES")
    assert names(flow, request.target) == "fail"
    assert names(flow, completion.source) == "fail"
    assert names(flow, completion.target) == "tcpip"


def test_pending_request_shows_the_pending_then_the_completion() -> None:
    flow, _ = scenario_flow({
        "adapter": {"pend_requests": True},
        "steps": [{"bind": "tcpip"}, {"enable": "tcpip"}, {"complete_pending": True}],
    })  # fmt: skip
    tones = [m.tone for m in flow.messages]
    assert "pending" in tones
    pending = tones.index("pending")
    done = next(i for i, m in enumerate(flow.messages) if m.status == "NDIS_STATUS_SUCCESS"
                and m.label.startswith("NDIS_STATUS_SUCCESS (set"))  # fmt: skip
    assert pending < done
    assert names(flow, flow.messages[pending].target) == NDIS


def test_a_masking_filter_keeps_indications_flowing_to_every_binding() -> None:
    flow, run = scenario_flow({
        "filters": [{"type": "mask", "hide": ["lsov2_4"]}],
        "steps": [{"bind": "a"}, {"bind": "b"}, {"enable": "a"}],
    })  # fmt: skip
    fan = [m for m in flow.messages if m.label.startswith("ProtocolStatusEx")]
    assert sorted(names(flow, m.target) for m in fan) == ["a", "b"]
    assert "lsov2_4" not in next(m for m in flow.messages if m.tone == "indication").note


def test_payload_descriptions() -> None:
    assert describe_payload(None) == ""
    assert describe_payload({"undecodable": "too short", "hex": "00"}) == "undecodable: too short"
    encapsulation = {"Header": {}, "IPv4": {"Enabled": 1, "EncapsulationType": 2, "HeaderSize": 14},
                     "IPv6": {"Enabled": 0, "EncapsulationType": 0, "HeaderSize": 0}}  # fmt: skip
    assert describe_payload(encapsulation) == "IPv4 ON 802.3 header 14; IPv6 NO_CHANGE"
    assert describe_payload({"DefaultOffloadConfiguration": None}) == (
        "bind parameters: no task offload"
    )
    assert describe_payload({"Header": {}, "LsoV2IPv4": 2, "RscIPv6": 0}) == "LsoV2IPv4=2"


def test_terminal_diagram_stops_each_request_where_it_was_completed() -> None:
    from ndis_offload.viz.sequence import arrows

    _, run = scenario_flow({
        "filters": [{"type": "fail", "oid": "OID_TCP_OFFLOAD_PARAMETERS"}],
        "steps": [{"bind": "tcpip"}, {"query": "OID_TCP_OFFLOAD_CURRENT_CONFIG"},
                  {"set": "OID_TCP_OFFLOAD_PARAMETERS", "value": {"LsoV2IPv4": 2}},
                  {"enable": "tcpip"}],
    })  # fmt: skip
    stack = run.stack
    drawn = arrows(stack.trace, [f.name for f in stack.filters])
    ends = {a.label.split(": ", 1)[1]: a.end for a in drawn if a.label.startswith("tcpip: ")}
    assert ends == {
        "query OID_TCP_OFFLOAD_CURRENT_CONFIG": 1,  # NDIS answers it
        "set OID_TCP_OFFLOAD_PARAMETERS": 2,  # the filter fails it
        "set OID_OFFLOAD_ENCAPSULATION": 3,  # the miniport completes it
    }

"""The SVG pictures parse as XML (xml.etree) and say what the model says: one lifeline per
lane, one arrow per message, statuses and decoded payloads as text and hover titles; Mermaid
output has one participant per lane and one arrow line per message, with no character left
that Mermaid would read as syntax."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from ndis_offload.io.conformance import rng_for
from ndis_offload.lab.conformance import CHECKS, run_battery
from ndis_offload.lab.demo import run_demo
from ndis_offload.lab.variants import VARIANTS, make_miniport
from ndis_offload.stack.profiles import AdapterProfile
from ndis_offload.viz.flow import Flow, Lane, Message, build_flow
from ndis_offload.viz.mermaid import escape, to_mermaid
from ndis_offload.viz.report_conformance import matrix_of, matrix_svg
from ndis_offload.viz.svg_sequence import sequence_svg

NS = {"s": "http://www.w3.org/2000/svg"}


def demo_flow() -> Flow:
    stack = run_demo().stack
    return build_flow(stack.trace, [f.name for f in stack.filters])


def parse(text: str) -> ET.Element:
    assert text.startswith("<?xml")
    return ET.fromstring(text.split("?>", 1)[1])


def message_groups(root: ET.Element) -> list[ET.Element]:
    groups = root.iter(f"{{{NS['s']}}}g")
    return [g for g in groups if (g.get("class") or "").split()[:1] == ["message"]]


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{{{NS['s']}}}text")]


def test_sequence_svg_is_xml_with_a_lane_per_participant_and_an_arrow_per_message() -> None:
    flow = demo_flow()
    root = parse(sequence_svg(flow, "demo"))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    lanes = root.findall(".//s:g[@class='lane']", NS)
    assert len(lanes) == len(flow.lanes)
    arrows = message_groups(root)
    assert len(arrows) == len(flow.messages)
    words = texts(root)
    for lane in flow.lanes:
        assert lane.name in words
    joined = "\n".join(words)
    for status in ("NDIS_STATUS_SUCCESS", "NDIS_STATUS_INVALID_PARAMETER",
                   "NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG"):  # fmt: skip
        assert status in joined
    assert "IPv4 ON 802.3 header 14" in joined  # the decoded set, as a note


def test_hover_titles_carry_the_full_decoded_payload() -> None:
    flow = demo_flow()
    root = parse(sequence_svg(flow))
    groups = message_groups(root)
    for group, message in zip(groups, flow.messages, strict=True):
        title = group.find("s:title", NS)
        assert title is not None and title.text
        if message.payload is not None:
            payload = json.loads(title.text.split("\n", 2 if message.note else 1)[-1])
            assert payload == message.payload


def test_arrows_point_from_source_to_target_lifeline() -> None:
    flow = demo_flow()
    root = parse(sequence_svg(flow))
    lines = root.findall(".//s:g[@class='lane']/s:line", NS)
    lifelines = [float(line.get("x1", "0")) for line in lines]
    groups = message_groups(root)
    for group, message in zip(groups, flow.messages, strict=True):
        line = group.find("s:line", NS)
        assert line is not None
        x1, x2 = float(line.get("x1", "0")), float(line.get("x2", "0"))
        assert x1 == lifelines[message.source]
        assert abs(x2 - lifelines[message.target]) <= 2  # stops at the arrowhead's tip
        assert (x2 > x1) == (message.target > message.source)


hostile = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)


@given(lane=hostile, label=hostile, note=hostile)
def test_any_label_stays_well_formed_and_round_trips(lane: str, label: str, note: str) -> None:
    flow = Flow(
        (Lane(lane or "p", "protocol"), Lane("NDIS", "ndis"), Lane("m", "miniport")),
        (Message(1, 0, 2, label, "call", note=note, payload={"k": label}),),
    )
    root = parse(sequence_svg(flow, label))
    words = texts(root)
    assert (lane or "p") in words
    assert f"1  {label}" in words


@given(text=hostile)
def test_mermaid_escape_leaves_no_syntax(text: str) -> None:
    out = escape(text)
    # what is left once our entities are taken out holds no Mermaid syntax character
    bare = re.sub(r"#(?:35|59|37|lt|gt);", "", out)
    assert not set(bare) & {"#", ";", "<", ">", "%", "\n"}
    assert len(out) - len(bare) == sum(len(escape(ch)) for ch in text if ch in "#;<>%")


def test_mermaid_has_a_participant_per_lane_and_a_line_per_message() -> None:
    flow = demo_flow()
    text = to_mermaid(flow, "demo")
    lines = text.splitlines()
    assert "sequenceDiagram" in lines
    participants = [line for line in lines if line.strip().startswith("participant ")]
    assert len(participants) == len(flow.lanes)
    arrows = [line for line in lines if re.match(r"\s+\w+(?:->>|-->>|--x|-\))\w+: ", line)]
    assert len(arrows) == len(flow.messages)
    assert any("NDIS_STATUS_INVALID_PARAMETER" in line and "--x" in line for line in arrows)


def _factory(name: str):  # type: ignore[no-untyped-def]
    def build(profile: AdapterProfile):  # type: ignore[no-untyped-def]
        return make_miniport(name, profile)

    return build


def test_matrix_svg_has_a_cell_per_miniport_and_check() -> None:
    checks = [c for c in CHECKS if c.name.startswith(("encapsulation-", "parameters-"))]
    reports = [run_battery(_factory(name), rng_for(0), checks, target=name) for name in VARIANTS]
    root = parse(matrix_svg(matrix_of(reports)))
    cells = [g for g in root.iter(f"{{{NS['s']}}}g") if (g.get("class") or "").startswith("cell")]
    assert len(cells) == len(checks) * len(reports)
    failed = sum(r.status.failed for report in reports for r in report.results)
    assert failed > 0
    red = sum((g.get("class") or "").endswith(("fail", "error", "timeout")) for g in cells)
    assert red == failed
    words = texts(root)
    for name in VARIANTS:
        assert name in words

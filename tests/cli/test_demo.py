"""``ndis-offload demo``: the README's main job."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

from rich.console import Console

from ndis_offload.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def _run(argv: list[str]) -> tuple[int, str]:
    buffer = io.StringIO()
    code = main(argv, console=Console(file=buffer, width=120))
    return code, buffer.getvalue()


def test_readme_first_command_runs_demo() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", readme, re.S)
    assert block is not None
    first = block.group(1).splitlines()[0]
    assert first.endswith("ndis-offload demo")
    code, out = _run(first.split("ndis-offload ", 1)[1].split())
    assert code == 0
    assert "NDIS_STATUS_INVALID_PARAMETER" in out


def test_demo_text_shows_the_flow() -> None:
    code, out = _run(["demo"])
    assert code == 0
    for needle in (
        "protocols",
        "NDIS",
        "filters",
        "miniport",
        "ProtocolBindAdapterEx",
        "query OID_TCP_OFFLOAD_CURRENT_CONFIG",
        "set OID_OFFLOAD_ENCAPSULATION",
        "NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG → tcpip, tcpip6",
        "NDIS_STATUS_SUCCESS",
        "NDIS_STATUS_INVALID_PARAMETER",
        "NDIS_ENCAPSULATION_IEEE_LLC_SNAP_ROUTED",
        "Current config before",
        "After enable",
        "After disable",
        "uses no offload",
    ):
        assert needle in out, needle


def _demo_json(*extra: str) -> dict[str, Any]:
    code, out = _run(["demo", "--json", *extra])
    assert code == 0
    doc: dict[str, Any] = json.loads(out)
    return doc


def test_demo_json_trace_has_enable_indication_and_failure() -> None:
    doc = _demo_json()
    trace = doc["trace"]
    enables = [
        e
        for e in trace
        if e["kind"] == "request"
        and e["what"] == "set OID_OFFLOAD_ENCAPSULATION"
        and e["source"] == "tcpip"
    ]
    assert enables
    assert enables[0]["payload"]["IPv4"] == {"Enabled": 1, "EncapsulationType": 2, "HeaderSize": 14}
    indications = [
        e
        for e in trace
        if e["kind"] == "indication" and e["what"] == "NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG"
    ]
    assert indications and all(e["to"] == ["tcpip", "tcpip6"] for e in indications)
    failures = [
        e
        for e in trace
        if e["kind"] == "completion" and e.get("status") == "NDIS_STATUS_INVALID_PARAMETER"
    ]
    assert len(failures) == 1 and failures[0]["target"] == "llcsnap"
    summary = doc["summary"]
    assert summary["enable"] == summary["disable"] == "NDIS_STATUS_SUCCESS"
    assert summary["failing"]["status"] == "NDIS_STATUS_INVALID_PARAMETER"
    assert summary["failing"]["usable"] == [] and summary["failing"]["failed"] is True
    assert [c["via"] for c in summary["prechecks"]] == ["bind", "query"]
    assert all(c["supported"] for c in summary["prechecks"])
    assert summary["indications"]["tcpip6"] == ["NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG"] * 2
    assert summary["config_after_disable"] == ["rsc4", "rsc6"]


def test_demo_other_profile_and_bad_profile() -> None:
    doc = _demo_json("--profile", "checksum-only")
    assert doc["summary"]["profile"] == "checksum-only"
    code, out = _run(["demo", "--profile", "nope"])
    assert code == 2
    assert "unknown profile 'nope'" in out
    code, out = _run(["demo", "--variant", "nope"])
    assert code == 2
    assert "unknown variant" in out

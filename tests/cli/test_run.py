"""``ndis-offload run``: scenario files, JSON lines, and scenario errors (exit 2)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from ndis_offload.cli.main import main

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def _run(argv: list[str]) -> tuple[int, str]:
    buffer = io.StringIO()
    code = main(argv, console=Console(file=buffer, width=120))
    return code, buffer.getvalue()


def _steps(path: Path) -> list[dict[str, Any]]:
    code, out = _run(["run", str(path), "--json"])
    assert code == 0, out
    return [json.loads(line) for line in out.splitlines()]


def _statuses(steps: list[dict[str, Any]]) -> list[str]:
    return [s["status"] for s in steps]


@pytest.mark.parametrize("name", sorted(p.name for p in SCENARIOS.glob("*.json")))
def test_every_scenario_meets_its_expectations(name: str) -> None:
    steps = _steps(SCENARIOS / name)
    assert all("expect_failed" not in s for s in steps)
    for index, step in enumerate(steps):
        assert step["step"] == index
        assert {"status", "value", "indications"} <= set(step)


def test_enable_scenario() -> None:
    steps = _steps(SCENARIOS / "enable.json")
    assert _statuses(steps)[2:5] == [
        "NDIS_STATUS_FAILURE",  # query of OID_OFFLOAD_ENCAPSULATION before any set
        "NDIS_STATUS_SUCCESS",
        "NDIS_STATUS_SUCCESS",
    ]
    (indication,) = steps[4]["indications"]
    assert indication["status"] == "NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG"
    assert indication["to"] == ["tcpip", "tcpip6"]
    assert indication["value"]["Header"]["Revision"] == 7
    assert steps[5]["value"]["IPv4"] == {"Enabled": 1, "EncapsulationType": 2, "HeaderSize": 14}


def test_disable_scenario_with_raw_step() -> None:
    steps = _steps(SCENARIOS / "disable.json")
    assert set(_statuses(steps)) == {"NDIS_STATUS_SUCCESS"}
    assert steps[3]["value"] is None and steps[3]["BytesRead"] == 28
    assert steps[4]["value"]["Checksum"]["IPv4Transmit"]["Encapsulation"] == 0
    assert steps[6]["indications"][0]["to"] == ["tcpip", "tcpip6"]


def test_llc_snap_only_scenario() -> None:
    steps = _steps(SCENARIOS / "llc_snap_only.json")
    assert _statuses(steps)[2:4] == ["NDIS_STATUS_INVALID_PARAMETER"] * 2
    assert steps[2]["indications"] == [] and steps[3]["indications"] == []
    assert steps[5]["status"] == "NDIS_STATUS_SUCCESS"


def test_no_offload_scenario() -> None:
    steps = _steps(SCENARIOS / "no_offload.json")
    assert _statuses(steps)[1:5] == ["NDIS_STATUS_NOT_SUPPORTED"] * 4


def test_text_output_is_a_table_per_step() -> None:
    code, out = _run(["run", str(SCENARIOS / "llc_snap_only.json")])
    assert code == 0
    assert "step 0: bind" in out and "step 6: enable" in out
    assert "NDIS_STATUS_INVALID_PARAMETER" in out
    assert "NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG" in out


def _write(tmp_path: Path, doc: Any) -> Path:
    path = tmp_path / "s.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


def test_raw_hex_and_header_fill(tmp_path: Path) -> None:
    doc = {
        "adapter": {"profile": "full", "variant": "reference"},
        "filters": [{"type": "recording"}, {"type": "mask", "hide": ["lsov2_4"]}],
        "steps": [
            {"bind": "tcpip"},
            {"set": "OID_OFFLOAD_ENCAPSULATION", "raw": "a8011c00 01000000 0200"},
            {
                "set": "OID_OFFLOAD_ENCAPSULATION",
                "raw": "a7011c0001000000020000000e000000000000000000000000000000",
            },
            {"set": "OID_OFFLOAD_ENCAPSULATION", "value": {"Header": {"Size": 27}}},
            {"set": "OID_TCP_OFFLOAD_PARAMETERS", "value": {"LsoV2IPv6": 1}},
            {
                "set": "OID_TCP_OFFLOAD_PARAMETERS",
                "value": {"Header": {"Revision": 1}, "TCPIPv4Checksum": 1},
            },
            {"query": "OID_TCP_OFFLOAD_CURRENT_CONFIG", "length": 10},
            {"query": 0x0101010A},
        ],
    }
    code, out = _run(["run", str(_write(tmp_path, doc)), "--json"])
    assert code == 0, out
    steps = [json.loads(line) for line in out.splitlines()]
    assert steps[1]["status"] == "NDIS_STATUS_INVALID_LENGTH"
    assert steps[2]["status"] == "NDIS_STATUS_INVALID_PARAMETER"  # wrong header Type
    assert steps[3]["status"] == "NDIS_STATUS_INVALID_LENGTH"  # Size 27: 27 bytes sent
    assert steps[4]["status"] == "NDIS_STATUS_SUCCESS"
    assert steps[4]["indications"][0]["status"] == "NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG"
    assert steps[5]["status"] == "NDIS_STATUS_SUCCESS"
    assert steps[6]["status"] == "NDIS_STATUS_BUFFER_TOO_SHORT" and steps[6]["BytesNeeded"] > 10
    assert steps[7]["status"] == "NDIS_STATUS_FAILURE"


def test_failed_expect_exits_1(tmp_path: Path) -> None:
    doc = {"steps": [{"bind": "tcpip"}, {"enable": "tcpip", "expect": {"status": 0xC0000001}}]}
    code, out = _run(["run", str(_write(tmp_path, doc))])
    assert code == 1
    assert "expect failed" in out


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("{not json", "bad JSON"),
        ({"steps": [{"bind": "t"}, {"query": "OID_NOPE"}]}, "unknown OID 'OID_NOPE'"),
        ({"adapter": {"profile": "nope"}, "steps": [{"bind": "t"}]}, "unknown profile 'nope'"),
        ({"adapter": {"keywords": {"*Bogus": 1}}, "steps": [{"bind": "t"}]}, "unknown INF"),
        ({"adapter": {"variant": "nope"}, "steps": [{"bind": "t"}]}, "unknown variant"),
        ({"steps": [{"query": "OID_TCP_OFFLOAD_CURRENT_CONFIG"}]}, "no protocol is bound"),
        ({"steps": [{"bind": "t"}, {"unbind": "u"}]}, "'u' is not bound"),
        (
            {
                "steps": [
                    {"bind": "t"},
                    {
                        "set": "OID_OFFLOAD_ENCAPSULATION",
                        "value": {"IPv4": {"Enabled": "NDIS_OFFLOAD_SET_MAYBE"}},
                    },
                ]
            },
            "unknown constant 'NDIS_OFFLOAD_SET_MAYBE'",
        ),
        (
            {"steps": [{"bind": "t"}, {"set": "OID_OFFLOAD_ENCAPSULATION", "value": {"IPv5": {}}}]},
            "unknown field",
        ),
        ({"steps": [{"bind": "t"}, {"set": "OID_OFFLOAD_ENCAPSULATION", "raw": "zz"}]}, "not hex"),
        ({"steps": [{"bind": "t"}, {"dance": "t"}]}, "expected exactly one of"),
        ({"filters": [{"type": "mask", "hide": ["warp"]}], "steps": [{"bind": "t"}]}, "warp"),
        ({"steps": []}, "non-empty list"),
        ([1, 2], "expected an object"),
    ],
)
def test_scenario_errors_exit_2(tmp_path: Path, doc: Any, message: str) -> None:
    code, out = _run(["run", str(_write(tmp_path, doc))])
    assert code == 2
    assert "error:" in out and message in out
    assert "Traceback" not in out


def test_missing_file_exits_2(tmp_path: Path) -> None:
    code, out = _run(["run", str(tmp_path / "absent.json")])
    assert code == 2
    assert "cannot read scenario" in out

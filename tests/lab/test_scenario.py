"""lab/scenario.py (loading: names, header fill, defaults) and lab/scenario_run.py (running),
without the CLI."""

from __future__ import annotations

from typing import Any

import pytest

from ndis_offload.constants.oid import Oid
from ndis_offload.lab.demo import run_demo
from ndis_offload.lab.scenario import ScenarioError, encode_value, load_scenario
from ndis_offload.lab.scenario_run import run_scenario
from ndis_offload.structs.encapsulation import NdisOffloadEncapsulation
from ndis_offload.structs.parameters import NdisOffloadParameters


def _run(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [r.to_dict() for r in run_scenario(load_scenario(doc)).results]


def test_missing_header_is_filled_for_the_oid_structure() -> None:
    data = encode_value(Oid.OFFLOAD_ENCAPSULATION, {"IPv4": {"Enabled": 1}}, "t")
    value = NdisOffloadEncapsulation.decode(data, validate=False)
    assert value.Header == NdisOffloadEncapsulation().Header
    params = NdisOffloadParameters.decode(
        encode_value(Oid.TCP_OFFLOAD_PARAMETERS, {"Header": {"Revision": 2}}, "t")
    )
    assert params.Header.Revision == 2
    assert params.Header.Size == NdisOffloadParameters.REVISION_SIZES[2]


def test_constant_names_and_ints_are_interchangeable() -> None:
    by_name = encode_value(
        Oid.OFFLOAD_ENCAPSULATION,
        {"IPv6": {"Enabled": "NDIS_OFFLOAD_SET_ON", "EncapsulationType": "0x2", "HeaderSize": 14}},
        "t",
    )
    by_int = encode_value(
        Oid.OFFLOAD_ENCAPSULATION,
        {"IPv6": {"Enabled": 1, "EncapsulationType": 2, "HeaderSize": 14}},
        "t",
    )
    assert by_name == by_int


def test_by_defaults_to_first_binding() -> None:
    results = _run({"steps": [{"bind": "a"}, {"bind": "b"}, {"enable": True}]})
    assert results[2]["by"] == "a"
    assert results[2]["indications"][0]["to"] == ["a", "b"]


def test_pending_requests_complete_later() -> None:
    doc = {
        "adapter": {"pend_requests": True},
        "steps": [
            {"bind": "tcpip"},
            {"enable": "tcpip", "expect": {"status": "NDIS_STATUS_PENDING", "indications": 0}},
            {"disable": "tcpip", "expect": {"status": "NDIS_STATUS_PENDING"}},
            {"complete_pending": True, "expect": {"indications": 2, "current": ["rsc4", "rsc6"]}},
        ],
    }
    results = _run(doc)
    assert all("expect_failed" not in r for r in results), results
    assert [c["status"] for c in results[3]["value"]["completed"]] == ["NDIS_STATUS_SUCCESS"] * 2


def test_fail_filter_and_mask_filter() -> None:
    doc = {
        "filters": [
            {
                "type": "fail",
                "oid": "OID_TCP_OFFLOAD_PARAMETERS",
                "status": "NDIS_STATUS_RESOURCES",
            },
            {"type": "mask", "hide": ["uso4", "uso6"]},
        ],
        "steps": [
            {"bind": "tcpip"},
            {"set": "OID_TCP_OFFLOAD_PARAMETERS", "value": {"LsoV2IPv4": 1}},
            {"enable": "tcpip"},
        ],
    }
    results = _run(doc)
    assert results[1]["status"] == "NDIS_STATUS_RESOURCES"
    assert results[2]["status"] == "NDIS_STATUS_SUCCESS"
    udp = results[2]["indications"][0]["value"]["UdpSegmentation"]
    assert udp["IPv4"]["Encapsulation"] == 0


@pytest.mark.parametrize("variant", ["reference", "netkvm", "netvsp", "gvnic", "xennet"])
def test_demo_runs_on_every_variant(variant: str) -> None:
    demo = run_demo(variant=variant)
    assert demo.enable_status == "NDIS_STATUS_SUCCESS"
    assert demo.protocols["llcsnap"].usable == frozenset()


@pytest.mark.parametrize(
    "doc",
    [
        {"steps": [{"bind": "a"}, {"bind": "a"}]},
        {"steps": [{"bind": "a"}, {"set": "OID_OFFLOAD_ENCAPSULATION"}]},
        {"steps": [{"bind": "a"}, {"set": 0x1234, "value": {}}]},
        {"steps": [{"bind": "a", "expect": {"colour": 1}}]},
        {"filters": [{"type": "fail", "oid": "OID_X"}], "steps": [{"bind": "a"}]},
        {"adapter": {"encapsulations": "x"}, "steps": [{"bind": "a"}]},
        {"adapter": {"pend_requests": 1}, "steps": [{"bind": "a"}]},
        {"steps": [{"bind": "a", "header_size": True}]},
    ],
)
def test_scenario_errors(doc: dict[str, Any]) -> None:
    with pytest.raises(ScenarioError):
        load_scenario(doc)

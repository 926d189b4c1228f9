"""The conformance battery: the reference passes everything; each real-driver variant fails
exactly where docs/real-miniports.md documents that it deviates."""

from __future__ import annotations

import pytest

from ndis_offload.lab.conformance import CHECKS, run_battery
from ndis_offload.lab.variants import make_miniport
from ndis_offload.stack.miniport import ReferenceMiniport
from ndis_offload.stack.profiles import AdapterProfile
from ndis_offload.stack.requests import OidCompletion, OidRequest


def failures(variant: str) -> set[str]:
    results = run_battery(lambda profile: make_miniport(variant, profile))
    assert len(results) == len(CHECKS)
    return {r.name for r in results if not r.passed}


def test_reference_miniport_passes_every_check() -> None:
    assert failures("reference") == set()


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        # NetKVM: no indication after an encapsulation set and no state change on OFF;
        # INVALID_PARAMETER where oid-tcp-offload-parameters asks for INVALID_DATA
        ("netkvm", {"indication after set", "OFF deactivates", "never beyond hardware"}),
        # gVNIC: Size unchecked, Enabled other than ON ignored, ON validated against hardware,
        # indicates only on change, exact-sizeof buffers (a revision-5 parameters set is
        # BUFFER_OVERFLOW)
        ("gvnic", {"Header.Size too small", "bad Enabled value", "no task offload",
                   "indication after set", "OFF deactivates", "NO_CHANGE keeps",
                   "never beyond hardware", "indication after parameters"}),
    ],
)  # fmt: skip
def test_variants_fail_where_their_sources_deviate(variant: str, expected: set[str]) -> None:
    assert failures(variant) == expected


def test_netvsp_and_xennet_deviate_in_validation() -> None:
    netvsp, xennet = failures("netvsp"), failures("xennet")
    # netvsp answers header problems with INVALID_DATA and clamps unsupported requests
    assert {"bad Header.Type", "short parameters buffer", "never beyond hardware"} <= netvsp
    # xennet: a short encapsulation buffer is a SUCCESS no-op; it indicates even on failure
    assert {"short encapsulation buffer", "failed set is atomic", "NO_CHANGE keeps"} <= xennet


def test_a_crashing_miniport_is_reported_not_raised() -> None:
    class Crashes(ReferenceMiniport):
        def set_offload_parameters(self, request: OidRequest) -> OidCompletion:
            raise RuntimeError("boom")

    def factory(profile: AdapterProfile) -> Crashes:
        return Crashes(profile)

    results = {r.name: r for r in run_battery(factory)}
    # the NDIS boundary turns the exception into NDIS_STATUS_FAILURE: those checks fail
    assert not results["NO_CHANGE keeps"].passed
    assert "NDIS_STATUS_FAILURE" in results["NO_CHANGE keeps"].observed
    assert results["bad Header.Type"].passed

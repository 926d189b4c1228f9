"""The conformance battery: every rule named and cited, the reference passes everything,
each real-driver variant fails exactly the checks its documented deviations predict (the
README's variant table), results are plain data with a JSON and a JUnit form."""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest
from variant_table import VARIANT_FAILURES

from ndis_offload.lab.conformance import (
    CHECKS,
    CHECKS_BY_NAME,
    CheckResult,
    Family,
    MiniportReport,
    Status,
    run_battery,
    run_one,
)
from ndis_offload.lab.conformance.junit import to_junit
from ndis_offload.lab.variants import make_miniport
from ndis_offload.stack.miniport import ReferenceMiniport
from ndis_offload.stack.profiles import CHECKSUM_ONLY, AdapterProfile
from ndis_offload.stack.requests import OidCompletion, OidRequest


def rng(name: str) -> random.Random:
    return random.Random(f"0:{name}")


def failures(variant: str) -> set[str]:
    report = run_battery(lambda profile: make_miniport(variant, profile), rng)
    assert not [r for r in report.results if r.status is Status.ERROR]
    return report.failures()


def test_every_check_is_named_cited_and_unique() -> None:
    assert len(CHECKS) >= 53 and len(CHECKS_BY_NAME) == len(CHECKS)
    for check in CHECKS:
        assert check.page.startswith("https://learn.microsoft.com/windows-hardware/drivers/")
        assert check.rule
    assert {c.family for c in CHECKS} == set(Family)
    for family in (4, 6):  # every encapsulation check on both IP versions
        for stem in ("bad-enabled", "supported", "unsupported", "off-deactivates", "on-reactivates",
                     "no-change-keeps", "failed-set-atomic"):  # fmt: skip
            assert f"encapsulation-{stem}-ipv{family}" in CHECKS_BY_NAME


def test_reference_passes_every_check() -> None:
    report = run_battery(ReferenceMiniport, rng)
    assert {r.name: r.seen for r in report.results if r.status is not Status.PASS} == {}


@pytest.mark.parametrize("variant", sorted(VARIANT_FAILURES))
def test_variant_fails_exactly_what_its_deviations_predict(variant: str) -> None:
    predicted = {name for names in VARIANT_FAILURES[variant].values() for name in names}
    assert failures(variant) == predicted


def test_the_variant_table_names_only_real_checks() -> None:
    for table in VARIANT_FAILURES.values():
        for names in table.values():
            assert set(names) <= set(CHECKS_BY_NAME)


def test_checks_of_offloads_a_miniport_does_not_advertise_are_skipped() -> None:
    class ChecksumOnly(ReferenceMiniport):
        def __init__(self, profile: AdapterProfile) -> None:
            super().__init__(replace(profile, hardware=profile.hardware & CHECKSUM_ONLY))

    report = run_battery(ChecksumOnly, rng)
    skipped = {r.name for r in report.results if r.status is Status.SKIP}
    assert not report.failed
    assert {"lso-payload-per-mss", "uso-ip-id-wraps", "rsc-coalesces-ipv4",
            "parameters-field-LsoV2IPv4"} <= skipped  # fmt: skip
    assert all("not advertised" in r.seen for r in report.results if r.name in skipped)
    assert "checksum-tx-pseudo-header-seed-tcp6" not in skipped


def test_a_raising_miniport_fails_the_check_with_its_traceback() -> None:
    class Crashes(ReferenceMiniport):
        def initialize(self, context):  # type: ignore[no-untyped-def]
            raise SystemExit(0)

    result = run_one(CHECKS_BY_NAME["encapsulation-supported-ipv4"], Crashes, rng)
    assert result.status is Status.ERROR and "SystemExit" in result.seen
    assert "initialize" in result.traceback


def test_an_oid_handler_that_raises_becomes_a_failure_status() -> None:
    class Boom(ReferenceMiniport):
        def set_offload_parameters(self, request: OidRequest) -> OidCompletion:
            raise RuntimeError("boom")

    result = run_one(CHECKS_BY_NAME["parameters-field-LsoV2IPv4"], Boom, rng)
    assert result.status is Status.FAIL and "NDIS_STATUS_FAILURE" in result.seen


def test_randomized_checks_are_deterministic_per_seed() -> None:
    check = CHECKS_BY_NAME["lso-flags-first-last"]
    a = run_one(check, ReferenceMiniport, rng)
    b = run_one(check, ReferenceMiniport, rng)
    assert a == b and a.status is Status.PASS


def test_results_round_trip_through_json() -> None:
    def factory(profile: AdapterProfile) -> ReferenceMiniport:
        return make_miniport("xennet", profile)

    report = run_battery(factory, rng, [CHECKS_BY_NAME["encapsulation-short-buffer"]])
    data = json.loads(json.dumps(report.to_dict()))
    back = CheckResult.from_dict(data["results"][0])
    assert back == report.results[0] and back.status is Status.FAIL
    assert set(data["results"][0]) >= {"name", "family", "page", "status", "sent", "expected",
                                       "seen", "traceback", "duration"}  # fmt: skip


def test_junit_is_well_formed_and_counts_failures() -> None:
    report = run_battery(lambda p: make_miniport("netkvm", p), rng, target="netkvm")
    root = ET.fromstring(to_junit([report, MiniportReport("empty", ())]))
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name") == "netkvm"
    assert int(suite.get("failures", "0")) == len(report.failures())
    assert len(suite.findall("testcase/failure")) == len(report.failures())

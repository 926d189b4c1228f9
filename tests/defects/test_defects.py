"""Proof that the battery bites: every single-defect miniport fails the named check that
targets its defect (each check cites its NDIS page), and the reference passes every check."""

from __future__ import annotations

import random

import pytest

from defects.control import CONTROL, Defect
from defects.datapath import DATAPATH
from defects.statistics import STATISTICS, StatsDefect
from ndis_offload.lab.conformance import CHECKS, CHECKS_BY_NAME, Status, run_battery, run_one
from ndis_offload.stack.miniport import ReferenceMiniport

DEFECTS = CONTROL + DATAPATH + STATISTICS


def rng(name: str) -> random.Random:
    return random.Random(f"0:{name}")


def test_there_are_at_least_thirty_defects_each_with_a_known_check() -> None:
    assert len(DEFECTS) >= 30
    for defect in DEFECTS:
        assert defect.caught_by in CHECKS_BY_NAME, defect.__name__


def test_reference_passes_every_check() -> None:
    report = run_battery(ReferenceMiniport, rng)
    bad = {r.name: r.seen for r in report.results if r.status is not Status.PASS}
    assert bad == {}
    assert len(report.results) == len(CHECKS) >= 53


@pytest.mark.parametrize("defect", DEFECTS, ids=[d.__name__ for d in DEFECTS])
def test_defect_is_caught_by_its_check(defect: type[Defect]) -> None:
    check = CHECKS_BY_NAME[defect.caught_by]
    result = run_one(check, defect, rng)
    assert result.status is Status.FAIL, (result.status, result.seen, result.traceback)
    assert result.sent and result.expected and result.seen
    # the same check passes on the reference: the defect, not the check, is what fails
    assert run_one(check, ReferenceMiniport, rng).status is Status.PASS


@pytest.mark.parametrize("defect", STATISTICS, ids=[d.__name__ for d in STATISTICS])
def test_defect_fails_only_the_checks_it_should(defect: type[StatsDefect]) -> None:
    """The whole battery against the defect: it fails exactly ``defect.fails`` (its
    ``caught_by`` among them), so a check that sees what is not its business is caught too."""
    assert defect.caught_by in defect.fails
    report = run_battery(defect, rng)
    failed = {r.name for r in report.results if r.status.failed}
    assert failed == defect.fails, {
        r.name: r.seen for r in report.results if r.name in failed ^ defect.fails
    }

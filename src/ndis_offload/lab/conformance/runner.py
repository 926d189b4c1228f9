"""Running the battery in process, sans-IO: no clock, no time limit, no randomness of its
own (``rng_for(check_name)`` supplies it). ``ndis_offload.io.conformance`` runs the same
checks with time limits in a child process."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ndis_offload.lab.conformance.check import Check, Context, run_check
from ndis_offload.lab.conformance.frames import Rng
from ndis_offload.lab.conformance.registry import CHECKS
from ndis_offload.lab.conformance.result import CheckResult, MiniportReport
from ndis_offload.lab.conformance.rig import MiniportFactory

RngFor = Callable[[str], Rng]


def run_one(check: Check, factory: MiniportFactory, rng_for: RngFor) -> CheckResult:
    return run_check(check, Context(factory, rng_for(check.name)))


def run_battery(
    factory: MiniportFactory,
    rng_for: RngFor,
    checks: Sequence[Check] = CHECKS,
    *,
    target: str = "miniport",
) -> MiniportReport:
    """Every check against fresh miniports from ``factory``; never raises."""
    return MiniportReport(target, tuple(run_one(c, factory, rng_for) for c in checks))

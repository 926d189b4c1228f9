"""A check: one documented rule, its page, and the function that tests a miniport for it.

Check functions are sans-IO: they get a :class:`Context` (the miniport factory and the
randomness the executor seeded) and return a :class:`~.result.Verdict`.
:func:`run_check` turns any exception the miniport raises (``BaseException`` included:
``SystemExit``, ``KeyboardInterrupt``) into an ``error`` result carrying the traceback.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ndis_offload.lab.conformance.frames import Rng
from ndis_offload.lab.conformance.result import CheckResult, Family, Status, Verdict
from ndis_offload.lab.conformance.rig import MiniportFactory, Rig, make_rig
from ndis_offload.stack.profiles import AdapterProfile

NETWORK = "https://learn.microsoft.com/windows-hardware/drivers/network/"
DDI = "https://learn.microsoft.com/windows-hardware/drivers/ddi/"


def page(slug: str) -> str:
    """A page of the NDIS network docs (``windows-hardware/drivers/network/<slug>``)."""
    return NETWORK + slug


def ddi(slug: str) -> str:
    """A page of the DDI reference (``windows-hardware/drivers/ddi/<header>/<page>``)."""
    return DDI + slug


@dataclass(frozen=True)
class Context:
    """What a check function gets."""

    factory: MiniportFactory
    rng: Rng

    def rig(
        self,
        profile: str | AdapterProfile = "full",
        *,
        protocols: int = 1,
        observe: bool = True,
        keywords: dict[str, int] | None = None,
    ) -> Rig:
        return make_rig(
            self.factory, profile, protocols=protocols, observe=observe, keywords=keywords
        )


CheckFn = Callable[[Context], Verdict]


@dataclass(frozen=True)
class Check:
    """One named rule of the battery."""

    name: str
    family: Family
    page: str
    rule: str
    run: CheckFn
    reading: str = ""
    """Where the page is ambiguous or silent: the reading this check takes."""
    needs: frozenset[str] = frozenset()
    """Features the miniport must advertise (hardware capabilities on the ``full`` profile)
    for the rule to apply; otherwise the check is skipped, saying which are missing."""


def verdict(ok: bool, sent: str, expected: str, seen: str) -> Verdict:
    return Verdict(ok, sent, expected, seen)


def with_traffic(rig: Rig, base: Verdict) -> Verdict:
    """Fold the rig's traffic observations into ``base``: any mismatch fails the check."""
    if not rig.mismatches:
        return base
    seen = (
        base.seen
        + "; traffic disagrees with the indicated configuration: "
        + "; ".join(rig.mismatches[:6])
    )
    return Verdict(False, base.sent, base.expected, seen)


def skipped(why: str) -> Verdict:
    return Verdict(True, "", "", why, skipped=True)


def run_check(check: Check, context: Context) -> CheckResult:
    """Run one check; never raises (the miniport's exceptions become ``error``)."""
    try:
        missing = sorted(check.needs - context.rig(observe=False).hardware()) if check.needs else []
        v = skipped(f"not advertised: {', '.join(missing)}") if missing else check.run(context)
    except BaseException as err:  # noqa: BLE001 -- user code: SystemExit, KeyboardInterrupt too
        return CheckResult(
            check.name, check.family, check.page, check.rule, Status.ERROR,
            expected="no exception", seen=f"{type(err).__name__}: {err}",
            traceback=traceback.format_exc(), reading=check.reading,
        )  # fmt: skip
    status = Status.SKIP if v.skipped else Status.PASS if v.passed else Status.FAIL
    return CheckResult(
        check.name, check.family, check.page, check.rule, status,
        sent=v.sent, expected=v.expected, seen=v.seen, reading=check.reading,
    )  # fmt: skip


def select(checks: Iterable[Check], names: Iterable[str] = ()) -> list[Check]:
    """The checks whose name starts with one of ``names`` (all when empty)."""
    wanted = tuple(names)
    return [c for c in checks if not wanted or c.name.startswith(wanted)]

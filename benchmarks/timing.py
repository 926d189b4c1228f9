"""Timing for the benchmarks on shared machines: medians of interleaved rounds, with spread.

Each comparison runs ``rounds`` rounds; in every round both sides are timed back to back
(the order alternates from round to round, so a burst of load from a neighbour hits both),
and the round's ratio ``theirs / ours`` is kept. The figure is the median of those ratios,
printed with the lowest and highest round; a target is met when the median meets it.
Times are CPU time of this process (``time.process_time``): waiting for a core while other
jobs run does not count, which is most of the noise on a shared machine; cache and
hyperthread contention still do, hence the rounds.
``--check`` makes a script exit 1 when any row misses its target.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

ROUNDS = 21
ROUND_SECONDS = 0.004
"""Each side of a round runs its function for about this long (calibrated once)."""


def calibrate(func: Callable[[], object], seconds: float = ROUND_SECONDS) -> int:
    """How many calls of ``func`` take about ``seconds`` (at least 1)."""
    number = 1
    while True:
        start = time.process_time()
        for _ in range(number):
            func()
        elapsed = time.process_time() - start
        if elapsed >= seconds / 4 or number >= 1 << 20:
            return max(1, round(number * seconds / max(elapsed, 1e-9)))
        number *= 4


def per_call(func: Callable[[], object], number: int) -> float:
    """Seconds per call over ``number`` back-to-back calls."""
    start = time.process_time()
    for _ in range(number):
        func()
    return (time.process_time() - start) / number


@dataclass(frozen=True, slots=True)
class Comparison:
    """One benchmark row: per-round times of both sides and their ratios."""

    label: str
    ours: list[float]
    theirs: list[float]
    target: float
    """The median ``theirs / ours`` must be at least this."""
    ratios: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def met(self) -> bool:
        return self.ratio >= self.target

    def line(self) -> str:
        ours = statistics.median(self.ours) * 1e6
        best = min(self.ours) * 1e6
        theirs = statistics.median(self.theirs) * 1e6
        spread = f"[{min(self.ratios):.3g}-{max(self.ratios):.3g}]"
        verdict = "ok" if self.met else "BELOW TARGET"
        return (
            f"{self.label:<50} {_us(ours):>10} {_us(best):>9} {_us(theirs):>11} "
            f"{self.ratio:>8.3g}x {spread:>15}  >= {self.target:g}x {verdict}"
        )


def _us(value: float) -> str:
    return f"{value:.1f}" if value < 1e4 else f"{value:,.0f}"


HEADER = (
    f"{'benchmark (median of interleaved rounds)':<50} {'ours (us)':>10} {'best (us)':>9} "
    f"{'theirs (us)':>11} {'ratio':>9} {'[min-max]':>15}  target"
)
"""Columns: median CPU time per call of ours, our best round, median of theirs, the median
round ratio theirs / ours with the lowest and highest round, the target."""


def compare(
    label: str,
    ours: Callable[[], object],
    theirs: Callable[[], object],
    target: float,
    *,
    rounds: int = ROUNDS,
    seconds: float = ROUND_SECONDS,
) -> Comparison:
    """Time ``ours`` against ``theirs`` in ``rounds`` interleaved rounds."""
    n_ours = calibrate(ours, seconds)
    n_theirs = calibrate(theirs, seconds)
    row = Comparison(label, [], [], target)
    for index in range(rounds):
        if index % 2:
            b = per_call(theirs, n_theirs)
            a = per_call(ours, n_ours)
        else:
            a = per_call(ours, n_ours)
            b = per_call(theirs, n_theirs)
        row.ours.append(a)
        row.theirs.append(b)
        row.ratios.append(b / a)
    return row


@dataclass
class Report:
    """The rows of one script; :meth:`finish` prints the verdict and gives the exit code."""

    rows: list[Comparison] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def add(self, row: Comparison) -> Comparison:
        print(row.line(), flush=True)
        self.rows.append(row)
        return row

    def skip(self, label: str, reason: str) -> None:
        print(f"{label:<50} skipped: {reason}", flush=True)
        self.skipped.append(label)

    def finish(self, argv: list[str] | None = None) -> int:
        """Exit code: 1 with ``--check`` in ``argv`` when a row missed its target."""
        missed = [row.label for row in self.rows if not row.met]
        if missed:
            print(f"{len(missed)} of {len(self.rows)} rows below target: {', '.join(missed)}")
        check = "--check" in (sys.argv[1:] if argv is None else argv)
        return 1 if check and missed else 0

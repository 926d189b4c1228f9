"""The battery: every check, in family order (an explicit registry, built once)."""

from __future__ import annotations

from ndis_offload.lab.conformance import (
    control_config,
    control_encapsulation,
    control_parameters,
    data_checksum,
    data_lso,
    data_rsc,
    data_rsc_stats,
    data_rss,
    data_uso,
)
from ndis_offload.lab.conformance.check import Check


def _build() -> tuple[Check, ...]:
    checks = [
        *control_encapsulation.checks(),
        *control_parameters.checks(),
        *control_config.checks(),
        *data_checksum.checks(),
        *data_lso.checks(),
        *data_uso.checks(),
        *data_rsc.checks(),
        *data_rsc_stats.checks(),
        *data_rss.checks(),
    ]
    names = [c.name for c in checks]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"duplicate check names: {sorted(duplicates)}")
    return tuple(checks)


CHECKS: tuple[Check, ...] = _build()
CHECKS_BY_NAME: dict[str, Check] = {c.name: c for c in CHECKS}

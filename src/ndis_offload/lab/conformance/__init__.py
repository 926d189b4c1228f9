"""The conformance battery: the documented NDIS task offload rules as named checks, each
citing its page, run against any miniport from outside -- OID completions, status
indications and the frames it sends and indicates -- as NDISTest does.

``CHECKS`` is the registry; :func:`run_battery` runs it in process (sans-IO);
``ndis_offload.io.conformance`` runs it with per-check time limits in a child process.
"""

from ndis_offload.lab.conformance.check import Check, Context, run_check
from ndis_offload.lab.conformance.registry import CHECKS, CHECKS_BY_NAME
from ndis_offload.lab.conformance.result import (
    CheckResult,
    Family,
    MiniportReport,
    Status,
    Verdict,
)
from ndis_offload.lab.conformance.rig import MiniportFactory
from ndis_offload.lab.conformance.runner import run_battery, run_one

__all__ = [
    "CHECKS",
    "CHECKS_BY_NAME",
    "Check",
    "CheckResult",
    "Context",
    "Family",
    "MiniportFactory",
    "MiniportReport",
    "Status",
    "Verdict",
    "run_battery",
    "run_check",
    "run_one",
]

"""What one check reports: plain typed dataclasses with a JSON form (the CLI, ``--junit``
and the HTML pictures all render these)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Family(StrEnum):
    """The check families, in battery order."""

    CONTROL = "control path"
    CHECKSUM = "checksum data path"
    LSO = "LSO"
    USO = "USO"
    RSC = "RSC"
    RSS = "RSS"


class Status(StrEnum):
    """How a check ended. Only ``PASS`` and ``SKIP`` are not failures."""

    PASS = "pass"
    FAIL = "fail"
    """The miniport did something the documentation does not allow."""
    ERROR = "error"
    """The miniport (or its module) raised; the traceback is in the result."""
    TIMEOUT = "timeout"
    """The check did not finish within its time limit (the miniport loops or blocks)."""
    SKIP = "skip"
    """Not applicable (e.g. the miniport has no data path); says why in ``seen``."""

    @property
    def failed(self) -> bool:
        return self in (Status.FAIL, Status.ERROR, Status.TIMEOUT)


@dataclass(frozen=True)
class Verdict:
    """What a check function returns: what it sent, what the page expects, what it saw."""

    passed: bool
    sent: str
    expected: str
    seen: str
    skipped: bool = False


@dataclass(frozen=True)
class CheckResult:
    """One check against one miniport."""

    name: str
    family: Family
    page: str
    """The NDIS documentation page the rule comes from (a learn.microsoft.com URL)."""
    rule: str
    status: Status
    sent: str = ""
    expected: str = ""
    seen: str = ""
    traceback: str = ""
    duration: float = 0.0
    """Seconds; measured by the executor (0 when run without a clock)."""
    reading: str = ""
    """Which reading of an ambiguous page the check takes (empty when the page is clear)."""
    details: tuple[str, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return not self.status.failed

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["family"] = self.family.value
        out["status"] = self.status.value
        out["details"] = list(self.details)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        return cls(
            **{
                **data,
                "family": Family(data["family"]),
                "status": Status(data["status"]),
                "details": tuple(data.get("details", ())),
            }
        )


@dataclass(frozen=True)
class MiniportReport:
    """Every result of one miniport, and why it could not be loaded if it could not."""

    target: str
    results: tuple[CheckResult, ...]

    @property
    def failed(self) -> bool:
        return any(r.status.failed for r in self.results)

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for r in self.results:
            out[r.status.value] += 1
        return out

    def failures(self) -> set[str]:
        return {r.name for r in self.results if r.status.failed}

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "counts": self.counts(),
            "results": [r.to_dict() for r in self.results],
        }

"""Running a loaded :class:`~ndis_offload.lab.scenario.Scenario` against an in-memory
:class:`NdisStack`, one step at a time, and checking each step's ``expect``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ndis_offload.constants.oid import Oid
from ndis_offload.constants.status import NdisStatus
from ndis_offload.lab.scenario import Scenario, ScenarioError, Step, make_miniport, resolve_int
from ndis_offload.stack.core import NdisStack, RequestHandle, decode_payload
from ndis_offload.stack.features import features_of
from ndis_offload.stack.protocol import ProtocolDriver
from ndis_offload.stack.requests import RequestType, TraceEvent


@dataclass
class StepResult:
    """What one step did: its status, decoded value, the indications it caused."""

    index: int
    action: str
    by: str
    status: str
    value: Any = None
    indications: list[dict[str, Any]] = field(default_factory=list)
    detail: str = ""
    oid: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    events: list[TraceEvent] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    """Unmet ``expect`` entries."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "step": self.index,
            "action": self.action,
            "by": self.by,
            "status": self.status,
            "value": self.value,
            "indications": self.indications,
        }
        if self.oid:
            out["oid"] = self.oid
        if self.detail:
            out["detail"] = self.detail
        out.update(self.counts)
        if self.failures:
            out["expect_failed"] = self.failures
        return out


@dataclass
class ScenarioRun:
    """A running scenario: the stack, its protocols, and the results so far."""

    scenario: Scenario
    stack: NdisStack
    protocols: dict[str, ProtocolDriver] = field(default_factory=dict)
    results: list[StepResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(r.failures for r in self.results)


def start(scenario: Scenario) -> ScenarioRun:
    """Build the adapter stack a scenario describes (no step run yet)."""
    miniport = make_miniport(scenario.adapter)
    filters = [f.build() for f in scenario.filters]
    return ScenarioRun(scenario, NdisStack(miniport, filters))


def _handle_result(step: Step, handle: RequestHandle) -> tuple[str, Any, str, dict[str, int]]:
    completion = handle.completion
    if completion is None:
        return NdisStatus.PENDING.c_name, None, "", {}
    value = None
    if step.action == "query" and completion.ok:
        value = decode_payload(completion.request.Oid, completion.InformationBuffer)
        if value is None and completion.InformationBuffer:
            value = {"hex": completion.InformationBuffer.hex()}
    counts = {
        k: v
        for k, v in (
            ("BytesRead", completion.BytesRead),
            ("BytesWritten", completion.BytesWritten),
            ("BytesNeeded", completion.BytesNeeded),
        )
        if v
    }
    return completion.status.c_name, value, completion.detail, counts


def run_step(run: ScenarioRun, step: Step) -> StepResult:
    """Run one step and record its result."""
    stack = run.stack
    first = len(stack.trace)
    status, detail = NdisStatus.SUCCESS.c_name, ""
    value: Any = None
    counts: dict[str, int] = {}
    oid = ""
    if step.action == "bind":
        protocol = ProtocolDriver(step.by, step.encapsulation, step.header_size)
        run.protocols[step.by] = protocol
        stack.bind(protocol)
        config = stack.config
        value = {"DefaultOffloadConfiguration": None if config is None else config.to_dict()}
    elif step.action == "unbind":
        stack.unbind(step.by)
    elif step.action in ("query", "set"):
        oid = Oid.name_of(step.oid)
        binding = stack.bindings[step.by]
        kind = RequestType.QUERY if step.action == "query" else RequestType.SET
        handle = binding.request(step.oid, kind, step.buffer, length=step.length)
        status, value, detail, counts = _handle_result(step, handle)
    elif step.action in ("enable", "disable"):
        oid = Oid.OFFLOAD_ENCAPSULATION.c_name
        protocol = run.protocols[step.by]
        method = protocol.enable if step.action == "enable" else protocol.disable
        handle = method(step.ipv4, step.ipv6)
        status, value, detail, counts = _handle_result(step, handle)
    elif step.action == "complete_pending":
        complete_pending = getattr(stack.miniport, "complete_pending", None)
        done = 0
        # Completing one request lets NDIS send the next queued one, which may pend too:
        # keep going until the miniport holds nothing (bounded by the requests submitted).
        for _ in range(len(stack.trace) + 1):
            count = complete_pending() if callable(complete_pending) else 0
            if not count:
                break
            done += count
        value = {
            "completed": [
                {
                    "request_id": e.extra.get("request_id"),
                    "oid": e.extra.get("oid", e.what),
                    "by": e.target,
                    "status": e.status,
                }
                for e in stack.trace[first:]
                if e.kind == "completion"
            ],
            "count": done,
        }
    events = stack.trace[first:]
    indications = [
        {"status": e.what, "to": list(e.to), "value": e.payload}
        for e in events
        if e.kind == "indication"
    ]
    result = StepResult(
        step.index, step.action, step.by, status, value, indications, detail, oid, counts, events
    )
    result.failures = check_expect(run, step.expect, result)
    run.results.append(result)
    return result


def _subset(expected: Any, actual: Any, path: str, out: list[str]) -> None:
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            out.append(f"{path}: expected an object, got {actual!r}")
            return
        for key, value in expected.items():
            if key not in actual:
                out.append(f"{path}.{key}: missing")
            else:
                _subset(value, actual[key], f"{path}.{key}", out)
        return
    want = expected
    if isinstance(expected, str) and not isinstance(actual, str):
        try:
            want = resolve_int(expected, path)
        except ScenarioError as err:
            out.append(err.detail)
            return
    if want != actual:
        out.append(f"{path}: expected {expected!r}, got {actual!r}")


def check_expect(run: ScenarioRun, expect: dict[str, Any], result: StepResult) -> list[str]:
    """The unmet entries of ``expect`` after ``result``."""
    out: list[str] = []
    if "status" in expect and expect["status"] != result.status:
        out.append(f"status: expected {expect['status']}, got {result.status}")
    if "indications" in expect:
        got = [i["status"] for i in result.indications]
        want = expect["indications"]
        if (isinstance(want, int) and len(got) != want) or (isinstance(want, list) and got != want):
            out.append(f"indications: expected {want}, got {got}")
    if "value" in expect:
        _subset(expect["value"], result.value, "value", out)
    for name, feats in expect.get("usable", {}).items():
        protocol = run.protocols.get(name)
        got_usable = sorted(protocol.usable) if protocol is not None else []
        if sorted(feats) != got_usable:
            out.append(f"usable.{name}: expected {sorted(feats)}, got {got_usable}")
    if "current" in expect:
        config = run.stack.config
        got_current = sorted(features_of(config)) if config is not None else []
        if sorted(expect["current"]) != got_current:
            out.append(f"current: expected {sorted(expect['current'])}, got {got_current}")
    for name, flag in expect.get("failed", {}).items():
        protocol = run.protocols.get(name)
        got_failed = protocol.failed if protocol is not None else False
        if got_failed != flag:
            out.append(f"failed.{name}: expected {flag}, got {got_failed}")
    return out


def run_scenario(scenario: Scenario) -> ScenarioRun:
    """Run every step; the results are in ``run.results``."""
    run = start(scenario)
    for step in scenario.steps:
        run_step(run, step)
    return run

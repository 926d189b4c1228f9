"""JUnit XML for CI systems: one ``testsuite`` per miniport, one ``testcase`` per check
(``failure`` for a violated rule or a timeout, ``error`` when the miniport raised,
``skipped`` when not applicable)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable

from ndis_offload.lab.conformance.result import CheckResult, MiniportReport, Status


def _body(r: CheckResult) -> str:
    lines = [f"rule: {r.rule}", f"page: {r.page}", f"sent: {r.sent}", f"expected: {r.expected}",
             f"seen: {r.seen}"]  # fmt: skip
    if r.reading:
        lines.append(f"reading: {r.reading}")
    lines += list(r.details)
    if r.traceback:
        lines += ["", r.traceback]
    return "\n".join(lines)


def to_junit(reports: Iterable[MiniportReport]) -> str:
    suites = ET.Element("testsuites", name="ndis-offload conformance")
    for report in reports:
        counts = report.counts()
        suite = ET.SubElement(
            suites, "testsuite", name=report.target, tests=str(len(report.results)),
            failures=str(counts["fail"] + counts["timeout"]), errors=str(counts["error"]),
            skipped=str(counts["skip"]),
            time=f"{sum(r.duration for r in report.results):.3f}",
        )  # fmt: skip
        for r in report.results:
            case = ET.SubElement(
                suite, "testcase", name=r.name, time=f"{r.duration:.3f}",
                classname=f"{report.target}.{r.family.name.lower()}",
            )  # fmt: skip
            if r.status in (Status.FAIL, Status.TIMEOUT):
                element = ET.SubElement(case, "failure", message=r.seen[:500], type=r.status.value)
                element.text = _body(r)
            elif r.status is Status.ERROR:
                element = ET.SubElement(case, "error", message=r.seen[:500], type="error")
                element.text = _body(r)
            elif r.status is Status.SKIP:
                ET.SubElement(case, "skipped", message=r.seen[:500])
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"

"""The conformance pictures read typed battery results (status enums, family, documentation
page, sent / expected / seen, traceback) as well as the first battery's (passed, observed):
the matrix colours every status, and every failure opens to what was sent, expected and seen
with a link to its page."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from enum import Enum
from html.parser import HTMLParser

from ndis_offload.viz.report_conformance import (
    conformance_html,
    conformance_mermaid,
    matrix_of,
    matrix_svg,
)

PAGE = "https://learn.microsoft.com/windows-hardware/drivers/network/oid-offload-encapsulation"


class Status(Enum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    TIMEOUT = "timeout"
    SKIP = "skip"


class Family(Enum):
    CONTROL = "control path"


@dataclass(frozen=True)
class Typed:
    name: str
    status: Status
    family: Family = Family.CONTROL
    page: str = PAGE
    rule: str = "a rule"
    sent: str = ""
    expected: str = ""
    seen: str = ""
    traceback: str = ""
    duration: float = 0.0
    reading: str = ""
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class Report:
    target: str
    results: tuple[Typed, ...]


@dataclass(frozen=True)
class Old:
    name: str
    rule: str
    expected: str
    observed: str
    passed: bool


def run() -> list[Report]:
    checks = ("short buffer", "bad <Header> & type", "hangs", "no datapath")
    good = Report("reference", tuple(Typed(n, Status.PASS) for n in checks))
    bad = Report("mine", (
        Typed(checks[0], Status.FAIL, sent="20 bytes", expected="NDIS_STATUS_INVALID_LENGTH",
              seen="NDIS_STATUS_SUCCESS", reading="minimum size", details=("BytesNeeded 0",)),
        Typed(checks[1], Status.ERROR, sent="Type 0xA7", expected="INVALID_PARAMETER",
              seen="ValueError: boom", traceback="Traceback ...\nValueError: boom"),
        Typed(checks[2], Status.TIMEOUT, expected="an answer", seen="no answer in 5 s"),
        Typed(checks[3], Status.SKIP, seen="control path only"),
    ))  # fmt: skip
    return [good, bad]


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[str, str]] = []
        self.links: list[str] = []
        self.text: list[str] = []
        self._css: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "td":
            self._css = a.get("class") or ""
        if tag == "a":
            self.links.append(a.get("href") or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._css is not None:
            self.cells.append((data, self._css))
            self._css = None


def test_typed_reports_read_into_the_matrix() -> None:
    matrix = matrix_of(run())
    assert list(matrix) == ["reference", "mine"]
    statuses = [v.status for v in matrix["mine"]]
    assert statuses == ["fail", "error", "timeout", "skip"]
    assert [v.failed for v in matrix["mine"]] == [True, True, True, False]
    first = matrix["mine"][0]
    assert (first.family, first.page, first.reading, first.details) == (
        "control path", PAGE, "minimum size", ("BytesNeeded 0",))  # fmt: skip


def test_first_battery_results_read_too() -> None:
    old = [Old("a", "r", "SUCCESS", "FAILURE", False), Old("b", "r", "", "", True)]
    matrix = matrix_of({"x": old})
    assert [(v.name, v.status, v.seen) for v in matrix["x"]] == [("a", "fail", "FAILURE"),
                                                                 ("b", "pass", "")]  # fmt: skip


def test_html_colours_every_status_and_opens_every_failure() -> None:
    page = Page()
    text = conformance_html(matrix_of(run()))
    page.feed(text)
    cells = dict(((t, c) for t, c in page.cells if t in ("FAIL", "ERROR", "TIMEOUT", "skip")))
    assert cells == {"FAIL": "fail", "ERROR": "fail", "TIMEOUT": "fail", "skip": "none"}
    assert text.count('<details class="failure">') == 3  # a skip is no failure
    words = " ".join(page.text)
    for needle in ("20 bytes", "NDIS_STATUS_INVALID_LENGTH", "NDIS_STATUS_SUCCESS", "minimum size",
                   "BytesNeeded 0", "ValueError: boom", "no answer in 5 s",
                   "mine · bad <Header> & type: ERROR"):  # fmt: skip
        assert needle in words, needle
    assert "&lt;Header&gt; &amp; type" in text  # escaped in the markup
    assert "<caption>control path (4)</caption>" in text
    assert PAGE in page.links


def test_svg_and_mermaid_of_typed_reports() -> None:
    root = ET.fromstring(matrix_svg(matrix_of(run())).split("?>", 1)[1])
    classes = [g.get("class") for g in root.iter("{http://www.w3.org/2000/svg}g")
               if (g.get("class") or "").startswith("cell")]  # fmt: skip
    assert classes.count("cell pass") == 4
    assert {"cell fail", "cell error", "cell timeout", "cell skip"} <= set(classes)
    families = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")
                if t.get("class") == "family"]  # fmt: skip
    assert families == ["control path"]
    mermaid = conformance_mermaid(matrix_of(run()))
    assert mermaid.count("--x battery") == 3
    assert "#lt;Header#gt;" in mermaid


def test_mermaid_stays_under_mermaids_size_limit_and_counts_what_it_leaves_out() -> None:
    many = [Report("big", tuple(Typed(f"check {i}", Status.FAIL, sent="x" * 300, expected="y",
                                     seen="z") for i in range(400)))]  # fmt: skip
    text = conformance_mermaid(matrix_of(many), limit=20_000)
    assert len(text) <= 20_000
    drawn = text.count("--x battery")
    assert 0 < drawn < 400
    assert f"{400 - drawn} more failure(s) not drawn" in text
    assert "more failure" not in conformance_mermaid(matrix_of(run()))

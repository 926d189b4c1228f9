"""``--svg`` / ``--mermaid`` / ``--html`` on demo, run, conformance and pcap stats: the files
are written (atomically), say what the command found, stand alone (no script, no fetch), and
a file that cannot be written is a clear error with no debris left behind."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conformance_json import rows
from rich.console import Console

from ndis_offload.cli.main import main
from ndis_offload.io.atomic import atomic_output

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "tests" / "scenarios" / "enable.json"


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), console=Console(file=out, width=120))
    return code, out.getvalue()


class Page(HTMLParser):
    """Collects what a page would load, its elements, and its visible text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def count(self, tag: str, css: str | None = None) -> int:
        return sum(t == tag and (css is None or css in (a.get("class") or "").split())
                   for t, a in self.tags)  # fmt: skip


def read_page(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def assert_self_contained(page: Page) -> None:
    """Nothing fetched: no script, stylesheet link, frame or remote src; a CSP forbids it."""
    for tag, attrs in page.tags:
        assert tag not in ("script", "link", "iframe", "object", "embed", "img"), tag
        src = attrs.get("src") or attrs.get("xlink:href") or ""
        assert not src or src.startswith("data:"), (tag, src)
        if tag == "a":
            assert (attrs.get("href") or "").startswith(("https://", "#"))
    csp = [a for t, a in page.tags if t == "meta" and a.get("http-equiv") ==
           "Content-Security-Policy"]  # fmt: skip
    assert csp and "default-src 'none'" in (csp[0].get("content") or "")


def test_demo_writes_svg_mermaid_and_html(tmp_path: Path) -> None:
    svg, mmd, page = tmp_path / "d.svg", tmp_path / "d.mmd", tmp_path / "d.html"
    code, out = cli("demo", "--svg", str(svg), "--mermaid", str(mmd), "--html", str(page))
    assert code == 0
    assert "ProtocolBindAdapterEx" in out  # the terminal output is still there
    ET.parse(svg)
    assert mmd.read_text().count("    participant ") == 6
    parsed = read_page(page)
    assert_self_contained(parsed)
    text = " ".join(parsed.text)
    for needle in ("Current config before", "After enable (NDIS_STATUS_SUCCESS)",
                   "After disable (NDIS_STATUS_SUCCESS)", "NDIS_STATUS_INVALID_PARAMETER",
                   "tcpip6", "llcsnap", "recorder"):  # fmt: skip
        assert needle in text, needle
    # the whole trace, one collapsible JSON block per event
    trace = json.loads(cli("demo", "--json")[1])["trace"]
    assert parsed.count("details") == len(trace) + 2  # + all events, + the summary
    assert parsed.count("svg") == 1
    # every arrow links to its event's decoded JSON
    targets = {a.get("id") for _, a in parsed.tags if a.get("id")}
    links = [a.get("href") or "" for t, a in parsed.tags if t == "a"]
    events = {f"#event-{e['seq']}" for e in trace}
    assert set(links) >= events and all(link[1:] in targets for link in links)


def test_json_stdout_stays_pure_when_pictures_are_written(tmp_path: Path) -> None:
    entry = "from ndis_offload.cli.main import entry; entry()"
    target = tmp_path / "x.svg"
    done = subprocess.run([sys.executable, "-c", entry, "demo", "--json", "--svg", str(target)],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0
    assert "trace" in json.loads(done.stdout)
    assert done.stderr.strip() == f"wrote {target}"
    ET.parse(target)


def test_run_writes_pictures_even_when_an_expect_fails(tmp_path: Path) -> None:
    doc = json.loads(SCENARIO.read_text())
    doc["steps"][2]["expect"] = {"status": "NDIS_STATUS_SUCCESS"}  # it is FAILURE
    scenario = tmp_path / "s.json"
    scenario.write_text(json.dumps(doc))
    page = tmp_path / "r.html"
    code, _ = cli("run", str(scenario), "--html", str(page), "--svg", str(tmp_path / "r.svg"))
    assert code == 1
    parsed = read_page(page)
    assert_self_contained(parsed)
    text = " ".join(parsed.text)
    assert "Configuration at initialization" in text
    assert "Configuration after the last step" in text
    assert parsed.count("td", "fail") >= 1  # the unmet expect is shown
    ET.parse(tmp_path / "r.svg")


def test_conformance_html_opens_every_failure(tmp_path: Path) -> None:
    page = tmp_path / "c.html"
    svg, mmd = str(tmp_path / "c.svg"), str(tmp_path / "c.mmd")
    code, out = cli("conformance", "--all", "--json", "--html", str(page), "--svg", svg,
                    "--mermaid", mmd)  # fmt: skip
    assert code == 1
    failures = [r for r in rows(json.loads(out[out.index("{") :])) if r.failed]  # after "wrote"s
    parsed = read_page(page)
    assert_self_contained(parsed)
    assert parsed.count("details", "failure") == len(failures)
    assert parsed.count("td", "fail") >= len(failures)  # matrix cells (+ totals)
    text = " ".join(parsed.text)
    for r in failures:
        assert f"{r.miniport} · {r.name}: FAIL" in text
        assert r.expected in text and r.seen in text
    mermaid = (tmp_path / "c.mmd").read_text()
    left = re.search(r"(\d+) more failure\(s\) not drawn", mermaid)
    assert len(mermaid) <= 50_000  # Mermaid's maxTextSize
    assert mermaid.count("--x battery") + (int(left.group(1)) if left else 0) == len(failures)


def test_reference_only_conformance_page_says_everything_passes(tmp_path: Path) -> None:
    page = tmp_path / "c.html"
    assert cli("conformance", "--html", str(page))[0] == 0
    parsed = read_page(page)
    assert parsed.count("details", "failure") == 0
    assert "Every miniport passes every check." in " ".join(parsed.text)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_unwritable_target_is_an_error_naming_the_file(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, out = cli("demo", "--svg", str(locked / "d.svg"))
    finally:
        locked.chmod(0o700)
    assert code == 2
    assert str(locked / "d.svg") in out
    assert list(locked.iterdir()) == []


def test_missing_directory_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "d.html"
    code, out = cli("demo", "--html", str(target))
    assert code == 2
    assert "cannot write" in out and str(target) in out
    assert not (tmp_path / "no").exists()


def test_a_failing_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ndis_offload.viz.outputs as outputs

    target = tmp_path / "d.svg"
    target.write_text("old")

    def broken(path: str | Path, text: str) -> None:
        with atomic_output(path) as out:
            out.write(text[:100].encode())
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs, "write_text", broken)
    code, out = cli("demo", "--svg", str(target))
    assert code == 2 and "No space left on device" in out
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["d.svg"]

"""``ndis-offload conformance``: matrix, JSON, JUnit, exit codes, a user's own miniport."""

from __future__ import annotations

import io
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.console import Console

from ndis_offload.cli.main import main
from ndis_offload.lab.conformance import CHECKS

TOTAL = len(CHECKS) + 1  # every check, plus loading the miniport


def run(argv: list[str]) -> tuple[int, str]:
    buffer = io.StringIO()
    code = main(argv, console=Console(file=buffer, width=160))
    return code, buffer.getvalue()


def test_reference_passes_and_exits_zero() -> None:
    code, out = run(["conformance"])
    assert code == 0
    assert f"reference: {TOTAL}/{TOTAL} checks pass" in out


def test_variants_fail_with_what_was_sent_expected_and_seen() -> None:
    code, out = run(["conformance", "--variant", "xennet", "--check", "encapsulation-short"])
    assert code == 1
    assert "xennet encapsulation-short-buffer" in out
    for label in ("sent:", "expected:", "seen:", "page: https://learn.microsoft.com/"):
        assert label in out


def test_json_lists_every_check_per_miniport() -> None:
    code, out = run(["conformance", "--variant", "netkvm", "--variant", "reference", "--json"])
    data = json.loads(out)
    assert code == 1 and [m["target"] for m in data["miniports"]] == ["netkvm", "reference"]
    first = data["miniports"][0]["results"][1]
    assert {"name", "family", "page", "status", "sent", "expected", "seen", "traceback",
            "duration"} <= set(first)  # fmt: skip
    assert data["miniports"][1]["counts"]["pass"] == TOTAL


def test_junit_file(tmp_path: Path) -> None:
    target = tmp_path / "conformance.xml"
    code, _ = run(["conformance", "--variant", "gvnic", "--junit", str(target)])
    root = ET.parse(target).getroot()
    suite = root.find("testsuite")
    assert code == 1 and suite is not None and int(suite.get("failures", "0")) > 0
    assert len(suite.findall("testcase")) == TOTAL


def test_junit_into_a_missing_directory_exits_two(tmp_path: Path) -> None:
    code, out = run(["conformance", "--check", "rss", "--junit", str(tmp_path / "no" / "x.xml")])
    assert code == 2 and "cannot write" in out


def test_a_users_own_miniport_class(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_nic.py").write_text(
        "from ndis_offload.stack.miniport import ReferenceMiniport\n"
        "class QuietNic(ReferenceMiniport):\n"
        "    def indicate_after_encapsulation(self, changed: bool) -> bool:\n"
        "        return False\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out = run(["conformance", "--miniport", "my_nic:QuietNic", "--check", "encapsulation"])
    assert code == 1
    assert "my_nic:QuietNic encapsulation-supported-ipv4" in out
    sys.modules.pop("my_nic", None)


def test_a_broken_plugin_fails_that_miniport_with_its_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bad_nic.py").write_text("def oops(:\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out = run(["conformance", "--miniport", "bad_nic:Nic", "--variant", "reference",
                     "--json"])  # fmt: skip
    data = json.loads(out)
    assert code == 1
    bad = data["miniports"][1]
    assert bad["target"] == "bad_nic:Nic" and bad["results"][0]["name"] == "load"
    assert "SyntaxError" in bad["results"][0]["traceback"]
    assert data["miniports"][0]["counts"]["pass"] == TOTAL


def test_list_shows_every_check_with_its_page() -> None:
    code, out = run(["conformance", "--list", "--json"])
    data = json.loads(out)
    assert code == 0 and len(data) == len(CHECKS)
    assert all(c["page"].startswith("https://learn.microsoft.com/") for c in data)


@pytest.mark.parametrize(
    "argv",
    [["conformance", "--variant", "nope"], ["conformance", "--miniport", "nocolon"],
     ["conformance", "--miniport", "a b:C"], ["conformance", "--check", "no-such-check"],
     ["conformance", "--timeout", "0"], ["conformance", "--timeout", "nan"]],
)  # fmt: skip
def test_bad_arguments_exit_two(argv: list[str]) -> None:
    code, _ = run(argv)
    assert code == 2

"""``ndis-offload conformance``: matrix, JSON, exit codes, a user's own miniport."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from rich.console import Console

from ndis_offload.cli.main import main


def run(argv: list[str]) -> tuple[int, str]:
    buffer = io.StringIO()
    code = main(argv, console=Console(file=buffer, width=140))
    return code, buffer.getvalue()


def test_reference_passes_and_exits_zero() -> None:
    code, out = run(["conformance"])
    assert code == 0
    assert "reference: 18/18 checks pass" in out


def test_all_variants_matrix_exits_one_and_names_deviations() -> None:
    code, out = run(["conformance", "--all"])
    assert code == 1
    for name in ("reference", "netkvm", "netvsp", "gvnic", "xennet"):
        assert name in out
    assert "indication after set" in out and "FAIL" in out


def test_json_lists_every_check_per_miniport() -> None:
    code, out = run(["conformance", "--variant", "netkvm", "--json"])
    data = json.loads(out)
    assert code == 1 and len(data["netkvm"]) == 18
    assert {"name", "rule", "expected", "observed", "passed"} <= set(data["netkvm"][0])


def test_a_users_own_miniport_class(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_nic.py").write_text(
        "from ndis_offload.stack.miniport import ReferenceMiniport\n"
        "class QuietNic(ReferenceMiniport):\n"
        "    def indicate_after_encapsulation(self, changed: bool) -> bool:\n"
        "        return False\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out = run(["conformance", "--miniport", "my_nic:QuietNic"])
    assert code == 1
    # without the indication NDIS never learns the new state, so "OFF deactivates" (checked
    # on the configuration NDIS serves to protocols) fails too
    assert "my_nic:QuietNic: 16/18 checks pass" in out
    assert "indication after set" in out
    sys.modules.pop("my_nic", None)


@pytest.mark.parametrize(
    "argv",
    [["conformance", "--variant", "nope"], ["conformance", "--miniport", "no_such_mod:X"],
     ["conformance", "--miniport", "json:dumps"], ["conformance", "--miniport", "nocolon"]],
)  # fmt: skip
def test_bad_targets_exit_two(argv: list[str]) -> None:
    code, out = run(argv)
    assert code == 2 and "error" in out.lower()

"""The live commands refuse clearly without root (exit 2)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from ndis_offload.cli.main import main


@pytest.mark.parametrize("argv", [["wire"], ["wire", "--cleanup"], ["tap", "up", "t0"]])
def test_not_root_exit_2(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    out = io.StringIO()
    assert main(argv, console=Console(file=out, width=200)) == 2
    assert "needs root" in out.getvalue()

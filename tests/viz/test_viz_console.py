"""Text output never loses a fact: piped (stdout not a terminal), tables are not cut to the
width rich would guess (``ndis-offload conformance --all | cat`` once printed
``NDIS_STATUS_INVALI…``). Run as a real subprocess with stdout a pipe, as a user's shell does."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from conformance_json import Row, rows

from ndis_offload.viz.console import PIPE_WIDTH, RULE_WIDTH

ENTRY = "from ndis_offload.cli.main import entry; entry()"


def piped(*argv: str, columns: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("COLUMNS", None)
    if columns is not None:
        env["COLUMNS"] = columns
    return subprocess.run([sys.executable, "-c", ENTRY, *argv], capture_output=True,
                          text=True, env=env, timeout=120, check=False)  # fmt: skip


def failed_statuses(failures: list[Row]) -> set[str]:
    """Every status named in a deviation's expected / seen text."""
    found = set()
    for r in failures:
        for word in re.split(r"[^A-Z0-9_]+", f"{r.expected} {r.seen}"):
            if word.startswith("NDIS_STATUS_") and word != "NDIS_STATUS_":
                found.add(word)
    return found


@pytest.fixture(scope="module")
def failures() -> list[Row]:
    """The deviations ``conformance --all --json`` reports."""
    return [r for r in rows(json.loads(piped("conformance", "--all", "--json").stdout)) if r.failed]


def test_conformance_all_piped_keeps_every_status_whole(failures: list[Row]) -> None:
    # COLUMNS=40 too: rich would obey it; a pipe is no 40-column terminal
    out = piped("conformance", "--all", columns="40")
    assert out.returncode == 1  # the variants deviate
    assert "…" not in out.stdout
    statuses = failed_statuses(failures)
    assert "NDIS_STATUS_INVALID_PARAMETER" in statuses
    for status in statuses:
        assert status in out.stdout, status
    # every deviation's check name and seen text are printed whole
    for r in failures:
        assert r.name in out.stdout and r.seen.splitlines()[0] in out.stdout, r


def test_demo_piped_keeps_full_statuses_and_a_short_heading() -> None:
    out = piped("demo", columns="60")
    assert out.returncode == 0
    assert "…" not in out.stdout
    for needle in ("NDIS_STATUS_INVALID_PARAMETER", "NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG",
                   "NDIS_ENCAPSULATION_IEEE_LLC_SNAP_ROUTED"):  # fmt: skip
        assert needle in out.stdout
    heading = out.stdout.splitlines()[0]
    assert "ndis-offload demo" in heading and len(heading) <= RULE_WIDTH
    assert max(len(line) for line in out.stdout.splitlines()) < PIPE_WIDTH

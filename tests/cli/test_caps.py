"""``ndis-offload caps``: capabilities beside current config, profiles, keyword overrides."""

from __future__ import annotations

import io
import json
from typing import Any

from rich.console import Console

from ndis_offload.cli.main import main
from ndis_offload.stack.profiles import PROFILES


def _run(argv: list[str]) -> tuple[int, str]:
    buffer = io.StringIO()
    code = main(argv, console=Console(file=buffer, width=120))
    return code, buffer.getvalue()


def _caps(*argv: str) -> dict[str, Any]:
    code, out = _run(["caps", "--json", *argv])
    assert code == 0, out
    doc: dict[str, Any] = json.loads(out)
    return doc


def _feature(doc: dict[str, Any], name: str) -> dict[str, Any]:
    rows: list[dict[str, Any]] = [f for f in doc["features"] if f["name"] == name]
    assert len(rows) == 1
    return rows[0]


def test_caps_default_profile_text() -> None:
    code, out = _run(["caps"])
    assert code == 0
    for needle in ("full", "hardware", "current", "LSOv2 IPv4", "*LsoV2IPv4", "MaxOffLoadSize"):
        assert needle in out, needle


def test_caps_keyword_override_is_visible() -> None:
    before = _feature(_caps(), "lsov2_4")
    assert before["hardware"] and before["current"]
    doc = _caps("--keyword", "*LsoV2IPv4=0", "--keyword", "*TCPChecksumOffloadIPv4=1")
    after = _feature(doc, "lsov2_4")
    assert after["hardware"] and not after["current"]
    assert _feature(doc, "tcp4_tx")["current"] and not _feature(doc, "tcp4_rx")["current"]
    assert doc["keywords"]["*LsoV2IPv4"] == 0
    assert doc["current_config"]["LsoV2"]["IPv4"]["Encapsulation"] == 0


def test_caps_encapsulation_override() -> None:
    doc = _caps("--encapsulation", "NDIS_ENCAPSULATION_IEEE_LLC_SNAP_ROUTED")
    assert doc["encapsulations"]["checksum"] == ["NDIS_ENCAPSULATION_IEEE_LLC_SNAP_ROUTED"]


def test_caps_every_profile_and_list() -> None:
    for name in PROFILES:
        doc = _caps("--profile", name)
        assert doc["profile"] == name
    assert _caps("--profile", "no-offload")["hardware_capabilities"] is None
    code, out = _run(["caps", "--list-profiles"])
    assert code == 0
    assert all(name in out for name in PROFILES)
    code, out = _run(["caps", "--list-profiles", "--json"])
    assert [p["name"] for p in json.loads(out)] == list(PROFILES)


def test_caps_bad_input_exits_2() -> None:
    for argv, message in (
        (["--keyword", "*Bogus=1"], "unknown INF keyword"),
        (["--keyword", "*LsoV2IPv4=7"], "must be an integer 0..1"),
        (["--keyword", "novalue"], "expected NAME=VALUE"),
        (["--profile", "nope"], "unknown profile"),
        (["--encapsulation", "NDIS_ENCAPSULATION_WRONG"], "unknown constant"),
    ):
        code, out = _run(["caps", *argv])
        assert code == 2, argv
        assert message in out, (argv, out)

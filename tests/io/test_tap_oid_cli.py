"""``ndis-offload oid`` against a control server over fake TAP devices (no root needed):
set / query / caps / stats through the real Unix socket and JSON protocol."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from test_tap_nic import nic

from ndis_offload.cli.main import main
from ndis_offload.io.tap.control import ControlServer
from ndis_offload.io.tap.linux import TunOffload


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    a, device = nic()
    path = str(tmp_path / "c.sock")
    control = ControlServer(path, {"a": a}, lambda **_: {"mode": "test", "uptime": 0.0,
                                                          "sides": {}})  # fmt: skip
    done = threading.Event()

    def serve() -> None:
        import select

        poller = select.poll()
        poller.register(control.fileno(), select.POLLIN)
        while not done.is_set():
            if poller.poll(50):
                control.service()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path, device
    done.set()
    thread.join(5)
    control.close()


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), console=Console(file=out, width=200))
    return code, out.getvalue()


def test_set_query_caps_through_the_socket(server: tuple[str, Any]) -> None:
    path, device = server
    code, text = run("oid", "--socket", path, "--json", "set", "OID_TCP_OFFLOAD_PARAMETERS",
                     "--lsov2-ipv4", "off", "--uso-ipv6", "off")  # fmt: skip
    answer = json.loads(text)
    assert code == 0 and answer["results"][0]["status"] == "NDIS_STATUS_SUCCESS"
    assert not device.offload & (TunOffload.TSO4 | TunOffload.USO4 | TunOffload.USO6)
    assert device.offload & TunOffload.TSO6
    code, text = run("oid", "--socket", path, "--json", "query", "OID_TCP_OFFLOAD_CURRENT_CONFIG")
    value = json.loads(text)["results"][0]["value"]
    assert value["LsoV2"]["IPv4"]["Encapsulation"] == 0
    assert value["LsoV2"]["IPv6"]["Encapsulation"] != 0
    code, text = run("oid", "--socket", path, "set", "OID_OFFLOAD_ENCAPSULATION", "--ipv6", "off")
    assert code == 0 and "TUNSETOFFLOAD 0" in text  # no IPv6 Tx checksum: no TUN_F_CSUM
    code, text = run("oid", "--socket", path, "caps")
    assert code == 0 and "LSOv2 IPv6" in text


def test_errors_exit_1_with_the_ndis_status(server: tuple[str, Any]) -> None:
    path, _ = server
    code, text = run("oid", "--socket", path, "set", "OID_NOPE", "--ipv4", "on")
    assert code == 1 and "NDIS_STATUS_INVALID_OID" in text
    code, text = run("oid", "--socket", path, "set", "OID_OFFLOAD_ENCAPSULATION", "--raw", "00")
    assert code == 1 and "NDIS_STATUS_INVALID_LENGTH" in text
    code, text = run("oid", "--socket", path + ".missing", "caps")
    assert code == 1 and "control socket" in text


def test_a_silent_client_gets_an_error_and_does_not_hold_the_loop(
    server: tuple[str, Any],
) -> None:
    import socket

    path, _ = server
    with socket.socket(socket.AF_UNIX) as silent:
        silent.connect(path)
        silent.settimeout(2.0)  # the server answers a silent client itself (socket.timeout if not)
        answer = json.loads(silent.recv(65536))
    assert answer["ok"] is False and answer["status"] == "NDIS_STATUS_INVALID_DATA"
    code, _ = run("oid", "--socket", path, "caps")
    assert code == 0

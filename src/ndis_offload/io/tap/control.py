"""The control channel: a Unix socket speaking one JSON object per line.

Requests (``side`` names a NIC, default every NIC)::

    {"op": "query", "oid": "OID_TCP_OFFLOAD_CURRENT_CONFIG", "side": "a"}
    {"op": "set", "oid": "OID_OFFLOAD_ENCAPSULATION", "value": {...NDIS field names...}}
    {"op": "set", "oid": "OID_TCP_OFFLOAD_PARAMETERS", "raw": "a8..."}
    {"op": "caps"}   {"op": "stats"}

``stats`` carries, per NIC, the miniport's answers to ``OID_TCP_RSC_STATISTICS`` and
``OID_GEN_STATISTICS`` (:func:`nic_statistics`), queried like any other OID.

Each answer is one JSON object: ``{"ok": true, "results": [...]}`` or ``{"ok": false,
"status": "NDIS_STATUS_...", "error": "..."}``. Sets and queries go to the miniport through
the NDIS stack on the kernel protocol's binding, exactly as an OID from TCP/IP would; the
answer carries the completion status, the indications it caused and the ``TUNSETOFFLOAD``
value after it.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from ndis_offload.constants.oid import Oid
from ndis_offload.constants.status import NdisStatus
from ndis_offload.errors import BackendError
from ndis_offload.io.tap.linux import describe_flags
from ndis_offload.io.tap.nic import TapNic
from ndis_offload.lab.scenario import ScenarioError, encode_value, resolve_oid
from ndis_offload.stack.core import decode_payload
from ndis_offload.stack.features import FEATURE_TABLE, FEATURES, features_of

MAX_REQUEST = 1 << 16
REQUEST_TIMEOUT = 0.5
"""Seconds a client has to send its request line: the forwarding loop serves the socket
itself, so a silent client may pause forwarding for at most this long."""


class ControlError(Exception):
    """A request that cannot be carried out, with the NDIS status the answer names."""

    def __init__(self, message: str, status: NdisStatus) -> None:
        super().__init__(message)
        self.status = status


def _sides(nics: dict[str, TapNic], request: dict[str, Any]) -> list[str]:
    side = request.get("side")
    if side is None or side == "all":
        return list(nics)
    if not isinstance(side, str) or side not in nics:
        raise ControlError(
            f"unknown side {side!r}; known: {', '.join(nics)}", NdisStatus.INVALID_PARAMETER
        )
    return [side]


def nic_state(nic: TapNic) -> dict[str, Any]:
    hardware = features_of(nic.miniport.hardware_capabilities()) if nic.miniport.hardware else set()
    current = nic.miniport.current_features
    return {
        "device": nic.device.name,
        "namespace": nic.device.namespace,
        "profile": nic.profile.name,
        "variant": nic.variant,
        "tunsetoffload": nic.device.offload,
        "tunsetoffload_names": describe_flags(nic.device.offload),
        "usable": [str(f) for f in FEATURES if f in nic.usable],
        "features": [
            {
                "name": str(f),
                "label": FEATURE_TABLE[f].label,
                "hardware": f in hardware,
                "current": f in current,
            }
            for f in FEATURES
        ],
    }


STATISTICS_OIDS = (Oid.TCP_RSC_STATISTICS, Oid.GEN_STATISTICS)
"""The statistics ``stats`` queries: ``NDIS_RSC_STATISTICS_INFO`` (``oid-tcp-rsc-statistics``)
and ``NDIS_STATISTICS_INFO`` (``oid-gen-statistics``)."""


def nic_statistics(nic: TapNic) -> dict[str, Any]:
    """``{OID name: {"status": NDIS_STATUS_..., "value": decoded structure or None}}``: each
    of :data:`STATISTICS_OIDS` queried through the NDIS stack on the kernel protocol's
    binding (an adapter without RSC answers ``NDIS_STATUS_NOT_SUPPORTED``)."""
    binding = nic.stack.bindings[nic.protocol.name]
    out: dict[str, Any] = {}
    for oid in STATISTICS_OIDS:
        handle = binding.query(oid)
        done = handle.completion
        value = None
        if done is not None and done.ok:
            value = decode_payload(oid, done.InformationBuffer)
        out[Oid.name_of(oid)] = {"status": handle.status.c_name, "value": value}
    return out


def _oid_request(nic: TapNic, request: dict[str, Any], kind: str) -> dict[str, Any]:
    try:
        oid = resolve_oid(request.get("oid"), "oid")
    except ScenarioError as err:
        raise ControlError(err.detail, NdisStatus.INVALID_OID) from None
    binding = nic.stack.bindings[nic.protocol.name]
    before = len(binding.indications)
    if kind == "query":
        handle = binding.query(oid)
    else:
        if "raw" in request:
            try:
                buffer = bytes.fromhex(str(request["raw"]))
            except ValueError:
                raise ControlError("raw: not a hex string", NdisStatus.INVALID_DATA) from None
        elif "value" in request:
            try:
                buffer = encode_value(oid, request["value"], "value")
            except ScenarioError as err:
                raise ControlError(err.detail, NdisStatus.INVALID_DATA) from None
        else:
            raise ControlError("a set needs a value or raw", NdisStatus.INVALID_DATA)
        handle = binding.set(oid, buffer)
        nic.apply_offload("set")
    completion = handle.completion
    status = handle.status
    out: dict[str, Any] = {
        "side": nic.name,
        "oid": Oid.name_of(oid),
        "status": status.c_name,
        "ok": status == NdisStatus.SUCCESS,
        "detail": completion.detail if completion is not None else "pending",
        "indications": [i.StatusCode.c_name for i in binding.indications[before:]],
        "tunsetoffload": nic.device.offload,
        "tunsetoffload_names": describe_flags(nic.device.offload),
    }
    if completion is not None:
        out["bytes_needed"] = completion.BytesNeeded
        if kind == "query" and completion.ok:
            out["value"] = decode_payload(oid, completion.InformationBuffer)
            out["raw"] = completion.InformationBuffer.hex()
    return out


def handle_request(
    nics: dict[str, TapNic], request: Any, stats: Callable[..., dict[str, Any]]
) -> dict[str, Any]:
    """Answer one decoded request (never raises)."""
    try:
        if not isinstance(request, dict):
            raise ControlError("the request must be a JSON object", NdisStatus.INVALID_DATA)
        op = request.get("op")
        if op in ("query", "set"):
            results = [_oid_request(nics[s], request, op) for s in _sides(nics, request)]
            return {"ok": all(r["ok"] for r in results), "results": results}
        if op == "caps":
            return {"ok": True, "results": [nic_state(nics[s]) for s in _sides(nics, request)]}
        if op == "stats":
            return {"ok": True, "stats": stats(reset_largest=bool(request.get("reset_largest")))}
        raise ControlError(f"unknown op {op!r} (query, set, caps, stats)", NdisStatus.NOT_SUPPORTED)
    except ControlError as err:
        return {"ok": False, "status": err.status.c_name, "error": str(err)}


def _error(message: str) -> dict[str, Any]:
    return {"ok": False, "status": NdisStatus.INVALID_DATA.c_name, "error": message}


class ControlServer:
    """A non-blocking Unix-socket server; :meth:`poll_fds` go into the caller's poll loop
    and :meth:`service` answers whatever is ready. One request per connection."""

    def __init__(
        self, path: str, nics: dict[str, TapNic], stats: Callable[..., dict[str, Any]]
    ) -> None:
        self.path = path
        self.nics = nics
        self.stats = stats
        if os.path.exists(path):
            raise BackendError(f"control socket {path} already exists (another wire?)")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.bind(path)
            os.chmod(path, 0o600)
            self.sock.listen(8)
            self.sock.setblocking(False)
        except OSError as exc:
            self.sock.close()
            raise BackendError(f"control socket {path}: {exc.strerror}") from exc
        self.requests = 0
        self.handler: Callable[[Any], dict[str, Any]] | None = None
        """Answers a decoded request instead of :func:`handle_request` (a wire whose NICs
        run in two processes forwards part of each request)."""

    def fileno(self) -> int:
        return self.sock.fileno()

    def service(self) -> None:
        """Accept and answer every pending connection (each gets :data:`REQUEST_TIMEOUT`)."""
        while True:
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            with conn:
                conn.settimeout(REQUEST_TIMEOUT)
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        data = b""
        deadline = time.monotonic() + REQUEST_TIMEOUT
        late = False
        try:
            while b"\n" not in data and len(data) < MAX_REQUEST and time.monotonic() < deadline:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            late = True
        except OSError:
            return
        self.requests += 1
        answer: dict[str, Any]
        if late and b"\n" not in data:
            answer = _error(f"no request line within {REQUEST_TIMEOUT} s")
        else:
            try:
                request = json.loads(data.split(b"\n", 1)[0] or b"null")
            except (ValueError, UnicodeDecodeError) as exc:
                answer = _error(f"not JSON: {exc}")
            else:
                if self.handler is not None:
                    answer = self.handler(request)
                else:
                    answer = handle_request(self.nics, request, self.stats)
        try:
            conn.sendall(json.dumps(answer).encode() + b"\n")
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def call(path: str, request: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """Send one request to a control socket and return the answer (client side)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
            sock.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            raise BackendError(f"control socket {path}: {exc.strerror or exc}") from exc
    try:
        answer: dict[str, Any] = json.loads(data)
    except ValueError as exc:
        raise BackendError(f"control socket {path}: bad answer {data[:80]!r}") from exc
    return answer


__all__ = [
    "STATISTICS_OIDS",
    "ControlError",
    "ControlServer",
    "call",
    "handle_request",
    "nic_state",
    "nic_statistics",
]

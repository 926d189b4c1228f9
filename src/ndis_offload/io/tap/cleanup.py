"""What a wire or TAP process created, recorded so that it can be removed after a crash.

Each process writes ``/run/ndis-offload/<pid>.json`` (its namespaces, control socket and
capture temp file) before creating anything and removes it after tearing everything down.
:func:`sweep` removes what dead processes left: their namespaces (after killing every
process still inside them), sockets and records, plus any ``ndo<pid>...`` namespace whose
process is gone.
"""

from __future__ import annotations

import glob
import json
import os
import re
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from types import FrameType

from ndis_offload.io import netns

RUN_DIR = "/run/ndis-offload"
_OURS = re.compile(rf"^{netns.PREFIX}(\d+)[a-z]+$")


@dataclass
class Record:
    pid: int
    namespaces: list[str] = field(default_factory=list)
    sockets: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    """Paths or glob patterns (the temporary file of a capture being written)."""

    @property
    def path(self) -> str:
        return os.path.join(RUN_DIR, f"{self.pid}.json")

    def save(self) -> None:
        tmp = self.path + ".tmp"
        for attempt in range(3):  # another process may remove the empty directory meanwhile
            os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
            try:
                with open(tmp, "w") as out:
                    json.dump(asdict(self), out)
                os.replace(tmp, self.path)
                return
            except FileNotFoundError:
                if attempt == 2:
                    raise

    def remove(self) -> None:
        """Remove the record, and the runtime directory once no record is left in it."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        try:
            os.rmdir(RUN_DIR)
        except OSError:  # not empty (another wire, a socket) or already gone
            pass


def capture_temp_pattern(path: str) -> str:
    """The glob of the temporary file :func:`~ndis_offload.io.atomic.atomic_output` writes
    for ``path`` (removed by :func:`sweep` if the writer was killed)."""
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(glob.escape(directory), f".{glob.escape(name)}.*.tmp")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def namespace_pids(name: str) -> list[int]:
    """Processes inside namespace ``name`` (``ip netns pids``)."""
    done = subprocess.run(
        ["ip", "netns", "pids", name], capture_output=True, text=True, timeout=30, check=False
    )
    return [int(p) for p in done.stdout.split() if p.isdigit()]


def kill_inside(name: str, grace: float = 1.0) -> list[int]:
    """SIGTERM, then SIGKILL, every process inside namespace ``name``."""
    pids = [p for p in namespace_pids(name) if p != os.getpid()]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.02)
    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return pids


def remove_namespace(name: str) -> bool:
    """Kill what runs inside ``name`` and delete it; False if it did not exist."""
    if not netns.exists(name):
        return False
    kill_inside(name)
    return netns.delete(name)


def release(record: Record) -> list[str]:
    """Remove everything ``record`` lists, then the record; returns what was removed."""
    removed = []
    for name in record.namespaces:
        if remove_namespace(name):
            removed.append(f"namespace {name}")
    paths = list(record.sockets)
    for pattern in record.files:
        paths += glob.glob(pattern)
    for path in paths:
        try:
            os.unlink(path)
            removed.append(path)
        except FileNotFoundError:
            pass
    record.remove()
    return removed


def records() -> list[Record]:
    out = []
    try:
        entries = sorted(os.listdir(RUN_DIR))
    except FileNotFoundError:
        return []
    for entry in entries:
        if not entry.endswith(".json"):
            continue
        try:
            with open(os.path.join(RUN_DIR, entry)) as src:
                data = json.load(src)
            out.append(Record(int(data["pid"]), list(data["namespaces"]), list(data["sockets"]),
                              list(data.get("files", []))))  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def terminate_on_sigterm() -> None:
    """SIGTERM while namespaces and devices are being built unwinds like Ctrl-C (``finally``
    blocks tear down what exists) instead of killing the process on the spot; the forwarding
    loop installs its own handler while it runs."""
    signal.signal(signal.SIGTERM, _terminate)


def sweep() -> list[str]:
    """Remove what dead processes left behind; live processes' resources are kept."""
    removed: list[str] = []
    for record in records():
        if not alive(record.pid):
            removed += release(record)
    for name in netns.names():
        match = _OURS.match(name)
        if match and not alive(int(match.group(1))) and remove_namespace(name):
            removed.append(f"namespace {name}")
    return removed


__all__ = [
    "RUN_DIR",
    "Record",
    "kill_inside",
    "release",
    "remove_namespace",
    "sweep",
    "terminate_on_sigterm",
]

"""Network namespaces: create, enter, delete (``ip netns`` and ``setns(2)``).

Everything this package creates is named with :data:`PREFIX` plus the owning process id, so
``wire --cleanup`` can find what a killed process left and never touches anything else.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from ndis_offload.errors import BackendError

NETNS_DIR = "/run/netns"
PREFIX = "ndo"
"""Namespaces made here are ``ndo<pid>a`` / ``ndo<pid>b`` / ``ndo<pid>x`` ..."""
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def preflight() -> str | None:
    """Why live TAP work cannot run here (``None`` when it can): root, ``/dev/net/tun``,
    ``ip`` and network namespaces are needed."""
    if os.geteuid() != 0:
        return "needs root (CAP_NET_ADMIN) to create TAP devices and network namespaces"
    if not os.path.exists("/dev/net/tun"):
        return "needs /dev/net/tun (modprobe tun)"
    if shutil.which("ip") is None:
        return "needs the ip command (iproute2)"
    if not os.path.exists("/proc/self/ns/net"):
        return "needs network namespace support"
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendError(f"ip {' '.join(args)}: {exc}") from exc
    if check and done.returncode != 0:
        raise BackendError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def ip(namespace: str | None, *args: str) -> str:
    """Run ``ip [-n NS] ARGS``; :class:`BackendError` with its message on failure."""
    prefix = ("-n", namespace) if namespace else ()
    return _ip(*prefix, *args).stdout


def add(name: str) -> None:
    """``ip netns add NAME`` and bring its loopback up."""
    _ip("netns", "add", name)
    ip(name, "link", "set", "lo", "up")


def delete(name: str) -> bool:
    """``ip netns delete NAME`` (its devices go with it); False if it did not exist."""
    if not exists(name):
        return False
    return _ip("netns", "delete", name, check=False).returncode == 0


def exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, name))


def names() -> list[str]:
    """Every named namespace (``/run/netns``)."""
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise BackendError(f"setns: {os.strerror(err)}")


@contextmanager
def inside(name: str) -> Iterator[None]:
    """Run the block with this thread in namespace ``name`` (sockets and TAP devices made
    there belong to it); the original namespace is restored even on error."""
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        try:
            target = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY)
        except OSError as exc:
            raise BackendError(f"namespace {name}: {exc.strerror}") from exc
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(original)
    finally:
        os.close(original)


def exec_args(name: str, *argv: str) -> list[str]:
    """``ip netns exec NAME ARGV...`` as an argument list for :mod:`subprocess`."""
    return ["ip", "netns", "exec", name, *argv]


__all__ = ["PREFIX", "add", "delete", "exec_args", "exists", "inside", "ip", "names", "preflight"]

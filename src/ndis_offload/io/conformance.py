"""Run the conformance battery against a miniport behind one boundary: a child process.

The miniport's module is imported, its adapter initialized and every check run in a forked
child; the parent only reads results from a pipe. Whatever the miniport does -- raise
(``BaseException`` included: ``SystemExit``, ``KeyboardInterrupt``), loop, block, call
``os._exit`` or crash the interpreter -- costs that check (``error`` / ``timeout`` with the
traceback or the exit code), never the run. After a timeout or a dead child the parent
starts a new child at the next check. Randomness is drawn here (``random.Random`` seeded
with ``seed`` and the check name), and so is the clock (durations).
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import random
import signal
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from typing import Any

from ndis_offload.lab.conformance import (
    CHECKS,
    Check,
    CheckResult,
    Context,
    Family,
    MiniportFactory,
    MiniportReport,
    Status,
    run_check,
)
from ndis_offload.stack.core import NdisStack
from ndis_offload.stack.profiles import get_profile

LOAD_PAGE = (
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nc-ndis-miniport_initialize"
)
MAX_CONSECUTIVE_TIMEOUTS = 3
"""After this many checks in a row time out, the rest are reported as not run."""
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Target:
    """A miniport to test: a display name and how to build its factory (called in the child;
    may raise anything)."""

    name: str
    load: Callable[[], MiniportFactory]


def rng_for(seed: int) -> Callable[[str], random.Random]:
    return lambda name: random.Random(f"{seed}:{name}")


def _load_result(status: Status, seen: str, tb: str = "", duration: float = 0.0) -> CheckResult:
    return CheckResult(
        "load", Family.CONTROL, LOAD_PAGE, "import the miniport's module, build its class and "
        "initialize an adapter (MiniportInitializeEx)", status, sent="load and initialize",
        expected="the module imports and MiniportInitializeEx returns", seen=seen,
        traceback=tb, duration=duration,
    )  # fmt: skip


def _not_run(check: Check, why: str) -> CheckResult:
    return CheckResult(check.name, check.family, check.page, check.rule, Status.ERROR,
                       seen=f"not run: {why}", reading=check.reading)  # fmt: skip


def _probe(factory: MiniportFactory) -> None:
    """Initialize one adapter: a miniport whose initialize loops or raises fails here once."""
    NdisStack(factory(get_profile("full")))


def _timed(check: Check, factory: MiniportFactory, seed: int) -> CheckResult:
    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        result = run_check(check, Context(factory, rng_for(seed)(check.name)))
    printed = out.getvalue()
    details = result.details + ((f"the miniport printed: {printed[-2000:]}",) if printed else ())
    return replace(result, duration=time.perf_counter() - start, details=details)


def _child(
    conn: Connection, target: Target, checks: Sequence[Check], start: int, seed: int
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    code = 0
    try:
        begin = time.perf_counter()
        try:
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                factory = target.load()
                _probe(factory)
        except BaseException as err:  # noqa: BLE001 -- user code: anything at all
            conn.send(("load-error", f"{type(err).__name__}: {err}", traceback.format_exc()))
            return
        conn.send(("loaded", time.perf_counter() - begin))
        for index in range(start, len(checks)):
            conn.send(("start", index))
            conn.send(("result", index, _timed(checks[index], factory, seed).to_dict()))
        conn.send(("done",))
    except BaseException:  # noqa: BLE001 -- a broken pipe: the parent is gone
        code = 1
    finally:
        with contextlib.suppress(BaseException):
            conn.close()
        os._exit(code)


def _receive(conn: Connection, timeout: float) -> tuple[Any, ...] | None:
    """The next message, or ``None`` on timeout; ``("eof",)`` when the child died."""
    try:
        if not conn.poll(timeout):
            return None
        msg: tuple[Any, ...] = conn.recv()
        return msg
    except (EOFError, OSError):
        return ("eof",)


def _stop(proc: multiprocessing.process.BaseProcess) -> int | None:
    if proc.is_alive():
        proc.kill()
    proc.join(5)
    return proc.exitcode


def run_isolated(
    target: Target,
    checks: Sequence[Check] = CHECKS,
    *,
    seed: int = 0,
    timeout: float = DEFAULT_TIMEOUT,
) -> MiniportReport:
    """Every check against ``target`` in a child process with a per-check time limit."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return run_in_process(target, checks, seed=seed)
    mp = multiprocessing.get_context("fork")
    results: dict[int, CheckResult] = {}
    index, in_a_row = 0, 0
    load: CheckResult | None = None
    while index < len(checks):
        parent, child = mp.Pipe(duplex=False)
        proc = mp.Process(target=_child, args=(child, target, checks, index, seed), daemon=True)
        proc.start()
        child.close()
        current: int | None = None
        try:
            msg = _receive(parent, timeout)
            if msg is None or msg[0] != "loaded":
                code = _stop(proc)
                if msg is None:
                    load = _load_result(Status.TIMEOUT, f"no answer within {timeout:g} s "
                                        "(the module's import or MiniportInitializeEx loops or "
                                        "blocks)")  # fmt: skip
                elif msg[0] == "load-error":
                    load = _load_result(Status.ERROR, msg[1], msg[2])
                else:
                    load = _load_result(Status.ERROR, f"the process exited with code {code}")
                break
            if load is None:
                load = _load_result(Status.PASS, "loaded and initialized", duration=msg[1])
            while True:
                msg = _receive(parent, timeout)
                if msg is None or msg[0] == "eof":
                    code = _stop(proc)
                    at = current if current is not None else index
                    if msg is None:
                        check = checks[at]
                        results[at] = CheckResult(
                            check.name, check.family, check.page, check.rule, Status.TIMEOUT,
                            expected=f"the check finishes within {timeout:g} s",
                            seen=f"no result after {timeout:g} s: the miniport loops or blocks",
                            duration=timeout, reading=check.reading,
                        )  # fmt: skip
                        in_a_row += 1
                    else:
                        check = checks[at]
                        results[at] = CheckResult(
                            check.name, check.family, check.page, check.rule, Status.ERROR,
                            expected="the miniport returns",
                            seen=f"the miniport's process exited with code {code} during this "
                            "check (os._exit, a signal or an interpreter crash)",
                            reading=check.reading,
                        )  # fmt: skip
                        in_a_row = 0
                    index = at + 1
                    break
                if msg[0] == "start":
                    current = msg[1]
                elif msg[0] == "result":
                    results[msg[1]] = CheckResult.from_dict(msg[2])
                    index, in_a_row, current = msg[1] + 1, 0, None
                elif msg[0] == "done":
                    index = len(checks)
                    _stop(proc)
                    break
        except BaseException:
            _stop(proc)
            raise
        finally:
            parent.close()
        if in_a_row >= MAX_CONSECUTIVE_TIMEOUTS:
            for rest in range(index, len(checks)):
                results[rest] = _not_run(
                    checks[rest], f"{MAX_CONSECUTIVE_TIMEOUTS} checks in a row timed out"
                )
            break
    assert load is not None
    if load.status.failed:
        return MiniportReport(target.name, (load,))
    ordered = tuple(results[i] for i in sorted(results))
    return MiniportReport(target.name, (load, *ordered))


def run_in_process(
    target: Target, checks: Sequence[Check] = CHECKS, *, seed: int = 0
) -> MiniportReport:
    """The same without a child process or time limits (platforms without ``fork``)."""
    try:
        factory = target.load()
        _probe(factory)
    except BaseException as err:  # noqa: BLE001 -- user code
        return MiniportReport(target.name, (_load_result(
            Status.ERROR, f"{type(err).__name__}: {err}", traceback.format_exc()),))  # fmt: skip
    load = _load_result(Status.PASS, "loaded and initialized (in process, no time limits)")
    return MiniportReport(target.name, (load, *(_timed(c, factory, seed) for c in checks)))

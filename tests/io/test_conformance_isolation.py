"""User miniports run behind one boundary (a child process): whatever they do -- raise
(BaseException included), loop, exit, fail to import -- costs that check or that miniport,
never the run, and every check has a time limit."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from ndis_offload.cli.conformance import load_miniport
from ndis_offload.io.conformance import Target, run_isolated
from ndis_offload.lab.conformance import CHECKS_BY_NAME, Status
from ndis_offload.stack.miniport import ReferenceMiniport

FEW = [CHECKS_BY_NAME[n] for n in ("encapsulation-short-buffer", "parameters-field-LsoV2IPv4",
                                   "encapsulation-bad-header-type")]  # fmt: skip
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs fork")


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("plug_")]:
        sys.modules.pop(name, None)


def plugin(directory: Path, name: str, body: str) -> Target:
    (directory / f"{name}.py").write_text(
        "from ndis_offload.stack.miniport import ReferenceMiniport\n" + textwrap.dedent(body)
    )
    return Target(f"{name}:Nic", lambda: load_miniport(f"{name}:Nic"))


def statuses(report: object) -> dict[str, Status]:
    return {r.name: r.status for r in report.results}  # type: ignore[attr-defined]


def test_reference_passes_in_a_child() -> None:
    report = run_isolated(Target("reference", lambda: ReferenceMiniport), FEW, timeout=20)
    assert set(statuses(report).values()) == {Status.PASS}
    assert all(r.duration >= 0 for r in report.results)


def test_a_looping_oid_handler_times_out_that_check_only(plugin_dir: Path) -> None:
    target = plugin(
        plugin_dir,
        "plug_loop",
        """
        class Nic(ReferenceMiniport):
            def set_offload_parameters(self, request):
                while True:
                    pass
    """,
    )
    report = run_isolated(target, FEW, timeout=1.0)
    got = statuses(report)
    assert got["parameters-field-LsoV2IPv4"] is Status.TIMEOUT
    assert got["encapsulation-short-buffer"] is Status.PASS
    assert got["encapsulation-bad-header-type"] is Status.PASS  # the run went on


@pytest.mark.parametrize("raised", ["SystemExit(0)", "KeyboardInterrupt()", "GeneratorExit()"])
def test_base_exceptions_fail_the_check_with_a_traceback(plugin_dir: Path, raised: str) -> None:
    target = plugin(
        plugin_dir,
        f"plug_raise_{raised[:3].lower()}",
        f"""
        class Nic(ReferenceMiniport):
            def set_offload_parameters(self, request):
                raise {raised}
    """,
    )
    report = run_isolated(target, FEW, timeout=20)
    bad = [r for r in report.results if r.name == "parameters-field-LsoV2IPv4"][0]
    assert bad.status is Status.ERROR and raised.split("(")[0] in bad.seen
    assert "set_offload_parameters" in bad.traceback
    assert statuses(report)["encapsulation-bad-header-type"] is Status.PASS


def test_os_exit_in_a_check_costs_that_check(plugin_dir: Path) -> None:
    target = plugin(
        plugin_dir,
        "plug_exit",
        """
        import os
        class Nic(ReferenceMiniport):
            def set_offload_parameters(self, request):
                os._exit(7)
    """,
    )
    report = run_isolated(target, FEW, timeout=20)
    bad = [r for r in report.results if r.name == "parameters-field-LsoV2IPv4"][0]
    assert bad.status is Status.ERROR and "code 7" in bad.seen
    assert statuses(report)["encapsulation-bad-header-type"] is Status.PASS


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ("raise ImportError('no driver here')\n", Status.ERROR, "ImportError"),
        ("def broken(:\n", Status.ERROR, "SyntaxError"),
        ("raise SystemExit(0)\n", Status.ERROR, "SystemExit"),
        ("while True:\n    pass\n", Status.TIMEOUT, "no answer"),
        ("class Nic(ReferenceMiniport):\n    def initialize(self, context):\n"
         "        while True:\n            pass\n", Status.TIMEOUT, "MiniportInitializeEx"),
        ("class Nic(ReferenceMiniport):\n    def initialize(self, context):\n"
         "        raise RuntimeError('no NIC')\n", Status.ERROR, "no NIC"),
        ("Nic = 42\n", Status.ERROR, "not a Miniport subclass"),
    ],
)  # fmt: skip
def test_a_miniport_that_cannot_load_fails_once(plugin_dir: Path, body: str, status: Status,
                                                 needle: str) -> None:  # fmt: skip
    name = f"plug_load_{abs(hash(body)) % 10**8}"
    target = plugin(plugin_dir, name, body)
    report = run_isolated(target, FEW, timeout=1.0)
    assert [r.name for r in report.results] == ["load"]
    load = report.results[0]
    assert load.status is status and report.failed
    assert needle in load.seen + load.traceback


def test_no_child_is_left_behind(plugin_dir: Path) -> None:
    target = plugin(
        plugin_dir,
        "plug_loop2",
        """
        class Nic(ReferenceMiniport):
            def set_offload_encapsulation(self, request):
                while True:
                    pass
    """,
    )
    run_isolated(target, FEW, timeout=0.5)
    import multiprocessing

    assert multiprocessing.active_children() == []
    assert os.getpid()  # still here

"""The live backend against the Linux kernel: real TCP through the wire in both modes
(SHA-256 of the stream is the oracle), offloads toggled mid-transfer (the kernel's frames on
the wire drop to the MTU), TUNSETOFFLOAD checked through the device features ``tun.c``
derives from it (``ETHTOOL_GFEATURES``), and teardown after SIGTERM / kill -9.

Needs root, /dev/net/tun and network namespaces; every namespace, socket and process a test
creates is removed even when it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ndis_offload.io import netns
from ndis_offload.io.tap.cleanup import RUN_DIR, remove_namespace
from ndis_offload.io.tap.control import call
from ndis_offload.io.tap.device import device_features
from ndis_offload.io.tap.linux import ETHTOOL_FEATURE, TunOffload

pytestmark: list[pytest.MarkDecorator] = [pytest.mark.tap]
WHY = netns.preflight()
if WHY is None:
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR)
        os.close(fd)
    except OSError as exc:
        WHY = f"/dev/net/tun: {exc.strerror}"
if WHY:
    pytestmark = [pytest.mark.tap, pytest.mark.skip(reason=WHY)]

CLI = [sys.executable, "-c", "from ndis_offload.cli.main import entry; entry()"]
MIB = 1 << 20


@dataclass
class Running:
    proc: subprocess.Popen[str]
    info: dict[str, Any]
    socket: str

    @property
    def namespaces(self) -> dict[str, str]:
        ns: dict[str, str] = self.info["namespaces"]
        return ns

    def request(self, **request: Any) -> dict[str, Any]:
        return call(self.socket, request)


def start_wire(tmp: str, *args: str) -> Running:
    sock = os.path.join(tmp, "wire.sock")
    proc = subprocess.Popen(
        [*CLI, "wire", "--json", "--socket", sock, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(10)
        raise AssertionError(f"wire did not start: {proc.stderr.read() if proc.stderr else ''}")
    return Running(proc, json.loads(line)["ready"], sock)


def stop(running: Running) -> None:
    if running.proc.poll() is None:
        running.proc.send_signal(signal.SIGTERM)
        try:
            running.proc.wait(20)
        except subprocess.TimeoutExpired:
            running.proc.kill()
            running.proc.wait(5)
    for name in running.namespaces.values():  # safety net: never leave anything behind
        remove_namespace(name)
    for path in (running.socket, os.path.join(RUN_DIR, f"{running.proc.pid}.json")):
        if os.path.exists(path):
            os.unlink(path)
    for stream in (running.proc.stdout, running.proc.stderr):
        if stream is not None:
            stream.close()


@pytest.fixture
def wire_factory(tmp_path: Any) -> Iterator[Any]:
    started: list[Running] = []

    def make(*args: str) -> Running:
        running = start_wire(str(tmp_path), *args)
        started.append(running)
        return running

    yield make
    for running in started:
        stop(running)


TRAFFIC = [sys.executable, "-m", "ndis_offload.io.tap.traffic"]


def transfer(
    wire: Running, size: int, *, pace: float = 0.0, during: Any = None, ipv6: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send ``size`` bytes A -> B with the built-in sender / receiver; returns both reports."""
    traffic = TRAFFIC
    family = ("6",) if ipv6 else ()
    recv = subprocess.Popen(
        netns.exec_args(wire.namespaces["b"], *traffic, "recv", "5201", *family),
        stdout=subprocess.PIPE, text=True, env=os.environ.copy(),
    )  # fmt: skip
    send: subprocess.Popen[str] | None = None
    try:
        assert recv.stdout is not None
        assert json.loads(recv.stdout.readline())["listening"] == 5201
        send = subprocess.Popen(
            netns.exec_args(wire.namespaces["a"], *traffic, "send",
                            "fd77::2" if ipv6 else "10.77.0.2", "5201", str(size), str(pace)),
            stdout=subprocess.PIPE, text=True, env=os.environ.copy(),
        )  # fmt: skip
        if during is not None:
            during()
        out, _ = send.communicate(timeout=90)
        got = json.loads(recv.stdout.readline())
        return json.loads(out), got
    finally:
        for proc in (send, recv):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(5)
            if proc is not None and proc.stdout is not None:
                proc.stdout.close()


@pytest.mark.parametrize(
    ("mode", "processes"), [("passthrough", 2), ("segment", 2), ("segment", 1)]
)
def test_256_mib_of_kernel_tcp_arrive_intact(wire_factory: Any, mode: str, processes: int) -> None:
    wire = wire_factory("--mode", mode, "--processes", str(processes))
    sent, got = transfer(wire, 256 * MIB)
    assert got == {"bytes": 256 * MIB, "sha256": sent["sha256"]}
    answer = wire.request(op="stats")["stats"]
    assert answer["processes"] == processes
    stats = answer["sides"]
    a, b = stats["a"]["counters"]["offloads"], stats["b"]["counters"]["offloads"]
    assert a["lsov2_4"]["frames"] > 0  # the kernel handed NIC A large sends
    if mode == "segment":
        assert a["lsov2_4"]["segments"] > a["lsov2_4"]["frames"]
        assert b["rsc4"]["coalesced"] > b["rsc4"]["frames"]  # NIC B coalesced them back
        assert stats["a"]["largest_frame"] <= 1514
    else:
        assert stats["a"]["largest_frame"] > 1514


def test_ipv6_segment_mode(wire_factory: Any) -> None:
    """TSO6 -> LSOv2 IPv6 -> MTU-sized frames -> RSC IPv6 -> a GSO_TCPV6 write."""
    wire = wire_factory("--mode", "segment")
    sent, got = transfer(wire, 48 * MIB, ipv6=True)
    assert got == {"bytes": 48 * MIB, "sha256": sent["sha256"]}
    stats = wire.request(op="stats")["stats"]["sides"]
    a, b = stats["a"]["counters"]["offloads"], stats["b"]["counters"]["offloads"]
    assert a["lsov2_6"]["segments"] > a["lsov2_6"]["frames"] > 0
    assert b["rsc6"]["coalesced"] > b["rsc6"]["frames"] > 0
    # the miniports' own statistics OIDs, queried through NDIS, agree with the NICs' counters
    rsc = stats["b"]["statistics"]["OID_TCP_RSC_STATISTICS"]["value"]
    scus = [b[f"rsc{v}"] for v in (4, 6) if f"rsc{v}" in b]
    assert rsc["CoalescedPkts"] == sum(r["coalesced"] for r in scus)
    assert rsc["CoalesceEvents"] == sum(r["frames"] for r in scus)
    assert 0 < rsc["CoalescedOctets"] <= 2 * 48 * MIB
    gen = stats["a"]["statistics"]["OID_GEN_STATISTICS"]["value"]
    out = ("ifHCOutUcastPkts", "ifHCOutMulticastPkts", "ifHCOutBroadcastPkts")
    assert sum(gen[m] for m in out) == stats["a"]["wire_frames"]


def test_udp_gso_becomes_uso(wire_factory: Any) -> None:
    """A UDP_SEGMENT send reaches NIC A as one GSO_UDP_L4 frame (TUN_F_USO4|USO6), the send
    path cuts it with USO, and every datagram arrives intact (not coalesced: RSC is TCP)."""
    wire = wire_factory("--mode", "segment")
    if not wire.request(op="caps")["results"][0]["tunsetoffload"] & TunOffload.USO4:
        pytest.skip("this kernel's tun has no TUN_F_USO4 (Linux < 6.2)")
    sends, segments, size = 40, 20, 1200
    recv = subprocess.Popen(
        netns.exec_args(wire.namespaces["b"], *TRAFFIC, "urecv", "5202", str(sends * segments)),
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert recv.stdout is not None
        recv.stdout.readline()
        done = subprocess.run(
            netns.exec_args(wire.namespaces["a"], *TRAFFIC, "usend", "10.77.0.2", "5202",
                            str(sends), str(segments), str(size)),
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        sent = json.loads(done.stdout)
        got = json.loads(recv.stdout.readline())
    finally:
        if recv.poll() is None:
            recv.kill()
        recv.wait(5)
        if recv.stdout is not None:
            recv.stdout.close()
    assert got == {"datagrams": sends * segments, "sha256": sent["sha256"], "sizes": [size]}
    a = wire.request(op="stats")["stats"]["sides"]["a"]["counters"]["offloads"]
    assert a["uso4"]["frames"] > 0 and a["uso4"]["segments"] >= segments * a["uso4"]["frames"]


def _largest(wire: Running) -> int:
    stats = wire.request(op="stats", reset_largest=True)["stats"]
    size: int = stats["sides"]["a"]["largest_frame"]
    return size


def _offloads(wire: Running) -> dict[str, dict[str, int]]:
    rows: dict[str, dict[str, int]] = wire.request(op="stats")["stats"]["sides"]["a"]["counters"][
        "offloads"
    ]
    return rows


def _window(wire: Running, want: Any, timeout: float = 8.0) -> int:
    """Largest frame of the first 0.25 s window that satisfies ``want`` (or the last one)."""
    deadline = time.monotonic() + timeout
    _largest(wire)
    while True:
        time.sleep(0.25)
        size = _largest(wire)
        if want(size) or time.monotonic() > deadline:
            return size


@pytest.mark.parametrize("processes", [1, 2])
def test_toggle_offload_mid_transfer(wire_factory: Any, processes: int) -> None:
    wire = wire_factory("--mode", "passthrough", "--processes", str(processes))
    seen: dict[str, int] = {}

    def toggle() -> None:
        seen["on"] = _window(wire, lambda size: size > 1514)
        off = wire.request(op="set", oid="OID_OFFLOAD_ENCAPSULATION", side="a",
                           value={"IPv4": {"Enabled": 2}, "IPv6": {"Enabled": 0}})  # fmt: skip
        seen["off_flags"] = off["results"][0]["tunsetoffload"]
        time.sleep(0.1)  # GSO sends the kernel queued before the change drain
        before = _offloads(wire)
        seen["off"] = _window(wire, lambda size: 0 < size <= 1514)
        after = _offloads(wire)
        # the kernel now checksums itself: complete frames, no partial-checksum requests
        seen["plain"] = after["plain"]["frames"] - before["plain"]["frames"]
        seen["partial"] = sum(  # asked for (admitted or refused): the kernel stopped asking
            after.get(k, {}).get(c, 0) - before.get(k, {}).get(c, 0)
            for k in ("tcp4_tx", "lsov2_4")
            for c in ("frames", "refused")
        )
        on = wire.request(op="set", oid="OID_OFFLOAD_ENCAPSULATION", side="a",
                          value={"IPv4": {"Enabled": 1, "EncapsulationType": 2, "HeaderSize": 14},
                                 "IPv6": {"Enabled": 0}})  # fmt: skip
        seen["on_flags"] = on["results"][0]["tunsetoffload"]

    sent, got = transfer(wire, 192 * MIB, pace=0.02, during=toggle)
    assert got == {"bytes": 192 * MIB, "sha256": sent["sha256"]}  # not a byte lost
    assert seen["off_flags"] == 0 and seen["on_flags"] & TunOffload.TSO4, seen
    assert seen["on"] > 1514, seen  # 64 KB GSO sends cross while LSO is on
    assert 0 < seen["off"] <= 1514, seen  # the kernel segments itself: MTU-sized frames
    assert seen["plain"] > 100 and seen["partial"] == 0, seen


def expect_features(wire: Running, flags: int, side: str = "a") -> None:
    features = device_features(f"ndo{side}", wire.namespaces[side])
    for bit, name in ETHTOOL_FEATURE.items():
        assert features[name] == bool(flags & bit), (name, hex(flags), features)


@pytest.mark.parametrize(("side", "processes"), [("a", 1), ("b", 2)])
def test_tunsetoffload_follows_every_current_config(
    wire_factory: Any, side: str, processes: int
) -> None:
    """Side B of a two-process wire: the request is forwarded to NIC B's process, which
    calls TUNSETOFFLOAD on its own TAP."""
    wire = wire_factory("--processes", str(processes))
    full = int(TunOffload.CSUM | TunOffload.TSO4 | TunOffload.TSO6 | TunOffload.TSO_ECN
               | TunOffload.USO4 | TunOffload.USO6)  # fmt: skip
    expect_features(wire, full, side)
    steps: list[tuple[str, dict[str, Any], int]] = [
        ("OID_TCP_OFFLOAD_PARAMETERS", {"LsoV2IPv6": 1}, full & ~TunOffload.TSO6),
        ("OID_TCP_OFFLOAD_PARAMETERS", {"UdpSegmentation": {"IPv4": 1}},
         full & ~(TunOffload.TSO6 | TunOffload.USO4 | TunOffload.USO6)),
        ("OID_OFFLOAD_ENCAPSULATION", {"IPv4": {"Enabled": 2}, "IPv6": {"Enabled": 0}}, 0),
        ("OID_OFFLOAD_ENCAPSULATION",
         {"IPv4": {"Enabled": 1, "EncapsulationType": 2, "HeaderSize": 14},
          "IPv6": {"Enabled": 0}}, int(TunOffload.CSUM | TunOffload.TSO4 | TunOffload.TSO_ECN)),
        ("OID_TCP_OFFLOAD_PARAMETERS", {"TCPIPv6Checksum": 2}, 0),  # Tx only: CSUM stays
        ("OID_TCP_OFFLOAD_PARAMETERS", {"TCPIPv6Checksum": 3}, 0),  # Rx only: no HW_CSUM
    ]  # fmt: skip
    steps[4] = (steps[4][0], steps[4][1], steps[3][2])
    for oid, value, flags in steps:
        answer = wire.request(op="set", oid=oid, side=side, value=value)
        result = answer["results"][0]
        assert result["side"] == side and result["status"] == "NDIS_STATUS_SUCCESS", result
        assert "NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG" in result["indications"]
        assert result["tunsetoffload"] == flags, (oid, value, result["tunsetoffload_names"])
        expect_features(wire, flags, side)
    caps = wire.request(op="caps")["results"]  # both NICs answer, each its own state
    assert [c["device"] for c in caps] == ["ndoa", "ndob"]
    assert caps["ab".index(side)]["tunsetoffload"] == steps[-1][2]


def test_bad_control_request_gets_json_error(wire_factory: Any) -> None:
    wire = wire_factory()
    import socket

    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(wire.socket)
        sock.sendall(b"{not json\n")
        answer = json.loads(sock.recv(65536))
    assert answer["ok"] is False and answer["status"] == "NDIS_STATUS_INVALID_DATA"
    bad = wire.request(op="set", oid="OID_OFFLOAD_ENCAPSULATION", raw="00")
    assert bad["results"][0]["status"] == "NDIS_STATUS_INVALID_LENGTH"
    assert wire.request(op="stats")["ok"]  # the loop goes on


def _leftovers(wire: Running) -> list[str]:
    out = [f"namespace {n}" for n in wire.namespaces.values() if netns.exists(n)]
    if os.path.exists(wire.socket):
        out.append(wire.socket)
    if os.path.exists(os.path.join(RUN_DIR, f"{wire.proc.pid}.json")):
        out.append("record")
    return out


def test_sigterm_leaves_nothing(wire_factory: Any) -> None:
    wire = wire_factory()
    sleeper = subprocess.Popen(netns.exec_args(wire.namespaces["a"], "sleep", "60"))
    try:
        time.sleep(0.2)
        wire.proc.send_signal(signal.SIGTERM)
        assert wire.proc.wait(20) == 0
        assert _leftovers(wire) == []
        assert sleeper.wait(5) is not None  # killed with its namespace
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait(5)


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listing:
            return [int(child) for child in listing.read().split()]
    except OSError:
        return []


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for a reaper."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_kill_9_of_a_two_process_wire(wire_factory: Any) -> None:
    """NIC B's process dies with the wire process (``PR_SET_PDEATHSIG``), and
    ``--cleanup`` removes the namespaces."""
    wire = wire_factory("--processes", "2")
    assert wire.request(op="stats")["stats"]["processes"] == 2  # B answers: it runs
    children = _children(wire.proc.pid)
    assert len(children) == 1
    wire.proc.send_signal(signal.SIGKILL)
    wire.proc.wait(10)
    deadline = time.monotonic() + 10
    while _running(children[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(children[0])
    done = subprocess.run([*CLI, "wire", "--cleanup", "--json"], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _leftovers(wire) == []


def test_nic_b_process_killed_ends_the_wire_with_an_error(wire_factory: Any) -> None:
    """A crash of NIC B's process is not a quiet stop: the wire tears down and exits 1."""
    wire = wire_factory("--processes", "2")
    assert wire.request(op="stats")["stats"]["processes"] == 2
    (child,) = _children(wire.proc.pid)
    os.kill(child, signal.SIGKILL)
    assert wire.proc.wait(20) == 1
    assert wire.proc.stderr is not None and "NIC B's process" in wire.proc.stderr.read()
    assert _leftovers(wire) == []


def test_two_processes_refuse_a_capture(tmp_path: Any) -> None:
    done = subprocess.run(
        [*CLI, "wire", "--processes", "2", "--pcap", str(tmp_path / "c.pcapng")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0 and "--processes 1" in done.stderr
    assert not (tmp_path / "c.pcapng").exists()


def test_kill_9_then_cleanup(wire_factory: Any, tmp_path: Any) -> None:
    wire = wire_factory("--pcap", str(tmp_path / "cap.pcapng"))
    wire.proc.send_signal(signal.SIGKILL)
    wire.proc.wait(10)
    assert any(netns.exists(n) for n in wire.namespaces.values())
    assert list(tmp_path.glob(".cap.pcapng.*.tmp"))  # the capture being written
    done = subprocess.run([*CLI, "wire", "--cleanup", "--json"], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    removed = json.loads(done.stdout)["removed"]
    assert {f"namespace {n}" for n in wire.namespaces.values()} <= set(removed)
    assert _leftovers(wire) == []
    assert not list(tmp_path.glob(".cap.pcapng.*.tmp")) and not (tmp_path / "cap.pcapng").exists()


@pytest.mark.parametrize("mode", ["segment", "passthrough"])
def test_pcap_records_the_wire(wire_factory: Any, tmp_path: Any, mode: str) -> None:
    """``pcap verify`` and tshark (independent reader) read the capture: every TCP frame of
    segment mode is wire-sized with correct checksums; passthrough shows the unsegmented
    LSO sends; direction flags and the offload comments are there."""
    capture = str(tmp_path / "wire.pcapng")
    wire = wire_factory("--mode", mode, "--pcap", capture)
    sent, got = transfer(wire, 4 * MIB)
    assert got["sha256"] == sent["sha256"]
    wire.request(op="set", oid="OID_OFFLOAD_ENCAPSULATION", side="a",
                 value={"IPv4": {"Enabled": 2}, "IPv6": {"Enabled": 0}})  # fmt: skip
    sent, got = transfer(wire, 1 * MIB)
    assert got["sha256"] == sent["sha256"]
    stop(wire)
    done = subprocess.run([*CLI, "pcap", "verify", "--json", capture], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    report = json.loads(done.stdout)
    diagnosis = report["diagnosis"]
    assert diagnosis["malformed"] == 0 and diagnosis["wrong checksum"] == 0
    if mode == "segment":
        assert diagnosis["correct"] > 5 * MIB // 1448 and diagnosis["unsegmented LSO send"] == 0
    else:
        assert diagnosis["unsegmented LSO send"] > 0 and diagnosis["left for offload"] > 0
    if shutil.which("tshark") is None:
        return
    fields = subprocess.run(
        ["tshark", "-r", capture, "-T", "fields", "-e", "frame.packet_flags_direction",
         "-e", "frame.comment"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout.splitlines()  # fmt: skip
    directions = {line.split("\t")[0] for line in fields}
    assert directions == {"0x00000001", "0x00000002"}  # inbound (B -> A), outbound (A -> B)
    comments = [line.split("\t", 1)[1] for line in fields if line.split("\t", 1)[1:] != [""]]
    assert len(comments) >= 2 and "a: TUNSETOFFLOAD 0" in comments[-1]


def test_tap_up_in_its_own_namespace(tmp_path: Any) -> None:
    namespace = f"{netns.PREFIX}{os.getpid()}t"
    sock = str(tmp_path / "tap.sock")
    proc = subprocess.Popen(
        [*CLI, "tap", "up", "ndot0", "--netns", namespace, "--socket", sock, "--json",
         "--profile", "virtio-net"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())["ready"]
        assert ready["namespace"] == namespace and ready["device"] == "ndot0"
        caps = call(sock, {"op": "caps"})["results"][0]
        flags = caps["tunsetoffload"]
        features = device_features("ndot0", namespace)
        for bit, name in ETHTOOL_FEATURE.items():
            assert features[name] == bool(flags & bit), name
        answer = call(sock, {"op": "set", "oid": "OID_TCP_OFFLOAD_PARAMETERS",
                             "value": {"TCPIPv4Checksum": 1}})  # fmt: skip
        assert answer["results"][0]["tunsetoffload"] == 0
        assert device_features("ndot0", namespace)["tx-checksum-ip-generic"] is False
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert not netns.exists(namespace) and not os.path.exists(sock)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        remove_namespace(namespace)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

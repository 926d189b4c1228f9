"""``pcap verify`` / ``fix`` on a Dask cluster give exactly what one pass gives: the same
report and byte-identical output, on pcap and pcapng, when a piece boundary is a false sync,
when a worker is killed mid-run, and when the run is interrupted (no output, no temp file)."""

from __future__ import annotations

import io
import json
import os
import signal
import struct
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether

from ndis_offload.capture.analyze import Diagnosis
from ndis_offload.cli.main import main
from ndis_offload.cli.pcap import summary
from ndis_offload.errors import PacketError
from ndis_offload.io import distributed, pcap_jobs
from ndis_offload.io.cluster import ClusterSpec
from ndis_offload.io.pcap_jobs import Options
from ndis_offload.packet.checksum import pseudo_header_sum_ipv4

distributed_mod = pytest.importorskip("distributed", reason="the dask extra is not installed")

MAC: dict[str, Any] = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
PIECE = 256 << 10  # small pieces: many of them in a few-MB capture


def block(seed: int) -> list[bytes]:
    """Varied frames: SYNs announcing an MSS (so later pieces depend on earlier ones),
    frames above that MSS, checksums left for offload, IPv6, UDP, a VLAN tag."""
    frames: list[bytes] = []
    for flow in range(4):
        sport = 40000 + flow + seed * 16
        syn = (
            Ether(**MAC)
            / IP(src="10.0.0.2", dst="10.0.0.1")
            / TCP(sport=443, dport=sport, flags="SA", options=[("MSS", 1000 + flow * 100)])
        )
        frames.append(bytes(syn))
        for i in range(30):
            size = 200 + (i * 97 + flow * 31) % 1800
            pkt = Ether(**MAC) / IP(src="10.0.0.1", dst="10.0.0.2", id=i) / TCP(
                sport=sport, dport=443, flags="PA", seq=i * 3000
            ) / bytes(size)  # fmt: skip
            raw = bytearray(bytes(pkt))
            if i % 3 == 0:  # left for offload: IP checksum 0, TCP = pseudo-header sum
                raw[24:26] = b"\0\0"
                pseudo = pseudo_header_sum_ipv4(bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), 6,
                                                20 + size)  # fmt: skip
                struct.pack_into("!H", raw, 50, pseudo)
            frames.append(bytes(raw))
    frames.append(bytes(Ether(**MAC) / IPv6(src="2001:db8::1", dst="2001:db8::2")
                        / UDP(sport=1, dport=2) / bytes(300)))  # fmt: skip
    frames.append(bytes(Ether(**MAC) / Dot1Q(vlan=7) / IP(src="10.1.0.1", dst="10.1.0.2")
                        / UDP(sport=3, dport=4) / bytes(120)))  # fmt: skip
    return frames


def write(path: Path, fmt: str, repeats: int = 40) -> None:
    frames = [f for r in range(repeats) for f in block(r % 5)]
    if fmt == "pcap":
        out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, f in enumerate(frames):
            out += struct.pack("<IIII", 1_700_000_000 + i // 100, i % 1_000_000, len(f), len(f))
            out += f
    else:

        def blk(btype: int, body: bytes) -> bytes:
            body += bytes(-len(body) % 4)
            return (
                struct.pack("<II", btype, len(body) + 12) + body + struct.pack("<I", len(body) + 12)
            )

        out = bytearray(blk(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
        out += blk(1, struct.pack("<HHI", 1, 0, 65535))
        for i, f in enumerate(frames):
            out += blk(6, struct.pack("<IIIII", 0, i // 7, i, len(f), len(f)) + f)
    path.write_bytes(bytes(out))


def report(result: pcap_jobs.JobResult) -> str:
    return json.dumps(summary(result), sort_keys=True)


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_verify_equals_serial(
    tmp_path: Path, spec: ClusterSpec, fmt: str, monkeypatch: Any
) -> None:
    path = tmp_path / f"in.{fmt}"
    write(path, fmt)
    serial = pcap_jobs.verify(path)
    assert serial.analyzer.frames > 4000 and serial.analyzer.peer_mss
    no_fallback(monkeypatch)
    parted = distributed.verify(path, spec, piece_bytes=PIECE)
    assert report(parted) == report(serial)
    assert parted.total_bytes == path.stat().st_size


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
@pytest.mark.parametrize("everything", [False, True])
def test_fix_is_byte_identical(
    tmp_path: Path, spec: ClusterSpec, fmt: str, everything: bool, monkeypatch: Any
) -> None:
    path = tmp_path / f"in.{fmt}"
    write(path, fmt)
    serial = pcap_jobs.fix(path, tmp_path / "serial", everything=everything)
    no_fallback(monkeypatch)
    parted = distributed.fix(path, tmp_path / "parted", spec, everything=everything,
                             piece_bytes=PIECE)  # fmt: skip
    assert (tmp_path / "parted").read_bytes() == (tmp_path / "serial").read_bytes()
    assert (parted.changed, parted.frames_out) == (serial.changed, serial.frames_out)
    assert report(parted) == report(serial)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_fix_stops_at_the_first_malformed_frame_like_serial(
    tmp_path: Path, spec: ClusterSpec
) -> None:
    frames = [bytes(Ether(**MAC) / IP(src="1.1.1.1", dst="2.2.2.2") / UDP() / bytes(500))] * 4000
    bad = bytearray(frames[2500])
    bad[14] = 0x4F  # IHL 15: the IPv4 header claims 60 bytes of a 28-byte header + payload
    bad[16:18] = (30).to_bytes(2, "big")  # and a total length shorter than that header
    frames[2500] = bytes(bad)
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for i, f in enumerate(frames):
        out += struct.pack("<IIII", 1_700_000_000, i, len(f), len(f)) + f
    path = tmp_path / "in.pcap"
    path.write_bytes(bytes(out))
    with pytest.raises(PacketError) as serial:
        pcap_jobs.fix(path, tmp_path / "serial")
    with pytest.raises(PacketError) as parted:
        distributed.fix(path, tmp_path / "parted", spec, piece_bytes=PIECE)
    assert serial.value.frame_index == parted.value.frame_index == 2500
    assert (serial.value.offset, serial.value.reason) == (parted.value.offset, parted.value.reason)
    assert sorted(os.listdir(tmp_path)) == ["in.pcap"]


def test_false_sync_falls_back_to_one_pass(tmp_path: Path, spec: ClusterSpec) -> None:
    """Payloads full of lookalike record headers: whatever the sync picks, the answer is the
    serial one (a false boundary is detected and the run goes serial)."""
    fake = struct.pack("<IIII", 1_700_000_000, 5, 40, 40) + bytes(40)
    frames = [bytes(Ether(**MAC) / IP(src="1.1.1.1", dst="2.2.2.2") / UDP() / (fake * 20))] * 3000
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for i, f in enumerate(frames):
        out += struct.pack("<IIII", 1_700_000_000, i, len(f), len(f)) + f
    path = tmp_path / "fake.pcap"
    path.write_bytes(bytes(out))
    assert report(distributed.verify(path, spec, piece_bytes=PIECE)) == report(
        pcap_jobs.verify(path)
    )
    distributed.fix(path, tmp_path / "out", spec, everything=True, piece_bytes=PIECE)
    pcap_jobs.fix(path, tmp_path / "ref", everything=True)
    assert (tmp_path / "out").read_bytes() == (tmp_path / "ref").read_bytes()


def test_killed_worker_is_retried(tmp_path: Path, spec: ClusterSpec, cluster: Any) -> None:
    from distributed import Client

    path = tmp_path / "in.pcap"
    write(path, "pcap", repeats=120)
    serial = pcap_jobs.fix(path, tmp_path / "serial", everything=True)
    with Client(cluster.scheduler_address) as client:
        pids = list(client.run(os.getpid).values())
    killed = threading.Event()

    def progress(frames: int, nbytes: int) -> None:
        if not killed.is_set():
            killed.set()
            os.kill(pids[0], signal.SIGKILL)

    result = distributed.fix(path, tmp_path / "parted", spec, Options(progress=progress),
                             everything=True, piece_bytes=PIECE)  # fmt: skip
    assert killed.is_set()
    assert (tmp_path / "parted").read_bytes() == (tmp_path / "serial").read_bytes()
    assert result.changed == serial.changed


def test_interrupt_leaves_nothing(tmp_path: Path, spec: ClusterSpec) -> None:
    path = tmp_path / "in.pcap"
    write(path, "pcap")
    (tmp_path / "out").write_bytes(b"keep me")

    def progress(frames: int, nbytes: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        distributed.fix(path, tmp_path / "out", spec, Options(progress=progress),
                        piece_bytes=PIECE)  # fmt: skip
    assert (tmp_path / "out").read_bytes() == b"keep me"
    assert sorted(os.listdir(tmp_path)) == ["in.pcap", "out"]


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), console=Console(file=out, width=200))
    return code, out.getvalue()


def test_cli_workers_starts_a_local_cluster(tmp_path: Path) -> None:
    path = tmp_path / "in.pcap"
    write(path, "pcap", repeats=10)
    code, text = cli("pcap", "verify", str(path), "--json", "--workers", "2")
    ref_code, ref = cli("pcap", "verify", str(path), "--json")
    assert (code, json.loads(text)) == (ref_code, json.loads(ref))


def test_cli_scale_out_errors(tmp_path: Path, spec: ClusterSpec, monkeypatch: Any) -> None:
    path = tmp_path / "in.pcap"
    write(path, "pcap", repeats=1)
    code, text = cli("pcap", "coalesce", str(path), str(tmp_path / "o"), "--workers", "2")
    assert code == 2 and "only with --queues N" in text
    assert cli("pcap", "verify", str(path), "--workers", "-1")[0] == 2
    from ndis_offload.cli import pcap as cli_pcap

    monkeypatch.setattr(cli_pcap, "dask_available", lambda: False)
    code, text = cli("pcap", "verify", str(path), "--workers", "2")
    assert code == 2 and "ndis-offload[dask]" in text


def giant_block(seed: int) -> list[bytes]:
    """LSO sends (payloads far above the MSS the peer announced), some left for offload."""
    frames = block(seed)
    for flow in range(2):
        sport = 50000 + flow + seed * 4
        frames.append(
            bytes(
                Ether(**MAC)
                / IP(src="10.0.0.2", dst="10.0.0.1")
                / TCP(sport=443, dport=sport, flags="SA", options=[("MSS", 1200 + flow * 100)])
            )
        )
        for i in range(5):
            frames.append(
                bytes(
                    Ether(**MAC)
                    / IP(src="10.0.0.1", dst="10.0.0.2")
                    / TCP(sport=sport, dport=443, flags="PA", seq=i * 20000)
                    / bytes(9000 + i * 1111)
                )
            )
    return frames


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
@pytest.mark.parametrize("mss", [None, 1000])
def test_segment_is_byte_identical(
    tmp_path: Path, spec: ClusterSpec, fmt: str, mss: int | None, monkeypatch: Any
) -> None:
    path = tmp_path / f"in.{fmt}"
    write(path, fmt, repeats=30)
    extra = tmp_path / "giant.pcap"
    frames = [f for r in range(20) for f in giant_block(r)]
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for i, f in enumerate(frames):
        out += struct.pack("<IIII", 1_700_000_000, i, len(f), len(f)) + f
    extra.write_bytes(bytes(out))
    for source in (path, extra):
        serial = pcap_jobs.segment(source, tmp_path / "serial", mss=mss)
        monkeypatch.setattr(distributed, "_one_pass", None)
        parted = distributed.segment(source, tmp_path / "parted", spec, mss=mss,
                                     piece_bytes=PIECE)  # fmt: skip
        assert (tmp_path / "parted").read_bytes() == (tmp_path / "serial").read_bytes()
        assert (parted.changed, parted.frames_out) == (serial.changed, serial.frames_out)
        assert report(parted) == report(serial)
        monkeypatch.undo()
    assert serial.changed > 100
    assert sorted(os.listdir(tmp_path)) == sorted([path.name, "giant.pcap", "serial", "parted"])


# --- many input files as one job ------------------------------------------------------------

PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


def pcap_records(frames: list[bytes], first: int = 0) -> bytes:
    out = bytearray()
    for i, f in enumerate(frames, first):
        out += struct.pack("<IIII", 1_700_000_000 + i // 100, i % 1_000_000, len(f), len(f)) + f
    return bytes(out)


def split_files(tmp: Path, frames: list[bytes], cuts: list[int], fmt: str) -> list[Path]:
    """``frames`` cut at ``cuts`` into files ``tmp/in/NN.fmt`` (pcapng: each its own
    section, as rolling captures are)."""
    (tmp / "in").mkdir(exist_ok=True)
    bounds = [0, *sorted(set(cuts)), len(frames)]
    paths = []
    for n, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False)):
        path = tmp / "in" / f"{n:02d}.{fmt}"
        if fmt == "pcap":
            path.write_bytes(PCAP_HEADER + pcap_records(frames[a:b], a))
        else:
            write_ng(path, frames[a:b], a)
        paths.append(path)
    return paths


def write_ng(path: Path, frames: list[bytes], first: int = 0) -> None:
    def blk(btype: int, body: bytes) -> bytes:
        body += bytes(-len(body) % 4)
        return struct.pack("<II", btype, len(body) + 12) + body + struct.pack("<I", len(body) + 12)

    out = bytearray(blk(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
    out += blk(1, struct.pack("<HHI", 1, 0, 65535))
    for i, f in enumerate(frames, first):
        out += blk(6, struct.pack("<IIIII", 0, i // 7, i, len(f), len(f)) + f)
    path.write_bytes(bytes(out))


def joined(paths: list[Path], fmt: str, target: Path) -> Path:
    """The oracle's input: one file holding every record of ``paths`` in order (pcap: one
    header; pcapng: the files one after the other, a valid multi-section file)."""
    if fmt == "pcap":
        target.write_bytes(PCAP_HEADER + b"".join(p.read_bytes()[24:] for p in paths))
    else:
        target.write_bytes(b"".join(p.read_bytes() for p in paths))
    return target


def same_report(many: pcap_jobs.JobResult, one: pcap_jobs.JobResult) -> None:
    a, b = summary(many), summary(one)
    a.pop("files", None)
    a.pop("bytes"), b.pop("bytes")
    assert a == b


FLOWS_FRAMES = [f for r in range(12) for f in giant_block(r % 5)]


@settings(max_examples=12, deadline=None)
@given(cuts=st.lists(st.integers(1, len(FLOWS_FRAMES) - 1), min_size=1, max_size=4),
       fmt=st.sampled_from(["pcap", "pcapng"]))  # fmt: skip
def test_many_files_are_one_job(tmp_path_factory: Any, cuts: list[int], fmt: str) -> None:
    """Oracle: the serial tools on one file holding the same records. Flow state crosses
    files (an MSS announced in one file governs the next); segment's outputs, joined, are
    the serial output of the joined input; fix's outputs are each file's serial fix."""
    tmp = tmp_path_factory.mktemp("many")
    paths = split_files(tmp, FLOWS_FRAMES, cuts, fmt)
    whole = joined(paths, fmt, tmp / f"whole.{fmt}")
    many = distributed.verify(paths)
    assert isinstance(many, distributed.ManyResult)
    same_report(many, pcap_jobs.verify(whole))
    assert many.total_bytes == sum(p.stat().st_size for p in paths)
    assert [n for _, _, n in many.files] == [pcap_jobs.verify(p).analyzer.frames for p in paths]
    distributed.segment(paths, tmp / "seg")
    pcap_jobs.segment(whole, tmp / "seg-whole")
    outs = [tmp / "seg" / p.name for p in paths]
    assert joined(outs, fmt, tmp / "seg-joined").read_bytes() == (tmp / "seg-whole").read_bytes()
    distributed.fix(paths, tmp / "fix", everything=True)
    for p in paths:
        pcap_jobs.fix(p, tmp / "fix-one", everything=True)
        assert (tmp / "fix" / p.name).read_bytes() == (tmp / "fix-one").read_bytes()


def no_fallback(monkeypatch: Any) -> None:
    """Fail a test that would pass only by falling back to one pass."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the run fell back to one process")

    monkeypatch.setattr(distributed, "_local", refuse)
    monkeypatch.setattr(distributed, "_one_pass", refuse)


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_many_files_on_the_cluster(
    tmp_path: Path, spec: ClusterSpec, fmt: str, monkeypatch: Any
) -> None:
    frames = [f for r in range(40) for f in giant_block(r % 5)]
    paths = split_files(tmp_path, frames, [len(frames) // 3, len(frames) // 2 + 7], fmt)
    whole = joined(paths, fmt, tmp_path / f"whole.{fmt}")
    serial_frames = tmp_path / "one.jsonl"
    distributed.verify(whole, None, frames=serial_frames)
    reference = pcap_jobs.verify(whole)
    pcap_jobs.segment(whole, tmp_path / "seg-whole")
    no_fallback(monkeypatch)
    seen: list[int] = []
    counted: list[int] = []

    def progress(frames: int, nbytes: int) -> None:
        seen.append(nbytes)
        counted.append(frames)

    many = distributed.verify(paths, spec, Options(progress=progress),
                              frames=tmp_path / "many.jsonl", piece_bytes=PIECE)  # fmt: skip
    same_report(many, reference)
    assert (tmp_path / "many.jsonl").read_bytes() == serial_frames.read_bytes()
    total = sum(p.stat().st_size for p in paths)
    assert seen == sorted(seen) and seen[-1] == total and len(seen) > len(paths)
    # the bar counts frames too (each piece's, counted where its checks are)
    assert counted == sorted(counted) and max(counted) == reference.analyzer.frames
    distributed.segment(paths, tmp_path / "seg", spec, piece_bytes=PIECE)
    outs = [tmp_path / "seg" / p.name for p in paths]
    assert joined(outs, fmt, tmp_path / "j").read_bytes() == (tmp_path / "seg-whole").read_bytes()
    leftovers = [p for p in tmp_path.rglob("*") if ".tmp" in p.name or ".parts" in p.name]
    assert not leftovers


def test_verify_frames_on_the_cluster_is_byte_identical(tmp_path: Path, spec: ClusterSpec) -> None:
    path = tmp_path / "in.pcapng"
    write(path, "pcapng", repeats=30)
    code, _ = cli("pcap", "verify", str(path), "--frames", str(tmp_path / "one.jsonl"), "-q")
    code2, _ = cli("pcap", "verify", str(path), "--frames", str(tmp_path / "two.jsonl"), "-q",
                   "--scheduler", spec.scheduler or "")  # fmt: skip
    assert code == code2
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()
    distributed.verify(path, spec, frames=tmp_path / "three.jsonl", piece_bytes=PIECE)
    assert (tmp_path / "three.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()


def test_an_error_in_a_later_file_names_that_file(tmp_path: Path, spec: ClusterSpec) -> None:
    frames = [bytes(Ether(**MAC) / IP(src="1.1.1.1", dst="2.2.2.2") / UDP() / bytes(500))] * 3000
    bad = bytearray(frames[2500])
    bad[14] = 0x4F
    bad[16:18] = (30).to_bytes(2, "big")
    frames[2500] = bytes(bad)
    paths = split_files(tmp_path, frames, [1000], "pcap")
    with pytest.raises(PacketError) as alone:
        pcap_jobs.fix(paths[1], tmp_path / "alone")
    for where in (None, spec):
        with pytest.raises(distributed.InputError) as many:
            distributed.fix(paths, tmp_path / "out", where, piece_bytes=PIECE)
        assert many.value.path == str(paths[1])
        assert many.value.frame_index == alone.value.frame_index == 1500
        assert (many.value.offset, many.value.reason) == (alone.value.offset, alone.value.reason)
    assert not list((tmp_path / "out").iterdir())
    code, text = cli("pcap", "fix", str(tmp_path / "in"), str(tmp_path / "out2"), "-q")
    assert code == 2 and f"{paths[1]}: frame 1501 at offset" in text


def test_cli_many_inputs(tmp_path: Path) -> None:
    frames = [f for r in range(10) for f in giant_block(r % 5)]
    paths = split_files(tmp_path, frames, [100, 400], "pcap")
    whole = joined(paths, "pcap", tmp_path / "whole.pcap")
    code, text = cli("pcap", "verify", str(tmp_path / "in"), "--json")
    ref_code, ref = cli("pcap", "verify", str(whole), "--json")
    got, want = json.loads(text), json.loads(ref)
    assert [f["first_frame"] for f in got.pop("files")] == [1, 101, 401]
    got.pop("bytes"), want.pop("bytes")
    assert (code, got) == (ref_code, want)
    code, text = cli("pcap", "stats", str(tmp_path / "in" / "*.pcap"))
    assert code in (0, 1) and "3 input files" in text
    code, _ = cli("pcap", "segment", str(tmp_path / "in" / "0[12].pcap"), str(tmp_path / "o"))
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["01.pcap", "02.pcap"]
    code, _ = cli("pcap", "fix", str(tmp_path / "in" / "0[1].pcap"), str(tmp_path / "f"))
    pcap_jobs.fix(paths[1], tmp_path / "f1.pcap")  # a glob: the output is a directory
    assert (tmp_path / "f" / "01.pcap").read_bytes() == (tmp_path / "f1.pcap").read_bytes()
    for argv, why in [
        (("verify", str(tmp_path / "nothing-*.pcap")), "matches no file"),
        (("fix", str(tmp_path / "in"), str(tmp_path / "in")), "directory of input"),
        (("fix", str(tmp_path / "in"), str(whole)), "must be a directory"),
        (("coalesce", str(tmp_path / "in"), str(tmp_path / "c")), "one input file"),
    ]:
        code, text = cli("pcap", *argv)
        assert code == 2 and why in text, (argv, text)


def test_pieces_of_many_chunks(tmp_path: Path, spec: ClusterSpec, monkeypatch: Any) -> None:
    """Pieces read in several chunks each: frame numbers (notable frames, --frames) and the
    cut decisions stay those of one pass."""
    path = tmp_path / "in.pcap"
    frames = [f for r in range(30) for f in giant_block(r % 5)]
    path.write_bytes(PCAP_HEADER + pcap_records(frames))
    serial = pcap_jobs.verify(path)
    distributed.verify(path, None, frames=tmp_path / "one.jsonl")
    pcap_jobs.segment(path, tmp_path / "serial")
    no_fallback(monkeypatch)
    small = Options(chunk_bytes=32 << 10)
    parted = distributed.verify(path, spec, small, frames=tmp_path / "two.jsonl",
                                piece_bytes=PIECE * 2)  # fmt: skip
    assert report(parted) == report(serial) and len(serial.analyzer.notable) > 100
    assert (tmp_path / "two.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()
    distributed.segment(path, tmp_path / "parted", spec, small, piece_bytes=PIECE * 2)
    assert (tmp_path / "parted").read_bytes() == (tmp_path / "serial").read_bytes()


def test_interrupting_many_files_leaves_nothing(tmp_path: Path, spec: ClusterSpec) -> None:
    frames = [f for r in range(30) for f in giant_block(r % 5)]
    paths = split_files(tmp_path, frames, [500, 900], "pcapng")
    (tmp_path / "out").mkdir()
    (tmp_path / "work").mkdir()
    (tmp_path / "out" / paths[0].name).write_bytes(b"keep me")
    calls: list[int] = []

    def progress(frames: int, nbytes: int) -> None:
        calls.append(nbytes)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        distributed.segment(paths, tmp_path / "out", spec, Options(progress=progress),
                            piece_bytes=PIECE, work_dir=tmp_path / "work")  # fmt: skip
    assert [p.name for p in (tmp_path / "out").iterdir()] == [paths[0].name]
    assert (tmp_path / "out" / paths[0].name).read_bytes() == b"keep me"
    assert not list((tmp_path / "work").iterdir())
    distributed.segment(paths, tmp_path / "out", spec, piece_bytes=PIECE,
                        work_dir=tmp_path / "work")  # fmt: skip
    assert not list((tmp_path / "work").iterdir())
    pcap_jobs.segment(paths[0], tmp_path / "one")
    assert (tmp_path / "out" / paths[0].name).read_bytes() == (tmp_path / "one").read_bytes()


def test_a_second_pcapng_section_sends_the_job_to_one_pass(
    tmp_path: Path, spec: ClusterSpec
) -> None:
    """Pieces after a new section would be read with the first section's interfaces (here
    Ethernet where the second section is raw IP): detected, the job runs in one pass."""
    eth = [f for r in range(10) for f in block(r % 5)]
    raw = [f[14:] for f in eth if f[12:14] == b"\x08\x00"]
    first, second = tmp_path / "a.pcapng", tmp_path / "b.pcapng"
    write_ng(first, eth)
    data = bytearray()
    write_ng(second, raw)
    data = bytearray(second.read_bytes())
    struct.pack_into("<H", data, 28 + 8, 101)  # the IDB's link type: LINKTYPE_RAW
    path = tmp_path / "two.pcapng"
    path.write_bytes(first.read_bytes() + bytes(data))
    serial = pcap_jobs.verify(path)
    assert serial.analyzer.frames == len(eth) + len(raw)
    assert serial.analyzer.totals[Diagnosis.UNCHECKED] == 0  # raw IP was read as raw IP
    assert report(distributed.verify(path, spec, piece_bytes=PIECE)) == report(serial)


def test_the_carried_state_pickles_to_itself(tmp_path: Path) -> None:
    """The analyzer state a piece hands the next (as arrays, not one object per flow)."""
    import pickle

    path = tmp_path / "in.pcap"
    write(path, "pcap", repeats=10)
    result = pcap_jobs.verify(path)
    again = pickle.loads(pickle.dumps(result.analyzer))
    a, b = result.analyzer, again
    assert list(a.flows.items()) == list(b.flows.items()) and a.peer_mss == b.peer_mss
    assert (a.totals, a.notable, a.frames) == (b.totals, b.notable, b.frames)
    assert (a.sizes_after == b.sizes_after).all() and a.other_flows == b.other_flows

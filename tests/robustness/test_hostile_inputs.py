"""Bad input gets one clear line and the documented exit code (issue 13, items 4, 5, 7, 8)."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import dpkt
import pytest
from robust_support import pcap_of, pcapng_section, reads_back, run_cli, sample_frames

from ndis_offload.cli.errors import EXIT_CODES
from ndis_offload.io import capture
from ndis_offload.io.capture import MAX_CHUNK_RECORDS, CaptureReader, Packet
from ndis_offload.io.pcap_jobs import Options, verify

# -- --keep-going is honest --------------------------------------------------------------------


def _record_offsets(data: bytes) -> list[int]:
    pos, out = 24, []
    while pos < len(data):
        out.append(pos)
        pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
    return out


def _datas(path: Path) -> list[bytes]:
    return [p.data for p in CaptureReader(io.BytesIO(path.read_bytes())) if isinstance(p, Packet)]


def test_pcap_keep_going_resynchronises_after_a_damaged_record(tmp_path: Path) -> None:
    frames = sample_frames() * 3
    data = bytearray(pcap_of(frames))
    at = _record_offsets(bytes(data))[5]
    data[at + 8 : at + 12] = struct.pack("<I", 0x7FFFFFFF)  # captured length of frame 6
    src = tmp_path / "in.pcap"
    src.write_bytes(bytes(data))
    out = tmp_path / "out.pcap"
    code, _, err = run_cli("pcap", "fix", str(src), str(out))
    assert code == 2 and "frame 6" in err and f"offset {at}" in err and "--keep-going" in err
    code, text, _ = run_cli("pcap", "fix", "--keep-going", str(src), str(out))
    assert code == 1, text
    assert f"frame 6 at offset {at}" in text and "skipped bytes" in text
    assert f"next valid record at offset {at + 16 + len(frames[5])}" in text
    assert reads_back(out) == len(frames) - 1  # only the damaged record is gone
    whole = tmp_path / "whole.pcap"
    whole.write_bytes(pcap_of(frames))
    assert run_cli("pcap", "fix", str(whole), str(tmp_path / "fixed.pcap"))[0] == 0
    fixed = _datas(tmp_path / "fixed.pcap")
    assert _datas(out) == fixed[:5] + fixed[6:]
    code, text, _ = run_cli("pcap", "verify", "--json", "--keep-going", str(src))
    report = json.loads(text)
    assert code == 1 and report["capture_error_count"] == 1 and report["frames_read"] == 23


def test_pcap_garbage_inserted_between_records(tmp_path: Path) -> None:
    frames = sample_frames()
    data = pcap_of(frames)
    cut = _record_offsets(data)[3]
    damaged = data[:cut] + bytes(range(256)) * 40 + data[cut:]
    src = tmp_path / "in.pcap"
    src.write_bytes(damaged)
    for tool in ("segment", "coalesce"):
        code, text, _ = run_cli("pcap", tool, "--keep-going", str(src), str(tmp_path / "o.pcap"))
        assert code == 1 and f"frame 4 at offset {cut}" in text, text
        assert f"({256 * 40} bytes)" in text
    assert reads_back(tmp_path / "o.pcap") >= len(frames)


def test_pcapng_damaged_block_is_skipped_by_its_neighbours(tmp_path: Path) -> None:
    frames = sample_frames()
    data = bytearray(pcapng_section(frames))
    epbs = [i for i in range(0, len(data) - 4, 4) if data[i : i + 4] == b"\x06\x00\x00\x00"]
    data[epbs[2] + 4] ^= 0x01  # block length no longer a multiple of 4
    src = tmp_path / "in.pcapng"
    src.write_bytes(bytes(data))
    out = tmp_path / "out.pcapng"
    code, text, _ = run_cli("pcap", "fix", "--keep-going", str(src), str(out))
    assert code == 1 and f"offset {epbs[2]}" in text and "skipped bytes" in text
    assert reads_back(out) == len(frames) - 1


def test_pcapng_damaged_section_header_never_replaces_the_output(tmp_path: Path) -> None:
    """One flipped byte in the only section header: nothing is readable, so the existing
    output stays; with a second section, --keep-going resumes there."""
    data = bytearray(pcapng_section(sample_frames()))
    data[8] ^= 0xFF  # byte-order magic
    src = tmp_path / "in.pcapng"
    src.write_bytes(bytes(data))
    out = tmp_path / "out.pcapng"
    out.write_bytes(b"existing output")
    for keep in ([], ["--keep-going"]):
        for tool in ("fix", "segment", "coalesce"):
            code, _, err = run_cli("pcap", tool, *keep, str(src), str(out))
            assert code == 2 and "byte-order magic" in err and "offset 0" in err, err
            assert ("section header" in err) == bool(keep)
            assert out.read_bytes() == b"existing output"
    src.write_bytes(bytes(data) + pcapng_section(sample_frames()))
    code, text, _ = run_cli("pcap", "fix", "--keep-going", str(src), str(out))
    assert code == 1 and "skipped bytes 0.." in text
    assert reads_back(out) == len(sample_frames())


def test_truncated_tail_is_reported_with_offset(tmp_path: Path) -> None:
    data = pcap_of(sample_frames())
    src = tmp_path / "in.pcap"
    src.write_bytes(data[:-5])
    code, text, _ = run_cli("pcap", "verify", "--keep-going", str(src))
    last = _record_offsets(data)[-1]
    assert code == 1 and f"frame {len(sample_frames())} at offset {last}" in text


# -- one error path ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ("pcap", "verify", "--json", "missing.pcap"),
        ("pcap", "stats", "--json", "missing.pcap"),
        ("demo", "--json", "--profile", "NOPE"),
        ("caps", "--json", "--profile", "NOPE"),
        ("conformance", "--json", "--variant", "NOPE"),
        ("conformance", "--json", "--miniport", "no colon here"),
        ("spec", "--json", "--struct", "NOPE"),
        ("run", "--json", "missing.json"),
        ("pcap", "verify", "--json", "--mtu", "0", "x.pcap"),
    ],
)
def test_json_errors_are_json_on_stdout_and_a_line_on_stderr(argv: tuple[str, ...]) -> None:
    code, out, err = run_cli(*argv)
    assert code == 2
    assert json.loads(out)["error"]["exit_code"] == 2
    assert err.startswith("ndis-offload") and "error:" in err and "Traceback" not in err
    assert json.loads(out)["error"]["message"].split(":")[0] in err


def test_names_from_input_are_printed_literally(tmp_path: Path) -> None:
    scenario = tmp_path / "s.json"
    names = ["[/]", "[bold]x", "a\x1b[31mred", ":smile:", "m:C"]
    steps: list[dict[str, object]] = [{"bind": n} for n in names]
    steps.append({"query": "OID_TCP_OFFLOAD_CURRENT_CONFIG", "by": "[/]"})
    scenario.write_text(json.dumps({"steps": steps}))
    code, out, err = run_cli("run", str(scenario))
    assert code == 0, err
    assert "[/]" in out and "[bold]x" in out and ":smile:" in out and "😄" not in out
    assert "\x1b" not in out and "a\\x1b[31mred" in out
    code, _, err = run_cli("conformance", "--miniport", "os:smile:")
    assert code == 2 and "os:smile:" in err and "😄" not in err


def test_deeply_nested_scenario_is_bad_json(tmp_path: Path) -> None:
    scenario = tmp_path / "deep.json"
    scenario.write_text("[" * 10_000 + "]" * 10_000)
    code, _, err = run_cli("run", str(scenario))
    assert code == 2 and "bad JSON" in err
    scenario.write_text(json.dumps({"steps": [{"expect": {"a": [[[[[[[[1]]]]]]]]}}]}))
    code, _, err = run_cli("run", str(scenario))
    assert code in (1, 2) and "Traceback" not in err


# -- checked numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "valid"),
    [
        (("pcap", "verify", "--mtu", "0", "x"), "68..65535"),
        (("pcap", "verify", "--mtu", "-1", "x"), "68..65535"),
        (("pcap", "verify", "--mtu", "20", "x"), "68..65535"),
        (("pcap", "verify", "--mtu", "65536", "x"), "68..65535"),
        (("pcap", "verify", "--mtu", "1.5", "x"), "68..65535"),
        (("pcap", "verify", "--flows", "-1", "x"), "0..1048576"),
        (("pcap", "segment", "--mss", "0", "x", "y"), "1..65535"),
        (("pcap", "segment", "--mss", "70000", "x", "y"), "1..65535"),
        (("pcap", "coalesce", "--timeout", "-1", "x", "y"), "[0, 3600]"),
        (("pcap", "coalesce", "--timeout", "nan", "x", "y"), "[0, 3600]"),
        (("pcap", "coalesce", "--timeout", "inf", "x", "y"), "[0, 3600]"),
    ],
)
def test_option_numbers_are_range_checked(argv: tuple[str, ...], valid: str) -> None:
    code, _, err = run_cli(*argv)
    assert code == 2 and valid in err, err


@pytest.mark.parametrize("oid", [2**70, -1, 2**32])
def test_scenario_numbers_are_never_wrapped(oid: int, tmp_path: Path) -> None:
    scenario = tmp_path / "s.json"
    scenario.write_text(json.dumps({"steps": [{"bind": "p"}, {"query": oid}]}))
    code, _, err = run_cli("run", str(scenario))
    assert code == 2 and "out of range" in err and "0xffffffff" in err
    scenario.write_text(json.dumps({"steps": [{"bind": "p", "header_size": -1}]}))
    assert run_cli("run", str(scenario))[0] == 2


def test_segment_names_the_mtu_not_the_capture(tmp_path: Path) -> None:
    src = tmp_path / "in.pcap"
    src.write_bytes(pcap_of(sample_frames()))
    code, _, err = run_cli("pcap", "segment", "--mtu", "68", str(src), str(tmp_path / "o.pcap"))
    assert code in (0, 2) and "MSS -" not in err


# -- smaller ones ------------------------------------------------------------------------------


@pytest.mark.parametrize("tool", ["fix", "segment", "coalesce"])
def test_timestamps_are_kept_exactly(tool: str, tmp_path: Path) -> None:
    """A microsecond field >= 10**6 and a 2106 second count come back unchanged."""
    frames = sample_frames()[:4]
    stamps = [(0xFFFFFFFF, 1_500_000), (0xFFFFFFFF, 999_999), (1, 2_000_000), (5, 0)]
    src = tmp_path / "in.pcap"
    src.write_bytes(pcap_of(frames, stamps=stamps))
    out = tmp_path / "out.pcap"
    code, _, err = run_cli("pcap", tool, "--timeout", "0", str(src), str(out)) if tool == \
        "coalesce" else run_cli("pcap", tool, str(src), str(out))  # fmt: skip
    assert code == 0, err
    data = out.read_bytes()
    got = [struct.unpack_from("<II", data, at) for at in _record_offsets(data)]
    assert got[0] == stamps[0] and got[-1] == stamps[-1]
    assert set(got) <= set(stamps)


def test_zero_length_records_keep_chunks_and_errors_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory per chunk is bounded by a record count, not only by bytes (1 M empty records
    in a 16 MB file once took 648 MB); errors kept are bounded too."""
    src = tmp_path / "zero.pcap"
    src.write_bytes(pcap_of([b""] * (3 * MAX_CHUNK_RECORDS + 5)))
    reader = CaptureReader(io.BytesIO(src.read_bytes()))
    sizes = [len(chunk) for chunk in reader.chunks()]
    assert max(sizes) == MAX_CHUNK_RECORDS and sum(sizes) == 3 * MAX_CHUNK_RECORDS + 5
    monkeypatch.setattr(capture, "MAX_CHUNK_RECORDS", 500)
    count = 3 * 500 + 5
    src.write_bytes(pcap_of([b""] * count))
    result = verify(src, Options(keep_going=True))
    assert result.frames_in == count and result.analyzer.frames == count
    code, text, _ = run_cli("pcap", "fix", "--keep-going", str(src), str(tmp_path / "o.pcap"))
    assert code == 1 and f"({count:,} frames read)" in text
    assert len(text.splitlines()) < 60  # the first 50 errors and a count, not 100,000 lines


def test_coalesce_reports_frames_read(tmp_path: Path) -> None:
    src = tmp_path / "in.pcap"
    src.write_bytes(pcap_of(sample_frames()))
    code, text, _ = run_cli("pcap", "coalesce", str(src), str(tmp_path / "o.pcap"))
    assert code == 0 and f"({len(sample_frames())} frames read)" in text


def test_unsupported_link_type_warns_once(tmp_path: Path) -> None:
    src = tmp_path / "user0.pcap"
    src.write_bytes(pcap_of(sample_frames(), linktype=147))  # LINKTYPE_USER0
    code, _, err = run_cli("pcap", "verify", str(src))
    assert code == 0 and err.count("warning") == 1 and "link type 147" in err
    code, out, err = run_cli("pcap", "verify", "--json", str(src))
    assert json.loads(out)["unsupported_linktypes"] == {"147": len(sample_frames())}
    for tool in ("fix", "segment", "coalesce"):  # passed through unchanged, with the warning
        code, _, err = run_cli("pcap", tool, str(src), str(tmp_path / "o.pcap"))
        assert code == 0 and err.count("warning") == 1, err
        assert (tmp_path / "o.pcap").read_bytes() == src.read_bytes()


def test_five_thousand_binds_render_compactly(tmp_path: Path) -> None:
    scenario = tmp_path / "binds.json"
    scenario.write_text(json.dumps({"steps": [{"bind": f"p{i}"} for i in range(5000)]}))
    code, out, _ = run_cli("run", str(scenario))
    assert code == 0 and "steps 1-4999: bind" in out and len(out.splitlines()) < 20


def test_documented_exit_codes() -> None:
    assert {0, 1, 2, 129, 130, 141, 143} == EXIT_CODES
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for code in sorted(EXIT_CODES):
        assert f"| {code} |" in readme


def test_dpkt_agrees_on_a_rewritten_capture(tmp_path: Path) -> None:
    src = tmp_path / "in.pcap"
    src.write_bytes(pcap_of(sample_frames()))
    out = tmp_path / "o.pcap"
    assert run_cli("pcap", "fix", str(src), str(out))[0] == 0
    theirs = [bytes(buf) for _, buf in dpkt.pcap.Reader(io.BytesIO(out.read_bytes()))]
    assert [len(b) for b in theirs] == [len(f) for f in sample_frames()]


def test_undecodable_and_control_characters_in_file_names(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 and an ESC in path names reach the terminal escaped."""
    import os
    import subprocess

    from robust_support import spawn

    src = os.fsencode(tmp_path) + b"/\xffin.pcap"
    Path(os.fsdecode(src)).write_bytes(pcap_of(sample_frames()))
    out = os.fsencode(tmp_path) + b"/\xffout\x1b.pcap"
    for argv, code in (((b"pcap", b"fix", src, out), 0), ((b"pcap", b"verify", out + b"x"), 2)):
        child = spawn(*[os.fsdecode(a) for a in argv], stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE)  # fmt: skip
        stdout, stderr = child.communicate(timeout=60)
        assert child.returncode == code, stderr
        assert b"\\xff" in stdout + stderr and b"\x1b" not in stdout + stderr
        assert b"Traceback" not in stderr


@pytest.mark.parametrize(
    "doc",
    [
        {"adapter": {"encapsulations": [-5]}, "steps": []},
        {"adapter": {"keywords": {"*LsoV2IPv4": 2**40}}, "steps": []},
        {"filters": [{"type": "fail", "oid": 2**66}], "steps": []},
        {"steps": [{"bind": "t", "header_size": 99_999_999_999}]},
        {"steps": [{"bind": "t"}, {"query": "OID_TCP_OFFLOAD_CURRENT_CONFIG", "length": -4}]},
        {
            "steps": [
                {"bind": "t"},
                {
                    "set": "OID_OFFLOAD_ENCAPSULATION",
                    "value": {"IPv4": {"Enabled": 1, "EncapsulationType": 2**70, "HeaderSize": 14}},
                },
            ]
        },
    ],
)
def test_every_scenario_number_is_checked(doc: dict[str, object], tmp_path: Path) -> None:
    scenario = tmp_path / "s.json"
    scenario.write_text(json.dumps(doc))
    code, _, err = run_cli("run", str(scenario))
    assert code == 2 and ("out of range" in err or "does not fit" in err), err

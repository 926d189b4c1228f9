"""Round trips, truncation, header validation and fuzzing for every NDIS structure."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ndis_offload.constants import objects as o
from ndis_offload.constants.status import NdisStatus
from ndis_offload.errors import DecodeError, EncodeError, TruncatedError
from ndis_offload.structs import (
    STRUCTS,
    NdisOffload,
    NdisOffloadEncapsulation,
    NdisOffloadParameters,
)
from ndis_offload.structs.codec import NdisStruct
from strategies import structs

IDS = [c.C_NAME or c.__name__ for c in STRUCTS]
VERSIONED = [c for c in STRUCTS if c.REVISION_SIZES]


@pytest.mark.parametrize("cls", STRUCTS, ids=IDS)
def test_roundtrip_every_structure(cls: type[NdisStruct]) -> None:
    @settings(max_examples=60)
    @given(structs(cls, valid=True))
    def check(obj: NdisStruct) -> None:
        data = obj.encode()
        assert cls.decode(data) == obj
        assert cls.decode(data).encode() == data

    check()


@pytest.mark.parametrize("cls", STRUCTS, ids=IDS)
def test_roundtrip_without_validation_keeps_any_value(cls: type[NdisStruct]) -> None:
    @settings(max_examples=40)
    @given(structs(cls, valid=False))
    def check(obj: NdisStruct) -> None:
        assert cls.decode(obj.encode(), validate=False) == obj

    check()


@pytest.mark.parametrize("cls", VERSIONED, ids=[c.C_NAME or "" for c in VERSIONED])
def test_revision_sizes_equal_sizeof_through_last_field(cls: type[NdisStruct]) -> None:
    layout = cls.layout()
    for revision, size in cls.REVISION_SIZES.items():
        assert layout.size_through(revision) == size, revision


def test_ndis_offload_revision_4_size_is_odd() -> None:
    assert o.NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_4 % 2 == 1


@pytest.mark.parametrize("cls", VERSIONED, ids=[c.C_NAME or "" for c in VERSIONED])
def test_every_truncated_prefix_is_rejected_with_bytes_needed(cls: type[NdisStruct]) -> None:
    data = cls().encode()
    for cut in range(len(data)):
        with pytest.raises(DecodeError) as info:
            cls.decode(data[:cut])
        err = info.value
        assert isinstance(err, TruncatedError)
        assert err.needed >= cut + 1
        assert err.status in (NdisStatus.BUFFER_TOO_SHORT, NdisStatus.INVALID_LENGTH)


def test_short_fixed_structure_is_invalid_length() -> None:
    from ndis_offload.structs import NdisTcpIpChecksumOffload

    with pytest.raises(TruncatedError) as info:
        NdisTcpIpChecksumOffload.decode(bytes(31))
    assert info.value.needed == 32
    assert info.value.status == NdisStatus.INVALID_LENGTH


def test_wrong_header_type_names_the_field() -> None:
    data = bytearray(NdisOffloadEncapsulation().encode())
    data[0] = 0x80
    with pytest.raises(DecodeError) as info:
        NdisOffloadEncapsulation.decode(bytes(data))
    assert info.value.field_path == "Header.Type"
    assert info.value.status == NdisStatus.INVALID_PARAMETER


def test_revision_zero_is_rejected() -> None:
    data = bytearray(NdisOffloadEncapsulation().encode())
    data[1] = 0
    with pytest.raises(DecodeError) as info:
        NdisOffloadEncapsulation.decode(bytes(data))
    assert info.value.field_path == "Header.Revision"


def test_size_below_revision_size_is_rejected() -> None:
    data = bytearray(NdisOffload().encode())
    struct.pack_into("<BH", data, 1, 3, o.NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_3 - 1)
    with pytest.raises(DecodeError) as info:
        NdisOffload.decode(bytes(data))
    assert info.value.field_path == "Header.Size"
    assert info.value.status == NdisStatus.INVALID_PARAMETER


def test_buffer_shorter_than_header_size_needs_header_size() -> None:
    data = NdisOffload().encode()
    with pytest.raises(TruncatedError) as info:
        NdisOffload.decode(data[:-1])
    assert info.value.needed == len(data)


def test_newer_revision_with_larger_size_reads_known_fields() -> None:
    params = NdisOffloadParameters(LsoV2IPv4=2)
    data = bytearray(params.encode() + bytes(12))
    struct.pack_into("<BH", data, 1, 9, len(data))
    decoded = NdisOffloadParameters.decode(bytes(data))
    assert decoded.LsoV2IPv4 == 2
    assert decoded.Header.Revision == 9


def test_older_revision_zeroes_newer_fields_on_decode() -> None:
    full = NdisOffloadParameters(RscIPv4=2).encode()
    data = bytearray(full)
    struct.pack_into("<BH", data, 1, 1, o.NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_1)
    assert NdisOffloadParameters.decode(bytes(data)).RscIPv4 == 0


def test_encoding_a_field_newer_than_the_revision_is_refused() -> None:
    params = NdisOffloadParameters(Header=NdisOffloadParameters.header_for(1), RscIPv4=2)
    with pytest.raises(EncodeError):
        params.encode()


def test_out_of_range_value_is_refused_on_encode() -> None:
    with pytest.raises(EncodeError):
        NdisOffloadParameters(LsoV1=256).encode()


def test_bad_enum_value_is_invalid_parameter_naming_field() -> None:
    data = bytearray(NdisOffloadParameters().encode())
    data[4] = 9  # IPv4Checksum
    with pytest.raises(DecodeError) as info:
        NdisOffloadParameters.decode(bytes(data))
    assert info.value.field_path == "IPv4Checksum"
    assert NdisOffloadParameters.decode(bytes(data), validate=False).IPv4Checksum == 9


def test_bad_enabled_value_names_ipv6_enabled() -> None:
    data = bytearray(NdisOffloadEncapsulation().encode())
    struct.pack_into("<I", data, 16, 7)
    with pytest.raises(DecodeError) as info:
        NdisOffloadEncapsulation.decode(bytes(data))
    assert info.value.field_path == "IPv6.Enabled"


@pytest.mark.parametrize("cls", STRUCTS, ids=IDS)
def test_arbitrary_bytes_raise_only_decode_error(cls: type[NdisStruct]) -> None:
    @settings(max_examples=300)
    @given(st.binary(max_size=cls.sizeof() + 8))
    def check(data: bytes) -> None:
        try:
            cls.decode(data)
        except DecodeError:
            pass

    check()


@pytest.mark.slow
@pytest.mark.parametrize("cls", VERSIONED, ids=[c.C_NAME or "" for c in VERSIONED])
def test_fuzz_100k_arbitrary_inputs(cls: type[NdisStruct]) -> None:
    """>= 100k cases per versioned structure, half with a plausible header."""

    @st.composite
    def inputs(draw: st.DrawFn) -> bytes:
        kind = draw(st.integers(0, 2))
        if kind == 0:  # arbitrary bytes
            return draw(st.binary(max_size=cls.sizeof() + 8))
        if kind == 1:  # a plausible header over arbitrary bytes
            body = draw(st.binary(max_size=cls.sizeof() + 8))
            rev = draw(st.integers(0, 9))
            size = draw(st.sampled_from([*cls.REVISION_SIZES.values(), len(body) + 4]))
            assert cls.OBJECT_TYPE is not None
            return struct.pack("<BBH", cls.OBJECT_TYPE, rev, size) + body
        # a valid encoding, mutated: flipped bytes, cut, or extended
        data = bytearray(draw(structs(cls, valid=True)).encode())
        for _ in range(draw(st.integers(0, 3))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        cut = draw(st.integers(0, len(data) + 8))
        return bytes(data[:cut]) + bytes(max(0, cut - len(data)))

    seen = {"cases": 0, "decoded": 0}

    @settings(max_examples=100_000, database=None)
    @given(inputs())
    def check(data: bytes) -> None:
        seen["cases"] += 1
        try:
            cls.decode(data)
            seen["decoded"] += 1
        except DecodeError:
            pass

    check()
    print(f"{cls.C_NAME}: {seen['cases']} fuzz cases, {seen['decoded']} decoded cleanly")
    assert seen["cases"] >= 100_000


def test_decode_unchecked_reads_like_a_c_driver_copy() -> None:
    params = NdisOffloadParameters(LsoV2IPv4=2, RscIPv4=2).encode()
    bad = bytearray(params)
    bad[0:4] = b"\x11\x09\x05\x00"  # wrong type, unknown revision, tiny size: all kept
    bad[4] = 9  # out-of-range IPv4Checksum: kept
    read = NdisOffloadParameters.decode_unchecked(bytes(bad), limit=22)
    assert (read.Header.Type, read.Header.Revision, read.Header.Size) == (0x11, 9, 5)
    assert read.IPv4Checksum == 9 and read.LsoV2IPv4 == 2
    assert read.RscIPv4 == 0  # beyond the 22-byte copy: zero-filled
    assert NdisOffloadParameters.decode_unchecked(b"").LsoV2IPv4 == 0

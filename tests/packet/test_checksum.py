"""RFC 1071 checksum: reference equality, batches, pseudo-headers, RFC 1624 updates."""

from __future__ import annotations

import random
from array import array
from unittest.mock import patch

import dpkt
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.utils import checksum as scapy_checksum

from ndis_offload.errors import PacketError
from ndis_offload.packet import checksum
from ndis_offload.packet.checksum import (
    batch_checksums,
    finish_udp,
    internet_checksum,
    ones_complement_sum,
    pseudo_header_sum_ipv4,
    pseudo_header_sum_ipv6,
    update_checksum,
    update_checksum_bytes,
)


def reference(data: bytes) -> int:
    """RFC 1071 done the obvious way."""
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def test_rfc1071_example() -> None:
    # RFC 1071 §3 example words 0001 f203 f4f5 f6f7: sum ddf2, checksum 220d.
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert ones_complement_sum(data) == 0xDDF2
    assert internet_checksum(data) == 0x220D


def test_odd_length_pads_with_zero() -> None:
    assert internet_checksum(b"\x12\x34\x56") == reference(b"\x12\x34\x56\x00")
    assert internet_checksum(b"\xab") == ~0xAB00 & 0xFFFF


def test_zero_and_all_ones() -> None:
    assert internet_checksum(b"") == 0xFFFF
    assert internet_checksum(bytes(64)) == 0xFFFF
    assert internet_checksum(b"\xff" * 64) == 0x0000


@given(st.binary(max_size=3000), st.integers(0, 7))
def test_checksum_matches_reference(data: bytes, skip: int) -> None:
    view = memoryview(data)[min(skip, len(data)) :]
    assert internet_checksum(view) == reference(bytes(view))


@given(st.binary(min_size=1, max_size=200))
def test_checksum_matches_scapy_and_dpkt(data: bytes) -> None:
    assert internet_checksum(data) == scapy_checksum(data) == dpkt.in_cksum(data)


def test_large_buffer() -> None:
    data = np.random.default_rng(7).integers(0, 256, 65537, dtype=np.uint8).tobytes()
    assert internet_checksum(data) == reference(data)


def reference_sum(data: bytes, initial: int = 0) -> int:
    """The ones' complement sum of big-endian words plus ``initial``, end-around carry."""
    total = initial + sum(
        int.from_bytes(data[i : i + 2].ljust(2, b"\0"), "big") for i in range(0, len(data), 2)
    )
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


_EDGES = [0, 1, 2, 3, 4, 5, 7, 8, 9, 255, 256, 257]
_EDGES += [checksum._SMALL + d for d in (-2, -1, 0, 1, 2, 3, 4)]
_EDGES += [65_535, 65_536, 65_537, 65_539, 131_071, 262_147]


@settings(max_examples=60, deadline=None)
@given(
    st.one_of(st.sampled_from(_EDGES), st.integers(0, 300_000)),
    st.sampled_from(["random", "zeros", "ones", "ones-then-one"]),
    st.integers(0, 0xFFFF),
    st.sampled_from([bytes, bytearray, memoryview]),
    st.randoms(use_true_random=False),
)
def test_checksum_any_length_equals_rfc1071(
    size: int, fill: str, initial: int, kind: type, rnd: random.Random
) -> None:
    """Both paths (one integer, the numpy reduction) and their boundary, odd lengths, data
    that maximises carries (all 0xFF), zeros (0 must stay 0) and buffers past 64 KiB against
    a plain-Python RFC 1071 sum, with and without an initial partial sum."""
    if fill == "random":
        data = rnd.randbytes(size)
    elif fill == "zeros":
        data = bytes(size)
    else:
        data = b"\xff" * size
        if fill == "ones-then-one" and size:
            data = data[:-1] + b"\x01"
    buf = kind(data) if kind is not memoryview else memoryview(bytearray(data))
    want = reference_sum(data, initial)
    assert ones_complement_sum(buf, initial) == want
    assert internet_checksum(buf, initial) == ~want & 0xFFFF
    assert internet_checksum(buf) == reference(data)


def test_checksum_of_wider_item_views() -> None:
    """A memoryview of 16-bit items is summed as its bytes in memory order."""
    words = array("H", range(400))
    assert internet_checksum(memoryview(words)) == reference(words.tobytes())
    ones = array("H", [0xFFFF]) * 40_000
    assert internet_checksum(memoryview(ones)) == reference(ones.tobytes()) == 0


@given(st.data())
def test_batch_matches_reference(data: st.DataObject) -> None:
    buf = data.draw(st.one_of(st.binary(max_size=300), st.sampled_from([bytes(77), b"\xff" * 91])))
    ranges = data.draw(
        st.lists(
            st.tuples(st.integers(0, len(buf)), st.integers(0, len(buf))).map(
                lambda t: (min(t), max(t) - min(t))
            ),
            max_size=20,
        )
    )
    offsets = [o for o, _ in ranges]
    lengths = [n for _, n in ranges]
    want = [reference(buf[o : o + n]) for o, n in ranges]
    for dense in (0, 1 << 40):  # both strategies: prefix sums, then reduceat
        with patch.object(checksum, "_DENSE", dense):
            assert batch_checksums(buf, offsets, lengths).tolist() == want


def test_batch_dense_ranges_equal_dpkt() -> None:
    """A capture chunk's shape: many overlapping ranges at every alignment (prefix sums)."""
    rng = np.random.default_rng(5)
    buf = rng.integers(0, 256, 60_001, dtype=np.uint8).tobytes()
    offsets = rng.integers(0, 60_000, 3000)
    lengths = np.minimum(rng.integers(0, 1600, 3000), 60_001 - offsets)
    got = batch_checksums(buf, offsets, lengths)
    assert got.tolist() == [
        dpkt.in_cksum(buf[o : o + n])
        for o, n in zip(offsets.tolist(), lengths.tolist(), strict=True)
    ]


def test_batch_many_frames_equals_dpkt() -> None:
    buf = np.random.default_rng(3).integers(0, 256, 1501 * 200, dtype=np.uint8).tobytes()
    offsets = np.arange(200) * 1501
    got = batch_checksums(buf, offsets, np.full(200, 1501))
    assert got.tolist() == [dpkt.in_cksum(buf[o : o + 1501]) for o in offsets.tolist()]


@given(
    st.integers(0, 70),
    st.integers(1, 80),
    st.integers(0, 9),
    st.integers(16, 40),
    st.none() | st.integers(0, 300),
    st.sampled_from(["random", "zeros", "ones"]),
    st.randoms(use_true_random=False),
)
def test_batch_strided_path_equals_general_and_reference(
    size: int,
    stride: int,
    first: int,
    count: int,
    last: int | None,
    fill: str,
    rnd: random.Random,
) -> None:
    """Ranges of one length (the last one perhaps of another) at a constant stride (any
    alignment, overlapping or with gaps, 1-3 trailing bytes) take the 2-D path; it must
    equal the general path and RFC 1071."""
    last_size = size if last is None else last
    total = first + stride * (count - 1) + max(size, last_size) + rnd.randrange(3)
    if fill == "random":
        buf = rnd.randbytes(total)
    else:
        buf = (b"\0" if fill == "zeros" else b"\xff") * total
    offsets = first + np.arange(count) * stride
    lengths = np.full(count, size)
    lengths[-1] = last_size
    strided = checksum._strided_sums(memoryview(buf), offsets, lengths)
    assert strided is not None
    general = checksum._general_sums(memoryview(buf), offsets, offsets + lengths)
    assert strided.tolist() == general.tolist()
    got = batch_checksums(buf, offsets, lengths)
    want = [
        reference(buf[o : o + n]) for o, n in zip(offsets.tolist(), lengths.tolist(), strict=True)
    ]
    assert got.tolist() == want


def test_batch_strided_path_declines_other_layouts() -> None:
    buf = bytes(range(256)) * 8
    offsets = np.arange(20) * 50
    assert checksum._strided_sums(memoryview(buf), offsets, np.full(20, 40)) is not None
    lengths = np.full(20, 40)
    lengths[-1] = 39  # the last range may differ
    assert checksum._strided_sums(memoryview(buf), offsets, lengths) is not None
    lengths[7] = 39
    assert checksum._strided_sums(memoryview(buf), offsets, lengths) is None
    uneven = offsets.copy()
    uneven[5] += 2
    assert checksum._strided_sums(memoryview(buf), uneven, np.full(20, 40)) is None
    got = batch_checksums(buf, uneven, lengths)
    assert got.tolist() == [reference(buf[o : o + n]) for o, n in zip(uneven, lengths, strict=True)]


def test_batch_rejects_out_of_range() -> None:
    with pytest.raises(PacketError) as info:
        batch_checksums(b"abcd", [0, 3], [2, 2])
    assert info.value.frame_index == 1


def test_pseudo_headers() -> None:
    src, dst = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    with_len = pseudo_header_sum_ipv4(src, dst, 6, 40)
    assert with_len == reference(src + dst + b"\0\x06\0\x28") ^ 0xFFFF
    assert pseudo_header_sum_ipv4(src, dst, 6, None) == (with_len - 40) % 0xFFFF
    s6, d6 = bytes(range(16)), bytes(range(16, 32))
    body = s6 + d6 + (70000).to_bytes(4, "big") + b"\0\0\0\x11"
    assert pseudo_header_sum_ipv6(s6, d6, 17, 70000) == reference(body) ^ 0xFFFF
    with pytest.raises(PacketError):
        pseudo_header_sum_ipv4(src, b"", 6, None)


@given(
    st.binary(min_size=20, max_size=20).map(bytearray), st.integers(0, 9), st.integers(0, 0xFFFF)
)
def test_incremental_update(data: bytearray, word: int, new: int) -> None:
    before = internet_checksum(data)
    old = int.from_bytes(data[2 * word : 2 * word + 2], "big")
    old_bytes = bytes(data[2 * word : 2 * word + 2])
    data[2 * word : 2 * word + 2] = new.to_bytes(2, "big")
    updated = update_checksum(before, old, new)
    # RFC 1624 may produce 0x0000 where recomputation gives 0xFFFF (and vice versa) only
    # when the summed data is all zero; compare as ones' complement values.
    assert updated % 0xFFFF == internet_checksum(data) % 0xFFFF
    assert update_checksum_bytes(before, old_bytes, new.to_bytes(2, "big")) == updated


def test_udp_zero_becomes_ffff() -> None:
    assert finish_udp(0xFFFF) == 0xFFFF
    assert finish_udp(0x1234) == ~0x1234 & 0xFFFF

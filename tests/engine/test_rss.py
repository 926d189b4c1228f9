"""The NDIS Toeplitz hash against the verification table of the NDIS page "Verifying the RSS
hash calculation" (learn.microsoft.com/windows-hardware/drivers/network/
verifying-the-rss-hash-calculation), the pseudocode of "RSS hashing functions", and the rules
of "RSS hashing types"."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ndis_offload.constants.rss import NdisHashType
from ndis_offload.engine.rss import (
    SYMMETRIC_KEY,
    VERIFICATION_KEY,
    FlowKeys,
    IndirectionTable,
    RssError,
    Toeplitz,
    hash_flows,
    hash_input,
    select_hash_type,
)
from rss_vectors import TABLE, reference_hash  # noqa: E402


def _addr(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


@pytest.mark.parametrize("dst, dport, src, sport, ip_only, with_tcp", TABLE)
def test_verification_table(
    dst: str, dport: int, src: str, sport: int, ip_only: int, with_tcp: int
) -> None:
    toeplitz = Toeplitz(VERIFICATION_KEY)
    assert toeplitz.hash(hash_input(_addr(src), _addr(dst))) == ip_only
    assert toeplitz.hash(hash_input(_addr(src), _addr(dst), sport, dport)) == with_tcp
    # and the trap: destination first gives a different answer
    assert toeplitz.hash(hash_input(_addr(dst), _addr(src), dport, sport)) != with_tcp


def test_verification_table_batched() -> None:
    """Every row of both tables through the batched path (hash_flows), as frames would be."""
    keys = FlowKeys.empty(len(TABLE))
    for row, (dst, dport, src, sport, _, _) in enumerate(TABLE):
        s, d = _addr(src), _addr(dst)
        keys.ip_version[row] = 4 if len(s) == 4 else 6
        keys.l4_proto[row] = 6
        keys.src[row, : len(s)] = np.frombuffer(s, np.uint8)
        keys.dst[row, : len(d)] = np.frombuffer(d, np.uint8)
        keys.src_ex[row] = keys.src[row]
        keys.dst_ex[row] = keys.dst[row]
        keys.sport[row], keys.dport[row] = sport, dport
    toeplitz = Toeplitz()
    tcp_types = NdisHashType.TCP_IPV4 | NdisHashType.TCP_IPV6
    hashes, types = hash_flows(keys, tcp_types, toeplitz)
    assert hashes.tolist() == [row[5] for row in TABLE]
    ip_types = NdisHashType.IPV4 | NdisHashType.IPV6
    hashes, types = hash_flows(keys, ip_types, toeplitz)
    assert hashes.tolist() == [row[4] for row in TABLE]
    assert types.tolist() == [NdisHashType.IPV4] * 5 + [NdisHashType.IPV6] * 3


@given(key=st.binary(min_size=5, max_size=40), data=st.data())
def test_table_equals_pseudocode(key: bytes, data: st.DataObject) -> None:
    toeplitz = Toeplitz(key)
    rows = data.draw(st.lists(st.binary(min_size=0, max_size=len(key) - 4), min_size=1, max_size=8))
    for row in rows:
        assert toeplitz.hash(row) == reference_hash(key, row)
    width = data.draw(st.integers(0, len(key) - 4))
    batch = data.draw(st.lists(st.binary(min_size=width, max_size=width), min_size=0, max_size=8))
    array = np.frombuffer(b"".join(batch), np.uint8).reshape(len(batch), width)
    assert toeplitz.hash_rows(array).tolist() == [reference_hash(key, b) for b in batch]


@given(
    src=st.binary(min_size=16, max_size=16), dst=st.binary(min_size=16, max_size=16),
    sport=st.integers(0, 0xFFFF), dport=st.integers(0, 0xFFFF), v4=st.booleans(),
)  # fmt: skip
def test_symmetric_key_keeps_both_directions_together(
    src: bytes, dst: bytes, sport: int, dport: int, v4: bool
) -> None:
    if v4:
        src, dst = src[:4], dst[:4]
    toeplitz = Toeplitz(SYMMETRIC_KEY)
    forward = toeplitz.hash(hash_input(src, dst, sport, dport))
    assert forward == toeplitz.hash(hash_input(dst, src, dport, sport))
    assert toeplitz.hash(hash_input(src, dst)) == toeplitz.hash(hash_input(dst, src))


def test_hash_type_selection_follows_rss_hashing_types() -> None:
    """ "RSS hashing types": transport hash when its flag is set and the packet carries it,
    address hash as the fallback, nothing when neither applies; fragments use the address
    hash even when the first fragment carries TCP."""
    both4 = NdisHashType.TCP_IPV4 | NdisHashType.IPV4
    assert select_hash_type(both4, 4, 6) == NdisHashType.TCP_IPV4
    assert select_hash_type(both4, 4, 17) == NdisHashType.IPV4
    assert select_hash_type(both4, 4, 6, is_fragment=True) == NdisHashType.IPV4
    assert select_hash_type(NdisHashType.TCP_IPV4, 4, 17) is None
    assert select_hash_type(NdisHashType.TCP_IPV4, 6, 6) is None
    assert select_hash_type(NdisHashType.UDP_IPV6 | NdisHashType.IPV6, 6, 17) == (
        NdisHashType.UDP_IPV6
    )
    ex = NdisHashType.TCP_IPV6_EX | NdisHashType.IPV6_EX | NdisHashType.TCP_IPV6
    assert select_hash_type(ex, 6, 6) == NdisHashType.TCP_IPV6_EX
    assert select_hash_type(ex, 6, 1) == NdisHashType.IPV6_EX
    assert select_hash_type(NdisHashType.IPV4, 0, 6) is None


@given(
    versions=st.lists(st.sampled_from([0, 4, 6]), min_size=1, max_size=30),
    protos=st.lists(st.sampled_from([1, 6, 17]), min_size=30, max_size=30),
    frags=st.lists(st.booleans(), min_size=30, max_size=30),
    enabled=st.integers(1, 0x1FF).map(lambda bits: NdisHashType(bits << 8)),
    seed=st.integers(0, 2**32 - 1),
)
def test_batched_equals_scalar(
    versions: list[int], protos: list[int], frags: list[bool], enabled: NdisHashType, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    n = len(versions)
    keys = FlowKeys(
        ip_version=np.array(versions, np.uint8),
        l4_proto=np.array(protos[:n], np.uint8),
        is_fragment=np.array(frags[:n], np.bool_),
        src=rng.integers(0, 256, (n, 16), dtype=np.uint8),
        dst=rng.integers(0, 256, (n, 16), dtype=np.uint8),
        src_ex=rng.integers(0, 256, (n, 16), dtype=np.uint8),
        dst_ex=rng.integers(0, 256, (n, 16), dtype=np.uint8),
        sport=rng.integers(0, 65536, n, dtype=np.uint16),
        dport=rng.integers(0, 65536, n, dtype=np.uint16),
    )
    toeplitz = Toeplitz()
    hashes, types = hash_flows(keys, enabled, toeplitz)
    for i in range(n):
        chosen = select_hash_type(enabled, versions[i], protos[i], frags[i])
        assert int(types[i]) == (0 if chosen is None else int(chosen))
        if chosen is None:
            assert hashes[i] == 0
            continue
        width = 4 if versions[i] == 4 else 16
        ex = chosen & (NdisHashType.IPV6_EX | NdisHashType.TCP_IPV6_EX | NdisHashType.UDP_IPV6_EX)
        src = (keys.src_ex if ex else keys.src)[i, :width].tobytes()
        dst = (keys.dst_ex if ex else keys.dst)[i, :width].tobytes()
        ports = chosen & ~(NdisHashType.IPV4 | NdisHashType.IPV6 | NdisHashType.IPV6_EX)
        data = hash_input(
            src, dst, int(keys.sport[i]) if ports else None, int(keys.dport[i]) if ports else None
        )
        assert int(hashes[i]) == reference_hash(VERIFICATION_KEY, data)


def test_indirection_table() -> None:
    table = IndirectionTable.round_robin(128, 3)
    hashes = np.array([0, 1, 2, 3, 127, 128, 0xFFFFFFFF], np.uint32)
    assert table.queue_of(hashes).tolist() == [0, 1, 2, 0, 127 % 3, 0, 127 % 3]
    with pytest.raises(RssError, match="power of 2"):
        IndirectionTable((0, 1, 2))
    with pytest.raises(RssError):
        IndirectionTable.round_robin(8, 0)


def test_bad_keys_and_inputs() -> None:
    with pytest.raises(RssError):
        Toeplitz(b"\x01\x02")
    with pytest.raises(RssError):
        Toeplitz(bytes(41))
    with pytest.raises(RssError, match="longer"):
        Toeplitz(bytes(8)).hash(bytes(5))
    with pytest.raises(RssError):
        hash_input(bytes(4), bytes(16))
    with pytest.raises(RssError):
        hash_input(bytes(4), bytes(4), 1, None)

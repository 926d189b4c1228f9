"""Hypothesis strategies that build any NDIS structure from its declared layout."""

from __future__ import annotations

from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

from ndis_offload.constants.offload import NdisEncapsulation
from ndis_offload.errors import DecodeError
from ndis_offload.structs.codec import NdisStruct, layout_of


def _leaf_strategy(
    owner: type[NdisStruct], name: str, max_value: int, valid: bool
) -> st.SearchStrategy[int]:
    if valid:
        if name in owner.BOOLEAN_FIELDS:
            return st.integers(0, 1)
        if name in owner.ENCAPSULATION_FIELDS:
            return st.integers(0, NdisEncapsulation.mask())
        if name in owner.RESERVED_FIELDS:
            return st.just(0)
        if name in owner.ENUM_FIELDS:
            return st.sampled_from(sorted(owner.ENUM_FIELDS[name]))
    return st.integers(0, max_value)


def _fields(cls: type[NdisStruct], valid: bool) -> st.SearchStrategy[Any]:
    layout = layout_of(cls)
    parts: dict[str, st.SearchStrategy[Any]] = {}
    for m in layout.members:
        if m.nested is not None:
            parts[m.name] = _fields(m.nested, valid)
        else:
            assert m.ctype is not None
            width = m.bits.width if m.bits is not None else m.ctype.bits
            parts[m.name] = _leaf_strategy(cls, m.name, (1 << width) - 1, valid)
    return st.builds(cls, **parts)


@st.composite
def structs(draw: st.DrawFn, cls: type[NdisStruct], valid: bool = True) -> NdisStruct:
    """Any instance of ``cls``; with a header, any known revision with its exact fields."""
    obj: NdisStruct = draw(_fields(cls, valid))
    if valid:
        try:
            obj._validate_all(cls.__name__)
        except DecodeError:
            assume(False)
    if not cls.REVISION_SIZES:
        return obj
    revision = draw(st.sampled_from(sorted(cls.REVISION_SIZES)))
    size = cls.REVISION_SIZES[revision] + draw(st.sampled_from([0, 0, 0, 4]))
    assert cls.OBJECT_TYPE is not None
    flat = obj.flatten()
    layout = layout_of(cls)
    for leaf in layout.leaves:
        if leaf.since > revision:
            flat[leaf.path] = 0
    flat["Header.Type"] = cls.OBJECT_TYPE
    flat["Header.Revision"] = revision
    flat["Header.Size"] = size
    rebuilt: NdisStruct = cls._from_flat(flat, "")
    return rebuilt

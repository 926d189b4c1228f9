"""One declaration drives decode, encode, size, offsets and bit positions of an NDIS structure.

A structure is a frozen dataclass whose fields are annotated with their C storage::

    @ndis_struct("NDIS_OBJECT_HEADER")
    @dataclass(frozen=True, slots=True)
    class NdisObjectHeader(NdisStruct):
        Type: Annotated[int, UCHAR] = 0
        Revision: Annotated[int, UCHAR] = 0
        Size: Annotated[int, USHORT] = 0

The layout follows the MSVC x64 rules the Windows headers are compiled with: natural
alignment, tail padding to the largest member, and bit fields packed least significant bit
first into a storage unit of their declared type, a new unit starting when the type changes
or the unit is full. ``Since(n)`` marks a field added in revision ``n``; the size of revision
``n`` is the end of its last field (``RTL_SIZEOF_THROUGH_FIELD``), as the
``NDIS_SIZEOF_*_REVISION_n`` macros define it.
"""

from __future__ import annotations

import struct
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar, Self, TypeVar, cast

from ndis_offload.constants.status import NdisStatus
from ndis_offload.errors import DecodeError, EncodeError, TruncatedError


@dataclass(frozen=True, slots=True)
class CType:
    """A C scalar type: its Windows name, ``struct`` format character and size."""

    name: str
    fmt: str
    size: int

    @property
    def bits(self) -> int:
        return self.size * 8


UCHAR = CType("UCHAR", "B", 1)
USHORT = CType("USHORT", "H", 2)
ULONG = CType("ULONG", "I", 4)
ULONG64 = CType("ULONG64", "Q", 8)


@dataclass(frozen=True, slots=True)
class Bits:
    """A C bit field ``<storage> Name : width``."""

    storage: CType
    width: int


@dataclass(frozen=True, slots=True)
class Since:
    """The structure revision that added a field."""

    revision: int


@dataclass(frozen=True, slots=True)
class Leaf:
    """One scalar or bit field, flattened to an absolute position inside the structure."""

    path: str
    offset: int
    ctype: CType
    bit_offset: int | None
    bit_width: int | None
    since: int

    @property
    def max_value(self) -> int:
        width = self.bit_width if self.bit_width is not None else self.ctype.bits
        return (1 << width) - 1

    @property
    def end(self) -> int:
        return self.offset + self.ctype.size


@dataclass(frozen=True, slots=True)
class Member:
    """A direct member of a structure: a scalar, a bit field or a nested structure."""

    name: str
    offset: int
    since: int
    ctype: CType | None = None
    bits: Bits | None = None
    bit_offset: int | None = None
    nested: type[NdisStruct] | None = None

    @property
    def size(self) -> int:
        if self.nested is not None:
            return layout_of(self.nested).size
        assert self.ctype is not None
        return self.ctype.size


@dataclass(frozen=True)
class Layout:
    """The computed layout of one structure type."""

    c_name: str | None
    members: tuple[Member, ...]
    size: int
    alignment: int
    leaves: tuple[Leaf, ...]
    units: tuple[tuple[int, CType], ...]
    unit_struct: struct.Struct
    leaf_unit: tuple[int, ...]
    views: tuple[tuple[str, type[NdisStruct]], ...] = ()

    def size_through(self, revision: int) -> int:
        """``RTL_SIZEOF_THROUGH_FIELD`` of the last member of ``revision``."""
        ends = [m.offset + m.size for m in self.members if m.since <= revision]
        return max(ends) if ends else 0

    def offsets(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        """``(dotted path, byte offset)`` for every member and nested member."""
        for m in self.members:
            path = f"{prefix}{m.name}"
            if m.bits is not None:
                continue
            yield path, m.offset
            if m.nested is not None:
                for sub, off in layout_of(m.nested).offsets(f"{path}."):
                    yield sub, m.offset + off
        for name, view_cls in self.views:
            yield f"{prefix}{name}", 0
            yield from layout_of(view_cls).offsets(f"{prefix}{name}.")

    def bit_fields(self, prefix: str = "") -> Iterator[tuple[str, int, int, int]]:
        """``(dotted path, byte offset of its storage unit, bit offset, width)`` per bit field,
        including those inside union views."""
        for m in self.members:
            path = f"{prefix}{m.name}"
            if m.bits is not None and m.bit_offset is not None:
                yield path, m.offset, m.bit_offset, m.bits.width
            elif m.nested is not None:
                for sub, off, bit, width in layout_of(m.nested).bit_fields(f"{path}."):
                    yield sub, m.offset + off, bit, width
        for name, view_cls in self.views:
            yield from layout_of(view_cls).bit_fields(f"{prefix}{name}.")


_LAYOUTS: dict[type[Any], Layout] = {}


def _annotation_parts(hint: Any) -> tuple[Any, tuple[Any, ...]]:
    if typing.get_origin(hint) is typing.Annotated:
        args = typing.get_args(hint)
        return args[0], tuple(args[1:])
    return hint, ()


def _build_layout(cls: type[NdisStruct]) -> Layout:
    hints = typing.get_type_hints(cls, include_extras=True)
    members: list[Member] = []
    offset = 0
    alignment = 1
    open_unit: tuple[CType, int, int] | None = None  # (storage, unit offset, bits used)
    for f in fields(cast(Any, cls)):
        base, extras = _annotation_parts(hints[f.name])
        since = next((e.revision for e in extras if isinstance(e, Since)), 1)
        bits = next((e for e in extras if isinstance(e, Bits)), None)
        ctype = next((e for e in extras if isinstance(e, CType)), None)
        if bits is not None:
            storage = bits.storage
            if open_unit and open_unit[0] == storage and open_unit[2] + bits.width <= storage.bits:
                unit_off, used = open_unit[1], open_unit[2]
            else:
                offset = _align(offset, storage.size)
                unit_off, used = offset, 0
                offset += storage.size
            open_unit = (storage, unit_off, used + bits.width)
            alignment = max(alignment, storage.size)
            members.append(
                Member(f.name, unit_off, since, ctype=storage, bits=bits, bit_offset=used)
            )
            continue
        open_unit = None
        if ctype is not None:
            offset = _align(offset, ctype.size)
            members.append(Member(f.name, offset, since, ctype=ctype))
            offset += ctype.size
            alignment = max(alignment, ctype.size)
        elif isinstance(base, type) and issubclass(base, NdisStruct):
            nested = layout_of(base)
            offset = _align(offset, nested.alignment)
            members.append(Member(f.name, offset, since, nested=base))
            offset += nested.size
            alignment = max(alignment, nested.alignment)
        else:
            raise TypeError(f"{cls.__name__}.{f.name}: no C storage declared")
    size = _align(offset, alignment)
    leaves = list(_flatten(members, "", 0))
    units: dict[int, CType] = {}
    for leaf in leaves:
        units.setdefault(leaf.offset, leaf.ctype)
    ordered = sorted(units.items())
    fmt = ["<"]
    pos = 0
    for unit_off, ct in ordered:
        fmt.append("x" * (unit_off - pos))
        fmt.append(ct.fmt)
        pos = unit_off + ct.size
    fmt.append("x" * (size - pos))
    index = {off: i for i, (off, _) in enumerate(ordered)}
    for name, view_cls in cls.VIEWS.items():
        if layout_of(view_cls).size > size:
            raise TypeError(f"{cls.__name__}: view {name} is larger than the union")
    return Layout(
        c_name=cls.C_NAME,
        members=tuple(members),
        size=size,
        alignment=alignment,
        leaves=tuple(leaves),
        units=tuple(ordered),
        unit_struct=struct.Struct("".join(fmt)),
        leaf_unit=tuple(index[leaf.offset] for leaf in leaves),
        views=tuple(cls.VIEWS.items()),
    )


def _flatten(
    members: list[Member] | tuple[Member, ...], prefix: str, base: int, since: int = 1
) -> Iterator[Leaf]:
    for m in members:
        path = f"{prefix}{m.name}"
        added = max(since, m.since)
        if m.nested is not None:
            yield from _flatten(layout_of(m.nested).members, f"{path}.", base + m.offset, added)
            continue
        assert m.ctype is not None
        width = m.bits.width if m.bits is not None else None
        yield Leaf(path, base + m.offset, m.ctype, m.bit_offset, width, added)


def _align(value: int, to: int) -> int:
    return (value + to - 1) // to * to


def layout_of(cls: type[NdisStruct]) -> Layout:
    """The (cached) layout of a structure class."""
    layout = _LAYOUTS.get(cls)
    if layout is None:
        layout = _LAYOUTS[cls] = _build_layout(cls)
    return layout


class NdisStruct:
    """Base of every binary-exact NDIS structure (see module docstring)."""

    C_NAME: ClassVar[str | None] = None
    OBJECT_TYPE: ClassVar[int | None] = None
    """``NDIS_OBJECT_HEADER.Type`` this structure carries, when it starts with a header."""
    REVISION_SIZES: ClassVar[dict[int, int]] = {}
    """``{revision: NDIS_SIZEOF_..._REVISION_n}`` for structures with a header."""
    VIEWS: ClassVar[dict[str, type[NdisStruct]]] = {}
    """For a C union: the named alternative views over the storage field ``Value``.

    The dataclass stores only ``Value`` (the widest member), so a union round-trips
    exactly; :meth:`view` reads one alternative, :meth:`from_view` builds from one.
    """

    def view(self, name: str) -> NdisStruct:
        """Decode the union alternative ``name`` from this union's ``Value`` bytes."""
        view_cls = type(self).VIEWS[name]
        raw = self.encode()
        return view_cls.decode(raw[: view_cls.sizeof()], validate=False)

    @classmethod
    def from_view(cls, view: NdisStruct) -> Self:
        """Build a union whose bytes are ``view`` encoded at offset 0."""
        raw = view.encode().ljust(cls.sizeof(), b"\0")
        return cls.decode(raw, validate=False)

    @classmethod
    def layout(cls) -> Layout:
        return layout_of(cls)

    @classmethod
    def sizeof(cls) -> int:
        """``sizeof`` the newest revision this package knows, with tail padding."""
        return layout_of(cls).size

    @property
    def name(self) -> str:
        return self.C_NAME or type(self).__name__

    # -- decoding ---------------------------------------------------------------------
    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview, *, validate: bool = True) -> Self:
        """Decode from the start of ``data``; raise only :class:`DecodeError`.

        A structure with an ``NDIS_OBJECT_HEADER`` is checked the way an NDIS component
        checks it: ``Type``, a known ``Revision`` (a newer one is read as the newest known),
        ``Size`` at least that revision's size, and the buffer at least ``Size`` long.
        Fields added after the claimed revision decode as zero. ``validate`` also checks
        field values (``validate_fields``).
        """
        view = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
        layout = layout_of(cls)
        c_name = cls.C_NAME or cls.__name__
        limit = layout.size
        revision = None
        if cls.REVISION_SIZES:
            revision, limit = cls._check_header(view, c_name)
        elif len(view) < layout.size:
            raise TruncatedError(
                f"buffer is {len(view)} bytes, {layout.size} needed",
                struct=c_name,
                needed=layout.size,
                status=NdisStatus.INVALID_LENGTH,
            )
        obj = cls._unpack(view, limit, revision)
        if validate:
            obj._validate_all(c_name)
        return obj

    @classmethod
    def decode_unchecked(
        cls, data: bytes | bytearray | memoryview, limit: int | None = None
    ) -> Self:
        """Read the way a C driver reads a zero-filled local copy of the first ``limit``
        bytes (default: ``sizeof``): every field, ``Header`` kept as sent, nothing checked.
        Real miniports (see ``stack/variants.py``) do exactly this."""
        view = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
        size = layout_of(cls).size
        return cls._unpack(view, size if limit is None else min(limit, size), None)

    @classmethod
    def _unpack(cls, view: memoryview, limit: int, revision: int | None) -> Self:
        """Fields from the first ``limit`` bytes; later fields, and fields newer than
        ``revision``, are zero."""
        layout = layout_of(cls)
        buf = bytes(view[:limit])
        if len(buf) < layout.size:
            buf = buf + bytes(layout.size - len(buf))
        units = layout.unit_struct.unpack_from(buf, 0)
        values: dict[str, int] = {}
        for leaf, ui in zip(layout.leaves, layout.leaf_unit, strict=True):
            raw = units[ui]
            if leaf.bit_offset is not None and leaf.bit_width is not None:
                raw = (raw >> leaf.bit_offset) & ((1 << leaf.bit_width) - 1)
            if leaf.end > limit or (revision is not None and leaf.since > revision):
                raw = 0
            values[leaf.path] = raw
        return cls._from_flat(values, "")

    @classmethod
    def _check_header(cls, view: memoryview, c_name: str) -> tuple[int, int]:
        if len(view) < 4:
            raise TruncatedError(
                f"buffer is {len(view)} bytes, too short for NDIS_OBJECT_HEADER",
                struct=c_name,
                field_path="Header",
                needed=cls.minimum_size(),
            )
        obj_type, revision, size = struct.unpack_from("<BBH", view, 0)
        if cls.OBJECT_TYPE is not None and obj_type != cls.OBJECT_TYPE:
            raise DecodeError(
                f"Type is 0x{obj_type:02X}, expected 0x{cls.OBJECT_TYPE:02X}",
                struct=c_name,
                field_path="Header.Type",
                offset=0,
            )
        if revision < 1:
            raise DecodeError(
                f"Revision {revision} is not a revision of {c_name}",
                struct=c_name,
                field_path="Header.Revision",
                offset=1,
            )
        known = max(cls.REVISION_SIZES)
        effective = min(revision, known)
        needed = cls.REVISION_SIZES[effective]
        if size < needed:
            raise DecodeError(
                f"Size {size} is smaller than revision {revision}'s size {needed}",
                struct=c_name,
                field_path="Header.Size",
                offset=2,
            )
        if len(view) < size:
            raise TruncatedError(
                f"buffer is {len(view)} bytes, Header.Size says {size}",
                struct=c_name,
                needed=size,
            )
        return effective, needed

    @classmethod
    def minimum_size(cls) -> int:
        """Bytes needed for the smallest revision (``BytesNeeded`` on a short buffer)."""
        if cls.REVISION_SIZES:
            return cls.REVISION_SIZES[min(cls.REVISION_SIZES)]
        return layout_of(cls).size

    @classmethod
    def _from_flat(cls, values: dict[str, int], prefix: str) -> Self:
        kwargs: dict[str, Any] = {}
        for m in layout_of(cls).members:
            key = f"{prefix}{m.name}"
            if m.nested is not None:
                kwargs[m.name] = m.nested._from_flat(values, f"{key}.")
            else:
                kwargs[m.name] = values[key]
        return cls(**kwargs)

    def _validate_all(self, c_name: str, prefix: str = "") -> None:
        for m in layout_of(type(self)).members:
            if m.nested is not None:
                child = getattr(self, m.name)
                child._validate_all(c_name, f"{prefix}{m.name}.")
        problem = self.validate_fields()
        if problem is not None:
            field, detail = problem
            raise DecodeError(detail, struct=c_name, field_path=f"{prefix}{field}")

    BOOLEAN_FIELDS: ClassVar[tuple[str, ...]] = ()
    """Fields that hold ``NDIS_OFFLOAD_SUPPORTED``/``NOT_SUPPORTED`` or a BOOLEAN: 0 or 1."""
    ENCAPSULATION_FIELDS: ClassVar[tuple[str, ...]] = ()
    """Fields that hold an ``NDIS_ENCAPSULATION_*`` bit mask."""
    RESERVED_FIELDS: ClassVar[tuple[str, ...]] = ()
    """Fields the headers reserve: must be zero."""
    ENUM_FIELDS: ClassVar[dict[str, frozenset[int]]] = {}
    """Fields restricted to a set of values."""

    def validate_fields(self) -> tuple[str, str] | None:
        """Return ``(field, problem)`` for the first invalid field value, else ``None``.

        The default checks the declarative tables above; override to add more.
        """
        from ndis_offload.constants.offload import NdisEncapsulation

        for name in self.BOOLEAN_FIELDS:
            if getattr(self, name) not in (0, 1):
                return name, f"{getattr(self, name)} is neither 0 nor 1"
        mask = NdisEncapsulation.mask()
        for name in self.ENCAPSULATION_FIELDS:
            value = getattr(self, name)
            if value & ~mask:
                return name, f"0x{value:X} has bits that are no NDIS_ENCAPSULATION_* value"
        for name in self.RESERVED_FIELDS:
            if getattr(self, name):
                return name, f"reserved field is {getattr(self, name)}, must be 0"
        for name, allowed in self.ENUM_FIELDS.items():
            if getattr(self, name) not in allowed:
                return name, f"{getattr(self, name)} is not one of {sorted(allowed)}"
        return None

    # -- encoding ---------------------------------------------------------------------
    def encode(self) -> bytes:
        """Encode to bytes: ``Header.Size`` bytes for a structure with a header, else ``sizeof``.

        Raises :class:`EncodeError` when a value does not fit its field, or when a field
        added after the header's revision is set (it would be lost on the wire).
        """
        cls = type(self)
        layout = layout_of(cls)
        c_name = cls.C_NAME or cls.__name__
        flat = self.flatten()
        revision = None
        out_size = layout.size
        if cls.REVISION_SIZES:
            header = flat
            revision = header["Header.Revision"]
            out_size = header["Header.Size"]
        units = [0] * len(layout.units)
        for leaf, ui in zip(layout.leaves, layout.leaf_unit, strict=True):
            value = flat[leaf.path]
            if not isinstance(value, int) or value < 0 or value > leaf.max_value:
                raise EncodeError(
                    f"{c_name}.{leaf.path} = {value!r} does not fit {leaf.ctype.name}"
                    + (f":{leaf.bit_width}" if leaf.bit_width else "")
                )
            if value and revision is not None and leaf.since > revision:
                raise EncodeError(
                    f"{c_name}.{leaf.path} is set but was added in revision {leaf.since}, "
                    f"after Header.Revision {revision}"
                )
            if leaf.bit_offset is not None:
                units[ui] |= value << leaf.bit_offset
            else:
                units[ui] = value
        body = layout.unit_struct.pack(*units)
        if out_size <= len(body):
            if revision is not None:
                for leaf in layout.leaves:
                    if leaf.end > out_size and flat[leaf.path]:
                        raise EncodeError(
                            f"{c_name}.{leaf.path} is set but lies beyond Header.Size {out_size}"
                        )
            return body[:out_size]
        return body + bytes(out_size - len(body))

    def flatten(self) -> dict[str, int]:
        """``{dotted field path: integer value}`` for every leaf field."""
        out: dict[str, int] = {}
        self._flatten_into(out, "")
        return out

    def _flatten_into(self, out: dict[str, int], prefix: str) -> None:
        for m in layout_of(type(self)).members:
            value = getattr(self, m.name)
            if m.nested is not None:
                value._flatten_into(out, f"{prefix}{m.name}.")
            else:
                out[f"{prefix}{m.name}"] = value

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready nested dict keyed by the NDIS field names."""
        out: dict[str, Any] = {}
        for m in layout_of(type(self)).members:
            value = getattr(self, m.name)
            out[m.name] = value.to_dict() if m.nested is not None else value
        return out

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], *, resolve: Callable[[str, Any], int] | None = None
    ) -> Self:
        """Build from a (partial) nested dict; missing fields are zero.

        ``resolve(field_path, value)`` turns symbolic values (constant names) into ints.
        """
        return cls._from_dict(data, "", resolve)

    @classmethod
    def _from_dict(
        cls, data: dict[str, Any], prefix: str, resolve: Callable[[str, Any], int] | None
    ) -> Self:
        if not isinstance(data, dict):
            raise EncodeError(
                f"{cls.C_NAME or cls.__name__}{'.' + prefix if prefix else ''}: "
                f"expected an object, got {data!r}"
            )
        known = {m.name: m for m in layout_of(cls).members}
        unknown = set(data) - set(known)
        if unknown:
            raise EncodeError(
                f"{cls.C_NAME or cls.__name__}: unknown field(s) {', '.join(sorted(unknown))}"
            )
        kwargs: dict[str, Any] = {}
        for name, m in known.items():
            path = f"{prefix}{name}"
            if m.nested is not None:
                kwargs[name] = m.nested._from_dict(data.get(name, {}), f"{path}.", resolve)
            else:
                raw = data.get(name, 0)
                value = resolve(path, raw) if resolve is not None else raw
                if isinstance(value, bool) or not isinstance(value, int):
                    raise EncodeError(f"{path}: expected an integer, got {raw!r}")
                kwargs[name] = value
        return cls(**kwargs)

    @classmethod
    def from_int(cls, value: int) -> Self:
        """Decode a structure that is one little-endian integer (an NBL info word)."""
        size = cls.sizeof()
        if not 0 <= value < 1 << (8 * size):
            raise DecodeError(
                f"0x{value:X} does not fit in {size} bytes", struct=cls.C_NAME or cls.__name__
            )
        return cls.decode(value.to_bytes(size, "little"), validate=False)

    def to_int(self) -> int:
        """The structure's bytes as one little-endian integer (an NBL info word)."""
        return int.from_bytes(self.encode(), "little")

    def evolve(self, **changes: Any) -> Self:
        """A copy with some fields replaced (``dataclasses.replace``)."""
        return replace(cast(Any, self), **changes)  # type: ignore[no-any-return]


S = TypeVar("S", bound=type[NdisStruct])


def ndis_struct(c_name: str | None) -> Callable[[S], S]:
    """Class decorator: record the C name and compute the layout eagerly (fail at import)."""

    def wrap(cls: S) -> S:
        cls.C_NAME = c_name
        layout_of(cls)
        return cls

    return wrap

"""Scenario files, loaded: a parsed JSON document checked into a :class:`Scenario` (running
it is :mod:`ndis_offload.lab.scenario_run`).

A scenario is a parsed JSON document (a ``dict``; reading the file is the caller's job)::

    {"adapter": {"profile": "full", "keywords": {"*LsoV2IPv4": 0},
                 "encapsulations": ["NDIS_ENCAPSULATION_IEEE_802_3"], "variant": "reference",
                 "pend_requests": false},
     "filters": [{"type": "recording"}, {"type": "mask", "hide": ["lsov2_4"]},
                 {"type": "fail", "oid": "OID_TCP_OFFLOAD_PARAMETERS",
                  "status": "NDIS_STATUS_FAILURE"}],
     "steps": [{"bind": "tcpip"}, {"query": "OID_TCP_OFFLOAD_CURRENT_CONFIG", "by": "tcpip"},
               {"set": "OID_OFFLOAD_ENCAPSULATION", "value": {"IPv4": {...}}},
               {"set": "OID_OFFLOAD_ENCAPSULATION", "raw": "0b011000..."},
               {"enable": "tcpip"}, {"disable": "tcpip"}, {"complete_pending": true},
               {"unbind": "tcpip"}, {"expect": {"usable": {"tcpip": []}}}]}

Filters are listed from the miniport upwards (index 0 is the lowest, as in
:class:`NdisStack`). Constant names (``NDIS_OFFLOAD_SET_ON``) or integers are accepted
wherever a value is expected; a missing or partial ``Header`` is filled in correctly for the
OID's structure; ``by`` defaults to the first binding. Any step may carry
``"expect": {"status": NAME, "indications": [NAME, ...] | COUNT, "value": {...},
"usable": {binding: [features]}, "current": [features]}``.

:func:`load_scenario` checks the whole document before anything runs and raises
:class:`ScenarioError` for anything wrong with it; an NDIS failure status in a step is a
result, not an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ndis_offload.constants.offload import NdisEncapsulation
from ndis_offload.constants.oid import Oid
from ndis_offload.constants.registry import constant_value
from ndis_offload.constants.status import NdisStatus
from ndis_offload.errors import NdisError
from ndis_offload.lab import variants
from ndis_offload.stack.features import FEATURES
from ndis_offload.stack.filter import (
    FailOidFilter,
    FilterDriver,
    OffloadMaskFilter,
    RecordingFilter,
)
from ndis_offload.stack.miniport import Miniport
from ndis_offload.stack.profiles import (
    DEFAULT_PROFILE,
    AdapterProfile,
    ProfileError,
    get_profile,
)
from ndis_offload.structs.codec import NdisStruct
from ndis_offload.structs.encapsulation import NdisOffloadEncapsulation
from ndis_offload.structs.offload import NdisOffload
from ndis_offload.structs.parameters import NdisOffloadParameters


class ScenarioError(NdisError):
    """The scenario document itself is wrong (unknown name, bad value, missing binding)."""

    default_status = NdisStatus.INVALID_PARAMETER


# -- value resolution --------------------------------------------------------------------------


def resolve_int(value: Any, where: str) -> int:
    """An integer from an int, a C constant name or a ``0x..`` string."""
    if isinstance(value, bool):
        raise ScenarioError(f"{where}: expected an integer or constant name, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return constant_value(text)
        except KeyError as err:
            try:
                return int(text, 0)
            except ValueError:
                raise ScenarioError(f"{where}: {err.args[0]}") from None
    raise ScenarioError(f"{where}: expected an integer or constant name, got {value!r}")


def resolve_oid(value: Any, where: str) -> int:
    """An OID by C name (``OID_OFFLOAD_ENCAPSULATION``) or integer."""
    if isinstance(value, str) and not value.strip().lower().startswith("0x"):
        name = value.strip()
        bare = name[4:] if name.startswith("OID_") else name
        if bare in Oid.__members__:
            return int(Oid[bare])
        known = ", ".join(o.c_name for o in Oid)
        raise ScenarioError(f"{where}: unknown OID {value!r}; known: {known}")
    return resolve_int(value, where)


def resolve_status(value: Any, where: str) -> NdisStatus:
    number = resolve_int(value, where)
    try:
        return NdisStatus(number)
    except ValueError:
        raise ScenarioError(f"{where}: {value!r} is not an NDIS_STATUS value") from None


STRUCT_FOR_OID: dict[int, type[NdisStruct]] = {
    Oid.OFFLOAD_ENCAPSULATION: NdisOffloadEncapsulation,
    Oid.TCP_OFFLOAD_PARAMETERS: NdisOffloadParameters,
    Oid.TCP_OFFLOAD_CURRENT_CONFIG: NdisOffload,
    Oid.TCP_OFFLOAD_HARDWARE_CAPABILITIES: NdisOffload,
}
"""The InformationBuffer structure of each OID a ``value`` can be given for."""


def _filled_header(cls: type[NdisStruct], given: Any, where: str) -> dict[str, int]:
    """A complete ``Header`` for ``cls``: missing members come from its newest revision (or
    the revision given), so ``{"Revision": 3}`` gets the right ``Size``."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ScenarioError(f"{where}.Header: expected an object, got {given!r}")
    sizes = cls.REVISION_SIZES
    default = cls().to_dict().get("Header", {})
    header: dict[str, int] = {
        "Type": cls.OBJECT_TYPE if cls.OBJECT_TYPE is not None else int(default.get("Type", 0)),
        "Revision": int(default.get("Revision", max(sizes) if sizes else 0)),
        "Size": int(default.get("Size", cls.sizeof())),
    }
    for key, value in given.items():
        if key not in header:
            raise ScenarioError(f"{where}.Header: unknown field {key!r} (Type, Revision, Size)")
        header[key] = resolve_int(value, f"{where}.Header.{key}")
    if "Revision" in given and "Size" not in given:
        header["Size"] = sizes.get(header["Revision"], cls.sizeof())
    return header


def encode_value(oid: int, value: Any, where: str) -> bytes:
    """Encode a (partial) NDIS-field-name dict as the InformationBuffer for ``oid``."""
    cls = STRUCT_FOR_OID.get(oid)
    if cls is None:
        raise ScenarioError(
            f'{where}: no structure known for {Oid.name_of(oid)}; give the buffer as "raw" hex'
        )
    if not isinstance(value, dict):
        raise ScenarioError(f"{where}.value: expected an object, got {value!r}")
    data = {**value, "Header": _filled_header(cls, value.get("Header"), where)}

    def resolve(path: str, raw: Any) -> int:
        return resolve_int(raw, f"{where}.value.{path}")

    try:
        return cls.from_dict(data, resolve=resolve).encode()
    except ScenarioError:
        raise
    except NdisError as err:
        raise ScenarioError(f"{where}.value: {err.detail}") from None


# -- the document ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One checked step: ``action`` plus what it needs."""

    index: int
    action: str
    """``bind``, ``unbind``, ``query``, ``set``, ``enable``, ``disable``,
    ``complete_pending``, ``expect``."""
    by: str = ""
    oid: int = 0
    buffer: bytes = b""
    length: int = 4096
    encapsulation: int = int(NdisEncapsulation.IEEE_802_3)
    header_size: int = 14
    ipv4: bool = True
    ipv6: bool = True
    expect: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AdapterSpec:
    profile: AdapterProfile
    variant: str = "reference"
    pend_requests: bool = False


@dataclass(frozen=True)
class FilterSpec:
    kind: str
    name: str
    hide: frozenset[str] = frozenset()
    oid: int = 0
    status: NdisStatus = NdisStatus.FAILURE

    def build(self) -> FilterDriver:
        if self.kind == "recording":
            return RecordingFilter(self.name)
        if self.kind == "mask":
            return OffloadMaskFilter(self.hide, self.name)
        return FailOidFilter(self.oid, self.status, self.name)


@dataclass(frozen=True)
class Scenario:
    adapter: AdapterSpec
    filters: tuple[FilterSpec, ...]
    steps: tuple[Step, ...]


ACTIONS = ("bind", "unbind", "query", "set", "enable", "disable", "complete_pending", "expect")
EXPECT_KEYS = ("status", "indications", "value", "usable", "current", "failed")


def variant_names() -> tuple[str, ...]:
    """``reference`` first, then every real-driver variant."""
    return ("reference", *(n for n in variants.VARIANTS if n != "reference"))


def make_miniport(adapter: AdapterSpec) -> Miniport:
    """The miniport for ``adapter``: the reference or a real-driver variant."""
    if adapter.variant not in variants.VARIANTS:
        raise ScenarioError(
            f"unknown variant {adapter.variant!r}; known: {', '.join(variant_names())}"
        )
    return variants.make_miniport(
        adapter.variant, adapter.profile, pend_requests=adapter.pend_requests
    )


def build_profile(
    name: str = DEFAULT_PROFILE,
    keywords: dict[str, Any] | None = None,
    encapsulations: list[Any] | None = None,
    where: str = "adapter",
) -> AdapterProfile:
    """A built-in profile with keyword and encapsulation overrides (:class:`ScenarioError`)."""
    try:
        profile = get_profile(name)
        if keywords:
            resolved = {k: resolve_int(v, f"{where}.keywords.{k}") for k, v in keywords.items()}
            profile = profile.with_keywords(resolved)
        if encapsulations is not None:
            mask = 0
            for i, item in enumerate(encapsulations):
                mask |= resolve_int(item, f"{where}.encapsulations[{i}]")
            profile = profile.with_encapsulations(mask)
    except ProfileError as err:
        raise ScenarioError(f"{where}: {err.detail}") from None
    return profile


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ScenarioError(f"{where}: expected an object, got {value!r}")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ScenarioError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def _load_adapter(data: Any) -> AdapterSpec:
    adapter = _obj(data if data is not None else {}, "adapter")
    unknown = set(adapter) - {"profile", "keywords", "encapsulations", "variant", "pend_requests"}
    if unknown:
        raise ScenarioError(f"adapter: unknown key(s) {', '.join(sorted(unknown))}")
    keywords = adapter.get("keywords")
    if keywords is not None:
        _obj(keywords, "adapter.keywords")
    encs = adapter.get("encapsulations")
    if encs is not None and not isinstance(encs, list):
        raise ScenarioError(f"adapter.encapsulations: expected a list, got {encs!r}")
    profile = build_profile(
        _str(adapter.get("profile", DEFAULT_PROFILE), "adapter.profile"), keywords, encs
    )
    variant = _str(adapter.get("variant", "reference"), "adapter.variant")
    if variant not in variant_names():
        raise ScenarioError(
            f"adapter.variant: unknown variant {variant!r}; known: {', '.join(variant_names())}"
        )
    pend = adapter.get("pend_requests", False)
    if not isinstance(pend, bool):
        raise ScenarioError(f"adapter.pend_requests: expected true or false, got {pend!r}")
    return AdapterSpec(profile, variant, pend)


def _load_filter(index: int, data: Any) -> FilterSpec:
    where = f"filters[{index}]"
    spec = _obj(data, where)
    kind = spec.get("type")
    name = spec.get("name")
    if name is not None:
        name = _str(name, f"{where}.name")
    if kind == "recording":
        return FilterSpec("recording", name or "recorder")
    if kind == "mask":
        hide = spec.get("hide", [])
        if not isinstance(hide, list) or not all(isinstance(h, str) for h in hide):
            raise ScenarioError(f"{where}.hide: expected a list of feature names")
        unknown = set(hide) - set(FEATURES)
        if unknown:
            raise ScenarioError(
                f"{where}.hide: unknown feature(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(FEATURES)}"
            )
        return FilterSpec("mask", name or "mask", hide=frozenset(hide))
    if kind == "fail":
        oid = resolve_oid(spec.get("oid"), f"{where}.oid")
        status = resolve_status(spec.get("status", "NDIS_STATUS_FAILURE"), f"{where}.status")
        return FilterSpec("fail", name or "fail", oid=oid, status=status)
    raise ScenarioError(f"{where}.type: expected recording, mask or fail, got {kind!r}")


def _load_expect(data: Any, where: str) -> dict[str, Any]:
    expect = _obj(data, where)
    unknown = set(expect) - set(EXPECT_KEYS)
    if unknown:
        raise ScenarioError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(EXPECT_KEYS)}"
        )
    out = dict(expect)
    if "status" in expect:
        out["status"] = resolve_status(expect["status"], f"{where}.status").c_name
    if "indications" in expect:
        value = expect["indications"]
        if isinstance(value, list):
            out["indications"] = [
                resolve_status(v, f"{where}.indications[{i}]").c_name for i, v in enumerate(value)
            ]
        elif isinstance(value, bool) or not isinstance(value, int):
            raise ScenarioError(f"{where}.indications: expected a count or a list of statuses")
    for key in ("usable",):
        if key in expect:
            table = _obj(expect[key], f"{where}.{key}")
            for name, feats in table.items():
                _features(feats, f"{where}.{key}.{name}")
    if "current" in expect:
        _features(expect["current"], f"{where}.current")
    if "failed" in expect:
        table = _obj(expect["failed"], f"{where}.failed")
        for name, flag in table.items():
            if not isinstance(flag, bool):
                raise ScenarioError(f"{where}.failed.{name}: expected true or false")
    return out


def _features(value: Any, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ScenarioError(f"{where}: expected a list of feature names")
    unknown = set(value) - set(FEATURES)
    if unknown:
        raise ScenarioError(f"{where}: unknown feature(s) {', '.join(sorted(unknown))}")
    return frozenset(value)


def _load_step(index: int, data: Any, bound: list[str]) -> Step:
    where = f"steps[{index}]"
    step = _obj(data, where)
    actions = [a for a in ACTIONS if a in step and a != "expect"] or [
        a for a in ("expect",) if a in step
    ]
    if len(actions) != 1:
        raise ScenarioError(
            f"{where}: expected exactly one of {', '.join(ACTIONS)}; got keys {sorted(step)}"
        )
    action = actions[0]
    allowed = {action, "expect", "by"}
    allowed |= {
        "bind": {"encapsulation", "header_size"},
        "query": {"length"},
        "set": {"value", "raw"},
        "enable": {"ipv4", "ipv6"},
        "disable": {"ipv4", "ipv6"},
    }.get(action, set())
    unknown = set(step) - allowed
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} for {action}")
    expect = (
        _load_expect(step["expect"], f"{where}.expect")
        if "expect" in step and action != "expect"
        else {}
    )
    if action == "expect":
        return Step(index, "expect", expect=_load_expect(step["expect"], where), source=step)
    if action == "complete_pending":
        return Step(index, action, expect=expect, source=step)

    def by(default_key: str | None = None) -> str:
        name = step.get(default_key) if default_key else step.get("by")
        if name is None:
            if not bound:
                raise ScenarioError(f"{where}: no protocol is bound (add a bind step first)")
            return bound[0]
        name = _str(name, where + (f".{default_key}" if default_key else ".by"))
        if name not in bound:
            raise ScenarioError(
                f"{where}: {name!r} is not bound (bound: {', '.join(bound) or 'none'})"
            )
        return name

    if action == "bind":
        name = _str(step["bind"], f"{where}.bind")
        if name in bound:
            raise ScenarioError(f"{where}: {name!r} is already bound")
        encapsulation = resolve_int(
            step.get("encapsulation", "NDIS_ENCAPSULATION_IEEE_802_3"), f"{where}.encapsulation"
        )
        header_size = resolve_int(step.get("header_size", 14), f"{where}.header_size")
        bound.append(name)
        return Step(
            index,
            action,
            by=name,
            encapsulation=encapsulation,
            header_size=header_size,
            expect=expect,
            source=step,
        )
    if action == "unbind":
        name = by("unbind")
        bound.remove(name)
        return Step(index, action, by=name, expect=expect, source=step)
    if action in ("enable", "disable"):
        target = step[action]
        name = by(action) if isinstance(target, str) else by()
        families: dict[str, bool] = {}
        for fam in ("ipv4", "ipv6"):
            flag = step.get(fam, True)
            if not isinstance(flag, bool):
                raise ScenarioError(f"{where}.{fam}: expected true or false")
            families[fam] = flag
        return Step(
            index,
            action,
            by=name,
            ipv4=families["ipv4"],
            ipv6=families["ipv6"],
            expect=expect,
            source=step,
        )
    if action == "query":
        oid = resolve_oid(step["query"], f"{where}.query")
        length = resolve_int(step.get("length", 4096), f"{where}.length")
        return Step(index, action, by=by(), oid=oid, length=length, expect=expect, source=step)
    # set
    oid = resolve_oid(step["set"], f"{where}.set")
    if ("value" in step) == ("raw" in step):
        raise ScenarioError(f'{where}: a set needs exactly one of "value" or "raw"')
    if "raw" in step:
        raw = step["raw"]
        if not isinstance(raw, str):
            raise ScenarioError(f"{where}.raw: expected a hex string")
        try:
            buffer = bytes.fromhex(raw.replace(":", " "))
        except ValueError as err:
            raise ScenarioError(f"{where}.raw: not hex: {err}") from None
    else:
        buffer = encode_value(oid, step["value"], where)
    return Step(index, action, by=by(), oid=oid, buffer=buffer, expect=expect, source=step)


def load_scenario(data: Any) -> Scenario:
    """Check a parsed scenario document; :class:`ScenarioError` says what is wrong."""
    doc = _obj(data, "scenario")
    unknown = set(doc) - {"adapter", "filters", "steps", "description"}
    if unknown:
        raise ScenarioError(f"scenario: unknown key(s) {', '.join(sorted(unknown))}")
    adapter = _load_adapter(doc.get("adapter"))
    filters_data = doc.get("filters", [])
    if not isinstance(filters_data, list):
        raise ScenarioError("filters: expected a list")
    filters = tuple(_load_filter(i, f) for i, f in enumerate(filters_data))
    names = [f.name for f in filters]
    if len(set(names)) != len(names):
        raise ScenarioError(f"filters: names must be unique, got {names}")
    steps_data = doc.get("steps")
    if not isinstance(steps_data, list) or not steps_data:
        raise ScenarioError("steps: expected a non-empty list")
    bound: list[str] = []
    steps = tuple(_load_step(i, s, bound) for i, s in enumerate(steps_data))
    return Scenario(adapter, filters, steps)

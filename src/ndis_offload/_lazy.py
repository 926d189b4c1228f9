"""Lazy package attributes (PEP 562): a package's public names import their module on first
use, so ``import ndis_offload`` or a ``pcap`` command does not load the whole package.

A package lists ``{name: module}`` once and keeps its ``__all__``; type checkers see the
same names through an ``if TYPE_CHECKING:`` block of ordinary imports.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    namespace: dict[str, Any], exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for the package whose ``globals()`` is ``namespace``: each
    name in ``exports`` is looked up in its module (absolute) when first asked for, then
    cached in the package's namespace."""
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__


__all__ = ["lazy_exports"]

"""The layer rules of DESIGN.md, enforced: imports point downward only, and nothing below
``io/`` does I/O, reads the clock, sleeps, starts threads or draws randomness."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ndis_offload"

FLOOR = {"constants", "errors"}
ALLOWED: dict[str, set[str]] = {
    "constants": {"constants"},
    "errors": {"constants"},
    "structs": FLOOR | {"structs"},
    "packet": FLOOR | {"packet"},
    "engine": FLOOR | {"structs", "packet", "engine"},
    "stack": FLOOR | {"structs", "stack", "engine"},
    "lab": FLOOR | {"structs", "packet", "engine", "stack", "lab"},
    "capture": FLOOR | {"structs", "packet", "engine", "capture"},
    "io": FLOOR | {"structs", "packet", "engine", "stack", "lab", "capture", "io"},
    "viz": FLOOR | {"structs", "packet", "engine", "stack", "lab", "capture", "io", "viz"},
    "cli": FLOOR
    | {
        "structs",
        "packet",
        "engine",
        "stack",
        "lab",
        "capture",
        "io",
        "viz",
        "cli",
        "__init__",
    },
    "__init__": FLOOR | {"structs", "packet", "engine", "stack", "capture"},
    "__main__": {"cli"},
}
SANS_IO = {"constants", "errors", "structs", "packet", "engine", "stack", "lab", "capture"}
FORBIDDEN_IN_SANS_IO = {
    "socket",
    "time",
    "random",
    "threading",
    "subprocess",
    "asyncio",
    "select",
    "fcntl",
    "secrets",
}


def layer_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".pyi").removesuffix(".py")


def imported(path: Path) -> list[str]:
    """The absolute names of the modules ``path`` imports (relative imports resolved: the
    packages' ``__init__.pyi`` stubs name their lazy exports that way)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ["ndis_offload", *path.relative_to(PACKAGE).parent.parts]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1]
            names.append(".".join([*base, node.module] if node.module else base))
    return names


MODULES = sorted([*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.pyi")])


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PACKAGE)) for p in MODULES])
def test_imports_point_downward_only(path: Path) -> None:
    layer = layer_of(path)
    allowed = ALLOWED.get(layer)
    assert allowed is not None, f"{layer} is not a known layer: add it to ALLOWED"
    for name in imported(path):
        if name == "ndis_offload":
            target = "__init__"
        elif name.startswith("ndis_offload."):
            target = name.split(".")[1]
        else:
            continue
        assert target in allowed, f"{path.relative_to(PACKAGE)} ({layer}) imports {name}"


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PACKAGE)) for p in MODULES])
def test_nothing_below_io_does_io(path: Path) -> None:
    if layer_of(path) not in SANS_IO:
        return
    for name in imported(path):
        assert name.split(".")[0] not in FORBIDDEN_IN_SANS_IO, (
            f"{path.relative_to(PACKAGE)} imports {name}: only io/ may"
        )
    source = path.read_text()
    assert "open(" not in source.replace(".open(", ""), f"{path} opens a file"


def test_stack_is_the_model_and_lab_its_uses() -> None:
    """stack/ holds the NDIS model only; scenarios, the demo, the battery and the variants
    live in lab/ (DESIGN.md layers)."""
    model = {p.stem for p in (PACKAGE / "stack").glob("*.py")}
    assert model <= {
        "__init__",
        "core",
        "miniport",
        "filter",
        "protocol",
        "requests",
        "features",
        "profiles",
        "datapath",
    }, f"stack/ holds more than the NDIS model: {sorted(model)}"


def test_stack_uses_only_the_engine_public_api() -> None:
    for path in (PACKAGE / "stack").rglob("*.py"):
        for name in imported(path):
            assert not name.startswith("ndis_offload.engine."), (
                f"{path.name} imports engine internals ({name}); use ndis_offload.engine"
            )

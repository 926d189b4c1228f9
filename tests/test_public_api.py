"""The lazily exported public names (``__init__.pyi`` stubs, ``lazy_loader.attach_stub``)."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGES = ["ndis_offload", "ndis_offload.engine", "ndis_offload.structs"]


def stub_names(package: str) -> set[str]:
    """The names a package's stub declares: what mypy sees."""
    module = importlib.import_module(package)
    stub = Path(str(module.__file__)).with_suffix(".pyi")
    tree = ast.parse(stub.read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                assert alias.asname == alias.name, f"{stub}: {alias.name} is not re-exported"
                names.add(alias.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if not node.target.id.startswith("__"):
                names.add(node.target.id)
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_resolves_and_matches_the_stub(package: str) -> None:
    module = importlib.import_module(package)
    assert set(module.__all__) == stub_names(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
        assert name in dir(module)
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018


def test_structs_lists_every_struct_in_header_order() -> None:
    import ndis_offload.structs as structs
    from ndis_offload.structs.codec import NdisStruct

    assert structs.STRUCTS[0] is structs.NdisObjectHeader
    assert all(issubclass(s, NdisStruct) for s in structs.STRUCTS)
    assert len(set(structs.STRUCTS)) == len(structs.STRUCTS)


def test_importing_the_package_loads_no_model() -> None:
    """``import ndis_offload`` (what every ``pcap`` command pays) imports neither the NDIS
    model nor numpy: each public name is imported on first use."""
    probe = (
        "import sys, ndis_offload, ndis_offload.engine, ndis_offload.structs;"
        "print(sorted(m for m in sys.modules if m.startswith(('ndis_offload.', 'numpy'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['ndis_offload.engine', 'ndis_offload.structs']"

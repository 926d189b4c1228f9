"""Shared test configuration: hypothesis profiles, the --run-slow switch and the scale-out
tests' Dask cluster."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))

settings.register_profile(
    "default", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "deep", max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "default")
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="run long fuzz tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow") or os.environ.get("NDIS_OFFLOAD_SLOW"):
        return
    skip = pytest.mark.skip(reason="long fuzz run: use --run-slow or NDIS_OFFLOAD_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A 2-worker Dask ``LocalCluster`` (one thread each: what CI's 2 cores hold) per test
    module; a module using it skips without the dask extra (``pytest.importorskip``)."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
        silence_logs=50,
    ) as local:  # fmt: skip
        yield local


@pytest.fixture
def spec(cluster: Any) -> Any:
    """The cluster as the CLI's ``--scheduler ADDRESS`` names it (a ``ClusterSpec``)."""
    from ndis_offload.io.cluster import ClusterSpec

    return ClusterSpec(scheduler=cluster.scheduler_address)

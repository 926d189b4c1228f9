"""A Dask cluster for the capture tools: a local one (``--workers N``) or an existing one
(``--scheduler ADDRESS`` / ``--scheduler-file PATH``).

Dask is the optional ``dask`` extra (``pip install 'ndis-offload[dask]'``); without it the
tools run serially and ``--workers`` says how to install it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ndis_offload.errors import BackendError

if TYPE_CHECKING:
    from distributed import Client, LocalCluster

INSTALL_HINT = "install the dask extra: python3 -m pip install 'ndis-offload[dask]'"


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """Where to run: ``workers`` local processes, or an existing scheduler."""

    workers: int = 0
    scheduler: str | None = None
    scheduler_file: str | None = None

    @property
    def distributed(self) -> bool:
        return self.workers > 0 or bool(self.scheduler) or bool(self.scheduler_file)


def dask_available() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


WORKER_ENVIRON = "distributed.nanny.pre-spawn-environ"
LEAN = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.admin.tick.interval": "1s",
    "distributed.scheduler.work-stealing": False,
    "distributed.worker.memory.monitor-interval": "1s",
}
"""Settings of a local cluster. The defaults sample every task's stack every 10 ms, check
the event loop every 20 ms, rebalance by work stealing every 100 ms and watch memory every
100 ms: about 60 ms of CPU a second for a client and two idle workers, against 12 ms with
these (measured). Tasks are placed by the driver (:mod:`ndis_offload.io.distributed`), so
stealing would only move checks away from their feed."""


def worker_environ() -> dict[str, object]:
    """The environment Dask gives new worker processes, less ``MALLOC_TRIM_THRESHOLD_``.

    Dask sets it (65536) to return memory to the system sooner; setting it at all turns off
    glibc's dynamic mmap threshold, so every large numpy temporary becomes an ``mmap`` /
    page-fault / ``munmap`` round: the checks of a piece then cost about 1.6x the CPU
    (measured, ``docs/scale-out.md``). Workers of an existing cluster should be started
    without it too."""
    import dask

    environ = dict(dask.config.get(WORKER_ENVIRON, default={}) or {})
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    return environ


def local_cluster(workers: int) -> LocalCluster:
    """A local cluster of ``workers`` single-threaded worker processes, set up for this
    work (:func:`worker_environ`, :data:`LEAN`)."""
    import dask
    from distributed import LocalCluster

    with dask.config.set({WORKER_ENVIRON: worker_environ(), **LEAN}):
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        )


@contextmanager
def connect(spec: ClusterSpec) -> Iterator[Client]:
    """A client for ``spec``; a local cluster is started here and stopped on exit, Ctrl-C
    included (its worker processes end with it)."""
    try:
        from distributed import Client
    except ImportError:
        raise BackendError(f"--workers / --scheduler need Dask: {INSTALL_HINT}") from None
    for name in ("distributed", "distributed.nanny", "distributed.scheduler", "tornado"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if spec.scheduler or spec.scheduler_file:
        try:
            client = (
                Client(scheduler_file=spec.scheduler_file, timeout="20s")
                if spec.scheduler_file
                else Client(spec.scheduler, timeout="20s")
            )
        except (OSError, TimeoutError, ValueError) as error:
            where = spec.scheduler_file or spec.scheduler
            raise BackendError(f"cannot reach the Dask scheduler {where}: {error}") from None
        try:
            yield client
        finally:
            client.close()
        return
    cluster = local_cluster(spec.workers)
    try:
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()

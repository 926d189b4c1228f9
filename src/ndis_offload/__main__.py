"""``python -m ndis_offload``: the ``ndis-offload`` command."""

from ndis_offload.cli.main import entry

entry()

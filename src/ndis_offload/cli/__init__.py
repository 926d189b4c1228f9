"""ndis_offload.cli"""

"""ndis_offload.viz"""

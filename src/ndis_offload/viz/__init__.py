"""ndis_offload.viz: rich renderings (sequence diagram, ethtool-style tables) of stack state."""

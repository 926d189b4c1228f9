"""Live Linux backend: TAP NICs with IFF_VNET_HDR whose offloads follow the NDIS model."""

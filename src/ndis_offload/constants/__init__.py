"""NDIS constants, named and valued as in the Windows headers."""

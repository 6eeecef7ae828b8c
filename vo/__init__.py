"""SkyVault: vo."""

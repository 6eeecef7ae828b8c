"""SkyVault: server."""

"""SkyVault: ingest."""

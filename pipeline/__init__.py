"""SkyVault: pipeline."""

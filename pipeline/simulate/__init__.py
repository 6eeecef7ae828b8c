"""SkyVault pipeline: simulate."""

"""SkyVault: schema."""

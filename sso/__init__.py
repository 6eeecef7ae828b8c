"""SkyVault: sso."""

"""SkyVault pipeline: process."""

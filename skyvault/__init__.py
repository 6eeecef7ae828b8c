"""SkyVault: processing-to-archive system and IVOA services for a ZTF-like survey."""

__version__ = "0.1.0"

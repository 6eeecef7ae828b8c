"""Small data files of skyvault.sso (a package so that setup.py ships them)."""

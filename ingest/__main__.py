"""``python -m skyvault.ingest ...``: the ingest commands without loading the other parts'."""

from skyvault.ingest.cli import ingest_cli

ingest_cli(prog_name="skyvault ingest")

"""``skyvault alerts``: a night's alerts per stream, into the archive (and Kafka)."""

from __future__ import annotations

import time

import click

from skyvault.alerts.archive import store_archive
from skyvault.alerts.build import AlertBuilder, night_selection
from skyvault.alerts.kafka import KafkaNotConfigured, PublishFailed, broker_address, publish
from skyvault.alerts.query import AlertQueryError, parse_night
from skyvault.alerts.streams import UnknownStream, stream_named, streams
from skyvault.db import database
from skyvault.filestore import archive_store


@click.group("alerts")
def alerts_cli() -> None:
    """Alert packets in ZTF's Avro format (schema 4.02)."""


@alerts_cli.command("night")
@click.argument("night")
@click.option("--stream", "stream_names", multiple=True,
              help="Stream (public, partnership, caltech...); default: every stream.")
@click.option("--kafka/--no-kafka", default=None,
              help="Also publish to Kafka (default: when SKYVAULT_ALERTS_KAFKA is set).")
@click.option("--fp-hists/--no-fp-hists", default=True, show_default=True,
              help="Forced photometry of the 30 days before each alert (fp_hists); without"
                   " it, fp_hists are null and the night is built faster (BENCHMARKS.md).")
def night_command(night: str, stream_names: tuple[str, ...], kafka: bool | None,
                  fp_hists: bool) -> None:
    """Build NIGHT's alerts (YYYYMMDD) and archive them per stream
    (alerts/<stream>/ztf_<stream>_<YYYYMMDD>.tar.gz in the file store, served at /files/)."""
    try:
        nid = parse_night(night)
    except AlertQueryError as error:
        raise click.BadParameter(str(error)) from None
    db = database()
    with db.admin() as connection:
        try:
            chosen = [stream_named(connection, n) for n in stream_names] or streams(connection)
        except UnknownStream as error:
            raise click.BadParameter(f"no stream {error}") from None
    publish_too = broker_address() is not None if kafka is None else kafka
    for stream in chosen:
        started = time.perf_counter()
        builder = AlertBuilder(db, stream, fp_hists=fp_hists)
        alerts = list(builder.alerts(night_selection(nid, stream)))
        result = store_archive(db, archive_store(), stream, nid, alerts)
        line = (f"{stream.name}: {result.alerts} alerts -> {result.path}"
                f" ({result.size_bytes} bytes, {time.perf_counter() - started:.1f} s)")
        if publish_too:
            try:
                line += f"; {publish(alerts, stream, nid)} published to Kafka"
            except (KafkaNotConfigured, PublishFailed) as error:
                raise click.ClickException(f"{line}; Kafka: {error}") from None
        click.echo(line)

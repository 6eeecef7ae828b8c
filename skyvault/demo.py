"""`skyvault demo`: simulated nights -> pipeline -> ingest -> the service on localhost.

Everything goes through the real code paths: the simulator and pipeline write products and
manifests, ingest archives them, releases are declared with the release CLI's function, and
the service runs under gunicorn with a job worker beside it, on the embedded cluster.

The demo's nights lie a month before today so that the archive holds data in every state:
public data already released (DR1, declared yesterday), public data waiting for the next
release (DR2, in six months), and proprietary data of programs 2 and 3.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from skyvault.config import settings

DEMO_NIGHTS = 3


@dataclass(frozen=True)
class DemoPlan:
    first_night: dt.date
    dr1_date: dt.datetime
    dr1_cutoff: dt.datetime
    dr2_date: dt.datetime
    dr2_cutoff: dt.datetime


def demo_plan(today: dt.date) -> DemoPlan:
    """Nights at today-30, today-29 and today-19; DR1 covers the first two, DR2 the third."""
    first = today - dt.timedelta(days=30)
    utc = dt.UTC
    midnight = dt.datetime.combine(today, dt.time(), utc)
    return DemoPlan(
        first_night=first,
        dr1_date=midnight - dt.timedelta(days=1),
        # Palomar's evening of night N is the UTC morning of N+1; the cutoff closes night 2.
        dr1_cutoff=dt.datetime.combine(first + dt.timedelta(days=2), dt.time(18), utc),
        dr2_date=midnight + dt.timedelta(days=180),
        dr2_cutoff=midnight,
    )


def _step(message: str) -> None:
    click.secho(f"==> {message}", fg="cyan", err=True)


def load_demo_data(plan: DemoPlan, demo_dir: Path) -> None:
    from skyvault.coverage.hips import build as build_hips
    from skyvault.db import database
    from skyvault.ingest import ingest_paths
    from skyvault.ingest.compact import compact_all
    from skyvault.lightcurves.ensemble import run_ensemble
    from skyvault.pipeline.demo import make_demo_night
    from skyvault.releases.declare import declare_release
    from skyvault.releases.export import export_release
    from skyvault.sso.load import load_demo

    _step(f"simulating and processing {DEMO_NIGHTS} nights from {plan.first_night}")
    products = make_demo_night(demo_dir, nights=DEMO_NIGHTS, first_night=plan.first_night,
                               progress=True)
    _step("ingesting the products into the file store and the catalog")
    summary = ingest_paths([products], progress=True)
    for line in summary.lines():
        click.echo(line, err=True)
    if not summary.ok:
        raise click.ClickException("ingest quarantined or deferred demo products; see above")
    handle = database()
    _step("compacting the nights' catalogs into sky cells (ingest/README.md)")
    with handle.admin(autocommit=True) as connection:
        for compacted in compact_all(connection, keep_latest=1):
            click.echo(compacted.line(), err=True)
    _step("loading the simulated asteroids' orbits and declaring data releases")
    with handle.admin() as connection:
        load_demo(connection)
        declare_release(connection, "DR1", plan.dr1_date, plan.dr1_cutoff,
                        notes="Demo release: the first two nights")
        declare_release(connection, "DR2", plan.dr2_date, plan.dr2_cutoff,
                        notes="Demo release to come: the third night")
    _step("objects' released statistics: the epochs the releases made public")
    click.echo(run_ensemble(handle).line(), err=True)
    _step("exporting DR1: manifests, download scripts and the HATS catalogs")
    export_release(handle, "DR1")
    # As after every data release in operation (deploy/systemd/skyvault-hips.timer).
    _step("making the HiPS of the public reference co-adds (skyvault hips build)")
    for built in build_hips(handle):
        click.echo(built.line(), err=True)


def print_welcome(port: int, accounts: list[tuple[str, str, tuple[int, ...]]]) -> None:
    base = f"http://127.0.0.1:{port}"
    lines = [
        "",
        f"SkyVault is serving on {base}/",
        f"  TAP (TOPCAT: VO > Table Access Protocol):  {base}/tap",
        f"  SIA v2:                                    {base}/sia/query",
        f"  Cone search:                               {base}/scs/psf_sources",
        f"  Moving-object search:                      {base}/most",
        "  pyvo:",
        "    import pyvo",
        f"    tap = pyvo.dal.TAPService('{base}/tap')",
        "    tap.search('SELECT TOP 10 * FROM ivoa.obscore').to_table()",
        "",
        "Demo accounts (each sees its program's proprietary data; HTTP Basic works too):",
    ]
    lines += [f"  {user:<14} password {password:<22} programs {list(programs)}"
              for user, password, programs in accounts]
    lines.append("")
    click.echo("\n".join(lines))


@click.command("demo")
@click.option("--port", type=int, default=None, help="default: SKYVAULT_PORT or 8000")
@click.option("--rebuild", is_flag=True, help="simulate and ingest again from scratch")
@click.option("--no-serve", is_flag=True, help="prepare the data and stop")
def demo_cli(port: int | None, rebuild: bool, no_serve: bool) -> None:
    """Run the demo: simulated nights, pipeline, ingest, and the service on localhost."""
    from skyvault.accounts.model import create_demo_accounts
    from skyvault.db import database, database_urls, embedded_cluster
    from skyvault.schema.migrate import upgrade

    config = settings()
    port = port or config.http_port
    if not config.database_url:
        _step("starting the embedded PostgreSQL")
        embedded_cluster().start()
    _step("bringing the schema up to date")
    upgrade(database_urls().admin)

    demo_dir = config.home / "demo"
    loaded_marker = demo_dir / ".loaded"
    if rebuild or not loaded_marker.exists():
        load_demo_data(demo_plan(dt.date.today()), demo_dir)
        loaded_marker.parent.mkdir(parents=True, exist_ok=True)
        loaded_marker.write_text(dt.datetime.now(dt.UTC).isoformat() + "\n")
    else:
        _step(f"demo data already loaded ({loaded_marker}); --rebuild loads them again")

    accounts = create_demo_accounts(database())
    print_welcome(port, accounts)
    if no_serve:
        return
    worker = subprocess.Popen([sys.executable, "-m", "skyvault", "worker"])
    server = subprocess.Popen([sys.executable, "-m", "skyvault", "serve", "--port", str(port)],
                              env=os.environ.copy())
    # Ctrl-C reaches the whole process group; a SIGTERM (systemd, kill) only this process, which
    # must then stop its children, or they would go on serving without it.
    signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    try:
        server.wait()
    except KeyboardInterrupt:
        pass  # the children got the same Ctrl-C; the finally block waits for them
    finally:
        for child in (server, worker):
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()

"""``skyvault sso``: load orbits into the archive and search for the images of an object."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import click

sso_cli = click.Group("sso", help="Solar-system objects: orbits and the moving-object search.")


@sso_cli.command("load")
@click.argument("orbit_file", required=False, type=click.Path(exists=True, dir_okay=False,
                                                                path_type=Path))
@click.option("--demo", is_flag=True,
              help="Load the demo orbits (the asteroids and comets the simulator places).")
@click.option("--skip-invalid", is_flag=True,
              help="Load the lines that parse and report the others (default: stop at one).")
@click.option("--replace", "replace_all", is_flag=True,
              help="Remove orbits the file does not hold (a full refresh from MPCORB.DAT).")
def load(orbit_file: Path | None, demo: bool, skip_invalid: bool, replace_all: bool) -> None:
    """Load ORBIT_FILE (MPCORB.DAT-style and/or MPC comet lines, optionally gzipped) into
    survey.solar_system_objects, replacing orbits of the same designation."""
    from skyvault.db import DatabaseUnavailable, database
    from skyvault.sso.load import OrbitFileError, load_demo, load_file

    if demo == (orbit_file is not None):
        raise click.UsageError("give either an orbit file or --demo")
    try:
        with database().admin() as connection:
            if demo:
                summary = load_demo(connection)
                parsed = None
                source = "the demo orbits"
            else:
                assert orbit_file is not None
                summary, parsed = load_file(connection, orbit_file, skip_invalid=skip_invalid,
                                            replace_all=replace_all)
                source = str(orbit_file)
    except OrbitFileError as error:
        raise click.ClickException(f"{error}; nothing was loaded") from None
    except DatabaseUnavailable as error:
        raise click.ClickException(f"the database cannot be reached: {error}") from None
    click.echo(f"loaded {summary.loaded} orbits from {source}: {summary.inserted} new, "
               f"{summary.updated} replaced" + (f", {summary.removed} removed"
                                                if summary.removed else ""))
    if parsed is not None and parsed.invalid_count:
        click.echo(f"skipped {parsed.invalid_count} invalid lines, first ones:", err=True)
        for error in parsed.invalid:
            click.echo(f"  {error}", err=True)


@sso_cli.command("search")
@click.argument("designation")
@click.option("--begin", default=None, help="Start of the span: ISO date/time or MJD.")
@click.option("--end", default=None, help="End of the span: ISO date/time or MJD.")
def search(designation: str, begin: str | None, end: str | None) -> None:
    """Print the public images that hold the object DESIGNATION (as CSV), as anonymous users
    see them on /most."""
    from skyvault.db import database
    from skyvault.sso.errors import SsoError
    from skyvault.sso.most_request import RequestError, parse_time
    from skyvault.sso.search_db import SearchCriteria, find_orbit, search_images

    try:
        criteria = SearchCriteria(parse_time(begin, "begin"),
                                  parse_time(end, "end", end_of_day=True))
        with database().reading() as connection:
            orbit = find_orbit(connection, designation)
            result = search_images(connection, orbit, criteria)
    except (SsoError, RequestError) as error:
        raise click.ClickException(str(error)) from None
    writer = csv.writer(sys.stdout)
    writer.writerow(["pid", "expid", "rcid", "filtercode", "mjd_mid", "ra", "dec", "x", "y",
                     "vmag", "path"])
    for m in result.matches:
        writer.writerow([m.pid, m.expid, m.rcid, m.filtercode, f"{m.mjd_mid:.6f}",
                         f"{m.ra:.7f}", f"{m.dec:.7f}", f"{m.x:.2f}", f"{m.y:.2f}",
                         f"{m.vmag:.2f}", m.path or ""])
    click.echo(f"{len(result.matches)} images hold {result.orbit.label}", err=True)

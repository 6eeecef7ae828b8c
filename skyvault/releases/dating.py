"""The release rules, in one place: which rows are public at an instant.

No row stores a release date.  A row carries the facts the rules read, which never change once
it is archived (its program or programs, and when it was observed or archived), and the rules
compare them with two small tables, ``survey.programs`` and ``survey.data_releases``:

- a row of one program observed at ``obsjd`` (exposures, raw, science and difference images,
  the source catalogs and the light-curve points) is public once its program is released
  *through* that time: a public data release lists the program and its observation cutoff is
  later; or the program's proprietary period has passed (observed + period <= now); or the
  program's named release is public.  A difference image follows its science image (same
  program, same exposure), whatever the reference it was made against.
- a calibration product (``programids``, for night ``nid``) is public when any of its programs
  is released through the start of that night: it holds no sky pixels, and whoever may see a
  science image must get its calibration.
- a reference co-add is public from the first data release *declared* after it was archived
  (``ingested_at`` < ``declared_at``), whatever programs its epochs came from (the seed puts no
  restriction on the input data of co-adds); its files and catalogs go with it.
- a difference-image candidate (``survey.candidates``, the alert stream's rows) of a program
  whose alerts are public (``survey.programs.public_alerts``, the public survey as ZTF's public
  alert stream) is public at once, observed at ``jd``; any other is dated as its science image
  (its program, released through ``jd``, the same instant as the image's ``obsjd``), whatever
  the reference it was found against (issue 17).
- a file is dated as its image: its row copies the image's ``obsjd`` (for calibration, the
  night's start), and a co-add's files are dated by their ``ingested_at``, the co-add's own
  (one ingest transaction); a night's alert archive (``image_table = 'alert_archives'``) is
  dated as its candidates, by its stream's program and its last alert's ``jd``: the public
  stream's at once.

Members of a row's program(s) see it at once.  The SQL functions that read the two tables
(migration 0016) are evaluated once per query as InitPlans, like the requester's programs
(migration 0006); each row then costs an array look-up and a comparison.  So declaring a
release writes one row, and a release date that passes needs no command.

A summary of epochs (``survey.objects_released``: an object's statistics over its public
epochs, computed by the ensemble step) is not dated itself: it names the programs of the epochs
it summarises and, for each, the ``obsjd`` of the latest one, and it is shown while each of
those epochs is public (``summary_released_sql``).  The same for every requester: a member sees
their program's epochs in the statistics computed when asked (``survey.objects``).  So a
horizon that moves back (a release withdrawn or postponed) hides the summaries it concerns at
once, until the ensemble step computes them again.

Everything that decides or shows release status is generated here: the embargo policies
(schema/ddl.py) and the summaries' (schema/objects_sql.py), what a release export and a
release's file downloads hold (skyvault/releases/export.py, server/releases.py), the release
date an image page shows, and the checks and dating facts ingest writes (ingest/load.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import psycopg

from skyvault.schema.model import Embargo, Table

NIGHT_ZERO_JD = 2457754.5
"""Julian date of 2017-01-01T00:00 UTC: night ``nid`` starts at ``NIGHT_ZERO_JD + nid`` (the
calibration products' ``obsdate``; pipeline/naming.py ``NID_EPOCH``)."""

MEMBER_PROGRAMS = "(SELECT archive.member_programs())::smallint[]"
"""Who is asking, read once per query (migration 0006)."""

KINDS = {
    "observation": "its program, released through its observation time (obsjd)",
    "night": "any of its programs released through the start of its night (nid)",
    "coadd": "the first data release declared after it was archived (ingested_at)",
    "file": "its image: obsjd copied from the image, or a co-add's ingested_at",
    "alert": "at once (jd) where its program's alerts are public, else as its science image",
}
"""How rows are dated, by ``Embargo.dating``."""

COADD_TABLE = "reference_images"
ALERT_ARCHIVES = "alert_archives"
"""``survey.files.image_table`` of a night's alert archive of one stream (skyvault/alerts):
dated as its alerts, by its stream's first program and its last alert's ``jd`` (``obsjd``)."""


def horizons_sql(at: str) -> str:
    """Per program, the Julian date before which its observations are public at ``at`` (an SQL
    expression): a double precision[] subscripted by programid, evaluated once per query."""
    return f"(SELECT archive.public_before_jd({at}))"


def alert_horizons_sql(at: str) -> str:
    """Per program, the Julian date before which its candidates are public at ``at``: ``at``
    itself for a program whose alerts are public, otherwise its observations' horizon."""
    return f"(SELECT archive.alerts_public_before_jd({at}))"


def coadd_horizon_sql(at: str) -> str:
    """The instant before which archived co-adds are public at ``at``: the latest
    ``declared_at`` of the data releases public by then."""
    return f"(SELECT archive.coadds_public_before({at}))"


def _prefix(alias: str) -> str:
    return f"{alias}." if alias else ""


def _any_program_released(programs: str, jd: str, horizons: str) -> str:
    return (f"EXISTS (SELECT FROM unnest({programs}) AS released(programid)"
            f" WHERE {jd} < {horizons}[released.programid])")


def released_sql(embargo: Embargo, at: str = "now()", alias: str = "") -> str:
    """SQL that is true for a row public at instant ``at`` by the release rules alone."""
    t = _prefix(alias)
    horizons = horizons_sql(at)
    if embargo.dating == "observation":
        return f"{t}obsjd < {horizons}[{t}{embargo.program_column}]"
    if embargo.dating == "night":
        return _any_program_released(f"{t}programids", f"({NIGHT_ZERO_JD} + {t}nid)", horizons)
    if embargo.dating == "coadd":
        return f"{t}ingested_at < {coadd_horizon_sql(at)}"
    if embargo.dating == "alert":
        return f"{t}jd < {alert_horizons_sql(at)}[{t}{embargo.program_column}]"
    if embargo.dating == "file":
        # Most files belong to an image of one program: one look-up, no subquery.
        return (f"CASE WHEN {t}image_table = '{COADD_TABLE}'"
                f" THEN {t}ingested_at < {coadd_horizon_sql(at)}"
                f" WHEN {t}image_table = '{ALERT_ARCHIVES}'"
                f" THEN {t}obsjd < {alert_horizons_sql(at)}[{t}programids[1]]"
                f" ELSE {t}obsjd < {horizons}[{t}programids[1]]"
                f" OR (cardinality({t}programids) > 1"
                f" AND {_any_program_released(f'{t}programids', f'{t}obsjd', horizons)}) END")
    raise ValueError(f"unknown dating {embargo.dating!r}")


def member_sql(embargo: Embargo, alias: str = "") -> str:
    """SQL that is true for a row of a program the requester belongs to."""
    column = f'{_prefix(alias)}"{embargo.program_column}"'
    if embargo.is_array:
        return f"{column} && {MEMBER_PROGRAMS}"
    return f"{column} = ANY ({MEMBER_PROGRAMS})"


def policy_condition(table: Table) -> str:
    """The embargo policy's USING clause: released by now, or of the requester's programs."""
    assert table.embargo is not None
    return f"{released_sql(table.embargo)} OR {member_sql(table.embargo)}"


def policy_statements(table: Table) -> list[str]:
    return [
        f"ALTER TABLE {table.qualified_name} ENABLE ROW LEVEL SECURITY",
        f"CREATE POLICY embargo ON {table.qualified_name} FOR SELECT"
        f" USING ({policy_condition(table)})",
    ]


def summary_released_sql(at: str = "now()", alias: str = "", programs: str = "programids",
                         latest: str = "lastobsjds") -> str:
    """SQL that is true for a summary of epochs while every epoch it summarises is public at
    ``at``: ``programs`` (smallint[]) lists their programs and ``latest`` (double precision[],
    same order) the ``obsjd`` of each program's latest epoch, which is public, and so are the
    program's earlier ones, while it is before the program's horizon.  A summary of one
    program's epochs (most objects) costs one look-up, as a file of one program does."""
    t = _prefix(alias)
    horizons = horizons_sql(at)
    return (f"CASE WHEN cardinality({t}{programs}) = 1"
            f" THEN {t}{latest}[1] < {horizons}[{t}{programs}[1]]"
            f" ELSE NOT EXISTS (SELECT FROM unnest({t}{programs}, {t}{latest})"
            f" AS summarised(programid, obsjd)"
            f" WHERE NOT coalesce(summarised.obsjd < {horizons}[summarised.programid], false))"
            f" END")


def summary_policy_statements(qualified_name: str) -> list[str]:
    """Row-level security of a table of summaries of public epochs (``summary_released_sql``):
    one rule for everyone, no member clause."""
    return [
        f"ALTER TABLE {qualified_name} ENABLE ROW LEVEL SECURITY",
        f"CREATE POLICY public_epochs ON {qualified_name} FOR SELECT"
        f" USING ({summary_released_sql()})",
    ]


def release_date_sql(embargo: Embargo, alias: str = "") -> str:
    """SQL for the date a row becomes public under the releases declared so far (NULL while no
    rule releases it), for display: ObsCore's obs_release_date, image pages."""
    t = _prefix(alias)
    if embargo.dating == "observation":
        return f"archive.release_date_of({t}{embargo.program_column}, {t}obsjd)"
    if embargo.dating == "night":
        return (f"(SELECT min(archive.release_date_of(p.programid, {NIGHT_ZERO_JD} + {t}nid))"
                f" FROM unnest({t}programids) AS p(programid))")
    if embargo.dating == "coadd":
        return f"archive.coadd_release_date({t}ingested_at)"
    if embargo.dating == "alert":
        return f"archive.alert_release_date_of({t}{embargo.program_column}, {t}jd)"
    if embargo.dating == "file":
        return (f"CASE WHEN {t}image_table = '{COADD_TABLE}'"
                f" THEN archive.coadd_release_date({t}ingested_at)"
                f" WHEN {t}image_table = '{ALERT_ARCHIVES}'"
                f" THEN archive.alert_release_date_of({t}programids[1], {t}obsjd)"
                f" ELSE (SELECT min(archive.release_date_of(p.programid, {t}obsjd))"
                f" FROM unnest({t}programids) AS p(programid)) END")
    raise ValueError(f"unknown dating {embargo.dating!r}")


# -- what ingest writes and checks --------------------------------------------------------------


def night_jd(nid: int) -> float:
    return NIGHT_ZERO_JD + nid


def file_obsjd(image_table: str, values: Mapping[str, Any]) -> float | None:
    """The ``obsjd`` a file of an image row with ``values`` is dated by (``survey.files``)."""
    if image_table == COADD_TABLE:
        return None
    if image_table == "calibration_images":
        return night_jd(int(values["nid"]))
    return float(values["obsjd"])


def unknown_programs(connection: psycopg.Connection, programs: Iterable[int]) -> list[int]:
    """The programs ``survey.programs`` does not know: no rule could ever release their rows,
    so ingest quarantines a product that names one."""
    wanted = sorted({int(p) for p in programs})
    known = {row[0] for row in connection.execute(
        "SELECT programid FROM survey.programs WHERE programid = ANY (%s)", (wanted,))}
    return [p for p in wanted if p not in known]

"""Alert archives in survey.files: dated as their alerts.

A night's alert archive of one stream (skyvault/alerts) is a row of survey.files with
``image_table = 'alert_archives'``, its stream's program in ``programids`` and its last alert's
Julian date in ``obsjd``. The file policy dates it as candidates are dated (by
``archive.alerts_public_before_jd``): the public stream's archive is public at once, a
program's with its data. Other files keep their rule.

Revision ID: 0020
Revises: 0022
"""

from alembic import op

revision = "0020"
down_revision = "0022"
branch_labels = None
depends_on = None

MEMBERS = "(SELECT archive.member_programs())::smallint[]"
HORIZONS = "(SELECT archive.public_before_jd(now()))"
COADDS = "(SELECT archive.coadds_public_before(now()))"
ALERTS = "(SELECT archive.alerts_public_before_jd(now()))"
IMAGES = (f"ELSE obsjd < {HORIZONS}[programids[1]] OR (cardinality(programids) > 1"
          f" AND EXISTS (SELECT FROM unnest(programids) AS released(programid)"
          f" WHERE obsjd < {HORIZONS}[released.programid])) END"
          f' OR "programids" && {MEMBERS}')
WITH_ARCHIVES = (f"CASE WHEN image_table = 'reference_images' THEN ingested_at < {COADDS}"
                 f" WHEN image_table = 'alert_archives'"
                 f" THEN obsjd < {ALERTS}[programids[1]] {IMAGES}")
BEFORE = f"CASE WHEN image_table = 'reference_images' THEN ingested_at < {COADDS} {IMAGES}"


def upgrade() -> None:
    op.execute(f"ALTER POLICY embargo ON survey.files USING ({WITH_ARCHIVES})")


def downgrade() -> None:
    # An alert archive is then dated as an image of its program (released with its data).
    op.execute(f"ALTER POLICY embargo ON survey.files USING ({BEFORE})")
